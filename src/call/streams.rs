//! A call's media streams (`<Start><Stream>`, `<Connect><Stream>`, `<Stop><Stream>`, REST
//! `Calls/{Sid}/Streams`): each stream's WebSocket task (`media_stream::task`), the relay's
//! tap on the caller's leg that feeds it, its `statusCallback`, and its end.
//!
//! Twilio's rules (its `<Stream>` reference and Media Streams overview):
//! - `<Start>` forks and goes on at once; the fork lives until `<Stop>`, REST, or the call's
//!   end. At most four tracks of forks per call (`both_tracks` counts two).
//! - `<Connect>` is bidirectional: only the inbound track goes to the app, the app's audio
//!   is what the caller hears, DTMF goes to the app. It lasts until the app closes the
//!   socket (or the stream cannot be had), then `action` or the next verb. One per call.
//! - A stream that cannot connect ends with `stream-error` (its Twilio code in
//!   `StreamError`); the call goes on.

use super::StreamCommand;
use super::driver::{Call, Ev, Stop};
use super::interpret::Next;
use super::media_stream::messages::{StreamIds, Track};
use super::media_stream::task::{self, Ended, FromApp, StreamHandle, StreamSpec};
use super::stream_records::{StreamEnd, StreamRecord};
use crate::instructions::{self, Connect, StreamTrack};
use crate::media::EndpointId;
use crate::media::stream_playout::DEFAULT_MAX_BYTES;
use crate::media::stream_tap::TapSpec;
use crate::webhook::status_callback::spawn_status_callback;

/// Fork tracks a call may stream at once (Twilio: "up to four tracks at a time").
pub const MAX_FORK_TRACKS: usize = 4;

/// Reports from a call's streams that may wait for the call task.
pub(super) const REPORT_QUEUE: usize = 256;

/// One stream of the call.
#[derive(Debug)]
pub(super) struct ActiveStream {
    key: u64,
    pub sid: String,
    pub name: Option<String>,
    handle: StreamHandle,
    endpoint: EndpointId,
    bidirectional: bool,
    tracks: usize,
    callback: Option<(String, instructions::Method)>,
}

/// A fresh stream sid: `MZ` + 32 lowercase hex digits.
pub fn new_stream_sid() -> String {
    format!(
        "MZ{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    )
}

/// What a stream is to do, from TwiML or REST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    pub sid: String,
    pub url: String,
    pub name: Option<String>,
    pub track: StreamTrack,
    pub status_callback: Option<String>,
    pub status_callback_method: instructions::Method,
    pub parameters: Vec<(String, String)>,
}

impl StreamRequest {
    /// From a `<Stream>` noun, with its callback URL resolved against the document's.
    pub fn from_noun(s: &instructions::Stream, resolve: &dyn Fn(&str) -> String) -> Self {
        StreamRequest {
            sid: new_stream_sid(),
            url: s.url.clone(),
            name: s.name.clone(),
            track: s.track,
            status_callback: s.status_callback.as_deref().map(resolve),
            status_callback_method: s.status_callback_method,
            parameters: s.parameters.clone(),
        }
    }
}

/// Why a stream was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    #[error("the call has no media on its leg")]
    NoMedia,
    #[error("the call streams {0} fork tracks already (at most 4)")]
    TooManyTracks(usize),
    #[error("the call has a bidirectional stream already")]
    SecondBidirectional,
    #[error("a stream of this call is named {0:?} already")]
    NameTaken(String),
}

