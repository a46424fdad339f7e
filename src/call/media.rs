//! Each leg's media: a relay endpoint and our SDP session with that leg.
//!
//! The switch anchors every call's audio (DESIGN.md, "Layers"): each leg negotiates its own
//! session with us (RFC 3264), at the relay's address and the endpoint's port, and the
//! relay maps payload types and G.711 laws between the legs. This file is where SIP's view
//! of a stream (`sip::sdp::NegotiatedMedia`) becomes the media plane's
//! (`media::StreamParams`): the media plane never sees SIP types.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::actor::{Call, Ev, LegRef};
use super::leg::{Leg, LegState};
use crate::media::g711::G711Law;
use crate::media::{
    Endpoint, EndpointId, EventKind, EventSink, MediaEngine, MediaEvent, OpenError, PayloadTypes,
    StreamParams,
};
use crate::sip::sdp::{
    self, Codec, Direction, LocalSession, NegotiatedMedia, SdpError, SessionDescription,
};

/// The Content-Type of every body we write here.
pub const SDP: &str = "application/sdp";

/// One leg's media.
#[derive(Debug)]
pub struct LegMedia {
    pub endpoint: Endpoint,
    session: LocalSession,
    /// Our last offer to this leg, which its answer is read against.
    offer: Option<SessionDescription>,
    /// Our answer to this leg's offer, sent when the call layer answers the leg.
    pub answer: Option<Bytes>,
    pub params: Option<StreamParams>,
    /// We sent an offer whose answer has not come yet.
    pub awaiting_answer: bool,
    /// The direction last asked of this leg on behalf of the other one (hold passed on).
    pub asked_direction: Direction,
}

impl LegMedia {
    /// Opens an endpoint for a leg of the call `group`, advertised at `address`.
    pub fn open(
        engine: &Arc<MediaEngine>,
        address: IpAddr,
        group: u64,
        sink: EventSink,
    ) -> Result<LegMedia, OpenError> {
        let endpoint = engine.open(group, sink)?;
        Ok(LegMedia {
            endpoint,
            session: LocalSession::new(crate::ids::random_u64(), address),
            offer: None,
            answer: None,
            params: None,
            awaiting_answer: false,
            asked_direction: Direction::SendRecv,
        })
    }

    /// Our offer to a leg we call (or re-offer, `direction` for hold).
    pub fn offer(&mut self, direction: Direction) -> (String, Bytes) {
        let d = self.session.offer(self.endpoint.port(), direction);
        let body = d.to_bytes();
        self.offer = Some(d);
        self.awaiting_answer = true;
        (SDP.to_string(), body)
    }

    /// Answers `body`, the leg's offer (its INVITE, or a re-INVITE), and points the relay at
    /// what was agreed. The answer is kept in [`LegMedia::answer`] and returned. An offer
    /// we cannot carry is an error that maps to 488.
    pub fn answer_offer(&mut self, body: &[u8]) -> Result<Bytes, SdpError> {
        let offer = sdp::parse(body)?;
        let answer = self.session.answer(&offer, &[self.endpoint.port()])?;
        let media = answer.media.first().ok_or(SdpError::NotAcceptable)?;
        self.apply(media);
        self.awaiting_answer = false;
        let bytes = answer.description.to_bytes();
        self.answer = Some(bytes.clone());
        Ok(bytes)
    }

    /// Reads the leg's answer to our last offer and points the relay at it.
    pub fn read_answer(&mut self, body: &[u8]) -> Result<(), SdpError> {
        let Some(offer) = &self.offer else {
            return Err(SdpError::AnswerRejected);
        };
        let answer = sdp::parse(body)?;
        let media = sdp::read_answer(offer, &answer)?;
        let first = media.first().ok_or(SdpError::AnswerRejected)?;
        self.apply(first);
        self.awaiting_answer = false;
        Ok(())
    }

