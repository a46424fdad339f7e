//! The shared location store: several switches keep their registrations in one Redis
//! (`[store] kind = "redis"`), so a client registered at one node is reached from any.
//!
//! Writes are write-through: a REGISTER is answered 200 only after Redis holds its
//! binding. Reads are local: every node keeps a replica of every AOR in process (a
//! `MemoryStore`), fed by Redis pub/sub, so call routing and the REST API never wait on
//! the network, and bindings already known keep working while Redis is down.
//!
//! Keys (one per AOR, so one AOR's update is one key; the `{…}` hash tag keeps it in one
//! slot of a Redis Cluster):
//! - `<prefix>:aor:{<account>:<identity>}`: the AOR's bindings (`codec`), expiring with
//!   its last binding (`EXAT`), so no node has to sweep Redis;
//! - `<prefix>:busy:{<account>:<identity>}`: a hash node → calls in progress there;
//! - `<prefix>:claim:{<account>:<identity>}:<status>:<at>`: which node reports a presence
//!   change (`SET NX`, a minute);
//! - channel `<prefix>:presence`: every write, published by the same script that writes it,
//!   so messages arrive in the order of the writes.
//!
//! A REGISTER applies the RFC 3261 §10.3 rules (`update`) to what the replica holds, then
//! stores the result with a compare-and-set script: it writes only if the AOR still holds
//! the version planned against; if another node wrote first, the script returns what is
//! stored and the rules run again on that. One implementation of the rules, for both
//! stores, and two nodes updating one AOR at once end as RFC 3261 ordering says.
//!
//! Redis unreachable: `register` fails (`RegisterError::Unavailable`, a 503), reads go on
//! from the replica, `is_up` says false for `/health` and `/metrics`. When Redis is back,
//! the feed subscribes again and reloads every AOR (what changed meanwhile), with no
//! restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands as _, Value};

use super::binding::{AorKey, Binding};
use super::codec;
use super::memory::MemoryStore;
use super::shards::{SHARDS, Shards};
use super::store::{
    Lapsed, LocationStore, RegisterError, RegisterFuture, RegisterOutcome, RegisterRequest,
};
use super::update::{self, Changes};
use crate::registrar::presence::{
    Presence, PresenceChange, PresenceLink, PresenceStatus, Reporter,
};

/// How long one Redis command may take before the REGISTER gets 503.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-set rounds before a REGISTER gives up (only under a storm of writes to
/// one AOR from several nodes).
const MAX_ROUNDS: usize = 8;

/// How long the replica remembers an AOR that has no key any more (see `sweep`).
const TOMBSTONE_SECS: u64 = 300;

/// How often the feed tries to reach Redis again after losing it.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// KEYS[1] the AOR; ARGV: expected version ('' = absent), new value ('' = delete),
/// EXAT seconds, channel, message head. Returns `{1, stamp}` when stored, else
/// `{what the key holds (0 when nothing), stamp}`. The stamp is Redis's clock in
/// microseconds: one server's order of the writes, so a replica never takes an older
/// value over a newer one, whichever connection brings it first.
const CAS: &str = r"
local t = redis.call('TIME')
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
local cur = redis.call('GET', KEYS[1])
local version = ''
if cur then version = string.sub(cur, 1, 16) end
if version ~= ARGV[1] then
  if cur then return {cur, stamp} end
  return {0, stamp}
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])
end
redis.call('PUBLISH', ARGV[4], stamp .. ' ' .. ARGV[5] .. ARGV[2])
return {1, stamp}
";

/// KEYS[1] the busy hash; ARGV: node, delta (or `clear`: the node's count goes), channel,
/// message head. Returns the total.
const BUSY: &str = r"
local t = redis.call('TIME')
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
if ARGV[2] == 'clear' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
redis.call('PUBLISH', ARGV[3], stamp .. ' ' .. ARGV[4] .. total)
return total
";

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
struct Names {
    prefix: Box<str>,
}

impl Names {
    fn aor(&self, key: &AorKey) -> String {
        format!("{}:aor:{{{}:{}}}", self.prefix, key.account, key.identity)
    }

    fn busy(&self, key: &AorKey) -> String {
        format!("{}:busy:{{{}:{}}}", self.prefix, key.account, key.identity)
    }

