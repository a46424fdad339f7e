//! The pool of RTP/RTCP port pairs from `[server] rtp_ports`.
//!
//! Each call leg binds one pair: RTP on the even port, RTCP on the odd port after it
//! (RFC 3550 §11). A pair is handed out as a [`PortLease`]; dropping the lease returns the
//! pair, so a call that ends, fails or panics cannot leak its ports, and since a lease is
//! not `Clone` a pair cannot be returned twice (which would let two calls share it).
//!
//! Reuse is FIFO: a returned pair goes to the back of the queue and is handed out again
//! only after every other free pair. The far end of an ended call may keep sending for a
//! while (packets in flight, a BYE it has not seen, a phone that ignores it); with LIFO the
//! next call would get that port at once, and a relay that latches onto the first sender
//! (symmetric RTP) could latch onto the old call's peer and play its audio into the new
//! call. FIFO gives stray packets the longest possible time to die out against a closed
//! port. (LIFO would keep fewer ports warm in caches; that does not matter for UDP.)
//!
//! Allocation is a short critical section (one `Mutex` around a `VecDeque`), paid once per
//! leg setup, never per packet.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::PortRange;

/// An RTP port and the RTCP port after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortPair {
    /// Even.
    pub rtp: u16,
    /// `rtp + 1`.
    pub rtcp: u16,
}

/// Every pair of the range is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all {total} RTP port pairs are in use")]
pub struct PortsExhausted {
    /// How many pairs the pool has in all.
    pub total: usize,
}

impl PortsExhausted {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        "rtp_ports_exhausted"
    }

    /// What to answer the INVITE that needed the ports: 503 Service Unavailable (RFC 3261
    /// §21.5.4, a temporary overload), not 488, since nothing was wrong with the offer.
    pub const fn status(self) -> u16 {
        503
    }
}

/// The RTP port pool. Shared as `Arc<PortPool>` by every thread that sets up legs.
pub struct PortPool {
    /// The lowest RTP port; pair `i` is `first + 2i`.
    first: u16,
    state: Mutex<State>,
}

struct State {
    /// Free pair indices, the next to hand out at the front.
    free: VecDeque<u16>,
    /// `in_use[i]`: pair `i` is leased. Guards the queue against ever holding an index
    /// twice, whatever a future change to the lease code does.
    in_use: Vec<bool>,
}

impl PortPool {
    /// A pool of every whole even/odd pair inside `range`, in ascending order.
    ///
    /// `PortRange::parse` already insists on an even first port, an odd last port and no
    /// port 0; a hand-built range that breaks those rules is narrowed to the whole pairs
    /// it contains (possibly none, and then every allocation fails) rather than handing out
    /// an odd RTP port or port 0.
    pub fn new(range: PortRange) -> Arc<PortPool> {
        // Round the first port up to an even one that is not 0; u32 so 65535 cannot wrap.
        let first = u32::from(range.first).max(2).next_multiple_of(2);
        let last = u32::from(range.last);
        // Whole pairs among the ports first..=last (none if the range is empty).
        let pairs = (last + 1).saturating_sub(first) / 2;
        // `first` is at most 65536 only when `pairs` is 0, so it fits in a u16 whenever it
        // is used; the fallback never matters.
        let first = u16::try_from(first).unwrap_or(u16::MAX);
        let free: VecDeque<u16> = (0..pairs)
            .map(|i| u16::try_from(i).unwrap_or(u16::MAX))
            .collect();
        let in_use = vec![false; free.len()];
        Arc::new(PortPool {
            first,
            state: Mutex::new(State { free, in_use }),
        })
    }

