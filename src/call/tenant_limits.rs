//! Limits per account and per client identity, so that one tenant (or one leaked end-user
//! token) can never take what the others need (`[limits]`, per-account overrides in
//! `[[accounts]]`):
//!
//! - **live calls of an account**, every leg counted as `[calls] max_concurrent` counts
//!   them. Every leg holds one RTP port pair, so this also caps the account's share of
//!   `rtp_ports`: by default 80% of the pairs, so whatever one account does, the others
//!   keep a fifth of the pool;
//! - **call creation per account** (REST `POST Calls.json` and calls placed by its client
//!   apps): a token bucket of `calls_per_second`, bursts up to one second's worth;
//! - **live calls placed by one client identity** and **calls it places per minute**: an
//!   end user's token is a far smaller trust than an account's.
//!
//! Carrier calls into an account count toward its live calls but not its creation rate (a
//! carrier's traffic is the customer's business; `[calls] max_setups` sheds overload).
//! Over a limit: SIP gets 503 with Retry-After, REST 429 with Retry-After; each refusal is
//! counted by limit for `/metrics`.
//!
//! The live counts are kept by the call registry as calls start and finish; the caller
//! passes the clock (unix milliseconds) in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::model::CallInfo;

/// Most client identities whose creation rate is tracked at once; beyond it the fullest
/// buckets (those at rest) are forgotten first.
const MAX_IDENTITY_BUCKETS: usize = 100_000;

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    AccountCalls,
    AccountRate,
    IdentityCalls,
    IdentityRate,
}

impl Limit {
    pub const ALL: [Limit; 4] = [
        Limit::AccountCalls,
        Limit::AccountRate,
        Limit::IdentityCalls,
        Limit::IdentityRate,
    ];

    /// The config key, also the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::AccountCalls => "account_max_calls",
            Limit::AccountRate => "account_calls_per_second",
            Limit::IdentityCalls => "identity_max_calls",
            Limit::IdentityRate => "identity_calls_per_minute",
        }
    }

    /// The SIP reason phrase of the 503.
    pub const fn reason(self) -> &'static str {
        match self {
            Limit::AccountCalls => "Account Call Limit",
            Limit::AccountRate => "Account Call Rate",
            Limit::IdentityCalls => "Client Call Limit",
            Limit::IdentityRate => "Client Call Rate",
        }
    }
}

/// A refusal: which limit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} reached", limit.as_str())]
pub struct OverLimit {
    pub limit: Limit,
    /// Seconds for Retry-After.
    pub retry_after: u32,
}

/// The limits that apply to one account (its overrides, else `[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Live calls (legs) of the account.
    pub max_calls: usize,
    /// Calls created per second (REST and client apps); 0 = no rate limit.
    pub calls_per_second: u32,
    /// Live calls placed by one identity.
    pub identity_max_calls: usize,
    /// Calls one identity places per minute; 0 = no rate limit.
    pub identity_calls_per_minute: u32,
}

/// A token bucket in milli-tokens, refilled continuously.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Milli-tokens available.
    level: u64,
    /// When `level` was last brought up to date, unix ms.
    at_ms: u64,
}

impl Bucket {
    /// Takes one token from a bucket holding at most `burst` and refilling `burst` per
    /// `period_ms`; `Err(seconds until one is there)` when empty.
    fn take(&mut self, now_ms: u64, burst: u64, period_ms: u64) -> Result<(), u32> {
        let cap = burst * 1000;
        let elapsed = now_ms.saturating_sub(self.at_ms);
        // milli-tokens gained: burst tokens per period.
        self.level = (self.level + elapsed * cap / period_ms.max(1)).min(cap);
        self.at_ms = now_ms;
        if self.level >= 1000 {
            self.level -= 1000;
            Ok(())
        } else {
            let missing = 1000 - self.level;
            let wait_ms = (missing * period_ms).div_ceil(cap.max(1));
            Err(u32::try_from(wait_ms.div_ceil(1000))
                .unwrap_or(u32::MAX)
                .max(1))
        }
    }

    fn full(burst: u64, now_ms: u64) -> Bucket {
        Bucket {
            level: burst * 1000,
            at_ms: now_ms,
        }
    }
}

type IdentityKey = (Box<str>, Box<str>);

#[derive(Debug, Default)]
struct State {
    account_calls: HashMap<Box<str>, usize>,
    identity_calls: HashMap<IdentityKey, usize>,
    account_rate: HashMap<Box<str>, Bucket>,
    identity_rate: HashMap<IdentityKey, Bucket>,
}

