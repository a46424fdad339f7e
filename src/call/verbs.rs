//! The media verbs on the caller's leg (reference/twiml-and-twilio-client.md §1.1):
//! `Say` (speech), `Play` (audio or `digits`), `Pause` (paced silence), `Gather` (DTMF,
//! with nested `Say`/`Play`/`Pause` interrupted by the first digit) and `Record` (WAV on disk, the empty
//! recording rule, the action and `recordingStatusCallback`), plus the error prompt played
//! before hanging up when no instructions could be had.
//!
//! Each verb answers the call first, as Twilio does for every verb but `Dial` and `Reject`.
//! The relay does the audio; here we start it and wait for its events while still
//! answering SIP, REST and the caller hanging up. `Say` is speech from espeak-ng
//! (`speech.rs`), played as a prompt; inside `Gather` the first digit stops it.

use std::time::Duration;

use super::driver::{Call, Ev, LegRef, Stop, now};
use super::interpret::Next;
use super::recording_storage::{StorageLimits, record_bytes};
use crate::instructions::{self, Gather, GatherInput, GatherNested, Record, RecordTrim, Verb};
use crate::media::recorder::Recorder;
use crate::media::{EventKind, PlayItem, RecordEnd, RecordSpec, prompts};
use crate::time::unix_ms;
use crate::webhook::status_callback::spawn_status_callback;

/// How a prompt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Played {
    Done,
    /// A digit interrupted it (only when asked to listen for one).
    Digit(char),
}

/// How long a finished recording may take to be reported once we asked it to stop (the
/// relay finishes the file, fsync included, on a thread of its own).
const RECORD_STOP_GRACE: Duration = Duration::from_secs(10);

impl Call {
    /// Plays `items` to the caller and waits until they end. With `barge_in` the first
    /// digit stops them and is returned.
    async fn play_items(
        &mut self,
        items: Vec<PlayItem>,
        loops: u32,
        barge_in: bool,
    ) -> Result<Played, Stop> {
        let Some(id) = self.main_endpoint() else {
            return Ok(Played::Done);
        };
        self.svc.media.play(id, items, loops);
        loop {
            let stop = match self.next(None).await {
                Some(Ev::Media(LegRef::Main, EventKind::PlayDone)) => return Ok(Played::Done),
                Some(Ev::Media(LegRef::Main, EventKind::Digit(d))) if barge_in => {
                    self.svc.media.stop_play(id);
                    return Ok(Played::Digit(d));
                }
                Some(Ev::MainGone) => Stop::MainGone,
                Some(Ev::Command(c)) => Stop::Command(c),
                _ => continue,
            };
            self.svc.media.stop_play(id);
            return Err(stop);
        }
    }