    /// The state, even if a thread panicked while holding the lock: every critical section
    /// below leaves the queue and the flags consistent before it can panic, so the data is
    /// sound, and refusing all future calls over one panic would be worse.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pair(&self, index: u16) -> PortPair {
        // Cannot overflow: index < pairs, so first + 2 * index + 1 <= range.last.
        let rtp = self.first + 2 * index;
        PortPair { rtp, rtcp: rtp + 1 }
    }

    /// Lease the pair that has been free the longest.
    pub fn allocate(self: &Arc<Self>) -> Result<PortLease, PortsExhausted> {
        let mut state = self.state();
        let index = state.free.pop_front().ok_or(PortsExhausted {
            total: state.in_use.len(),
        })?;
        let slot = &mut state.in_use[usize::from(index)];
        debug_assert!(!*slot, "pair {index} was free and in use at once");
        *slot = true;
        drop(state);
        Ok(PortLease {
            pool: Arc::clone(self),
            index,
            pair: self.pair(index),
        })
    }

    fn release(&self, index: u16) {
        let mut state = self.state();
        let slot = &mut state.in_use[usize::from(index)];
        if std::mem::replace(slot, false) {
            // The queue never grows past its initial capacity (each index is in it at
            // most once), so this push does not allocate.
            state.free.push_back(index);
        }
    }

    /// Pairs free right now (for metrics; stale as soon as it is read).
    pub fn free_pairs(&self) -> usize {
        self.state().free.len()
    }

    /// Pairs in the pool, free or leased.
    pub fn total_pairs(&self) -> usize {
        self.state().in_use.len()
    }
}

impl fmt::Debug for PortPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("PortPool")
            .field("first", &self.first)
            .field("total_pairs", &state.in_use.len())
            .field("free_pairs", &state.free.len())
            .finish()
    }
}

/// One leased port pair. Dropping it (or calling [`PortLease::release`]) returns the pair
/// to the back of the pool's queue.
pub struct PortLease {
    pool: Arc<PortPool>,
    index: u16,
    pair: PortPair,
}

impl PortLease {
    /// The leased ports.
    pub fn pair(&self) -> PortPair {
        self.pair
    }

    /// The even RTP port.
    pub fn rtp(&self) -> u16 {
        self.pair.rtp
    }

    /// The odd RTCP port.
    pub fn rtcp(&self) -> u16 {
        self.pair.rtcp
    }

    /// Return the pair now; the same as dropping the lease, spelled out at call sites
    /// where the return is the point.
    pub fn release(self) {}
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

impl fmt::Debug for PortLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PortLease").field(&self.pair).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    #[test]
    fn pairs_are_even_rtp_then_odd_rtcp_in_ascending_order() {
        let pool = PortPool::new(PortRange::parse("20000-20005").unwrap());
        assert_eq!((pool.total_pairs(), pool.free_pairs()), (3, 3));
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        let c = pool.allocate().unwrap();
        assert_eq!(
            a.pair(),
            PortPair {
                rtp: 20000,
                rtcp: 20001
            }
        );
        assert_eq!((b.rtp(), b.rtcp()), (20002, 20003));
        assert_eq!((c.rtp(), c.rtcp()), (20004, 20005));
        assert_eq!(pool.free_pairs(), 0);
        assert_eq!(
            format!("{a:?}"),
            "PortLease(PortPair { rtp: 20000, rtcp: 20001 })"
        );
    }

    #[test]
    fn the_default_range_holds_5000_pairs() {
        let pool = PortPool::new(PortRange::default());
        assert_eq!(pool.total_pairs(), PortRange::default().pairs());
        assert_eq!(pool.total_pairs(), 5000);
    }

    #[test]
    fn exhaustion_is_an_error_until_a_pair_comes_back() {
        let pool = PortPool::new(range(10_000, 10_003));
        let a = pool.allocate().unwrap();
        let _b = pool.allocate().unwrap();
        let err = pool.allocate().unwrap_err();
        assert_eq!(err, PortsExhausted { total: 2 });
        assert_eq!((err.class(), err.status()), ("rtp_ports_exhausted", 503));
        assert_eq!(err.to_string(), "all 2 RTP port pairs are in use");
        a.release();
        assert_eq!(pool.free_pairs(), 1);
        assert_eq!(pool.allocate().unwrap().rtp(), 10_000);
    }