    fn apply(&mut self, m: &NegotiatedMedia) {
        let p = params_of(m);
        self.params = Some(p);
        self.endpoint.engine().configure(self.endpoint.id(), p);
    }
}

impl Call {
    /// A new endpoint for a leg of this call.
    pub fn open_media(&self) -> Result<LegMedia, OpenError> {
        LegMedia::open(
            &self.svc.media,
            self.svc.media_ip,
            self.media_group,
            self.media_tx.clone(),
        )
    }

    /// Opens the caller's endpoint and answers its offer (kept until the call layer
    /// answers the INVITE). `Err` carries the status to refuse the INVITE with.
    pub fn open_main_media(&mut self) -> Result<(), (u16, &'static str)> {
        let mut media = self
            .open_media()
            .map_err(|e| (e.status(), "no RTP ports"))?;
        let Some(main) = self.main.as_mut() else {
            return Err((500, "no caller leg"));
        };
        if main.invite.body_len() > 0 {
            media
                .answer_offer(&main.invite.body())
                .map_err(|e| (e.sip_status(), e.class()))?;
        }
        main.media = Some(media);
        Ok(())
    }

    /// The leg whose endpoint is `id`.
    fn leg_of_endpoint(&self, id: EndpointId) -> Option<LegRef> {
        let owns = |l: &Leg| l.media.as_ref().is_some_and(|m| m.endpoint.id() == id);
        if self.main.as_ref().is_some_and(owns) {
            return Some(LegRef::Main);
        }
        self.legs.iter().position(owns).map(LegRef::Dial)
    }

    /// An event from the media plane. A media timeout ends an answered call here (the
    /// far end is gone without a BYE); everything else goes to whatever runs.
    pub fn on_media(&mut self, ev: MediaEvent) {
        let Some(r) = self.leg_of_endpoint(ev.endpoint) else {
            // A leg that ended meanwhile.
            return;
        };
        match ev.kind {
            EventKind::MediaTimeout => {
                let answered = self
                    .main
                    .as_ref()
                    .is_some_and(|m| m.state == LegState::Answered);
                if answered {
                    tracing::info!(call = %self.info.sid, "no media for the configured time; ending the call");
                    self.send_bye(LegRef::Main);
                    self.push_event(Ev::MainGone);
                }
            }
            kind => self.push_event(Ev::Media(r, kind)),
        }
    }
}

/// The relay's view of a negotiated stream.
pub fn params_of(m: &NegotiatedMedia) -> StreamParams {
    let pts = |t: &sdp::PayloadTypes| PayloadTypes {
        pcmu: t.pcmu,
        pcma: t.pcma,
        telephone_event: t.telephone_event,
    };
    StreamParams {
        remote_rtp: m.remote_rtp,
        remote_rtcp: m.remote_rtcp,
        law: match m.codec() {
            Codec::Pcmu => G711Law::Pcmu,
            Codec::Pcma => G711Law::Pcma,
        },
        send: pts(m.payloads.send()),
        receive: pts(m.payloads.receive()),
        sending: m.direction.sends(),
        receiving: m.direction.receives(),
    }
}

/// The address SDP advertises: the configured public address when it is an IP literal,
/// else the address the relay binds.
pub fn advertised_address(public: Option<&str>, bound: IpAddr) -> IpAddr {
    public
        .map(super::leg::public_host)
        .and_then(|h| h.parse::<IpAddr>().ok())
        .unwrap_or(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_address_prefers_a_public_ip() {
        let bound: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(advertised_address(None, bound), bound);
        assert_eq!(
            advertised_address(Some("203.0.113.10"), bound),
            "203.0.113.10".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            advertised_address(Some("203.0.113.10:5080"), bound),
            "203.0.113.10".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            advertised_address(Some("[2001:db8::1]:5060"), bound),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            advertised_address(Some("2001:db8::1"), bound),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // A host name cannot go in c=: the bound address it is.
        assert_eq!(advertised_address(Some("sbc.example.com"), bound), bound);
    }
}
