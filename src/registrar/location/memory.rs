//! The in-process location store: one switch, lost on restart.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::binding::{AorKey, Binding};
use super::shards::{SHARDS, Shards};
use super::store::{
    Lapsed, LocationStore, RegisterError, RegisterFuture, RegisterOutcome, RegisterRequest,
};
use super::update::{self, Changes};
use crate::registrar::presence::PresenceStatus;

/// Bindings in sharded maps, one exactly sized slice per AOR (an AOR with no binding has
/// no entry).
pub struct MemoryStore {
    aors: Shards<Box<[Binding]>>,
    /// Bindings held, expired ones included until swept.
    bindings: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_shards(SHARDS)
    }

    /// A store with `n` lock shards (at least one).
    pub fn with_shards(n: usize) -> Self {
        MemoryStore {
            aors: Shards::new(n),
            bindings: AtomicUsize::new(0),
        }
    }

    fn adjust(&self, before: usize, after: usize) {
        if after >= before {
            self.bindings.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.bindings.fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("bindings", &self.binding_count())
            .finish_non_exhaustive()
    }
}

fn live(bindings: &[Binding], now: u64) -> Vec<Binding> {
    bindings
        .iter()
        .filter(|b| b.is_live(now))
        .cloned()
        .collect()
}

impl MemoryStore {
    /// `LocationStore::register`, which never waits here.
    pub fn register_now(&self, req: RegisterRequest) -> Result<RegisterOutcome, RegisterError> {
        let RegisterRequest {
            key,
            call_id,
            cseq,
            wildcard_remove,
            updates,
            max_contacts,
            now,
        } = req;
        let changes = Changes {
            wildcard: wildcard_remove.then_some((call_id, cseq)),
            updates,
            max_contacts,
            now,
        };
        let mut map = self.aors.lock(&key);
        let plan = update::plan(map.get(&key).map_or(&[], |b| &b[..]), changes)?;
        let live_before = plan.live_before;
        let (held_before, bindings) = match map.get_mut(&key) {
            Some(slot) => {
                let old = std::mem::take(slot);
                let held = old.len();
                *slot = update::commit(old, plan);
                let bindings = slot.to_vec();
                if slot.is_empty() {
                    map.remove(&key);
                }
                (held, bindings)
            }
            None => {
                let new = update::commit(Box::default(), plan);
                let bindings = new.to_vec();
                if !new.is_empty() {
                    map.insert(key, new);
                }
                (0, bindings)
            }
        };
        drop(map);
        self.adjust(held_before, bindings.len());
        let presence_changed = match (live_before, bindings.len()) {
            (0, n) if n > 0 => Some(PresenceStatus::Available),
            (b, 0) if b > 0 => Some(PresenceStatus::Offline),
            _ => None,
        };
        Ok(RegisterOutcome {
            bindings,
            presence_changed,
        })
    }

    /// The bindings `key` has with everything held (expired ones too), for a replica that
    /// compares before it writes.
    pub fn held(&self, key: &AorKey) -> Vec<Binding> {
        self.aors
            .lock(key)
            .get(key)
            .map_or_else(Vec::new, |b| b.to_vec())
    }

    /// Sets `key`'s bindings as another writer left them (a replica of a shared store).
    pub fn replace(&self, key: &AorKey, bindings: Box<[Binding]>) {
        let after = bindings.len();
        let mut map = self.aors.lock(key);
        let old = if bindings.is_empty() {
            map.remove(key)
        } else {
            map.insert(key.clone(), bindings)
        };
        drop(map);
        self.adjust(old.map_or(0, |o| o.len()), after);
    }

    /// Every AOR held.
    pub fn keys(&self) -> Vec<AorKey> {
        let mut out = Vec::new();
        for map in self.aors.each() {
            out.extend(map.keys().cloned());
        }
        out
    }
}

impl LocationStore for MemoryStore {
    fn register(&self, req: RegisterRequest) -> RegisterFuture<'_> {
        Box::pin(std::future::ready(self.register_now(req)))
    }

    fn lookup(&self, key: &AorKey, now: u64) -> Vec<Binding> {
        self.aors
            .lock(key)
            .get(key)
            .map_or_else(Vec::new, |b| live(b, now))
    }

    fn live_count(&self, key: &AorKey, now: u64) -> usize {
        self.aors
            .lock(key)
            .get(key)
            .map_or(0, |b| b.iter().filter(|b| b.is_live(now)).count())
    }

    fn list(&self, account: &str, now: u64) -> Vec<(Box<str>, Vec<Binding>)> {
        let mut out = Vec::new();
        for map in self.aors.each() {
            for (key, bindings) in map.iter() {
                if &*key.account == account {
                    let l = live(bindings, now);
                    if !l.is_empty() {
                        out.push((key.identity.clone(), l));
                    }
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn sweep(&self, now: u64) -> Vec<Lapsed> {
        let mut offline = Vec::new();
        let mut dropped = 0;
        for mut map in self.aors.each() {
            map.retain(|key, bindings| {
                let n = bindings.iter().filter(|b| b.is_live(now)).count();
                if n == bindings.len() {
                    return true;
                }
                dropped += bindings.len() - n;
                if n == 0 {
                    offline.push(Lapsed {
                        key: key.clone(),
                        at: bindings.iter().map(|b| b.expires_at).max().unwrap_or(now),
                    });
                    return false;
                }
                let old = std::mem::take(bindings);
                *bindings = old
                    .into_vec()
                    .into_iter()
                    .filter(|b| b.is_live(now))
                    .collect();
                true
            });
        }
        self.bindings.fetch_sub(dropped, Ordering::Relaxed);
        offline
    }

    fn binding_count(&self) -> usize {
        self.bindings.load(Ordering::Relaxed)
    }
}
