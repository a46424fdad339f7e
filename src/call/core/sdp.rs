//! One leg's SDP session with us (RFC 3264), at the relay's address and the leg's
//! endpoint port. Each leg negotiates with the switch on its own and the relay maps payload
//! types and G.711 laws between legs (../shared/DESIGN.md, "Layers"). This file is where
//! SIP's view of a stream (`sip::sdp::NegotiatedMedia`) becomes the media plane's
//! (`media::StreamParams`): the media plane never sees SIP types. Pure data: the core
//! turns what it returns into `MediaOp::Configure`.

use std::net::IpAddr;

use bytes::Bytes;

use crate::media::SecureParams;
use crate::media::g711::G711Law;
use crate::media::{EndpointId, PayloadTypes, StreamParams};
use crate::sip::sdp::{
    self, Codec, Direction, LocalSecurity, LocalSession, NegotiatedMedia, RemoteSecurity, SdpError,
    SessionDescription,
};

/// What an exchange settled for the relay: the stream, and for a browser leg its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    pub params: StreamParams,
    pub secure: Option<Box<SecureParams>>,
}

/// The Content-Type of every body we write here.
pub const SDP: &str = "application/sdp";

/// One leg's session.
#[derive(Debug)]
pub struct LegSdp {
    endpoint: EndpointId,
    port: u16,
    session: LocalSession,
    /// Our last offer to this leg, which its answer is read against.
    offer: Option<SessionDescription>,
    /// The offer the session in force was agreed on, and the direction it asked: what a
    /// failed re-offer goes back to.
    agreed: Option<(SessionDescription, Direction)>,
    /// Our answer to this leg's offer, sent when the call answers the leg.
    pub answer: Option<Bytes>,
    /// What the relay was last pointed at.
    pub params: Option<StreamParams>,
    /// We sent an offer whose answer has not come yet.
    pub awaiting_answer: bool,
    /// The direction last asked of this leg on behalf of the other one (hold passed on).
    pub asked_direction: Direction,
    /// The IP the leg's SIP comes from: the relay's latch trusts media from it over a
    /// stranger's (a NATed phone's SDP names its private address; its NAT's is this one).
    pub signalling_host: Option<IpAddr>,
}

impl LegSdp {
    /// A session for a leg whose relay endpoint is `endpoint`, receiving on `port`,
    /// advertised at `address`.
    pub fn new(endpoint: EndpointId, port: u16, address: IpAddr, session_id: u64) -> LegSdp {
        LegSdp {
            endpoint,
            port,
            session: LocalSession::new(session_id, address),
            offer: None,
            agreed: None,
            answer: None,
            params: None,
            awaiting_answer: false,
            asked_direction: Direction::SendRecv,
            signalling_host: None,
        }
    }

    pub fn endpoint(&self) -> EndpointId {
        self.endpoint
    }

    /// Lets this leg be a browser's (`UDP/TLS/RTP/SAVPF`, ICE-lite, DTLS-SRTP): answers
    /// accept a browser's offer, and with `secure_offers` (the leg is a WebSocket client)
    /// our offers are secure too.
    pub fn set_security(&mut self, local: LocalSecurity, secure_offers: bool) {
        self.session.set_security(local, secure_offers);
    }

    /// The relay's view of what was agreed on `media`.
    fn agreed(&self, media: &NegotiatedMedia) -> Agreed {
        let secure = match (self.session.security(), &media.security) {
            (Some(local), Some(remote)) => Some(Box::new(secure_params(local, remote))),
            _ => None,
        };
        Agreed {
            params: params_of(media, self.signalling_host),
            secure,
        }
    }

    /// Our offer to a leg (a new one, or a late-offer INVITE's 2xx).
    pub fn offer(&mut self, direction: Direction) -> Bytes {
        let d = self.session.offer(self.port, direction);
        let body = d.to_bytes();
        self.offer = Some(d);
        self.awaiting_answer = true;
        body
    }

    /// A re-offer asking for `direction` (hold passed on); [`LegSdp::offer_failed`] undoes
    /// it if it is refused.
    pub fn reoffer(&mut self, direction: Direction) -> Bytes {
        self.asked_direction = direction;
        self.offer(direction)
    }

    /// Our re-offer was refused (or answered unusably): the session stays as agreed before.
    pub fn offer_failed(&mut self) {
        self.awaiting_answer = false;
        match self.agreed.clone() {
            Some((offer, direction)) => {
                self.offer = Some(offer);
                self.asked_direction = direction;
            }
            None => self.asked_direction = Direction::SendRecv,
        }
    }

    /// Answers `body`, the leg's offer (its INVITE, or a re-INVITE): our answer (also kept
    /// in [`LegSdp::answer`]) and what the relay is to do. An offer we cannot carry is an
    /// error that maps to 488 and changes nothing.
    pub fn answer_offer(&mut self, body: &[u8]) -> Result<(Bytes, Agreed), SdpError> {
        let offer = sdp::parse(body)?;
        let answer = self.session.answer(&offer, &[self.port])?;
        let media = answer.media.first().ok_or(SdpError::NotAcceptable)?;
        let agreed = self.agreed(media);
        self.params = Some(agreed.params);
        self.awaiting_answer = false;
        let bytes = answer.description.to_bytes();
        self.answer = Some(bytes.clone());
        Ok((bytes, agreed))
    }

    /// Reads the leg's answer to our last offer: what the relay is to do.
    pub fn read_answer(&mut self, body: &[u8]) -> Result<Agreed, SdpError> {
        let Some(offer) = &self.offer else {
            return Err(SdpError::AnswerRejected);
        };
        let answer = sdp::parse(body)?;
        let media = sdp::read_answer(offer, &answer)?;
        let first = media.first().ok_or(SdpError::AnswerRejected)?;
        let agreed = self.agreed(first);
        self.session.note_answer(first);
        self.agreed = Some((offer.clone(), self.asked_direction));
        self.params = Some(agreed.params);
        self.awaiting_answer = false;
        Ok(agreed)
    }
}

/// The relay's view of a negotiated stream, whose leg's SIP comes from `signalling_host`.
pub fn params_of(m: &NegotiatedMedia, signalling_host: Option<IpAddr>) -> StreamParams {
    let pts = |t: &sdp::PayloadTypes| PayloadTypes {
        pcmu: t.pcmu,
        pcma: t.pcma,
        telephone_event: t.telephone_event,
    };
    StreamParams {
        remote_rtp: m.remote_rtp,
        remote_rtcp: m.remote_rtcp,
        signalling_host,
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

/// The relay's view of a browser leg's transport: our side and the browser's.
pub fn secure_params(local: &LocalSecurity, remote: &RemoteSecurity) -> SecureParams {
    SecureParams {
        local_ufrag: local.ufrag.clone(),
        local_pwd: local.pwd.clone(),
        remote_ufrag: remote.ufrag.clone(),
        remote_pwd: remote.pwd.clone(),
        remote_fingerprint: remote.fingerprint.clone(),
        dtls_client: remote.we_are_dtls_client(),
        mid: remote
            .mid
            .clone()
            .unwrap_or_else(|| sdp::OFFER_MID.to_string()),
        mid_extension: remote.mid_extension,
        remote_ssrcs: remote.ssrcs.clone(),
        candidate: local.candidate,
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
