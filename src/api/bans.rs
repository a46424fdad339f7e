//! `GET /bans.json`: the sources banned now for failed credentials (`[security]`), for an
//! operator. Bans are switch-wide (an address is nobody's account), so any account's
//! Basic credentials may read the list, as `/metrics` shows their count to anyone.

use bytes::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::{ApiState, Body, reply};

pub(super) fn handle(req: &Request<Bytes>, state: &ApiState, now: u64) -> Response<Body> {
    let config = state.live.current();
    if super::auth::authenticate(req.headers(), &config).is_none() {
        return reply::unauthorized();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return reply::method_not_allowed("GET, HEAD");
    }
    let bans: Vec<_> = state
        .guard
        .list(now)
        .into_iter()
        .map(|b| {
            json!({
                "source": b.source.to_string(),
                "reason": b.reason.as_str(),
                "aor": b.aor.as_deref(),
                "until": crate::time::rfc2822(b.until),
                "seconds_left": b.until.saturating_sub(now),
            })
        })
        .collect();
    reply::json(StatusCode::OK, &json!({ "bans": bans }))
}
