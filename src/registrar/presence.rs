//! Presence: a registration *is* presence (DESIGN.md, "REGISTER as presence").
//!
//! An identity is `offline` with no live binding, `busy` with one and a call in progress,
//! `available` otherwise. An identity never seen is `offline` (and has no change time).
//! Status is derived, never set: from the live binding count the location store reports
//! and from a busy counter that call handling raises and lowers.
//!
//! Who calls what:
//! - after a successful `LocationStore::register`, the registrar calls
//!   [`Presence::sync`] (it re-reads the AOR's live count under this module's lock, so two
//!   REGISTERs for one AOR racing on two SIP shards cannot leave a stale status);
//!   [`Presence::on_bindings`] is the same with a count the caller already has, for a
//!   caller that serializes per AOR (tests, a cluster feed);
//! - a periodic task calls [`Presence::sweep`] (every few seconds), which expires bindings
//!   in the store and marks the AORs left without any offline: spawn [`run_sweeper`];
//! - call handling calls [`Presence::set_busy`] with `true` when a client's leg is
//!   answered and `false` when it ends, exactly once each (it counts, so two calls need
//!   two `false`);
//! - the REST API reads [`Presence::get`] and [`Presence::list`]; `/metrics` reads
//!   [`Presence::counts`]; whoever wants changes (presence callbacks, a cluster feed)
//!   calls [`Presence::subscribe`].
//!
//! Every change is broadcast once, in order per identity (it is sent under the identity's
//! lock). A slow subscriber that falls more than `CHANNEL` changes behind gets
//! `RecvError::Lagged` and should re-read `list`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::location::shards::{SHARDS, Shard, Shards};
use super::location::{AorKey, LocationStore};

/// Changes a subscriber may fall behind by before it lags.
const CHANNEL: usize = 1024;

/// What other parties see of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// At least one live binding, no call.
    Available,
    /// At least one live binding and in a call.
    Busy,
    /// No live binding.
    Offline,
}

impl PresenceStatus {
    /// The lowercase name used in JSON and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Available => "available",
            PresenceStatus::Busy => "busy",
            PresenceStatus::Offline => "offline",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One status change, as broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceChange {
    pub account: Box<str>,
    pub identity: Box<str>,
    pub status: PresenceStatus,
    /// Unix seconds.
    pub at: u64,
    /// Which node of a cluster reports it (presence callbacks).
    #[serde(skip)]
    pub reporter: Reporter,
}

/// Which node of a cluster reports a change: every node sees every change, the customer
/// should hear of it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reporter {
    /// This node caused it (a REGISTER or a call here): it reports. Always so alone.
    #[default]
    This,
    /// Another node caused it and reports it.
    Another,
    /// Nobody caused it (a registration lapsed, seen by every node at once): the first
    /// node to claim it reports ([`PresenceLink::claim`]).
    Claim,
}

/// The status of one identity and when it last changed (`None`: never seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceState {
    pub status: PresenceStatus,
    pub changed_at: Option<u64>,
}

impl PresenceState {
    /// An identity never seen.
    pub const UNKNOWN: PresenceState = PresenceState {
        status: PresenceStatus::Offline,
        changed_at: None,
    };
}

/// How many recorded identities are in each status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PresenceCounts {
    pub available: usize,
    pub busy: usize,
    pub offline: usize,
}

/// What is kept per identity seen.
struct Entry {
    /// Live bindings, as last reported.
    bindings: usize,
    /// Calls in progress.
    busy: u32,
    status: PresenceStatus,
    changed_at: u64,
}

impl Entry {
    fn derived(&self) -> PresenceStatus {
        match (self.bindings, self.busy) {
            (0, _) => PresenceStatus::Offline,
            (_, 0) => PresenceStatus::Available,
            _ => PresenceStatus::Busy,
        }
    }
}

/// What a cluster adds to presence (`location::redis`): busy counts shared between
/// nodes, and one presence callback per change in the whole cluster rather than one per
/// node.
pub trait PresenceLink: Send + Sync {
    /// A call of `key` on this node started (`+1`) or ended (`-1`) at `at`. The cluster's
    /// total comes back through [`Presence::set_busy_total`] on every node.
    fn busy(&self, key: &AorKey, delta: i32, at: u64);
    /// Whether this node is the one to report `change` (the first to claim it). Every node
    /// sees every change, with the same `at`, so the claim names one.
    fn claim<'a>(
        &'a self,
        change: &'a PresenceChange,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// Per-identity presence for every account, sharded like the location store.
pub struct Presence {
    entries: Shards<Entry>,
    /// Entries per status, indexed by `PresenceStatus::index`.
    counts: [AtomicUsize; 3],
    tx: broadcast::Sender<PresenceChange>,
    /// The cluster, when the store is shared.
    link: OnceLock<Arc<dyn PresenceLink>>,
}

impl Default for Presence {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Presence {
    pub fn new() -> Self {
        Presence {
            entries: Shards::new(SHARDS),
            counts: Default::default(),
            tx: broadcast::channel(CHANNEL).0,
            link: OnceLock::new(),
        }
    }

