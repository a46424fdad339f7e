//! The call core: a back-to-back user agent's SIP behaviour as a sans-IO state machine.
//!
//! One [`CallCore`] per call owns the call's RFC 3261 transaction layer and its legs: the
//! caller's INVITE that we answer (UAS) and the INVITEs we send (UAC), with their dialogs
//! and their SDP sessions with us. It does what SIP asks of a B2BUA by itself: answers
//! BYE, CANCEL and in-dialog requests, retransmits our 2xx until the ACK (§13.3.1.4) and
//! ends the call at 64·T1 without one, ACKs a callee's 2xx and every retransmission of it
//! (§13.2.2.4), CANCELs only after a provisional (§9.1), answers a 401/407 once and only
//! for the configured realm (§22.2), answers re-offers itself (the media is anchored at
//! the relay) and passes a change of direction to the other bridged leg, answers glare
//! with 491 and retries its own re-INVITE after the §14.1 back-off.
//!
//! It is driven like `sip::transaction`: [`CallCore::handle`] with the time and an
//! [`Input`], [`CallCore::handle_timeout`] when [`CallCore::poll_timeout`] is due, and
//! [`CallCore::poll_output`] for what to do: bytes to send, media commands, and a few
//! call-level [`Event`]s for whoever runs the call's instructions. No tokio, no sockets, no
//! clock (`sip-tests/arch.rs` enforces it), so every rule is tested on a virtual clock in
//! `tests.rs`.

pub mod leg;
pub mod sdp;

mod in_dialog;
mod uac;
mod uas;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use self::leg::{Leg, LegState, Local, Role};
use crate::media::{EndpointId, StreamParams};
use crate::sip::Peer;
use crate::sip::msg::{ResponseBuilder, SipMessage};
use crate::sip::transaction::{self, Timers, TransactionKey, TransactionLayer, TuEvent};

/// Which leg: the call's own (the caller, or the callee of a REST-created call) or one a
/// `<Dial>` created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegRef {
    Main,
    Dial(usize),
}

/// Progress of a leg we dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEv {
    /// The first 180/183, or one with an early-media body (`true`).
    Ringing { early: bool },
    /// 2xx, ACKed already, its SDP answer read into the leg's session.
    Answered,
    /// Final non-2xx, Timer B, or a 2xx whose SDP we cannot use (488, after ACK and BYE).
    Failed(u16),
    /// BYE from the far end after answering.
    HungUp,
}

/// What happened, for whatever runs the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The main leg is gone: CANCEL, BYE, no ACK for our 2xx, or no media for too long.
    MainGone,
    /// The main leg (a REST-created call we dial) progressed.
    Main(LegEv),
    /// A dial leg progressed.
    Dial(usize, LegEv),
    /// A SIP INFO `application/dtmf-relay` digit on a leg that is not bridged.
    Digit(LegRef, char),
}

/// What the media plane must do for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOp {
    /// The endpoint faces a browser: ICE-lite and DTLS-SRTP with these parameters (comes
    /// before the `Configure` of the same exchange).
    Secure(EndpointId, Box<crate::media::SecureParams>),
    /// Point an endpoint at what its leg agreed (address, codec, payload types, direction).
    Configure(EndpointId, StreamParams),
    /// Join two endpoints.
    Bridge(EndpointId, EndpointId),
    /// Close an endpoint (its ports go back to the pool).
    Close(EndpointId),
}

/// What the core asks of its driver.
#[derive(Debug, Clone)]
pub enum Output {
    /// Put these bytes on the wire.
    Send {
        to: Peer,
        bytes: Bytes,
    },
    Media(MediaOp),
    Event(Event),
}

