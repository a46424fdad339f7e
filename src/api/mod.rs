//! The HTTP side: the Twilio-shaped REST API, `/metrics` and `/health`. Plain hyper 1 over
//! HTTP/1.1, one task per connection.
//!
//! - `accounts`: `/2010-04-01/Accounts/{AccountSid}/…` (Basic auth, `auth`), dispatching
//!   to `clients` (`Clients.json`, `Clients/{Identity}.json`).
//! - `prometheus`: `GET /metrics`, no auth.
//! - `health`: `GET /health`, no auth.
//! - `reply` (JSON and Twilio error documents), `percent`, `time` (RFC 3339): helpers.
//!
//! Handlers only read shared state (`ApiState`) and never hold a lock across an `.await`:
//! `respond` is synchronous.

mod accounts;
mod auth;
mod clients;
mod health;
mod prometheus;
mod reply;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::Live;
use crate::metrics::Metrics;
use crate::registrar::location::LocationStore;
use crate::registrar::presence::Presence;

/// Response body type of every handler.
pub type Body = Full<Bytes>;

/// What the HTTP side reads: the same instances the SIP side writes.
pub struct ApiState {
    pub live: Arc<Live>,
    pub store: Arc<dyn LocationStore>,
    pub presence: Arc<Presence>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("live", &self.live)
            .field("presence", &self.presence)
            .finish_non_exhaustive()
    }
}

/// Serve HTTP on `listener` until the task is dropped (the server aborts it on shutdown).
///
/// Accept errors do not end it: a connection reset before we took it is skipped, and
/// anything else (typically EMFILE, out of file descriptors) is logged and retried after a
/// short pause, because it passes once other connections close and a dead API would be
/// worse. The `Result` leaves room for startup work that can fail.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let resp = respond(&req, &state, crate::engine::unix_now());
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "http connection ended with error");
            }
        });
    }
}

/// Errors about the one connection being accepted, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// Answer one request at `now` (unix seconds). Every route so far is a read that needs
/// only the request head, so the body is never read.
pub fn respond<B>(req: &Request<B>, state: &ApiState, now: u64) -> Response<Body> {
    let path = req.uri().path();
    match path {
        "/health" => health::handle(req.method()),
        "/metrics" => prometheus::handle(req.method(), state),
        _ if path.starts_with(accounts::PREFIX) => {
            accounts::handle(req.method(), req.uri(), req.headers(), state, now)
        }
        _ => reply::not_found(path),
    }
}

#[cfg(test)]
mod tests;
