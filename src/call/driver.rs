//! The call task's driver: one per call, and the only clock reader in `call/`. It feeds
//! the sans-IO [`CallCore`] with the messages the shards route here by Call-ID
//! (`router`), the media plane's events, REST commands and the time, and executes what the
//! core asks: bytes to the sockets (`SipSender`), commands to the relay, events to the
//! instructions.
//!
//! The instructions (`interpret`, `dial`, `verbs`) see the call through this narrow handle:
//! they read the legs through [`Call::core`] and act with [`Call::input`] (or its short
//! forms), and wait with [`Call::next`], the only place the task waits. It awaits only
//! channel receives and timers, and sends never block, so it is cancel-safe: `interpret`
//! races it against a webhook fetch with `select!`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::core::sdp::LegSdp;
use super::core::{CallCore, CoreConfig, Event, Input, MediaOp, Output};
use super::media_stream::task::FromApp;
use super::router::CallInput;
use super::service::{AppSource, CallService};
use super::{CallCommand, CallInfo, CallStatus};
use crate::media::{Endpoint, EndpointId, EventKind, MediaEvent, OpenError};

pub use super::core::{LegEv, LegRef};

/// What happened, as far as the instructions are concerned.
#[derive(Debug)]
pub enum Ev {
    /// The main leg is gone: CANCEL, BYE, our 2xx never ACKed, or no media.
    MainGone,
    /// The main leg (a REST-created call we dial) rang, answered, or failed.
    Main(LegEv),
    /// A dial leg progressed.
    Dial(usize, LegEv),
    /// REST asked for something.
    Command(CallCommand),
    /// The call's conference (or REST on it) told it something; only `<Dial><Conference>`
    /// listens (anything else ignores it, unlike a `Command`).
    Conference(super::model::ConferenceCommand),
    /// The same for `<Enqueue>` and `<Dial><Queue>`.
    Queue(super::model::QueueCommand),
    /// The media plane reported on a leg's endpoint (a digit, a prompt or a recording
    /// that ended), or a SIP INFO carried a digit (`application/dtmf-relay`).
    Media(LegRef, EventKind),
    /// A media stream of the call ended (its callbacks are sent already).
    StreamEnded {
        key: u64,
        ended: super::media_stream::task::Ended,
    },
}

/// Why a verb stopped before finishing.
#[derive(Debug)]
pub enum Stop {
    MainGone,
    Command(CallCommand),
}

/// One call.
pub struct Call {
    pub svc: Arc<CallService>,
    core: CallCore,
    inbox: mpsc::Receiver<CallInput>,
    /// Our own inbox's sender, to enter the Call-IDs of new legs in the router.
    inbox_tx: mpsc::Sender<CallInput>,
    commands: mpsc::UnboundedReceiver<CallCommand>,
    pub info: CallInfo,
    pub auth_token: String,
    pub app: AppSource,
    /// Every Call-ID entered in the router for this call.
    call_ids: Vec<String>,
    events: VecDeque<Ev>,
    /// The relay endpoints of the legs, closed (dropped) when the core says so.
    endpoints: HashMap<EndpointId, Endpoint>,
    /// Status callbacks sent so far (`SequenceNumber`).
    pub callback_seq: u32,
    /// `<Reject>` ran: how the unanswered INVITE is to be refused.
    pub rejected: Option<crate::instructions::RejectReason>,
    /// The last `<Dial>`'s `DialCallStatus`, for the final answer to an unanswered caller.
    pub last_dial: Option<&'static str>,
    /// Instruction documents fetched (Redirect and action loops are bounded).
    pub fetches: super::fetch_budget::FetchBudget,
    /// Held while the caller waits for its final answer (the backlog new calls are shed
    /// against).
    setup: Option<super::registry::SetupGuard>,
    /// The key that puts all of this call's endpoints on one relay thread.
    media_group: u64,
    media_tx: crate::media::EventSink,
    media_rx: mpsc::UnboundedReceiver<MediaEvent>,
    /// The call's media streams, what their tasks report, and the last stream key given.
    pub(super) streams: Vec<super::streams::ActiveStream>,
    stream_tx: mpsc::Sender<(u64, FromApp)>,
    stream_rx: mpsc::Receiver<(u64, FromApp)>,
    pub(super) stream_serial: u64,
}

/// The clock, read by call drivers only.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// What a call task is started with.
pub struct CallStart {
    pub inbox: mpsc::Receiver<CallInput>,
    pub inbox_tx: mpsc::Sender<CallInput>,
    pub commands: mpsc::UnboundedReceiver<CallCommand>,
    pub info: CallInfo,
    pub auth_token: String,
    pub app: AppSource,
    /// An inbound call counts in the service's setup backlog until its caller is answered.
    pub setup: Option<super::registry::SetupGuard>,
}