/// What the core is told.
#[derive(Debug)]
pub enum Input {
    /// A SIP message for one of the call's Call-IDs.
    Received { msg: SipMessage, from: Peer },
    /// Send a provisional to the caller: 183 with our SDP when `early`, else 180.
    Ring { early: bool },
    /// Answer the caller's INVITE finally. A 2xx carries our answer to its offer (or our
    /// offer when it had none, answered in the ACK, RFC 3264 §4).
    Answer { code: u16, reason: &'static str },
    /// Send a leg's INVITE ([`leg::build_invite`]); it becomes the main leg (a
    /// REST-created call) or the next dial leg (index [`CallCore::dial_count`] before).
    StartLeg { leg: Box<Leg>, main: bool },
    /// CANCEL a ringing leg (as soon as a provisional came, §9.1), BYE an answered one.
    /// A pending dial leg counts as ended (487) from now on.
    Cancel(LegRef),
    /// End an answered leg with BYE.
    Bye(LegRef),
    /// Bridge the main leg with dial leg `i`: their endpoints are joined and in-dialog
    /// requests pass between them.
    Bridge(usize),
    /// Leave the bridge (the dial leg is ending).
    Unbridge,
    /// Close a leg's endpoint.
    CloseMedia(LegRef),
    /// The relay heard nothing on the call for its media timeout: an answered call ends.
    MediaTimeout,
    /// A browser leg's ICE or DTLS failed (its certificate did not match the SDP's
    /// fingerprint): an answered leg ends with BYE, as if it had hung up.
    MediaFailed(LegRef),
}

/// What the core needs to know to write messages.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub timers: Timers,
    /// Our address in Via and Contact.
    pub local: Local,
    /// Server / User-Agent header value.
    pub server_name: Arc<str>,
    /// The CallSid, for logs.
    pub sid: String,
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

/// One call's SIP side.
#[derive(Debug)]
pub struct CallCore {
    cfg: CoreConfig,
    layer: TransactionLayer,
    main: Option<Leg>,
    legs: Vec<Leg>,
    bridge: Option<usize>,
    forwards: Vec<(TransactionKey, Forwarded)>,
    /// re-INVITEs we sent ourselves (passing a hold on), and to which leg.
    reinvites: Vec<(TransactionKey, LegRef)>,
    outputs: VecDeque<Output>,
}

impl CallCore {
    pub fn new(cfg: CoreConfig) -> CallCore {
        CallCore {
            layer: TransactionLayer::new(cfg.timers),
            cfg,
            main: None,
            legs: Vec::new(),
            bridge: None,
            forwards: Vec::new(),
            reinvites: Vec::new(),
            outputs: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
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

    pub fn main(&self) -> Option<&Leg> {
        self.main.as_ref()
    }

    /// How many dial legs the call has had (the next one's index).
    pub fn dial_count(&self) -> usize {
        self.legs.len()
    }

    /// The dial leg bridged with the main leg.
    pub fn bridged(&self) -> Option<usize> {
        self.bridge
    }

    /// Whether the main leg is gone (or never was).
    pub fn main_gone(&self) -> bool {
        self.main
            .as_ref()
            .is_none_or(|m| m.state == LegState::Ended)
    }

    /// The leg whose endpoint is `id`.
    pub fn leg_of_endpoint(&self, id: EndpointId) -> Option<LegRef> {
        let owns = |l: &Leg| l.media.as_ref().is_some_and(|m| m.endpoint() == id);
        if self.main.as_ref().is_some_and(owns) {
            return Some(LegRef::Main);
        }
        self.legs.iter().position(owns).map(LegRef::Dial)
    }

    /// Gives the main leg its SDP session and answers the caller's offer with it (kept
    /// until [`Input::Answer`]). An offer we cannot carry is an error mapping to 488, and
    /// the session is dropped (the driver closes its endpoint).
    pub fn attach_main_media(
        &mut self,
        mut media: sdp::LegSdp,
    ) -> Result<(), crate::sip::sdp::SdpError> {
        let Some(main) = self.main.as_mut() else {
            return Err(crate::sip::sdp::SdpError::NotAcceptable);
        };
        media.signalling_host = Some(main.peer.addr.ip());
        if main.invite.body_len() > 0 {
            let (_, agreed) = media.answer_offer(&main.invite.body())?;
            push_agreed(&mut self.outputs, media.endpoint(), agreed);
        }
        if let Some(m) = self.main.as_mut() {
            m.media = Some(media);
        }
        Ok(())
    }

    /// Whether transactions are still alive (retransmissions to absorb or send).
    pub fn has_transactions(&self) -> bool {
        self.layer.server_count() + self.layer.client_count() > 0
    }

    /// Whether anything still needs the clock: transactions, our unacknowledged 2xx, a
    /// re-INVITE waiting out its back-off.
    pub fn is_idle(&self) -> bool {
        !self.has_transactions() && self.poll_timeout().is_none()
    }

    /// How long a finished call keeps its transactions alive at most (64·T1, Timer B/H).
    pub fn linger(&self) -> Duration {
        64 * self.cfg.timers.t1
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Received { msg, from } => {
                self.layer
                    .handle(now, transaction::Input::Received { msg, from });
            }
            Input::Ring { early } => self.ring_main(now, early),
            Input::Answer { code, reason } => self.answer_main(now, code, reason),
            Input::StartLeg { leg, main } => self.start_leg(now, *leg, main),
            Input::Cancel(r) => self.cancel_leg(now, r),
            Input::Bye(r) => self.send_bye(now, r),
            Input::Bridge(i) => self.bridge_with(i),
            Input::Unbridge => self.bridge = None,
            Input::CloseMedia(r) => self.close_media(r),
            Input::MediaTimeout => {
                let answered = self
                    .main
                    .as_ref()
                    .is_some_and(|m| m.state == LegState::Answered);
                if answered {
                    tracing::info!(call = %self.cfg.sid, "no media for the configured time; ending the call");
                    self.send_bye(now, LegRef::Main);
                    self.event(Event::MainGone);
                }
            }
            Input::MediaFailed(r) => self.media_failed(now, r),
        }
        self.process(now);
    }

    /// A leg whose secure media cannot work ends. Browsers start ICE and DTLS only once
    /// they hold our answer (or give theirs in a 2xx), so the leg is answered by then; a
    /// failure during early media leaves the leg to its answer or its media timeout.
    fn media_failed(&mut self, now: Instant, r: LegRef) {
        if self.leg(r).is_none_or(|l| l.state != LegState::Answered) {
            tracing::info!(call = %self.cfg.sid, leg = ?r, "secure media failed before the answer");
            return;
        }
        tracing::info!(call = %self.cfg.sid, leg = ?r, "secure media failed; ending the leg");
        self.send_bye(now, r);
        match r {
            LegRef::Main => self.event(Event::MainGone),
            LegRef::Dial(i) => self.event(Event::Dial(i, LegEv::HungUp)),
        }
    }

    /// Runs the timers due at `now`: the layer's, our 2xx retransmission, re-INVITE
    /// back-offs.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.process(now);
        self.retransmit_2xx(now);
        self.retry_reinvites(now);
        self.process(now);
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`CallCore::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let unacked = self
            .main
            .as_ref()
            .and_then(|m| m.unacked_2xx.as_ref().map(|u| u.next.min(u.give_up)));
        let retries = self
            .main
            .iter()
            .chain(self.legs.iter())
            .filter_map(|l| l.reinvite_retry.map(|(at, _)| at));
        [self.layer.poll_timeout(), unacked]
            .into_iter()
            .flatten()
            .chain(retries)
            .min()
    }

    fn event(&mut self, ev: Event) {
        self.outputs.push_back(Output::Event(ev));
    }

    fn leg_event(&mut self, r: LegRef, ev: LegEv) {
        match r {
            LegRef::Main => self.event(Event::Main(ev)),
            LegRef::Dial(i) => self.event(Event::Dial(i, ev)),
        }
    }

    fn send_raw(&mut self, to: Peer, bytes: Bytes) {
        self.outputs.push_back(Output::Send { to, bytes });
    }

    /// Starts a client transaction.
    fn send_request(&mut self, now: Instant, request: SipMessage, to: Peer) {
        self.layer
            .handle(now, transaction::Input::SendRequest { request, to });
    }

    /// Answers a server transaction.
    fn respond(&mut self, now: Instant, key: TransactionKey, response: Bytes) {
        self.layer
            .handle(now, transaction::Input::Respond { key, response });
    }

    /// Moves the layer's outputs to ours, reacting to its events.
    fn process(&mut self, now: Instant) {
        while let Some(out) = self.layer.poll_output() {
            match out {
                transaction::Output::Send { to, bytes } => self.send_raw(to, bytes),
                transaction::Output::Event(ev) => self.on_tu(now, ev),
            }
        }
    }

    fn on_tu(&mut self, now: Instant, ev: TuEvent) {
        match ev {
            TuEvent::Request { key, request, from } => self.on_request(now, key, request, from),
            TuEvent::Cancelled { invite } => self.on_cancelled(now, invite),
            TuEvent::Ack { request, .. } => self.on_ack(&request),
            TuEvent::Response { key, response } => self.on_response(now, key, response),
            TuEvent::Timeout { key } => self.on_timeout(now, key),
            TuEvent::StrayResponse { .. } => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, key: TransactionKey) {
        if let Some(r) = self.leg_by_invite(&key) {
            self.leg_failed(r, 408);
        } else if let Some(i) = self.reinvites.iter().position(|(k, _)| *k == key) {
            let (_, r) = self.reinvites.swap_remove(i);
            self.reinvite_failed(now, r, 408);
        } else if let Some(i) = self.forwards.iter().position(|(k, _)| *k == key) {
            let (_, f) = self.forwards.swap_remove(i);
            let resp = ResponseBuilder::new(&f.request, 408)
                .header("Server", self.cfg.server_name.to_string())
                .build();
            self.respond(now, f.server, resp);
        }
    }

    fn on_response(&mut self, now: Instant, key: TransactionKey, response: SipMessage) {
        if let Some(r) = self.leg_by_invite(&key) {
            return self.on_invite_response(now, r, response);
        }
        let code = response.status().unwrap_or(0);
        if code < 200 {
            return;
        }
        if let Some(i) = self.reinvites.iter().position(|(k, _)| *k == key) {
            let (_, r) = self.reinvites.swap_remove(i);
            return self.on_reinvite_response(now, r, code, &response);
        }
        if let Some(i) = self.forwards.iter().position(|(k, _)| *k == key) {
            let (_, f) = self.forwards.swap_remove(i);
            self.on_forwarded_response(now, f, &response);
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
            .position(|l| l.role == Role::Uac && &l.invite_key == key)
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

    /// The other side of the bridge from `r`.
    fn bridged_with(&self, r: LegRef) -> Option<LegRef> {
        match (r, self.bridge) {
            (LegRef::Main, Some(b)) => Some(LegRef::Dial(b)),
            (LegRef::Dial(i), Some(b)) if i == b => Some(LegRef::Main),
            _ => None,
        }
    }

    fn bridge_with(&mut self, i: usize) {
        self.bridge = Some(i);
        let a = self.main.as_ref().and_then(|m| m.media.as_ref());
        let b = self.legs.get(i).and_then(|l| l.media.as_ref());
        if let (Some(a), Some(b)) = (a, b) {
            let op = MediaOp::Bridge(a.endpoint(), b.endpoint());
            self.outputs.push_back(Output::Media(op));
        }
    }

    fn close_media(&mut self, r: LegRef) {
        if let Some(media) = self.leg_mut(r).and_then(|l| l.media.take()) {
            self.outputs
                .push_back(Output::Media(MediaOp::Close(media.endpoint())));
        }
    }

    fn leg_failed(&mut self, r: LegRef, code: u16) {
        let Some(l) = self.leg_mut(r) else { return };
        if l.state == LegState::Ended {
            return;
        }
        l.state = LegState::Ended;
        l.final_code = Some(code);
        self.leg_event(r, LegEv::Failed(code));
    }

    /// A simple final answer to a request we do not otherwise handle.
    fn answer_simple(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: &SipMessage,
        code: u16,
    ) {
        let mut b =
            ResponseBuilder::new(request, code).header("Server", self.cfg.server_name.to_string());
        if let Some(m) = &self.main {
            // A request outside every dialog of ours still needs a To tag on its answer.
            b = b.to_tag(&m.local_tag);
        }
        if code == 488 || code == 405 {
            b = b.header("Allow", crate::sip::ALLOW);
        }
        if code == 500 {
            // RFC 3261 §14.2: an overlapping INVITE's 500 says when to try again.
            b = b.header("Retry-After", "1");
        }
        let resp = b.build();
        self.respond(now, key, resp);
    }
}

/// Tells the relay what an exchange agreed: the browser transport first, then the stream.
pub(super) fn push_agreed(
    outputs: &mut VecDeque<Output>,
    endpoint: EndpointId,
    agreed: sdp::Agreed,
) {
    if let Some(secure) = agreed.secure {
        outputs.push_back(Output::Media(MediaOp::Secure(endpoint, secure)));
    }
    outputs.push_back(Output::Media(MediaOp::Configure(endpoint, agreed.params)));
}
