//! Password and token guessing: failed credentials counted per source address and per
//! address of record in sliding windows, and bans (`[security]`, see `SecurityConfig`).
//!
//! - A failure is a wrong Digest response or a bad/forged/expired bearer token, on a
//!   REGISTER or a client's INVITE. A 401 challenge to a request without credentials is
//!   the normal first step of Digest and is not counted; neither is a stale nonce.
//! - A source with `auth_fail_max_per_source` failures within `auth_fail_window_secs` is
//!   banned for `ban_secs`: its REGISTERs and token INVITEs are refused (403 or silence)
//!   before any credential is looked at, so the right password during a ban does not get
//!   through, and a guesser cannot tell a right guess from a wrong one.
//! - An AOR with `auth_fail_max_per_aor` failures within the window (guessing spread over
//!   many addresses) becomes *under attack* for `ban_secs`: every source that fails against
//!   it then is banned at its first failure. The owner, who does not fail, keeps
//!   registering: a ban on the AOR itself would let anyone lock any user out.
//!
//! Memory is bounded whatever an attacker sends: each table holds at most `MAX_TRACKED`
//! keys and each key at most its threshold of timestamps. A full table first forgets keys
//! with nothing in the window; failing that, an arbitrary key that is not banned.
//!
//! Pure: the caller passes `now` (unix seconds).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{BanReply, SecurityConfig};

/// The source a failure is counted against: an IPv4 address (an IPv4-mapped IPv6 one
/// included), or the /64 of an IPv6 address, since one host usually has a whole /64 to
/// hop around in.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Most keys one table tracks (sources, AORs).
pub const MAX_TRACKED: usize = 65_536;

/// Why a source is banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// Too many failures from the source itself.
    Source,
    /// A failure against an AOR under attack.
    Aor,
}

impl BanReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            BanReason::Source => "auth_fail_max_per_source",
            BanReason::Aor => "auth_fail_max_per_aor",
        }
    }
}

/// One banned source, for the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub source: IpAddr,
    /// Unix seconds when the ban lifts.
    pub until: u64,
    pub reason: BanReason,
    /// The AOR whose attack banned it (for `BanReason::Aor`).
    pub aor: Option<Box<str>>,
}

#[derive(Debug, Default)]
struct Track {
    /// Failure times inside the window, oldest first; at most the threshold.
    fails: VecDeque<u64>,
    /// Banned (a source) or under attack (an AOR) until then.
    until: u64,
    reason: Option<BanReason>,
    aor: Option<Box<str>>,
}

impl Track {
    /// Records a failure at `now`; true when the window now holds `max` of them.
    fn fail(&mut self, now: u64, window: u64, max: u32) -> bool {
        while self.fails.front().is_some_and(|t| *t + window <= now) {
            self.fails.pop_front();
        }
        self.fails.push_back(now);
        while self.fails.len() > max as usize {
            self.fails.pop_front();
        }
        self.fails.len() >= max as usize
    }

    fn idle(&self, now: u64, window: u64) -> bool {
        self.until <= now && self.fails.back().is_none_or(|t| *t + window <= now)
    }
}

#[derive(Debug, Default)]
struct State {
    sources: Table<IpAddr>,
    aors: Table<Box<str>>,
}

/// One bounded table.
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Track>,
    /// When idle keys were last swept: at most once a second, so a flood of new keys
    /// costs one pass per second, not one per key.
    swept_at: u64,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            map: HashMap::new(),
            swept_at: 0,
        }
    }
}

impl<K: Eq + Hash + Clone> Table<K> {
    /// The track of `key`, made room for if new (see the module docs); `None` when the
    /// table is full of bans.
    fn track(&mut self, key: &K, now: u64, window: u64) -> Option<&mut Track> {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKED {
            if self.swept_at < now {
                self.swept_at = now;
                self.map.retain(|_, t| !t.idle(now, window));
            }
            if self.map.len() >= MAX_TRACKED {
                let victim = self
                    .map
                    .iter()
                    .find(|(_, t)| t.until <= now)
                    .map(|(k, _)| k.clone())?;
                self.map.remove(&victim);
            }
        }
        Some(self.map.entry(key.clone()).or_default())
    }
}

