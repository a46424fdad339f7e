//! Unverified inspection of a compact JWS: enough to pick the token shape and key, and to
//! refuse cheaply (size, structure, time) before any signature work. Nothing read here is
//! trusted until `jsonwebtoken::decode` has checked the signature over the same bytes.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::TokenError;

/// Longest token considered. Twilio tokens are well under 1 KiB; a cap keeps a flood of huge
/// `Authorization` headers from costing base64 and JSON work.
pub(super) const MAX_TOKEN_BYTES: usize = 8192;

/// What the header and claims say, before verification.
#[derive(Debug)]
pub(super) struct Peeked {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: String,
    pub exp: u64,
    pub nbf: Option<u64>,
    pub claims: Map<String, Value>,
}

pub(super) fn peek(token: &str) -> Result<Peeked, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    // Exactly three parts, split the way jsonwebtoken splits, so the payload inspected here
    // is the one whose signature it checks.
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header = json_object(header)?;
    let claims = json_object(payload)?;

    let alg = match header.get("alg") {
        Some(Value::String(alg)) => {
            // `none`, and anything else jsonwebtoken cannot verify, is never allowed.
            Algorithm::from_str(alg).map_err(|_| TokenError::AlgorithmNotAllowed)?
        }
        _ => return Err(TokenError::Malformed),
    };
    // RFC 7515 §4.1.11: a receiver must refuse critical extensions it does not understand,
    // and it understands none (this also refuses RFC 7797 unencoded payloads).
    if header.contains_key("crit") {
        return Err(TokenError::Malformed);
    }
    let kid = optional_string(&header, "kid")?;

    let iss = match claims.get("iss") {
        Some(Value::String(iss)) => iss.clone(),
        Some(_) => return Err(TokenError::Malformed),
        None => return Err(TokenError::MissingClaim("iss")),
    };
    // CVE-2026-25537: a non-numeric `exp`/`nbf` must never count as absent.
    let exp = match claims.get("exp") {
        Some(v) => numeric_date(v, false).ok_or(TokenError::Malformed)?,
        None => return Err(TokenError::MissingClaim("exp")),
    };
    let nbf = match claims.get("nbf") {
        Some(v) => Some(numeric_date(v, true).ok_or(TokenError::Malformed)?),
        None => None,
    };
    Ok(Peeked {
        alg,
        kid,
        iss,
        exp,
        nbf,
        claims,
    })
}

fn json_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// `Ok(None)` when absent; a present value of another type is malformed.
pub(super) fn optional_string(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, TokenError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// RFC 7519 NumericDate: a non-negative JSON number of seconds. Fractions round towards the
/// stricter side (`exp` down, `nbf` up).
fn numeric_date(v: &Value, round_up: bool) -> Option<u64> {
    let Value::Number(n) = v else {
        return None;
    };
    if let Some(secs) = n.as_u64() {
        return Some(secs);
    }
    let f = n.as_f64()?;
    // 2^63 bounds both the cast and any sane date.
    if !(f.is_finite() && (0.0..9.2e18).contains(&f)) {
        return None;
    }
    let rounded = if round_up { f.ceil() } else { f.floor() };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(rounded as u64)
}
