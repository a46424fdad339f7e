//! Conferences as the REST API and the calls in them see them: one per (account,
//! FriendlyName) while it has participants, with its sid (`CF…`), status, participants and
//! status-callback settings. The audio is the media plane's ([`ConferenceId`]); the calls
//! run `<Dial><Conference>` (`conference.rs`) and tell this registry when they join and
//! leave. Finished conferences stay listed (the last [`FINISHED_KEPT`]), as Twilio lists
//! completed ones.
//!
//! A conference lives on the node its participants' calls are on: a cluster does not yet
//! merge a FriendlyName across nodes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::instructions::Method;
use crate::media::{ConferenceId, EndpointId};
use crate::time::unix_ms;

/// Completed conferences kept for REST.
pub const FINISHED_KEPT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConferenceStatus {
    /// Participants wait for one with `startConferenceOnEnter`.
    Init,
    InProgress,
    Completed,
}

impl ConferenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConferenceStatus::Init => "init",
            ConferenceStatus::InProgress => "in-progress",
            ConferenceStatus::Completed => "completed",
        }
    }
}

/// One call in a conference.
#[derive(Debug, Clone)]
pub struct Participant {
    pub call_sid: String,
    pub label: Option<String>,
    pub muted: bool,
    pub hold: bool,
    pub start_conference_on_enter: bool,
    pub end_conference_on_exit: bool,
    /// The call it coaches (TwiML `coach`, REST `CallSidToCoach`): only that one hears it.
    pub call_sid_to_coach: Option<String>,
    /// Its endpoint in the media plane (to point a coach at it).
    pub endpoint: Option<EndpointId>,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Participant {
    pub fn coaching(&self) -> bool {
        self.call_sid_to_coach.is_some()
    }
}

/// Where the conference's status callbacks go (set by the first participant that names
/// one, as Twilio does).
#[derive(Debug, Clone)]
pub struct StatusCallback {
    pub url: String,
    pub method: Method,
    /// `start end join leave mute hold speaker` (Twilio's names).
    pub events: Vec<String>,
    pub auth_token: String,
}

#[derive(Debug)]
pub struct State {
    pub status: ConferenceStatus,
    pub participants: Vec<Participant>,
    pub updated_ms: u64,
    /// The next `SequenceNumber` of its status callbacks.
    pub sequence: u32,
    pub callback: Option<StatusCallback>,
    /// REST ended it (`Status=completed`): the next participant out reports the end.
    pub end_reason: Option<&'static str>,
    /// Its recording was started (`record="record-from-start"`, once).
    pub recording: bool,
}

#[derive(Debug)]
pub struct Conference {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub media: ConferenceId,
    pub created_ms: u64,
    state: Mutex<State>,
}

impl Conference {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What joining did.
#[derive(Debug)]
pub struct Joined {
    pub conference: Arc<Conference>,
    /// This join started the conference: the others waiting must stop their wait music.
    pub started_now: bool,
    pub started: bool,
    /// The participants already in it (to tell them it started).
    pub others: Vec<String>,
}

/// What leaving did.
#[derive(Debug)]
pub struct Left {
    /// The conference is over (the last one left, or one with `endConferenceOnExit`):
    /// the calls in `others` must leave too.
    pub ended: bool,
    pub others: Vec<String>,
    pub participant: Option<Participant>,
    /// Twilio's `ReasonConferenceEnded` when `ended`.
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the conference is full ({0} participants)")]
pub struct Full(pub u32);

#[derive(Default, Debug)]
struct Inner {
    live: HashMap<(String, String), Arc<Conference>>,
    by_sid: HashMap<String, Arc<Conference>>,
    finished: VecDeque<Arc<Conference>>,
}

/// Every conference of this node.
#[derive(Default, Debug)]
pub struct Conferences {
    inner: Mutex<Inner>,
}

pub fn new_conference_sid() -> String {
    format!(
        "CF{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    )
}

impl Conferences {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `p` to the account's conference `name`, creating it (on `media()`) if none is
    /// live. `callback` becomes the conference's if it has none yet.
    pub fn join(
        &self,
        account: &str,
        name: &str,
        media: impl FnOnce() -> ConferenceId,
        p: Participant,
        callback: Option<StatusCallback>,
        max_participants: u32,
    ) -> Result<Joined, Full> {
        let mut inner = self.lock();
        let key = (account.to_string(), name.to_string());
        let conference = match inner.live.get(&key) {
            Some(c) => Arc::clone(c),
            None => {
                let now = unix_ms();
                let c = Arc::new(Conference {
                    sid: new_conference_sid(),
                    account_sid: account.to_string(),
                    friendly_name: name.to_string(),
                    media: media(),
                    created_ms: now,
                    state: Mutex::new(State {
                        status: ConferenceStatus::Init,
                        participants: Vec::new(),
                        updated_ms: now,
                        sequence: 1,
                        callback: None,
                        end_reason: None,
                        recording: false,
                    }),
                });
                inner.live.insert(key, Arc::clone(&c));
                inner.by_sid.insert(c.sid.clone(), Arc::clone(&c));
                c
            }
        };
        let mut st = conference.state();
        let max = max_participants.clamp(2, 250);
        if st.participants.len() >= max as usize {
            return Err(Full(max));
        }
        let others = st.participants.iter().map(|p| p.call_sid.clone()).collect();
        let starts = p.start_conference_on_enter;
        st.participants.retain(|q| q.call_sid != p.call_sid);
        st.participants.push(p);
        if st.callback.is_none() {
            st.callback = callback;
        }
        let started_now = starts && st.status == ConferenceStatus::Init;
        if started_now {
            st.status = ConferenceStatus::InProgress;
        }
        st.updated_ms = unix_ms();
        let started = st.status == ConferenceStatus::InProgress;
        drop(st);
        Ok(Joined {
            conference,
            started_now,
            started,
            others,
        })
    }

    /// Takes `call_sid` out of `conference`; ends it when it was the last one or had
    /// `endConferenceOnExit` (or `end` is asked: REST `Status=completed`).
    pub fn leave(&self, conference: &Arc<Conference>, call_sid: &str) -> Left {
        let mut st = conference.state();
        let idx = st.participants.iter().position(|p| p.call_sid == call_sid);
        let participant = idx.map(|i| st.participants.remove(i));
        let leader = participant
            .as_ref()
            .is_some_and(|p| p.end_conference_on_exit);
        let reason = match st.end_reason {
            Some(r) => r,
            None if leader => "participant-with-end-conference-on-exit-left",
            None => "last-participant-left",
        };
        let ended = st.status != ConferenceStatus::Completed
            && (st.end_reason.is_some() || st.participants.is_empty() || leader);
        let others = st.participants.iter().map(|p| p.call_sid.clone()).collect();
        if ended {
            st.status = ConferenceStatus::Completed;
        }
        st.updated_ms = unix_ms();
        drop(st);
        if ended {
            self.finish(conference);
        }
        Left {
            ended,
            others,
            participant,
            reason,
        }
    }

    /// Ends a conference (REST `Status=completed`): the calls still in it are returned so
    /// they can be told; the first of them to leave reports the end.
    pub fn end(&self, conference: &Arc<Conference>) -> Vec<String> {
        let mut st = conference.state();
        if st.status != ConferenceStatus::Completed {
            st.end_reason = Some("conference-ended-via-api");
        }
        st.participants.iter().map(|p| p.call_sid.clone()).collect()
    }

    fn finish(&self, conference: &Arc<Conference>) {
        let mut inner = self.lock();
        let key = (
            conference.account_sid.clone(),
            conference.friendly_name.clone(),
        );
        if inner
            .live
            .get(&key)
            .is_some_and(|c| Arc::ptr_eq(c, conference))
        {
            inner.live.remove(&key);
        }
        inner.finished.push_back(Arc::clone(conference));
        while inner.finished.len() > FINISHED_KEPT {
            if let Some(old) = inner.finished.pop_front() {
                inner.by_sid.remove(&old.sid);
            }
        }
    }

    /// Sets a participant's `muted`/`hold`; `None` when it is not in the conference.
    pub fn update_participant(
        &self,
        conference: &Arc<Conference>,
        call_sid: &str,
        muted: Option<bool>,
        hold: Option<bool>,
        coach: Option<Option<String>>,
    ) -> Option<Participant> {
        let mut st = conference.state();
        let p = st
            .participants
            .iter_mut()
            .find(|p| p.call_sid == call_sid)?;
        if let Some(m) = muted {
            p.muted = m;
        }
        if let Some(h) = hold {
            p.hold = h;
        }
        if let Some(c) = coach {
            p.call_sid_to_coach = c;
        }
        p.updated_ms = unix_ms();
        let p = p.clone();
        st.updated_ms = p.updated_ms;
        Some(p)
    }

    pub fn get(&self, account: &str, sid: &str) -> Option<Arc<Conference>> {
        self.lock()
            .by_sid
            .get(sid)
            .filter(|c| c.account_sid == account)
            .cloned()
    }

    /// The account's conferences, newest first.
    pub fn list(&self, account: &str) -> Vec<Arc<Conference>> {
        let inner = self.lock();
        let mut all: Vec<Arc<Conference>> = inner
            .by_sid
            .values()
            .filter(|c| c.account_sid == account)
            .cloned()
            .collect();
        all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.sid.cmp(&a.sid)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sid: &str, start: bool, end: bool) -> Participant {
        Participant {
            call_sid: sid.into(),
            label: None,
            muted: false,
            hold: false,
            start_conference_on_enter: start,
            end_conference_on_exit: end,
            call_sid_to_coach: None,
            endpoint: None,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    const AC: &str = "AC00000000000000000000000000000001";

    #[test]
    fn a_conference_starts_with_its_moderator_and_ends_with_the_last_or_the_leader() {
        let r = Conferences::default();
        let media = || ConferenceId(7);
        let a = r
            .join(AC, "room", media, p("CA1", false, false), None, 250)
            .unwrap();
        assert!(!a.started && !a.started_now && a.others.is_empty());
        let b = r
            .join(AC, "room", media, p("CA2", true, true), None, 250)
            .unwrap();
        assert!(b.started_now && b.started);
        assert_eq!(b.others, vec!["CA1".to_string()]);
        assert!(Arc::ptr_eq(&a.conference, &b.conference));
        let c = r
            .join(AC, "room", media, p("CA3", true, false), None, 250)
            .unwrap();
        assert!(c.started && !c.started_now);
        // Another account's room of the same name is another conference.
        let other = r
            .join("AC2", "room", media, p("CA9", true, false), None, 250)
            .unwrap();
        assert!(!Arc::ptr_eq(&other.conference, &a.conference));
        assert_eq!(r.list(AC).len(), 1);
        assert!(r.get("AC2", &a.conference.sid).is_none());

        let left = r.leave(&a.conference, "CA3");
        assert!(!left.ended);
        let left = r.leave(&a.conference, "CA2");
        assert!(left.ended, "endConferenceOnExit ends it");
        assert_eq!(left.reason, "participant-with-end-conference-on-exit-left");
        assert_eq!(left.others, vec!["CA1".to_string()]);
        assert_eq!(a.conference.state().status, ConferenceStatus::Completed);
        // A new join under the same name makes a new conference; the old one stays listed.
        let again = r
            .join(AC, "room", media, p("CA4", true, false), None, 250)
            .unwrap();
        assert_ne!(again.conference.sid, a.conference.sid);
        assert_eq!(r.list(AC).len(), 2);
    }

    #[test]
    fn max_participants_is_enforced_and_mute_is_recorded() {
        let r = Conferences::default();
        let media = || ConferenceId(1);
        let a = r
            .join(AC, "small", media, p("CA1", true, false), None, 2)
            .unwrap();
        r.join(AC, "small", media, p("CA2", true, false), None, 2)
            .unwrap();
        assert_eq!(
            r.join(AC, "small", media, p("CA3", true, false), None, 2)
                .unwrap_err(),
            Full(2)
        );
        let m = r
            .update_participant(&a.conference, "CA2", Some(true), None, None)
            .unwrap();
        assert!(m.muted && !m.hold);
        assert!(
            r.update_participant(&a.conference, "CA3", Some(true), None, None)
                .is_none()
        );
        let left = r.leave(&a.conference, "CA1");
        assert!(!left.ended);
        let left = r.leave(&a.conference, "CA2");
        assert!(left.ended, "the last one out ends it");
        assert_eq!(left.reason, "last-participant-left");
    }
}
