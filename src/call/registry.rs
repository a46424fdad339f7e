//! Live and recently finished calls: what `GET Calls.json` lists, what `POST
//! Calls/{Sid}.json` reaches, and where finished calls leave their CDR.
//!
//! Call tasks write (insert, update, finish); the REST API reads from synchronous
//! handlers. Every operation takes a std lock briefly and never across an `.await`, and
//! closures passed to `update`/`finish` run under the lock, so they must be quick and must
//! not call back into the registry. Lock order: a live shard, then `recent` (only
//! `finish` holds both); nothing takes a shard while holding `recent`.
//!
//! Live calls sit in shards (by sid hash) so thousands of call tasks updating their
//! records do not queue on one lock. A finished call moves to a bounded "recent" list
//! (the newest `keep_finished`), as Twilio keeps call logs after the fact; older ones live
//! on only in the CDR file.
//!
//! A live call may carry a control handle, the sending side of its task's command
//! channel, which REST modify uses. The handle is dropped when the call finishes, so a
//! finished call can never be told anything.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;

use super::cdr::CdrWriter;
use super::model::{CallCommand, CallInfo, CallStatus};
use super::tenant_limits::TenantLimits;

/// Live-call shards; a power of two comfortably above the core count.
const SHARDS: usize = 32;

/// `keep_finished` when none is configured.
pub const DEFAULT_KEEP_FINISHED: usize = 10_000;

/// What `list` selects (Twilio's `Calls.json` filters); `None` matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    pub parent_call_sid: Option<String>,
    pub status: Option<CallStatus>,
    /// 0-based page of `page_size` calls.
    pub page: usize,
    pub page_size: usize,
}

impl Default for CallFilter {
    fn default() -> Self {
        CallFilter {
            to: None,
            from: None,
            parent_call_sid: None,
            status: None,
            page: 0,
            page_size: 50,
        }
    }
}

impl CallFilter {
    fn matches(&self, c: &CallInfo) -> bool {
        self.to.as_ref().is_none_or(|t| *t == c.to)
            && self.from.as_ref().is_none_or(|f| *f == c.from)
            && self
                .parent_call_sid
                .as_ref()
                .is_none_or(|p| c.parent_call_sid.as_ref() == Some(p))
            && self.status.is_none_or(|s| s == c.status)
            && c.trunk.as_deref() != Some(super::hop::TRUNK)
    }
}

/// One page of `list_page`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPage {
    /// Newest first.
    pub calls: Vec<CallInfo>,
    /// Whether a later page has more.
    pub has_more: bool,
}

/// Why `send` could not deliver a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such call for this account (never existed, another account's, or finished so
    /// long ago it is forgotten).
    #[error("no such call")]
    Unknown,
    /// The call has ended (Twilio 21220: "call is not in-progress").
    #[error("the call is not in progress")]
    Finished,
    /// The call is live but takes no commands (a `<Dial>` child leg: its parent runs it).
    #[error("the call cannot be modified")]
    NotControllable,
}

struct Live {
    info: CallInfo,
    control: Option<UnboundedSender<CallCommand>>,
}

/// Finished calls, oldest at the front.
struct Recent {
    order: VecDeque<Arc<str>>,
    by_sid: HashMap<Arc<str>, CallInfo>,
}

/// Live and recently finished calls; share it as `Arc<CallRegistry>`.
pub struct CallRegistry {
    shards: Box<[Mutex<HashMap<String, Live>>]>,
    hasher: RandomState,
    live: AtomicUsize,
    recent: Mutex<Recent>,
    keep_finished: usize,
    cdr: Option<CdrWriter>,
    /// Calls finished since start, by status (`CallStatus::ALL` order), for /metrics.
    finished: [AtomicU64; CallStatus::ALL.len()],
    /// Inbound calls between their INVITE and its final answer: the backlog new INVITEs are
    /// shed against (`[calls] max_setups`).
    setups: Arc<AtomicUsize>,
    /// INVITEs refused with 503 because of that backlog, for /metrics.
    shed: AtomicU64,
    /// Live calls per account and per client identity, and their creation rates.
    limits: TenantLimits,
    /// SIGTERM: until when (unix seconds) calls in progress may go on; new ones are
    /// refused meanwhile. 0: not draining.
    drain_until: AtomicU64,
    /// The media streams of live calls, for REST.
    pub streams: super::stream_records::StreamRecords,
}

