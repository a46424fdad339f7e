//! A map keyed by AOR, split into independently locked shards so SIP shards working on
//! different AORs rarely wait for each other. Locks are held only for in-memory work,
//! never across an `.await`.

use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;
use foldhash::{HashMap, HashSet};

use super::binding::AorKey;

/// Default shard count: a power of two well above the core count of the target machines.
pub(crate) const SHARDS: usize = 32;

/// Hashed with foldhash, randomly seeded per process, as every map keyed by what peers
/// choose (identities are whatever the token minter wrote). std's SipHash showed as 1.6 %
/// of the switch's samples in a profile at 40,000 REGISTER/s.
pub(crate) struct Shards<V> {
    hasher: RandomState,
    shards: Box<[Mutex<Shard<V>>]>,
}

/// One shard's map, and the account names its keys share.
pub(crate) struct Shard<V> {
    map: HashMap<AorKey, V>,
    /// One copy of each account name a key of this shard has held. A registration's key
    /// is built from its request, with an account name of its own; the key stored in the
    /// map points at this copy instead, so 100,000 identities of an account hold one name,
    /// not 100,000. Only ever grows: the accounts are configured ones (a stored key comes
    /// from an authenticated registration, a call of a configured account, or another
    /// node's copy of those), a few per switch.
    accounts: HashSet<Arc<str>>,
}

impl<V> Shard<V> {
    /// `HashMap::insert`, with the key's account name replaced by the shard's copy.
    pub(crate) fn insert(&mut self, key: AorKey, value: V) -> Option<V> {
        let key = self.shared(key);
        self.map.insert(key, value)
    }

    /// `key`'s value, inserting `value` (under a key sharing the account name) if absent.
    pub(crate) fn get_or_insert(&mut self, key: AorKey, value: V) -> &mut V {
        let key = self.shared(key);
        self.map.entry(key).or_insert(value)
    }

    fn shared(&mut self, mut key: AorKey) -> AorKey {
        match self.accounts.get(&key.account) {
            Some(shared) => key.account = Arc::clone(shared),
            None => {
                self.accounts.insert(Arc::clone(&key.account));
            }
        }
        key
    }
}

impl<V> Default for Shard<V> {
    fn default() -> Self {
        Shard {
            map: HashMap::default(),
            accounts: HashSet::default(),
        }
    }
}

/// Reads and in-place updates go to the map as they are. New keys go in through
/// `Shard::insert` (found before the map's own) or `get_or_insert`, which share the
/// account name; the map's `entry` would store the key's own copy.
impl<V> Deref for Shard<V> {
    type Target = HashMap<AorKey, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<V> DerefMut for Shard<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl<V> Shards<V> {
    pub(crate) fn new(n: usize) -> Self {
        Shards {
            hasher: RandomState::default(),
            shards: (0..n.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    /// The shard holding `key`, locked.
    pub(crate) fn lock(&self, key: &AorKey) -> MutexGuard<'_, Shard<V>> {
        // The modulo of a 64-bit hash: the shard count needs no special form.
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        lock(&self.shards[i])
    }

    /// Each shard in turn, locked one at a time.
    pub(crate) fn each(&self) -> impl Iterator<Item = MutexGuard<'_, Shard<V>>> {
        self.shards.iter().map(lock)
    }
}

/// A panic while a shard was locked leaves a map whose every entry is still valid (all
/// updates are computed before they are stored), so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_of_one_account_share_its_name() {
        let shards: Shards<u32> = Shards::new(1);
        let account = "AC0123456789abcdef0123456789abcdef";
        for (i, identity) in ["alice", "bob", "carol"].into_iter().enumerate() {
            // Each key arrives with its own copy of the name, as a request's would.
            let key = AorKey::new(String::from(account), identity);
            shards.lock(&key).insert(key, i as u32);
        }
        let other = AorKey::new("AC00000000000000000000000000000002", "alice");
        shards.lock(&other).insert(other, 9);

        let shard = shards.each().next().unwrap();
        let names: Vec<&Arc<str>> = shard
            .keys()
            .filter(|k| &*k.account == account)
            .map(|k| &k.account)
            .collect();
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| Arc::ptr_eq(n, names[0])), "one copy");
        assert_eq!(shard.accounts.len(), 2);
        // Lookups by a key with its own copy still find the entries.
        let probe = AorKey::new(String::from(account), "bob");
        assert_eq!(shard.get(&probe), Some(&1));
    }
}
