//! Everything under `/2010-04-01/`: authenticate, check that the path's AccountSid is the
//! authenticated account, then dispatch to the resource.
//!
//! Order of checks, as Twilio: no or wrong credentials → 401 (whatever the path); another
//! account's path, or an unknown resource → 404; a known resource with a method it does
//! not take → 405.

use hyper::{HeaderMap, Method, Response, Uri};

use super::{ApiState, Body, clients, reply};

/// The API version prefix every REST path starts with.
pub(super) const PREFIX: &str = "/2010-04-01/";

pub(super) fn handle(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    state: &ApiState,
    now: u64,
) -> Response<Body> {
    let config = state.live.current();
    let Some(account) = super::auth::authenticate(headers, &config) else {
        return reply::unauthorized();
    };
    let path = uri.path();
    let Some(rest) = path
        .strip_prefix(PREFIX)
        .and_then(|p| p.strip_prefix("Accounts/"))
    else {
        return reply::not_found(path);
    };
    let (sid, resource) = rest.split_once('/').unwrap_or((rest, ""));
    if sid != account.sid {
        return reply::not_found(path);
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let route = match segments.as_slice() {
        ["Clients.json"] => Route::ClientList,
        ["Clients", file] => match file.strip_suffix(".json") {
            Some(identity) if !identity.is_empty() => Route::Client(identity),
            _ => return reply::not_found(path),
        },
        _ => return reply::not_found(path),
    };
    if !matches!(*method, Method::GET | Method::HEAD) {
        return reply::method_not_allowed("GET, HEAD");
    }
    let ctx = clients::Ctx {
        account: &account.sid,
        state,
        now,
    };
    match route {
        Route::ClientList => clients::list(&ctx, uri.query()),
        Route::Client(raw) => match crate::percent::decode(raw) {
            Some(identity) => clients::fetch(&ctx, &identity),
            None => reply::not_found(path),
        },
    }
}

enum Route<'p> {
    ClientList,
    /// The identity as it appears in the path, still percent-encoded.
    Client(&'p str),
}
