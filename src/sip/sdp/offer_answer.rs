//! The RFC 3264 offer/answer rules for a B2BUA whose relay carries G.711 audio and
//! RFC 4733 events.
//!
//! Answering (§6): one answer m-line per offered m-line, in order. An audio stream over
//! RTP/AVP with PCMU or PCMA at 8 kHz is accepted: its formats are those the offer lists
//! that we support, in the offerer's preference order and with the offerer's payload type
//! numbers (§6.1), plus telephone-event/8000 with its fmtp; its ptime is echoed and its
//! direction mirrored. Every other stream (video, SRTP, codecs we lack, port 0) gets port 0.
//! Nothing accepted means 488 ([`SdpError::NotAcceptable`]).
//!
//! Offering (§5) and reading the answer (§6, §7): see [`offer_media`] and [`read_answer`].
//!
//! Hold in both its forms (§8.4) comes out of the direction rules: `a=sendonly` is
//! answered `a=recvonly`, and the RFC 2543 form, `c=0.0.0.0`, means the peer receives
//! nothing, so we take away our sending on that stream.

use std::net::{IpAddr, SocketAddr};

use super::codec::{Codec, TELEPHONE_EVENT, is_telephone_event_8000};
use super::direction::Direction;
use super::error::SdpError;
use super::negotiated::{NegotiatedMedia, Payload, PayloadMap, PayloadTypes};
use super::security::{LocalSecurity, RemoteSecurity, answer_setup, remote_security, secure_media};
use super::session::{
    Fmtp, MediaDescription, MediaKind, Protocol, Rtcp, RtpMap, SessionDescription,
};

/// The payload type of telephone-event/8000 in our offers (the customary 101).
pub const OFFER_TELEPHONE_EVENT_PT: u8 = 101;
/// The events we offer: DTMF 0-9, *, #, A-D and flash (RFC 4733 §3.2).
pub const OFFER_TELEPHONE_EVENT_FMTP: &str = "0-16";
/// The packet duration we offer, in milliseconds.
pub const OFFER_PTIME_MS: u32 = 20;

/// Our audio m-line: PCMU, PCMA, telephone-event, 20 ms, RTCP on the next port.
pub(crate) fn offer_media(rtp_port: u16, direction: Direction) -> MediaDescription {
    let mut formats: Vec<String> = Codec::ALL
        .iter()
        .map(|c| c.static_payload_type().to_string())
        .collect();
    formats.push(OFFER_TELEPHONE_EVENT_PT.to_string());
    let mut m = MediaDescription::new(MediaKind::Audio, rtp_port, Protocol::RtpAvp, formats);
    m.rtpmaps = Codec::ALL
        .iter()
        .map(|c| codec_rtpmap(*c, c.static_payload_type()))
        .collect();
    m.rtpmaps
        .push(telephone_event_rtpmap(OFFER_TELEPHONE_EVENT_PT));
    m.fmtps.push(Fmtp {
        payload_type: OFFER_TELEPHONE_EVENT_PT,
        parameters: OFFER_TELEPHONE_EVENT_FMTP.to_string(),
    });
    m.ptime = Some(OFFER_PTIME_MS);
    m.rtcp = rtcp_after(rtp_port);
    m.direction = Some(direction);
    m
}

/// The answer's m-lines and the streams accepted (see the module documentation). With
/// `security`, a browser's `UDP/TLS/RTP/SAVPF` audio is accepted too
/// ([`super::security`]).
pub(crate) fn answer_media(
    offer: &SessionDescription,
    rtp_ports: &[u16],
    security: Option<&LocalSecurity>,
) -> Result<(Vec<MediaDescription>, Vec<NegotiatedMedia>), SdpError> {
    let mut ports = rtp_ports.iter().copied();
    let mut media = Vec::with_capacity(offer.media.len());
    let mut accepted = Vec::new();
    for (index, offered) in offer.media.iter().enumerate() {
        // A port is spent only on a stream we accept; once they run out, the rest go.
        let stream = accept_audio(offer, offered, security.is_some()).and_then(|common| {
            let port = ports.next()?;
            let (mut m, negotiated) = answer_stream(offer, offered, common, index, port);
            if let (Some(local), Some(remote)) = (security, &negotiated.security) {
                let mid = remote.mid.as_deref().unwrap_or(super::security::OFFER_MID);
                secure_media(
                    &mut m,
                    local,
                    answer_setup(remote.setup),
                    mid,
                    remote.mid_extension,
                );
            }
            Some((m, negotiated))
        });
        match stream {
            Some((m, negotiated)) => {
                media.push(m);
                accepted.push(negotiated);
            }
            None => media.push(rejected(offered)),
        }
    }
    if accepted.is_empty() {
        return Err(SdpError::NotAcceptable);
    }
    Ok((media, accepted))
}

