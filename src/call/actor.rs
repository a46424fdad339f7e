//! The call task: one per call, owning every leg of it and its own RFC 3261 transaction
//! layer (sans-IO, `sip::transaction`), fed with the messages the engine shards route here
//! by Call-ID (`router`).
//!
//! The SIP plumbing lives in this file: feeding the layer, executing its outputs, answering
//! BYE and CANCEL, retransmitting our 2xx until the ACK (RFC 3261 §13.3.1.4), ACKing the
//! callee's 2xx (§13.2.2.4), passing in-dialog requests (re-INVITE for hold, INFO, UPDATE)
//! between bridged legs, and turning what happens into a few call-level events ([`Ev`]).
//! What the call *does* with those events is in `interpret` (the instructions) and `dial`
//! (forking, bridging).
//!
//! [`Call::next`] is the only place the task waits. It only awaits channel receives and
//! timers, and sends never block (`SipSender`), so it is cancel-safe: `interpret` races it
//! against a webhook fetch with `select!`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::leg::{self, Leg, LegState, Role};
use super::router::CallInput;
use super::service::{AppSource, CallService};
use super::{CallCommand, CallInfo, CallStatus};
use crate::sip::dialog::DialogState;
use crate::sip::msg::{ResponseBuilder, SipMessage};
use crate::sip::sdp::Direction;
use crate::sip::transaction::{Input, Output, TransactionKey, TransactionLayer, TuEvent};
use crate::sip::{Method, Peer, Transport};

/// Which leg: the call's own (the caller, or the callee of a REST-created call) or one a
/// `<Dial>` created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegRef {
    Main,
    Dial(usize),
}

/// What happened, as far as the instructions are concerned.
#[derive(Debug)]
pub enum Ev {
    /// The main leg is gone: CANCEL, BYE, or our 2xx never ACKed.
    MainGone,
    /// The main leg (a REST-created call we dial) rang, answered, or failed.
    Main(LegEv),
    /// A dial leg progressed.
    Dial(usize, LegEv),
    /// REST asked for something.
    Command(CallCommand),
    /// The media plane reported on a leg's endpoint (a digit, a prompt or a recording
    /// that ended), or a SIP INFO carried a digit (`application/dtmf-relay`).
    Media(LegRef, crate::media::EventKind),
}

/// Progress of a leg we dialled.
#[derive(Debug)]
pub enum LegEv {
    /// 180 or 183, with the early-media body if any.
    Ringing(Option<(String, Bytes)>),
    /// 2xx (ACKed already).
    Answered,
    /// Final non-2xx, or Timer B.
    Failed(u16),
    /// BYE from the far end after answering.
    HungUp,
}

/// Why a verb stopped before finishing.
#[derive(Debug)]
pub enum Stop {
    MainGone,
    Command(CallCommand),
}

/// A request passed from one bridged leg to the other, waiting for the answer.
#[derive(Debug)]
struct Forwarded {
    /// The server transaction on the side that sent it.
    server: TransactionKey,
    request: SipMessage,
    from: LegRef,
    to: LegRef,
}

/// One call.
pub struct Call {
    pub svc: Arc<CallService>,
    pub layer: TransactionLayer,
    inbox: mpsc::Receiver<CallInput>,
    /// Our own inbox's sender, to enter the Call-IDs of new legs in the router.
    pub inbox_tx: mpsc::Sender<CallInput>,
    commands: mpsc::UnboundedReceiver<CallCommand>,
    pub info: CallInfo,
    pub auth_token: String,
    pub app: AppSource,
    /// The caller (inbound) or the callee (REST-created).
    pub main: Option<Leg>,
    /// `<Dial>` legs, current and past.
    pub legs: Vec<Leg>,
    /// The dial leg bridged with the main leg.
    pub bridge: Option<usize>,
    /// Every Call-ID entered in the router for this call.
    pub call_ids: Vec<String>,
    events: VecDeque<Ev>,
    forwards: HashMap<TransactionKey, Forwarded>,
    /// re-INVITEs we sent ourselves (passing a hold on to the other bridged leg), and to
    /// which leg: the 2xx carries that leg's answer to our offer.
    reinvites: Vec<(TransactionKey, LegRef)>,
    /// Status callbacks sent so far (`SequenceNumber`).
    pub callback_seq: u32,
    /// `<Reject>` ran: how the unanswered INVITE is to be refused.
    pub rejected: Option<crate::instructions::RejectReason>,
    /// The last `<Dial>`'s `DialCallStatus`, for the final answer to an unanswered caller.
    pub last_dial: Option<&'static str>,
    /// The key that puts all of this call's endpoints on one relay thread.
    pub media_group: u64,
    pub media_tx: crate::media::EventSink,
    media_rx: mpsc::UnboundedReceiver<crate::media::MediaEvent>,
}