impl Call {
    pub fn new(svc: Arc<CallService>, start: CallStart) -> Call {
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let (stream_tx, stream_rx) = mpsc::channel(super::streams::REPORT_QUEUE);
        let core = CallCore::new(CoreConfig {
            timers: svc.timers,
            local: svc.local.clone(),
            server_name: svc.server_name.clone(),
            sid: start.info.sid.clone(),
        });
        Call {
            svc,
            core,
            inbox: start.inbox,
            inbox_tx: start.inbox_tx,
            commands: start.commands,
            info: start.info,
            auth_token: start.auth_token,
            app: start.app,
            call_ids: Vec::new(),
            events: VecDeque::new(),
            endpoints: HashMap::new(),
            callback_seq: 0,
            rejected: None,
            last_dial: None,
            fetches: Default::default(),
            setup: start.setup,
            media_group: crate::ids::random_u64(),
            media_tx,
            media_rx,
            streams: Vec::new(),
            stream_tx,
            stream_rx,
            stream_serial: 0,
        }
    }

    /// Where the call's media streams report.
    pub(super) fn stream_reports(&self) -> mpsc::Sender<(u64, FromApp)> {
        self.stream_tx.clone()
    }

    /// The call's SIP side, read-only.
    pub fn core(&self) -> &CallCore {
        &self.core
    }

    /// Tells the core something and executes what it asks.
    pub fn input(&mut self, input: Input) {
        self.core.handle(now(), input);
        self.drain();
    }

    /// Feeds a message to the core.
    pub fn receive(&mut self, input: CallInput) {
        self.input(Input::Received {
            msg: input.msg,
            from: input.from,
        });
    }