    /// Joins a cluster: busy counts go through `link` (set once, at start).
    pub fn set_link(&self, link: Arc<dyn PresenceLink>) {
        let _ = self.link.set(link);
    }

    /// The cluster link, if any (presence callbacks claim their changes through it).
    pub fn link(&self) -> Option<Arc<dyn PresenceLink>> {
        self.link.get().cloned()
    }

    /// Receive every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PresenceChange> {
        self.tx.subscribe()
    }

    /// `key` has `count` live bindings now. Returns the change, if the status changed.
    /// A count of 0 for an identity never seen records nothing.
    pub fn on_bindings(&self, key: &AorKey, count: usize, now: u64) -> Option<PresenceChange> {
        self.update(key, now, Reporter::This, count > 0, |e| e.bindings = count)
    }

    /// Re-read `key`'s live binding count from `store` and record it. The read happens
    /// under this identity's presence lock, so whichever of two racing updates records
    /// last also read last, and the status matches the store.
    pub fn sync(
        &self,
        key: &AorKey,
        store: &dyn LocationStore,
        now: u64,
    ) -> Option<PresenceChange> {
        self.sync_as(key, store, now, Reporter::This)
    }

    /// [`Presence::sync`] for a change `reporter` reports (a cluster feed, a lapse).
    pub fn sync_as(
        &self,
        key: &AorKey,
        store: &dyn LocationStore,
        now: u64,
        reporter: Reporter,
    ) -> Option<PresenceChange> {
        let mut map = self.entries.lock(key);
        let count = store.live_count(key, now);
        self.update_locked(&mut map, key, now, reporter, count > 0, |e| {
            e.bindings = count
        })
    }

    /// A call of `key` started (`true`) or ended (`false`). Busy shows only while the
    /// identity has a live binding. In a cluster the count is the cluster's: it goes to
    /// the store, and the total comes back to every node, this one included, in the
    /// store's order (`set_busy_total`).
    pub fn set_busy(&self, key: &AorKey, busy: bool, now: u64) -> Option<PresenceChange> {
        if let Some(link) = self.link.get() {
            link.busy(key, if busy { 1 } else { -1 }, now);
            return None;
        }
        self.update(key, now, Reporter::This, busy, |e| {
            e.busy = if busy {
                e.busy.saturating_add(1)
            } else {
                e.busy.saturating_sub(1)
            };
        })
    }

    /// `key` has `total` calls in progress on all nodes of the cluster, as of `at`.
    pub fn set_busy_total(
        &self,
        key: &AorKey,
        total: u32,
        at: u64,
        reporter: Reporter,
    ) -> Option<PresenceChange> {
        self.update(key, at, reporter, total > 0, |e| e.busy = total)
    }

    /// Expire bindings in `store` and mark the AORs left without any offline. Returns the
    /// changes (also broadcast).
    pub fn sweep(&self, store: &dyn LocationStore, now: u64) -> Vec<PresenceChange> {
        store
            .sweep(now)
            .iter()
            .filter_map(|l| self.sync_as(&l.key, store, l.at, Reporter::Claim))
            .collect()
    }

    /// The presence of `key`.
    pub fn get(&self, key: &AorKey) -> PresenceState {
        self.entries
            .lock(key)
            .get(key)
            .map_or(PresenceState::UNKNOWN, |e| PresenceState {
                status: e.status,
                changed_at: Some(e.changed_at),
            })
    }

