//! The feed: the subscription that keeps a node's replica and presence in step with Redis,
//! the reload when it is (re)made, and the format of the published changes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;

use super::{RedisStore, codec};
use crate::registrar::location::AorKey;
use crate::registrar::presence::{Presence, Reporter};

/// How often the feed tries to reach Redis again after losing it.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// A published change: `<stamp> <kind><at> <origin node> <account> <identity
/// length>:<identity><payload>`, kind `b` (bindings, payload the stored value or empty)
/// or `u` (busy, payload the total); the script puts the stamp first. The length prefix
/// lets an identity hold any character.
pub(super) fn message_head(kind: char, key: &AorKey, at: u64, origin: &str) -> String {
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

impl RedisStore {
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

#[cfg(test)]
mod tests {
    use super::*;

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
