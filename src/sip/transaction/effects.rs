//! What a state machine may do while it handles one input: send on its transport, start a
//! timer, tell its TU, or end. The layer hands each machine an [`Effects`] bound to that
//! transaction, so the machines never see the maps, the queue or the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::key::TransactionKey;
use super::timer_queue::{TimerEntry, TimerQueue, TxId};
use super::timers::{TimerKind, Timers};
use super::{Output, TuEvent};
use crate::sip::msg::SipMessage;
use crate::sip::peer::Peer;

/// The effects of one input on one transaction.
pub(crate) struct Effects<'a> {
    pub(crate) now: Instant,
    pub(crate) timers: Timers,
    pub(crate) tx: TxId,
    pub(crate) key: &'a TransactionKey,
    /// Where this transaction sends: the next hop (client) or the response destination of
    /// RFC 3261 §18.2.2 (server).
    pub(crate) dest: Peer,
    pub(crate) out: &'a mut VecDeque<Output>,
    pub(crate) queue: &'a mut TimerQueue,
    pub(crate) terminated: bool,
}

impl Effects<'_> {
    /// Sends bytes to the transaction's peer.
    pub(crate) fn send(&mut self, bytes: Bytes) {
        self.out.push_back(Output::Send {
            to: self.dest,
            bytes,
        });
    }

    /// Starts `kind` to fire `after` from now.
    pub(crate) fn start(&mut self, kind: TimerKind, after: Duration) {
        self.queue
            .push(self.now + after, TimerEntry { tx: self.tx, kind });
    }

    /// Starts a timer whose expiry ends the transaction; a zero duration (D, I, J, K on a
    /// reliable transport) ends it now.
    pub(crate) fn linger(&mut self, kind: TimerKind, after: Duration) {
        if after.is_zero() {
            self.terminate();
        } else {
            self.start(kind, after);
        }
    }

    /// Passes a response up to the TU.
    pub(crate) fn deliver(&mut self, response: SipMessage) {
        let key = self.key.clone();
        self.out
            .push_back(Output::Event(TuEvent::Response { key, response }));
    }

    /// Tells the TU the transaction timed out, and ends it.
    pub(crate) fn timeout(&mut self) {
        let key = self.key.clone();
        self.out.push_back(Output::Event(TuEvent::Timeout { key }));
        self.terminate();
    }

    /// Ends the transaction: the layer forgets it once the machine returns.
    pub(crate) fn terminate(&mut self) {
        self.terminated = true;
    }
}
