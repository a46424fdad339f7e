//! `<Dial><Conference>` (reference/twiml-and-twilio-client.md): the caller joins the
//! account's conference of that name ([`Conferences`]), its endpoint is mixed by the
//! media plane, and the `<Dial>` ends when it leaves: it hangs up, the conference ends
//! (`endConferenceOnExit` of another, REST `Status=completed`), REST kicks it, or REST
//! gives the call new instructions.
//!
//! - Until a participant with `startConferenceOnEnter` (default true) joins, the others
//!   hear the `waitUrl` (a TwiML document whose `Play`, `Say` and `Pause` loop, or an audio
//!   file; by default generated hold music) and not each other.
//! - `beep` (true, onEnter, onExit, false): everyone hears the beep when someone joins
//!   or leaves the running conference.
//! - `muted`; REST mutes and unmutes, holds (the participant hears `HoldUrl` or hold music
//!   and is not heard), kicks.
//! - `coach="CA…"` (REST `Coaching`/`CallSidToCoach`): the participant hears everyone but
//!   is heard only by the call it coaches (by nobody while that call is not in the room).
//! - Status callbacks to the first `statusCallback` given: `conference-start`,
//!   `conference-end`, `participant-join`, `participant-leave`, `participant-mute`,
//!   `participant-unmute`, `participant-hold`, `participant-unhold`,
//!   `participant-speech-start`, `participant-speech-stop`, as `statusCallbackEvent`
//!   asks (`start end join leave mute hold speaker`; default `start end`).
//! - Dial's `action` gets `DialCallStatus=completed` and the time spent in the conference.
//! - `record="record-from-start"`: the whole mix is recorded until the conference ends
//!   (`trim`), then listed as a Recording with its `ConferenceSid`
//!   (`recordingStatusCallback` told).
//!
//! Not here yet: `jitterBufferSize`, `region`, and a conference spanning the nodes
//! of a cluster (each node has its own conferences).

use std::sync::Arc;
use std::time::Duration;

use super::conferences::{Conference, Conferences, Participant, StatusCallback};
use super::dial::DialResult;
use super::driver::{Call, Ev, LegRef, Stop, now};
use super::model::{CallCommand, ConferenceCommand};
use crate::instructions::{self, ConferenceNoun, Method, Verb};
use crate::media::recorder::Recorder;
use crate::media::{EndpointId, EventKind, HeardBy, PlayItem, RecordSpec, prompts};
use crate::time::unix_ms;
use crate::webhook::status_callback::spawn_status_callback;
use crate::webhook::voice::{self, Fetch};

/// Why the participant left.
enum Leave {
    /// Hung up, or REST gave the call other instructions.
    Stop(Stop),
    /// The conference ended or the participant was kicked: `<Dial>` ends, the document
    /// goes on.
    Done,
}

/// What REST asked to change of a participant (`ConferenceCommand::Update`).
struct ParticipantChange {
    muted: Option<bool>,
    hold: Option<bool>,
    hold_url: Option<String>,
    coach: Option<Option<String>>,
}

/// How waiting for the conference to start ended.
enum Waited {
    Started,
    Left(Leave),
}

