//! SIP over UDP: sockets bound with SO_REUSEPORT, so each SIP shard owns one socket on the
//! same port and the kernel spreads datagrams across them by 4-tuple; a shard then hands
//! each message on to the shard its Call-ID hashes to (`shard.rs`), so one busy peer still
//! uses every shard.
//!
//! Datagrams come in batches (`recvmmsg`, up to [`BATCH`] per system call) with the
//! address each was sent to (IP_PKTINFO / IPV6_RECVPKTINFO), and answers leave from that
//! address: on a wildcard bind the kernel would otherwise pick the source by its routing
//! table, and a client that sent to 127.0.0.2 would get its answer from 127.0.0.1 and
//! drop it. quinn-udp does the control messages, so no `unsafe` of ours is needed here.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::Inbound;
use crate::sip::Peer;
use crate::sip::msg::{Limits, parse_datagram};

/// Receive buffer we ask for: bursts of thousands of requests per second must queue in the
/// kernel rather than be dropped while a shard is busy.
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Datagrams taken per system call. A shard parses and queues a whole batch before it
/// handles the first, so this also bounds how much a burst delays one message.
pub const BATCH: usize = 16;

/// Each slot holds the largest UDP datagram (and with GRO, several coalesced ones, which
/// the kernel keeps within 64 KiB too).
const SLOT: usize = 65_536;

/// A SIP UDP socket and the state quinn-udp keeps for it (what the kernel supports).
#[derive(Debug)]
pub struct SipSocket {
    io: UdpSocket,
    state: UdpSocketState,
}

/// Binds a non-blocking UDP socket with SO_REUSEADDR and SO_REUSEPORT, with packet info
/// on, and fragmentation left to the kernel as for any SIP socket.
pub fn bind(addr: SocketAddr) -> io::Result<SipSocket> {
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
    let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
    // quinn-udp sets the don't-fragment bit (QUIC probes the path MTU itself). SIP does
    // not: an INVITE with a large SDP over UDP must be fragmented, not refused with
    // EMSGSIZE, so the kernel's default path-MTU mode goes back on.
    use rustix::net::sockopt;
    match addr {
        SocketAddr::V4(_) => {
            sockopt::set_ip_mtu_discover(&socket, sockopt::Ipv4PathMtuDiscovery::WANT)?
        }
        SocketAddr::V6(_) => {
            sockopt::set_ipv6_mtu_discover(&socket, sockopt::Ipv6PathMtuDiscovery::WANT)?;
            // A dual-stack socket also carries IPv4-mapped traffic.
            let _ = sockopt::set_ip_mtu_discover(&socket, sockopt::Ipv4PathMtuDiscovery::WANT);
        }
    }
    Ok(SipSocket {
        io: UdpSocket::from_std(socket.into())?,
        state,
    })
}

impl SipSocket {
    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Sends one datagram now, from `source` when given (the address the peer sent to);
    /// `WouldBlock` when the socket buffer is full.
    pub fn try_send(&self, to: SocketAddr, source: Option<IpAddr>, bytes: &[u8]) -> io::Result<()> {
        let transmit = transmit(to, source, bytes);
        self.io.try_io(Interest::WRITABLE, || {
            self.state.try_send(UdpSockRef::from(&self.io), &transmit)
        })
    }

    /// Sends one datagram, waiting for socket space.
    pub async fn send(
        &self,
        to: SocketAddr,
        source: Option<IpAddr>,
        bytes: &[u8],
    ) -> io::Result<()> {
        let transmit = transmit(to, source, bytes);
        self.io
            .async_io(Interest::WRITABLE, || {
                self.state.try_send(UdpSockRef::from(&self.io), &transmit)
            })
            .await
    }
}

fn transmit(to: SocketAddr, source: Option<IpAddr>, bytes: &[u8]) -> Transmit<'_> {
    Transmit {
        destination: to,
        ecn: None,
        contents: bytes,
        segment_size: None,
        src_ip: source,
    }
}

/// One shard's UDP socket as a source of parsed messages. The shard polls [`recv`] in its
/// `select!` loop, so a datagram reaches it with no channel hop and one copy (out of the
/// batch's buffers into the `Bytes` that backs the parsed message).
///
/// [`recv`]: UdpReceiver::recv
#[derive(Debug)]
pub struct UdpReceiver {
    socket: Arc<SipSocket>,
    /// [`BATCH`] slots of [`SLOT`] bytes, for the life of the shard.
    buf: Box<[u8]>,
    meta: [RecvMeta; BATCH],
    /// Parsed datagrams of the last batch not yet handed out.
    ready: VecDeque<Inbound>,
    limits: Limits,
}

impl UdpReceiver {
    /// Receives on `socket` (one of the SO_REUSEPORT set), parsing under `limits`.
    pub fn new(socket: Arc<SipSocket>, limits: Limits) -> Self {
        UdpReceiver {
            socket,
            buf: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH],
            ready: VecDeque::with_capacity(BATCH),
            limits,
        }
    }

    /// The next datagram `admit` lets in, parsed (or rejected), with its sender. `admit`
    /// sees each datagram's raw bytes and sender before anything is copied or parsed, so
    /// a flood it refuses costs a look at its source and nothing more (parsing is most of
    /// what a datagram costs). Cancel-safe: a batch is taken off the socket and queued in
    /// one synchronous step, and the only await is the wait for readability, which takes
    /// nothing.
    pub async fn recv(&mut self, mut admit: impl FnMut(&[u8], &Peer) -> bool) -> Inbound {
        loop {
            if let Some(inbound) = self.ready.pop_front() {
                return inbound;
            }
            let socket = &self.socket;
            let (buf, meta) = (&mut self.buf, &mut self.meta);
            let received = socket
                .io
                .async_io(Interest::READABLE, || {
                    let mut slots = buf.chunks_exact_mut(SLOT);
                    let mut slices: [IoSliceMut<'_>; BATCH] = std::array::from_fn(|_| {
                        IoSliceMut::new(slots.next().expect("the buffer is BATCH slots"))
                    });
                    socket
                        .state
                        .recv(UdpSockRef::from(&socket.io), &mut slices, meta)
                })
                .await;
            match received {
                Ok(n) => self.parse_batch(n, &mut admit),
                // ICMP port-unreachable from an earlier send surfaces here on Linux.
                Err(e) => tracing::debug!(error = %e, "udp receive error"),
            }
        }
    }

    /// Parses the datagrams `admit` lets in, of the first `n` slots of the batch, into
    /// `ready`, splitting GRO-coalesced datagrams at their stride.
    fn parse_batch(&mut self, n: usize, admit: &mut impl FnMut(&[u8], &Peer) -> bool) {
        for (slot, meta) in self.buf.chunks(SLOT).zip(&self.meta).take(n) {
            let stride = meta.stride.max(1);
            let from = Peer::udp(meta.addr).arrived_at(meta.dst_ip);
            for datagram in slot[..meta.len.min(SLOT)].chunks(stride) {
                if !admit(datagram, &from) {
                    continue;
                }
                let bytes = Bytes::copy_from_slice(datagram);
                self.ready.push_back(Inbound {
                    parsed: parse_datagram(bytes, &self.limits),
                    from,
                });
            }
        }
    }
}