    #[test]
    fn reuse_is_fifo_so_a_returned_pair_waits_behind_all_others() {
        let pool = PortPool::new(range(20_000, 20_007)); // 4 pairs
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a.rtp(), b.rtp()), (20_000, 20_002));
        drop(b);
        drop(a);
        // The never-used pairs first, then b's, then a's: release order, not port order.
        let held: Vec<PortLease> = (0..4).map(|_| pool.allocate().unwrap()).collect();
        let ports: Vec<u16> = held.iter().map(PortLease::rtp).collect();
        assert_eq!(ports, [20_004, 20_006, 20_002, 20_000]);
    }

    #[test]
    fn hand_built_ranges_are_narrowed_to_whole_pairs() {
        // Odd first port: starts at the next even one.
        let pool = PortPool::new(range(20_001, 20_005));
        assert_eq!(pool.total_pairs(), 2);
        assert_eq!(pool.allocate().unwrap().rtp(), 20_002);
        // Even last port: the lone RTP port without its RTCP partner is left out.
        assert_eq!(PortPool::new(range(20_000, 20_004)).total_pairs(), 2);
        // Port 0 is never handed out.
        let pool = PortPool::new(range(0, 3));
        assert_eq!(pool.total_pairs(), 1);
        assert_eq!(pool.allocate().unwrap().rtp(), 2);
        // Empty, inverted, and the very top of the port space.
        assert_eq!(PortPool::new(range(20_000, 20_000)).total_pairs(), 0);
        assert_eq!(PortPool::new(range(30_000, 20_001)).total_pairs(), 0);
        assert_eq!(PortPool::new(range(65_535, 65_535)).total_pairs(), 0);
        let top = PortPool::new(range(65_534, 65_535));
        assert_eq!(
            top.allocate().unwrap().pair(),
            PortPair {
                rtp: 65_534,
                rtcp: 65_535
            }
        );
        assert!(PortPool::new(range(20_000, 20_000)).allocate().is_err());
    }

    #[test]
    fn concurrent_allocate_and_release_never_hand_out_a_pair_twice() {
        const PAIRS: usize = 16;
        const THREADS: usize = 8;
        let pool = PortPool::new(range(40_000, 40_000 + 2 * PAIRS as u16 - 1));
        // One flag per pair: set while some thread holds it. Finding it already set on
        // allocation would mean the pool gave the same pair to two holders.
        let held: Arc<Vec<AtomicBool>> =
            Arc::new((0..PAIRS).map(|_| AtomicBool::new(false)).collect());
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, held) = (Arc::clone(&pool), Arc::clone(&held));
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..5_000usize {
                        // Hold up to three pairs at a time, so the pool runs dry often.
                        if mine.len() < 3 && (i + t) % 4 != 0 {
                            match pool.allocate() {
                                Ok(lease) => {
                                    let slot = usize::from((lease.rtp() - 40_000) / 2);
                                    assert!(
                                        !held[slot].swap(true, Ordering::SeqCst),
                                        "pair {lease:?} handed out twice"
                                    );
                                    mine.push(lease);
                                }
                                // 8 threads holding up to 3 of 16 pairs: this happens
                                // whenever the threads overlap.
                                Err(PortsExhausted { total }) => assert_eq!(total, PAIRS),
                            }
                        } else if let Some(lease) = mine.pop() {
                            // Clear the flag before the pair goes back, or another thread
                            // could lease it and find the flag still set.
                            let slot = usize::from((lease.rtp() - 40_000) / 2);
                            assert!(held[slot].swap(false, Ordering::SeqCst));
                            drop(lease);
                        }
                    }
                    for lease in mine {
                        let slot = usize::from((lease.rtp() - 40_000) / 2);
                        assert!(held[slot].swap(false, Ordering::SeqCst));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(pool.free_pairs(), PAIRS);
        assert!(held.iter().all(|h| !h.load(Ordering::SeqCst)));
        // Every pair is still in the queue exactly once.
        let mut all: Vec<PortLease> = (0..PAIRS).map(|_| pool.allocate().unwrap()).collect();
        assert!(pool.allocate().is_err());
        all.sort_by_key(PortLease::rtp);
        let ports: Vec<u16> = all.iter().map(PortLease::rtp).collect();
        let expected: Vec<u16> = (0..PAIRS as u16).map(|i| 40_000 + 2 * i).collect();
        assert_eq!(ports, expected);
    }
}
