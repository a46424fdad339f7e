//! The Calls REST of a cluster: any node answers for every node's calls.
//!
//! Call records stay with the node that carries the call (its registry, its CDR file); a
//! node asks the others over their own REST, found in the cluster's node directory
//! (`RedisStore::peers`), forwarding the caller's own Basic credentials, so every node
//! checks them as it would its own request:
//! - `GET Calls.json`: every node's matching calls, merged newest first and paged as one
//!   list (each node is asked for the calls up to the end of the requested page);
//! - `GET` or `POST Calls/{Sid}.json` for a call this node does not have: the node that
//!   has it answers (a redirect or `Status=completed` reaches the call where it runs).
//!
//! Requests between nodes carry `X-Switchboard-Local`, answered from the node's own
//! records only, so a request is never passed on twice.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::{ApiState, Body, reply};
use crate::registrar::location::RedisStore;

/// Marks a request from another node: answer from this node's records only.
pub const LOCAL_HEADER: &str = "x-switchboard-local";

/// How long a peer may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// What the REST API needs of the cluster.
#[derive(Debug, Clone)]
pub struct ApiCluster {
    pub store: Arc<RedisStore>,
    client: reqwest::Client,
}

impl ApiCluster {
    pub fn new(store: Arc<RedisStore>) -> ApiCluster {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(PEER_TIMEOUT)
            .build()
            .unwrap_or_default();
        ApiCluster { store, client }
    }

    /// `req` as sent to `peer` (with `query` instead of its own, if given): status and body.
    async fn forward(
        &self,
        req: &Request<Bytes>,
        peer: std::net::SocketAddr,
        query: Option<&str>,
    ) -> Option<(StatusCode, Bytes)> {
        let query = query.or(req.uri().query());
        let url = match query {
            Some(q) => format!("http://{peer}{}?{q}", req.uri().path()),
            None => format!("http://{peer}{}", req.uri().path()),
        };
        let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).ok()?;
        let mut out = self.client.request(method, url).header(LOCAL_HEADER, "1");
        for name in [hyper::header::AUTHORIZATION, hyper::header::CONTENT_TYPE] {
            if let Some(v) = req.headers().get(&name) {
                out = out.header(name.as_str(), v.as_bytes());
            }
        }
        let resp = out.body(req.body().clone()).send().await.ok()?;
        let status = StatusCode::from_u16(resp.status().as_u16()).ok()?;
        Some((status, resp.bytes().await.ok()?))
    }
}

/// Which cluster-wide resource a request names.
enum Scope {
    /// `GET …/Calls.json`
    List,
    /// `GET|POST …/Calls/{Sid}.json`
    One,
}

fn scope(req: &Request<Bytes>) -> Option<Scope> {
    let path = req
        .uri()
        .path()
        .strip_prefix(super::accounts::PREFIX)?
        .strip_prefix("Accounts/")?;
    let (_, rest) = path.split_once('/')?;
    if rest == "Calls.json" && req.method() == Method::GET {
        return Some(Scope::List);
    }
    let sid = rest.strip_prefix("Calls/")?.strip_suffix(".json")?;
    let one = !sid.contains('/') && matches!(*req.method(), Method::GET | Method::POST);
    one.then_some(Scope::One)
}

/// Answers `req`, with the other nodes' calls where it names calls.
pub async fn respond(req: &Request<Bytes>, state: &ApiState, now: u64) -> Response<Body> {
    let local = super::respond(req, state, now);
    let Some(cluster) = &state.cluster else {
        return local;
    };
    if req.headers().contains_key(LOCAL_HEADER) {
        return local;
    }
    match scope(req) {
        Some(Scope::List) if local.status() == StatusCode::OK => {
            merged_list(cluster, req, state, now, local).await
        }
        // Not here (or not yet: a POST for a call another node carries).
        Some(Scope::One) if local.status() == StatusCode::NOT_FOUND => {
            for (_, peer) in cluster.store.peers().await {
                if let Some((status, body)) = cluster.forward(req, peer, None).await
                    && status != StatusCode::NOT_FOUND
                {
                    return reply::json_bytes(status, body);
                }
            }
            local
        }
        _ => local,
    }
}

