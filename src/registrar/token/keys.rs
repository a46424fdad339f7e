//! The verification keys, built once from the config: API key secrets (access tokens),
//! account auth tokens (capability tokens) and third-party issuers' public keys (PEM or a
//! local JWKS file). Every key carries the `Validation` it is checked with, whose algorithm
//! list comes from here and never from a token.

use std::collections::{HashMap, HashSet};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};

use super::LEEWAY_SECS;
use crate::config::{self, Config, Issuer};

/// API-key (access) tokens: the algorithms Twilio's helpers offer.
const API_KEY_ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
/// Capability tokens are always HS256.
const CAPABILITY_ALGORITHMS: [Algorithm; 1] = [Algorithm::HS256];
/// Smallest RSA modulus accepted from an issuer.
const MIN_RSA_BITS: usize = 2048;

pub(super) struct ApiKeyEntry {
    /// The account the key belongs to; the token's `sub` must name it.
    pub account: String,
    pub key: DecodingKey,
    pub validation: Validation,
}

pub(super) struct AccountEntry {
    /// The auth token, for capability tokens.
    pub key: DecodingKey,
    pub validation: Validation,
    /// Application sids of this account (an outgoing grant must name one of them).
    pub applications: HashSet<String>,
}

pub(super) struct IssuerEntry {
    pub account: String,
    pub keys: Vec<IssuerKey>,
    /// A `public_key_pem` issuer has one key and no key ids; a token's `kid` is not used.
    pub single_pem: bool,
}

pub(super) struct IssuerKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// Its algorithms: the issuer's configured ones that fit this key's type.
    pub validation: Validation,
}

