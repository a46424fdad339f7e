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
//!
//! - `feed`: the subscription that keeps the replica and presence in step, and its
//!   message format;
//! - `nodes`: the node directory (REST addresses, which nodes are alive).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;

mod feed;
mod nodes;

use feed::message_head;
use nodes::Nodes;

use super::binding::{AorKey, Binding};
use super::codec;
use super::memory::MemoryStore;
use super::shards::{SHARDS, Shards};
use super::store::{
    Lapsed, LocationStore, RegisterError, RegisterFuture, RegisterOutcome, RegisterRequest,
};
use super::update::{self, Changes};
use crate::registrar::presence::{PresenceChange, PresenceLink, PresenceStatus};

/// How long one Redis command may take before the REGISTER gets 503.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-set rounds before a REGISTER gives up (only under a storm of writes to
/// one AOR from several nodes).
const MAX_ROUNDS: usize = 8;

/// How long the replica remembers an AOR that has no key any more (see `sweep`).
const TOMBSTONE_SECS: u64 = 300;

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
}