/// The failure counts and bans of one switch.
#[derive(Debug)]
pub struct AuthGuard {
    config: Mutex<SecurityConfig>,
    state: Mutex<State>,
    failures: AtomicU64,
    bans: AtomicU64,
}

impl AuthGuard {
    pub fn new(config: SecurityConfig) -> AuthGuard {
        AuthGuard {
            config: Mutex::new(config),
            state: Mutex::new(State::default()),
            failures: AtomicU64::new(0),
            bans: AtomicU64::new(0),
        }
    }

    /// Applies a reloaded `[security]`; counts and bans in force stay.
    pub fn reload(&self, config: SecurityConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn config(&self) -> SecurityConfig {
        *self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How a request from `source` is answered if it is banned at `now`.
    pub fn banned(&self, source: IpAddr, now: u64) -> Option<BanReply> {
        let source = source_key(source);
        let banned = self
            .state()
            .sources
            .map
            .get(&source)
            .is_some_and(|t| t.until > now);
        banned.then(|| self.config().ban_reply)
    }

    /// Records failed credentials from `source` for `aor` (`user@host` of the To URI, as
    /// the request named it: a forged token names no verified identity). Returns the ban
    /// it caused, if any.
    pub fn failed(&self, source: IpAddr, aor: &str, now: u64) -> Option<Ban> {
        let source = source_key(source);
        self.failures.fetch_add(1, Ordering::Relaxed);
        let cfg = self.config();
        let window = cfg.auth_fail_window_secs;
        let mut state = self.state();
        let mut reason = None;
        let mut attacked = None;
        let key: Box<str> = aor.into();
        if cfg.auth_fail_max_per_aor > 0
            && let Some(t) = state.aors.track(&key, now, window)
            && (t.until > now || t.fail(now, window, cfg.auth_fail_max_per_aor))
        {
            if t.until <= now {
                tracing::warn!(
                    aor,
                    "password guessing against one AOR: failing sources will be banned"
                );
            }
            // Each failure keeps the attack on for another ban period.
            t.until = now + cfg.ban_secs;
            reason = Some(BanReason::Aor);
            attacked = Some(key);
        }
        if cfg.auth_fail_max_per_source > 0
            && let Some(t) = state.sources.track(&source, now, window)
            && t.fail(now, window, cfg.auth_fail_max_per_source)
        {
            reason = Some(BanReason::Source);
            attacked = None;
        }
        let reason = reason?;
        let t = state.sources.track(&source, now, window)?;
        let fresh = t.until <= now;
        t.until = now + cfg.ban_secs;
        t.reason = Some(reason);
        t.aor = attacked.clone();
        if fresh {
            self.bans.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%source, reason = reason.as_str(), ban_secs = cfg.ban_secs, "source banned for failed credentials");
        }
        Some(Ban {
            source,
            until: t.until,
            reason,
            aor: attacked,
        })
    }

    /// The bans in force at `now`, soonest to lift first.
    pub fn list(&self, now: u64) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self
            .state()
            .sources
            .map
            .iter()
            .filter(|(_, t)| t.until > now)
            .map(|(ip, t)| Ban {
                source: *ip,
                until: t.until,
                reason: t.reason.unwrap_or(BanReason::Source),
                aor: t.aor.clone(),
            })
            .collect();
        bans.sort_by_key(|b| (b.until, b.source));
        bans
    }

