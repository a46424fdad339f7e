//! Verified tokens by SHA-256 of the token text, so a client re-registering with the same
//! token skips the signature check. An entry lives until the token expires (plus leeway);
//! the cache is bounded, and a full shard first drops expired entries, then empties.
//! Locks are held only for a map operation, never during signature verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

use super::{Grant, LEEWAY_SECS, TokenError};

/// Default bound on cached tokens (about 100 bytes of key and bookkeeping plus the grant
/// each, so some tens of MiB when full).
pub(super) const DEFAULT_CAPACITY: usize = 200_000;
const SHARDS: usize = 16;

pub(super) type Key = [u8; 32];

pub(super) fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry {
    grant: Arc<Grant>,
    not_before: u64,
}

pub(super) struct Cache {
    shards: Box<[Mutex<HashMap<Key, Entry>>]>,
    per_shard: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // The key is a SHA-256 digest: any byte is uniformly distributed.
        self.shards[usize::from(key[0]) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `None` on a miss; otherwise the same answer a fresh verification would give now.
    pub fn get(&self, key: &Key, now: u64) -> Option<Result<Arc<Grant>, TokenError>> {
        let mut shard = self.shard(key);
        let entry = shard.get(key)?;
        if expired(entry, now) {
            shard.remove(key);
            return Some(Err(TokenError::Expired));
        }
        if entry.not_before > now.saturating_add(LEEWAY_SECS) {
            return Some(Err(TokenError::NotYetValid));
        }
        Some(Ok(Arc::clone(&entry.grant)))
    }

    pub fn insert(&self, key: Key, grant: Arc<Grant>, not_before: u64, now: u64) {
        let mut shard = self.shard(&key);
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, e| !expired(e, now));
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(key, Entry { grant, not_before });
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

fn expired(entry: &Entry, now: u64) -> bool {
    now > entry.grant.expires_at.saturating_add(LEEWAY_SECS)
}
