//! Per-source request rate limits: a token bucket per source address, checked before a
//! request costs anything (no parse of its headers beyond framing, no transaction, no
//! answer). A flood from one address is dropped at the door while everyone else is served.
//!
//! The buckets live in a fixed table of [`SLOTS`] atomics, indexed by a randomly keyed hash
//! of the address, so the table never grows: a flood from spoofed addresses cannot make it
//! allocate, and an attacker cannot aim at a victim's slot without knowing the key. Two
//! addresses sharing a slot share a bucket (rare with 65,536 slots; the cost is a shared
//! rate, never a lost request for a source under its own rate alone). The shards share one
//! table, lock-free, so a source is limited the same whichever shard its datagrams land on.
//!
//! Sans-IO: the caller passes the time.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Buckets in the table (512 KiB).
pub const SLOTS: usize = 1 << 16;

/// A rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained. 0: no limit.
    pub per_second: u32,
    /// Requests allowed at once after a quiet spell (the bucket's size).
    pub burst: u32,
}

/// Token buckets for source addresses. Each slot packs the time it was last updated (in
/// milliseconds since `epoch`, wrapping at 2^32: 49 days) and the tokens left, in
/// thousandths, so one compare-and-swap updates both.
#[derive(Debug)]
pub struct SourceLimiter {
    slots: Box<[AtomicU64]>,
    key: foldhash::fast::RandomState,
    epoch: Instant,
}

/// What a bucket allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Under the rate: serve it.
    Allowed,
    /// Over it: drop it.
    Limited,
}

impl SourceLimiter {
    /// An empty table (every bucket full), with its clock starting at `now`.
    pub fn new(now: Instant) -> Self {
        SourceLimiter {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            key: foldhash::fast::RandomState::default(),
            epoch: now,
        }
    }

    /// Takes one token from `source`'s bucket under `rate`.
    pub fn admit(&self, source: IpAddr, rate: Rate, now: Instant) -> Admission {
        if rate.per_second == 0 {
            return Admission::Allowed;
        }
        // Thousandths of a token, so a millisecond refills `per_second` of them exactly.
        let size = u64::from(rate.burst.max(1)) * 1000;
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        let slot = &self.slots[self.key.hash_one(source) as usize % SLOTS];
        let mut old = slot.load(Ordering::Relaxed);
        loop {
            let (then, left) = ((old >> 32) as u32, old & 0xffff_ffff);
            // A slot never used is 0; treat it (and anything that looks older than
            // 2^31 ms, a wrapped clock) as idle long enough to be full.
            let elapsed = now_ms.wrapping_sub(then);
            let tokens = if old == 0 || elapsed > (1 << 31) {
                size
            } else {
                (left + u64::from(elapsed) * u64::from(rate.per_second)).min(size)
            };
            let (admission, tokens) = if tokens >= 1000 {
                (Admission::Allowed, tokens - 1000)
            } else {
                (Admission::Limited, tokens)
            };
            // `| 1` keeps a used slot from reading as "never used" at now_ms = 0 with no
            // tokens left (a thousandth of a token is no rounding that matters).
            let new = (u64::from(now_ms) << 32) | tokens.min(0xffff_ffff) | 1;
            match slot.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return admission,
                Err(current) => old = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: Rate = Rate {
        per_second: 100,
        burst: 10,
    };

    /// The virtual clock's epoch; every other instant is an offset from it.
    #[expect(
        clippy::disallowed_methods,
        reason = "the virtual clock's epoch; never compared to real time"
    )]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allowed(l: &SourceLimiter, source: IpAddr, n: usize, now: Instant) -> usize {
        (0..n)
            .filter(|_| l.admit(source, RATE, now) == Admission::Allowed)
            .count()
    }

    #[test]
    fn a_burst_is_allowed_and_the_rest_limited_until_tokens_refill() {
        let t0 = epoch();
        let l = SourceLimiter::new(t0);
        let a = ip("192.0.2.1");
        assert_eq!(allowed(&l, a, 50, t0), 10);
        // 100/s: one token every 10 ms.
        assert_eq!(allowed(&l, a, 50, t0 + Duration::from_millis(5)), 0);
        assert_eq!(allowed(&l, a, 50, t0 + Duration::from_millis(30)), 3);
        // A quiet second fills the bucket again, but no higher than the burst.
        assert_eq!(allowed(&l, a, 50, t0 + Duration::from_secs(2)), 10);
    }

    #[test]
    fn over_time_a_flooding_source_gets_its_rate_and_no_more() {
        let t0 = epoch();
        let l = SourceLimiter::new(t0);
        let a = ip("2001:db8::7");
        // 10,000 requests a second for 3 s, in 1 ms steps.
        let got: usize = (0..3000)
            .map(|ms| allowed(&l, a, 10, t0 + Duration::from_millis(ms)))
            .sum();
        assert!((300..=311).contains(&got), "{got}");
    }

    #[test]
    fn one_source_flooding_leaves_the_others_their_own_buckets() {
        let t0 = epoch();
        let l = SourceLimiter::new(t0);
        assert_eq!(allowed(&l, ip("192.0.2.1"), 1000, t0), 10);
        let others = (0..200)
            .map(|i| IpAddr::from([198, 51, (i / 256) as u8, (i % 256) as u8]))
            .filter(|&o| allowed(&l, o, 5, t0) == 5)
            .count();
        // A few may share the flooder's slot by chance; nearly all have their own.
        assert!(others >= 198, "{others}");
    }

    #[test]
    fn a_zero_rate_means_no_limit() {
        let t0 = epoch();
        let l = SourceLimiter::new(t0);
        let off = Rate {
            per_second: 0,
            burst: 0,
        };
        assert!((0..10_000).all(|_| l.admit(ip("192.0.2.9"), off, t0) == Admission::Allowed));
    }

    #[test]
    fn shards_sharing_the_table_share_the_bucket() {
        let t0 = epoch();
        let l = std::sync::Arc::new(SourceLimiter::new(t0));
        let a = ip("192.0.2.1");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || allowed(&l, a, 1000, t0))
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 10);
    }
}
