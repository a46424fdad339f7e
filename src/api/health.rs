//! `GET /health`: liveness for load balancers and the black-box tests. It answers as soon
//! as the HTTP listener is up and touches nothing else, so it stays cheap under load.

use hyper::{Method, Response, StatusCode};

use super::Body;
use super::reply;

pub(super) fn handle(method: &Method) -> Response<Body> {
    match *method {
        Method::GET | Method::HEAD => reply::json_static(StatusCode::OK, r#"{"status":"ok"}"#),
        _ => reply::method_not_allowed("GET, HEAD"),
    }
}
