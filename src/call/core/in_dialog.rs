//! Requests inside the legs' dialogs: BYE, re-offers (re-INVITE, UPDATE) answered by us
//! since the media is anchored, a change of direction passed to the other bridged leg as
//! our own re-INVITE, glare (491, and the RFC 3261 §14.1 back-off for ours), INFO digits,
//! and everything else passed across the bridge.

use std::time::{Duration, Instant};

use super::leg::{self, Leg, LegState, Role};
use super::uas::transport_of;
use super::{CallCore, Event, Forwarded, LegEv, LegRef, push_agreed};
use crate::sip::msg::{ResponseBuilder, SipMessage};
use crate::sip::sdp::Direction;
use crate::sip::transaction::TransactionKey;
use crate::sip::{Method, Peer};

impl CallCore {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: SipMessage,
        from: Peer,
    ) {
        let method = request.method().unwrap_or(Method::Other);
        let no_to_tag = request.to_header().ok().and_then(|t| t.tag()).is_none();
        if self.main.is_none() && method == Method::Invite && no_to_tag {
            self.main = Some(Leg::uas(self.cfg.sid.clone(), request, key, from));
            return;
        }
        let Some(r) = self.leg_of_request(&request) else {
            return self.answer_simple(now, key, &request, 481);
        };
        if let Some(dialog) = self.leg_mut(r).and_then(|l| l.dialog.as_mut())
            && dialog.on_request(&request).is_err()
        {
            return self.answer_simple(now, key, &request, 500);
        }
        match method {
            Method::Bye => {
                self.answer_simple(now, key, &request, 200);
                let Some(l) = self.leg_mut(r) else { return };
                let was_answered = l.state == LegState::Answered;
                l.state = LegState::Ended;
                l.unacked_2xx = None;
                l.reinvite_retry = None;
                match r {
                    LegRef::Main => self.event(Event::MainGone),
                    LegRef::Dial(i) if was_answered => self.event(Event::Dial(i, LegEv::HungUp)),
                    LegRef::Dial(i) => self.event(Event::Dial(i, LegEv::Failed(487))),
                }
            }
            Method::Invite | Method::Update => self.answer_reoffer(now, key, &request, r),
            Method::Info if self.bridge.is_none() => {
                // Not bridged: a digit for us (Gather), not for another leg.
                let digit = crate::media::dtmf::parse_dtmf_relay(&request.body()).ok();
                self.answer_simple(now, key, &request, 200);
                if let Some(d) = digit {
                    self.event(Event::Digit(r, d.digit));
                }
            }
            _ => {
                let live = |l: &Leg| l.state == LegState::Answered && l.dialog.is_some();
                match self.bridged_with(r) {
                    Some(to) if self.leg(to).is_some_and(live) && self.leg(r).is_some_and(live) => {
                        self.forward(now, key, request, r, to)
                    }
                    _ => self.answer_simple(now, key, &request, 200),
                }
            }
        }
    }

    /// Passes an in-dialog request from one bridged leg to the other (INFO for DTMF, …),
    /// with its body; the answer comes back in `on_forwarded_response`.
    fn forward(
        &mut self,
        now: Instant,
        server: TransactionKey,
        request: SipMessage,
        from: LegRef,
        to: LegRef,
    ) {
        let method = request.method().unwrap_or(Method::Other);
        let body = leg::body_of(&request);
        let local = self.cfg.local.clone();
        let Some(target) = self.leg_mut(to) else {
            return;
        };
        let (transport, peer) = (target.peer.transport, target.peer);
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
        let f = Forwarded {
            server,
            request,
            from,
            to,
        };
        self.forwards.push((client, f));
        self.send_request(now, out, peer);
    }

    /// The far side answered a request we passed on: the sender gets the same answer.
    pub(super) fn on_forwarded_response(
        &mut self,
        now: Instant,
        f: Forwarded,
        response: &SipMessage,
    ) {
        let code = response.status().unwrap_or(0);
        let invite_2xx = (200..300).contains(&code) && f.request.method() == Some(Method::Invite);
        if invite_2xx {
            self.ack_in_dialog(f.to);
        }
        let mut b = ResponseBuilder::new(&f.request, code)
            .header("Server", self.cfg.server_name.to_string());
        if let Some(reason) = response.reason() {
            b = b.reason(reason);
        }
        if invite_2xx {
            b = b.header(
                "Contact",
                self.cfg.local.contact(transport_of(self, f.from)),
            );
        }
        let body = leg::body_of(response);
        if let Some((ct, body)) = &body {
            b = b.body(ct, body.clone());
        }
        let resp = b.build();
        self.respond(now, f.server, resp);
    }

    /// A re-INVITE or UPDATE from a leg (hold, resume, a new address): the media is
    /// anchored at the relay, so we answer it ourselves and repoint that leg's endpoint;
    /// the other leg hears of it only when the direction changes (`pass_direction`).
    /// Without a body we offer, and the answer comes in the ACK (RFC 3264 §4). An offer we
    /// cannot carry gets 488 and changes nothing. One crossing our own re-INVITE to that
    /// leg is glare: 491 (RFC 3261 §14.2), and the session stays as it is.
    fn answer_reoffer(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: &SipMessage,
        r: LegRef,
    ) {
        if self.reinvites.iter().any(|(_, to)| *to == r) {
            return self.answer_simple(now, key, request, 491);
        }
        let body = request.body();
        let Some(media) = self.leg_mut(r).and_then(|l| l.media.as_mut()) else {
            return self.answer_simple(now, key, request, 488);
        };
        let answered = if body.is_empty() {
            Ok((media.offer(Direction::SendRecv), None))
        } else {
            media
                .answer_offer(&body)
                .map(|(sdp, agreed)| (sdp, Some((media.endpoint(), agreed))))
        };
        let (sdp, op) = match answered {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(call = %self.cfg.sid, why = e.class(), "re-offer refused");
                return self.answer_simple(now, key, request, 488);
            }
        };
        if let Some((endpoint, agreed)) = op {
            push_agreed(&mut self.outputs, endpoint, agreed);
        }
        let resp = ResponseBuilder::new(request, 200)
            .header("Server", self.cfg.server_name.to_string())
            .header("Contact", self.cfg.local.contact(transport_of(self, r)))
            .header("Allow", crate::sip::ALLOW)
            .body(super::sdp::SDP, sdp)
            .build();
        self.respond(now, key, resp);
        self.pass_direction(now, r);
    }

    /// Passes a change of direction (hold, resume) from leg `from` to the other bridged
    /// leg: the relay anchors the media, so the other leg gets our own re-INVITE (RFC 3264
    /// §8.4) asking for the same direction, so a phone shows "held" and stops sending
    /// audio nobody will hear. Nothing is sent when that direction was already asked for.
    fn pass_direction(&mut self, now: Instant, from: LegRef) {
        let Some(other) = self.bridged_with(from) else {
            return;
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
        self.send_reoffer(now, other, want);
    }

    /// Our re-INVITE to leg `r` asking for `want`, unless that is asked already or an
    /// offer of ours to it is still open.
    fn send_reoffer(&mut self, now: Instant, r: LegRef, want: Direction) {
        let local = self.cfg.local.clone();
        let Some(l) = self.leg_mut(r) else { return };
        if l.state != LegState::Answered || l.dialog.is_none() {
            return;
        }
        let Some(media) = l.media.as_mut() else {
            return;
        };
        if media.asked_direction == want || media.awaiting_answer {
            return;
        }
        l.reinvite_retry = None;
        let sdp = media.reoffer(want);
        let (transport, peer) = (l.peer.transport, l.peer);
        let Some(d) = l.dialog.as_mut() else { return };
        let invite = leg::in_dialog(
            d,
            Method::Invite,
            &local,
            transport,
            Some((super::sdp::SDP, &sdp)),
        );
        if let Some(key) = TransactionKey::client_for_request(&invite) {
            self.reinvites.push((key, r));
            self.send_request(now, invite, peer);
        }
    }

    /// The final answer to a re-INVITE of ours.
    pub(super) fn on_reinvite_response(
        &mut self,
        now: Instant,
        r: LegRef,
        code: u16,
        response: &SipMessage,
    ) {
        if !(200..300).contains(&code) {
            return self.reinvite_failed(now, r, code);
        }
        self.ack_in_dialog(r);
        let Some(media) = self.leg_mut(r).and_then(|l| l.media.as_mut()) else {
            return;
        };
        match media.read_answer(&response.body()) {
            Ok(agreed) => {
                let endpoint = media.endpoint();
                push_agreed(&mut self.outputs, endpoint, agreed);
            }
            Err(e) => {
                // The far end took an offer it answers with nonsense: keep what we had.
                media.offer_failed();
                tracing::info!(why = e.class(), "SDP answer to our re-INVITE unusable");
            }
        }
    }

    /// Our re-INVITE failed: the session stays as it was (RFC 3261 §14.1). 491 is glare:
    /// we try again after the back-off, longer when we own the dialog's Call-ID so the two
    /// sides do not collide again. 408 and 481 mean the dialog is gone: it ends with BYE.
    pub(super) fn reinvite_failed(&mut self, now: Instant, r: LegRef, code: u16) {
        let Some(l) = self.leg_mut(r) else { return };
        let Some(media) = l.media.as_mut() else {
            return;
        };
        let wanted = media.asked_direction;
        media.offer_failed();
        match code {
            491 => {
                let wait = glare_backoff(l.role == Role::Uac, crate::ids::random_u64());
                l.reinvite_retry = Some((now + wait, wanted));
            }
            408 | 481 => {
                let was_answered = l.state == LegState::Answered;
                tracing::info!(call = %self.cfg.sid, code, "re-INVITE says the dialog is gone; ending the leg");
                self.send_bye(now, r);
                match r {
                    LegRef::Main => self.event(Event::MainGone),
                    LegRef::Dial(i) if was_answered => self.event(Event::Dial(i, LegEv::HungUp)),
                    LegRef::Dial(_) => {}
                }
            }
            _ => {
                tracing::info!(call = %self.cfg.sid, code, "re-INVITE refused; the session stays as it was")
            }
        }
    }

    /// Sends the re-INVITEs whose glare back-off is over.
    pub(super) fn retry_reinvites(&mut self, now: Instant) {
        let due: Vec<(LegRef, Direction)> = self
            .main
            .iter()
            .map(|l| (LegRef::Main, l))
            .chain(
                self.legs
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (LegRef::Dial(i), l)),
            )
            .filter_map(|(r, l)| match l.reinvite_retry {
                Some((at, want)) if at <= now => Some((r, want)),
                _ => None,
            })
            .collect();
        for (r, want) in due {
            if let Some(l) = self.leg_mut(r) {
                l.reinvite_retry = None;
            }
            self.send_reoffer(now, r, want);
        }
    }

    /// Sends the ACK for the latest INVITE in a leg's dialog (a re-INVITE of ours).
    fn ack_in_dialog(&mut self, r: LegRef) {
        let local = self.cfg.local.clone();
        let Some(l) = self.leg_mut(r) else { return };
        let (transport, peer) = (l.peer.transport, l.peer);
        let Some(d) = l.dialog.as_mut() else { return };
        let ack = leg::in_dialog(d, Method::Ack, &local, transport, None);
        self.send_raw(peer, ack.as_bytes().clone());
    }
}

/// RFC 3261 §14.1: after a 491, the owner of the Call-ID waits 2.1 to 4 s, the other side
/// 0 to 2 s, in units of 10 ms, chosen at random (`random`).
pub fn glare_backoff(owns_call_id: bool, random: u64) -> Duration {
    let (base, span) = if owns_call_id { (210, 190) } else { (0, 200) };
    Duration::from_millis(10 * (base + random % (span + 1)))
}