    /// Every identity of `account` ever seen (since the last `prune`), sorted.
    pub fn list(&self, account: &str) -> Vec<(Box<str>, PresenceState)> {
        let mut out = Vec::new();
        for map in self.entries.each() {
            for (key, e) in map.iter() {
                if &*key.account == account {
                    let state = PresenceState {
                        status: e.status,
                        changed_at: Some(e.changed_at),
                    };
                    out.push((key.identity.clone(), state));
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Identities per status.
    pub fn counts(&self) -> PresenceCounts {
        let get = |s: PresenceStatus| self.counts[s.index()].load(Ordering::Relaxed);
        PresenceCounts {
            available: get(PresenceStatus::Available),
            busy: get(PresenceStatus::Busy),
            offline: get(PresenceStatus::Offline),
        }
    }

    /// Forget identities offline, not in a call, since before `before` (unix seconds), so
    /// identities that stopped registering long ago do not accumulate. Returns how many.
    pub fn prune(&self, before: u64) -> usize {
        let mut removed = 0;
        for mut map in self.entries.each() {
            map.retain(|_, e| {
                let keep =
                    e.status != PresenceStatus::Offline || e.busy > 0 || e.changed_at >= before;
                removed += usize::from(!keep);
                keep
            });
        }
        self.counts[PresenceStatus::Offline.index()].fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    fn update(
        &self,
        key: &AorKey,
        now: u64,
        reporter: Reporter,
        create: bool,
        change: impl FnOnce(&mut Entry),
    ) -> Option<PresenceChange> {
        let mut map = self.entries.lock(key);
        self.update_locked(&mut map, key, now, reporter, create, change)
    }

    /// Apply `change` to `key`'s entry (creating it, offline, when `create`), re-derive
    /// the status, count and broadcast a change.
    fn update_locked(
        &self,
        map: &mut Shard<Entry>,
        key: &AorKey,
        now: u64,
        reporter: Reporter,
        create: bool,
        change: impl FnOnce(&mut Entry),
    ) -> Option<PresenceChange> {
        let entry = match map.get_mut(key) {
            Some(e) => e,
            None if create => {
                self.counts[PresenceStatus::Offline.index()].fetch_add(1, Ordering::Relaxed);
                map.get_or_insert(
                    key.clone(),
                    Entry {
                        bindings: 0,
                        busy: 0,
                        status: PresenceStatus::Offline,
                        changed_at: now,
                    },
                )
            }
            None => return None,
        };
        change(entry);
        let status = entry.derived();
        if status == entry.status {
            return None;
        }
        self.counts[entry.status.index()].fetch_sub(1, Ordering::Relaxed);
        self.counts[status.index()].fetch_add(1, Ordering::Relaxed);
        entry.status = status;
        entry.changed_at = now;
        let ev = PresenceChange {
            account: Box::from(&*key.account),
            identity: key.identity.clone(),
            status,
            at: now,
            reporter,
        };
        // No subscriber is not an error.
        let _ = self.tx.send(ev.clone());
        Some(ev)
    }
}

/// Sweep `store` into `presence` every `every`, reading the time from `clock` (unix
/// seconds), until the task is dropped. Spawn it once per switch.
pub async fn run_sweeper(
    presence: Arc<Presence>,
    store: Arc<dyn LocationStore>,
    every: Duration,
    clock: fn() -> u64,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let changes = presence.sweep(store.as_ref(), clock());
        if !changes.is_empty() {
            tracing::debug!(offline = changes.len(), "registrations expired");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::location::{Binding, MemoryStore, RegisterRequest};
    use crate::sip::peer::Transport;

    fn key(id: &str) -> AorKey {
        AorKey::new("AC00000000000000000000000000000001", id)
    }

    #[test]
    fn unknown_is_offline_without_time() {
        let p = Presence::new();
        assert_eq!(p.get(&key("ghost")), PresenceState::UNKNOWN);
        // A zero count for an unseen identity records nothing.
        assert_eq!(p.on_bindings(&key("ghost"), 0, 5), None);
        assert_eq!(p.get(&key("ghost")), PresenceState::UNKNOWN);
        assert!(p.list("AC00000000000000000000000000000001").is_empty());
        assert_eq!(p.counts(), PresenceCounts::default());
    }

    #[test]
    fn transitions_and_broadcast() {
        let p = Presence::new();
        let mut rx = p.subscribe();
        let alice = key("alice");

        let ch = p.on_bindings(&alice, 1, 100).expect("came online");
        assert_eq!(ch.status, PresenceStatus::Available);
        assert_eq!(rx.try_recv().expect("broadcast"), ch);
        // Another binding: still available, no change, nothing sent.
        assert_eq!(p.on_bindings(&alice, 2, 110), None);
        assert!(rx.try_recv().is_err());
        assert_eq!(
            p.get(&alice),
            PresenceState {
                status: PresenceStatus::Available,
                changed_at: Some(100)
            }
        );

        // Busy wins over available; two calls need two ends.
        assert_eq!(
            p.set_busy(&alice, true, 120).map(|c| c.status),
            Some(PresenceStatus::Busy)
        );
        assert_eq!(p.set_busy(&alice, true, 121), None);
        assert_eq!(p.set_busy(&alice, false, 122), None);
        assert_eq!(p.counts().busy, 1);
        let ch = p.set_busy(&alice, false, 130).expect("call ended");
        assert_eq!(ch.status, PresenceStatus::Available);
        assert_eq!(ch.at, 130);

        // In a call when the last binding goes: offline, and busy does not show until it
        // registers again.
        p.set_busy(&alice, true, 140);
        assert_eq!(
            p.on_bindings(&alice, 0, 150).map(|c| c.status),
            Some(PresenceStatus::Offline)
        );
        assert_eq!(
            p.on_bindings(&alice, 1, 160).map(|c| c.status),
            Some(PresenceStatus::Busy)
        );
        p.set_busy(&alice, false, 170);

        let seen: Vec<PresenceStatus> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.status)
            .collect();
        use PresenceStatus::*;
        assert_eq!(seen, [Busy, Available, Busy, Offline, Busy, Available]);
        assert_eq!(
            p.counts(),
            PresenceCounts {
                available: 1,
                busy: 0,
                offline: 0
            }
        );
        // An extra end never goes negative.
        assert_eq!(p.set_busy(&alice, false, 180), None);
        assert_eq!(p.get(&alice).status, Available);
    }

    #[test]
    fn list_and_prune() {
        let p = Presence::new();
        p.on_bindings(&key("bob"), 1, 10);
        p.on_bindings(&key("alice"), 1, 10);
        p.on_bindings(&AorKey::new("AC2", "carol"), 1, 10);
        p.on_bindings(&key("bob"), 0, 20);
        let l = p.list("AC00000000000000000000000000000001");
        let names: Vec<&str> = l.iter().map(|(i, _)| &**i).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(l[1].1.status, PresenceStatus::Offline);
        assert_eq!(p.prune(20), 0, "changed at 20 is not before 20");
        assert_eq!(p.prune(21), 1);
        assert_eq!(p.get(&key("bob")), PresenceState::UNKNOWN);
        assert_eq!(p.counts().offline, 0);
        assert_eq!(p.counts().available, 2);
    }

    /// Registers one binding for `key` at time 0 that lapses at 100.
    fn register_until_100(store: &dyn LocationStore, key: &AorKey) {
        let req = RegisterRequest {
            key: key.clone(),
            call_id: "c1".into(),
            cseq: 1,
            wildcard_remove: false,
            updates: vec![crate::registrar::location::ContactUpdate::Add(binding(
                "sip:alice@192.0.2.1",
                100,
            ))],
            max_contacts: 10,
            now: 0,
        };
        crate::registrar::location::ready(store.register(req)).expect("registered");
    }

    fn binding(contact: &str, expires_at: u64) -> Binding {
        Binding {
            contact: contact.into(),
            expires_at,
            call_id: "c1".into(),
            cseq: 1,
            instance: None,
            reg_id: None,
            path: Box::default(),
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
            user_agent: None,
            q: None,
            registered_at: 0,
            edge: None,
        }
    }

    #[test]
    fn sync_and_sweep_follow_the_store() {
        let store = MemoryStore::new();
        let p = Presence::new();
        let alice = key("alice");
        register_until_100(&store, &alice);
        let ch = p.sync(&alice, &store, 0).expect("online");
        assert_eq!(ch.status, PresenceStatus::Available);
        assert!(p.sweep(&store, 99).is_empty());
        let changes = p.sweep(&store, 100);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].status, PresenceStatus::Offline);
        assert_eq!(changes[0].at, 100);
        assert_eq!(p.get(&alice).status, PresenceStatus::Offline);
    }

    #[tokio::test]
    async fn sweeper_task_marks_expired_offline() {
        let store: Arc<dyn LocationStore> = Arc::new(MemoryStore::new());
        let p = Arc::new(Presence::new());
        let alice = key("alice");
        register_until_100(store.as_ref(), &alice);
        p.sync(&alice, store.as_ref(), 0);
        let mut rx = p.subscribe();
        // A clock already past the expiry: the first tick sweeps it.
        let task = tokio::spawn(run_sweeper(
            p.clone(),
            store.clone(),
            Duration::from_secs(5),
            || 1000,
        ));
        let change = rx.recv().await.expect("offline change");
        assert_eq!(change.status, PresenceStatus::Offline);
        // Dated when the binding lapsed (the same on every node of a cluster), not when
        // this sweep noticed.
        assert_eq!(change.at, 100);
        assert_eq!(store.binding_count(), 0);
        task.abort();
    }
}
