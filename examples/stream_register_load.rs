//! REGISTER load over TCP or TLS (Debian's SIPp has no TLS), for `benches/register/tls.py`:
//! `CONNS` connections, each keeping `WINDOW` REGISTERs in flight, every REGISTER a distinct
//! user with its own access token (HS256 with the sample config's API key, minted here as
//! a helper library would), for `SECS` seconds. Prints one JSON line: answered, 200s,
//! rate.
//!
//!     cargo run --release --example stream_register_load -- tcp|tls ADDR [CONNS] [WINDOW] [SECS] [CERT]
//!
//! CERT (for tls): the PEM certificate to trust (`switchboard cert`).
// A load client reads the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::Mac as _;

const REALM: &str = "switchboard.local";

fn token(identity: &str, now: u64) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = r#"{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}"#;
    let claims = format!(
        r#"{{"jti":"SK00000000000000000000000000000001-{now}-{identity}","iss":"SK00000000000000000000000000000001","sub":"AC00000000000000000000000000000001","iat":{now},"exp":{},"grants":{{"identity":"{identity}","voice":{{"incoming":{{"allow":true}}}}}}}}"#,
        now + 3600
    );
    let signing = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"demo-api-key-secret-change-me")
        .expect("any key length");
    mac.update(signing.as_bytes());
    format!("{signing}.{}", b64(&mac.finalize().into_bytes()))
}

fn register(identity: &str, local: SocketAddr, transport: &str, now: u64, n: u64) -> String {
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK{n:x}{identity}\r\n\
         Max-Forwards: 70\r\nTo: <sip:{identity}@{REALM}>\r\nFrom: <sip:{identity}@{REALM}>;tag={n:x}\r\n\
         Call-ID: {identity}-{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{identity}@{local};transport={}>\r\n\
         Expires: 3600\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        transport.to_ascii_lowercase(),
        token(identity, now)
    )
}

trait Wire: Read + Write + Send {}
impl<T: Read + Write + Send> Wire for T {}

fn connect(kind: &str, addr: SocketAddr, cert: Option<&str>) -> Box<dyn Wire> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(true).unwrap();
    if kind == "tcp" {
        return Box::new(tcp);
    }
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert.expect("CERT for tls")).unwrap()
    {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    Box::new(rustls::StreamOwned::new(conn, tcp))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map(String::as_str).unwrap_or("tcp").to_string();
    let addr: SocketAddr = args.get(2).expect("ADDR").parse().expect("ADDR");
    let conns: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(8);
    let window: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(32);
    let secs: u64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cert = args.get(6).cloned();
    let transport = if kind == "tls" { "TLS" } else { "TCP" };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (answered, ok) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let (kind, cert) = (kind.clone(), cert.clone());
            let (answered, ok) = (answered.clone(), ok.clone());
            std::thread::spawn(move || {
                let mut wire = connect(&kind, addr, cert.as_deref());
                let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
                let (mut sent, mut buf, mut in_flight) = (0u64, Vec::<u8>::new(), 0usize);
                let mut chunk = vec![0u8; 65536];
                loop {
                    while in_flight < window && Instant::now() < end {
                        // Distinct per run too: a second run would repeat Call-ID and CSeq.
                        let id = format!("s{}x{c:03}x{sent:07}", std::process::id());
                        let msg = register(&id, local, transport, now, sent);
                        wire.write_all(msg.as_bytes()).unwrap();
                        sent += 1;
                        in_flight += 1;
                    }
                    wire.flush().unwrap();
                    if in_flight == 0 {
                        break;
                    }
                    let n = match wire.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    // Responses carry no body here: each ends at CRLFCRLF.
                    while let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        if buf.starts_with(b"SIP/2.0 200") {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                        in_flight -= 1;
                        buf.drain(..at + 4);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let wall = start.elapsed().as_secs_f64();
    let (answered, ok) = (answered.load(Ordering::Relaxed), ok.load(Ordering::Relaxed));
    println!(
        "{{\"transport\":\"{kind}\",\"answered\":{answered},\"ok\":{ok},\"seconds\":{wall:.2},\"rate\":{:.0}}}",
        ok as f64 / wall
    );
}