/// What an offered stream and we have in common, if we can carry it.
struct Common {
    /// Formats we keep, in the offerer's order.
    payload_types: Vec<u8>,
    /// Their numbers (we answer with the offerer's numbers, so they serve both ways).
    table: PayloadTypes,
    /// The offerer's first supported codec: the one we send.
    codec: Codec,
    /// Where the offerer receives (its `c=` for the stream).
    remote_ip: IpAddr,
    /// A browser's transport, for a secure stream.
    security: Option<RemoteSecurity>,
}

fn accept_audio(offer: &SessionDescription, m: &MediaDescription, secure: bool) -> Option<Common> {
    // Plain RTP, or (when this leg may be secure) a browser's DTLS-SRTP with ICE. SDES
    // (RTP/SAVP) and feedback profiles over plain RTP are refused rather than answered
    // with a promise we cannot keep.
    if m.kind != MediaKind::Audio || m.port == 0 {
        return None;
    }
    let security = match m.protocol {
        Protocol::RtpAvp => None,
        Protocol::UdpTlsRtpSavpf if secure => Some(remote_security(offer, m)?),
        _ => return None,
    };
    let remote_ip = m.address_in(offer)?;
    let mut payload_types = Vec::new();
    let mut table = PayloadTypes::default();
    let mut codec = None;
    for pt in m.payload_types() {
        let Some(encoding) = m.encoding(pt) else {
            continue;
        };
        if let Some(c) = Codec::from_encoding(&encoding) {
            if table.of(c).is_none() {
                table.set(c, pt);
                codec.get_or_insert(c);
                payload_types.push(pt);
            }
        } else if is_telephone_event_8000(&encoding) && table.telephone_event.is_none() {
            table.telephone_event = Some(pt);
            payload_types.push(pt);
        }
    }
    Some(Common {
        payload_types,
        table,
        codec: codec?,
        remote_ip,
        security,
    })
}

fn answer_stream(
    offer: &SessionDescription,
    offered: &MediaDescription,
    common: Common,
    index: usize,
    port: u16,
) -> (MediaDescription, NegotiatedMedia) {
    let remote_rtp = SocketAddr::new(common.remote_ip, offered.port);
    let remote_rtcp = offered.rtcp_addr_in(offer).unwrap_or(remote_rtp);
    let theirs = without_receiving_if_held(offered.direction_in(offer), common.remote_ip);
    // RFC 3264 §6.1: we send what they receive and receive what they send.
    let ours = theirs.reversed();

    let formats = common.payload_types.iter().map(u8::to_string).collect();
    let mut m = MediaDescription::new(MediaKind::Audio, port, offered.protocol.clone(), formats);
    for &pt in &common.payload_types {
        match common.table.classify(pt) {
            Some(Payload::Audio(c)) => m.rtpmaps.push(codec_rtpmap(c, pt)),
            Some(Payload::TelephoneEvent) => {
                m.rtpmaps.push(telephone_event_rtpmap(pt));
                // Echo the events they listed; without fmtp RFC 4733 §2.4.1 means 0-15.
                if let Some(events) = offered.fmtp(pt) {
                    m.fmtps.push(Fmtp {
                        payload_type: pt,
                        parameters: events.to_string(),
                    });
                }
            }
            None => {}
        }
    }
    m.ptime = offered.ptime;
    m.rtcp = rtcp_after(port);
    m.direction = Some(ours);

    let negotiated = NegotiatedMedia {
        index,
        local_rtp_port: port,
        remote_rtp,
        remote_rtcp,
        // We answered with their numbers, so both directions use the same table.
        payloads: PayloadMap::from_parts(common.codec, common.table, common.table),
        direction: ours,
        ptime: offered.ptime,
        security: common.security,
    };
    (m, negotiated)
}

