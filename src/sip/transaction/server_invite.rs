//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as updated by RFC 6026
//! §8.5–§8.7 and its Figure 7).
//!
//! ```text
//!                                    |INVITE
//!                                    |pass INV to TU
//!                 INVITE             V send 100 (we always do, at once)
//!                 send response+-----------+
//!                     +--------|           |--------+101-199 from TU
//!                     |        | Proceeding|        |send response
//!                     +------->|           |<-------+
//!                              |           |          Transport Err.
//!                              |           |          Inform TU
//!                              |           |--------------->+
//!                              +-----------+                |
//!                 300-699 from TU |     |2xx from TU        |
//!                 send response   |     |send response      |
//!                                 |     +------------+      |
//!                                 |                  |      |
//!                 INVITE          V    Timer G fires |      |
//!                 send response+-----------+ send response  |
//!                     +--------|           |--------+|      |
//!                     |        | Completed |        ||      |
//!                     +------->|           |<-------+|      |
//!                              +-----------+         |      |
//!                                 |     |            |      |
//!                             ACK |     |            |      |
//!                             -   |     +------------+----->+
//!                                 |     Timer H fires/      |
//!                                 V     inform TU           |
//!                              +-----------+                |
//!                              |           |                |
//!                              | Confirmed |                |
//!                              |           |                |
//!                              +-----------+                |
//!                                    |                      |
//!                                    |Timer I fires         |
//!                                    |-                     |
//!                                    V                      |
//!                              +-----------+                |
//!                              |           |                |
//!                              | Terminated|<---------------+
//!                              |           |
//!                              +-----------+
//!
//!   RFC 6026 Figure 7: after a 2xx from the TU,
//!
//!                 2xx from TU  +-----------+  ACK / pass to TU
//!                 send response|           |  INVITE / absorb
//!                     +--------| Accepted  |
//!                     +------->|           |
//!                              +-----------+
//!                                    | Timer L fires
//!                                    V
//!                               Terminated
//! ```
//!
//! Over UDP a 300–699 final is retransmitted on Timer G (T1 doubling up to T2) until the
//! ACK arrives or Timer H (64·T1) fires; Timer I (T4, zero on reliable transports) then
//! absorbs retransmitted ACKs. A 2xx is retransmitted by the TU, not here; its ACK has a new
//! branch and goes to the TU without touching this transaction.

use std::time::Duration;

use bytes::Bytes;

use super::effects::Effects;
use super::timers::TimerKind;

/// States of Figure 7; Terminated is the transaction's removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    state: State,
    reliable: bool,
    /// The latest response sent, resent on a retransmitted INVITE and on Timer G.
    last_response: Bytes,
    /// The current Timer G interval.
    interval: Duration,
}

impl ServerInvite {
    /// Sends `trying` (the 100 the layer built) at once: §17.2.1 requires a 100 unless the TU
    /// answers within 200 ms, and we cannot know that it will.
    pub(crate) fn start(trying: Bytes, reliable: bool, fx: &mut Effects<'_>) -> Self {
        fx.send(trying.clone());
        ServerInvite {
            state: State::Proceeding,
            reliable,
            last_response: trying,
            interval: fx.timers.t1,
        }
    }

    /// Whether no final response has been sent yet (what a CANCEL can still end).
    pub(crate) fn is_proceeding(&self) -> bool {
        self.state == State::Proceeding
    }

    /// The INVITE was retransmitted.
    pub(crate) fn on_retransmission(&mut self, fx: &mut Effects<'_>) {
        match self.state {
            State::Proceeding | State::Completed => fx.send(self.last_response.clone()),
            // Confirmed: the ACK proved the final arrived. Accepted: 2xx retransmission is
            // the TU's business (RFC 6026 §8.7).
            State::Confirmed | State::Accepted => {}
        }
    }

    /// The TU sends a response with status `code`. Returns whether it was sent.
    pub(crate) fn on_tu_response(
        &mut self,
        code: u16,
        response: Bytes,
        fx: &mut Effects<'_>,
    ) -> bool {
        match (self.state, code) {
            (State::Proceeding, 100..=199) => {
                fx.send(response.clone());
                self.last_response = response;
            }
            (State::Proceeding, 200..=299) => {
                fx.send(response);
                self.state = State::Accepted;
                fx.start(
                    TimerKind::TimerL,
                    fx.timers.duration(TimerKind::TimerL, self.reliable),
                );
            }
            (State::Proceeding, _) => {
                fx.send(response.clone());
                self.last_response = response;
                self.state = State::Completed;
                if !self.reliable {
                    self.interval = fx.timers.duration(TimerKind::TimerG, false);
                    fx.start(TimerKind::TimerG, self.interval);
                }
                fx.start(
                    TimerKind::TimerH,
                    fx.timers.duration(TimerKind::TimerH, self.reliable),
                );
            }
            // The TU retransmitting its 2xx, or another 2xx (RFC 6026 §8.7).
            (State::Accepted, 200..=299) => fx.send(response),
            _ => {
                tracing::debug!(code, state = ?self.state, "response from TU after a final, dropped");
                return false;
            }
        }
        true
    }

    /// An ACK matched this transaction. Returns whether it goes up to the TU (only in
    /// Accepted: an ACK for the 2xx that reused the INVITE's branch, RFC 6026 Figure 7).
    pub(crate) fn on_ack(&mut self, fx: &mut Effects<'_>) -> bool {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                fx.linger(
                    TimerKind::TimerI,
                    fx.timers.duration(TimerKind::TimerI, self.reliable),
                );
                false
            }
            State::Accepted => true,
            State::Proceeding | State::Confirmed => false,
        }
    }

    /// A timer of this transaction fired; one the current state does not run is stale.
    pub(crate) fn on_timer(&mut self, kind: TimerKind, fx: &mut Effects<'_>) {
        match (self.state, kind) {
            (State::Completed, TimerKind::TimerG) => {
                fx.send(self.last_response.clone());
                self.interval = fx.timers.backoff_capped(self.interval);
                fx.start(TimerKind::TimerG, self.interval);
            }
            (State::Completed, TimerKind::TimerH) => fx.timeout(),
            (State::Confirmed, TimerKind::TimerI) | (State::Accepted, TimerKind::TimerL) => {
                fx.terminate();
            }
            _ => {}
        }
    }
}
