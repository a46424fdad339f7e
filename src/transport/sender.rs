//! Putting SIP bytes on the wire.
//!
//! [`SipSender::send`] never blocks: UDP sends only when the socket has room (a full socket buffer drops the
//! datagram, which retransmission recovers, as the network would) and TCP queues on the
//! connection's writer. So a call task never awaits mid-way through handling a message,
//! and its event loop stays cancel-safe. A shard uses [`SipSender::send_waiting`], which
//! waits for UDP socket space instead (back-pressure on its own peers).

use std::sync::Arc;

use super::udp::SipSocket;
use bytes::Bytes;

use super::Connections;
use crate::sip::{Peer, Transport};

/// A UDP socket (one of the SO_REUSEPORT set: they share the address, so any one sends with
/// the switch's source port) and the TCP connection table.
#[derive(Debug, Clone)]
pub struct SipSender {
    pub udp: Arc<SipSocket>,
    pub conns: Arc<Connections>,
}

impl SipSender {
    /// Sends one message; false if it was dropped (logged at debug).
    pub fn send(&self, to: &Peer, bytes: &Bytes) -> bool {
        match to.transport {
            Transport::Udp => match self.udp.try_send(to.addr, to.local, bytes) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(peer = %to.addr, error = %e, "udp send failed");
                    false
                }
            },
            // Streams (TCP, TLS, WS, WSS): the connection's writer frames it.
            _ => {
                let writer = to.conn.and_then(|id| self.conns.writer(id));
                match writer {
                    // A full queue means the peer stopped reading: drop rather than stall.
                    Some(w) => w.try_send(bytes.clone()).is_ok(),
                    None => {
                        tracing::debug!(peer = %to.addr, "tcp connection gone; message dropped");
                        false
                    }
                }
            }
        }
    }

    /// Sends one message, waiting for UDP socket space; a TCP message is queued as by
    /// [`send`](Self::send). Failures are logged.
    pub async fn send_waiting(&self, to: &Peer, bytes: &Bytes) {
        match to.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send(to.addr, to.local, bytes).await {
                    tracing::debug!(peer = %to.addr, error = %e, "udp send failed");
                }
            }
            _ => {
                if !self.send(to, bytes) {
                    tracing::warn!(peer = %to.addr, "tcp write queue full or closed; message dropped");
                }
            }
        }
    }
}