impl Call {
    /// Runs `<Dial><Conference>`. URLs in `noun` are resolved with `resolve`.
    pub(super) async fn conference(
        &mut self,
        noun: &ConferenceNoun,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<DialResult, (Stop, DialResult)> {
        let failed = DialResult {
            status: "failed",
            call_sid: None,
            duration: 0,
            extra: Vec::new(),
        };
        self.answer_now();
        let Some(endpoint) = self.main_endpoint() else {
            return Ok(failed);
        };
        let extra = |k: &str| {
            noun.extra
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let callback = extra("statusCallback").map(|url| StatusCallback {
            url: resolve(&url),
            method: match extra("statusCallbackMethod").as_deref() {
                Some("GET" | "get") => Method::Get,
                _ => Method::Post,
            },
            events: extra("statusCallbackEvent")
                .map(|e| {
                    e.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_else(|| vec!["start".into(), "end".into()]),
            auth_token: self.auth_token.clone(),
        });
        let joined_ms = unix_ms();
        let participant = Participant {
            call_sid: self.info.sid.clone(),
            label: extra("participantLabel"),
            muted: noun.muted,
            hold: false,
            start_conference_on_enter: noun.start_conference_on_enter,
            end_conference_on_exit: noun.end_conference_on_exit,
            call_sid_to_coach: extra("coach"),
            endpoint: Some(endpoint),
            created_ms: joined_ms,
            updated_ms: joined_ms,
        };
        let svc = self.svc.clone();
        let account = self.info.account_sid.clone();
        let name = noun.name.trim();
        let joined = match svc.conferences.join(
            &account,
            name,
            || svc.media.new_conference(),
            participant.clone(),
            callback,
            noun.max_participants,
        ) {
            Ok(j) => j,
            Err(full) => {
                tracing::info!(call = %self.info.sid, conference = name, "{full}");
                return Ok(failed);
            }
        };
        let conf = joined.conference;
        tracing::info!(call = %self.info.sid, conference = %conf.sid, name, "joined the conference");
        svc.media.join(endpoint, conf.media, noun.muted);
        self.point_coaches(&conf, endpoint, participant.call_sid_to_coach.as_deref());
        self.conference_event(&conf, "participant-join", Some(&participant));
        if joined.started_now {
            self.conference_event(&conf, "conference-start", None);
            for other in &joined.others {
                let _ = svc.registry.send(
                    &account,
                    other,
                    CallCommand::Conference(ConferenceCommand::Started),
                );
            }
        }
        let beep_enter = matches!(
            noun.beep,
            instructions::Beep::True | instructions::Beep::OnEnter
        );
        let beep_exit = matches!(
            noun.beep,
            instructions::Beep::True | instructions::Beep::OnExit
        );
        if extra("record").as_deref() == Some("record-from-start") {
            let first = {
                let mut st = conf.state();
                !std::mem::replace(&mut st.recording, true)
            };
            if first {
                let callback = extra("recordingStatusCallback").map(|u| resolve(&u));
                self.record_conference(
                    &conf,
                    extra("trim").as_deref() != Some("do-not-trim"),
                    callback,
                );
            }
        }
        if joined.started && beep_enter {
            svc.media.announce(conf.media, prompts::beep());
        }
        let since = now();
        let mut started = joined.started;
        let leave = loop {
            if !started {
                match self.wait_for_start(endpoint, noun, resolve).await {
                    Waited::Started => {
                        started = true;
                        continue;
                    }
                    Waited::Left(l) => break l,
                }
            }
            match self.next(None).await {
                Some(Ev::MainGone) => break Leave::Stop(Stop::MainGone),
                Some(Ev::Command(c)) => break Leave::Stop(Stop::Command(c)),
                Some(Ev::Conference(ConferenceCommand::Ended | ConferenceCommand::Kick)) => {
                    break Leave::Done;
                }
                Some(Ev::Conference(ConferenceCommand::Update {
                    muted,
                    hold,
                    hold_url,
                    coach,
                    ..
                })) => {
                    let change = ParticipantChange {
                        muted,
                        hold,
                        hold_url,
                        coach,
                    };
                    self.update_participant(&conf, endpoint, change, resolve)
                        .await;
                }
                Some(Ev::Conference(ConferenceCommand::Announce(url))) => {
                    if let Some(items) = self.wait_items(&url, Method::Post, resolve).await {
                        // To this participant: a player takes over its stream meanwhile.
                        svc.media.play(endpoint, items, 1);
                    }
                }
                Some(Ev::Media(LegRef::Main, EventKind::Speaking(on))) => {
                    let event = if on {
                        "participant-speech-start"
                    } else {
                        "participant-speech-stop"
                    };
                    let me = conf
                        .state()
                        .participants
                        .iter()
                        .find(|p| p.call_sid == self.info.sid)
                        .cloned();
                    self.conference_event(&conf, event, me.as_ref());
                }
                _ => {}
            }
        };
        svc.media.leave(endpoint);
        let left = svc.conferences.leave(&conf, &self.info.sid);
        if let Some(p) = &left.participant {
            self.conference_event(&conf, "participant-leave", Some(p));
        }
        if left.ended {
            self.conference_end(&conf, left.reason);
            tell(
                &svc.registry,
                &account,
                &left.others,
                ConferenceCommand::Ended,
            );
        } else if started && beep_exit {
            svc.media.announce(conf.media, prompts::beep());
        }
        let result = DialResult {
            status: "completed",
            call_sid: None,
            duration: since.elapsed().as_secs(),
            extra: vec![("ConferenceSid".into(), conf.sid.clone())],
        };
        match leave {
            Leave::Done => Ok(result),
            Leave::Stop(stop) => Err((stop, result)),
        }
    }

    /// Records the conference's whole mix until its last participant leaves; then the
    /// recording is listed (with its `ConferenceSid`) and `callback` told, by a task of
    /// its own (this call may be long gone by then).
    fn record_conference(&self, conf: &Arc<Conference>, trim: bool, callback: Option<String>) {
        let svc = self.svc.clone();
        let mut info = svc
            .recordings
            .new_record_verb(&conf.account_sid, &self.info.sid, unix_ms());
        info.source = "Conference".into();
        info.conference_sid = Some(conf.sid.clone());
        let recorder = match Recorder::create(svc.recordings.dir(), &info.sid) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(conference = %conf.sid, error = %e, "cannot create the conference recording");
                return;
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        svc.media.record_conference(
            conf.media,
            RecordSpec {
                recorder,
                // A conference lasts at most as long as its calls' time limits.
                max_length: Duration::from_secs(24 * 3600),
                silence_timeout: Duration::ZERO,
                finish_on_key: String::new(),
                trim_silence: trim,
            },
            tx,
        );
        let auth_token = self.auth_token.clone();
        let conference = conf.sid.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let EventKind::RecordDone { result, .. } = ev.kind else {
                    continue;
                };
                let finished = match result {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(%conference, error = %e, "conference recording failed");
                        return;
                    }
                };
                info.path = finished.path;
                info.duration_secs = finished.duration_ms / 1000;
                let recordings = svc.recordings.clone();
                let added = tokio::task::spawn_blocking(move || recordings.add(info)).await;
                let info = match added {
                    Ok(Ok(info)) => info,
                    _ => {
                        tracing::error!(%conference, "conference recording not registered");
                        return;
                    }
                };
                if let Some(url) = callback {
                    let mut params = svc.recordings.callback_params(&info);
                    params.push(("ConferenceSid".into(), conference.clone()));
                    spawn_status_callback(
                        svc.webhooks.clone(),
                        auth_token,
                        url,
                        Method::Post,
                        params,
                    );
                }
                return;
            }
        });
    }

