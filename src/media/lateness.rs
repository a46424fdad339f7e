//! How late a periodic job ran, as a Prometheus histogram: the conference mixer's 20 ms
//! tick (`relay_conference.rs`) records when each tick's last frame left against when the
//! tick was due. Lock-free: the relay thread records, `/metrics` reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds, in microseconds (the last bucket, `+Inf`, is implicit).
pub const BOUNDS_US: [u64; 9] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

#[derive(Debug, Default)]
pub struct LatenessHistogram {
    /// Counts per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// A histogram read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatenessSnapshot {
    pub buckets: [u64; BOUNDS_US.len() + 1],
    pub sum_us: u64,
}

impl LatenessSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another thread's counts.
    pub fn add(&mut self, other: &LatenessSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_us += other.sum_us;
    }
}

impl LatenessHistogram {
    pub fn record(&self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatenessSnapshot {
        let mut s = LatenessSnapshot::default();
        for (o, b) in s.buckets.iter_mut().zip(&self.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
        s.sum_us = self.sum_us.load(Ordering::Relaxed);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_lands_in_the_first_bucket_that_holds_it() {
        let h = LatenessHistogram::default();
        for us in [0, 250, 251, 1_000, 99_999, 100_001, 5_000_000] {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, [2, 1, 1, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(s.count(), 7);
        assert_eq!(s.sum_us, 250 + 251 + 1_000 + 99_999 + 100_001 + 5_000_000);
    }
}
