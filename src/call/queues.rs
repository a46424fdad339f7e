//! Call queues (`<Enqueue>`, `<Dial><Queue>`, the Queues REST resource): one per
//! (account, FriendlyName), created by the first `<Enqueue>` naming it, with its sid
//! (`QU…`), its members in arrival order and the average wait of those who left it.
//! Queues live on the node their callers' calls are on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::time::unix_ms;

/// Twilio's default and largest queue size.
pub const DEFAULT_MAX_SIZE: u32 = 100;
pub const MAX_MAX_SIZE: u32 = 5000;

#[derive(Debug, Clone)]
pub struct Member {
    pub call_sid: String,
    pub enqueued_ms: u64,
}

#[derive(Debug)]
pub struct QueueState {
    pub members: VecDeque<Member>,
    pub max_size: u32,
    /// Waits of members that left (for `average_wait_time`), seconds.
    waited_total: u64,
    waited_count: u64,
}

impl QueueState {
    pub fn average_wait_secs(&self) -> u64 {
        self.waited_total
            .checked_div(self.waited_count)
            .unwrap_or(0)
    }

    /// 1-based position of `call_sid`.
    pub fn position(&self, call_sid: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.call_sid == call_sid)
            .map(|i| i + 1)
    }

    fn left(&mut self, m: &Member) {
        self.waited_total += unix_ms().saturating_sub(m.enqueued_ms) / 1000;
        self.waited_count += 1;
    }
}

#[derive(Debug)]
pub struct Queue {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub created_ms: u64,
    state: Mutex<QueueState>,
}

impl Queue {
    pub fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `call_sid` out (it hung up, or was dequeued by REST); `None` if not in it.
    pub fn remove(&self, call_sid: &str) -> Option<Member> {
        let mut st = self.state();
        let i = st.members.iter().position(|m| m.call_sid == call_sid)?;
        let m = st.members.remove(i)?;
        st.left(&m);
        Some(m)
    }

    /// The member at the front, taken out.
    pub fn pop_front(&self) -> Option<Member> {
        let mut st = self.state();
        let m = st.members.pop_front()?;
        st.left(&m);
        Some(m)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the queue is full ({0} callers)")]
pub struct QueueFull(pub u32);

#[derive(Default, Debug)]
struct Inner {
    by_name: HashMap<(String, String), Arc<Queue>>,
    by_sid: HashMap<String, Arc<Queue>>,
}

/// Every queue of this node.
#[derive(Default, Debug)]
pub struct Queues {
    inner: Mutex<Inner>,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account's queue `name`, made if it does not exist.
    pub fn get_or_create(&self, account: &str, name: &str) -> Arc<Queue> {
        let mut inner = self.lock();
        let key = (account.to_string(), name.to_string());
        if let Some(q) = inner.by_name.get(&key) {
            return Arc::clone(q);
        }
        let q = Arc::new(Queue {
            sid: format!(
                "QU{:016x}{:016x}",
                crate::ids::random_u64(),
                crate::ids::random_u64()
            ),
            account_sid: account.to_string(),
            friendly_name: name.to_string(),
            created_ms: unix_ms(),
            state: Mutex::new(QueueState {
                members: VecDeque::new(),
                max_size: DEFAULT_MAX_SIZE,
                waited_total: 0,
                waited_count: 0,
            }),
        });
        inner.by_name.insert(key, Arc::clone(&q));
        inner.by_sid.insert(q.sid.clone(), Arc::clone(&q));
        q
    }

    /// Puts `call_sid` at the back of the account's queue `name`: the queue and the
    /// caller's position.
    pub fn enqueue(
        &self,
        account: &str,
        name: &str,
        call_sid: &str,
    ) -> Result<(Arc<Queue>, usize), (Arc<Queue>, QueueFull)> {
        let q = self.get_or_create(account, name);
        let mut st = q.state();
        if st.members.len() >= st.max_size as usize {
            let max = st.max_size;
            drop(st);
            return Err((q, QueueFull(max)));
        }
        st.members.push_back(Member {
            call_sid: call_sid.to_string(),
            enqueued_ms: unix_ms(),
        });
        let position = st.members.len();
        drop(st);
        Ok((q, position))
    }

    pub fn find(&self, account: &str, name: &str) -> Option<Arc<Queue>> {
        self.lock()
            .by_name
            .get(&(account.to_string(), name.to_string()))
            .cloned()
    }

    pub fn get(&self, account: &str, sid: &str) -> Option<Arc<Queue>> {
        self.lock()
            .by_sid
            .get(sid)
            .filter(|q| q.account_sid == account)
            .cloned()
    }

    /// The account's queues, oldest first.
    pub fn list(&self, account: &str) -> Vec<Arc<Queue>> {
        let mut all: Vec<Arc<Queue>> = self
            .lock()
            .by_sid
            .values()
            .filter(|q| q.account_sid == account)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.sid.cmp(&b.sid)));
        all
    }

    /// Sets a queue's `MaxSize` (REST).
    pub fn set_max_size(&self, q: &Queue, max: u32) {
        q.state().max_size = max.clamp(1, MAX_MAX_SIZE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC00000000000000000000000000000001";

    #[test]
    fn members_leave_in_arrival_order_and_a_full_queue_refuses() {
        let q = Queues::default();
        let (a, pos) = q.enqueue(AC, "support", "CA1").unwrap();
        assert_eq!(pos, 1);
        let (b, pos) = q.enqueue(AC, "support", "CA2").unwrap();
        assert_eq!(pos, 2);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(
            q.enqueue("AC2", "support", "CA9").is_ok(),
            "another account's queue"
        );
        assert_eq!(q.list(AC).len(), 1);
        q.set_max_size(&a, 2);
        let (_, full) = q.enqueue(AC, "support", "CA3").unwrap_err();
        assert_eq!(full, QueueFull(2));
        assert_eq!(a.state().position("CA2"), Some(2));
        assert_eq!(a.pop_front().unwrap().call_sid, "CA1");
        assert_eq!(a.state().position("CA2"), Some(1));
        assert!(a.remove("CA1").is_none());
        assert_eq!(a.remove("CA2").unwrap().call_sid, "CA2");
        assert!(a.pop_front().is_none());
        assert!(q.get(AC, &a.sid).is_some() && q.get("AC2", &a.sid).is_none());
    }
}
