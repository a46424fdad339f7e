//! SIP Digest authentication for `[[sip_users]]`: RFC 3261 §22.4 with the RFC 7616 rules
//! that RFC 8760 brings to SIP (MD5 and SHA-256, `qop=auth` only).
//!
//! - Nonces are stateless (see `nonce.rs`): issue time, 8 random bytes and a truncated
//!   HMAC-SHA256 under a per-process secret, valid for 300 s, then answered as stale so the
//!   client retries with the same password and a new nonce.
//! - Replays are refused by requiring `nc` to grow strictly per nonce; only nonces that
//!   carried valid credentials are remembered (bounded, pruned as they expire).
//! - An unknown user and a wrong password cost the same work (a dummy HA1 stands in for a
//!   missing user) and get the same [`DigestError::BadCredentials`], so usernames cannot be
//!   enumerated (svwar); responses are compared in constant time.
//! - Credentials for any realm other than ours are refused before they are used
//!   (CVE-2021-41158, the FreeSWITCH digest leak, is the client-side twin of this rule).
//! - Only `HA1 = H(username:realm:password)` is kept in memory, never the password; a user
//!   configured with an MD5 `ha1` can only answer the MD5 challenge.

mod hash;
mod nonce;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use subtle::{Choice, ConstantTimeEq};

use crate::config::Config;
use crate::sip::msg::typed::{AuthParams, quote, unquote};

use hash::{Algorithm, Hex, ResponseInputs};
use nonce::{NonceKey, REPLAY_CAP, ReplayTable};

/// The configured SIP user a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestUser {
    /// The Digest username.
    pub username: String,
    /// The client identity the user stands for (`client:<identity>`).
    pub identity: String,
    /// Account sid.
    pub account: String,
}

/// Why Digest credentials were refused. Every variant is answered with a 401 and a fresh
/// challenge; only `Stale` sets `stale=true` in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// A required parameter is missing or unreadable, `qop` is absent (RFC 2069 style) or
    /// not `auth`, or `nc`/`response`/`nonce` have the wrong form.
    #[error("malformed digest credentials")]
    Malformed,
    /// The credentials name another realm.
    #[error("digest credentials for another realm")]
    WrongRealm,
    /// Unknown user, wrong password, or a nonce we did not issue: deliberately not told apart.
    #[error("bad digest credentials")]
    BadCredentials,
    /// The nonce is ours but expired; re-challenge with `stale=true`.
    #[error("stale digest nonce")]
    Stale,
    /// The nonce count did not grow.
    #[error("replayed digest nonce count")]
    Replay,
    /// An `algorithm` we never offer.
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    /// The `uri` parameter differs from the Request-URI.
    #[error("digest uri does not match the request uri")]
    UriMismatch,
}

impl DigestError {
    /// A short stable name for logs and metrics.
    pub const fn class(self) -> &'static str {
        match self {
            DigestError::Malformed => "malformed",
            DigestError::WrongRealm => "wrong_realm",
            DigestError::BadCredentials => "bad_credentials",
            DigestError::Stale => "stale",
            DigestError::Replay => "replay",
            DigestError::UnsupportedAlgorithm => "unsupported_algorithm",
            DigestError::UriMismatch => "uri_mismatch",
        }
    }
}

/// One configured user: HA1 per algorithm it can answer, and who it is.
struct Entry {
    md5: Option<Hex>,
    sha256: Option<Hex>,
    user: DigestUser,
}

impl Entry {
    fn ha1(&self, alg: Algorithm) -> Option<&Hex> {
        match alg {
            Algorithm::Md5 => self.md5.as_ref(),
            Algorithm::Sha256 => self.sha256.as_ref(),
        }
    }
}

/// Verifies Digest credentials against `[[sip_users]]` and issues challenges.
pub struct DigestAuth {
    realm: String,
    users: HashMap<String, Entry>,
    /// Stands in for the HA1 of a user we do not have (or cannot answer this algorithm).
    dummy_md5: Hex,
    dummy_sha256: Hex,
    nonces: NonceKey,
    replay: Mutex<ReplayTable>,
}

