//! A map keyed by AOR, split into independently locked shards so SIP shards working on
//! different AORs rarely wait for each other. Locks are held only for in-memory work,
//! never across an `.await`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::binding::AorKey;

/// Default shard count: a power of two well above the core count of the target machines.
pub(crate) const SHARDS: usize = 32;

pub(crate) struct Shards<V> {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<AorKey, V>>]>,
}

impl<V> Shards<V> {
    pub(crate) fn new(n: usize) -> Self {
        Shards {
            hasher: RandomState::new(),
            shards: (0..n.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    /// The shard holding `key`, locked.
    pub(crate) fn lock(&self, key: &AorKey) -> MutexGuard<'_, HashMap<AorKey, V>> {
        // The modulo of a 64-bit hash: the shard count needs no special form.
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        lock(&self.shards[i])
    }

    /// Each shard in turn, locked one at a time.
    pub(crate) fn each(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<AorKey, V>>> {
        self.shards.iter().map(lock)
    }
}

/// A panic while a shard was locked leaves a map whose every entry is still valid (all
/// updates are computed before they are stored), so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
