//! The location service contract: what a REGISTER asks of the store and what it gets back.
//! `MemoryStore` implements it for one switch; `RedisStore` for a cluster.

use std::future::Future;
use std::pin::Pin;

use super::binding::{AorKey, Binding, Flow};
use crate::registrar::presence::PresenceStatus;

/// One Contact of a REGISTER, already authorized and with its expiry granted.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactUpdate {
    /// Add or refresh. `expires_at` should be after `now`; one that is not is treated as a
    /// removal.
    Add(Binding),
    /// `expires=0` (or `Expires: 0`) for this contact.
    Remove {
        contact: Box<str>,
        instance: Option<Box<str>>,
        reg_id: Option<u32>,
        call_id: Box<str>,
        cseq: u32,
        /// `Some`: only a matching binding still registered over this flow is removed
        /// (and ordered); one since refreshed over another connection or over UDP is
        /// left alone. The registrar ending a closed connection's bindings sets it (RFC
        /// 5626 §5.3); a REGISTER never does.
        flow: Option<Flow>,
    },
}

impl ContactUpdate {
    /// The fields that find the stored binding this update replaces, and order it.
    pub(super) fn target(&self) -> Target<'_> {
        match self {
            ContactUpdate::Add(b) => Target {
                contact: &b.contact,
                instance: b.instance.as_deref(),
                reg_id: b.reg_id,
                call_id: &b.call_id,
                cseq: b.cseq,
                flow: None,
            },
            ContactUpdate::Remove {
                contact,
                instance,
                reg_id,
                call_id,
                cseq,
                flow,
            } => Target {
                contact,
                instance: instance.as_deref(),
                reg_id: *reg_id,
                call_id,
                cseq: *cseq,
                flow: flow.as_ref(),
            },
        }
    }
}

/// Borrowed view of what identifies and orders a contact update.
pub(super) struct Target<'a> {
    pub contact: &'a str,
    pub instance: Option<&'a str>,
    pub reg_id: Option<u32>,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Only bindings over this flow match.
    pub flow: Option<&'a Flow>,
}

/// One REGISTER, after authentication, as the store applies it (RFC 3261 §10.3 steps 6–8).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterRequest {
    pub key: AorKey,
    pub call_id: Box<str>,
    pub cseq: u32,
    /// `Contact: *` with `Expires: 0`: remove every binding. The caller answers 400 when
    /// `*` comes with other contacts or a non-zero expiry (§10.3 step 6), so `updates` is
    /// then empty; if not, the wildcard is applied first and the updates after it.
    pub wildcard_remove: bool,
    /// In Contact order. Empty (and no wildcard) is a query: nothing changes and the
    /// current bindings come back.
    pub updates: Vec<ContactUpdate>,
    /// Most live bindings the AOR may hold after the update (Twilio allows 10).
    pub max_contacts: usize,
    /// Unix seconds.
    pub now: u64,
}

/// Why a REGISTER changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A binding it touches was last set by the same Call-ID with an equal or higher
    /// CSeq: a stale or replayed request (§10.3 steps 6 and 7). Answer 500 (with
    /// Retry-After, §21.5.1 allows it).
    #[error("REGISTER out of order (CSeq not higher than the stored binding's)")]
    OutOfOrder,
    /// The update would leave more than `max` live bindings. Answer 403 or 503.
    #[error("more than {max} contacts for one address of record")]
    TooManyContacts { max: usize },
    /// The shared store could not be reached (or did not answer in time): nothing was
    /// stored, so no 200 may go out. Answer 503 with Retry-After.
    #[error("the location store is unavailable")]
    Unavailable,
}

impl RegisterError {
    /// Stable label for logs and metrics.
    pub const fn class(self) -> &'static str {
        match self {
            RegisterError::OutOfOrder => "out_of_order",
            RegisterError::TooManyContacts { .. } => "too_many_contacts",
            RegisterError::Unavailable => "store_unavailable",
        }
    }
}

/// What a successful REGISTER left behind.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterOutcome {
    /// Every live binding of the AOR after the update: the 200 OK lists them all as
    /// Contacts with their remaining `expires` (§10.3 step 8).
    pub bindings: Vec<Binding>,
    /// The store's view of reachability, when it flipped: `Available` when the AOR went
    /// from no live binding to some, `Offline` when it went from some to none. It knows
    /// nothing of calls, so it never says `Busy`; `Presence::on_bindings` decides the
    /// status clients see.
    pub presence_changed: Option<PresenceStatus>,
}

/// What `LocationStore::register` returns: ready at once for the memory store, a round
/// trip to Redis for the shared one.
pub type RegisterFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RegisterOutcome, RegisterError>> + Send + 'a>>;

/// An AOR whose last binding lapsed, and when (the latest `expires_at`, unix seconds: the
/// same instant on every node of a cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapsed {
    pub key: AorKey,
    pub at: u64,
}

/// Registered contacts per address of record.
///
/// Every method takes `now` (unix seconds) rather than reading a clock; a binding whose
/// `expires_at <= now` counts as absent everywhere, even before `sweep` drops it. Reads
/// are local (the shared store keeps a replica in process); only `register` may wait.
pub trait LocationStore: Send + Sync {
    /// Apply one REGISTER atomically for its AOR: either every update applies or, on an
    /// error, nothing changes. A 200 may go out only after this returns `Ok`: the binding
    /// is stored.
    fn register(&self, req: RegisterRequest) -> RegisterFuture<'_>;

    /// The live bindings of `key` (empty when none).
    fn lookup(&self, key: &AorKey, now: u64) -> Vec<Binding>;

    /// How many live bindings `key` has; `lookup(key, now).len()` without the copies.
    fn live_count(&self, key: &AorKey, now: u64) -> usize {
        self.lookup(key, now).len()
    }

    /// Every identity of `account` with a live binding, sorted by identity.
    fn list(&self, account: &str, now: u64) -> Vec<(Box<str>, Vec<Binding>)>;

    /// Drop expired bindings; returns the AORs left with none (they went offline).
    fn sweep(&self, now: u64) -> Vec<Lapsed>;

    /// Bindings held, including expired ones `sweep` has not dropped yet.
    fn binding_count(&self) -> usize;

    /// Whether writes can be stored now (the memory store always can).
    fn is_up(&self) -> bool {
        true
    }

    /// Whether the cluster node `node` (a binding's edge) is alive, as far as this node
    /// knows; a dead node's TCP flows are gone, its UDP clients reachable directly.
    fn edge_alive(&self, _node: &str) -> bool {
        true
    }

    /// The cluster's live nodes (empty: no cluster).
    fn nodes(&self) -> Vec<String> {
        Vec::new()
    }
}