    /// Waits for `fut` (a prompt being fetched or synthesised) while still answering SIP
    /// and REST.
    pub(super) async fn while_answering<T>(
        &mut self,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Stop> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Ok(r),
                ev = self.next(None) => match ev {
                    Some(Ev::MainGone) => return Err(Stop::MainGone),
                    Some(Ev::Command(c)) => return Err(Stop::Command(c)),
                    _ => {}
                },
            }
        }
    }

    /// Loads `<Play>` audio while still answering SIP and REST.
    async fn load_audio(&mut self, url: &str) -> Result<Option<PlayItem>, Stop> {
        let svc = self.svc.clone();
        let loaded = self
            .while_answering(svc.audio.load(&svc.webhooks, url))
            .await?;
        Ok(match loaded {
            Ok(pcm) => Some(PlayItem::Audio(pcm)),
            Err(e) => {
                // Twilio logs a notification and goes on with the next verb.
                tracing::warn!(call = %self.info.sid, %url, error = %e, "<Play> has nothing to play; skipped");
                None
            }
        })
    }

    /// `<Say>`: the speech (cached, or synthesised now while still answering SIP and
    /// REST), `loops` times. Without a text-to-speech engine it is skipped with a warning.
    pub(super) async fn say(&mut self, say: &Verb, barge_in: bool) -> Result<Played, Stop> {
        let Verb::Say {
            speech,
            voice,
            language,
            loop_count,
            ..
        } = say
        else {
            return Ok(Played::Done);
        };
        self.answer_now();
        let svc = self.svc.clone();
        let spoken = self
            .while_answering(
                svc.audio
                    .speak(speech, voice.as_deref(), language.as_deref()),
            )
            .await?;
        match spoken {
            Ok(pcm) => {
                self.play_items(vec![PlayItem::Audio(pcm)], *loop_count, barge_in)
                    .await
            }
            Err(e) => {
                tracing::warn!(call = %self.info.sid, error = %e, "<Say> has nothing to say; skipped");
                Ok(Played::Done)
            }
        }
    }

    /// `<Play>`: `digits` as RFC 4733 events, or the audio at `url`, `loops` times.
    pub(super) async fn play(
        &mut self,
        url: &str,
        loops: u32,
        digits: Option<&str>,
        barge_in: bool,
    ) -> Result<Played, Stop> {
        self.answer_now();
        let item = match digits {
            Some(d) => Some(PlayItem::Digits(d.to_string())),
            None => self.load_audio(url).await?,
        };
        match item {
            Some(item) => self.play_items(vec![item], loops, barge_in).await,
            None => Ok(Played::Done),
        }
    }

    /// `<Pause>`: silence, sent at 20 ms pacing so the far end's jitter buffer and NAT
    /// bindings stay alive.
    pub(super) async fn pause(&mut self, length: Duration, barge_in: bool) -> Result<Played, Stop> {
        self.answer_now();
        if length.is_zero() {
            return Ok(Played::Done);
        }
        self.play_items(vec![PlayItem::Silence(length)], 1, barge_in)
            .await
    }

    /// `<Gather>` of DTMF. `Some(next)` is the action with `Digits`; `None` falls through
    /// to the next verb (no input, unless `actionOnEmptyResult`).
    pub(super) async fn gather(
        &mut self,
        g: &Gather,
        action: Option<String>,
    ) -> Result<Option<Next>, Stop> {
        self.answer_now();
        let dtmf = g.input.contains(&GatherInput::Dtmf);
        if !dtmf {
            tracing::warn!(call = %self.info.sid, "<Gather> of speech only: no speech recognition here; waiting for the timeout");
        }
        let mut input = DigitCollector::new(g);
        for nested in &g.nested {
            let played = match nested {
                GatherNested::Play(Verb::Play {
                    url,
                    loop_count,
                    digits,
                }) => self.play(url, *loop_count, digits.as_deref(), dtmf).await?,
                GatherNested::Pause(Verb::Pause { length }) => {
                    self.pause(Duration::from_secs(u64::from(*length)), dtmf)
                        .await?
                }
                GatherNested::Say(say) => self.say(say, dtmf).await?,
                _ => Played::Done,
            };
            if let Played::Digit(d) = played {
                input.push(d);
                break;
            }
        }
        let timeout = Duration::from_secs(u64::from(g.timeout));
        while !input.finished {
            match self.next(Some(now() + timeout)).await {
                None => break,
                Some(Ev::Media(LegRef::Main, EventKind::Digit(d))) if dtmf => input.push(d),
                Some(Ev::MainGone) => return Err(Stop::MainGone),
                Some(Ev::Command(c)) => return Err(Stop::Command(c)),
                Some(_) => {}
            }
        }
        if input.digits.is_empty() && !g.action_on_empty_result {
            return Ok(None);
        }
        Ok(action.map(|url| Next::Fetch {
            url,
            method: g.method,
            extra: vec![("Digits".to_string(), input.digits)],
        }))
    }

    /// `<Record>`. `Some(next)` is the action with the recording's parameters; `None`
    /// goes on with the next verb (an empty recording, or nowhere to report it).
    pub(super) async fn record(
        &mut self,
        r: &Record,
        action: Option<String>,
        status_callback: Option<String>,
    ) -> Result<Option<Next>, Stop> {
        self.answer_now();
        // Room on disk for the longest this recording can be, held until it is stored:
        // past the cap or the free-space floor the verb is skipped, not the disk filled.
        let (cfg, _) = self.svc.config();
        let limits = StorageLimits {
            max_bytes: cfg.media.recordings_max_bytes,
            min_free_bytes: cfg.media.recordings_min_free_bytes,
        };
        let _room = match self
            .svc
            .recordings
            .reserve(record_bytes(u64::from(r.max_length)), limits)
        {
            Ok(room) => room,
            Err(why) => {
                tracing::warn!(call = %self.info.sid, %why, "no room for the recording; <Record> skipped");
                return Ok(None);
            }
        };
        if r.play_beep {
            self.play_items(vec![PlayItem::Audio(prompts::beep())], 1, false)
                .await?;
        }
        let Some(id) = self.main_endpoint() else {
            return Ok(None);
        };
        let info =
            self.svc
                .recordings
                .new_record_verb(&self.info.account_sid, &self.info.sid, unix_ms());
        let recorder = match Recorder::create(self.svc.recordings.dir(), &info.sid) {
            Ok(rec) => rec,
            Err(e) => {
                tracing::error!(call = %self.info.sid, error = %e, "cannot create the recording file; <Record> skipped");
                return Ok(None);
            }
        };
        self.svc.media.record(
            id,
            RecordSpec {
                recorder,
                max_length: Duration::from_secs(u64::from(r.max_length)),
                silence_timeout: Duration::from_secs(u64::from(r.timeout)),
                finish_on_key: r.finish_on_key.clone(),
                trim_silence: r.trim == RecordTrim::TrimSilence,
            },
        );
        // Wait for the relay's report; a hangup or a REST command stops the recording,
        // and what was recorded up to then still counts.
        let mut stopped: Option<Stop> = None;
        let mut deadline = None;
        let (end, result, heard_voice) = loop {
            match self.next(deadline).await {
                None => {
                    tracing::error!(call = %self.info.sid, "the relay never reported the recording's end");
                    return Err(stopped.unwrap_or(Stop::MainGone));
                }
                Some(Ev::Media(
                    LegRef::Main,
                    EventKind::RecordDone {
                        end,
                        result,
                        heard_voice,
                    },
                )) => break (end, result, heard_voice),
                Some(Ev::MainGone) if stopped.is_none() => stopped = Some(Stop::MainGone),
                Some(Ev::Command(c)) if stopped.is_none() => stopped = Some(Stop::Command(c)),
                Some(_) => continue,
            }
            self.svc.media.stop_record(id);
            deadline = Some(now() + RECORD_STOP_GRACE);
        };
        let finished = match result {
            Ok(f) if heard_voice => f,
            Ok(f) => {
                // Twilio's empty-recording rule: no action request, go on with the next verb;
                // and the file goes, or it would stay on disk, listed nowhere.
                tracing::info!(call = %self.info.sid, "nothing was heard: recording dropped");
                if let Err(e) = tokio::fs::remove_file(&f.path).await {
                    tracing::warn!(call = %self.info.sid, path = %f.path.display(), error = %e, "empty recording not removed");
                }
                return stopped.map_or(Ok(None), Err);
            }
            Err(e) => {
                tracing::error!(call = %self.info.sid, error = %e, "recording failed");
                return stopped.map_or(Ok(None), Err);
            }
        };
        let mut info = info;
        info.path = finished.path;
        info.duration_secs = finished.duration_ms / 1000;
        let recordings = self.svc.recordings.clone();
        let added = tokio::task::spawn_blocking(move || recordings.add(info))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        let info = match added {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(call = %self.info.sid, error = %e, "recording not registered");
                return stopped.map_or(Ok(None), Err);
            }
        };
        if let Some(url) = status_callback
            && r.recording_status_callback_event
                .iter()
                .any(|e| e == "completed")
        {
            spawn_status_callback(
                self.svc.webhooks.clone(),
                self.auth_token.clone(),
                url,
                r.recording_status_callback_method,
                self.svc.recordings.callback_params(&info),
            );
        }
        let digits = match (&stopped, end) {
            (Some(Stop::MainGone), _) => Some("hangup".to_string()),
            (_, RecordEnd::Key(k)) => Some(k.to_string()),
            _ => None,
        };
        let mut params = vec![
            ("RecordingUrl".to_string(), self.svc.recordings.url(&info)),
            ("RecordingSid".to_string(), info.sid.clone()),
            (
                "RecordingDuration".to_string(),
                info.duration_secs.to_string(),
            ),
        ];
        if let Some(d) = digits {
            params.push(("Digits".to_string(), d));
        }
        match stopped {
            Some(Stop::MainGone) => {
                // Twilio still reports the recording to the action; nobody hears its answer.
                if let Some(url) = action {
                    self.notify(url, r.method, params);
                }
                Err(Stop::MainGone)
            }
            Some(stop) => Err(stop),
            None => Ok(action.map(|url| Next::Fetch {
                url,
                method: r.method,
                extra: params,
            })),
        }
    }

    /// The error prompt ("an application error has occurred"), answering the caller
    /// first if need be; then the call is hung up.
    pub(super) async fn play_application_error(&mut self) {
        if self.main_gone() {
            return;
        }
        self.answer_now();
        let _ = self
            .play_items(
                vec![PlayItem::Audio(prompts::application_error())],
                1,
                false,
            )
            .await;
    }

    /// A fire-and-forget instructions request (the caller has gone; nobody runs its answer).
    pub(super) fn notify(
        &self,
        url: String,
        method: instructions::Method,
        extra: Vec<(String, String)>,
    ) {
        let mut params = self.params();
        params.extend(extra);
        let client = self.svc.webhooks.clone();
        let token = self.auth_token.clone();
        let limits = self.svc.limits;
        tokio::spawn(async move {
            let primary = crate::webhook::voice::Fetch {
                url,
                method,
                params,
            };
            let _ =
                crate::webhook::voice::fetch_instructions(&client, &token, &limits, &primary, None)
                    .await;
        });
    }
}

