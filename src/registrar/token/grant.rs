//! What a verified token allows, and how the Twilio `grants` object reads.

use serde_json::{Map, Value};

use super::TokenError;

/// The rights a verified token carries. Shared as `Arc<Grant>` (the verifier caches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The account the token belongs to (`sub` of an access token, `iss` of a capability
    /// token, the configuring account of an issuer).
    pub account_sid: String,
    /// The client identity: the registration AOR is `sip:<identity>@<realm>`.
    pub identity: String,
    /// May register for incoming calls (`grants.voice.incoming.allow == true`, or a
    /// `scope:client:incoming` capability). Without it a REGISTER gets 403.
    pub incoming: bool,
    /// May place calls through this application.
    pub outgoing: Option<OutgoingGrant>,
    /// The token's `exp` (unix seconds): a registration never outlives it.
    pub expires_at: u64,
    pub shape: TokenShape,
}

/// `grants.voice.outgoing` / `scope:client:outgoing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingGrant {
    /// `AP…`; always an application of `Grant::account_sid` (others are dropped).
    pub application_sid: String,
    /// Extra webhook parameters the token fixes (`params` / `appParams`), in token order for
    /// capability tokens, sorted by name for access and issuer tokens.
    pub params: Vec<(String, String)>,
}

/// Which of the three accepted token shapes this was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenShape {
    /// Twilio Access Token (`iss` = API key `SK…`, HS256/384/512 with the key secret).
    AccessToken,
    /// Legacy Twilio Client capability token (`iss` = `AC…`, HS256 with the auth token).
    Capability,
    /// A third-party issuer's token (ES256/EdDSA/RS256 with a configured public key).
    Issuer,
}

impl TokenShape {
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenShape::AccessToken => "access_token",
            TokenShape::Capability => "capability",
            TokenShape::Issuer => "issuer",
        }
    }
}

/// Longest identity accepted. Twilio documents 121 characters for the Voice JS SDK; third-
/// party `sub` values (e.g. `google-oauth2|…`) can be longer, so allow some room.
pub const MAX_IDENTITY_BYTES: usize = 256;

/// An identity becomes the user part of `sip:<identity>@<realm>` and appears in From/To
/// headers and webhooks (`client:<identity>`). Accept visible ASCII only, and never the
/// characters that end a URI or a quoted string (`"`, `<`, `>`, `\`), so no identity can
/// smuggle whitespace, CR/LF or header syntax. Characters such as `@`, `;` or `|` are
/// accepted: a URI writer must %-escape them in the user part, and the AOR user must be
/// unescaped before comparing it with the identity.
pub fn valid_identity(identity: &str) -> bool {
    !identity.is_empty()
        && identity.len() <= MAX_IDENTITY_BYTES
        && identity
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\'))
}

/// The Twilio `grants.voice` object: `(incoming, outgoing)`. `incoming` is true only for an
/// explicit `incoming.allow: true`.
pub(super) fn voice_grants(
    grants: Option<&Map<String, Value>>,
) -> Result<(bool, Option<OutgoingGrant>), TokenError> {
    let voice = match grants.and_then(|g| g.get("voice")) {
        None => return Ok((false, None)),
        Some(Value::Object(voice)) => voice,
        Some(_) => return Err(TokenError::Malformed),
    };
    let incoming = match voice.get("incoming") {
        None => false,
        Some(Value::Object(incoming)) => matches!(incoming.get("allow"), Some(Value::Bool(true))),
        Some(_) => return Err(TokenError::Malformed),
    };
    let outgoing = match voice.get("outgoing") {
        None => None,
        Some(Value::Object(outgoing)) => match outgoing.get("application_sid") {
            None => None,
            Some(Value::String(app)) => {
                let params = match outgoing.get("params") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Object(params)) => {
                        let mut params: Vec<(String, String)> = params
                            .iter()
                            .map(|(k, v)| (k.clone(), param_text(v)))
                            .collect();
                        // Deterministic whatever serde_json's map order is.
                        params.sort();
                        params
                    }
                    Some(_) => return Err(TokenError::Malformed),
                };
                Some(OutgoingGrant {
                    application_sid: app.clone(),
                    params,
                })
            }
            Some(_) => return Err(TokenError::Malformed),
        },
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok((incoming, outgoing))
}

/// Webhook parameters are text: strings as they are, other JSON values as JSON text.
fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `grants` as an object, when present.
pub(super) fn grants_object(
    claims: &Map<String, Value>,
) -> Result<Option<&Map<String, Value>>, TokenError> {
    match claims.get("grants") {
        None => Ok(None),
        Some(Value::Object(g)) => Ok(Some(g)),
        Some(_) => Err(TokenError::Malformed),
    }
}
