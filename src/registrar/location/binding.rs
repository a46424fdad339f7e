//! What the location service stores: one `Binding` per registered contact, grouped under the
//! address of record (`AorKey`) it was registered for.
//!
//! Memory matters here (the target is 700 B per registration, Kamailio needs about
//! 1.1 KB): strings are `Box<str>` (no spare capacity, 8 bytes smaller than `String`), the
//! account name is shared by the keys of a store, the Path list is a boxed slice (empty
//! costs nothing), and a binding is 176 bytes inline plus its strings.
//! `examples/binding_memory.rs` measures the whole cost per AOR.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::sip::peer::{ConnectionId, Transport};

/// An address of record: `sip:<identity>@<realm>` within one account.
///
/// The realm is not part of the key: an account's identities share one namespace, whatever
/// realm a client registered through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AorKey {
    /// The account (`AC…`). Shared: the keys a store holds point at one copy per account
    /// (`shards.rs`), rather than 34 bytes (a 48-byte allocation) in every key.
    pub account: Arc<str>,
    /// The client identity (the AOR's user part, the token's `grants.identity`).
    pub identity: Box<str>,
}

impl AorKey {
    pub fn new(account: impl Into<Arc<str>>, identity: impl Into<Box<str>>) -> Self {
        AorKey {
            account: account.into(),
            identity: identity.into(),
        }
    }
}

/// One registered contact of an AOR (RFC 3261 §10.3, RFC 5626 flows, RFC 3327 Path).
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact URI, as the client sent it (without the `<>` and contact params).
    pub contact: Box<str>,
    /// When the binding lapses, unix seconds. A binding with `expires_at <= now` is gone.
    pub expires_at: u64,
    /// Call-ID and CSeq of the REGISTER that made or last refreshed it (RFC 3261 §10.3
    /// step 7 orders requests with the same Call-ID by CSeq).
    pub call_id: Box<str>,
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626 §4.1), e.g. `<urn:uuid:…>`, as sent.
    pub instance: Option<Box<str>>,
    /// `reg-id` (RFC 5626 §4.2): one per flow of an instance.
    pub reg_id: Option<u32>,
    /// The Path header values (RFC 3327), first to last as received; requests to this
    /// contact carry them as a Route set.
    pub path: Box<[Box<str>]>,
    /// Where the REGISTER came from (the flow to send requests back on, behind NAT).
    pub source: SocketAddr,
    pub transport: Transport,
    /// The stream connection the REGISTER came in on, for TCP.
    pub conn: Option<ConnectionId>,
    pub user_agent: Option<Box<str>>,
    /// The contact's `q` preference, 0.0..=1.0.
    pub q: Option<f32>,
    /// When this contact (this URI, or this instance and reg-id) was first registered,
    /// unix seconds. A refresh keeps the original value (see `update`).
    pub registered_at: u64,
    /// In a cluster: the node that holds the client's flow (its socket, its connection),
    /// which alone can reach it. `None` with the memory store (this process).
    pub edge: Option<Box<Edge>>,
}

/// A stream connection held by one node: the flow (RFC 5626 §3) a binding was registered
/// over. Connection ids are only unique within one process, so in a cluster the node is
/// part of the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub conn: ConnectionId,
    /// The node holding the connection (`Edge::node`); `None` with the memory store.
    pub node: Option<Box<str>>,
}

/// The cluster node a client's flow ends at (`[cluster] node_id` and `advertise`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub node: Box<str>,
    /// Where other nodes send its calls.
    pub addr: SocketAddr,
}

impl Binding {
    /// Whether the binding is still in force at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    /// Whether the binding was registered (or last refreshed) over `flow`.
    pub fn is_over(&self, flow: &Flow) -> bool {
        self.conn == Some(flow.conn) && self.edge.as_ref().map(|e| &*e.node) == flow.node.as_deref()
    }

    /// Seconds left at `now` (0 once expired).
    pub fn seconds_left(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}