/// Live counts, rate buckets and refusal counters of the whole switch.
#[derive(Debug, Default)]
pub struct TenantLimits {
    state: Mutex<State>,
    refused: [AtomicU64; Limit::ALL.len()],
}

/// The client identity that placed a call (`From` = `client:<identity>`), if one did.
fn placed_by(info: &CallInfo) -> Option<IdentityKey> {
    let identity = info.from.strip_prefix("client:")?;
    (info.parent_call_sid.is_none()).then(|| (info.account_sid.as_str().into(), identity.into()))
}

impl TenantLimits {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call (or leg) went live: the registry calls this once per call.
    pub fn started(&self, info: &CallInfo) {
        let mut s = self.state();
        *s.account_calls
            .entry(info.account_sid.as_str().into())
            .or_default() += 1;
        if let Some(key) = placed_by(info) {
            *s.identity_calls.entry(key).or_default() += 1;
        }
    }

    /// A call (or leg) ended.
    pub fn ended(&self, info: &CallInfo) {
        let mut s = self.state();
        if let Some(n) = s.account_calls.get_mut(info.account_sid.as_str()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.account_calls.remove(info.account_sid.as_str());
            }
        }
        if let Some(key) = placed_by(info)
            && let Some(n) = s.identity_calls.get_mut(&key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.identity_calls.remove(&key);
            }
        }
    }

    /// Live calls (legs) of `account`.
    pub fn account_calls(&self, account: &str) -> usize {
        self.state()
            .account_calls
            .get(account)
            .copied()
            .unwrap_or(0)
    }

    fn refuse(&self, limit: Limit, retry_after: u32) -> OverLimit {
        self.refused[limit as usize].fetch_add(1, Ordering::Relaxed);
        OverLimit { limit, retry_after }
    }

    /// May `account` take one more live call (a carrier call, a Dial leg)?
    pub fn admit_leg(&self, account: &str, limits: &AccountLimits) -> Result<(), OverLimit> {
        if self.account_calls(account) >= limits.max_calls {
            return Err(self.refuse(Limit::AccountCalls, 5));
        }
        Ok(())
    }

    /// May `account` (and `identity`, for a call a client app places) create a call at
    /// `now_ms`? Takes a token from each rate bucket that applies when it may.
    pub fn admit_creation(
        &self,
        account: &str,
        identity: Option<&str>,
        limits: &AccountLimits,
        now_ms: u64,
    ) -> Result<(), OverLimit> {
        let mut s = self.state();
        if s.account_calls.get(account).copied().unwrap_or(0) >= limits.max_calls {
            drop(s);
            return Err(self.refuse(Limit::AccountCalls, 5));
        }
        let key = identity.map(|i| (Box::<str>::from(account), Box::<str>::from(i)));
        if let Some(key) = &key
            && s.identity_calls.get(key).copied().unwrap_or(0) >= limits.identity_max_calls
        {
            drop(s);
            return Err(self.refuse(Limit::IdentityCalls, 5));
        }
        // Check both buckets before taking from either, so a refusal costs nothing.
        let rate = u64::from(limits.calls_per_second);
        let mut account_bucket = if rate > 0 {
            let b = *s
                .account_rate
                .entry(account.into())
                .or_insert_with(|| Bucket::full(rate, now_ms));
            Some(b)
        } else {
            None
        };
        if let Some(b) = &mut account_bucket
            && let Err(wait) = b.take(now_ms, rate, 1000)
        {
            drop(s);
            return Err(self.refuse(Limit::AccountRate, wait));
        }
        let per_minute = u64::from(limits.identity_calls_per_minute);
        let mut identity_bucket = None;
        if let Some(key) = &key
            && per_minute > 0
        {
            if !s.identity_rate.contains_key(key) && s.identity_rate.len() >= MAX_IDENTITY_BUCKETS {
                // Forget the buckets at rest (full again): they hold no information.
                s.identity_rate.retain(|_, b| {
                    let mut probe = *b;
                    probe.take(now_ms, per_minute, 60_000).is_err()
                });
            }
            let mut b = *s
                .identity_rate
                .entry(key.clone())
                .or_insert_with(|| Bucket::full(per_minute, now_ms));
            if let Err(wait) = b.take(now_ms, per_minute, 60_000) {
                drop(s);
                return Err(self.refuse(Limit::IdentityRate, wait));
            }
            identity_bucket = Some(b);
        }
        if let Some(b) = account_bucket {
            s.account_rate.insert(account.into(), b);
        }
        if let (Some(key), Some(b)) = (key, identity_bucket) {
            s.identity_rate.insert(key, b);
        }
        Ok(())
    }

    /// Refusals since start, by limit.
    pub fn refused_counts(&self) -> [(Limit, u64); Limit::ALL.len()] {
        Limit::ALL.map(|l| (l, self.refused[l as usize].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallStatus, Direction};

    fn limits() -> AccountLimits {
        AccountLimits {
            max_calls: 3,
            calls_per_second: 2,
            identity_max_calls: 1,
            identity_calls_per_minute: 3,
        }
    }

    fn call(account: &str, from: &str, sid: &str) -> CallInfo {
        CallInfo {
            sid: sid.into(),
            account_sid: account.into(),
            parent_call_sid: None,
            from: from.into(),
            to: "+15550100001".into(),
            direction: Direction::Inbound,
            status: CallStatus::Ringing,
            created_ms: 0,
            answered_ms: None,
            ended_ms: None,
            trunk: None,
            sip_call_id: None,
            sip_response_code: None,
            application_sid: None,
        }
    }

    #[test]
    fn live_calls_per_account_and_identity() {
        let t = TenantLimits::default();
        let l = limits();
        let a = call("ACa", "client:alice", "CA1");
        t.started(&a);
        // alice has her one call; bob of the same account may still call.
        assert_eq!(
            t.admit_creation("ACa", Some("alice"), &l, 0)
                .unwrap_err()
                .limit,
            Limit::IdentityCalls
        );
        assert!(t.admit_creation("ACa", Some("bob"), &l, 0).is_ok());
        t.started(&call("ACa", "+1555", "CA2"));
        t.started(&call("ACa", "+1555", "CA3"));
        // The account is full; another account is not.
        assert_eq!(
            t.admit_leg("ACa", &l).unwrap_err().limit,
            Limit::AccountCalls
        );
        assert!(t.admit_leg("ACb", &l).is_ok());
        t.ended(&a);
        assert_eq!(t.account_calls("ACa"), 2);
        assert!(t.admit_leg("ACa", &l).is_ok());
        let counts = t.refused_counts();
        assert_eq!(counts[Limit::IdentityCalls as usize].1, 1);
        assert_eq!(counts[Limit::AccountCalls as usize].1, 1);
    }

    #[test]
    fn creation_rate_per_account_refills() {
        let t = TenantLimits::default();
        let l = limits();
        assert!(t.admit_creation("ACa", None, &l, 1_000).is_ok());
        assert!(t.admit_creation("ACa", None, &l, 1_000).is_ok());
        let over = t.admit_creation("ACa", None, &l, 1_000).unwrap_err();
        assert_eq!((over.limit, over.retry_after), (Limit::AccountRate, 1));
        // Another account has its own bucket; half a second refills one token.
        assert!(t.admit_creation("ACb", None, &l, 1_000).is_ok());
        assert!(t.admit_creation("ACa", None, &l, 1_500).is_ok());
        assert!(t.admit_creation("ACa", None, &l, 1_500).is_err());
    }

    #[test]
    fn an_identity_rate_refusal_takes_no_account_token() {
        let t = TenantLimits::default();
        let l = AccountLimits {
            calls_per_second: 100,
            identity_max_calls: 10,
            max_calls: 100,
            identity_calls_per_minute: 3,
        };
        for _ in 0..3 {
            assert!(t.admit_creation("ACa", Some("alice"), &l, 0).is_ok());
        }
        let over = t.admit_creation("ACa", Some("alice"), &l, 0).unwrap_err();
        assert_eq!(over.limit, Limit::IdentityRate);
        assert_eq!(over.retry_after, 20, "one token in 20 s at 3 a minute");
        // 20 s later alice may call again.
        assert!(t.admit_creation("ACa", Some("alice"), &l, 20_000).is_ok());
    }

    #[test]
    fn a_dial_leg_does_not_count_as_placed_by_the_client() {
        let t = TenantLimits::default();
        let mut leg = call("ACa", "client:alice", "CA9");
        leg.parent_call_sid = Some("CA1".into());
        t.started(&leg);
        assert!(t.admit_creation("ACa", Some("alice"), &limits(), 0).is_ok());
        t.ended(&leg);
        assert_eq!(t.account_calls("ACa"), 0);
    }
}
