//! Bearer tokens for REGISTER (RFC 8898 `Authorization: Bearer <jwt>`).
//!
//! Three shapes are accepted, so tokens minted by Twilio's own helper libraries work
//! unchanged (`reference/twiml-and-twilio-client.md` §2):
//!
//! - **Access Token** (`TokenShape::AccessToken`): header `cty: twilio-fpa;v=1`, `iss` = an
//!   API key sid (`SK…`), `sub` = the key's account, signed with the key's `secret` using
//!   HS256, HS384 or HS512; `grants.identity`, `grants.voice.incoming.allow`,
//!   `grants.voice.outgoing.{application_sid, params}`.
//! - **Capability token** (`TokenShape::Capability`, legacy twilio.js 1.x): `iss` = the
//!   account sid, HS256 with the account's `auth_token`, `scope` =
//!   `scope:client:incoming?clientName=…` / `scope:client:outgoing?appSid=…&…`.
//! - **Issuer token** (`TokenShape::Issuer`): `iss` = a `[[accounts.issuers]]` entry, signed
//!   with one of its public keys (ES256, EdDSA, RS256 as configured); `sub` is the identity;
//!   optional `grants` in the Twilio shape. Incoming calls need an explicit
//!   `grants.voice.incoming.allow: true` here too: an issuer token without it authenticates
//!   the client but grants no registration (the registrar answers 403).
//!
//! The shape is chosen from the unverified `iss` (an API key sid, then an account sid,
//! then an issuer); the key and its allowed algorithms then come from the config only, and
//! `jsonwebtoken::decode` checks the signature with exactly those algorithms (so `none`,
//! HS/RS confusion and HS tokens from issuers are refused). A `kid` is only a key into the
//! issuer's configured keys. `exp` is required and checked, `nbf` when present, both against
//! the `now` passed in, with `LEEWAY_SECS` of leeway. An `aud`, when present, must name this
//! switch's realm. Tokens signed with a public key are cached by SHA-256 until they expire
//! (HMAC-signed ones are cheaper to check again than to keep: `worth_caching`).

mod cache;
mod capability;
mod error;
mod grant;
mod keys;
mod mint;
mod peek;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::Config;

pub use error::TokenError;
pub use grant::{Grant, MAX_IDENTITY_BYTES, OutgoingGrant, TokenShape, valid_identity};
pub use mint::mint_access_token;

use keys::Keys;
use peek::Peeked;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The `cty` header of Twilio Access Tokens.
pub const ACCESS_TOKEN_CTY: &str = "twilio-fpa;v=1";

/// Checks bearer tokens against one config. Build a new one when the config changes (its
/// cache goes with it, so a removed key stops working at once). `Send + Sync`; share it in
/// an `Arc`.
pub struct TokenVerifier {
    keys: Keys,
    realm: String,
    cache: cache::Cache,
    /// `[registrar] max_token_lifetime_secs`.
    max_lifetime: u64,
}

impl std::fmt::Debug for TokenVerifier {
    /// Counts only: never a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("api_keys", &self.keys.api_keys.len())
            .field("accounts", &self.keys.accounts.len())
            .field("issuers", &self.keys.issuers.len())
            .field("realm", &self.realm)
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// The key chosen for a token, before its signature is checked.
struct Resolved<'a> {
    shape: TokenShape,
    account: &'a str,
    key: &'a jsonwebtoken::DecodingKey,
    validation: &'a jsonwebtoken::Validation,
}