impl IssuerEntry {
    /// The key for a token's `kid`: only configured keys are ever used.
    pub fn key(&self, kid: Option<&str>) -> Option<&IssuerKey> {
        if self.single_pem {
            return self.keys.first();
        }
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            // Without a kid only an unambiguous (single-key) set will do.
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

pub(super) struct Keys {
    pub api_keys: HashMap<String, ApiKeyEntry>,
    pub accounts: HashMap<String, AccountEntry>,
    pub issuers: HashMap<String, IssuerEntry>,
}

/// How every token is checked by jsonwebtoken: the signature, and `exp` present as a number
/// (a string `exp` counts as missing there). Times are checked by the caller against the
/// `now` it is given, since jsonwebtoken would read the system clock; `aud` is checked by
/// the caller too.
pub(super) fn validation(algorithms: &[Algorithm]) -> Validation {
    let mut v = Validation::new(algorithms[0]);
    v.algorithms = algorithms.to_vec();
    v.set_required_spec_claims(&["exp"]);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
}

impl Keys {
    pub fn load(cfg: &Config) -> Result<Keys, String> {
        let mut keys = Keys {
            api_keys: HashMap::new(),
            accounts: HashMap::new(),
            issuers: HashMap::new(),
        };
        for account in &cfg.accounts {
            if account.auth_token.is_empty() {
                return Err(format!("account {}: auth_token is empty", account.sid));
            }
            let applications = cfg
                .applications
                .iter()
                .filter(|app| app.account == account.sid)
                .map(|app| app.sid.clone())
                .collect();
            let entry = AccountEntry {
                key: DecodingKey::from_secret(account.auth_token.as_bytes()),
                validation: validation(&CAPABILITY_ALGORITHMS),
                applications,
            };
            if keys.accounts.insert(account.sid.clone(), entry).is_some() {
                return Err(format!("account {} is configured twice", account.sid));
            }
            for key in &account.api_keys {
                if key.secret.is_empty() {
                    return Err(format!(
                        "account {}: API key {}: secret is empty",
                        account.sid, key.sid
                    ));
                }
                let entry = ApiKeyEntry {
                    account: account.sid.clone(),
                    key: DecodingKey::from_secret(key.secret.as_bytes()),
                    validation: validation(&API_KEY_ALGORITHMS),
                };
                if let Some(other) = keys.api_keys.insert(key.sid.clone(), entry) {
                    return Err(format!(
                        "API key {} is configured under accounts {} and {}",
                        key.sid, other.account, account.sid
                    ));
                }
            }
            for issuer in &account.issuers {
                let at = format!("account {}: issuer `{}`", account.sid, issuer.iss);
                let (issuer_keys, single_pem) =
                    issuer_keys(issuer).map_err(|why| format!("{at}: {why}"))?;
                let entry = IssuerEntry {
                    account: account.sid.clone(),
                    keys: issuer_keys,
                    single_pem,
                };
                if let Some(other) = keys.issuers.insert(issuer.iss.clone(), entry) {
                    return Err(format!(
                        "{at}: the same iss is also configured under account {}",
                        other.account
                    ));
                }
            }
        }
        // A token's `iss` picks its shape; an issuer named like a sid would be ambiguous.
        for iss in keys.issuers.keys() {
            if keys.api_keys.contains_key(iss) || keys.accounts.contains_key(iss) {
                return Err(format!(
                    "issuer `{iss}`: iss must differ from every account and API key sid"
                ));
            }
        }
        Ok(keys)
    }
}

fn jwt_algorithm(a: config::Algorithm) -> Algorithm {
    match a {
        config::Algorithm::Es256 => Algorithm::ES256,
        config::Algorithm::EdDsa => Algorithm::EdDSA,
        config::Algorithm::Rs256 => Algorithm::RS256,
    }
}

/// The issuer's keys, and whether they came from a single PEM.
fn issuer_keys(issuer: &Issuer) -> Result<(Vec<IssuerKey>, bool), String> {
    let mut configured: Vec<Algorithm> = Vec::new();
    for alg in issuer.algorithms.iter().copied().map(jwt_algorithm) {
        if !configured.contains(&alg) {
            configured.push(alg);
        }
    }
    if configured.is_empty() {
        return Err("no algorithms configured".to_owned());
    }
    match (&issuer.public_key_pem, &issuer.jwks_file) {
        (Some(pem), None) => {
            if pem.contains("PRIVATE KEY") {
                return Err(
                    "public_key_pem holds a private key: give the issuer's public key only"
                        .to_owned(),
                );
            }
            let bytes = pem.as_bytes();
            let key = DecodingKey::from_ec_pem(bytes)
                .or_else(|_| DecodingKey::from_ed_pem(bytes))
                .or_else(|_| DecodingKey::from_rsa_pem(bytes))
                .map_err(|_| {
                    "public_key_pem is not an EC P-256, Ed25519 or RSA public key".to_owned()
                })?;
            let algorithms = usable_algorithms(&key, &configured, None)
                .map_err(|why| format!("public_key_pem: {why}"))?;
            let key = IssuerKey {
                kid: None,
                key,
                validation: validation(&algorithms),
            };
            Ok((vec![key], true))
        }
        (None, Some(path)) => {
            let file = path.display();
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("jwks_file `{file}`: cannot read: {e}"))?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|e| format!("jwks_file `{file}`: not a JWKS document: {e}"))?;
            let mut keys: Vec<IssuerKey> = Vec::new();
            for (i, jwk) in set.keys.iter().enumerate() {
                let label = match &jwk.common.key_id {
                    Some(kid) => format!("kid `{kid}`"),
                    None => format!("key #{i}"),
                };
                match jwk_key(jwk, &configured) {
                    Ok(Some(key)) => {
                        if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid) {
                            return Err(format!("jwks_file `{file}`: {label} appears twice"));
                        }
                        keys.push(key);
                    }
                    Ok(None) => {}
                    Err(why) => {
                        // An identity provider's set may hold keys for other uses: skip
                        // them, but say so.
                        tracing::warn!(iss = %issuer.iss, "jwks_file `{file}`: {label} skipped: {why}");
                    }
                }
            }
            if keys.is_empty() {
                return Err(format!(
                    "jwks_file `{file}` has no key usable with algorithms {}",
                    names(&configured)
                ));
            }
            if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
                return Err(format!(
                    "jwks_file `{file}`: with several keys every key needs a `kid`"
                ));
            }
            Ok((keys, false))
        }
        (Some(_), Some(_)) => Err("give either public_key_pem or jwks_file, not both".to_owned()),
        (None, None) => Err("needs public_key_pem or jwks_file".to_owned()),
    }
}

