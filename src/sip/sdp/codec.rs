//! Codecs by name: the RFC 3551 static payload types, and the two the relay speaks.
//!
//! Offers name codecs either by an `a=rtpmap` or, for static payload types, by number
//! alone (`m=audio 4000 RTP/AVP 0` is PCMU with no rtpmap), so negotiation always resolves
//! a payload type to an [`Encoding`] first and compares names, never numbers.

/// What an RTP payload type carries: encoding name, clock rate and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding<'a> {
    /// The encoding name as written (compare case-insensitively, RFC 4855 §3).
    pub name: &'a str,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels, when given (absent means one).
    pub channels: Option<u8>,
}

/// The RFC 3551 §6 static audio payload types (table 4): the ones an offer may use with no
/// rtpmap. Video static types (25..=34) are left out: we only ever resolve audio.
const RFC3551_STATIC_AUDIO: [(u8, &str, u32, Option<u8>); 17] = [
    (0, "PCMU", 8000, Some(1)),
    (3, "GSM", 8000, Some(1)),
    (4, "G723", 8000, Some(1)),
    (5, "DVI4", 8000, Some(1)),
    (6, "DVI4", 16000, Some(1)),
    (7, "LPC", 8000, Some(1)),
    (8, "PCMA", 8000, Some(1)),
    (9, "G722", 8000, Some(1)),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, Some(1)),
    (12, "QCELP", 8000, Some(1)),
    (13, "CN", 8000, Some(1)),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, Some(1)),
    (16, "DVI4", 11025, Some(1)),
    (17, "DVI4", 22050, Some(1)),
    (18, "G729", 8000, Some(1)),
];

/// The RFC 3551 static meaning of `pt`, if it has one.
pub fn static_encoding(pt: u8) -> Option<Encoding<'static>> {
    RFC3551_STATIC_AUDIO
        .iter()
        .find(|(n, ..)| *n == pt)
        .map(|&(_, name, clock_rate, channels)| Encoding {
            name,
            clock_rate,
            channels,
        })
}

/// The audio codecs the relay can carry and transcode between (ITU-T G.711).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl Codec {
    /// Every codec we support, in the order we offer them.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The encoding name (RFC 3551 §4.5.14).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The RFC 3551 static payload type.
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The RTP clock rate (G.711 is 8 kHz, one channel).
    pub const fn clock_rate(self) -> u32 {
        8000
    }

    /// The codec an encoding is, if we support it: the right name at 8000 Hz, mono.
    pub fn from_encoding(e: &Encoding<'_>) -> Option<Codec> {
        if e.clock_rate != 8000 || e.channels.is_some_and(|c| c != 1) {
            return None;
        }
        Codec::ALL
            .into_iter()
            .find(|c| e.name.eq_ignore_ascii_case(c.encoding_name()))
    }
}

/// The RFC 4733 encoding name for DTMF and other telephony events.
pub const TELEPHONE_EVENT: &str = "telephone-event";

/// Whether an encoding is the telephone-event payload at G.711's clock rate: the events
/// must share the audio clock (RFC 4733 §2.1), so telephone-event/48000 next to PCMU is of
/// no use to us.
pub fn is_telephone_event_8000(e: &Encoding<'_>) -> bool {
    e.name.eq_ignore_ascii_case(TELEPHONE_EVENT) && e.clock_rate == 8000
}