impl TokenVerifier {
    /// Loads every key (API key secrets, auth tokens, issuer PEMs and JWKS files). Errors
    /// name the account and issuer at fault.
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Self::with_cache_capacity(cfg, cache::DEFAULT_CAPACITY)
    }

    fn with_cache_capacity(cfg: &Config, capacity: usize) -> Result<Self, String> {
        Ok(TokenVerifier {
            keys: Keys::load(cfg)?,
            realm: cfg.server.realm.clone(),
            cache: cache::Cache::new(capacity),
            max_lifetime: cfg.registrar.max_token_lifetime_secs,
        })
    }

    /// Verifies `token` (the text after `Bearer `) at unix time `now_unix`.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Arc<Grant>, TokenError> {
        if token.is_empty() || token.len() > peek::MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        // Only tokens signed with a public-key algorithm are cached (`worth_caching`); with
        // no issuer configured there are none, and the token is not even hashed.
        let cache_key = (!self.keys.issuers.is_empty()).then(|| cache::key(token));
        if let Some(key) = &cache_key
            && let Some(hit) = self.cache.get(key, now_unix)
        {
            return hit;
        }
        let peeked = peek::peek(token)?;
        let resolved = self.resolve(&peeked)?;

        // Time first: a stale token costs no signature check.
        if now_unix > peeked.exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired);
        }
        let not_before = peeked.nbf.unwrap_or(0);
        if not_before > now_unix.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::NotYetValid);
        }
        // A bounded lifetime, from its issue time when it states one and from now in any
        // case (a token without `iat` could otherwise claim any lifetime).
        let issued = match peeked.claims.get("iat") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or(TokenError::Malformed)?),
        };
        let too_long = |from: u64| peeked.exp.saturating_sub(from) > self.max_lifetime;
        if issued.is_some_and(too_long) || too_long(now_unix.saturating_add(LEEWAY_SECS)) {
            return Err(TokenError::LifetimeTooLong);
        }

        jsonwebtoken::decode::<serde::de::IgnoredAny>(token, resolved.key, resolved.validation)
            .map_err(|e| TokenError::from_jwt(&e))?;

        // From here on the claims are the signed ones.
        let grant = Arc::new(self.grant(&peeked, &resolved)?);
        if let Some(key) = cache_key
            && worth_caching(peeked.alg)
        {
            self.cache
                .insert(key, Arc::clone(&grant), not_before, now_unix);
        }
        Ok(grant)
    }

    /// Verified tokens currently cached.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    fn resolve<'a>(&'a self, p: &Peeked) -> Result<Resolved<'a>, TokenError> {
        let resolved = if let Some(k) = self.keys.api_keys.get(&p.iss) {
            Resolved {
                shape: TokenShape::AccessToken,
                account: &k.account,
                key: &k.key,
                validation: &k.validation,
            }
        } else if let Some((sid, a)) = self.keys.accounts.get_key_value(&p.iss) {
            Resolved {
                shape: TokenShape::Capability,
                account: sid,
                key: &a.key,
                validation: &a.validation,
            }
        } else if let Some(issuer) = self.keys.issuers.get(&p.iss) {
            // Never an HMAC token from an issuer, whatever key the kid names.
            if p.alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                return Err(TokenError::AlgorithmNotAllowed);
            }
            let key = issuer.key(p.kid.as_deref()).ok_or(TokenError::UnknownKey)?;
            Resolved {
                shape: TokenShape::Issuer,
                account: &issuer.account,
                key: &key.key,
                validation: &key.validation,
            }
        } else if p.iss.starts_with("AC") {
            return Err(TokenError::UnknownAccount);
        } else {
            // An unknown API key sid or issuer: nothing here could check it.
            return Err(TokenError::UnknownKey);
        };
        if !resolved.validation.algorithms.contains(&p.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        Ok(resolved)
    }

    fn grant(&self, p: &Peeked, r: &Resolved<'_>) -> Result<Grant, TokenError> {
        self.check_audience(&p.claims)?;
        let claims = &p.claims;
        let (identity, incoming, outgoing) = match r.shape {
            TokenShape::AccessToken => {
                match claims.get("sub") {
                    Some(Value::String(sub)) if sub == r.account => {}
                    // Another account's sid, or one not configured at all.
                    Some(Value::String(_)) => return Err(TokenError::UnknownAccount),
                    Some(_) => return Err(TokenError::Malformed),
                    None => return Err(TokenError::MissingClaim("sub")),
                }
                let grants = grant::grants_object(claims)?;
                let identity = peek::optional_string(grants.unwrap_or(&Map::new()), "identity")?;
                let (incoming, outgoing) = grant::voice_grants(grants)?;
                (identity, incoming, outgoing)
            }
            TokenShape::Capability => {
                let scope = match claims.get("scope") {
                    Some(Value::String(scope)) => scope,
                    Some(_) => return Err(TokenError::Malformed),
                    None => return Err(TokenError::MissingClaim("scope")),
                };
                let scopes = capability::parse_scopes(scope)?;
                let identity = scopes.identity()?.map(str::to_owned);
                (identity, scopes.incoming.is_some(), scopes.outgoing)
            }
            TokenShape::Issuer => {
                let identity = peek::optional_string(claims, "sub")?;
                let grants = grant::grants_object(claims)?;
                // `sub` is the identity; a different `grants.identity` is contradictory.
                if let Some(named) =
                    peek::optional_string(grants.unwrap_or(&Map::new()), "identity")?
                    && Some(&named) != identity.as_ref()
                {
                    return Err(TokenError::Malformed);
                }
                let (incoming, outgoing) = grant::voice_grants(grants)?;
                (identity, incoming, outgoing)
            }
        };
        let identity = match identity {
            Some(identity) if valid_identity(&identity) => identity,
            _ => return Err(TokenError::NoIdentity),
        };
        Ok(Grant {
            account_sid: r.account.to_owned(),
            identity,
            incoming,
            outgoing: self.own_application(r.account, outgoing),
            expires_at: p.exp,
            shape: r.shape,
        })
    }

    /// An `aud`, when present, must name this switch (its realm): a token minted for some
    /// other service by the same issuer is not for us.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        let ours = match claims.get("aud") {
            None => true,
            Some(Value::String(aud)) => *aud == self.realm,
            Some(Value::Array(auds)) => {
                let mut ours = false;
                for aud in auds {
                    match aud {
                        Value::String(aud) => ours |= *aud == self.realm,
                        _ => return Err(TokenError::Malformed),
                    }
                }
                ours
            }
            Some(_) => return Err(TokenError::Malformed),
        };
        if ours {
            Ok(())
        } else {
            Err(TokenError::UnknownAccount)
        }
    }

    /// Keeps an outgoing grant only when it names an application of the token's own account,
    /// so a token can never start another tenant's application.
    fn own_application(
        &self,
        account: &str,
        outgoing: Option<OutgoingGrant>,
    ) -> Option<OutgoingGrant> {
        let outgoing = outgoing?;
        let own = self
            .keys
            .accounts
            .get(account)
            .is_some_and(|a| a.applications.contains(&outgoing.application_sid));
        if own {
            Some(outgoing)
        } else {
            tracing::debug!(
                account,
                application = %outgoing.application_sid,
                "token's outgoing grant names no application of its account; ignored"
            );
            None
        }
    }
}

/// Whether a verified token signed with `alg` is kept for its refreshes. A public-key
/// check (ES256, RS256, EdDSA) costs about 215 µs against 0.2 µs for a cache hit, so those
/// are cached. An HMAC check (Twilio Access Tokens, capability tokens) costs about 4 µs,
/// a tenth of a REGISTER, while an entry would hold about 270 B per registered client
/// for the token's lifetime: a quarter of what a registration costs in all. Figures from
/// `cargo bench --bench token_verify` and `benches/register/run.py`'s memory step.
fn worth_caching(alg: jsonwebtoken::Algorithm) -> bool {
    use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
    !matches!(alg, HS256 | HS384 | HS512)
}