#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

impl Call {
    pub fn new(
        svc: Arc<CallService>,
        inbox: mpsc::Receiver<CallInput>,
        inbox_tx: mpsc::Sender<CallInput>,
        commands: mpsc::UnboundedReceiver<CallCommand>,
        info: CallInfo,
        auth_token: String,
        app: AppSource,
    ) -> Call {
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        Call {
            layer: TransactionLayer::new(svc.timers),
            svc,
            inbox,
            inbox_tx,
            commands,
            info,
            auth_token,
            app,
            main: None,
            legs: Vec::new(),
            bridge: None,
            call_ids: Vec::new(),
            events: VecDeque::new(),
            forwards: HashMap::new(),
            reinvites: Vec::new(),
            callback_seq: 0,
            rejected: None,
            last_dial: None,
            media_group: crate::ids::random_u64(),
            media_tx,
            media_rx,
        }
    }

    /// The leg `r`.
    pub fn leg(&self, r: LegRef) -> Option<&Leg> {
        match r {
            LegRef::Main => self.main.as_ref(),
            LegRef::Dial(i) => self.legs.get(i),
        }
    }

    fn leg_mut(&mut self, r: LegRef) -> Option<&mut Leg> {
        match r {
            LegRef::Main => self.main.as_mut(),
            LegRef::Dial(i) => self.legs.get_mut(i),
        }
    }

    /// Feeds a message to the layer and reacts.
    pub fn receive(&mut self, input: CallInput) {
        self.layer.handle(
            now(),
            Input::Received {
                msg: input.msg,
                from: input.from,
            },
        );
        self.process();
    }

    /// Starts a client transaction.
    pub fn send_request(&mut self, request: SipMessage, to: Peer) {
        self.layer.handle(now(), Input::SendRequest { request, to });
        self.process();
    }

    /// Answers a server transaction.
    pub fn respond(&mut self, key: TransactionKey, response: Bytes) {
        self.layer.handle(now(), Input::Respond { key, response });
        self.process();
    }