/// The query with `Page` and `PageSize` replaced.
fn with_page(query: Option<&str>, page: usize, size: usize) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k != "Page" && k != "PageSize" {
            q.append_pair(&k, &v);
        }
    }
    q.append_pair("PageSize", &size.to_string());
    q.append_pair("Page", &page.to_string());
    q.finish()
}

/// A sort key for Twilio's RFC 2822 dates (`Thu, 03 Dec 2026 09:30:00 +0000`, always
/// UTC here): (year, month, day, time).
fn date_key(d: &str) -> (u32, usize, u32, String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut w = d.split_whitespace().skip(1);
    let day = w.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let month = w
        .next()
        .and_then(|m| MONTHS.iter().position(|x| *x == m))
        .unwrap_or(0);
    let year = w.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let time = w.next().unwrap_or("").to_string();
    (year, month, day, time)
}

async fn merged_list(
    cluster: &ApiCluster,
    req: &Request<Bytes>,
    state: &ApiState,
    now: u64,
    local: Response<Body>,
) -> Response<Body> {
    // (A `Full` body cannot fail.)
    let Ok(body) = local.into_body().collect().await.map(|b| b.to_bytes());
    let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
        return reply::error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "list".into());
    };
    let page = doc["page"].as_u64().unwrap_or(0) as usize;
    let size = doc["page_size"].as_u64().unwrap_or(50).max(1) as usize;
    let upto = (page + 1) * size;
    // Every node's calls up to the end of this page: the merged page is then exact.
    let query = with_page(req.uri().query(), 0, upto);
    let mut calls: Vec<Value> = Vec::new();
    let mut more = false;
    let mut widened = req.clone();
    if let Ok(uri) = format!("{}?{query}", req.uri().path()).parse() {
        *widened.uri_mut() = uri;
    }
    let own = super::respond(&widened, state, now);
    let Ok(own) = own.into_body().collect().await;
    let mut lists = vec![own.to_bytes()];
    for (_, peer) in cluster.store.peers().await {
        if let Some((StatusCode::OK, b)) = cluster.forward(req, peer, Some(&query)).await {
            lists.push(b);
        }
    }
    for list in lists {
        if let Ok(v) = serde_json::from_slice::<Value>(&list) {
            more |= v["next_page_uri"].is_string();
            if let Some(a) = v["calls"].as_array() {
                calls.extend(a.iter().cloned());
            }
        }
    }
    calls.sort_by(|a, b| {
        let key = |c: &Value| {
            (
                date_key(c["date_created"].as_str().unwrap_or("")),
                c["sid"].as_str().unwrap_or("").to_string(),
            )
        };
        key(b).cmp(&key(a))
    });
    let total = calls.len();
    let slice: Vec<Value> = calls.into_iter().skip(page * size).take(size).collect();
    let start = page * size;
    doc["end"] = Value::from(start + slice.len().saturating_sub(1));
    doc["next_page_uri"] = if more || total > upto {
        let path = req.uri().path();
        Value::from(format!(
            "{path}?{}",
            with_page(req.uri().query(), page + 1, size)
        ))
    } else {
        Value::Null
    };
    doc["calls"] = Value::Array(slice);
    reply::json(StatusCode::OK, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_sort_in_time_order() {
        let a = date_key("Wed, 02 Dec 2026 23:59:59 +0000");
        let b = date_key("Thu, 03 Dec 2026 00:00:00 +0000");
        let c = date_key("Fri, 01 Jan 2027 00:00:00 +0000");
        assert!(a < b && b < c);
    }

    #[test]
    fn pages_are_rewritten_and_filters_kept() {
        assert_eq!(
            with_page(Some("To=%2B1555&Page=3&PageSize=2"), 0, 8),
            "To=%2B1555&PageSize=8&Page=0"
        );
    }
}
