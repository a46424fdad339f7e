//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! ```text
//!                                    |Request from TU
//!                                    |send request
//!                Timer E             V
//!                send request  +-----------+
//!                    +---------|           |-------------------+
//!                    |         |  Trying   |  Timer F          |
//!                    +-------->|           |  or Transport Err.|
//!                              +-----------+  inform TU        |
//!                 200-699         |  |                         |
//!                 resp. to TU     |  |1xx                      |
//!                 +---------------+  |resp. to TU              |
//!                 |                  |                         |
//!                 |   Timer E        V       Timer F           |
//!                 |   send req +-----------+ or Transport Err. |
//!                 |  +---------|           | inform TU         |
//!                 |  |         |Proceeding |------------------>|
//!                 |  +-------->|           |-----+             |
//!                 |            +-----------+     |1xx          |
//!                 |              |      ^        |resp to TU   |
//!                 | 200-699      |      +--------+             |
//!                 | resp. to TU  |                             |
//!                 |              |                             |
//!                 |              V                             |
//!                 |            +-----------+                   |
//!                 |            |           |                   |
//!                 |            | Completed |                   |
//!                 |            |           |                   |
//!                 |            +-----------+                   |
//!                 |              ^   |                         |
//!                 |              |   | Timer K                 |
//!                 +--------------+   | -                       |
//!                                    |                         |
//!                                    V                         |
//!              NOTE:           +-----------+                   |
//!                              |           |                   |
//!          transitions         | Terminated|<------------------+
//!          labeled with        |           |
//!          the event           +-----------+
//!          over the action
//!          to take
//! ```
//!
//! Over UDP the request is retransmitted on Timer E: T1 doubling up to T2 while Trying,
//! every T2 once a provisional arrived. Timer F (64·T1) ends it; Timer K (T4, zero on
//! reliable transports) absorbs retransmitted finals.

use std::time::Duration;

use bytes::Bytes;

use super::effects::Effects;
use super::provisional::ProvisionalFilter;
use super::timers::TimerKind;
use crate::sip::msg::SipMessage;

/// States of Figure 6; Terminated is the transaction's removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
}

/// A non-INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    state: State,
    request: Bytes,
    reliable: bool,
    /// The current Timer E interval.
    interval: Duration,
    provisionals: ProvisionalFilter,
}

impl ClientNonInvite {
    /// Sends the request and starts Timers E (unreliable transports only) and F.
    pub(crate) fn start(request: Bytes, reliable: bool, fx: &mut Effects<'_>) -> Self {
        fx.send(request.clone());
        let interval = fx.timers.duration(TimerKind::TimerE, reliable);
        if !reliable {
            fx.start(TimerKind::TimerE, interval);
        }
        fx.start(
            TimerKind::TimerF,
            fx.timers.duration(TimerKind::TimerF, reliable),
        );
        ClientNonInvite {
            state: State::Trying,
            request,
            reliable,
            interval,
            provisionals: ProvisionalFilter::default(),
        }
    }

    /// A response matched this transaction.
    pub(crate) fn on_response(&mut self, response: SipMessage, fx: &mut Effects<'_>) {
        let Some(code) = response.status() else {
            return;
        };
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                if self.provisionals.is_new(&response) {
                    fx.deliver(response);
                }
            }
            (State::Trying | State::Proceeding, _) => {
                self.state = State::Completed;
                fx.deliver(response);
                fx.linger(
                    TimerKind::TimerK,
                    fx.timers.duration(TimerKind::TimerK, self.reliable),
                );
            }
            // Completed absorbs retransmitted responses (that is what Timer K is for).
            (State::Completed, _) => tracing::trace!(code, "response absorbed"),
        }
    }

    /// A timer of this transaction fired; one the current state does not run is stale.
    pub(crate) fn on_timer(&mut self, kind: TimerKind, fx: &mut Effects<'_>) {
        match (self.state, kind) {
            (State::Trying | State::Proceeding, TimerKind::TimerE) => {
                fx.send(self.request.clone());
                self.interval = match self.state {
                    // §17.1.2.2: after a provisional, retransmit every T2.
                    State::Proceeding => fx.timers.t2,
                    _ => fx.timers.backoff_capped(self.interval),
                };
                fx.start(TimerKind::TimerE, self.interval);
            }
            (State::Trying | State::Proceeding, TimerKind::TimerF) => fx.timeout(),
            (State::Completed, TimerKind::TimerK) => fx.terminate(),
            _ => {}
        }
    }
}