/// One call being set up: counted in [`CallRegistry::setups`] until dropped (the caller got
/// its final answer, or the call ended).
#[derive(Debug)]
pub struct SetupGuard(Arc<AtomicUsize>);

impl Drop for SetupGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for CallRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRegistry")
            .field("live", &self.live_count())
            .field("keep_finished", &self.keep_finished)
            .field("cdr", &self.cdr.as_ref().map(CdrWriter::path))
            .finish_non_exhaustive()
    }
}

impl Default for CallRegistry {
    fn default() -> Self {
        CallRegistry::new(DEFAULT_KEEP_FINISHED, None)
    }
}

/// A poisoned lock means a closure panicked mid-update; the maps themselves are still
/// consistent (every mutation is a single insert or remove), so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CallRegistry {
    /// A registry that remembers the newest `keep_finished` finished calls and writes
    /// their CDRs to `cdr`, if given.
    pub fn new(keep_finished: usize, cdr: Option<CdrWriter>) -> CallRegistry {
        CallRegistry {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            live: AtomicUsize::new(0),
            recent: Mutex::new(Recent {
                order: VecDeque::new(),
                by_sid: HashMap::new(),
            }),
            keep_finished,
            cdr,
            finished: Default::default(),
            setups: Arc::new(AtomicUsize::new(0)),
            shed: AtomicU64::new(0),
            limits: TenantLimits::default(),
            drain_until: AtomicU64::new(0),
            streams: Default::default(),
        }
    }

    /// From `[calls]`: opens the CDR file, if one is configured (an error names it).
    pub fn from_config(cfg: &crate::config::Config) -> std::io::Result<CallRegistry> {
        let calls = &cfg.calls;
        let cdr = match &calls.cdr_file {
            Some(path) => Some(CdrWriter::open(path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("opening CDR file {}: {e}", path.display()),
                )
            })?),
            None => None,
        };
        Ok(CallRegistry::new(calls.keep_finished, cdr))
    }

    fn shard(&self, sid: &str) -> &Mutex<HashMap<String, Live>> {
        let i = self.hasher.hash_one(sid) as usize % self.shards.len();
        &self.shards[i]
    }

    /// Records a new live call, with its task's command channel when it takes commands.
    /// A second insert under the same sid replaces the first.
    pub fn insert(&self, info: CallInfo, control: Option<UnboundedSender<CallCommand>>) {
        let sid = info.sid.clone();
        let mut shard = lock(self.shard(&sid));
        self.limits.started(&info);
        if let Some(old) = shard.insert(sid, Live { info, control }) {
            self.limits.ended(&old.info);
        } else {
            self.live.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Changes a live call's record. Unknown or finished calls are left alone: a finished
    /// record is final.
    pub fn update(&self, sid: &str, f: impl FnOnce(&mut CallInfo)) {
        if let Some(live) = lock(self.shard(sid)).get_mut(sid) {
            f(&mut live.info);
        }
    }

    /// Ends a live call: applies `f`, makes sure the record reads as final (a status that
    /// is not final becomes `completed`, a missing end time becomes now), drops its
    /// control handle, keeps it among the recent calls and writes its CDR. Unknown (or
    /// already finished) calls are ignored, so a call is recorded once.
    pub fn finish(&self, sid: &str, f: impl FnOnce(&mut CallInfo)) {
        let mut shard = lock(self.shard(sid));
        let Some(Live { mut info, control }) = shard.remove(sid) else {
            return;
        };
        f(&mut info);
        self.limits.ended(&info);
        if !info.status.is_final() {
            info.status = CallStatus::Completed;
        }
        if info.ended_ms.is_none() {
            info.ended_ms = Some(crate::time::unix_ms());
        }
        let status = info.status;
        let cdr = self.cdr.as_ref().map(|_| info.clone());
        if self.keep_finished > 0 {
            // Moved to `recent` before the shard lock is released, so `get` (shard, then
            // recent) never misses a call that is between the two.
            let mut recent = lock(&self.recent);
            let key: Arc<str> = info.sid.as_str().into();
            if recent.by_sid.insert(key.clone(), info).is_none() {
                recent.order.push_back(key);
            }
            while recent.order.len() > self.keep_finished {
                if let Some(old) = recent.order.pop_front() {
                    recent.by_sid.remove(&old);
                }
            }
        }
        drop(shard);
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.finished[status as usize].fetch_add(1, Ordering::Relaxed);
        // The task's command channel closes with this: nothing reaches a finished call.
        drop(control);
        if let (Some(writer), Some(record)) = (&self.cdr, cdr) {
            writer.write(record);
        }
    }

    /// Calls finished since start, by final status.
    pub fn finished_counts(&self) -> Vec<(CallStatus, u64)> {
        CallStatus::ALL
            .into_iter()
            .map(|st| (st, self.finished[st as usize].load(Ordering::Relaxed)))
            .collect()
    }

    /// The call `sid` of `account`, live or recently finished. Another account's call is
    /// `None`, as if it did not exist.
    pub fn get(&self, account: &str, sid: &str) -> Option<CallInfo> {
        let live = lock(self.shard(sid)).get(sid).map(|l| l.info.clone());
        let info = live.or_else(|| lock(&self.recent).by_sid.get(sid).cloned())?;
        (info.account_sid == account).then_some(info)
    }

    /// `account`'s calls matching `filter`, newest first, one page of them.
    pub fn list(&self, account: &str, filter: &CallFilter) -> Vec<CallInfo> {
        self.list_page(account, filter).calls
    }

    /// As `list`, saying also whether there is a next page.
    pub fn list_page(&self, account: &str, filter: &CallFilter) -> CallPage {
        let wanted = |c: &CallInfo| c.account_sid == account && filter.matches(c);
        let mut all: Vec<CallInfo> = Vec::new();
        for shard in self.shards.iter() {
            all.extend(
                lock(shard)
                    .values()
                    .map(|l| &l.info)
                    .filter(|c| wanted(c))
                    .cloned(),
            );
        }
        // A call finishing between the two passes can appear in both; the final record
        // sorts first among equal sids and the dedup keeps it.
        all.extend(
            lock(&self.recent)
                .by_sid
                .values()
                .filter(|c| wanted(c))
                .cloned(),
        );
        // Newest first; the sid breaks ties so pages are stable.
        all.sort_unstable_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| b.sid.cmp(&a.sid))
                .then_with(|| b.status.is_final().cmp(&a.status.is_final()))
        });
        all.dedup_by(|a, b| a.sid == b.sid);
        let page_size = filter.page_size.max(1);
        let start = filter.page.saturating_mul(page_size);
        let has_more = all.len() > start.saturating_add(page_size);
        let calls = all.into_iter().skip(start).take(page_size).collect();
        CallPage { calls, has_more }
    }

    /// Delivers `cmd` to the live call `sid` of `account`.
    pub fn send(&self, account: &str, sid: &str, cmd: CallCommand) -> Result<(), SendError> {
        {
            let shard = lock(self.shard(sid));
            if let Some(live) = shard.get(sid) {
                if live.info.account_sid != account {
                    return Err(SendError::Unknown);
                }
                return match &live.control {
                    // A closed channel: the call task is gone and its `finish` is on the way.
                    Some(tx) => tx.send(cmd).map_err(|_| SendError::Finished),
                    None => Err(SendError::NotControllable),
                };
            }
        }
        match lock(&self.recent).by_sid.get(sid) {
            Some(c) if c.account_sid == account => Err(SendError::Finished),
            _ => Err(SendError::Unknown),
        }
    }

    /// Live calls per account and identity, and creation rates (`[limits]`).
    pub fn limits(&self) -> &TenantLimits {
        &self.limits
    }

    /// Starts draining: new calls are refused from now on, calls in progress may go on
    /// until `until` (unix seconds).
    pub fn start_drain(&self, until: u64) {
        self.drain_until.store(until.max(1), Ordering::Relaxed);
    }

    /// While draining, the seconds left of the grace (at least 1).
    pub fn draining(&self, now: u64) -> Option<u64> {
        match self.drain_until.load(Ordering::Relaxed) {
            0 => None,
            until => Some(until.saturating_sub(now).max(1)),
        }
    }

    /// Tells every live call that can be told to hang up (the end of a drain's grace).
    /// Returns how many were told.
    pub fn hang_up_all(&self) -> usize {
        let mut told = 0;
        for shard in self.shards.iter() {
            for live in lock(shard).values() {
                if let Some(tx) = &live.control
                    && tx.send(CallCommand::Hangup).is_ok()
                {
                    told += 1;
                }
            }
        }
        told
    }

    /// Calls in progress (every leg counts), for the `max_concurrent` limit.
    pub fn live_count(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Counts a call as being set up until the guard drops.
    pub fn begin_setup(&self) -> SetupGuard {
        self.setups.fetch_add(1, Ordering::Relaxed);
        SetupGuard(self.setups.clone())
    }

    /// Calls being set up now.
    pub fn setups(&self) -> usize {
        self.setups.load(Ordering::Relaxed)
    }

    /// An INVITE was shed for the setup backlog.
    pub fn note_shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// INVITEs shed since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Blocks until every CDR of calls finished so far is on disk. For shutdown and tests.
    pub fn flush_cdr(&self) {
        if let Some(cdr) = &self.cdr {
            cdr.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::model::Direction;

    const AC1: &str = "AC00000000000000000000000000000001";
    const AC2: &str = "AC00000000000000000000000000000002";

    fn call(n: u64, account: &str) -> CallInfo {
        CallInfo {
            sid: format!("CA{n:032x}"),
            account_sid: account.into(),
            parent_call_sid: None,
            from: "+15550100001".into(),
            to: format!("client:u{}", n % 3),
            direction: Direction::Inbound,
            status: CallStatus::Ringing,
            created_ms: 1_000 + n,
            answered_ms: None,
            ended_ms: None,
            trunk: None,
            sip_call_id: None,
            sip_response_code: None,
            application_sid: None,
        }
    }

    fn sid(n: u64) -> String {
        format!("CA{n:032x}")
    }

    #[test]
    fn insert_update_finish_get() {
        let r = CallRegistry::new(10, None);
        r.insert(call(1, AC1), None);
        assert_eq!(r.live_count(), 1);
        r.update(&sid(1), |c| c.status = CallStatus::InProgress);
        assert_eq!(r.get(AC1, &sid(1)).unwrap().status, CallStatus::InProgress);
        // Another account sees nothing.
        assert_eq!(r.get(AC2, &sid(1)), None);
        r.finish(&sid(1), |c| {
            c.answered_ms = Some(2_000);
            c.ended_ms = Some(5_000);
        });
        assert_eq!(r.live_count(), 0);
        let done = r.get(AC1, &sid(1)).unwrap();
        // A non-final status becomes completed.
        assert_eq!(done.status, CallStatus::Completed);
        assert_eq!(done.duration_secs(), 3);
        // A finished record is final: updates and second finishes do nothing.
        r.update(&sid(1), |c| c.status = CallStatus::Ringing);
        r.finish(&sid(1), |c| c.status = CallStatus::Failed);
        assert_eq!(r.get(AC1, &sid(1)).unwrap().status, CallStatus::Completed);
        assert_eq!(r.live_count(), 0);
        // Finish sets an end time when the call task gave none.
        r.insert(call(2, AC1), None);
        r.finish(&sid(2), |c| c.status = CallStatus::NoAnswer);
        let c = r.get(AC1, &sid(2)).unwrap();
        assert_eq!(c.status, CallStatus::NoAnswer);
        assert!(c.ended_ms.is_some());
    }

    #[test]
    fn recent_list_is_bounded() {
        let r = CallRegistry::new(3, None);
        for n in 1..=5 {
            r.insert(call(n, AC1), None);
            r.finish(&sid(n), |_| {});
        }
        assert_eq!(r.get(AC1, &sid(1)), None);
        assert_eq!(r.get(AC1, &sid(2)), None);
        for n in 3..=5 {
            assert!(r.get(AC1, &sid(n)).is_some(), "{n}");
        }
        let none = CallRegistry::new(0, None);
        none.insert(call(1, AC1), None);
        none.finish(&sid(1), |_| {});
        assert_eq!(none.get(AC1, &sid(1)), None);
    }

    #[test]
    fn list_filters_pages_newest_first() {
        let r = CallRegistry::new(100, None);
        for n in 1..=9 {
            let mut c = call(n, if n == 9 { AC2 } else { AC1 });
            if n >= 7 {
                c.parent_call_sid = Some(sid(1));
            }
            r.insert(c, None);
        }
        r.finish(&sid(2), |c| c.status = CallStatus::Busy);
        r.finish(&sid(4), |c| c.status = CallStatus::Busy);

        let sids = |v: Vec<CallInfo>| v.into_iter().map(|c| c.sid).collect::<Vec<_>>();
        let all = r.list(AC1, &CallFilter::default());
        assert_eq!(sids(all), (1..=8).rev().map(sid).collect::<Vec<_>>());
        let f = CallFilter {
            status: Some(CallStatus::Busy),
            ..CallFilter::default()
        };
        assert_eq!(sids(r.list(AC1, &f)), [sid(4), sid(2)]);
        let f = CallFilter {
            to: Some("client:u1".into()),
            ..CallFilter::default()
        };
        assert_eq!(sids(r.list(AC1, &f)), [sid(7), sid(4), sid(1)]);
        let f = CallFilter {
            parent_call_sid: Some(sid(1)),
            ..CallFilter::default()
        };
        // Call 9 is a child of 1 too, but of another account.
        assert_eq!(sids(r.list(AC1, &f)), [sid(8), sid(7)]);
        let f = CallFilter {
            from: Some("+15550100002".into()),
            ..CallFilter::default()
        };
        assert!(r.list(AC1, &f).is_empty());

        let page = |page| {
            r.list_page(
                AC1,
                &CallFilter {
                    page,
                    page_size: 3,
                    ..CallFilter::default()
                },
            )
        };
        let p0 = page(0);
        assert_eq!(sids(p0.calls), [sid(8), sid(7), sid(6)]);
        assert!(p0.has_more);
        let p2 = page(2);
        assert_eq!(sids(p2.calls), [sid(2), sid(1)]);
        assert!(!p2.has_more);
        assert!(page(3).calls.is_empty());
    }

    #[test]
    fn send_reaches_live_controllable_calls_only() {
        let r = CallRegistry::new(10, None);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        r.insert(call(1, AC1), Some(tx));
        r.insert(call(2, AC1), None);
        assert_eq!(r.send(AC1, &sid(1), CallCommand::Hangup), Ok(()));
        assert_eq!(rx.try_recv().unwrap(), CallCommand::Hangup);
        assert_eq!(
            r.send(AC2, &sid(1), CallCommand::Hangup),
            Err(SendError::Unknown)
        );
        assert_eq!(
            r.send(AC1, &sid(2), CallCommand::Cancel),
            Err(SendError::NotControllable)
        );
        assert_eq!(
            r.send(AC1, &sid(3), CallCommand::Cancel),
            Err(SendError::Unknown)
        );
        r.finish(&sid(1), |_| {});
        // The control handle is gone with the call: the task's channel closes.
        assert!(rx.try_recv().is_err());
        assert!(rx.is_closed());
        assert_eq!(
            r.send(AC1, &sid(1), CallCommand::Hangup),
            Err(SendError::Finished)
        );
        assert_eq!(
            r.send(AC2, &sid(1), CallCommand::Hangup),
            Err(SendError::Unknown)
        );
        // A live call whose task is gone already counts as finished.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        drop(rx);
        r.insert(call(4, AC1), Some(tx));
        assert_eq!(
            r.send(AC1, &sid(4), CallCommand::Hangup),
            Err(SendError::Finished)
        );
    }

    #[test]
    fn finishing_writes_the_cdr() {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-registry-{}-{:x}",
            std::process::id(),
            crate::ids::random_u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cdr.jsonl");
        let r = Arc::new(CallRegistry::new(5, Some(CdrWriter::open(&path).unwrap())));
        // Many call tasks finishing at once.
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let n = t * 1000 + i;
                        r.insert(call(n, AC1), None);
                        r.update(&sid(n), |c| c.answered_ms = Some(2_000));
                        r.finish(&sid(n), |c| c.ended_ms = Some(62_000));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        r.flush_cdr();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 1600);
        assert!(
            lines
                .iter()
                .all(|v| v["duration"] == 60 && v["status"] == "completed")
        );
        assert_eq!(r.live_count(), 0);
        std::fs::remove_dir_all(dir).ok();
    }
}
