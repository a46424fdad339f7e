//! SIP over WebSocket (RFC 7118), plain or under TLS: what browsers speak.
//!
//! - The upgrade must offer the `sip` subprotocol (RFC 7118 §4.1), and the answer names it;
//!   an upgrade without it gets 400.
//! - With `[server] ws_origins`, an upgrade from another Origin gets 403: a page elsewhere
//!   cannot use its visitors' browsers on us.
//! - One WebSocket message is one SIP message (§5.2), text or binary; ours go out as text
//!   when they are UTF-8, else binary.
//! - A frame that is not a SIP message at all closes the connection, with the reason logged
//!   and sent in the Close frame; a malformed SIP message gets its 400 like any other.
//! - The connection is the flow (RFC 7118 §5, RFC 5626): requests to a client registered
//!   over it go down it; when it closes, so does the flow.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::tcp::{Admitted, HANDSHAKE_TIMEOUT, TcpSettings, accept_admitted};
use super::{Connections, Inbound};
use crate::metrics::ConnectionRefusal;
use crate::sip::msg::parse_datagram;
use crate::sip::{Peer, Transport};

/// What the upgrade checks.
#[derive(Debug, Clone, Default)]
pub struct WsPolicy {
    /// Allowed `Origin`s; empty: any.
    pub origins: Arc<[String]>,
}

/// Accepts WebSocket connections forever (under TLS with `tls`: WSS), each handed to the
/// shard `id % shards.len()`.
pub async fn accept_loop(
    listener: TcpListener,
    shards: Vec<mpsc::Sender<Inbound>>,
    conns: Arc<Connections>,
    settings: TcpSettings,
    tls: Option<TlsAcceptor>,
    policy: WsPolicy,
) {
    loop {
        let Admitted {
            stream,
            addr,
            id,
            outgoing: rx,
        } = accept_admitted(&listener, &conns, &settings).await;
        let shard = shards[(id as usize) % shards.len()].clone();
        let (conns, tls, policy) = (conns.clone(), tls.clone(), policy.clone());
        tokio::spawn(async move {
            match tls {
                None => {
                    let peer = Peer::stream(Transport::Ws, addr, id);
                    upgrade(stream, peer, shard, rx, settings, &policy, &conns).await;
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let peer = Peer::stream(Transport::Wss, addr, id);
                            upgrade(tls, peer, shard, rx, settings, &policy, &conns).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(peer = %addr, error = %e, "wss: tls handshake failed")
                        }
                        Err(_) => tracing::info!(peer = %addr, "wss: tls handshake timed out"),
                    }
                }
            }
            conns.remove(id, addr.ip());
            tracing::debug!(peer = %addr, conn = id, "websocket connection closed");
        });
    }
}

/// The upgrade's answer: the `sip` subprotocol named, or a refusal. (The result type is
/// tungstenite's `Callback`'s, large error and all.)
#[allow(clippy::result_large_err)]
fn check_upgrade(
    req: &Request,
    resp: Response,
    policy: &WsPolicy,
) -> Result<Response, ErrorResponse> {
    let refuse = |code: StatusCode, why: &str| {
        let mut r = ErrorResponse::new(Some(why.to_string()));
        *r.status_mut() = code;
        r
    };
    if !policy.origins.is_empty() {
        let origin = req
            .headers()
            .get("origin")
            .and_then(|o| o.to_str().ok())
            .unwrap_or("");
        if !policy
            .origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return Err(refuse(StatusCode::FORBIDDEN, "Origin not allowed"));
        }
    }
    let offers_sip = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("sip"));
    if !offers_sip {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the sip subprotocol is required (RFC 7118)",
        ));
    }
    let mut resp = resp;
    resp.headers_mut().insert(
        "sec-websocket-protocol",
        "sip".parse().expect("a valid header value"),
    );
    Ok(resp)
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn upgrade<S>(
    stream: S,
    peer: Peer,
    shard: mpsc::Sender<Inbound>,
    outgoing: mpsc::Receiver<Bytes>,
    settings: TcpSettings,
    policy: &WsPolicy,
    conns: &Arc<Connections>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = WebSocketConfig::default()
        .max_message_size(Some(settings.limits.max_message_bytes))
        .max_frame_size(Some(settings.limits.max_message_bytes));
    let accept = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |req: &Request, resp: Response| {
            let answer = check_upgrade(req, resp, policy);
            if let Err(e) = &answer {
                tracing::info!(peer = %peer.addr, status = %e.status(), "websocket upgrade refused");
            }
            answer
        },
        Some(config),
    );
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(ws)) => connection(ws, peer, shard, outgoing, settings, conns.clone()).await,
        Ok(Err(e)) => tracing::debug!(peer = %peer.addr, error = %e, "websocket upgrade failed"),
        Err(_) => tracing::info!(peer = %peer.addr, "websocket upgrade timed out"),
    }
}