/// DTMF as `<Gather>` collects it: `finishOnKey` ends it (and is not kept), `numDigits`
/// ends it when reached.
#[derive(Debug)]
struct DigitCollector {
    digits: String,
    finished: bool,
    finish_on_key: String,
    num_digits: Option<usize>,
}

impl DigitCollector {
    fn new(g: &Gather) -> Self {
        DigitCollector {
            digits: String::new(),
            finished: false,
            finish_on_key: g.finish_on_key.clone(),
            num_digits: g.num_digits.map(|n| n as usize),
        }
    }

    fn push(&mut self, d: char) {
        if self.finished {
            return;
        }
        if self.finish_on_key.contains(d) {
            self.finished = true;
            return;
        }
        self.digits.push(d);
        if self.num_digits.is_some_and(|n| self.digits.len() >= n) {
            self.finished = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather(finish_on_key: &str, num_digits: Option<u32>) -> Gather {
        let xml = match num_digits {
            Some(n) => format!(
                r#"<Response><Gather finishOnKey="{finish_on_key}" numDigits="{n}"/></Response>"#
            ),
            None => format!(r#"<Response><Gather finishOnKey="{finish_on_key}"/></Response>"#),
        };
        let doc = instructions::parse(xml.as_bytes(), &instructions::Limits::default()).unwrap();
        match &doc.verbs[0] {
            instructions::Verb::Gather(g) => g.clone(),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn finish_on_key_ends_and_is_not_kept() {
        let mut c = DigitCollector::new(&gather("#", None));
        for d in "12#3".chars() {
            c.push(d);
        }
        assert!(c.finished);
        assert_eq!(c.digits, "12");
    }

    #[test]
    fn num_digits_ends_when_reached() {
        let mut c = DigitCollector::new(&gather("#", Some(3)));
        c.push('4');
        c.push('5');
        assert!(!c.finished);
        c.push('6');
        c.push('7');
        assert!(c.finished);
        assert_eq!(c.digits, "456");
    }

    #[test]
    fn an_empty_finish_on_key_is_no_key() {
        let mut c = DigitCollector::new(&gather("", None));
        for d in "#*1".chars() {
            c.push(d);
        }
        assert!(!c.finished);
        assert_eq!(c.digits, "#*1");
    }
}
