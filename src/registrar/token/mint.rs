//! Minting Twilio-shaped Access Tokens (`switchboard token`, tests, examples). The output is
//! what twilio-node's `AccessToken` + `VoiceGrant` produce: header
//! `{alg: HS256, typ: JWT, cty: twilio-fpa;v=1}`, claims `jti`, `grants`, `iat`, `exp`,
//! `iss`, `sub`.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::{ACCESS_TOKEN_CTY, TokenError, valid_identity};
use crate::config::{Account, ApiKey};

/// Signs an access token for `identity` with `key` (which must be one of `account`'s API
/// keys), valid from `now_unix` for `ttl_secs`. `incoming` grants registration;
/// `outgoing_app` (an application sid; the caller checks it belongs to the account) grants
/// outgoing calls.
pub fn mint_access_token(
    account: &Account,
    key: &ApiKey,
    identity: &str,
    ttl_secs: u64,
    incoming: bool,
    outgoing_app: Option<&str>,
    now_unix: u64,
) -> Result<String, TokenError> {
    if !account.api_keys.iter().any(|k| k.sid == key.sid) {
        return Err(TokenError::UnknownKey);
    }
    if !valid_identity(identity) {
        return Err(TokenError::NoIdentity);
    }
    let exp = now_unix
        .checked_add(ttl_secs)
        .ok_or(TokenError::Malformed)?;

    let mut voice = Map::new();
    if incoming {
        voice.insert("incoming".to_owned(), json!({ "allow": true }));
    }
    if let Some(app) = outgoing_app {
        voice.insert("outgoing".to_owned(), json!({ "application_sid": app }));
    }
    let mut grants = Map::new();
    grants.insert("identity".to_owned(), Value::from(identity));
    if !voice.is_empty() {
        grants.insert("voice".to_owned(), Value::Object(voice));
    }
    let claims = json!({
        "jti": format!("{}-{now_unix}", key.sid),
        "grants": grants,
        "iat": now_unix,
        "exp": exp,
        "iss": key.sid,
        "sub": account.sid,
    });
    let mut header = Header::new(Algorithm::HS256);
    header.cty = Some(ACCESS_TOKEN_CTY.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(key.secret.as_bytes()),
    )
    .map_err(|_| TokenError::Malformed)
}
