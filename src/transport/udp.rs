//! UDP sockets bound with SO_REUSEPORT, so each SIP shard owns one socket on the same
//! port and the kernel spreads datagrams across them by 4-tuple (a given peer always lands
//! on the same shard, where its transactions live).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::Inbound;
use crate::sip::Peer;
use crate::sip::msg::{Limits, parse_datagram};

/// Receive buffer we ask for: bursts of thousands of requests per second must queue in the
/// kernel rather than be dropped while a shard is busy.
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Binds a non-blocking UDP socket with SO_REUSEADDR and SO_REUSEPORT.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // The kernel silently caps this at net.core.rmem_max (about 208 KiB by default); a
    // smaller buffer drops bursts in the kernel, so say so once at start.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    if let Ok(got) = socket.recv_buffer_size()
        && got < RECV_BUFFER
    {
        tracing::warn!(
            requested = RECV_BUFFER,
            got,
            "UDP receive buffer capped by the kernel; raise net.core.rmem_max for load bursts"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// One shard's UDP socket as a source of parsed messages. The shard polls [`recv`] in its
/// `select!` loop, so a datagram reaches it with no channel hop and one copy (out of the
/// receive buffer into the `Bytes` that backs the parsed message).
///
/// [`recv`]: UdpReceiver::recv
#[derive(Debug)]
pub struct UdpReceiver {
    socket: Arc<UdpSocket>,
    /// One receive buffer for the life of the shard.
    buf: Box<[u8]>,
    limits: Limits,
}

impl UdpReceiver {
    /// Receives on `socket` (one of the SO_REUSEPORT set), parsing under `limits`.
    pub fn new(socket: Arc<UdpSocket>, limits: Limits) -> Self {
        UdpReceiver {
            socket,
            buf: vec![0u8; 65_536].into_boxed_slice(),
            limits,
        }
    }

    /// The next datagram, parsed (or rejected), with its sender. Cancel-safe: the only
    /// await is `recv_from`, which takes nothing off the socket when cancelled.
    pub async fn recv(&mut self) -> Inbound {
        loop {
            match self.socket.recv_from(&mut self.buf).await {
                Ok((n, src)) => {
                    let bytes = Bytes::copy_from_slice(&self.buf[..n]);
                    return Inbound {
                        parsed: parse_datagram(bytes, &self.limits),
                        from: Peer::udp(src),
                    };
                }
                // ICMP port-unreachable from an earlier send surfaces here on Linux.
                Err(e) => tracing::debug!(error = %e, "udp receive error"),
            }
        }
    }
}