/// `Ok(None)` for a key meant for encryption (silently not ours).
fn jwk_key(jwk: &Jwk, configured: &[Algorithm]) -> Result<Option<IssuerKey>, String> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let key = match &jwk.algorithm {
        AlgorithmParameters::RSA(_)
        | AlgorithmParameters::EllipticCurve(_)
        | AlgorithmParameters::OctetKeyPair(_) => {
            DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key: {e}"))?
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric keys are never accepted from an issuer".to_owned());
        }
        _ => return Err("unsupported key type".to_owned()),
    };
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => {
            Some(Algorithm::try_from(alg).map_err(|_| format!("unsupported key algorithm {alg}"))?)
        }
    };
    let algorithms = usable_algorithms(&key, configured, declared)?;
    Ok(Some(IssuerKey {
        kid: jwk.common.key_id.clone(),
        key,
        validation: validation(&algorithms),
    }))
}

/// The configured algorithms this key can check (those of its family, and only its declared
/// `alg` when the JWK names one), after checking the key material itself.
fn usable_algorithms(
    key: &DecodingKey,
    configured: &[Algorithm],
    declared: Option<Algorithm>,
) -> Result<Vec<Algorithm>, String> {
    // Parses the key (RSA DER, EC point length, Ed25519 length); among other things this
    // keeps short Ed25519 keys, which would make the verifier panic, out.
    let shape = Jwk::from_decoding_key(key, None).map_err(|e| format!("bad key: {e}"))?;
    let kind = match &shape.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => "EC P-256",
        AlgorithmParameters::EllipticCurve(_) => {
            return Err("EC keys must be on P-256 (ES256)".to_owned());
        }
        AlgorithmParameters::OctetKeyPair(_) => "Ed25519",
        AlgorithmParameters::RSA(rsa) => {
            let bits = rsa_bits(&rsa.n);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits: at least {MIN_RSA_BITS} required"
                ));
            }
            "RSA"
        }
        _ => return Err("symmetric keys are never accepted from an issuer".to_owned()),
    };
    if key.family() == AlgorithmFamily::Hmac {
        return Err("symmetric keys are never accepted from an issuer".to_owned());
    }
    let algorithms: Vec<Algorithm> = configured
        .iter()
        .copied()
        .filter(|a| a.family() == key.family() && declared.is_none_or(|d| d == *a))
        .collect();
    let Some(&first) = algorithms.first() else {
        let declared = declared.map(|d| format!(" for {d:?}")).unwrap_or_default();
        return Err(format!(
            "an {kind} key{declared}, but algorithms allow only {}",
            names(configured)
        ));
    };
    // Builds the verifier once (EC points are checked to be on the curve here); a wrong
    // signature is fine, an error is not.
    jsonwebtoken::crypto::verify("AA", b"probe", key, first)
        .map_err(|e| format!("unusable key: {e}"))?;
    Ok(algorithms)
}

/// Bits in a base64url big-endian modulus.
fn rsa_bits(n_b64: &str) -> usize {
    use base64::Engine;
    let Ok(n) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n_b64) else {
        return 0;
    };
    let Some(first) = n.iter().position(|&b| b != 0) else {
        return 0;
    };
    (n.len() - first) * 8 - n[first].leading_zeros() as usize
}

fn names(algorithms: &[Algorithm]) -> String {
    let names: Vec<String> = algorithms.iter().map(|a| format!("{a:?}")).collect();
    names.join(", ")
}
