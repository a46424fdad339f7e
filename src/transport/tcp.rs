//! TCP and TLS: an accept loop with connection caps, and one task per connection that
//! frames the byte stream (RFC 3261 §18.3) and writes what the shards send back on it.
//! TLS (RFC 3261 §26, RFC 5630) is the same over a rustls stream, its handshake done in
//! the connection's task under a deadline.
//!
//! A framing error closes the connection (RFC 4475 §3.1.2.3: once a length is wrong,
//! nothing after it can be found). Deadlines that bytes trickling in do not extend end
//! slow-loris peers: the first complete message (or keep-alive) within
//! [`FIRST_MESSAGE_TIMEOUT`] of the connection, each message within
//! [`MESSAGE_TIMEOUT`] of its first byte; between messages a connection may stay quiet
//! for `idle_timeout` (a registered phone's flow, kept by its keep-alives).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::{Connections, Inbound};
use crate::metrics::ConnectionRefusal;
use crate::sip::msg::{Frame, Limits, StreamFramer};
use crate::sip::{ConnectionId, Peer, Transport};

/// Settings for stream connections.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    /// Close a connection that sends nothing for this long.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Message size caps.
    pub limits: Limits,
}

/// A new connection's first complete message (or CRLF keep-alive) is due within this.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A message is due complete this long after its first byte arrived.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection whose peer stopped sending still delivers queued replies.
const LINGER: Duration = Duration::from_millis(500);

/// Messages queued for one connection before we consider it stuck.
const WRITE_QUEUE: usize = 256;

/// Binds a TCP listener with SO_REUSEADDR (so a restart does not wait out TIME_WAIT).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// How long a TLS or WebSocket handshake may take.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection accepted and admitted under the caps: its socket, address, id, and the
/// queue of what the shards send on it.
pub(super) struct Admitted {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub id: ConnectionId,
    pub outgoing: mpsc::Receiver<Bytes>,
}

/// The next connection on `listener` that the caps admit (refusals are logged and the
/// socket closed); accept errors back off instead of spinning.
pub(super) async fn accept_admitted(
    listener: &TcpListener,
    conns: &Connections,
    settings: &TcpSettings,
) -> Admitted {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (tx, outgoing) = mpsc::channel(WRITE_QUEUE);
        match conns.admit(
            addr.ip(),
            tx,
            settings.max_connections,
            settings.max_connections_per_ip,
        ) {
            Ok(id) => {
                let _ = stream.set_nodelay(true);
                return Admitted {
                    stream,
                    addr,
                    id,
                    outgoing,
                };
            }
            // Counted, and logged at debug only: a flood of refusals must not flood the log.
            Err(why) => tracing::debug!(peer = %addr, ?why, "connection refused by cap"),
        }
    }
}

/// Accepts connections forever, handing each to the shard `id % shards.len()`; with
/// `tls`, each is a TLS connection (SIP over TLS).
pub async fn accept_loop(
    listener: TcpListener,
    shards: Vec<mpsc::Sender<Inbound>>,
    conns: Arc<Connections>,
    settings: TcpSettings,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let Admitted {
            stream,
            addr,
            id,
            outgoing: rx,
        } = accept_admitted(&listener, &conns, &settings).await;
        let shard = shards[(id as usize) % shards.len()].clone();
        let conns = conns.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let peer = Peer::tcp(addr, id);
                    connection(stream, peer, shard, rx, settings, conns.clone()).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let peer = Peer::stream(Transport::Tls, addr, id);
                            connection(tls, peer, shard, rx, settings, conns.clone()).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(peer = %addr, error = %e, "tls handshake failed")
                        }
                        Err(_) => tracing::info!(peer = %addr, "tls handshake timed out"),
                    }
                }
            }
            conns.remove(id, addr.ip());
            tracing::debug!(peer = %addr, conn = id, "stream connection closed");
        });
    }
}

async fn connection<S>(
    stream: S,
    peer: Peer,
    shard: mpsc::Sender<Inbound>,
    mut outgoing: mpsc::Receiver<Bytes>,
    settings: TcpSettings,
    conns: Arc<Connections>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let addr = peer.addr;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (pong_tx, mut pong_rx) = mpsc::channel::<()>(4);
    let write = async move {
        // The pong channel closes when the reader ends (EOF, half-close); replies may still
        // be on their way from a shard then, so only the reply queue ends the writer.
        let mut pongs_open = true;
        loop {
            let bytes = tokio::select! {
                b = outgoing.recv() => match b { Some(b) => b, None => break },
                p = pong_rx.recv(), if pongs_open => match p {
                    Some(()) => Bytes::from_static(b"\r\n"),
                    None => {
                        pongs_open = false;
                        continue;
                    }
                },
            };
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    let read = async move {
        let mut framer = StreamFramer::new(settings.limits);
        let connected = tokio::time::Instant::now();
        // The last complete frame (message or keep-alive), and when the one being read
        // started arriving.
        let mut last_frame: Option<tokio::time::Instant> = None;
        let mut partial_since: Option<tokio::time::Instant> = None;
        loop {
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(msg))) => {
                        last_frame = Some(tokio::time::Instant::now());
                        partial_since = None;
                        if shard
                            .send(Inbound {
                                parsed: Ok(msg),
                                from: peer,
                            })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong.
                    Ok(Some(Frame::KeepAlive)) => {
                        last_frame = Some(tokio::time::Instant::now());
                        partial_since = None;
                        let _ = pong_tx.try_send(());
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(peer = %addr, error = %e, class = e.class(), "closing tcp connection: bad framing");
                        return;
                    }
                }
            }
            let buf = framer.buffer();
            if buf.is_empty() {
                partial_since = None;
            } else if partial_since.is_none() {
                partial_since = Some(tokio::time::Instant::now());
            }
            let (deadline, why) = match (last_frame, partial_since) {
                (None, _) => (
                    connected + FIRST_MESSAGE_TIMEOUT,
                    Some(ConnectionRefusal::FirstMessageDeadline),
                ),
                (Some(_), Some(started)) => (
                    started + MESSAGE_TIMEOUT,
                    Some(ConnectionRefusal::MessageDeadline),
                ),
                (Some(last), None) => (last + settings.idle_timeout, None),
            };
            buf.reserve(4096);
            match tokio::time::timeout_at(deadline, reader.read_buf(buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => {
                    tracing::debug!(peer = %addr, ?why, "closing tcp connection at its deadline (none: idle)");
                    if let Some(why) = why {
                        conns.closed_at_deadline(why);
                    }
                    return;
                }
            }
        }
    };
    // When the reader ends (EOF, a half-close, a framing fault, idle) the connection is
    // over, but replies to what was already read may still be on their way from a shard:
    // let the writer run a moment longer before the socket closes.
    tokio::pin!(write);
    tokio::select! {
        () = read => {
            let _ = tokio::time::timeout(LINGER, &mut write).await;
        }
        () = &mut write => {}
    }
}
