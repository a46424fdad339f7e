//! Sockets: UDP, TCP, TLS, WebSocket and secure WebSocket listeners that turn bytes into
//! parsed messages ([`Inbound`]) for the SIP shards, and send what the sans-IO core asks
//! for (`Output::Send`). A shard polls its own [`udp::UdpReceiver`] directly; connection
//! tasks reach it through a channel, and every connection has a writer in [`Connections`].

pub mod sender;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod ws;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::metrics::{ConnectionRefusal, Listener, Metrics};
use crate::sip::ConnectionId;
use crate::sip::Peer;
use crate::sip::msg::{Rejected, SipMessage};

/// A message (or a rejected one) that arrived on a socket, for a SIP shard.
#[derive(Debug)]
pub struct Inbound {
    /// The parse result.
    pub parsed: Result<SipMessage, Rejected>,
    /// Who sent it.
    pub from: Peer,
}

/// The open stream connections, so a shard can answer on the connection a request came in
/// on. Holds only channel handles; the lock is never held across an `.await`. Refusals
/// and closes at a deadline are counted in `metrics`.
#[derive(Debug)]
pub struct Connections {
    inner: Mutex<ConnTable>,
    metrics: Arc<Metrics>,
    /// Told the id of every connection that closes: a connection is a client's flow (RFC
    /// 5626), and what was registered over it ends with it. Whoever listens (the server,
    /// for the registrar) is above this layer, hence a channel.
    closed: Option<mpsc::UnboundedSender<ConnectionId>>,
}

#[derive(Debug)]
struct ConnTable {
    writers: HashMap<ConnectionId, mpsc::Sender<Bytes>>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: ConnectionId,
}

impl Default for ConnTable {
    fn default() -> Self {
        // Ids start at a random point: a binding that outlived this process in a shared
        // store names a connection of the previous run, and must find none here rather
        // than somebody else's.
        let start = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id(),
        );
        ConnTable {
            writers: HashMap::new(),
            per_ip: HashMap::new(),
            next_id: start & 0xffff_ffff_0000_0000,
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `tcp.max_connections` reached.
    Total,
    /// `tcp.max_connections_per_ip` reached for this address.
    PerIp,
}

impl Connections {
    /// An empty table counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Connections {
            inner: Mutex::default(),
            metrics,
            closed: None,
        }
    }

    /// The same table, sending each closed connection's id to `closed` (once, after it is
    /// forgotten here: from then on [`Connections::is_open`] says no).
    pub fn notifying(self, closed: mpsc::UnboundedSender<ConnectionId>) -> Self {
        Connections {
            closed: Some(closed),
            ..self
        }
    }

    /// Counts a connection closed at one of its deadlines.
    pub fn closed_at_deadline(&self, why: ConnectionRefusal) {
        self.metrics.connection_refused(Listener::Sip, why);
    }

    /// Admits a connection from `ip` under the caps, returning its id (a refusal is
    /// counted).
    pub fn admit(
        &self,
        ip: IpAddr,
        writer: mpsc::Sender<Bytes>,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<ConnectionId, Refused> {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if t.writers.len() >= max_total {
            self.metrics
                .connection_refused(Listener::Sip, ConnectionRefusal::Total);
            return Err(Refused::Total);
        }
        if t.per_ip.get(&ip).is_some_and(|&n| n >= max_per_ip) {
            self.metrics
                .connection_refused(Listener::Sip, ConnectionRefusal::PerSource);
            return Err(Refused::PerIp);
        }
        *t.per_ip.entry(ip).or_insert(0) += 1;
        t.next_id += 1;
        let id = t.next_id;
        t.writers.insert(id, writer);
        Ok(id)
    }

    /// Forgets a closed connection, and tells the `notifying` channel.
    pub fn remove(&self, id: ConnectionId, ip: IpAddr) {
        let known = {
            let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let known = t.writers.remove(&id).is_some();
            if known && let Some(n) = t.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    t.per_ip.remove(&ip);
                }
            }
            known
        };
        if known && let Some(closed) = &self.closed {
            // Nobody listening any more (the switch is stopping) leaves nothing to end.
            let _ = closed.send(id);
        }
    }

    /// Whether connection `id` is open (admitted and not yet removed).
    pub fn is_open(&self, id: ConnectionId) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writers
            .contains_key(&id)
    }

    /// The writer of a connection, cloned out so no lock is held while sending.
    pub fn writer(&self, id: ConnectionId) -> Option<mpsc::Sender<Bytes>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writers
            .get(&id)
            .cloned()
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writers
            .len()
    }

    /// Whether none are open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
