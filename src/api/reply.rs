//! Response builders: JSON bodies and Twilio-shaped error documents
//! (`{"code","message","more_info","status"}`, as api.twilio.com answers).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::Body;

/// A response with `body` and a content type.
pub(super) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(super) fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    with_type(status, "application/json", body)
}

/// `value` serialized.
pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body.into()),
        // Our documents are plain structs of strings and numbers: this does not happen.
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error".into(),
        ),
    }
}

#[derive(Serialize)]
struct ErrorDoc {
    code: u32,
    message: String,
    more_info: String,
    status: u16,
}

/// A Twilio-shaped error document.
pub(super) fn error(status: StatusCode, code: u32, message: String) -> Response<Body> {
    let doc = ErrorDoc {
        code,
        message,
        more_info: format!("https://www.twilio.com/docs/errors/{code}"),
        status: status.as_u16(),
    };
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    json_bytes(status, body.into())
}

/// 401 with a Basic challenge.
pub(super) fn unauthorized() -> Response<Body> {
    let mut resp = error(StatusCode::UNAUTHORIZED, 20003, "Authenticate".into());
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Switchboard\""),
    );
    resp
}

/// 404 naming the path, as Twilio words it.
pub(super) fn not_found(path: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        20404,
        format!("The requested resource {path} was not found"),
    )
}

/// 405 with the methods that would work.
pub(super) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        20004,
        "Method not allowed".into(),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}
