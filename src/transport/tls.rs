//! TLS for SIP over TLS and secure WebSocket: rustls with the ring provider (no C build,
//! the provider the webhook client uses too), the certificate chain and key read from PEM
//! files, swapped without a restart on SIGHUP.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The server certificate in force; a TLS handshake reads it, a reload replaces it.
#[derive(Debug)]
pub struct TlsCerts {
    current: ArcSwap<CertifiedKey>,
}

/// `cert` (a PEM chain, leaf first) and `key` (a PEM private key) as rustls uses them.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signer);
    // A key that does not go with the certificate would fail every handshake: refuse it now.
    certified
        .keys_match()
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?;
    Ok(certified)
}

impl TlsCerts {
    /// Reads `cert` and `key`.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<TlsCerts>, String> {
        Ok(Arc::new(TlsCerts {
            current: ArcSwap::from_pointee(load(cert, key)?),
        }))
    }

    /// Reads them again (SIGHUP); on an error the old pair stays in force.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), String> {
        self.current.store(Arc::new(load(cert, key)?));
        Ok(())
    }

    /// An acceptor that always presents the pair in force.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

#[derive(Debug)]
struct Resolver(Arc<TlsCerts>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current.load_full())
    }
}

/// A self-signed certificate for `host` (and `localhost`, 127.0.0.1), for development:
/// (certificate PEM, private key PEM).
pub fn self_signed(host: &str) -> Result<(String, String), String> {
    let mut names = vec![host.to_string()];
    for extra in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_string());
        }
    }
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    Ok((cert.cert.pem(), cert.signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_loads_and_a_mismatched_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = self_signed("switchboard.test").unwrap();
        let (_, other_key) = self_signed("other.test").unwrap();
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        std::fs::write(dir.join("other.pem"), other_key).unwrap();
        let certs = TlsCerts::open(&dir.join("cert.pem"), &dir.join("key.pem")).expect("loads");
        assert!(certs.acceptor().is_ok());
        let bad = certs.reload(&dir.join("cert.pem"), &dir.join("other.pem"));
        assert!(bad.is_err(), "{bad:?}");
        assert!(TlsCerts::open(&dir.join("missing.pem"), &dir.join("key.pem")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
