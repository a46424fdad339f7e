//! The main leg as a UAS: the caller's INVITE, answered by the instructions (ring, answer,
//! refuse), CANCEL before the answer, and our 2xx retransmitted until its ACK (RFC 3261
//! §13.3.1.4).

use std::time::Instant;

use super::leg::{self, LegState, Role, Unacked};
use super::{CallCore, Event, LegRef, push_agreed};
use crate::sip::Transport;
use crate::sip::dialog::DialogState;
use crate::sip::msg::SipMessage;
use crate::sip::sdp::Direction;
use crate::sip::transaction::TransactionKey;

impl CallCore {
    /// A CANCEL matched the caller's INVITE: 487 if it is still unanswered.
    pub(super) fn on_cancelled(&mut self, now: Instant, invite: TransactionKey) {
        let server = self.cfg.server_name.clone();
        let Some(main) = self.main.as_mut() else {
            return;
        };
        if main.role != Role::Uas || main.invite_key != invite || !main.is_pending() {
            return;
        }
        let resp = main.response(487, "", &[], None, &server);
        main.state = LegState::Ended;
        main.final_code = Some(487);
        self.respond(now, invite, resp);
        self.event(Event::MainGone);
    }

    /// The ACK for a 2xx: stops our retransmissions, and carries the answer to an offer we
    /// put in a 2xx (a late-offer INVITE or re-INVITE). ACKs for re-INVITEs we passed on
    /// need nothing more: we ACKed the other side ourselves.
    pub(super) fn on_ack(&mut self, request: &SipMessage) {
        let Some(r) = self.leg_of_request(request) else {
            return;
        };
        let Some(l) = self.leg_mut(r) else { return };
        if r == LegRef::Main {
            l.unacked_2xx = None;
        }
        if request.body_len() == 0 {
            return;
        }
        let Some(media) = l.media.as_mut() else {
            return;
        };
        if !media.awaiting_answer {
            return;
        }
        match media.read_answer(&request.body()) {
            Ok(agreed) => {
                let endpoint = media.endpoint();
                push_agreed(&mut self.outputs, endpoint, agreed);
            }
            Err(e) => tracing::info!(why = e.class(), "SDP answer in an ACK unusable"),
        }
    }

    /// Answers the caller's INVITE finally: a non-2xx, or a 2xx with our SDP.
    pub(super) fn answer_main(&mut self, now: Instant, code: u16, reason: &str) {
        let server = self.cfg.server_name.clone();
        let t1 = self.cfg.timers.t1;
        let Some(m) = self.main.as_mut() else { return };
        if m.role != Role::Uas || !m.is_pending() {
            return;
        }
        let contact = self.cfg.local.contact(m.peer.transport);
        let ok = (200..300).contains(&code);
        let mut headers: Vec<(&str, String)> = Vec::new();
        let mut body = None;
        if ok {
            headers.push(("Contact", contact));
            headers.push(("Allow", crate::sip::ALLOW.to_string()));
            // Our answer to the caller's offer, or our offer when it made none (the
            // answer then comes in the ACK, RFC 3264 §4).
            body = m.media.as_mut().map(|media| match &media.answer {
                Some(a) => a.clone(),
                None => media.offer(Direction::SendRecv),
            });
        }
        let resp = m.response(
            code,
            reason,
            &headers,
            body.map(|b| (super::sdp::SDP, b)),
            &server,
        );
        m.final_code = Some(code);
        if ok {
            m.state = LegState::Answered;
            m.answered_at = Some(now);
            m.dialog = leg::uas_dialog(m, DialogState::Confirmed);
            // Over a reliable transport the transport itself retransmits.
            if !m.peer.transport.is_reliable() {
                m.unacked_2xx = Some(Unacked {
                    bytes: resp.clone(),
                    next: now + t1,
                    interval: t1,
                    give_up: now + 64 * t1,
                });
            }
        } else {
            m.state = LegState::Ended;
        }
        let key = m.invite_key.clone();
        self.respond(now, key, resp);
    }

    /// Sends a provisional to the caller: 180, or 183 with our own SDP (the media is
    /// anchored: the caller talks to the relay, never to the callee directly).
    pub(super) fn ring_main(&mut self, now: Instant, early: bool) {
        let server = self.cfg.server_name.clone();
        let Some(m) = self.main.as_mut() else { return };
        if m.role != Role::Uas || !m.is_pending() {
            return;
        }
        let transport = m.peer.transport;
        let contact = self.cfg.local.contact(transport);
        let body = early
            .then(|| m.media.as_ref().and_then(|media| media.answer.clone()))
            .flatten();
        let code = if body.is_some() { 183 } else { 180 };
        m.state = LegState::Ringing;
        let resp = m.response(
            code,
            "",
            &[("Contact", contact)],
            body.map(|b| (super::sdp::SDP, b)),
            &server,
        );
        let key = m.invite_key.clone();
        self.respond(now, key, resp);
    }

    /// §13.3.1.4: our 2xx goes again at T1, 2·T1, … capped at T2 until the ACK; after 64·T1
    /// without one the dialog is ended with BYE.
    pub(super) fn retransmit_2xx(&mut self, now: Instant) {
        let t2 = self.cfg.timers.t2;
        let Some(m) = self.main.as_mut() else { return };
        let Some(u) = m.unacked_2xx.as_mut() else {
            return;
        };
        if now >= u.give_up {
            m.unacked_2xx = None;
            tracing::info!(call = %self.cfg.sid, "no ACK for our 2xx; ending the call");
            self.send_bye(now, LegRef::Main);
            self.event(Event::MainGone);
            return;
        }
        if u.next > now {
            return;
        }
        u.interval = (u.interval * 2).min(t2);
        u.next = now + u.interval;
        let (peer, bytes) = (m.peer, u.bytes.clone());
        self.send_raw(peer, bytes);
    }
}

/// The transport a leg's Contact is written for.
pub(super) fn transport_of(core: &CallCore, r: LegRef) -> Transport {
    core.leg(r).map_or(Transport::Udp, |l| l.peer.transport)
}
