//! The typed session description (RFC 8866 §5): what the parser produces, what the writer
//! prints and what offer/answer reads.
//!
//! Only what a B2BUA with a media relay acts on is typed (addresses, ports, formats,
//! rtpmap/fmtp, ptime, direction, RTCP); every other attribute is kept as a name and value
//! so a description survives a parse and print.

use std::net::{IpAddr, SocketAddr};

use super::codec::{Encoding, static_encoding};
use super::direction::Direction;

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line: who made the description and which version of it this is.
    pub origin: Origin,
    /// The `s=` line (text; `-` when there is nothing to say).
    pub session_name: String,
    /// The session-level `c=` address, the default for every media stream.
    pub connection: Option<IpAddr>,
    /// The first `t=` line (RFC 3264 §5: `0 0` for SIP sessions).
    pub timing: Timing,
    /// A session-level direction attribute, the default for every media stream.
    pub direction: Option<Direction>,
    /// Session-level attributes we do not interpret, in order.
    pub attributes: Vec<Attribute>,
    /// The media descriptions (`m=` sections), in order: offer/answer pairs them by index.
    pub media: Vec<MediaDescription>,
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name (`-` when there is none).
    pub username: String,
    /// Identifies the session across versions.
    pub session_id: u64,
    /// Increases by one for every changed description in a session (RFC 3264 §8).
    pub session_version: u64,
    /// IP4 or IP6.
    pub address_type: AddressType,
    /// The originating host: an IP literal or a name, informational only.
    pub address: String,
}

impl Origin {
    /// Whether `newer` is the same version of the same session as `self`: RFC 3264 §8 says
    /// such a description must be identical, so a re-INVITE carrying it changes nothing
    /// (a session refresh) and need not be passed on to the other leg.
    pub fn is_same_version(&self, newer: &Origin) -> bool {
        self.username == newer.username
            && self.session_id == newer.session_id
            && self.address_type == newer.address_type
            && self.address == newer.address
            && self.session_version == newer.session_version
    }
}

/// The address family token of `o=`, `c=` and `a=rtcp` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
}

impl AddressType {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressType::Ip4,
            IpAddr::V6(_) => AddressType::Ip6,
        }
    }

    /// The SDP token.
    pub const fn as_str(self) -> &'static str {
        match self {
            AddressType::Ip4 => "IP4",
            AddressType::Ip6 => "IP6",
        }
    }
}

/// The `t=` line: start and stop as NTP seconds, `0 0` for an unbounded session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// Start time (0: now).
    pub start: u64,
    /// Stop time (0: unbounded).
    pub stop: u64,
}

/// One `m=` section (RFC 8866 §5.14) with the attributes we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub kind: MediaKind,
    /// The transport port; 0 disables the stream (RFC 3264 §5.1). A `/<count>` suffix is
    /// accepted and dropped: we never use port ranges.
    pub port: u16,
    /// The transport protocol (`RTP/AVP`, `RTP/SAVP`, ...).
    pub protocol: Protocol,
    /// The formats in preference order: payload type numbers for RTP, checked to be 0..=127.
    pub formats: Vec<String>,
    /// A media-level `c=` address, overriding the session's.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` lines (RFC 8866 §6.6), in order.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines (RFC 8866 §6.15), in order.
    pub fmtps: Vec<Fmtp>,
    /// `a=ptime`: the packet duration, in milliseconds, the sender wants to receive.
    pub ptime: Option<u32>,
    /// `a=maxptime`: the longest packet duration, in milliseconds, it can receive.
    pub maxptime: Option<u32>,
    /// A media-level direction attribute, overriding the session's.
    pub direction: Option<Direction>,
    /// `a=rtcp` (RFC 3605): where RTCP for this stream goes when it is not port + 1.
    pub rtcp: Option<Rtcp>,
    /// Media-level attributes we do not interpret, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A stream with no attributes yet.
    pub fn new(kind: MediaKind, port: u16, protocol: Protocol, formats: Vec<String>) -> Self {
        MediaDescription {
            kind,
            port,
            protocol,
            formats,
            connection: None,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            ptime: None,
            maxptime: None,
            direction: None,
            rtcp: None,
            attributes: Vec::new(),
        }
    }

    /// The formats as RTP payload types, in preference order (none for non-RTP streams).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter(|_| self.protocol.is_rtp())
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }

    /// What payload type `pt` carries: its `a=rtpmap`, or the RFC 3551 static assignment
    /// (so PCMU on 0 and PCMA on 8 need no rtpmap).
    pub fn encoding(&self, pt: u8) -> Option<Encoding<'_>> {
        match self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            Some(m) => Some(Encoding {
                name: &m.encoding,
                clock_rate: m.clock_rate,
                channels: m.channels,
            }),
            None => static_encoding(pt),
        }
    }

    /// The `a=fmtp` parameters of payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|f| f.payload_type == pt)
            .map(|f| f.parameters.as_str())
    }

    /// The first payload type this stream offers for RFC 4733 telephone-events at
    /// `clock_rate` (an offer may list one per clock rate, as Linphone does).
    pub fn telephone_event(&self, clock_rate: u32) -> Option<u8> {
        self.payload_types().find(|pt| {
            self.encoding(*pt).is_some_and(|e| {
                e.name.eq_ignore_ascii_case("telephone-event") && e.clock_rate == clock_rate
            })
        })
    }

    /// The address media goes to: this stream's `c=`, else the session's.
    pub fn address_in(&self, session: &SessionDescription) -> Option<IpAddr> {
        self.connection.or(session.connection)
    }

    /// The direction in force: this stream's attribute, else the session's, else sendrecv
    /// (RFC 8866 §6.7).
    pub fn direction_in(&self, session: &SessionDescription) -> Direction {
        self.direction
            .or(session.direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// Where RTP for this stream goes.
    pub fn rtp_addr_in(&self, session: &SessionDescription) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.address_in(session)?, self.port))
    }

    /// Where RTCP for this stream goes: `a=rtcp` (its address, else the stream's), else the
    /// RTP port + 1 (RFC 3550 §11).
    pub fn rtcp_addr_in(&self, session: &SessionDescription) -> Option<SocketAddr> {
        let rtp = self.address_in(session)?;
        Some(match self.rtcp {
            Some(Rtcp { port, address }) => SocketAddr::new(address.unwrap_or(rtp), port),
            None => SocketAddr::new(rtp, self.port.saturating_add(1)),
        })
    }
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `text` (RFC 4103 real-time text).
    Text,
    /// `application` (BFCP, data channels, ...).
    Application,
    /// `message` (MSRP).
    Message,
    /// `image` (T.38 fax).
    Image,
    /// Anything else, as written.
    Other(String),
}

