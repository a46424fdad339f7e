//! Pending transaction timers: one min-heap with lazy deletion.
//!
//! Timers are never cancelled. When one fires, the layer looks its transaction up by id and
//! the state machine ignores a timer its current state does not run, so a state change or
//! a terminated transaction costs nothing here; stale entries drain as their instants pass.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::timers::TimerKind;

/// A transaction's identity inside the layer (never reused).
pub(crate) type TxId = u64;

/// What a pending timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerEntry {
    /// The transaction.
    pub(crate) tx: TxId,
    /// Which of its timers.
    pub(crate) kind: TimerKind,
}

/// A min-heap on (deadline, insertion order): timers due at the same instant fire in the
/// order they were started, which keeps runs deterministic.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, TimerEntry)>>,
    seq: u64,
}

impl TimerQueue {
    /// Schedules `entry` at `at`.
    pub(crate) fn push(&mut self, at: Instant, entry: TimerEntry) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, entry)));
    }

    /// The earliest deadline, stale entries included.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerEntry> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, _, entry))| entry)
    }

    /// How many entries are pending (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