    /// Failed credentials counted since start.
    pub fn failure_count(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Bans imposed since start.
    pub fn ban_count(&self) -> u64 {
        self.bans.load(Ordering::Relaxed)
    }

    /// Keys held (sources, AORs), for tests of the memory bound.
    pub fn tracked(&self) -> (usize, usize) {
        let s = self.state();
        (s.sources.map.len(), s.aors.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_source: u32, per_aor: u32) -> SecurityConfig {
        SecurityConfig {
            auth_fail_window_secs: 60,
            auth_fail_max_per_source: per_source,
            auth_fail_max_per_aor: per_aor,
            ban_secs: 300,
            ban_reply: BanReply::Forbidden,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_is_banned_at_its_threshold_and_the_ban_lifts() {
        let g = AuthGuard::new(cfg(5, 0));
        let bad = ip("203.0.113.7");
        for i in 0..4 {
            assert_eq!(g.failed(bad, "alice@r", 1000 + i), None);
            assert_eq!(g.banned(bad, 1000 + i), None);
        }
        let ban = g.failed(bad, "alice@r", 1004).expect("fifth failure bans");
        assert_eq!((ban.until, ban.reason), (1304, BanReason::Source));
        assert_eq!(g.banned(bad, 1004), Some(BanReply::Forbidden));
        assert_eq!(g.banned(bad, 1303), Some(BanReply::Forbidden));
        // Others are untouched; the ban lifts at `until`.
        assert_eq!(g.banned(ip("203.0.113.8"), 1100), None);
        assert_eq!(g.banned(bad, 1304), None);
        assert_eq!((g.failure_count(), g.ban_count()), (5, 1));
        assert_eq!(g.list(1100).len(), 1);
        assert!(g.list(1304).is_empty());
    }

    #[test]
    fn the_window_slides() {
        let g = AuthGuard::new(cfg(3, 0));
        let s = ip("198.51.100.1");
        // Two failures a minute apart never make three within 60 s.
        for t in [0, 30, 61, 92, 123, 154] {
            assert_eq!(g.failed(s, "a@r", t), None, "at {t}");
        }
        assert!(
            g.failed(s, "a@r", 155).is_some(),
            "154, 155 and 123 are within 60 s"
        );
    }

    #[test]
    fn an_aor_under_attack_bans_each_failing_source_but_not_its_owner() {
        let g = AuthGuard::new(cfg(0, 3));
        // Three sources, one failure each: the third puts the AOR under attack and is
        // banned; the first two were not (yet).
        assert_eq!(g.failed(ip("10.0.0.1"), "alice@r", 10), None);
        assert_eq!(g.failed(ip("10.0.0.2"), "alice@r", 11), None);
        let ban = g.failed(ip("10.0.0.3"), "alice@r", 12).unwrap();
        assert_eq!(ban.reason, BanReason::Aor);
        assert_eq!(ban.aor.as_deref(), Some("alice@r"));
        // From now on one failure is enough.
        assert!(g.failed(ip("10.0.0.4"), "alice@r", 13).is_some());
        assert_eq!(g.banned(ip("10.0.0.4"), 14), Some(BanReply::Forbidden));
        // The owner, who never failed, is not banned; another AOR is not under attack.
        assert_eq!(g.banned(ip("192.0.2.50"), 14), None);
        assert_eq!(g.failed(ip("10.0.0.9"), "bob@r", 14), None);
    }

    #[test]
    fn memory_stays_bounded_under_random_keys() {
        let g = AuthGuard::new(cfg(3, 3));
        for i in 0..(MAX_TRACKED as u32 + 5000) {
            let src = IpAddr::from(i.to_be_bytes());
            g.failed(src, &format!("user{i}@r"), 100);
        }
        let (s, a) = g.tracked();
        assert!(s <= MAX_TRACKED && a <= MAX_TRACKED, "{s} {a}");
        // A real guesser is still caught once the table is full.
        let bad = ip("203.0.113.99");
        for t in 0..3 {
            g.failed(bad, "carol@r", 200 + t);
        }
        assert_eq!(g.banned(bad, 203), Some(BanReply::Forbidden));
    }

    #[test]
    fn an_ipv6_host_hopping_in_its_64_is_one_source() {
        let g = AuthGuard::new(cfg(3, 0));
        for (i, a) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
            .into_iter()
            .enumerate()
        {
            g.failed(ip(a), "a@r", i as u64);
        }
        assert_eq!(
            g.banned(ip("2001:db8:1:2::77"), 3),
            Some(BanReply::Forbidden)
        );
        assert_eq!(
            g.banned(ip("2001:db8:1:3::1"), 3),
            None,
            "the next /64 is another"
        );
        assert_eq!(g.list(3)[0].source, ip("2001:db8:1:2::"));
        // An IPv4-mapped address is its IPv4 address.
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn drop_and_reload() {
        let g = AuthGuard::new(cfg(1, 0));
        g.failed(ip("203.0.113.1"), "a@r", 0);
        let mut c = cfg(1, 0);
        c.ban_reply = BanReply::Drop;
        g.reload(c);
        assert_eq!(g.banned(ip("203.0.113.1"), 1), Some(BanReply::Drop));
    }
}
