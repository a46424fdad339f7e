//! HTTP Basic authentication, Twilio style: `AccountSid:AuthToken`, or an API key
//! `KeySid:Secret` of the account (Twilio accepts both for the REST API).
//!
//! Secrets are compared in constant time (`subtle`); only their lengths can show in the
//! timing. An unknown user name is compared against a dummy secret so that it takes as long
//! as a known one with a wrong secret.

use base64::Engine as _;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use subtle::ConstantTimeEq as _;

use crate::config::{Account, Config};

/// The account the request's credentials authenticate, if any.
pub(super) fn authenticate<'c>(headers: &HeaderMap, config: &'c Config) -> Option<&'c Account> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (user, secret) = (&decoded[..colon], &decoded[colon + 1..]);
    for account in &config.accounts {
        if account.sid.as_bytes() == user {
            return same(secret, &account.auth_token).then_some(account);
        }
        for key in &account.api_keys {
            if key.sid.as_bytes() == user {
                return same(secret, &key.secret).then_some(account);
            }
        }
    }
    let _ = same(secret, "no-such-user-dummy-secret-000000");
    None
}

/// An empty configured secret never matches.
fn same(given: &[u8], expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.ct_eq(expected.as_bytes()))
}