/// Whether a frame that did not parse is still SIP (then the shard answers 400) or
/// something else (then the connection closes).
fn looks_like_sip(b: &[u8]) -> bool {
    let line = b.split(|&c| c == b'\n').next().unwrap_or(b);
    line.windows(7).any(|w| w == b"SIP/2.0")
}

async fn connection<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    peer: Peer,
    shard: mpsc::Sender<Inbound>,
    mut outgoing: mpsc::Receiver<Bytes>,
    settings: TcpSettings,
    conns: Arc<Connections>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr: SocketAddr = peer.addr;
    let (mut sink, mut stream) = ws.split();
    let (close_tx, mut close_rx) = mpsc::channel::<CloseFrame>(1);
    let write = async move {
        loop {
            let msg = tokio::select! {
                b = outgoing.recv() => match b {
                    Some(b) => match std::str::from_utf8(&b) {
                        Ok(_) => Message::Text(Utf8Bytes::try_from(b).unwrap_or_default()),
                        Err(_) => Message::Binary(b),
                    },
                    None => break,
                },
                c = close_rx.recv() => {
                    let _ = sink.send(Message::Close(c)).await;
                    break;
                }
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let read = async move {
        // The first SIP message is due soon after the handshake (as on TCP); then the flow
        // may stay quiet for `idle_timeout`. A frame trickling in does not count until it
        // is whole.
        let mut quiet_allowed = super::tcp::FIRST_MESSAGE_TIMEOUT;
        let mut first = true;
        loop {
            let next = tokio::time::timeout(quiet_allowed, stream.next()).await;
            let frame = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => {
                    tracing::info!(peer = %addr, error = %e, "closing websocket: bad frame");
                    return;
                }
                Ok(None) => return,
                Err(_) => {
                    tracing::debug!(peer = %addr, "closing websocket at its deadline");
                    if first {
                        conns.closed_at_deadline(ConnectionRefusal::FirstMessageDeadline);
                    }
                    return;
                }
            };
            let bytes = match frame {
                Message::Text(t) => Bytes::from(t),
                Message::Binary(b) => b,
                // Pings are answered by the library; a Close ends the flow.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Close(_) => return,
            };
            let parsed = parse_datagram(bytes.clone(), &settings.limits);
            if parsed.is_err() && !looks_like_sip(&bytes) {
                tracing::info!(peer = %addr, "closing websocket: a frame that is not a SIP message");
                let _ = close_tx
                    .send(CloseFrame {
                        code: CloseCode::Protocol,
                        reason: "not a SIP message".into(),
                    })
                    .await;
                return;
            }
            quiet_allowed = settings.idle_timeout;
            first = false;
            if shard.send(Inbound { parsed, from: peer }).await.is_err() {
                return;
            }
        }
    };
    tokio::pin!(write);
    tokio::select! {
        () = read => {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut write).await;
        }
        () = &mut write => {}
    }
}
