//! Transaction timer values (RFC 3261 §17, Table 4; RFC 6026 §8.4, §8.7).
//!
//! Everything derives from three base values: T1 (the round-trip estimate), T2 (the longest
//! interval between retransmissions of a non-INVITE request or an INVITE final response) and
//! T4 (how long a message can linger in the network). Only unreliable transports retransmit,
//! and the "absorb leftovers" timers D, I, J and K are zero on reliable ones.

use std::time::Duration;

/// The base timer values. `Default` is the RFC 3261 recommendation: T1 = 500 ms,
/// T2 = 4 s, T4 = 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (RFC 3261 §17.1.1.1); the first retransmission interval.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE final responses.
    pub t2: Duration,
    /// Maximum duration a message remains in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Timer D on unreliable transports: "at least 32 seconds" (RFC 3261 Table 4), fixed
/// rather than derived from T1 because it covers the far end's Timer G schedule.
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

impl Timers {
    /// 64·T1: the lifetime of a transaction that hears nothing (Timers B, F, H, J, L, M).
    pub fn lifetime(&self) -> Duration {
        self.t1 * 64
    }

    /// The next retransmission interval after `current`: doubled, capped at T2 (Timers E
    /// and G; Timer A is doubled without a cap).
    pub fn backoff_capped(&self, current: Duration) -> Duration {
        (current * 2).min(self.t2)
    }

    /// The duration of a timer that does not depend on the previous interval, given whether
    /// the transport is reliable. Timers A, E and G are not fixed: they start at T1 and back
    /// off (see [`Timers::backoff_capped`]); for them this returns T1.
    pub fn duration(&self, kind: TimerKind, reliable: bool) -> Duration {
        let unless_reliable = |d| if reliable { Duration::ZERO } else { d };
        match kind {
            TimerKind::TimerA | TimerKind::TimerE | TimerKind::TimerG => self.t1,
            TimerKind::TimerB
            | TimerKind::TimerF
            | TimerKind::TimerH
            | TimerKind::TimerL
            | TimerKind::TimerM => self.lifetime(),
            TimerKind::TimerD => unless_reliable(TIMER_D_UNRELIABLE),
            TimerKind::TimerI | TimerKind::TimerK => unless_reliable(self.t4),
            TimerKind::TimerJ => unless_reliable(self.lifetime()),
        }
    }
}

/// The transaction timers by their RFC names (RFC 3261 Table 4, RFC 6026 Table 1).
/// Timer C belongs to proxies and is not run here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(
    clippy::enum_variant_names,
    reason = "the RFC calls them \"Timer A\" .. \"Timer M\""
)]
pub enum TimerKind {
    /// INVITE request retransmit interval, UDP only: T1, doubling without cap (§17.1.1.2).
    TimerA,
    /// INVITE transaction timeout: 64·T1 (§17.1.1.2).
    TimerB,
    /// Wait time for response retransmits after a non-2xx final to INVITE: ≥ 32 s for
    /// UDP, 0 for reliable transports (§17.1.1.2).
    TimerD,
    /// Non-INVITE request retransmit interval, UDP only: T1 doubling up to T2; T2 once a
    /// provisional arrived (§17.1.2.2).
    TimerE,
    /// Non-INVITE transaction timeout: 64·T1 (§17.1.2.2).
    TimerF,
    /// INVITE final response retransmit interval, UDP only: T1 doubling up to T2 (§17.2.1).
    TimerG,
    /// Wait time for ACK receipt: 64·T1 (§17.2.1).
    TimerH,
    /// Wait time for ACK retransmits: T4 for UDP, 0 for reliable transports (§17.2.1).
    TimerI,
    /// Wait time for non-INVITE request retransmits: 64·T1 for UDP, 0 for reliable
    /// transports (§17.2.2).
    TimerJ,
    /// Wait time for non-INVITE response retransmits: T4 for UDP, 0 for reliable
    /// transports (§17.1.2.2).
    TimerK,
    /// Server INVITE "Accepted" lifetime, absorbing INVITE retransmits after a 2xx:
    /// 64·T1 (RFC 6026 §8.7).
    TimerL,
    /// Client INVITE "Accepted" lifetime, passing 2xx retransmits to the TU: 64·T1
    /// (RFC 6026 §8.4).
    TimerM,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_4_values() {
        let t = Timers::default();
        let ms = Duration::from_millis;
        assert_eq!(t.duration(TimerKind::TimerB, false), ms(32_000));
        assert_eq!(t.duration(TimerKind::TimerB, true), ms(32_000));
        assert_eq!(t.duration(TimerKind::TimerD, false), ms(32_000));
        assert_eq!(t.duration(TimerKind::TimerD, true), Duration::ZERO);
        assert_eq!(t.duration(TimerKind::TimerI, false), ms(5_000));
        assert_eq!(t.duration(TimerKind::TimerJ, false), ms(32_000));
        assert_eq!(t.duration(TimerKind::TimerJ, true), Duration::ZERO);
        assert_eq!(t.duration(TimerKind::TimerK, false), ms(5_000));
        assert_eq!(t.duration(TimerKind::TimerK, true), Duration::ZERO);
        assert_eq!(t.duration(TimerKind::TimerL, true), ms(32_000));
        assert_eq!(t.duration(TimerKind::TimerM, false), ms(32_000));
        let mut e = t.duration(TimerKind::TimerE, false);
        let mut seen = vec![e];
        for _ in 0..5 {
            e = t.backoff_capped(e);
            seen.push(e);
        }
        assert_eq!(
            seen,
            [ms(500), ms(1000), ms(2000), ms(4000), ms(4000), ms(4000)]
        );
    }
}
