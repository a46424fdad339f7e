//! `GET /health`: liveness for load balancers and the black-box tests. It answers as soon
//! as the HTTP listener is up and reads only flags, so it stays cheap under load.
//!
//! `{"status":"ok","store":"up"}`; with the shared store unreachable
//! `{"status":"degraded","store":"down"}`, still 200: the node goes on serving calls to
//! the clients it knows, only REGISTER gets 503. In a cluster, `"nodes"` lists the nodes
//! alive as this one last saw the directory. After SIGTERM, `"status":"draining"` with
//! 503 until the process exits.

use hyper::{Method, Response, StatusCode};

use super::reply;
use super::{ApiState, Body};

pub(super) fn handle(method: &Method, state: &ApiState) -> Response<Body> {
    match *method {
        Method::GET | Method::HEAD => {
            let up = state.store.is_up();
            let draining = state.calls.draining(crate::time::unix_now());
            let status = match (draining, up) {
                (Some(_), _) => "draining",
                (None, true) => "ok",
                (None, false) => "degraded",
            };
            let mut body = serde_json::json!({
                "status": status,
                "store": if up { "up" } else { "down" },
            });
            let nodes = state.store.nodes();
            if !nodes.is_empty() {
                body["nodes"] = nodes.into();
            }
            // A draining node takes no new calls: a load balancer should stop sending.
            let code = match draining {
                Some(_) => StatusCode::SERVICE_UNAVAILABLE,
                None => StatusCode::OK,
            };
            reply::json(code, &body)
        }
        _ => reply::method_not_allowed("GET, HEAD"),
    }
}