    /// Sends bytes outside any transaction (ACK for a 2xx, 2xx retransmissions).
    pub fn send_raw(&self, to: &Peer, bytes: &Bytes) {
        self.svc.sender.send(to, bytes);
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
            let retransmit = self
                .main
                .as_ref()
                .and_then(|l| l.unacked_2xx.as_ref().map(|u| u.next));
            let timer = match (self.layer.poll_timeout(), retransmit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                input = self.inbox.recv() => {
                    // We hold a sender ourselves, so the channel never closes.
                    if let Some(input) = input {
                        self.receive(input);
                    }
                }
                ev = self.media_rx.recv() => {
                    // We hold a sender ourselves, so this channel never closes either.
                    if let Some(ev) = ev {
                        self.on_media(ev);
                    }
                }
                cmd = self.commands.recv(), if !self.commands.is_closed() => {
                    if let Some(cmd) = cmd {
                        self.events.push_back(Ev::Command(cmd));
                    }
                }
                () = sleep_until(timer) => {
                    self.layer.handle_timeout(now());
                    self.retransmit_2xx();
                    self.process();
                }
                () = sleep_until(deadline) => return None,
            }
        }
    }

    /// Executes the layer's outputs and turns its events into ours.
    fn process(&mut self) {
        while let Some(out) = self.layer.poll_output() {
            match out {
                Output::Send { to, bytes } => {
                    self.svc.sender.send(&to, &bytes);
                }
                Output::Event(ev) => self.on_tu(ev),
            }
        }
    }

    fn on_tu(&mut self, ev: TuEvent) {
        match ev {
            TuEvent::Request { key, request, from } => self.on_request(key, request, from),
            TuEvent::Cancelled { invite } => {
                if let Some(main) = self.main.as_mut()
                    && main.role == Role::Uas
                    && main.invite_key == invite
                    && main.is_pending()
                {
                    let resp = main.response(487, "", &[], None, &self.svc.server_name);
                    main.state = LegState::Ended;
                    main.final_code = Some(487);
                    self.respond(invite, resp);
                    self.events.push_back(Ev::MainGone);
                }
            }
            TuEvent::Ack { request, .. } => {
                // The ACK for our 2xx: stop retransmitting it. ACKs for re-INVITEs we passed
                // on need nothing more: we ACKed the other side ourselves.
                if let Some(main) = self.main.as_mut()
                    && main.owns_request(&request)
                {
                    main.unacked_2xx = None;
                }
                // The answer to an offer we put in a 2xx (a late-offer INVITE or re-INVITE).
                if request.body_len() > 0
                    && let Some(media) = self
                        .leg_of_request(&request)
                        .and_then(|r| self.leg_mut(r))
                        .and_then(|l| l.media.as_mut())
                    && media.awaiting_answer
                    && let Err(e) = media.read_answer(&request.body())
                {
                    tracing::info!(why = e.class(), "SDP answer in an ACK unusable");
                }
            }
            TuEvent::Response { key, response } => self.on_response(key, response),
            TuEvent::Timeout { key } => {
                if let Some(r) = self.leg_by_invite(&key) {
                    self.leg_failed(r, 408);
                } else if let Some(f) = self.forwards.remove(&key) {
                    let resp = ResponseBuilder::new(&f.request, 408)
                        .header("Server", self.svc.server_name.to_string())
                        .build();
                    self.respond(f.server, resp);
                }
            }
            TuEvent::StrayResponse { .. } => {}
        }
    }

    /// The leg whose INVITE client transaction is `key`.
    fn leg_by_invite(&self, key: &TransactionKey) -> Option<LegRef> {
        if let Some(m) = &self.main
            && m.role == Role::Uac
            && &m.invite_key == key
        {
            return Some(LegRef::Main);
        }
        self.legs
            .iter()
            .position(|l| &l.invite_key == key)
            .map(LegRef::Dial)
    }

    fn leg_of_request(&self, req: &SipMessage) -> Option<LegRef> {
        if self.main.as_ref().is_some_and(|m| m.owns_request(req)) {
            return Some(LegRef::Main);
        }
        self.legs
            .iter()
            .position(|l| l.owns_request(req))
            .map(LegRef::Dial)
    }

    fn on_request(&mut self, key: TransactionKey, request: SipMessage, from: Peer) {
        let method = request.method().unwrap_or(Method::Other);
        let no_to_tag = request.to_header().ok().and_then(|t| t.tag()).is_none();
        if self.main.is_none() && method == Method::Invite && no_to_tag {
            self.main = Some(Leg::uas(self.info.sid.clone(), request, key, from));
            return;
        }
        let Some(r) = self.leg_of_request(&request) else {
            return self.answer_simple(key, &request, 481);
        };
        if let Some(dialog) = self.leg_mut(r).and_then(|l| l.dialog.as_mut())
            && dialog.on_request(&request).is_err()
        {
            return self.answer_simple(key, &request, 500);
        }
        match method {
            Method::Bye => {
                self.answer_simple(key, &request, 200);
                let was_answered = self.leg(r).is_some_and(|l| l.state == LegState::Answered);
                if let Some(l) = self.leg_mut(r) {
                    l.state = LegState::Ended;
                    l.unacked_2xx = None;
                }
                match r {
                    LegRef::Main => self.events.push_back(Ev::MainGone),
                    LegRef::Dial(i) if was_answered => {
                        self.events.push_back(Ev::Dial(i, LegEv::HungUp))
                    }
                    LegRef::Dial(i) => self.events.push_back(Ev::Dial(i, LegEv::Failed(487))),
                }
            }
            Method::Invite | Method::Update => self.answer_reoffer(key, &request, r),
            Method::Info if self.bridge.is_none() => {
                // Not bridged: a digit for us (Gather), not for another leg.
                let digit = crate::media::dtmf::parse_dtmf_relay(&request.body()).ok();
                self.answer_simple(key, &request, 200);
                if let Some(d) = digit {
                    self.events
                        .push_back(Ev::Media(r, crate::media::EventKind::Digit(d.digit)));
                }
            }
            _ => {
                let other = match (r, self.bridge) {
                    (LegRef::Main, Some(b)) => Some(LegRef::Dial(b)),
                    (LegRef::Dial(i), Some(b)) if i == b => Some(LegRef::Main),
                    _ => None,
                };
                let live = |l: &Leg| l.state == LegState::Answered && l.dialog.is_some();
                match other {
                    Some(to) if self.leg(to).is_some_and(live) && self.leg(r).is_some_and(live) => {
                        self.forward(key, request, r, to)
                    }
                    _ => self.answer_simple(key, &request, 200),
                }
            }
        }
    }

    /// Passes an in-dialog request from one bridged leg to the other (re-INVITE for hold,
    /// INFO for DTMF, UPDATE...), with its body; the answer comes back in `on_response`.
    fn forward(&mut self, server: TransactionKey, request: SipMessage, from: LegRef, to: LegRef) {
        let method = request.method().unwrap_or(Method::Other);
        let body = leg::body_of(&request);
        let local = self.svc.local.clone();
        let Some(target) = self.leg_mut(to) else {
            return;
        };
        let transport = target.peer.transport;
        let peer = target.peer;
        let Some(dialog) = target.dialog.as_mut() else {
            return;
        };
        let out = leg::in_dialog(
            dialog,
            method,
            &local,
            transport,
            body.as_ref().map(|(ct, b)| (ct.as_str(), b.as_ref())),
        );
        let Some(client) = TransactionKey::client_for_request(&out) else {
            return;
        };
        self.forwards.insert(
            client,
            Forwarded {
                server,
                request,
                from,
                to,
            },
        );
        self.send_request(out, peer);
    }

    /// A re-INVITE or UPDATE from a leg (hold, resume, a new address): the media is
    /// anchored at the relay, so we answer it ourselves and repoint that leg's endpoint;
    /// the other leg hears of it only when the direction changes (`pass_direction`).
    /// Without a body we offer, and the answer comes in the ACK (RFC 3264 §4). An offer we
    /// cannot carry gets 488 and changes nothing.
    fn answer_reoffer(&mut self, key: TransactionKey, request: &SipMessage, r: LegRef) {
        let body = request.body();
        let Some(media) = self.leg_mut(r).and_then(|l| l.media.as_mut()) else {
            return self.answer_simple(key, request, 488);
        };
        let sdp = if body.is_empty() {
            Ok(media.offer(Direction::SendRecv).1)
        } else {
            media.answer_offer(&body)
        };
        let sdp = match sdp {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(call = %self.info.sid, why = e.class(), "re-offer refused");
                return self.answer_simple(key, request, 488);
            }
        };
        let transport = self.leg(r).map_or(Transport::Udp, |l| l.peer.transport);
        let resp = ResponseBuilder::new(request, 200)
            .header("Server", self.svc.server_name.to_string())
            .header("Contact", self.svc.local.contact(transport))
            .header("Allow", crate::sip::ALLOW)
            .body(super::media::SDP, sdp)
            .build();
        self.respond(key, resp);
        self.pass_direction(r);
    }

    fn answer_simple(&mut self, key: TransactionKey, request: &SipMessage, code: u16) {
        let mut b =
            ResponseBuilder::new(request, code).header("Server", self.svc.server_name.to_string());
        if let Some(m) = &self.main {
            // A request outside every dialog of ours still needs a To tag on its answer.
            b = b.to_tag(&m.local_tag);
        }
        if code == 488 || code == 405 {
            b = b.header("Allow", crate::sip::ALLOW);
        }
        let resp = b.build();
        self.respond(key, resp);
    }

    fn on_response(&mut self, key: TransactionKey, response: SipMessage) {
        if let Some(r) = self.leg_by_invite(&key) {
            return self.on_invite_response(r, response);
        }
        let code = response.status().unwrap_or(0);
        if code < 200 {
            return;
        }
        if let Some(i) = self.reinvites.iter().position(|(k, _)| *k == key) {
            let (_, r) = self.reinvites.swap_remove(i);
            if (200..300).contains(&code) {
                self.ack_in_dialog(r);
                if let Some(media) = self.leg_mut(r).and_then(|l| l.media.as_mut())
                    && let Err(e) = media.read_answer(&response.body())
                {
                    tracing::info!(why = e.class(), "SDP answer to our re-INVITE unusable");
                }
            }
            return;
        }
        if let Some(f) = self.forwards.remove(&key) {
            // The far side answered a request we passed on: ACK its 2xx to an INVITE
            // ourselves, and give the sender the same answer.
            if (200..300).contains(&code) && f.request.method() == Some(Method::Invite) {
                self.ack_in_dialog(f.to);
            }
            let mut b = ResponseBuilder::new(&f.request, code)
                .header("Server", self.svc.server_name.to_string());
            if let Some(reason) = response.reason() {
                b = b.reason(reason);
            }
            if (200..300).contains(&code) && f.request.method() == Some(Method::Invite) {
                let transport = self
                    .leg(f.from)
                    .map_or(Transport::Udp, |l| l.peer.transport);
                b = b.header("Contact", self.svc.local.contact(transport));
            }
            let body = leg::body_of(&response);
            if let Some((ct, body)) = &body {
                b = b.body(ct, body.clone());
            }
            let resp = b.build();
            self.respond(f.server, resp);
        }
    }

    /// Passes a change of direction (hold, resume) from leg `from` to the other bridged
    /// leg: the relay anchors the media, so the other leg gets our own re-INVITE (RFC 3264
    /// §8.4) asking for the same direction, so a phone shows "held" and stops sending
    /// audio nobody will hear. Nothing is sent when that direction was already asked for.
    fn pass_direction(&mut self, from: LegRef) {
        let other = match (from, self.bridge) {
            (LegRef::Main, Some(b)) => LegRef::Dial(b),
            (LegRef::Dial(i), Some(b)) if i == b => LegRef::Main,
            _ => return,
        };
        // What we may now do towards the other leg: send what `from` sends us, and want
        // back only what `from` takes.
        let Some(p) = self
            .leg(from)
            .and_then(|l| l.media.as_ref())
            .and_then(|m| m.params)
        else {
            return;
        };
        let want = Direction::from_flags(p.receiving, p.sending);
        let local = self.svc.local.clone();
        let Some(l) = self.leg_mut(other) else { return };
        if l.state != LegState::Answered || l.dialog.is_none() {
            return;
        }
        let Some(media) = l.media.as_mut() else {
            return;
        };
        if media.asked_direction == want || media.awaiting_answer {
            return;
        }
        media.asked_direction = want;
        let (ct, sdp) = media.offer(want);
        let (transport, peer) = (l.peer.transport, l.peer);
        let Some(d) = l.dialog.as_mut() else { return };
        let invite = leg::in_dialog(d, Method::Invite, &local, transport, Some((&ct, &sdp)));
        if let Some(key) = TransactionKey::client_for_request(&invite) {
            self.reinvites.push((key, other));
            self.send_request(invite, peer);
        }
    }

    /// Sends the ACK for the latest INVITE in a leg's dialog (a re-INVITE we passed on).
    fn ack_in_dialog(&mut self, r: LegRef) {
        let local = self.svc.local.clone();
        let Some(l) = self.leg_mut(r) else { return };
        let transport = l.peer.transport;
        let peer = l.peer;
        let Some(d) = l.dialog.as_mut() else { return };
        let ack = leg::in_dialog(d, Method::Ack, &local, transport, None);
        self.send_raw(&peer, ack.as_bytes());
    }

    fn on_invite_response(&mut self, r: LegRef, response: SipMessage) {
        let code = response.status().unwrap_or(0);
        let local = self.svc.local.clone();
        let Some(l) = self.leg_mut(r) else { return };
        match code {
            100 => {}
            101..=199 => {
                if l.dialog.is_none() && response.to_header().ok().and_then(|t| t.tag()).is_some() {
                    l.dialog = crate::sip::dialog::Dialog::uac(&l.invite, &response).ok();
                }
                let first = l.state == LegState::Trying;
                if l.state == LegState::Trying {
                    l.state = LegState::Ringing;
                }
                // A CANCEL must wait for a provisional (RFC 3261 §9.1).
                if l.cancel_wanted && !l.cancel_sent {
                    self.send_cancel(r);
                    return;
                }
                let early = leg::body_of(&response);
                if first || early.is_some() {
                    self.push_leg(r, LegEv::Ringing(early));
                }
            }
            200..=299 => {
                if let Some(ack) = &l.ack {
                    // A retransmitted 2xx: our ACK was lost.
                    let (peer, ack) = (l.peer, ack.clone());
                    self.send_raw(&peer, &ack);
                    return;
                }
                match l.dialog.as_mut() {
                    Some(d) => {
                        let _ = d.confirm(&response);
                    }
                    None => l.dialog = crate::sip::dialog::Dialog::uac(&l.invite, &response).ok(),
                }
                let transport = l.peer.transport;
                let peer = l.peer;
                let Some(d) = l.dialog.as_mut() else {
                    // A 2xx we cannot make a dialog of (no Contact, no tag): nothing to ACK
                    // or BYE; the far end times out.
                    l.state = LegState::Ended;
                    l.final_code = Some(502);
                    return self.push_leg(r, LegEv::Failed(502));
                };
                d.state = DialogState::Confirmed;
                let ack = leg::in_dialog(d, Method::Ack, &local, transport, None);
                let ack = ack.as_bytes().clone();
                l.ack = Some(ack.clone());
                l.final_code = Some(code);
                l.answer = leg::body_of(&response);
                let unwanted = l.cancel_wanted || l.state == LegState::Ended;
                self.send_raw(&peer, &ack);
                if unwanted {
                    // It answered as we cancelled (or after another leg won): end it.
                    self.send_bye(r);
                } else {
                    if let Some(l) = self.leg_mut(r) {
                        l.state = LegState::Answered;
                        l.answered_at = Some(now());
                    }
                    self.push_leg(r, LegEv::Answered);
                }
            }
            _ => {
                if matches!(code, 401 | 407) && self.answer_challenge(r, &response) {
                    return;
                }
                self.leg_failed(r, code);
            }
        }
    }

    /// Queues a call-level event for whatever runs.
    pub fn push_event(&mut self, ev: Ev) {
        self.events.push_back(ev);
    }

    fn push_leg(&mut self, r: LegRef, ev: LegEv) {
        match r {
            LegRef::Main => self.events.push_back(Ev::Main(ev)),
            LegRef::Dial(i) => self.events.push_back(Ev::Dial(i, ev)),
        }
    }

    fn leg_failed(&mut self, r: LegRef, code: u16) {
        let Some(l) = self.leg_mut(r) else { return };
        if l.state == LegState::Ended {
            return;
        }
        l.state = LegState::Ended;
        l.final_code = Some(code);
        self.push_leg(r, LegEv::Failed(code));
    }

    /// Re-sends the INVITE with credentials for a 401/407 (RFC 3261 §22.2), once, and only
    /// for the realm the credentials are for.
    fn answer_challenge(&mut self, r: LegRef, response: &SipMessage) -> bool {
        let code = response.status().unwrap_or(0);
        let (header_in, header_out) = if code == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let local = self.svc.local.clone();
        let Some(l) = self.leg_mut(r) else {
            return false;
        };
        if l.auth_tried || l.cancel_wanted {
            return false;
        }
        let Some(creds) = l.credentials.clone() else {
            return false;
        };
        let uri = l.invite.request_uri().unwrap_or_default().to_string();
        let cnonce = format!("{:016x}", crate::ids::random_u64());
        let answer = response.values_by_name(header_in).find_map(|challenge| {
            let realm = crate::sip::digest_client::challenge_realm(challenge)?;
            if creds.realm.as_deref().is_some_and(|want| want != realm) {
                return None;
            }
            crate::sip::digest_client::authorization(
                challenge,
                "INVITE",
                &uri,
                &creds.username,
                &creds.password,
                &cnonce,
                1,
            )
        });
        let Some(authorization) = answer else {
            return false;
        };
        l.auth_tried = true;
        let invite = leg::reinvite_with(&l.invite, header_out, &authorization, &local);
        let Some(key) = TransactionKey::client_for_request(&invite) else {
            return false;
        };
        l.invite = invite.clone();
        l.invite_key = key;
        let peer = l.peer;
        self.send_request(invite, peer);
        true
    }

    /// CANCELs a ringing leg (RFC 3261 §9.1), or marks it so the CANCEL goes as soon as a
    /// provisional arrives; a leg that already answered gets a BYE.
    pub fn cancel_leg(&mut self, r: LegRef) {
        let Some(l) = self.leg_mut(r) else { return };
        match l.state {
            LegState::Trying => l.cancel_wanted = true,
            LegState::Ringing => {
                l.cancel_wanted = true;
                self.send_cancel(r);
            }
            LegState::Answered => self.send_bye(r),
            LegState::Ended => {}
        }
    }

    fn send_cancel(&mut self, r: LegRef) {
        let Some(l) = self.leg_mut(r) else { return };
        if l.cancel_sent {
            return;
        }
        l.cancel_sent = true;
        let peer = l.peer;
        let cancel = crate::sip::transaction::build_cancel(&l.invite);
        if let Ok(cancel) = SipMessage::parse(cancel) {
            self.send_request(cancel, peer);
        }
    }

    /// Ends an answered leg with BYE.
    pub fn send_bye(&mut self, r: LegRef) {
        let local = self.svc.local.clone();
        let Some(l) = self.leg_mut(r) else { return };
        l.state = LegState::Ended;
        l.unacked_2xx = None;
        let transport = l.peer.transport;
        let peer = l.peer;
        let Some(d) = l.dialog.as_mut() else { return };
        let bye = leg::in_dialog(d, Method::Bye, &local, transport, None);
        self.send_request(bye, peer);
    }

    /// Answers the caller's INVITE with a final response (non-2xx, or 2xx with `body`).
    pub fn answer_main(&mut self, code: u16, reason: &str, body: Option<(String, Bytes)>) {
        let server = self.svc.server_name.clone();
        let contact = self.svc.local.contact(
            self.main
                .as_ref()
                .map_or(Transport::Udp, |m| m.peer.transport),
        );
        let t1 = self.svc.timers.t1;
        let Some(m) = self.main.as_mut() else { return };
        if m.role != Role::Uas || !m.is_pending() {
            return;
        }
        let ok = (200..300).contains(&code);
        let mut headers: Vec<(&str, String)> = Vec::new();
        if ok {
            headers.push(("Contact", contact));
            headers.push(("Allow", crate::sip::ALLOW.to_string()));
        }
        let resp = m.response(
            code,
            reason,
            &headers,
            body.as_ref().map(|(ct, b)| (ct.as_str(), b.clone())),
            &server,
        );
        m.final_code = Some(code);
        if ok {
            m.state = LegState::Answered;
            m.answered_at = Some(now());
            m.dialog = leg::uas_dialog(m, DialogState::Confirmed);
            if !m.peer.transport.is_reliable() {
                let t = now();
                m.unacked_2xx = Some(leg::Unacked {
                    bytes: resp.clone(),
                    next: t + t1,
                    interval: t1,
                    give_up: t + 64 * t1,
                });
            }
        } else {
            m.state = LegState::Ended;
        }
        let key = m.invite_key.clone();
        self.respond(key, resp);
    }

    /// Sends a provisional (180 or 183 with early media) to the caller.
    pub fn ring_main(&mut self, early: Option<(String, Bytes)>) {
        let server = self.svc.server_name.clone();
        let contact = self.svc.local.contact(
            self.main
                .as_ref()
                .map_or(Transport::Udp, |m| m.peer.transport),
        );
        let Some(m) = self.main.as_mut() else { return };
        if m.role != Role::Uas || !m.is_pending() {
            return;
        }
        let code = if early.is_some() { 183 } else { 180 };
        m.state = LegState::Ringing;
        let resp = m.response(
            code,
            "",
            &[("Contact", contact)],
            early.as_ref().map(|(ct, b)| (ct.as_str(), b.clone())),
            &server,
        );
        let key = m.invite_key.clone();
        self.respond(key, resp);
    }

    /// §13.3.1.4: our 2xx goes again at T1, 2·T1, … capped at T2 until the ACK; after 64·T1
    /// without one the dialog is ended with BYE.
    fn retransmit_2xx(&mut self) {
        let t = now();
        let t2 = self.svc.timers.t2;
        let Some(m) = self.main.as_mut() else { return };
        let Some(u) = m.unacked_2xx.as_mut() else {
            return;
        };
        if u.next > t {
            return;
        }
        if t >= u.give_up {
            m.unacked_2xx = None;
            tracing::info!(call = %self.info.sid, "no ACK for our 2xx; ending the call");
            self.send_bye(LegRef::Main);
            self.events.push_back(Ev::MainGone);
            return;
        }
        u.interval = (u.interval * 2).min(t2);
        u.next = t + u.interval;
        let (peer, bytes) = (m.peer, u.bytes.clone());
        self.send_raw(&peer, &bytes);
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

    /// Whether the layer still has transactions (retransmissions to absorb or send).
    pub fn has_transactions(&self) -> bool {
        self.layer.server_count() + self.layer.client_count() > 0
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

    /// Drops every Call-ID of this call from the router.
    pub fn leave_router(&mut self) {
        for id in self.call_ids.drain(..) {
            self.svc.router.remove(&id);
        }
    }

    /// How long a finished call keeps its transactions alive at most (64·T1, Timer B/H).
    pub fn linger(&self) -> Duration {
        64 * self.svc.timers.t1
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