    /// Plays the wait music until the conference starts (or the participant leaves).
    async fn wait_for_start(
        &mut self,
        endpoint: crate::media::EndpointId,
        noun: &ConferenceNoun,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) -> Waited {
        let items = match &noun.wait_url {
            Some(url) if !url.trim().is_empty() => self
                .wait_items(url, noun.wait_method, resolve)
                .await
                .unwrap_or_else(|| vec![PlayItem::Audio(prompts::hold_music())]),
            _ => vec![PlayItem::Audio(prompts::hold_music())],
        };
        self.svc.media.play(endpoint, items.clone(), 0);
        let outcome = loop {
            match self.next(None).await {
                Some(Ev::Conference(ConferenceCommand::Started)) => break Waited::Started,
                Some(Ev::Conference(ConferenceCommand::Ended | ConferenceCommand::Kick)) => {
                    break Waited::Left(Leave::Done);
                }
                Some(Ev::MainGone) => break Waited::Left(Leave::Stop(Stop::MainGone)),
                Some(Ev::Command(c)) => break Waited::Left(Leave::Stop(Stop::Command(c))),
                Some(Ev::Media(LegRef::Main, EventKind::PlayDone)) => {
                    self.svc.media.play(endpoint, items.clone(), 0);
                }
                _ => {}
            }
        };
        self.svc.media.stop_play(endpoint);
        outcome
    }

