//! How many instruction documents one call may fetch: a bound on `<Redirect>` loops (and
//! `action` loops) so that one call cannot make the switch hammer a customer's server (or
//! itself) for its whole life. An attacker's self-redirecting document made 1,139 fetches a
//! second before this.
//!
//! Two limits, both generous for real applications:
//! - a burst: at most [`BURST`] documents within [`BURST_WINDOW`]. A menu that loops
//!   through `<Gather>` or `<Play>` is paced by its audio and never comes near it; a
//!   document that only redirects reaches it in a fraction of a second;
//! - a total: at most [`TOTAL`] documents in one call, whatever the pace.
//!
//! Past either the call ends like an application error (the caller hears the error prompt,
//! then BYE; status `failed`). The caller passes the clock in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Documents allowed within [`BURST_WINDOW`].
pub const BURST: usize = 20;
/// The window of [`BURST`].
pub const BURST_WINDOW: Duration = Duration::from_secs(10);
/// Documents allowed in one call.
pub const TOTAL: u32 = 1000;

/// Why no more documents are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error("more than {BURST} instruction documents within {BURST_WINDOW:?}: a Redirect loop")]
    Burst,
    #[error("more than {TOTAL} instruction documents in one call")]
    Total,
}

/// The fetches of one call.
#[derive(Debug, Default)]
pub struct FetchBudget {
    /// When the last fetches started, oldest first; at most [`BURST`].
    recent: VecDeque<Instant>,
    total: u32,
}

impl FetchBudget {
    /// Counts a fetch about to start at `now`, or says why it may not.
    pub fn admit(&mut self, now: Instant) -> Result<(), OverBudget> {
        if self.total >= TOTAL {
            return Err(OverBudget::Total);
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= BURST_WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= BURST {
            return Err(OverBudget::Burst);
        }
        self.recent.push_back(now);
        self.total += 1;
        Ok(())
    }

    /// Documents fetched so far.
    pub fn total(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(
        clippy::disallowed_methods,
        reason = "the virtual clock's epoch; never compared to real time"
    )]
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_tight_loop_stops_at_the_burst() {
        let t0 = epoch();
        let mut b = FetchBudget::default();
        for i in 0..BURST {
            assert_eq!(b.admit(t0 + Duration::from_millis(i as u64)), Ok(()));
        }
        assert_eq!(
            b.admit(t0 + Duration::from_millis(50)),
            Err(OverBudget::Burst)
        );
        assert_eq!(b.total(), BURST as u32);
    }

    #[test]
    fn a_paced_menu_runs_until_the_total() {
        let t0 = epoch();
        let mut b = FetchBudget::default();
        // One document a second (a menu that plays a prompt each time) never bursts.
        for i in 0..TOTAL {
            assert_eq!(
                b.admit(t0 + Duration::from_secs(u64::from(i))),
                Ok(()),
                "{i}"
            );
        }
        assert_eq!(
            b.admit(t0 + Duration::from_secs(u64::from(TOTAL))),
            Err(OverBudget::Total)
        );
    }

    #[test]
    fn the_burst_window_slides() {
        let t0 = epoch();
        let mut b = FetchBudget::default();
        for _ in 0..BURST {
            b.admit(t0).unwrap();
        }
        assert!(
            b.admit(t0 + BURST_WINDOW - Duration::from_millis(1))
                .is_err()
        );
        assert!(b.admit(t0 + BURST_WINDOW).is_ok());
    }
}
