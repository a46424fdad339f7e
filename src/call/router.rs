//! Which call owns a SIP message: a map from Call-ID to the call task's inbox.
//!
//! Every leg of a call (the caller's, and each one `<Dial>` forks) has its own Call-ID, and
//! each is entered here for the life of the call, so a message for any of them reaches the
//! call whichever shard received it (SO_REUSEPORT spreads peers over shards by
//! address, and the callee's answers need not land where the caller's INVITE did). The call
//! task runs its own transaction layer; the shards only look the Call-ID up.
//!
//! A `DashMap` (sharded locks, never held across an `.await`): one lookup per message.

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::mpsc;

use crate::sip::Peer;
use crate::sip::msg::SipMessage;

/// A message for a call task.
#[derive(Debug)]
pub struct CallInput {
    pub msg: SipMessage,
    pub from: Peer,
}

/// How many messages may wait for one call before more are dropped (as a full UDP socket
/// buffer would; retransmission recovers).
pub const CALL_INBOX: usize = 256;

/// Call-ID → call inbox.
#[derive(Debug, Default)]
pub struct CallRouter {
    /// Keyed by Call-IDs peers choose: a randomly seeded fast hash (foldhash).
    map: DashMap<Box<str>, mpsc::Sender<CallInput>, foldhash::fast::RandomState>,
}

impl CallRouter {
    pub fn new() -> CallRouter {
        CallRouter::default()
    }

    /// The inbox of the call that owns `call_id`.
    pub fn route(&self, call_id: &str) -> Option<mpsc::Sender<CallInput>> {
        self.map.get(call_id).map(|e| e.value().clone())
    }

    /// Enters `call_id` for a call; false if another call has it already.
    pub fn add(&self, call_id: &str, inbox: mpsc::Sender<CallInput>) -> bool {
        match self.map.entry(call_id.into()) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(inbox);
                true
            }
        }
    }

    /// Forgets `call_id`.
    pub fn remove(&self, call_id: &str) {
        self.map.remove(call_id);
    }

    /// Call-IDs entered (all legs of all calls).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_route_remove() {
        let r = CallRouter::new();
        let (tx, _rx) = mpsc::channel(1);
        assert!(r.add("a@x", tx.clone()));
        assert!(!r.add("a@x", tx));
        assert!(r.route("a@x").is_some());
        assert!(r.route("b@x").is_none());
        assert_eq!(r.len(), 1);
        r.remove("a@x");
        assert!(r.route("a@x").is_none());
        assert!(r.is_empty());
    }
}