impl fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No secrets or HA1s in logs.
        f.debug_struct("DigestAuth")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl DigestAuth {
    /// Builds the user table for `cfg.server.realm`. `secret` keys the nonces; it should be
    /// random per process (nonces from another process then fail as bad credentials).
    ///
    /// Users without a usable credential (neither `password` nor a 32-hex-digit `ha1`) and
    /// repeated usernames are skipped with a warning; config validation reports them.
    pub fn new(cfg: &Config, secret: [u8; 32]) -> Self {
        let realm = cfg.server.realm.clone();
        let mut users = HashMap::with_capacity(cfg.sip_users.len());
        for u in &cfg.sip_users {
            let (md5, sha256) = match (&u.password, &u.ha1) {
                (Some(pw), _) => (
                    Some(Algorithm::Md5.ha1(&u.username, &realm, pw)),
                    Some(Algorithm::Sha256.ha1(&u.username, &realm, pw)),
                ),
                (None, Some(ha1)) => (Hex::md5_from_config(ha1), None),
                (None, None) => (None, None),
            };
            if md5.is_none() && sha256.is_none() {
                tracing::warn!(
                    username = %u.username,
                    "sip user has no usable password or ha1; skipped"
                );
                continue;
            }
            if users.contains_key(&u.username) {
                tracing::warn!(username = %u.username, "duplicate sip user; first one kept");
                continue;
            }
            let user = DigestUser {
                username: u.username.clone(),
                identity: u.identity.clone(),
                account: u.account.clone(),
            };
            users.insert(u.username.clone(), Entry { md5, sha256, user });
        }
        // Any value works: a dummy match is still refused. Derived from the secret so it is
        // not a constant anyone could precompute against.
        let dummy_pw = Algorithm::Sha256.hash(&[b"dummy", &secret]).hex();
        let dummy_pw = String::from_utf8_lossy(dummy_pw.as_bytes()).into_owned();
        DigestAuth {
            dummy_md5: Algorithm::Md5.ha1("", &realm, &dummy_pw),
            dummy_sha256: Algorithm::Sha256.ha1("", &realm, &dummy_pw),
            nonces: NonceKey::new(&secret, &realm),
            realm,
            users,
            replay: Mutex::new(ReplayTable::new(REPLAY_CAP)),
        }
    }

    /// Whether any SIP user is configured (else no Digest challenge is offered).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// WWW-Authenticate values for a 401, SHA-256 first then MD5 (RFC 8760 §2.4: the
    /// preferred algorithm first), sharing one fresh nonce. `stale` marks a re-challenge
    /// after [`DigestError::Stale`].
    pub fn challenges(&self, now_unix: u64, stale: bool) -> Vec<String> {
        self.challenges_for(now_unix, stale, true, true)
    }

    /// Like [`DigestAuth::challenges`], offering only the chosen algorithms (SHA-256 first
    /// when both, RFC 8760 §2.4).
    pub fn challenges_for(
        &self,
        now_unix: u64,
        stale: bool,
        sha256: bool,
        md5: bool,
    ) -> Vec<String> {
        let nonce = self.nonces.mint(now_unix);
        let realm = quote(&self.realm);
        let stale = if stale { ", stale=true" } else { "" };
        [(Algorithm::Sha256, sha256), (Algorithm::Md5, md5)]
            .into_iter()
            .filter_map(|(alg, on)| on.then_some(alg))
            .map(|alg| {
                format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={}{stale}",
                    alg.name()
                )
            })
            .collect()
    }

    /// Checks the parameters of an `Authorization: Digest` header for a request with this
    /// `method` and Request-URI (`request_uri`, compared exactly with `uri`).
    ///
    /// The order of the checks is part of the contract: everything that does not depend on
    /// the user (form, realm, algorithm, uri, nonce tag) first; then the response, with the
    /// same work for unknown users; then freshness (so `Stale` is only said to a client
    /// that knows the password, as RFC 7616 §3.3 asks); then the nonce count.
    pub fn verify(
        &self,
        method: &str,
        request_uri: &str,
        params: &AuthParams<'_>,
        now_unix: u64,
    ) -> Result<DigestUser, DigestError> {
        let [
            realm,
            username,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            nc,
            cnonce,
        ] = params.get_all([
            "realm",
            "username",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "qop",
            "nc",
            "cnonce",
        ]);

        let realm = unquote(field(realm)?);
        if *realm != *self.realm {
            return Err(DigestError::WrongRealm);
        }
        let username = unquote(field(username)?);
        let nonce = unquote(field(nonce)?);
        let uri = unquote(field(uri)?);
        let response = field(response)?;
        let alg = Algorithm::parse(algorithm).ok_or(DigestError::UnsupportedAlgorithm)?;
        // RFC 2069 credentials (no qop) are refused: every challenge offers qop=auth.
        let qop = field(qop)?;
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(DigestError::Malformed);
        }
        let nc_text = field(nc)?;
        let nc = parse_nc(nc_text).ok_or(DigestError::Malformed)?;
        let cnonce = unquote(field(cnonce)?);
        if cnonce.is_empty() {
            return Err(DigestError::Malformed);
        }
        let given = hash::Raw::from_hex(response, alg.len()).ok_or(DigestError::Malformed)?;
        if *uri != *request_uri {
            return Err(DigestError::UriMismatch);
        }
        let opened = self.nonces.open(&nonce)?;

        // Same path for every username: a missing user (or one whose only credential is an
        // MD5 ha1, asked for SHA-256) hashes against a dummy HA1 and can never match.
        let entry = self.users.get(&*username);
        let (ha1, known) = match entry.and_then(|e| e.ha1(alg)) {
            Some(ha1) => (ha1, Choice::from(1)),
            None => (
                match alg {
                    Algorithm::Md5 => &self.dummy_md5,
                    Algorithm::Sha256 => &self.dummy_sha256,
                },
                Choice::from(0),
            ),
        };
        let expected = alg.response(
            ha1,
            &ResponseInputs {
                method,
                uri: &uri,
                nonce: &nonce,
                nc: nc_text,
                cnonce: &cnonce,
                qop,
            },
        );
        let ok = expected.as_bytes().ct_eq(given.as_bytes()) & known;
        let entry = match entry {
            Some(e) if bool::from(ok) => e,
            _ => return Err(DigestError::BadCredentials),
        };

        if !nonce::is_fresh(opened.issued, now_unix) {
            return Err(DigestError::Stale);
        }
        self.replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_and_record(opened, nc, now_unix)?;
        Ok(entry.user.clone())
    }
}

/// A parameter the credentials must have.
fn field(value: Option<&str>) -> Result<&str, DigestError> {
    value.ok_or(DigestError::Malformed)
}

/// `nc`: exactly 8 hex digits (RFC 7616 §3.4), not zero.
fn parse_nc(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok().filter(|&n| n != 0)
}