    fn claim(&self, c: &PresenceChange) -> String {
        format!(
            "{}:claim:{{{}:{}}}:{}:{}",
            self.prefix,
            c.account,
            c.identity,
            c.status.as_str(),
            c.at
        )
    }

    fn channel(&self) -> String {
        format!("{}:presence", self.prefix)
    }

    /// The AOR a key of `kind` (`aor`, `busy`) names.
    fn parse(&self, kind: &str, redis_key: &str) -> Option<AorKey> {
        let rest = redis_key
            .strip_prefix(&*self.prefix)?
            .strip_prefix(':')?
            .strip_prefix(kind)?
            .strip_prefix(":{")?
            .strip_suffix('}')?;
        let (account, identity) = rest.split_once(':')?;
        Some(AorKey::new(account, identity))
    }
}

/// A published change: `<stamp> <kind><at> <origin node> <account> <identity
/// length>:<identity><payload>`, kind `b` (bindings, payload the stored value or empty)
/// or `u` (busy, payload the total); the script puts the stamp first. The length prefix
/// lets an identity hold any character.
fn message_head(kind: char, key: &AorKey, at: u64, origin: &str) -> String {
    format!(
        "{kind}{at} {origin} {} {}:{}",
        key.account,
        key.identity.len(),
        key.identity
    )
}

struct Message<'a> {
    stamp: u64,
    kind: u8,
    at: u64,
    origin: &'a str,
    key: AorKey,
    payload: &'a [u8],
}

/// The next space-separated word of `m`, and the rest.
fn word(m: &[u8]) -> Option<(&str, &[u8])> {
    let sp = m.iter().position(|&b| b == b' ')?;
    Some((std::str::from_utf8(&m[..sp]).ok()?, &m[sp + 1..]))
}

fn parse_message(m: &[u8]) -> Option<Message<'_>> {
    let (stamp, m) = word(m)?;
    let stamp = stamp.parse().ok()?;
    let (&kind, rest) = m.split_first()?;
    let (at, rest) = word(rest)?;
    let at = at.parse().ok()?;
    let (origin, rest) = word(rest)?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let account = std::str::from_utf8(&rest[..sp]).ok()?;
    let rest = &rest[sp + 1..];
    let colon = rest.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let rest = &rest[colon + 1..];
    let identity = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some(Message {
        stamp,
        kind,
        at,
        origin,
        key: AorKey::new(account, identity),
        payload: &rest[len..],
    })
}

/// The node directory as last read.
#[derive(Debug, Default)]
struct Nodes {
    /// Fresh entries (and this node), sorted.
    alive: Vec<String>,
    /// Entries not refreshed within `NODE_TTL_SECS`.
    dead: Vec<String>,
}

/// What the replica holds of one AOR besides its bindings.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// The version of the stored value (`None`: no key).
    version: Option<u64>,
    /// Redis's clock (µs) at the write the replica holds.
    stamp: u64,
    /// Redis's clock at the busy total presence holds.
    busy_stamp: u64,
}

/// A script's `{answer, stamp}`.
fn stamped(v: Value) -> Option<(Value, u64)> {
    let Value::Array(mut parts) = v else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let stamp = match parts.pop()? {
        Value::BulkString(b) => std::str::from_utf8(&b).ok()?.parse().ok()?,
        _ => return None,
    };
    Some((parts.pop()?, stamp))
}

