//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as updated by RFC 6026
//! §8.4 and its Figure 5).
//!
//! ```text
//!                                |INVITE from TU
//!              Timer A fires     |INVITE sent
//!              Reset A,          V                      Timer B fires
//!              INVITE sent +-----------+                or Transport Err.
//!                +---------|           |---------------+inform TU
//!                |         |  Calling  |               |
//!                +-------->|           |-------------->|
//!                          +-----------+ 2xx           |
//!                             |  |       2xx to TU     |
//!                             |  |1xx                  |
//!     300-699 +---------------+  |1xx to TU            |
//!    ACK sent |                  |                     |
//! resp. to TU |  1xx             V                     |
//!             |  1xx to TU  -----------+               |
//!             |  +---------|           |               |
//!             |  |         |Proceeding |-------------->|
//!             |  +-------->|           | 2xx           |
//!             |            +-----------+ 2xx to TU     |
//!             |       300-699    |                     |
//!             |       ACK sent,  |                     |
//!             |       resp. to TU|                     |
//!             |                  |                     |      NOTE:
//!             |  300-699         V                     |
//!             |  ACK sent  +-----------+Transport Err. |  transitions
//!             |  +---------|           |Inform TU      |  labeled with
//!             |  |         | Completed |-------------->|  the event
//!             |  +-------->|           |               |  over the action
//!             |            +-----------+               |  to take
//!             |              ^   |                     |
//!             |              |   | Timer D fires       |
//!             +--------------+   | -                   |
//!                                |                     |
//!                                V                     |
//!                          +-----------+               |
//!                          |           |               |
//!                          | Terminated|<--------------+
//!                          |           |
//!                          +-----------+
//!
//!   RFC 6026 Figure 5: the 2xx arrows above lead to Accepted, not Terminated:
//!
//!                          +-----------+  2xx
//!                          |           |  2xx to TU
//!                          | Accepted  |-----+
//!                          |           |<----+
//!                          +-----------+
//!                                | Timer M fires
//!                                V
//!                           Terminated
//! ```
//!
//! Over UDP the INVITE is retransmitted on Timer A, starting at T1 and doubling with no
//! cap, until a response arrives or Timer B (64·T1) ends the transaction. The ACK for a
//! 300–699 response belongs to this transaction (it is built here and resent for every
//! retransmitted final); the ACK for a 2xx is the TU's, which also sees every 2xx
//! retransmission while Accepted.

use std::time::Duration;

use bytes::Bytes;

use super::effects::Effects;
use super::provisional::ProvisionalFilter;
use super::requests::build_ack_for;
use super::timers::TimerKind;
use crate::sip::msg::SipMessage;

/// States of Figure 5; Terminated is the transaction's removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    state: State,
    request: SipMessage,
    reliable: bool,
    /// The current Timer A interval.
    interval: Duration,
    /// The ACK for the non-2xx final response, once sent.
    ack: Option<Bytes>,
    provisionals: ProvisionalFilter,
}

impl ClientInvite {
    /// Sends the INVITE and starts Timers A (unreliable transports only) and B.
    pub(crate) fn start(request: SipMessage, reliable: bool, fx: &mut Effects<'_>) -> Self {
        fx.send(request.as_bytes().clone());
        let interval = fx.timers.duration(TimerKind::TimerA, reliable);
        if !reliable {
            fx.start(TimerKind::TimerA, interval);
        }
        fx.start(
            TimerKind::TimerB,
            fx.timers.duration(TimerKind::TimerB, reliable),
        );
        ClientInvite {
            state: State::Calling,
            request,
            reliable,
            interval,
            ack: None,
            provisionals: ProvisionalFilter::default(),
        }
    }

    /// A response matched this transaction.
    pub(crate) fn on_response(&mut self, response: SipMessage, fx: &mut Effects<'_>) {
        let Some(code) = response.status() else {
            return;
        };
        match (self.state, code) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                if self.provisionals.is_new(&response) {
                    fx.deliver(response);
                }
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                fx.deliver(response);
                fx.start(
                    TimerKind::TimerM,
                    fx.timers.duration(TimerKind::TimerM, self.reliable),
                );
            }
            (State::Calling | State::Proceeding, _) => {
                let ack = build_ack_for(&self.request, &response);
                fx.send(ack.clone());
                self.ack = Some(ack);
                self.state = State::Completed;
                fx.deliver(response);
                fx.linger(
                    TimerKind::TimerD,
                    fx.timers.duration(TimerKind::TimerD, self.reliable),
                );
            }
            // A retransmitted final: our ACK was lost (§17.1.1.2). Not news for the TU.
            (State::Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    fx.send(ack.clone());
                }
            }
            // RFC 6026 §8.4: every 2xx goes up (retransmissions, or other forks' answers).
            (State::Accepted, 200..=299) => fx.deliver(response),
            _ => tracing::trace!(code, state = ?self.state, "response absorbed"),
        }
    }

    /// A timer of this transaction fired; one the current state does not run is stale.
    pub(crate) fn on_timer(&mut self, kind: TimerKind, fx: &mut Effects<'_>) {
        match (self.state, kind) {
            (State::Calling, TimerKind::TimerA) => {
                fx.send(self.request.as_bytes().clone());
                // No cap for INVITE (§17.1.1.2): Timer B ends it first.
                self.interval *= 2;
                fx.start(TimerKind::TimerA, self.interval);
            }
            (State::Calling, TimerKind::TimerB) => fx.timeout(),
            (State::Completed, TimerKind::TimerD) | (State::Accepted, TimerKind::TimerM) => {
                fx.terminate();
            }
            _ => {}
        }
    }
}