    /// What a `waitUrl` (or `holdUrl`, `announceUrl`) plays: an audio file as it is, or a
    /// TwiML document's `Play`, `Say` and `Pause` (other verbs are skipped). `None` when
    /// there is nothing to play.
    pub(super) async fn wait_items(
        &mut self,
        url: &str,
        method: Method,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) -> Option<Vec<PlayItem>> {
        let url = resolve(url);
        let lower = url.to_ascii_lowercase();
        if lower.ends_with(".wav") || !lower.starts_with("http") {
            let svc = self.svc.clone();
            let pcm = self
                .while_answering(svc.audio.load(&svc.webhooks, &url))
                .await
                .ok()?
                .ok()?;
            return Some(vec![PlayItem::Audio(pcm)]);
        }
        let fetch = Fetch {
            url: url.clone(),
            method,
            params: self.params(),
        };
        let svc = self.svc.clone();
        let token = self.auth_token.clone();
        let fetched = self
            .while_answering(voice::fetch_instructions(
                &svc.webhooks,
                &token,
                &svc.limits,
                &fetch,
                None,
            ))
            .await
            .ok()?;
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(call = %self.info.sid, %url, error = ?e, "waitUrl failed; hold music instead");
                return None;
            }
        };
        let base = fetched.url.clone();
        let mut items = Vec::new();
        for verb in &fetched.document.verbs {
            match verb {
                Verb::Play {
                    url, loop_count, ..
                } => {
                    let u = voice::resolve_url(&base, url).unwrap_or_else(|_| url.clone());
                    if let Ok(Ok(pcm)) = self
                        .while_answering(svc.audio.load(&svc.webhooks, &u))
                        .await
                    {
                        for _ in 0..(*loop_count).clamp(1, 10) {
                            items.push(PlayItem::Audio(pcm.clone()));
                        }
                    }
                }
                Verb::Say {
                    speech,
                    voice,
                    language,
                    loop_count,
                    ..
                } => {
                    if let Ok(Ok(pcm)) = self
                        .while_answering(svc.audio.speak(
                            speech,
                            voice.as_deref(),
                            language.as_deref(),
                        ))
                        .await
                    {
                        for _ in 0..(*loop_count).clamp(1, 10) {
                            items.push(PlayItem::Audio(pcm.clone()));
                        }
                    }
                }
                Verb::Pause { length } => {
                    items.push(PlayItem::Silence(Duration::from_secs(u64::from(
                        (*length).max(1),
                    ))));
                }
                _ => {}
            }
        }
        // Only silence would loop without end doing nothing useful; still, it is what
        // the document asked for.
        (!items.is_empty()).then_some(items)
    }

    /// Points coaches at whom they coach, as this participant joins: its own voice at the
    /// call it coaches (or at nobody while that one is not here), and those already here
    /// who coach it at it.
    fn point_coaches(&self, conf: &Conference, endpoint: EndpointId, coaching: Option<&str>) {
        let st = conf.state();
        let endpoint_of = |sid: &str| {
            st.participants
                .iter()
                .find(|p| p.call_sid == sid)
                .and_then(|p| p.endpoint)
        };
        if let Some(coached) = coaching {
            let heard_by = endpoint_of(coached).map_or(HeardBy::Nobody, HeardBy::Only);
            self.svc.media.coach(endpoint, heard_by);
        }
        for coach in &st.participants {
            if coach.call_sid_to_coach.as_deref() == Some(self.info.sid.as_str())
                && let Some(theirs) = coach.endpoint
            {
                self.svc.media.coach(theirs, HeardBy::Only(endpoint));
            }
        }
    }

    /// REST changed the participant: mute, hold, coaching.
    async fn update_participant(
        &mut self,
        conf: &Arc<Conference>,
        endpoint: EndpointId,
        change: ParticipantChange,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) {
        let ParticipantChange {
            muted,
            hold,
            hold_url,
            coach,
        } = change;
        let svc = self.svc.clone();
        let before = conf
            .state()
            .participants
            .iter()
            .find(|p| p.call_sid == self.info.sid)
            .cloned();
        let Some(before) = before else {
            return;
        };
        let Some(after) =
            svc.conferences
                .update_participant(conf, &self.info.sid, muted, hold, coach)
        else {
            return;
        };
        if after.call_sid_to_coach != before.call_sid_to_coach {
            match after.call_sid_to_coach.as_deref() {
                Some(coached) => self.point_coaches(conf, endpoint, Some(coached)),
                None => svc.media.coach(endpoint, HeardBy::All),
            }
        }
        if after.muted != before.muted || after.hold != before.hold {
            svc.media.mute(endpoint, after.muted || after.hold);
        }
        if after.muted != before.muted {
            let event = if after.muted {
                "participant-mute"
            } else {
                "participant-unmute"
            };
            self.conference_event(conf, event, Some(&after));
        }
        if after.hold != before.hold {
            if after.hold {
                let items = match hold_url {
                    Some(u) => self.wait_items(&u, Method::Get, resolve).await,
                    None => None,
                }
                .unwrap_or_else(|| vec![PlayItem::Audio(prompts::hold_music())]);
                svc.media.play(endpoint, items, 0);
            } else {
                svc.media.stop_play(endpoint);
            }
            let event = if after.hold {
                "participant-hold"
            } else {
                "participant-unhold"
            };
            self.conference_event(conf, event, Some(&after));
        }
    }

    /// `conference-end`, with Twilio's `ReasonConferenceEnded`.
    fn conference_end(&self, conf: &Conference, reason: &str) {
        self.conference_event_with(
            conf,
            "conference-end",
            None,
            &[("ReasonConferenceEnded", reason)],
        );
    }

    fn conference_event(&self, conf: &Conference, event: &str, p: Option<&Participant>) {
        self.conference_event_with(conf, event, p, &[]);
    }

    /// Sends a conference status callback if the conference has one that wants `event`.
    fn conference_event_with(
        &self,
        conf: &Conference,
        event: &str,
        p: Option<&Participant>,
        extra: &[(&str, &str)],
    ) {
        let (cb, sequence) = {
            let mut st = conf.state();
            let Some(cb) = st.callback.clone() else {
                return;
            };
            let family = event
                .trim_start_matches("conference-")
                .trim_start_matches("participant-");
            let family = match family {
                "unmute" => "mute",
                "unhold" => "hold",
                "speech-start" | "speech-stop" => "speaker",
                f => f,
            };
            if !cb.events.iter().any(|e| e == family) {
                return;
            }
            let seq = st.sequence;
            st.sequence += 1;
            (cb, seq)
        };
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), conf.account_sid.clone()),
            ("ConferenceSid".into(), conf.sid.clone()),
            ("FriendlyName".into(), conf.friendly_name.clone()),
            ("StatusCallbackEvent".into(), event.into()),
            ("SequenceNumber".into(), sequence.to_string()),
            (
                "Timestamp".into(),
                crate::time::rfc2822(crate::time::unix_now()),
            ),
        ];
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some(p) = p {
            params.extend([
                ("CallSid".into(), p.call_sid.clone()),
                ("Muted".into(), p.muted.to_string()),
                ("Hold".into(), p.hold.to_string()),
                ("Coaching".into(), p.coaching().to_string()),
                (
                    "EndConferenceOnExit".into(),
                    p.end_conference_on_exit.to_string(),
                ),
                (
                    "StartConferenceOnEnter".into(),
                    p.start_conference_on_enter.to_string(),
                ),
            ]);
            if let Some(l) = &p.label {
                params.push(("ParticipantLabel".into(), l.clone()));
            }
            if let Some(c) = &p.call_sid_to_coach {
                params.push(("CallSidToCoach".into(), c.clone()));
            }
        }
        spawn_status_callback(
            self.svc.webhooks.clone(),
            cb.auth_token,
            cb.url,
            cb.method,
            params,
        );
    }
}

/// Tells the calls `sids` of `account` something about their conference.
pub(super) fn tell(
    registry: &super::registry::CallRegistry,
    account: &str,
    sids: &[String],
    what: ConferenceCommand,
) {
    for sid in sids {
        let _ = registry.send(account, sid, CallCommand::Conference(what.clone()));
    }
}

/// For REST: the registry the conferences' participants are told through.
pub fn end_conference(
    conferences: &Conferences,
    registry: &super::registry::CallRegistry,
    conf: &Arc<Conference>,
) {
    let others = conferences.end(conf);
    tell(
        registry,
        &conf.account_sid,
        &others,
        ConferenceCommand::Ended,
    );
}
