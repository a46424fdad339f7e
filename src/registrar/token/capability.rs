//! The legacy Twilio Client capability token's `scope` claim: space-separated scope URIs,
//! `scope:client:incoming?clientName=<name>` and
//! `scope:client:outgoing?appSid=AP…[&clientName=<name>][&appParams=<urlencoded k=v&…>]`.
//! Other scopes (`scope:stream:subscribe`, …) are ignored.

use super::TokenError;
use super::grant::OutgoingGrant;

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scopes {
    /// The incoming client name, when the token allows incoming calls.
    pub incoming: Option<String>,
    /// The outgoing client name, when given.
    pub outgoing_name: Option<String>,
    pub outgoing: Option<OutgoingGrant>,
}

impl Scopes {
    /// The identity: the incoming client name, else the outgoing one. Two different names
    /// would make the token mean two clients at once, so that is malformed. (Twilio's
    /// helpers always write the same name in both.)
    pub fn identity(&self) -> Result<Option<&str>, TokenError> {
        match (&self.incoming, &self.outgoing_name) {
            (Some(a), Some(b)) if a != b => Err(TokenError::Malformed),
            (Some(name), _) | (None, Some(name)) => Ok(Some(name)),
            (None, None) => Ok(None),
        }
    }
}

pub(super) fn parse_scopes(scope: &str) -> Result<Scopes, TokenError> {
    let mut out = Scopes::default();
    for uri in scope.split_ascii_whitespace() {
        let (name, query) = uri.split_once('?').unwrap_or((uri, ""));
        match name {
            "scope:client:incoming" => {
                if let Some(client) = param(query, "clientName") {
                    set_once(&mut out.incoming, client)?;
                }
            }
            "scope:client:outgoing" => {
                let Some(app) = param(query, "appSid") else {
                    // Without an application the scope allows nothing.
                    continue;
                };
                if let Some(client) = param(query, "clientName") {
                    set_once(&mut out.outgoing_name, client)?;
                }
                // appParams is itself a urlencoded `k=v&…` string, encoded once more.
                let params = param(query, "appParams")
                    .map(|p| {
                        form_urlencoded::parse(p.as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                if out.outgoing.is_some() {
                    return Err(TokenError::Malformed);
                }
                out.outgoing = Some(OutgoingGrant {
                    application_sid: app,
                    params,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn set_once(slot: &mut Option<String>, value: String) -> Result<(), TokenError> {
    match slot {
        Some(existing) if *existing != value => Err(TokenError::Malformed),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}