impl Call {
    /// Starts a stream on the caller's leg; its reports come back through [`Call::next`].
    pub(super) fn start_stream(
        &mut self,
        req: StreamRequest,
        bidirectional: bool,
    ) -> Result<u64, StreamRefused> {
        let endpoint = self.main_endpoint().ok_or(StreamRefused::NoMedia)?;
        // A bidirectional stream sends the inbound track only.
        let tracks: Vec<Track> = match (bidirectional, req.track) {
            (true, _) | (false, StreamTrack::Inbound) => vec![Track::Inbound],
            (false, StreamTrack::Outbound) => vec![Track::Outbound],
            (false, StreamTrack::Both) => vec![Track::Inbound, Track::Outbound],
        };
        if bidirectional {
            if self.streams.iter().any(|s| s.bidirectional) {
                return Err(StreamRefused::SecondBidirectional);
            }
        } else {
            let used: usize = self
                .streams
                .iter()
                .filter(|s| !s.bidirectional)
                .map(|s| s.tracks)
                .sum();
            if used + tracks.len() > MAX_FORK_TRACKS {
                return Err(StreamRefused::TooManyTracks(used));
            }
        }
        if let Some(name) = &req.name
            && self.streams.iter().any(|s| s.name.as_ref() == Some(name))
        {
            return Err(StreamRefused::NameTaken(name.clone()));
        }
        self.stream_serial += 1;
        let key = self.stream_serial;
        let spec = StreamSpec {
            url: req.url.clone(),
            auth_token: self.auth_token.clone(),
            guard: self.svc.webhooks.guard().clone(),
            connect_timeout: self.svc.webhooks.stream_connect_timeout(),
            ids: StreamIds {
                stream_sid: req.sid.clone(),
                account_sid: self.info.account_sid.clone(),
                call_sid: self.info.sid.clone(),
            },
            tracks: tracks.clone(),
            parameters: req.parameters,
            bidirectional,
            playout: bidirectional.then(|| (self.svc.media.clone(), endpoint)),
        };
        let handle = task::spawn(spec, key, self.stream_reports());
        self.svc.media.tap(
            endpoint,
            TapSpec {
                key,
                queue: handle.queue().clone(),
                inbound: tracks.contains(&Track::Inbound),
                outbound: tracks.contains(&Track::Outbound),
                dtmf: bidirectional,
                playout: bidirectional.then_some(DEFAULT_MAX_BYTES),
            },
        );
        tracing::info!(call = %self.info.sid, stream = %req.sid, url = %req.url, bidirectional, "media stream starting");
        self.svc.registry.streams.started(
            &self.info.sid,
            StreamRecord {
                sid: req.sid.clone(),
                name: req.name.clone(),
            },
        );
        self.streams.push(ActiveStream {
            key,
            sid: req.sid,
            name: req.name,
            handle,
            endpoint,
            bidirectional,
            tracks: if bidirectional { 0 } else { tracks.len() },
            callback: req
                .status_callback
                .map(|url| (url, req.status_callback_method)),
        });
        Ok(key)
    }

    /// Stops the stream whose sid or name is `which`; false if the call has none such.
    pub(super) fn stop_stream(&mut self, which: &str) -> bool {
        let found = self
            .streams
            .iter()
            .find(|s| s.sid == which || s.name.as_deref() == Some(which));
        match found {
            Some(s) => {
                self.svc.media.untap(s.endpoint, s.key);
                s.handle.stop();
                true
            }
            None => false,
        }
    }

    /// Stops every stream (the call is ending). Their `stream-stopped` callbacks go now:
    /// the call task does not wait for the sockets to close.
    pub(super) fn stop_all_streams(&mut self) {
        self.svc.registry.streams.call_ended(&self.info.sid);
        for s in std::mem::take(&mut self.streams) {
            s.handle.stop();
            let dropped = s.handle.dropped();
            self.svc
                .registry
                .streams
                .count_end(StreamEnd::Stopped, dropped);
            self.stream_callback(&s, "stream-stopped", None);
        }
    }

    /// A report from stream `key`'s task (called by [`Call::next`]).
    pub(super) fn on_stream(&mut self, key: u64, report: FromApp) {
        let Some(i) = self.streams.iter().position(|s| s.key == key) else {
            return;
        };
        match report {
            FromApp::Started => {
                let s = &self.streams[i];
                tracing::info!(call = %self.info.sid, stream = %s.sid, "media stream started");
                self.stream_callback(s, "stream-started", None);
            }
            // Calls hand their streams the relay (`StreamSpec::playout`): nothing comes
            // this way, but a message that did would still be played.
            FromApp::Message(m) => {
                let s = &self.streams[i];
                self.svc.media.stream_out(s.endpoint, key, m.into());
            }
            FromApp::Ended(ended) => {
                let s = self.streams.remove(i);
                self.svc.media.untap(s.endpoint, s.key);
                self.svc.registry.streams.ended(&self.info.sid, &s.sid);
                let dropped = s.handle.dropped();
                let end = match &ended {
                    Ended::Stopped => StreamEnd::Stopped,
                    Ended::ClosedByApp => StreamEnd::ClosedByApp,
                    Ended::ConnectFailed(_) | Ended::Broken(_) => StreamEnd::Error,
                };
                self.svc.registry.streams.count_end(end, dropped);
                match &ended {
                    Ended::ConnectFailed(e) => {
                        tracing::warn!(call = %self.info.sid, stream = %s.sid, code = e.code(), error = %e, "media stream could not connect");
                        let why = format!("{} {e}", e.code());
                        self.stream_callback(&s, "stream-error", Some(why));
                    }
                    Ended::Broken(e) => {
                        tracing::warn!(call = %self.info.sid, stream = %s.sid, error = %e, dropped, "media stream broke (31903)");
                        let why = format!("31903 {e}");
                        self.stream_callback(&s, "stream-error", Some(why));
                    }
                    Ended::ClosedByApp | Ended::Stopped => {
                        tracing::info!(call = %self.info.sid, stream = %s.sid, ?ended, dropped, "media stream ended");
                        self.stream_callback(&s, "stream-stopped", None);
                    }
                }
                self.push_event(Ev::StreamEnded { key, ended });
            }
        }
    }

