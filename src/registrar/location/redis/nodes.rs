//! The node directory: every node writes its REST address and an expiry to
//! `<prefix>:nodes` every `ANNOUNCE_EVERY`; a node whose entry went stale is dead.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;

use super::{COMMAND_TIMEOUT, RedisStore};

/// The node directory as last read.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    /// Fresh entries (and this node), sorted.
    pub(super) alive: Vec<String>,
    /// Entries not refreshed within `NODE_TTL_SECS`.
    pub(super) dead: Vec<String>,
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
