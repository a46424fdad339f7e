//! `GET /health`: liveness for load balancers and the black-box tests. It answers as soon
//! as the HTTP listener is up and touches nothing else, so it stays cheap under load.

use bytes::Bytes;
use hyper::{Method, Response, StatusCode};

use super::{Body, json};

pub(super) fn handle(method: &Method) -> Response<Body> {
    match *method {
        Method::GET | Method::HEAD => json(StatusCode::OK, r#"{"status":"ok"}"#),
        _ => {
            let mut resp = json(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"code":20004,"message":"Method not allowed","status":405}"#,
            );
            resp.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            resp
        }
    }
}

/// Body of the 404 every unknown path gets, shaped like Twilio's error documents.
pub(super) const NOT_FOUND: Bytes = Bytes::from_static(
    br#"{"code":20404,"message":"The requested resource was not found","status":404}"#,
);
