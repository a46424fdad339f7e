//! The HTTP side: the Twilio-shaped REST API, `/metrics` and `/health`. Plain hyper 1 over
//! HTTP/1.1, one task per connection.
//!
//! - `accounts`: `/2010-04-01/Accounts/{AccountSid}/…` (Basic auth, `auth`), dispatching
//!   to `clients` (`Clients.json`, `Clients/{Identity}.json`) and `calls` (`Calls.json`,
//!   `Calls/{CallSid}.json`: list, fetch, create, modify) and `recordings`
//!   (`Recordings.json`, `Recordings/{Sid}[.json|.wav]`, `Calls/{CallSid}/Recordings.json`:
//!   list, fetch, audio, delete), `conferences` (`Conferences.json`, `Conferences/{Sid}.json`,
//!   `…/Participants.json`, `…/Participants/{CallSid}.json`) and `queues` (`Queues.json`,
//!   `Queues/{Sid}.json`, `…/Members.json`, `…/Members/{CallSid|Front}.json`).
//! - `prometheus`: `GET /metrics`, no auth.
//! - `health`: `GET /health`, no auth.
//! - `reply` (JSON and Twilio error documents), `percent`, `time` (RFC 3339): helpers.
//!
//! Handlers only touch shared state (`ApiState`) through short std locks and never hold one
//! across an `.await`: `respond` is synchronous. The one await, reading a request body
//! (form-encoded `POST`s, capped at `MAX_BODY_BYTES`), happens in `serve` before it.
//! Serving a recording's audio reads its file synchronously (capped, see `recordings`).

mod accounts;
mod auth;
mod bans;
mod calls;
mod clients;
pub mod cluster;
mod conferences;
mod form;
mod health;
mod prometheus;
mod queues;
mod recordings;
mod reply;
mod streams;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::call::recordings::Recordings;
use crate::call::registry::CallRegistry;
use crate::config::Live;
use crate::metrics::{ConnectionRefusal, Metrics};
use crate::registrar::location::LocationStore;
use crate::registrar::presence::Presence;

/// Response body type of every handler.
pub type Body = Full<Bytes>;

/// Largest request body read. Twilio's biggest form (`POST Calls.json` with a 4000-char
/// `Twiml`, percent-encoded) fits several times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A client has this long from connecting (or, on a kept-alive connection, from its first
/// byte) to finish a request head; then the connection is closed. Without it a client
/// trickling a head byte by byte, or never finishing it, held its connection forever
/// (slow-loris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP connections open at once, in all and from one address: past either, a new
/// connection gets 503 with Retry-After and is closed, so one source cannot take every
/// descriptor the process has.
pub const MAX_CONNECTIONS: usize = 1024;
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 128;

/// What the HTTP side reads: the same instances the SIP side writes.
pub struct ApiState {
    pub live: Arc<Live>,
    pub store: Arc<dyn LocationStore>,
    pub presence: Arc<Presence>,
    pub metrics: Arc<Metrics>,
    /// Live and recent calls; also how REST creates (`originate`) and modifies (`send`)
    /// them.
    pub calls: Arc<CallRegistry>,
    /// Finished recordings (the call service adds them; REST lists, serves, deletes).
    pub recordings: Arc<Recordings>,
    /// Conferences (`Conferences.json`); their participants are told through `calls`.
    pub conferences: Arc<crate::call::conferences::Conferences>,
    /// Queues (`Queues.json`); dequeuing a member tells its call through `calls`.
    pub queues: Arc<crate::call::queues::Queues>,
    /// The media plane, for its port-pool gauges on `/metrics` (`None` in tests without
    /// one).
    pub media: Option<Arc<crate::media::MediaEngine>>,
    /// What places REST-created calls (`POST Calls.json`); `None`: 503, no outbound calls.
    pub originator: Option<Arc<dyn crate::call::Originator>>,
    /// Failed credentials and bans, for `/metrics` and `/bans.json`.
    pub guard: Arc<crate::registrar::bans::AuthGuard>,
    /// The other nodes, with the shared store (`None`: one switch).
    pub cluster: Option<cluster::ApiCluster>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("live", &self.live)
            .field("presence", &self.presence)
            .field("calls", &self.calls)
            .field("recordings", &self.recordings)
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
    let open = Arc::new(OpenConnections::default());
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
        let slot = match OpenConnections::take(&open, peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                let listener = crate::metrics::Listener::Http;
                state.metrics.connection_refused(listener, why);
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req: Request<Incoming>| {
                let state = Arc::clone(&state);
                async move {
                    let resp = match read_body(req).await {
                        Ok(req) => cluster::respond(&req, &state, crate::time::unix_now()).await,
                        Err(resp) => resp,
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "http connection ended with error");
            }
        });
    }
}

/// The HTTP connections open now, in all and per source address.
#[derive(Default)]
struct OpenConnections {
    counts: std::sync::Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_source: std::collections::HashMap<std::net::IpAddr, usize>,
}

/// One open connection's place; given back when dropped.
struct ConnectionSlot {
    open: Arc<OpenConnections>,
    source: std::net::IpAddr,
}

impl OpenConnections {
    fn take(
        open: &Arc<OpenConnections>,
        source: std::net::IpAddr,
    ) -> Result<ConnectionSlot, ConnectionRefusal> {
        let mut counts = open.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= MAX_CONNECTIONS {
            return Err(ConnectionRefusal::Total);
        }
        // Checked before the entry is made, so a refusal leaves no empty entry behind.
        if counts
            .per_source
            .get(&source)
            .is_some_and(|&n| n >= MAX_CONNECTIONS_PER_SOURCE)
        {
            return Err(ConnectionRefusal::PerSource);
        }
        *counts.per_source.entry(source).or_insert(0) += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            open: Arc::clone(open),
            source,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.per_source.remove(&self.source);
            }
        }
    }
}

/// A connection past the caps: 503 with Retry-After, then closed (within a second even if
/// the client does not read).
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt as _;
    const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
        Content-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(REFUSAL)).await;
}

/// The request with its whole body, at most `MAX_BODY_BYTES`; `Err` is the answer when
/// the body is too large or cannot be read.
async fn read_body(req: Request<Incoming>) -> Result<Request<Bytes>, Response<Body>> {
    let (parts, body) = req.into_parts();
    // A declared Content-Length over the cap is refused at once, without waiting for (or
    // reading) a body we would throw away; `Limited` catches chunked bodies that grow past
    // the cap.
    if hyper::body::Body::size_hint(&body).lower() > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => Ok(Request::from_parts(parts, body.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        // The client went away or broke the framing mid-body.
        Err(_) => Err(reply::error(
            StatusCode::BAD_REQUEST,
            20001,
            "Request body could not be read".into(),
        )),
    }
}

/// 413 for a request body over `MAX_BODY_BYTES`.
fn too_large() -> Response<Body> {
    reply::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        20001,
        format!("Request body larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// Errors about the one connection being accepted, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// Answer one request at `now` (unix seconds). The body was read already (`serve`), so
/// handlers stay synchronous.
pub fn respond(req: &Request<Bytes>, state: &ApiState, now: u64) -> Response<Body> {
    let path = req.uri().path();
    match path {
        "/health" => health::handle(req.method(), state),
        "/metrics" => prometheus::handle(req.method(), state),
        "/bans.json" => bans::handle(req, state, now),
        _ if path.starts_with(accounts::PREFIX) => accounts::handle(req, state, now),
        _ => reply::not_found(path),
    }
}

#[cfg(test)]
mod tests;
