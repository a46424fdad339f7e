//! `GET /health`: liveness for load balancers and the black-box tests. It answers as soon
//! as the HTTP listener is up and reads only flags, so it stays cheap under load.
//!
//! `{"status":"ok","store":"up"}`; with the shared store unreachable
//! `{"status":"degraded","store":"down"}`, still 200: the node goes on serving calls to
//! the clients it knows, only REGISTER gets 503. In a cluster, `"nodes"` lists the nodes
//! alive as this one last saw the directory.

use hyper::{Method, Response, StatusCode};

use super::reply;
use super::{ApiState, Body};

pub(super) fn handle(method: &Method, state: &ApiState) -> Response<Body> {
    match *method {
        Method::GET | Method::HEAD => {
            let up = state.store.is_up();
            let mut body = serde_json::json!({
                "status": if up { "ok" } else { "degraded" },
                "store": if up { "up" } else { "down" },
            });
            let nodes = state.store.nodes();
            if !nodes.is_empty() {
                body["nodes"] = nodes.into();
            }
            reply::json(StatusCode::OK, &body)
        }
        _ => reply::method_not_allowed("GET, HEAD"),
    }
}
