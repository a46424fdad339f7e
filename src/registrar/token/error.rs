//! Why a token was refused. Every variant means `401 Bearer error="invalid_token"` to the
//! registrar (RFC 8898); the variant itself is for logs and metrics (`class`), never for the
//! client, so a prober learns nothing about which check failed.

use jsonwebtoken::errors::{Error as JwtError, ErrorKind as JwtErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS: not three parts, bad base64url, bad JSON, a claim of the wrong type
    /// (a string `exp`, CVE-2026-25537), a `crit` header, an oversized token, or contradictory
    /// claims (two different client names in one capability token).
    #[error("malformed token")]
    Malformed,
    /// `exp` is more than the leeway in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is more than the leeway in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not verify with the configured key.
    #[error("bad token signature")]
    BadSignature,
    /// The header's `alg` is not one the configuration allows for that key (this includes
    /// `none`, HS* for third-party issuers and RS/ES/EdDSA for API keys and auth tokens).
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No configured key can check the token: unknown API key sid, unknown issuer, or a `kid`
    /// that is not among the issuer's configured keys.
    #[error("unknown signing key")]
    UnknownKey,
    /// The token names an account that is not configured, an account other than the one its
    /// API key belongs to, or (`aud`) an audience other than this switch's realm.
    #[error("unknown account")]
    UnknownAccount,
    /// A claim this shape needs is absent (`exp`, `iss`, `sub` of an access token, `scope`
    /// of a capability token).
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// The token grants no usable client identity (absent, empty, too long, or with
    /// characters that cannot be a SIP AOR user).
    #[error("token grants no client identity")]
    NoIdentity,
    /// `exp` lies further past `iat` or now than `[registrar] max_token_lifetime_secs`.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
}

impl TokenError {
    /// A stable, low-cardinality label for logs and metrics.
    pub const fn class(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::BadSignature => "bad_signature",
            TokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
            TokenError::UnknownKey => "unknown_key",
            TokenError::UnknownAccount => "unknown_account",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::NoIdentity => "no_identity",
            TokenError::LifetimeTooLong => "lifetime_too_long",
        }
    }

    /// Classifies an error from `jsonwebtoken::decode`. Most cases are caught earlier by our
    /// own inspection; this is the backstop.
    pub(super) fn from_jwt(e: &JwtError) -> TokenError {
        match e.kind() {
            JwtErrorKind::InvalidSignature => TokenError::BadSignature,
            JwtErrorKind::InvalidAlgorithm
            | JwtErrorKind::MissingAlgorithm
            | JwtErrorKind::UnsupportedAlgorithm
            | JwtErrorKind::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
            JwtErrorKind::ExpiredSignature => TokenError::Expired,
            JwtErrorKind::ImmatureSignature => TokenError::NotYetValid,
            JwtErrorKind::MissingRequiredClaim(claim) => {
                TokenError::MissingClaim(static_claim(claim))
            }
            JwtErrorKind::InvalidIssuer
            | JwtErrorKind::InvalidAudience
            | JwtErrorKind::InvalidSubject => TokenError::UnknownAccount,
            // Keys are checked when loaded, so this means a key we cannot use.
            JwtErrorKind::InvalidEcdsaKey
            | JwtErrorKind::InvalidEddsaKey
            | JwtErrorKind::InvalidRsaKey(_)
            | JwtErrorKind::InvalidKeyFormat => TokenError::UnknownKey,
            _ => TokenError::Malformed,
        }
    }
}

fn static_claim(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "sub" => "sub",
        "aud" => "aud",
        _ => "claim",
    }
}
