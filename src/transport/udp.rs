//! UDP sockets bound with SO_REUSEPORT, so each engine shard owns one socket on the same
//! port and the kernel spreads datagrams across them by 4-tuple (a given peer always lands
//! on the same shard, where its transactions live).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Receive buffer we ask for: bursts of thousands of requests per second must queue in the
/// kernel rather than be dropped while a shard is busy.
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Binds a non-blocking UDP socket with SO_REUSEADDR and SO_REUSEPORT.
pub fn bind(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
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
    tokio::net::UdpSocket::from_std(socket.into())
}
