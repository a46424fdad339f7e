//! Our side of one leg's session: the `o=` line we control and its version.
//!
//! RFC 3264 §8: every description we send in a dialog carries the same `o=` line except
//! for the version, which goes up by one each time the description changes and stays put
//! when it does not (so a session-refresh re-INVITE answered with the same media does not
//! look like a change to the peer). [`LocalSession`] keeps that rule in one place; the
//! offer and answer it writes come from [`super::offer_answer`].

use std::net::IpAddr;

use super::direction::Direction;
use super::error::SdpError;
use super::negotiated::NegotiatedMedia;
use super::offer_answer::{answer_media, offer_media};
use super::security::{
    LocalSecurity, OFFER_MID, OFFER_MID_EXTENSION_ID, Setup, answer_setup, ice_lite, secure_media,
};
use super::session::{
    AddressType, Attribute, MediaDescription, Origin, SessionDescription, Timing,
};

/// The `o=` user name and the `s=` text of every description we write.
pub const LOCAL_SESSION_NAME: &str = "switchboard";

/// One leg's SDP state on our side (create one per leg, keep it for the dialog).
#[derive(Debug, Clone)]
pub struct LocalSession {
    session_id: u64,
    version: u64,
    address: IpAddr,
    last_sent: Option<SessionDescription>,
    /// Our ICE and DTLS parameters when the leg may be a browser's.
    security: Option<LocalSecurity>,
    /// Our offers are secure (the leg is a browser), not only our answers to secure offers.
    secure_offers: bool,
    /// What a secure exchange settled: the mid, our DTLS role, the mid extension's id.
    /// Re-offers keep them (RFC 5763 §5: the roles do not change mid-session).
    agreed_secure: Option<(String, Setup, Option<u8>)>,
}

/// Our answer to an offer: the description to send and the streams we accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer body.
    pub description: SessionDescription,
    /// The accepted audio streams (never empty), in m-line order.
    pub media: Vec<NegotiatedMedia>,
}

impl LocalSession {
    /// A session whose media is received at `address` (the relay's, advertised in `c=` and
    /// `o=`). `session_id` comes from the caller, which owns randomness; it is kept below
    /// 2^63 because some stacks read it as a signed 64-bit number.
    pub fn new(session_id: u64, address: IpAddr) -> Self {
        LocalSession {
            session_id: session_id & (i64::MAX as u64),
            version: 0,
            address,
            last_sent: None,
            security: None,
            secure_offers: false,
            agreed_secure: None,
        }
    }

    /// Lets this leg be secure ([`super::security`]): answers accept a browser's
    /// `UDP/TLS/RTP/SAVPF` offer, and with `secure_offers` our own offers are secure too.
    pub fn set_security(&mut self, security: LocalSecurity, secure_offers: bool) {
        self.security = Some(security);
        self.secure_offers = secure_offers;
    }

    /// Our parameters, if this leg may be secure.
    pub fn security(&self) -> Option<&LocalSecurity> {
        self.security.as_ref()
    }

    /// Notes what the remote's answer to our secure offer settled (the roles and mid that
    /// re-offers keep).
    pub fn note_answer(&mut self, media: &NegotiatedMedia) {
        if let Some(remote) = &media.security {
            let ours = match remote.setup {
                Setup::Active => Setup::Passive,
                _ => Setup::Active,
            };
            let mid = remote.mid.clone().unwrap_or_else(|| OFFER_MID.to_string());
            self.agreed_secure = Some((mid, ours, remote.mid_extension));
        }
    }

    /// The `o=` session id.
    pub const fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version of the last description written (0 before the first).
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// Our offer for a leg we originate, or a re-offer (hold: `Direction::SendOnly`):
    /// one audio stream on `rtp_port` with PCMU, PCMA and telephone-event/8000 on 101
    /// (events 0-16), 20 ms packets, RTCP on `rtp_port + 1`. Read the answer to it with
    /// [`super::read_answer`].
    ///
    /// A secure leg's offer is `UDP/TLS/RTP/SAVPF` with our ICE and DTLS lines instead.
    pub fn offer(&mut self, rtp_port: u16, direction: Direction) -> SessionDescription {
        let mut m = offer_media(rtp_port, direction);
        let mut attributes = Vec::new();
        if self.secure_offers
            && let Some(local) = &self.security
        {
            let (mid, setup, ext) = self.agreed_secure.clone().unwrap_or((
                OFFER_MID.to_string(),
                Setup::ActPass,
                Some(OFFER_MID_EXTENSION_ID),
            ));
            secure_media(&mut m, local, setup, &mid, ext);
            attributes.push(ice_lite());
        }
        self.seal(Timing::default(), vec![m], attributes)
    }

    /// Our answer to `offer` (RFC 3264 §6), receiving on `rtp_ports`: one port per audio
    /// stream we accept, used in m-line order; audio streams beyond them, and every stream
    /// we cannot carry, are rejected with port 0. An offer with no acceptable audio stream
    /// is an error that maps to 488.
    pub fn answer(
        &mut self,
        offer: &SessionDescription,
        rtp_ports: &[u16],
    ) -> Result<Answer, SdpError> {
        let (media, negotiated) = answer_media(offer, rtp_ports, self.security.as_ref())?;
        let mut attributes = Vec::new();
        let secure: Vec<_> = negotiated
            .iter()
            .filter_map(|n| n.security.as_ref())
            .collect();
        if let Some(remote) = secure.first() {
            attributes.push(ice_lite());
            let mid = remote.mid.clone().unwrap_or_else(|| OFFER_MID.to_string());
            // RFC 9143 §7.3.2: an answer bundles what it accepts of the offered group.
            let offered_bundle = offer.attributes.iter().any(|a| {
                a.name.eq_ignore_ascii_case("group")
                    && a.value.as_deref().is_some_and(|v| {
                        v.split_whitespace().next() == Some("BUNDLE")
                            && v.split_whitespace().skip(1).any(|t| t == mid)
                    })
            });
            if offered_bundle {
                attributes.push(Attribute {
                    name: "group".to_string(),
                    value: Some(format!("BUNDLE {mid}")),
                });
            }
            self.agreed_secure = Some((mid, answer_setup(remote.setup), remote.mid_extension));
        }
        // RFC 3264 §6: the answer's t= line equals the offer's.
        let description = self.seal(offer.timing, media, attributes);
        Ok(Answer {
            description,
            media: negotiated,
        })
    }

    /// Wraps media sections in our session-level lines, moving to a new version only when
    /// the result differs from what we sent last.
    fn seal(
        &mut self,
        timing: Timing,
        media: Vec<MediaDescription>,
        attributes: Vec<Attribute>,
    ) -> SessionDescription {
        let mut description = SessionDescription {
            origin: Origin {
                username: LOCAL_SESSION_NAME.to_string(),
                session_id: self.session_id,
                session_version: self.version,
                address_type: AddressType::of(self.address),
                address: self.address.to_string(),
            },
            session_name: LOCAL_SESSION_NAME.to_string(),
            connection: Some(self.address),
            timing,
            direction: None,
            attributes,
            media,
        };
        if self.last_sent.as_ref() != Some(&description) {
            self.version += 1;
            description.origin.session_version = self.version;
            self.last_sent = Some(description.clone());
        }
        description
    }
}
