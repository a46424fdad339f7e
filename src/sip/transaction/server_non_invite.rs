//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!                                   |Request received
//!                                   |pass to TU
//!                                   V
//!                             +-----------+
//!                             |           |
//!                             | Trying    |-------------+
//!                             |           |             |
//!                             +-----------+             |200-699 from TU
//!                                   |                   |send response
//!                                   |1xx from TU        |
//!                                   |send response      |
//!                                   |                   |
//!                Request            V      1xx from TU  |
//!                send response+-----------+send response|
//!                    +--------|           |--------+    |
//!                    |        | Proceeding|        |    |
//!                    +------->|           |<-------+    |
//!             +<--------------|           |             |
//!             |Trnsprt Err    +-----------+             |
//!             |Inform TU            |                   |
//!             |                     |                   |
//!             |                     |200-699 from TU    |
//!             |                     |send response      |
//!             |  Request            V                   |
//!             |  send response+-----------+             |
//!             |      +--------|           |             |
//!             |      |        | Completed |<------------+
//!             |      +------->|           |
//!             +<--------------|           |
//!             |Trnsprt Err    +-----------+
//!             |Inform TU            |
//!             |                     |Timer J fires
//!             |                     |-
//!             |                     |
//!             |                     V
//!             |               +-----------+
//!             |               |           |
//!             +-------------->| Terminated|
//!                             |           |
//!                             +-----------+
//! ```
//!
//! No 100 Trying here (RFC 4320 §4.1: a provisional to a non-INVITE only helps late).
//! Retransmitted requests are absorbed while Trying and answered with the latest response
//! after that; Timer J (64·T1, zero on reliable transports) absorbs them once Completed.

use bytes::Bytes;

use super::effects::Effects;
use super::timers::TimerKind;

/// States of Figure 8; Terminated is the transaction's removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    state: State,
    reliable: bool,
    last_response: Option<Bytes>,
}

impl ServerNonInvite {
    /// A new transaction for a request just received; nothing is sent yet.
    pub(crate) fn new(reliable: bool) -> Self {
        ServerNonInvite {
            state: State::Trying,
            reliable,
            last_response: None,
        }
    }

    /// The request was retransmitted.
    /// No response sent yet (the TU may still decline to answer).
    pub(crate) fn is_trying(&self) -> bool {
        self.state == State::Trying
    }

    pub(crate) fn on_retransmission(&mut self, fx: &mut Effects<'_>) {
        if let (State::Proceeding | State::Completed, Some(last)) =
            (self.state, &self.last_response)
        {
            fx.send(last.clone());
        }
    }

    /// The TU (or the layer, for CANCEL) sends a response with status `code`. Returns
    /// whether it was sent.
    pub(crate) fn on_tu_response(
        &mut self,
        code: u16,
        response: Bytes,
        fx: &mut Effects<'_>,
    ) -> bool {
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                fx.send(response.clone());
                self.last_response = Some(response);
                self.state = State::Proceeding;
            }
            (State::Trying | State::Proceeding, _) => {
                fx.send(response.clone());
                self.last_response = Some(response);
                self.state = State::Completed;
                fx.linger(
                    TimerKind::TimerJ,
                    fx.timers.duration(TimerKind::TimerJ, self.reliable),
                );
            }
            (State::Completed, _) => {
                tracing::debug!(code, "response from TU after a final, dropped");
                return false;
            }
        }
        true
    }

    /// A timer of this transaction fired; one the current state does not run is stale.
    pub(crate) fn on_timer(&mut self, kind: TimerKind, fx: &mut Effects<'_>) {
        if let (State::Completed, TimerKind::TimerJ) = (self.state, kind) {
            fx.terminate();
        }
    }
}