    /// Executes the core's outputs.
    fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { to, bytes } => {
                    self.svc.sender.send(&to, &bytes);
                }
                Output::Media(MediaOp::Secure(id, params)) => self.svc.media.secure(id, *params),
                Output::Media(MediaOp::Configure(id, params)) => {
                    self.svc.media.configure(id, params)
                }
                Output::Media(MediaOp::Bridge(a, b)) => self.svc.media.bridge(a, b),
                Output::Media(MediaOp::Close(id)) => {
                    self.endpoints.remove(&id);
                }
                Output::Event(ev) => self.events.push_back(match ev {
                    Event::MainGone => Ev::MainGone,
                    Event::Main(e) => Ev::Main(e),
                    Event::Dial(i, e) => Ev::Dial(i, e),
                    Event::Digit(r, d) => Ev::Media(r, EventKind::Digit(d)),
                }),
            }
        }
    }

    /// Waits for the next call-level event, or `deadline` (None then).
    pub async fn next(&mut self, deadline: Option<Instant>) -> Option<Ev> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            if deadline.is_some_and(|d| d <= now()) {
                return None;
            }
            let timer = self.core.poll_timeout();
            tokio::select! {
                input = self.inbox.recv() => {
                    // We hold a sender ourselves, so the channel never closes.
                    if let Some(input) = input {
                        self.receive(input);
                    }
                }
                report = self.stream_rx.recv() => {
                    // We hold a sender ourselves: never closed.
                    if let Some((key, report)) = report {
                        self.on_stream(key, report);
                    }
                }
                ev = self.media_rx.recv() => {
                    // We hold a sender ourselves, so this channel never closes either.
                    if let Some(ev) = ev {
                        self.on_media(ev);
                    }
                }
                cmd = self.commands.recv(), if !self.commands.is_closed() => {
                    match cmd {
                        Some(CallCommand::Conference(c)) => self.events.push_back(Ev::Conference(c)),
                        Some(CallCommand::Queue(q)) => self.events.push_back(Ev::Queue(q)),
                        Some(CallCommand::Stream(s)) => self.on_stream_command(s),
                        Some(cmd) => self.events.push_back(Ev::Command(cmd)),
                        None => {}
                    }
                }
                () = sleep_until(timer) => {
                    self.core.handle_timeout(now());
                    self.drain();
                }
                () = sleep_until(deadline) => return None,
            }
        }
    }

    /// An event from the media plane: a media timeout or a failed browser leg goes to the
    /// core (an answered call or leg ends); everything else to whatever runs.
    fn on_media(&mut self, ev: MediaEvent) {
        let Some(r) = self.core.leg_of_endpoint(ev.endpoint) else {
            // A leg that ended meanwhile.
            return;
        };
        match ev.kind {
            EventKind::MediaTimeout => self.input(Input::MediaTimeout),
            EventKind::SecureFailed => self.input(Input::MediaFailed(r)),
            kind => self.events.push_back(Ev::Media(r, kind)),
        }
    }

    /// Queues a call-level event for whatever runs.
    pub fn push_event(&mut self, ev: Ev) {
        self.events.push_back(ev);
    }

    /// A new relay endpoint for a leg of this call, and our SDP session on it. Every leg
    /// can answer a browser's offer; `browser` (a WebSocket client's leg) makes our own
    /// offers to it secure too.
    pub fn open_media(&mut self, browser: bool) -> Result<LegSdp, OpenError> {
        let endpoint = self
            .svc
            .media
            .open(self.media_group, self.media_tx.clone())?;
        let mut sdp = LegSdp::new(
            endpoint.id(),
            endpoint.port(),
            self.svc.media_ip,
            crate::ids::random_u64(),
        );
        // RFC 8839 §5.4: ufrag of 4+ and pwd of 22+ ice-chars; hex is a subset.
        let security = crate::sip::sdp::LocalSecurity {
            ufrag: format!("{:08x}", crate::ids::random_u64() as u32),
            pwd: format!(
                "{:016x}{:016x}",
                crate::ids::random_u64(),
                crate::ids::random_u64()
            ),
            fingerprint: self.svc.media.dtls_fingerprint().to_string(),
            candidate: std::net::SocketAddr::new(self.svc.media_ip, endpoint.port()),
        };
        sdp.set_security(security, browser);
        self.endpoints.insert(endpoint.id(), endpoint);
        Ok(sdp)
    }

    /// Opens the caller's endpoint and answers its offer (kept until the call answers the
    /// INVITE). `Err` carries the status to refuse the INVITE with and its reason phrase
    /// ("" for the status's own): a 503 names what ran out (ports or file descriptors).
    pub fn open_main_media(&mut self) -> Result<(), (u16, &'static str)> {
        let browser = self
            .core
            .main()
            .is_some_and(|m| m.peer.transport.is_websocket());
        let media = self.open_media(browser).map_err(|e| {
            tracing::warn!(call = %self.info.sid, error = %e, "no media endpoint for the caller");
            (e.status(), e.reason())
        })?;
        let id = media.endpoint();
        self.core.attach_main_media(media).map_err(|e| {
            self.endpoints.remove(&id);
            tracing::info!(call = %self.info.sid, why = e.class(), "refusing the caller's offer");
            (e.sip_status(), "")
        })?;
        self.drain();
        Ok(())
    }

    /// The caller's endpoint (what the media verbs play to and record from).
    pub fn main_endpoint(&self) -> Option<EndpointId> {
        self.core
            .main()
            .and_then(|m| m.media.as_ref())
            .map(LegSdp::endpoint)
    }

    /// Answers the caller's INVITE finally (a 2xx carries our SDP).
    pub fn answer_main(&mut self, code: u16, reason: &'static str) {
        self.input(Input::Answer { code, reason });
        self.setup = None;
    }

    /// A provisional to the caller.
    pub fn ring_main(&mut self, early: bool) {
        self.input(Input::Ring { early });
    }

    /// CANCEL (or BYE) a leg.
    pub fn cancel_leg(&mut self, r: LegRef) {
        self.input(Input::Cancel(r));
    }

    /// BYE an answered leg.
    pub fn send_bye(&mut self, r: LegRef) {
        self.input(Input::Bye(r));
    }

    /// Closes a leg's endpoint.
    pub fn close_media(&mut self, r: LegRef) {
        self.input(Input::CloseMedia(r));
    }

    /// Enters a new leg's Call-ID in the router.
    pub fn enter_call_id(&mut self, call_id: &str) -> bool {
        if self.svc.router.add(call_id, self.inbox_tx.clone()) {
            self.call_ids.push(call_id.to_string());
            true
        } else {
            false
        }
    }

    /// Records a Call-ID the service entered in the router for this call.
    pub fn entered_call_id(&mut self, call_id: String) {
        self.call_ids.push(call_id);
    }

    /// Updates this call's public record.
    pub fn update_info(&mut self, f: impl FnOnce(&mut CallInfo)) {
        f(&mut self.info);
        let info = self.info.clone();
        self.svc.registry.update(&self.info.sid, move |i| *i = info);
    }

    /// Marks the call in progress (answered) in the record.
    pub fn mark_answered(&mut self) {
        if self.info.answered_ms.is_none() {
            let ms = crate::time::unix_ms();
            self.update_info(|i| {
                i.status = CallStatus::InProgress;
                i.answered_ms = Some(ms);
            });
        }
    }

    /// Closes every endpoint now (the ports go back to the pool as the call ends, not after
    /// its linger).
    pub fn close_all_media(&mut self) {
        let dials = self.core.dial_count();
        self.close_media(LegRef::Main);
        for i in 0..dials {
            self.close_media(LegRef::Dial(i));
        }
        self.endpoints.clear();
    }

    /// Lets the last transactions and our 2xx retransmissions finish, bounded by 64·T1,
    /// then drops every Call-ID of this call from the router.
    pub async fn linger_and_leave(&mut self) {
        // The call is no longer being set up, whatever ended it.
        self.setup = None;
        let until = now() + self.core.linger();
        while !self.core.is_idle() && now() < until {
            let _ = self
                .next(Some(until.min(now() + Duration::from_millis(500))))
                .await;
        }
        for id in self.call_ids.drain(..) {
            self.svc.router.remove(&id);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