    /// `statusCallback` of a stream: `StreamEvent` and, on error, `StreamError`.
    fn stream_callback(&self, s: &ActiveStream, event: &str, error: Option<String>) {
        let Some((url, method)) = s.callback.clone() else {
            return;
        };
        let mut params = vec![
            ("AccountSid".to_owned(), self.info.account_sid.clone()),
            ("CallSid".to_owned(), self.info.sid.clone()),
            ("StreamSid".to_owned(), s.sid.clone()),
            (
                "StreamName".to_owned(),
                s.name.clone().unwrap_or_else(|| s.sid.clone()),
            ),
            ("StreamEvent".to_owned(), event.to_owned()),
            (
                "Timestamp".to_owned(),
                crate::time::rfc3339(crate::time::unix_now()),
            ),
        ];
        if let Some(e) = error {
            params.push(("StreamError".to_owned(), e));
        }
        spawn_status_callback(
            self.svc.webhooks.clone(),
            self.auth_token.clone(),
            url,
            method,
            params,
        );
    }

    /// REST on the call's streams, taken whatever verb runs (it goes on).
    pub(super) fn on_stream_command(&mut self, cmd: StreamCommand) {
        match cmd {
            StreamCommand::Start(req) => {
                let url = req.url.clone();
                if let Err(why) = self.start_stream(req, false) {
                    tracing::warn!(call = %self.info.sid, %url, %why, "REST stream not started");
                }
            }
            StreamCommand::Stop(which) => {
                self.stop_stream(&which);
            }
        }
    }

    /// `<Start><Stream>`s: each forked, and the document goes on at once.
    pub(super) fn start_forks(
        &mut self,
        streams: &[instructions::Stream],
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) {
        self.answer_now();
        for noun in streams {
            let req = StreamRequest::from_noun(noun, resolve);
            if let Err(why) = self.start_stream(req, false) {
                tracing::warn!(call = %self.info.sid, url = %noun.url, %why, "<Start><Stream> skipped");
            }
        }
    }

    /// `<Connect><Stream>`: the app has the caller until it closes the socket (or the
    /// stream cannot be had); then `action`, or the next verb.
    pub(super) async fn connect_stream(
        &mut self,
        c: &Connect,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Option<Next>, Stop> {
        self.answer_now();
        let req = StreamRequest::from_noun(&c.stream, resolve);
        let sid = req.sid.clone();
        match self.start_stream(req, true) {
            Ok(key) => loop {
                let stop = match self.next(None).await {
                    Some(Ev::StreamEnded { key: k, .. }) if k == key => break,
                    Some(Ev::MainGone) => Stop::MainGone,
                    Some(Ev::Command(cmd)) => Stop::Command(cmd),
                    _ => continue,
                };
                self.stop_stream(&sid);
                return Err(stop);
            },
            Err(why) => {
                tracing::warn!(call = %self.info.sid, url = %c.stream.url, %why, "<Connect><Stream> skipped");
            }
        }
        Ok(c.action.as_deref().map(|a| Next::Fetch {
            url: resolve(a),
            method: c.method,
            // Not documented by Twilio; which stream ended is a Switchboard addition.
            extra: vec![("StreamSid".to_owned(), sid)],
        }))
    }
}