impl MediaKind {
    /// Reads the media token (case-insensitively: RFC 8866 tokens are registered lowercase
    /// but some stacks shout).
    pub fn parse(token: &str) -> Self {
        const KNOWN: [(&str, MediaKind); 6] = [
            ("audio", MediaKind::Audio),
            ("video", MediaKind::Video),
            ("text", MediaKind::Text),
            ("application", MediaKind::Application),
            ("message", MediaKind::Message),
            ("image", MediaKind::Image),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| token.eq_ignore_ascii_case(name))
            .map_or_else(|| MediaKind::Other(token.to_string()), |(_, kind)| kind)
    }

    /// The SDP token.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Image => "image",
            MediaKind::Other(s) => s,
        }
    }
}

/// The transport protocol of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// `RTP/AVP` (RFC 3551): plain RTP, the only one the relay speaks.
    RtpAvp,
    /// `RTP/AVPF` (RFC 4585): RTP with RTCP feedback.
    RtpAvpf,
    /// `RTP/SAVP` (RFC 3711): SRTP.
    RtpSavp,
    /// `RTP/SAVPF` (RFC 5124): SRTP with RTCP feedback.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVPF` (RFC 5764): DTLS-SRTP, as WebRTC offers.
    UdpTlsRtpSavpf,
    /// `udptl` (T.38).
    Udptl,
    /// Anything else, as written.
    Other(String),
}

impl Protocol {
    /// Reads the proto token (case-insensitively).
    pub fn parse(token: &str) -> Self {
        const KNOWN: [(&str, Protocol); 6] = [
            ("RTP/AVP", Protocol::RtpAvp),
            ("RTP/AVPF", Protocol::RtpAvpf),
            ("RTP/SAVP", Protocol::RtpSavp),
            ("RTP/SAVPF", Protocol::RtpSavpf),
            ("UDP/TLS/RTP/SAVPF", Protocol::UdpTlsRtpSavpf),
            ("udptl", Protocol::Udptl),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| token.eq_ignore_ascii_case(name))
            .map_or_else(|| Protocol::Other(token.to_string()), |(_, p)| p)
    }

    /// The SDP token.
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::RtpAvp => "RTP/AVP",
            Protocol::RtpAvpf => "RTP/AVPF",
            Protocol::RtpSavp => "RTP/SAVP",
            Protocol::RtpSavpf => "RTP/SAVPF",
            Protocol::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Protocol::Udptl => "udptl",
            Protocol::Other(s) => s,
        }
    }

    /// Whether the formats are RTP payload types (every RTP profile, secure or not).
    pub fn is_rtp(&self) -> bool {
        match self {
            Protocol::RtpAvp
            | Protocol::RtpAvpf
            | Protocol::RtpSavp
            | Protocol::RtpSavpf
            | Protocol::UdpTlsRtpSavpf => true,
            Protocol::Udptl => false,
            // TCP/RTP/AVP (RFC 4571) and other RTP framings still carry payload types.
            Protocol::Other(s) => s
                .as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"RTP/")),
        }
    }
}

/// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type, 0..=127.
    pub payload_type: u8,
    /// The encoding name as written (compare case-insensitively, RFC 4855 §3).
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels, when given.
    pub channels: Option<u8>,
}

/// `a=fmtp:<payload type> <parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The payload type, 0..=127.
    pub payload_type: u8,
    /// The format parameters, as written (`0-16` for telephone-event, RFC 4733 §2.4.1).
    pub parameters: String,
}

/// `a=rtcp:<port> [IN <IP4|IP6> <address>]` (RFC 3605 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the stream's.
    pub address: Option<IpAddr>,
}

/// An attribute we do not interpret: `a=<name>` or `a=<name>:<value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name.
    pub name: String,
    /// The value after the first colon, if any.
    pub value: Option<String>,
}