/// Reads the remote's answer to `offer` (ours): for each audio stream it accepted, the
/// codec and payload types per direction, its addresses, our direction and its ptime.
///
/// Refused: an answer with another m-line count (RFC 3264 §6), an m-line of another media
/// type or transport than the offered one, an accepted stream with none of the codecs we
/// offered (formats we did not offer are allowed by §6.1 and ignored), and an answer that
/// rejects every audio stream.
pub fn read_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Vec<NegotiatedMedia>, SdpError> {
    if offer.media.len() != answer.media.len() {
        return Err(SdpError::AnswerMediaCount {
            offered: offer.media.len(),
            answered: answer.media.len(),
        });
    }
    let mut accepted = Vec::new();
    for (index, (ours, theirs)) in offer.media.iter().zip(&answer.media).enumerate() {
        if ours.kind != theirs.kind || ours.protocol != theirs.protocol {
            return Err(SdpError::AnswerMediaMismatch { index });
        }
        // Port 0 on either side is a stream that is off (§6: the answer must keep it off).
        if ours.port == 0 || theirs.port == 0 || ours.kind != MediaKind::Audio {
            continue;
        }
        let Some(remote_rtp) = theirs.rtp_addr_in(answer) else {
            continue;
        };
        let (codec, send, receive) =
            answered_payloads(ours, theirs).ok_or(SdpError::AnswerCodecNotOffered {
                index,
                payload_type: theirs.payload_types().next(),
            })?;
        // A secure offer needs the browser's ICE credentials and fingerprint back.
        let security = if ours.protocol == Protocol::UdpTlsRtpSavpf {
            Some(remote_security(answer, theirs).ok_or(SdpError::AnswerRejected)?)
        } else {
            None
        };
        let theirs_direction =
            without_receiving_if_held(theirs.direction_in(answer), remote_rtp.ip());
        let direction = ours.direction_in(offer).and(theirs_direction.reversed());
        accepted.push(NegotiatedMedia {
            index,
            local_rtp_port: ours.port,
            remote_rtp,
            remote_rtcp: theirs.rtcp_addr_in(answer).unwrap_or(remote_rtp),
            payloads: PayloadMap::from_parts(codec, send, receive),
            direction,
            ptime: theirs.ptime,
            security,
        });
    }
    if accepted.is_empty() {
        return Err(SdpError::AnswerRejected);
    }
    Ok(accepted)
}

/// The codec the answer picked (its first one that we offered) and the payload type
/// tables: `send` with the answer's numbers, `receive` with our offer's.
fn answered_payloads(
    ours: &MediaDescription,
    theirs: &MediaDescription,
) -> Option<(Codec, PayloadTypes, PayloadTypes)> {
    let mut send = PayloadTypes::default();
    let mut receive = PayloadTypes::default();
    let mut codec = None;
    for pt in theirs.payload_types() {
        let Some(encoding) = theirs.encoding(pt) else {
            continue;
        };
        if let Some(c) = Codec::from_encoding(&encoding) {
            let offered = ours.payload_types().find(|o| {
                ours.encoding(*o)
                    .is_some_and(|e| Codec::from_encoding(&e) == Some(c))
            });
            if let Some(offered) = offered
                && send.of(c).is_none()
            {
                send.set(c, pt);
                receive.set(c, offered);
                codec.get_or_insert(c);
            }
        } else if is_telephone_event_8000(&encoding)
            && send.telephone_event.is_none()
            && let Some(offered) = ours.telephone_event(8000)
        {
            send.telephone_event = Some(pt);
            receive.telephone_event = Some(offered);
        }
    }
    Some((codec?, send, receive))
}

/// RFC 3264 §8.4: a connection address of 0.0.0.0 (RFC 2543 hold) means "send me
/// nothing", whatever the direction attribute says.
fn without_receiving_if_held(direction: Direction, address: IpAddr) -> Direction {
    if address.is_unspecified() {
        direction.and(Direction::SendOnly)
    } else {
        direction
    }
}

/// An answer m-line that turns the stream off: port 0, the offered formats (§6: at least
/// one format must be listed), nothing else.
fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription::new(
        offered.kind.clone(),
        0,
        offered.protocol.clone(),
        offered.formats.clone(),
    )
}

fn codec_rtpmap(codec: Codec, pt: u8) -> RtpMap {
    RtpMap {
        payload_type: pt,
        encoding: codec.encoding_name().to_string(),
        clock_rate: codec.clock_rate(),
        channels: None,
    }
}

fn telephone_event_rtpmap(pt: u8) -> RtpMap {
    RtpMap {
        payload_type: pt,
        encoding: TELEPHONE_EVENT.to_string(),
        clock_rate: 8000,
        channels: None,
    }
}

/// `a=rtcp` for our RTCP port, the one after RTP (RFC 3605; stated explicitly because
/// some NATs and stacks otherwise guess).
fn rtcp_after(rtp_port: u16) -> Option<Rtcp> {
    Some(Rtcp {
        port: rtp_port.checked_add(1)?,
        address: None,
    })
}