/// The location store of a cluster. Build with [`RedisStore::open`], then spawn
/// [`RedisStore::run_feed`] once.
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    names: Names,
    /// This node (`[cluster] node_id`), for its busy counts.
    node: Box<str>,
    /// Every AOR as Redis last told us.
    replica: MemoryStore,
    /// What the replica holds of each AOR it has heard of.
    held: Shards<Held>,
    /// Whether Redis answered the last command and the feed is subscribed.
    up: AtomicBool,
    /// The directory at the last look.
    nodes: std::sync::Mutex<Nodes>,
    /// Whether the replica was loaded once since start.
    loaded: AtomicBool,
    cas: redis::Script,
    busy: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.names.prefix)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url`; connects lazily, so a switch starts (and serves what it can)
    /// while Redis is still down.
    pub fn open(url: &str, key_prefix: &str, node: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(RedisStore {
            client,
            conn,
            names: Names {
                prefix: key_prefix.into(),
            },
            node: node.into(),
            replica: MemoryStore::new(),
            held: Shards::new(SHARDS),
            up: AtomicBool::new(false),
            nodes: std::sync::Mutex::new(Nodes::default()),
            loaded: AtomicBool::new(false),
            cas: redis::Script::new(CAS),
            busy: redis::Script::new(BUSY),
        })
    }

    fn version(&self, key: &AorKey) -> Option<u64> {
        self.held.lock(key).get(key).and_then(|h| h.version)
    }

    /// The replica takes `bindings` at `version` (`None`: the AOR had no key), as Redis
    /// held them at `stamp`, unless it already holds a later state. Returns whether it
    /// took them.
    fn adopt(
        &self,
        key: &AorKey,
        version: Option<u64>,
        bindings: Vec<Binding>,
        stamp: u64,
    ) -> bool {
        let mut held = self.held.lock(key);
        let h = held.entry(key.clone()).or_default();
        if stamp < h.stamp {
            return false;
        }
        h.stamp = stamp;
        h.version = version;
        // Under the same lock, so a version and its bindings change together.
        self.replica.replace(key, bindings.into_boxed_slice());
        true
    }

    fn mark(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!("location store (redis) reachable");
            } else {
                tracing::warn!("location store (redis) unreachable: REGISTER answers 503");
            }
        }
    }

    async fn register_shared(
        &self,
        req: RegisterRequest,
    ) -> Result<RegisterOutcome, RegisterError> {
        let key = req.key.clone();
        let redis_key = self.names.aor(&key);
        let channel = self.names.channel();
        let head = message_head('b', &key, req.now, &self.node);
        let mut version = self.version(&key);
        let mut held = self.replica.held(&key);
        for _ in 0..MAX_ROUNDS {
            let changes = Changes {
                wildcard: req.wildcard_remove.then(|| (req.call_id.clone(), req.cseq)),
                updates: req.updates.clone(),
                max_contacts: req.max_contacts,
                now: req.now,
            };
            let plan = update::plan(&held, changes)?;
            let live_before = plan.live_before;
            let new = update::commit(held.clone().into_boxed_slice(), plan).into_vec();
            let new_version = crate::ids::random_u64();
            let value = if new.is_empty() {
                String::new()
            } else {
                codec::encode(new_version, &new)
            };
            let exat = new.iter().map(|b| b.expires_at).max().unwrap_or(0);
            let expected = version.map(|v| format!("{v:016x}")).unwrap_or_default();
            let mut conn = self.conn.clone();
            let mut call = self.cas.key(&redis_key);
            call.arg(expected)
                .arg(&value)
                .arg(exat)
                .arg(&channel)
                .arg(&head);
            let answer =
                tokio::time::timeout(COMMAND_TIMEOUT, call.invoke_async::<Value>(&mut conn)).await;
            let answer = match answer {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "REGISTER not stored");
                    self.mark(false);
                    return Err(RegisterError::Unavailable);
                }
                Err(_) => {
                    self.mark(false);
                    return Err(RegisterError::Unavailable);
                }
            };
            let Some((answer, stamp)) = stamped(answer) else {
                tracing::warn!("unexpected answer from the REGISTER script");
                return Err(RegisterError::Unavailable);
            };
            self.mark(true);
            match answer {
                Value::Int(1) => {
                    let stored = (!new.is_empty()).then_some(new_version);
                    self.adopt(&key, stored, new.clone(), stamp);
                    let presence_changed = match (live_before, new.len()) {
                        (0, n) if n > 0 => Some(PresenceStatus::Available),
                        (b, 0) if b > 0 => Some(PresenceStatus::Offline),
                        _ => None,
                    };
                    return Ok(RegisterOutcome {
                        bindings: new.into_iter().filter(|b| b.is_live(req.now)).collect(),
                        presence_changed,
                    });
                }
                // Another node wrote first: plan again on what it left.
                Value::Int(_) => {
                    version = None;
                    held = Vec::new();
                    self.adopt(&key, None, Vec::new(), stamp);
                }
                Value::BulkString(bytes) => match codec::decode(&bytes) {
                    Some((v, bindings)) => {
                        version = Some(v);
                        held = bindings.clone();
                        self.adopt(&key, Some(v), bindings, stamp);
                    }
                    None => {
                        tracing::warn!(key = %redis_key, "a value this switch did not write: not overwritten");
                        return Err(RegisterError::Unavailable);
                    }
                },
                other => {
                    tracing::warn!(?other, "unexpected answer from the REGISTER script");
                    return Err(RegisterError::Unavailable);
                }
            }
        }
        tracing::warn!(key = %redis_key, "REGISTER lost {MAX_ROUNDS} races for one AOR");
        Err(RegisterError::Unavailable)
    }

    /// Keeps the replica and presence in step with Redis until the process ends: subscribes
    /// to the channel, then loads every AOR (nothing written after the subscription is
    /// missed), then applies each published change. When the connection drops it marks the
    /// store down and starts over.
    pub async fn run_feed(self: Arc<Self>, presence: Arc<Presence>) {
        loop {
            match self.follow(&presence).await {
                Ok(()) => tracing::warn!("location store feed ended; reconnecting"),
                Err(e) => tracing::debug!(error = %e, "location store feed: Redis unreachable"),
            }
            self.mark(false);
            tokio::time::sleep(RECONNECT_EVERY).await;
        }
    }

    async fn follow(&self, presence: &Presence) -> redis::RedisResult<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.names.channel()).await?;
        self.reload(presence).await?;
        self.mark(true);
        let mut messages = pubsub.on_message();
        while let Some(m) = messages.next().await {
            if let Some(m) = parse_message(m.get_payload_bytes()) {
                self.apply(&m, presence);
            }
        }
        Ok(())
    }

    fn apply(&self, m: &Message<'_>, presence: &Presence) {
        // The node that caused a change reports it (its own messages come back here too,
        // perhaps before its REGISTER's answer does).
        let reporter = if m.origin == &*self.node {
            Reporter::This
        } else {
            Reporter::Another
        };
        match m.kind {
            b'b' => {
                let (version, bindings) = if m.payload.is_empty() {
                    (None, Vec::new())
                } else {
                    match codec::decode(m.payload) {
                        Some((v, b)) => (Some(v), b),
                        None => return,
                    }
                };
                if self.adopt(&m.key, version, bindings, m.stamp) {
                    presence.sync_as(&m.key, self, m.at, reporter);
                }
            }
            b'u' => {
                if let Some(total) = std::str::from_utf8(m.payload)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok())
                {
                    let total = u32::try_from(total.max(0)).unwrap_or(u32::MAX);
                    if self.newer_busy(&m.key, m.stamp) {
                        presence.set_busy_total(&m.key, total, m.at, reporter);
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether a busy total stamped `stamp` is newer than the one presence holds (and
    /// now holds it).
    fn newer_busy(&self, key: &AorKey, stamp: u64) -> bool {
        let mut held = self.held.lock(key);
        let h = held.entry(key.clone()).or_default();
        if stamp < h.busy_stamp {
            return false;
        }
        h.busy_stamp = stamp;
        true
    }

    /// Loads every AOR and busy count from Redis into the replica and presence, and drops
    /// from the replica the AORs Redis no longer has. Everything read is at least as new
    /// as Redis's clock when it starts; changes published meanwhile are newer and win.
    async fn reload(&self, presence: &Presence) -> redis::RedisResult<()> {
        let now = crate::time::unix_now();
        let mut conn = self.conn.clone();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let stamp = secs * 1_000_000 + micros;
        let pattern = format!("{}:aor:*", self.names.prefix);
        let keys: Vec<String> = {
            let mut iter = conn.scan_match::<_, String>(pattern).await?;
            let mut keys = Vec::new();
            while let Some(k) = iter.next_item().await {
                keys.push(k?);
            }
            keys
        };
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let values: Vec<Option<Vec<u8>>> = conn.mget(chunk).await?;
            for (k, v) in chunk.iter().zip(values) {
                let (Some(key), Some(v)) = (self.names.parse("aor", k), v) else {
                    continue;
                };
                if let Some((version, bindings)) = codec::decode(&v) {
                    if self.adopt(&key, Some(version), bindings, stamp) {
                        presence.sync_as(&key, self, now, Reporter::Claim);
                    }
                    seen.insert(key);
                }
            }
        }
        for key in self.replica.keys() {
            if !seen.contains(&key) && self.adopt(&key, None, Vec::new(), stamp) {
                presence.sync_as(&key, self, now, Reporter::Claim);
            }
        }
        let pattern = format!("{}:busy:*", self.names.prefix);
        let busy_keys: Vec<String> = {
            let mut iter = conn.scan_match::<_, String>(pattern).await?;
            let mut keys = Vec::new();
            while let Some(k) = iter.next_item().await {
                keys.push(k?);
            }
            keys
        };
        // At the first load after start this node has no call: a count under its name is
        // left from a run that was killed mid-call.
        let restarted = !self.loaded.load(Ordering::Relaxed);
        for k in busy_keys {
            let Some(key) = self.names.parse("busy", &k) else {
                continue;
            };
            if restarted {
                // Through the script, so every node hears the new total.
                let mut call = self.busy.key(&k);
                call.arg(&*self.node)
                    .arg("clear")
                    .arg(self.names.channel())
                    .arg(message_head('u', &key, now, &self.node));
                call.invoke_async::<i64>(&mut conn).await?;
            }
            let counts: Vec<i64> = conn.hvals(&k).await?;
            let total = counts.iter().copied().filter(|c| *c > 0).sum::<i64>();
            if self.newer_busy(&key, stamp) {
                let total = u32::try_from(total).unwrap_or(u32::MAX);
                presence.set_busy_total(&key, total, now, Reporter::Claim);
            }
        }
        self.loaded.store(true, Ordering::Relaxed);
        tracing::info!(
            aors = seen.len(),
            "location store replica loaded from redis"
        );
        Ok(())
    }
}

/// How long a node's entry in the directory lasts without a refresh.
/// A node killed stops refreshing it: after this its clients' UDP flows are used directly
/// by the other nodes, and its TCP flows are known dead.
const NODE_TTL_SECS: u64 = 6;

/// How often a node refreshes its entry and reads the others'.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);

impl RedisStore {
    /// Puts this node in the cluster's directory (`<prefix>:nodes`, node → REST address
    /// and expiry) every `ANNOUNCE_EVERY`, so other nodes' REST can reach its calls, and
    /// reads which nodes are alive.
    pub async fn run_announce(self: Arc<Self>, http: std::net::SocketAddr) {
        let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
        loop {
            tick.tick().await;
            let until = crate::time::unix_now() + NODE_TTL_SECS;
            let mut conn = self.conn.clone();
            let set = conn.hset::<_, _, _, ()>(
                format!("{}:nodes", self.names.prefix),
                &*self.node,
                format!("{http}|{until}"),
            );
            if !matches!(tokio::time::timeout(COMMAND_TIMEOUT, set).await, Ok(Ok(()))) {
                tracing::debug!("node directory not updated: redis unreachable");
                continue;
            }
            let Some(directory) = self.directory().await else {
                continue;
            };
            let (mut alive, mut dead) = (Vec::new(), Vec::new());
            for (node, _, fresh) in directory {
                if fresh || node == *self.node {
                    alive.push(node);
                } else {
                    dead.push(node);
                }
            }
            alive.sort();
            *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = Nodes { alive, dead };
        }
    }

    /// The directory: every node that ever announced itself, with its REST address and
    /// whether its entry is fresh (a node killed stays, stale).
    async fn directory(&self) -> Option<Vec<(String, std::net::SocketAddr, bool)>> {
        let mut conn = self.conn.clone();
        let all = conn.hgetall::<_, Vec<(String, String)>>(format!("{}:nodes", self.names.prefix));
        let Ok(Ok(all)) = tokio::time::timeout(COMMAND_TIMEOUT, all).await else {
            return None;
        };
        let now = crate::time::unix_now();
        Some(
            all.into_iter()
                .filter_map(|(node, v)| {
                    let (addr, until) = v.split_once('|')?;
                    let until: u64 = until.parse().ok()?;
                    Some((node, addr.parse().ok()?, until >= now))
                })
                .collect(),
        )
    }

    /// The other live nodes' REST addresses, as the directory has them now.
    pub async fn peers(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.directory()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|(node, _, fresh)| *fresh && *node != *self.node)
            .map(|(node, addr, _)| (node, addr))
            .collect()
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl LocationStore for RedisStore {
    fn register(&self, req: RegisterRequest) -> RegisterFuture<'_> {
        Box::pin(self.register_shared(req))
    }

    fn lookup(&self, key: &AorKey, now: u64) -> Vec<Binding> {
        self.replica.lookup(key, now)
    }

    fn live_count(&self, key: &AorKey, now: u64) -> usize {
        self.replica.live_count(key, now)
    }

    fn list(&self, account: &str, now: u64) -> Vec<(Box<str>, Vec<Binding>)> {
        self.replica.list(account, now)
    }

    /// Expired bindings leave the replica; Redis drops their keys by itself (`EXAT`).
    /// Every node sweeps its own replica and sees the same lapses, dated the same.
    fn sweep(&self, now: u64) -> Vec<Lapsed> {
        let lapsed = self.replica.sweep(now);
        for l in &lapsed {
            if let Some(h) = self.held.lock(&l.key).get_mut(&l.key) {
                h.version = None;
            }
        }
        // An AOR with no key is remembered a while (a late message of an older write
        // must not bring its bindings back), then forgotten, so AORs that come and go
        // do not accumulate.
        let forget_before = now.saturating_sub(TOMBSTONE_SECS) * 1_000_000;
        for mut held in self.held.each() {
            held.retain(|_, h| h.version.is_some() || h.stamp.max(h.busy_stamp) >= forget_before);
        }
        lapsed
    }

    fn binding_count(&self) -> usize {
        self.replica.binding_count()
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Only a node whose entry went stale is dead: one not announced yet (just started,
    /// or not seen yet) is given the benefit of the doubt.
    fn edge_alive(&self, node: &str) -> bool {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        !nodes.dead.iter().any(|n| n == node)
    }

    fn nodes(&self) -> Vec<String> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if nodes.alive.is_empty() {
            vec![self.node.to_string()]
        } else {
            nodes.alive.clone()
        }
    }
}

impl PresenceLink for RedisStore {
    fn busy(&self, key: &AorKey, delta: i32, at: u64) {
        let mut conn = self.conn.clone();
        let script = self.busy.clone();
        let (hash, node) = (self.names.busy(key), self.node.clone());
        let (channel, head) = (self.names.channel(), message_head('u', key, at, &self.node));
        let key = key.clone();
        tokio::spawn(async move {
            let mut call = script.key(hash);
            call.arg(&*node).arg(delta).arg(channel).arg(head);
            let done = tokio::time::timeout(COMMAND_TIMEOUT, call.invoke_async::<i64>(&mut conn));
            if !matches!(done.await, Ok(Ok(_))) {
                tracing::warn!(account = %key.account, identity = %key.identity, "busy count not shared: redis unreachable");
            }
        });
    }

    fn claim<'a>(
        &'a self,
        change: &'a PresenceChange,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.names.claim(change))
                .arg(&*self.node)
                .arg("NX")
                .arg("EX")
                .arg(60);
            let set = cmd.query_async::<Option<String>>(&mut conn);
            match tokio::time::timeout(COMMAND_TIMEOUT, set).await {
                Ok(Ok(reply)) => reply.is_some(),
                // Unreachable: report it rather than lose it (at least once).
                _ => true,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = Names {
            prefix: "sb".into(),
        };
        let key = AorKey::new("AC0123", "alice:home");
        assert_eq!(n.aor(&key), "sb:aor:{AC0123:alice:home}");
        assert_eq!(n.parse("aor", &n.aor(&key)), Some(key.clone()));
        assert_eq!(n.parse("busy", &n.busy(&key)), Some(key.clone()));
        assert_eq!(n.parse("aor", "other:aor:{AC0123:alice}"), None);
    }

    #[test]
    fn messages_round_trip_any_identity() {
        let key = AorKey::new("AC0123", "a b\n:c");
        let mut m = b"1700000000123456 ".to_vec();
        m.extend_from_slice(message_head('b', &key, 1_700_000_000, "node-a").as_bytes());
        m.extend_from_slice(b"0000000000000001 []");
        let parsed = parse_message(&m).expect("parses");
        assert_eq!(parsed.stamp, 1_700_000_000_123_456);
        assert_eq!(parsed.kind, b'b');
        assert_eq!(parsed.at, 1_700_000_000);
        assert_eq!(parsed.origin, "node-a");
        assert_eq!(parsed.key, key);
        assert_eq!(parsed.payload, b"0000000000000001 []");
        assert!(parse_message(b"1 b1 n AC 99:x").is_none());
    }
}
