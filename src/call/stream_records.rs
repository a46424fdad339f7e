//! The media streams of live calls, as REST sees them (`Calls/{CallSid}/Streams/{Sid}`):
//! which sid and name each call's streams have, so a stop by sid or by name can be
//! answered (404 for one the call does not have) without asking the call's task. The call
//! writes here as its streams start and end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One stream of a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// `MZ` + 32 hex.
    pub sid: String,
    pub name: Option<String>,
}

/// How a stream ended, for /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// `stop` sent: `<Stop>`, REST, the call's end.
    Stopped,
    /// The app closed the socket.
    ClosedByApp,
    /// It never connected, or the socket broke.
    Error,
}

impl StreamEnd {
    pub const ALL: [StreamEnd; 3] = [StreamEnd::Stopped, StreamEnd::ClosedByApp, StreamEnd::Error];

    pub const fn as_str(self) -> &'static str {
        match self {
            StreamEnd::Stopped => "stopped",
            StreamEnd::ClosedByApp => "closed_by_app",
            StreamEnd::Error => "error",
        }
    }
}

/// Streams by call sid, and counts since start for /metrics.
#[derive(Debug, Default)]
pub struct StreamRecords {
    by_call: Mutex<HashMap<String, Vec<StreamRecord>>>,
    started: AtomicU64,
    ended: [AtomicU64; 3],
    /// Frames and events for an app that were dropped because its queue was full.
    dropped: AtomicU64,
}

impl StreamRecords {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<StreamRecord>>> {
        // A panic elsewhere cannot leave the map half-written: every write is one call.
        self.by_call.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a stream's end and what its app's full queue cost it.
    pub fn count_end(&self, end: StreamEnd, dropped: u64) {
        self.ended[end as usize].fetch_add(1, Ordering::Relaxed);
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Streams started since start, ended by how, live now, and items dropped.
    pub fn counts(&self) -> (u64, [(StreamEnd, u64); 3], usize, u64) {
        let ended = StreamEnd::ALL.map(|e| (e, self.ended[e as usize].load(Ordering::Relaxed)));
        let live = self.lock().values().map(Vec::len).sum();
        (
            self.started.load(Ordering::Relaxed),
            ended,
            live,
            self.dropped.load(Ordering::Relaxed),
        )
    }

    pub fn started(&self, call_sid: &str, record: StreamRecord) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(call_sid.to_owned())
            .or_default()
            .push(record);
    }

    pub fn ended(&self, call_sid: &str, stream_sid: &str) {
        let mut map = self.lock();
        if let Some(list) = map.get_mut(call_sid) {
            list.retain(|r| r.sid != stream_sid);
            if list.is_empty() {
                map.remove(call_sid);
            }
        }
    }

    /// The call ended: all its streams with it.
    pub fn call_ended(&self, call_sid: &str) {
        self.lock().remove(call_sid);
    }

    /// The stream of `call_sid` whose sid or name is `which`.
    pub fn find(&self, call_sid: &str, which: &str) -> Option<StreamRecord> {
        self.lock()
            .get(call_sid)?
            .iter()
            .find(|r| r.sid == which || r.name.as_deref() == Some(which))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_found_by_sid_or_name_until_they_or_their_call_end() {
        let t = StreamRecords::default();
        let named = StreamRecord {
            sid: "MZ1".into(),
            name: Some("fork".into()),
        };
        t.started("CA1", named.clone());
        t.started(
            "CA1",
            StreamRecord {
                sid: "MZ2".into(),
                name: None,
            },
        );
        assert_eq!(t.find("CA1", "fork"), Some(named.clone()));
        assert_eq!(t.find("CA1", "MZ1"), Some(named));
        assert_eq!(t.find("CA2", "MZ1"), None, "another call's");
        t.ended("CA1", "MZ1");
        assert_eq!(t.find("CA1", "fork"), None);
        assert!(t.find("CA1", "MZ2").is_some());
        t.call_ended("CA1");
        assert_eq!(t.find("CA1", "MZ2"), None);
    }
}
