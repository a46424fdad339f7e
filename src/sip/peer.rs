//! Where a message came from or goes to. Plain data: the transport layer owns the sockets.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::msg::typed::Via;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Unreliable datagrams: the transaction layer retransmits.
    Udp,
    /// A reliable stream: no retransmission, framed by Content-Length.
    Tcp,
    /// TCP under TLS (RFC 3261 §26, RFC 5630).
    Tls,
    /// WebSocket (RFC 7118): one message per frame.
    Ws,
    /// WebSocket under TLS.
    Wss,
}

impl Transport {
    /// Every transport, in a fixed order (metrics index by it).
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// Whether the transport delivers reliably (RFC 3261 §17: timers A, E, G are not used
    /// and D, I, J, K are zero). Every one but UDP is a connection: a peer is reached down
    /// the connection it came in on.
    pub const fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// WebSocket or secure WebSocket: the signalling of web pages (RFC 7118), whose media
    /// is WebRTC (DTLS-SRTP with ICE), never plain RTP.
    pub const fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    /// The name used in Via (`UDP`, `TCP`, `TLS`, `WS`, `WSS`).
    pub const fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// The lowercase name: a URI's `transport` parameter, metrics and REST labels.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// The transport a Via names (case-insensitive), if it is one of ours.
    pub fn from_via_name(name: &str) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.via_name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_name())
    }
}

/// Identifies one accepted or opened stream connection.
pub type ConnectionId = u64;

/// The far end of a message: transport, address, and the connection for streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: Transport,
    /// The remote address.
    pub addr: SocketAddr,
    /// The stream connection, when known (responses go back on it, RFC 3261 §18.2.2).
    pub conn: Option<ConnectionId>,
    /// Our address the peer sent to, when the socket is bound to a wildcard (UDP): what
    /// we send this peer leaves from it, as the peer expects (RFC 3261 §18.2.2).
    pub local: Option<IpAddr>,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Self {
        Peer {
            transport: Transport::Udp,
            addr,
            conn: None,
            local: None,
        }
    }

    /// The same peer, known to have sent to our address `local`.
    pub fn arrived_at(self, local: Option<IpAddr>) -> Self {
        Peer { local, ..self }
    }

    /// A TCP peer on a known connection.
    pub fn tcp(addr: SocketAddr, conn: ConnectionId) -> Self {
        Peer::stream(Transport::Tcp, addr, conn)
    }

    /// A peer on a known connection of `transport` (TCP, TLS, WS, WSS).
    pub fn stream(transport: Transport, addr: SocketAddr, conn: ConnectionId) -> Self {
        Peer {
            transport,
            addr,
            conn: Some(conn),
            local: None,
        }
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2 with RFC 3581 §4).
///
/// Streams: back on the connection the request came in on. UDP: to the source address
/// when the client asked for `rport` (symmetric response routing, which is what gets
/// through NAT); otherwise to the source IP (the `received` value) at the sent-by port, or
/// 5060 when none is given.
pub fn response_destination(via: &Via<'_>, from: &Peer) -> Peer {
    if from.transport.is_reliable() || via.rport().is_some() {
        return *from;
    }
    let port = via.port.unwrap_or(5060);
    Peer {
        addr: SocketAddr::new(from.addr.ip(), port),
        ..*from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_routing() {
        let src: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let with_rport = Via::parse("SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(response_destination(&with_rport, &Peer::udp(src)).addr, src);
        let plain = Via::parse("SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK1").unwrap();
        assert_eq!(
            response_destination(&plain, &Peer::udp(src)).addr,
            "198.51.100.7:5062".parse().unwrap()
        );
        let tcp = Peer::tcp(src, 9);
        assert_eq!(response_destination(&plain, &tcp), tcp);
    }
}
