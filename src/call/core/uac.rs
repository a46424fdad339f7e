//! Legs we call (UAC): the INVITE, its provisionals and answers (ACK for every 2xx,
//! §13.2.2.4; a late or second answer gets ACK and BYE), a challenge answered once
//! (§22.2), CANCEL only after a provisional (§9.1), and BYE.

use std::time::Instant;

use super::leg::{self, Leg, LegState};
use super::{CallCore, LegEv, LegRef};
use crate::sip::dialog::{Dialog, DialogState};
use crate::sip::msg::SipMessage;
use crate::sip::transaction::{TransactionKey, build_cancel};
use crate::sip::{Method, Peer};

impl CallCore {
    /// Sends a new leg's INVITE.
    pub(super) fn start_leg(&mut self, now: Instant, leg: Leg, main: bool) {
        let (invite, peer) = (leg.invite.clone(), leg.peer);
        if main {
            self.main = Some(leg);
        } else {
            self.legs.push(leg);
        }
        self.send_request(now, invite, peer);
    }

    pub(super) fn on_invite_response(&mut self, now: Instant, r: LegRef, response: SipMessage) {
        let code = response.status().unwrap_or(0);
        match code {
            100 => {}
            101..=199 => self.on_provisional(now, r, &response),
            200..=299 => self.on_2xx(now, r, &response),
            _ => {
                if matches!(code, 401 | 407) && self.answer_challenge(now, r, &response) {
                    return;
                }
                self.leg_failed(r, code);
            }
        }
    }

    fn on_provisional(&mut self, now: Instant, r: LegRef, response: &SipMessage) {
        let Some(l) = self.leg_mut(r) else { return };
        if l.dialog.is_none() && response.to_header().ok().and_then(|t| t.tag()).is_some() {
            l.dialog = Dialog::uac(&l.invite, response).ok();
        }
        let first = l.state == LegState::Trying;
        if first {
            l.state = LegState::Ringing;
        }
        // A CANCEL must wait for a provisional (RFC 3261 §9.1).
        if l.cancel_wanted {
            return self.send_cancel(now, r);
        }
        let early = response.body_len() > 0;
        if first || early {
            self.leg_event(r, LegEv::Ringing { early });
        }
    }

    fn on_2xx(&mut self, now: Instant, r: LegRef, response: &SipMessage) {
        let local = self.cfg.local.clone();
        let code = response.status().unwrap_or(200);
        let Some(l) = self.leg_mut(r) else { return };
        if let Some(ack) = &l.ack {
            // A retransmitted 2xx (our ACK was lost), or another fork's answer to an
            // INVITE we already had answered: the ACK goes again.
            let (peer, ack) = (l.peer, ack.clone());
            return self.send_raw(peer, ack);
        }
        match l.dialog.as_mut() {
            Some(d) => {
                let _ = d.confirm(response);
            }
            None => l.dialog = Dialog::uac(&l.invite, response).ok(),
        }
        let (transport, peer) = (l.peer.transport, l.peer);
        let Some(d) = l.dialog.as_mut() else {
            // A 2xx we cannot make a dialog of (no Contact, no tag): nothing to ACK or BYE;
            // the far end times out.
            l.state = LegState::Ended;
            l.final_code = Some(502);
            return self.leg_event(r, LegEv::Failed(502));
        };
        d.state = DialogState::Confirmed;
        let ack = leg::in_dialog(d, Method::Ack, &local, transport, None);
        let ack = ack.as_bytes().clone();
        l.ack = Some(ack.clone());
        l.final_code = Some(code);
        let unwanted = l.cancel_wanted || l.state == LegState::Ended;
        self.send_raw(peer, ack);
        if unwanted {
            // It answered as we cancelled (or after another leg won): end it.
            return self.send_bye(now, r);
        }
        // The callee's SDP answer points its endpoint at it (a leg without an endpoint
        // has nothing to read).
        let Some(l) = self.leg_mut(r) else { return };
        let read = match l.media.as_mut() {
            None => Ok(None),
            Some(_) if response.body_len() == 0 => Err("no_sdp_answer"),
            Some(media) => media
                .read_answer(&response.body())
                .map(|a| Some((media.endpoint(), a)))
                .map_err(|e| e.class()),
        };
        match read {
            Ok(op) => {
                l.state = LegState::Answered;
                l.answered_at = Some(now);
                if let Some((endpoint, agreed)) = op {
                    super::push_agreed(&mut self.outputs, endpoint, agreed);
                }
                self.leg_event(r, LegEv::Answered);
            }
            Err(why) => {
                l.final_code = Some(488);
                tracing::info!(call = %self.cfg.sid, why, "callee's SDP answer unusable; ending its leg");
                self.send_bye(now, r);
                self.leg_event(r, LegEv::Failed(488));
            }
        }
    }

    /// Re-sends the INVITE with credentials for a 401/407 (RFC 3261 §22.2), once, and only
    /// for the realm the credentials are for.
    fn answer_challenge(&mut self, now: Instant, r: LegRef, response: &SipMessage) -> bool {
        let code = response.status().unwrap_or(0);
        let (header_in, header_out) = if code == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let local = self.cfg.local.clone();
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
        self.send_request(now, invite, peer);
        true
    }

    /// CANCELs a ringing leg (RFC 3261 §9.1), or marks it so the CANCEL goes as soon as a
    /// provisional arrives; a leg that already answered gets a BYE. A pending leg counts as
    /// ended (487) from now on; a 2xx that still comes gets ACK and BYE.
    pub(super) fn cancel_leg(&mut self, now: Instant, r: LegRef) {
        let Some(l) = self.leg_mut(r) else { return };
        match l.state {
            LegState::Trying | LegState::Ringing => {
                let provisional = l.state == LegState::Ringing;
                l.cancel_wanted = true;
                l.state = LegState::Ended;
                l.final_code.get_or_insert(487);
                if provisional {
                    self.send_cancel(now, r);
                }
            }
            LegState::Answered => self.send_bye(now, r),
            LegState::Ended => {}
        }
    }

    fn send_cancel(&mut self, now: Instant, r: LegRef) {
        let Some(l) = self.leg_mut(r) else { return };
        if l.cancel_sent {
            return;
        }
        l.cancel_sent = true;
        let peer = l.peer;
        if let Ok(cancel) = SipMessage::parse(build_cancel(&l.invite)) {
            self.send_request(now, cancel, peer);
        }
    }

    /// Ends an answered leg with BYE.
    pub(super) fn send_bye(&mut self, now: Instant, r: LegRef) {
        let local = self.cfg.local.clone();
        let Some(l) = self.leg_mut(r) else { return };
        l.state = LegState::Ended;
        l.unacked_2xx = None;
        l.reinvite_retry = None;
        let (transport, peer): (_, Peer) = (l.peer.transport, l.peer);
        let Some(d) = l.dialog.as_mut() else { return };
        let bye = leg::in_dialog(d, Method::Bye, &local, transport, None);
        self.send_request(now, bye, peer);
    }
}
