//! RTP and RTCP packet views, and the per-output-stream header rewriter.
//!
//! Why views and not a parsed struct: the relay forwards every packet in the buffer it was
//! received in (DESIGN.md, "Layers": no heap allocation per packet, header rewrites on the
//! same buffer). [`RtpPacket`] validates a datagram once (RFC 3550 §5.1 and the checks of
//! Appendix A.1) and then reads and writes the header fields at their fixed offsets in
//! place; nothing is copied and nothing is allocated.
//!
//! With rtcp-mux (RFC 5761) RTP and RTCP share one port, so [`classify_rfc5761`] tells them
//! apart before either view is built. RTCP is relayed too; [`RtcpPacket`] and
//! [`rewrite_rtcp_ssrcs_rfc3550`] give it the same SSRC the rewritten RTP carries, so the far
//! end can tie the two together.
//!
//! [`StreamRewriter`] owns the header of one *output* stream. What feeds a leg changes during
//! a call (a prompt, then the bridged party, then hold music, ...) and each feeder has its
//! own SSRC, sequence space and timestamp space. Passing those through would look to the far
//! end like a new stream or a huge jump and many jitter buffers glitch or reset on it, so the
//! rewriter presents a single continuous stream: one SSRC, sequence numbers that go on from
//! the last one sent, and timestamps that advance by the time that really passed
//! (RFC 3550 §5.1, RFC 7160 on clock continuity). It also maps payload types between the
//! legs' SDP (PCMU 0 in, PCMA 8 out when transcoding; telephone-event 101 in, 96 out).
//!
//! Everything here is pure: no I/O, no clock reads (time comes in as an argument), no
//! allocation.

use std::fmt;
use std::time::{Duration, Instant};

/// The only RTP/RTCP version in use (RFC 3550 §5.1: "V=2").
pub const RTP_VERSION_RFC3550: u8 = 2;

/// Fixed RTP header length before the CSRC list (RFC 3550 §5.1).
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// Static payload type of G.711 μ-law (RFC 3551 §6, table 4).
pub const PT_PCMU_RFC3551: u8 = 0;

/// Static payload type of G.711 A-law (RFC 3551 §6, table 4).
pub const PT_PCMA_RFC3551: u8 = 8;

/// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611 §2).
pub const RTCP_SR: u8 = 200;
/// Receiver report.
pub const RTCP_RR: u8 = 201;
/// Source description.
pub const RTCP_SDES: u8 = 202;
/// Goodbye.
pub const RTCP_BYE: u8 = 203;
/// Application-defined.
pub const RTCP_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585).
pub const RTCP_RTPFB_RFC4585: u8 = 205;
/// Payload-specific feedback (RFC 4585).
pub const RTCP_PSFB_RFC4585: u8 = 206;
/// Extended reports (RFC 3611).
pub const RTCP_XR_RFC3611: u8 = 207;

// ---------------------------------------------------------------------------------------
// Demultiplexing
// ---------------------------------------------------------------------------------------

/// What a datagram arriving on an RTP port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP (not yet validated: build an [`RtpPacket`]).
    Rtp,
    /// RTCP multiplexed on the RTP port (not yet validated: use [`RtcpPacket`]).
    Rtcp,
    /// Anything else: STUN, DTLS, TURN channel data, or noise. The relay drops it.
    Other,
}

/// Tell RTP from RTCP on a shared port.
///
/// RFC 7983 §7 first: only a first byte in 128..=191 (version bits `10`) can be RTP or
/// RTCP; 0..=3 is STUN, 20..=63 DTLS, 64..=79 TURN channels. Then RFC 5761 §4: RTCP packet
/// types 192..=223 show up in the RTP marker+PT byte as PT 64..=95, which is why payload
/// types in that range must not be used for RTP on a muxed port.
pub fn classify_rfc5761(datagram: &[u8]) -> PacketKind {
    match datagram {
        [first, second, ..] if (128..=191).contains(first) => {
            if (64..=95).contains(&(second & 0x7f)) {
                PacketKind::Rtcp
            } else {
                PacketKind::Rtp
            }
        }
        _ => PacketKind::Other,
    }
}

// ---------------------------------------------------------------------------------------
// RTP
// ---------------------------------------------------------------------------------------

/// Why a datagram is not a valid RTP packet (RFC 3550 Appendix A.1 checks).
///
/// Small and `Copy`, and it keeps none of the bytes: a peer cannot make our logs grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer than the 12 bytes of the fixed header.
    #[error("shorter than the 12-byte RTP header")]
    TooShort,
    /// The version bits are not 2.
    #[error("RTP version is not 2")]
    Version,
    /// The CSRC count promises more identifiers than the packet holds.
    #[error("RTP CSRC list runs past the end of the packet")]
    Csrc,
    /// The X bit is set but the extension header or its data runs past the end.
    #[error("RTP header extension runs past the end of the packet")]
    Extension,
    /// The P bit is set but the padding count is 0 or eats into the header.
    #[error("RTP padding count is invalid")]
    Padding,
}

impl RtpError {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        match self {
            RtpError::TooShort => "too_short",
            RtpError::Version => "version",
            RtpError::Csrc => "csrc",
            RtpError::Extension => "extension",
            RtpError::Padding => "padding",
        }
    }
}

/// A validated RTP packet over a byte buffer (`&[u8]` to read, `&mut [u8]` to rewrite).
///
/// The buffer is exactly the datagram. Construction checks everything that later reads rely
/// on, so the accessors neither fail nor panic.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |V=2|P|X|  CC   |M|     PT      |       sequence number         |
/// |                           timestamp                           |
/// |           synchronization source (SSRC) identifier            |
/// |            contributing source (CSRC) identifiers  (CC x)     |
/// |  profile-defined (if X)       |           length (words)      |
/// |                    extension data ...                         |
/// |                    payload ...        | padding ... | P count |
/// ```
#[derive(Clone, Copy)]
pub struct RtpPacket<B> {
    buf: B,
    /// Fixed header + CSRC list + extension: where the payload starts.
    header_len: usize,
    /// Trailing padding bytes, including the count byte itself (0 without the P bit).
    padding_len: usize,
}

impl<B: AsRef<[u8]>> RtpPacket<B> {
    /// Validate `buf` as one RTP packet (RFC 3550 §5.1, §5.3.1, Appendix A.1).
    ///
    /// Payload types are not checked here: [`classify_rfc5761`] keeps RTCP out, and which
    /// payload types are acceptable is the SDP's business ([`PayloadMap`]).
    pub fn new(buf: B) -> Result<Self, RtpError> {
        let b = buf.as_ref();
        if b.len() < RTP_FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        if b[0] >> 6 != RTP_VERSION_RFC3550 {
            return Err(RtpError::Version);
        }
        let csrc_count = usize::from(b[0] & 0x0f);
        let mut header_len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
        if header_len > b.len() {
            return Err(RtpError::Csrc);
        }
        if b[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1: 16 bits profile-defined, 16 bits length in 32-bit words,
            // not counting this 4-byte extension header.
            let words = b
                .get(header_len + 2..header_len + 4)
                .ok_or(RtpError::Extension)?;
            let words = usize::from(u16::from_be_bytes([words[0], words[1]]));
            header_len += 4 + 4 * words;
            if header_len > b.len() {
                return Err(RtpError::Extension);
            }
        }
        let padding_len = if b[0] & 0x20 != 0 {
            // The last octet counts the padding, itself included, so 0 is impossible
            // (Appendix A.1 rejects it too), and padding may not eat into the header.
            let count = usize::from(b[b.len() - 1]);
            if count == 0 || header_len + count > b.len() {
                return Err(RtpError::Padding);
            }
            count
        } else {
            0
        };
        Ok(RtpPacket {
            buf,
            header_len,
            padding_len,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    fn be16(&self, at: usize) -> u16 {
        let b = self.bytes();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn be32(&self, at: usize) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The P bit: the packet ends in padding.
    pub fn has_padding(&self) -> bool {
        self.padding_len != 0
    }

    /// The X bit: a header extension follows the CSRC list.
    pub fn has_extension(&self) -> bool {
        self.bytes()[0] & 0x10 != 0
    }

    /// CC: how many CSRC identifiers follow the fixed header.
    pub fn csrc_count(&self) -> u8 {
        self.bytes()[0] & 0x0f
    }

    /// The `i`th contributing source, if there is one.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        (i < usize::from(self.csrc_count())).then(|| self.be32(RTP_FIXED_HEADER_LEN + 4 * i))
    }

    /// The M bit (RFC 3551 §4.1: first packet of a talkspurt; RFC 4733 §2.5.1.3: first
    /// packet of an event).
    pub fn marker(&self) -> bool {
        self.bytes()[1] & 0x80 != 0
    }

    /// PT, 0..=127.
    pub fn payload_type(&self) -> u8 {
        self.bytes()[1] & 0x7f
    }

    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        self.be16(2)
    }

    /// The 32-bit media timestamp, in the payload format's clock rate.
    pub fn timestamp(&self) -> u32 {
        self.be32(4)
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        self.be32(8)
    }

    /// The header extension's profile-defined field and its data (RFC 3550 §5.3.1).
    pub fn extension(&self) -> Option<(u16, &[u8])> {
        if !self.has_extension() {
            return None;
        }
        let at = RTP_FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        Some((self.be16(at), &self.bytes()[at + 4..self.header_len]))
    }

    /// Offset of the first payload byte: fixed header, CSRCs and extension.
    pub fn payload_offset(&self) -> usize {
        self.header_len
    }

    /// How many bytes of padding end the packet (count byte included), 0 without P.
    pub fn padding_len(&self) -> usize {
        self.padding_len
    }

    /// The payload, without header or padding.
    pub fn payload(&self) -> &[u8] {
        let b = self.bytes();
        &b[self.header_len..b.len() - self.padding_len]
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }

    /// The buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<B> {
    /// Set or clear the M bit, keeping the payload type.
    pub fn set_marker(&mut self, marker: bool) {
        let b = self.buf.as_mut();
        b[1] = (b[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Set PT, keeping the M bit. Only the low 7 bits of `pt` are used: [`PayloadMap`]
    /// refuses larger values when it is built, so the hot path needs no check.
    pub fn set_payload_type(&mut self, pt: u8) {
        let b = self.buf.as_mut();
        b[1] = (b[1] & 0x80) | (pt & 0x7f);
    }

    /// Write the sequence number.
    pub fn set_sequence(&mut self, seq: u16) {
        self.buf.as_mut()[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Write the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf.as_mut()[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Write the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf.as_mut()[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// The payload, writable in place (PCMU↔PCMA transcoding keeps the length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, pad) = (self.header_len, self.padding_len);
        let b = self.buf.as_mut();
        let end = b.len() - pad;
        &mut b[start..end]
    }
}

impl<B: AsRef<[u8]>> fmt::Debug for RtpPacket<B> {
    /// Header fields only: payloads are user audio and do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtpPacket")
            .field("pt", &self.payload_type())
            .field("marker", &self.marker())
            .field("seq", &self.sequence())
            .field("ts", &self.timestamp())
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// RTCP
// ---------------------------------------------------------------------------------------

/// Why bytes are not valid RTCP (RFC 3550 §6.4 and the Appendix A.2 checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer than the 4-byte common header, or nothing at all.
    #[error("shorter than the RTCP header")]
    TooShort,
    /// The version bits are not 2.
    #[error("RTCP version is not 2")]
    Version,
    /// A length field runs past the end of the datagram.
    #[error("RTCP length field runs past the end of the datagram")]
    Length,
    /// Padding on a packet that is not the last of the compound, or a bad padding count.
    #[error("RTCP padding is invalid")]
    Padding,
}

impl RtcpError {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        match self {
            RtcpError::TooShort => "too_short",
            RtcpError::Version => "version",
            RtcpError::Length => "length",
            RtcpError::Padding => "padding",
        }
    }
}

/// One RTCP packet: the first packet of the buffer it is built over (a compound packet is
/// several of these back to back; see [`rtcp_compound_rfc3550`]).
///
/// ```text
/// |V=2|P|  count  |      PT       |    length (words - 1)         |
/// |                 SSRC of sender / first chunk                  |
/// ```
#[derive(Clone, Copy)]
pub struct RtcpPacket<B> {
    buf: B,
    /// Bytes of this packet: (length + 1) * 4, never more than the buffer.
    len: usize,
}

impl<B: AsRef<[u8]>> RtcpPacket<B> {
    /// Validate the first RTCP packet in `buf`. Bytes after it are left alone (they are the
    /// rest of a compound).
    pub fn new(buf: B) -> Result<Self, RtcpError> {
        let b = buf.as_ref();
        if b.len() < 4 {
            return Err(RtcpError::TooShort);
        }
        if b[0] >> 6 != RTP_VERSION_RFC3550 {
            return Err(RtcpError::Version);
        }
        let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
        if len > b.len() {
            return Err(RtcpError::Length);
        }
        if b[0] & 0x20 != 0 {
            // As for RTP: the last octet counts the padding, itself included, and the
            // padding cannot reach back into the 4-byte header.
            let count = usize::from(b[len - 1]);
            if count == 0 || count > len - 4 {
                return Err(RtcpError::Padding);
            }
        }
        Ok(RtcpPacket { buf, len })
    }

    fn bytes(&self) -> &[u8] {
        &self.buf.as_ref()[..self.len]
    }

    /// PT: [`RTCP_SR`], [`RTCP_RR`], ...
    pub fn packet_type(&self) -> u8 {
        self.bytes()[1]
    }

    /// The 5-bit count field (report blocks for SR/RR, chunks for SDES, sources for BYE,
    /// the feedback message type for RTPFB/PSFB).
    pub fn count(&self) -> u8 {
        self.bytes()[0] & 0x1f
    }

    /// The P bit.
    pub fn has_padding(&self) -> bool {
        self.bytes()[0] & 0x20 != 0
    }

    /// This packet's length in bytes, header included.
    pub fn packet_len(&self) -> usize {
        self.len
    }

    /// The SSRC in the word after the header: the sender for SR, RR, APP, XR and feedback,
    /// the first chunk for SDES, the first source for BYE. `None` when the packet has no
    /// such word (a header-only packet, or SDES/BYE with a count of 0).
    pub fn ssrc(&self) -> Option<u32> {
        let b = self.bytes();
        if !rtcp_has_first_ssrc(b[1], b[0] & 0x1f, self.len) {
            return None;
        }
        Some(u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
    }

    /// This packet's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtcpPacket<B> {
    /// Overwrite the SSRC that [`RtcpPacket::ssrc`] reads. Returns whether there was one.
    pub fn set_ssrc(&mut self, ssrc: u32) -> bool {
        let (pt, count) = {
            let b = self.bytes();
            (b[1], b[0] & 0x1f)
        };
        if !rtcp_has_first_ssrc(pt, count, self.len) {
            return false;
        }
        self.buf.as_mut()[4..8].copy_from_slice(&ssrc.to_be_bytes());
        true
    }
}

impl<B: AsRef<[u8]>> fmt::Debug for RtcpPacket<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtcpPacket")
            .field("pt", &self.packet_type())
            .field("count", &self.count())
            .field("len", &self.len)
            .field("ssrc", &self.ssrc())
            .finish()
    }
}

/// Whether an RTCP packet carries an SSRC in bytes 4..8. SDES and BYE start with their list
/// of chunks/sources, which may be empty; every other type starts with the sender's SSRC.
fn rtcp_has_first_ssrc(pt: u8, count: u8, len: usize) -> bool {
    len >= 8 && !(matches!(pt, RTCP_SDES | RTCP_BYE) && count == 0)
}

/// The packets of a compound RTCP datagram, in order.
///
/// Yields `Err` once and then stops at the first packet that does not validate, or when a
/// packet other than the last has padding (RFC 3550 Appendix A.2: only the last packet of a
/// compound may be padded). Unlike A.2 it does not insist that the compound start with
/// SR or RR: reduced-size RTCP (RFC 5506) sends lone feedback packets and must be relayed.
pub fn rtcp_compound_rfc3550(datagram: &[u8]) -> RtcpCompound<'_> {
    RtcpCompound {
        rest: datagram,
        started: false,
    }
}

/// Iterator from [`rtcp_compound_rfc3550`].
#[derive(Debug, Clone)]
pub struct RtcpCompound<'a> {
    rest: &'a [u8],
    started: bool,
}

impl<'a> Iterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacket<&'a [u8]>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            // An empty datagram is not a compound with no packets.
            return (!std::mem::replace(&mut self.started, true))
                .then_some(Err(RtcpError::TooShort));
        }
        self.started = true;
        let rest = self.rest;
        match RtcpPacket::new(rest) {
            Ok(p) => {
                let (this, after) = rest.split_at(p.len);
                self.rest = after;
                if p.has_padding() && !after.is_empty() {
                    self.rest = &[];
                    return Some(Err(RtcpError::Padding));
                }
                Some(Ok(RtcpPacket {
                    buf: this,
                    len: p.len,
                }))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Validate a whole compound RTCP datagram; returns how many packets it holds.
pub fn validate_rtcp_compound_rfc3550(datagram: &[u8]) -> Result<usize, RtcpError> {
    let mut n = 0;
    for p in rtcp_compound_rfc3550(datagram) {
        p?;
        n += 1;
    }
    Ok(n)
}

/// Rewrite the SSRCs of a compound RTCP datagram in place so it can be relayed to the other
/// leg; returns the number of packets.
///
/// - Each packet's own SSRC ([`RtcpPacket::ssrc`]) becomes `sender_ssrc`: the SSRC the
///   [`StreamRewriter`] of the same direction puts on the RTP.
/// - The SSRCs a packet *reports on* (SR/RR report blocks, the media source of RTPFB/PSFB
///   feedback) go through `map_reported`; `None` leaves one as it is. Those name the stream
///   the reporter received, i.e. the *other* direction's rewritten SSRC, which the relay
///   maps back to what the original sender used.
///
/// The whole datagram is validated first, so a bad one is refused untouched rather than
/// half rewritten. Deliberately minimal: further SDES chunks and BYE sources (only mixers
/// send them), report blocks inside XR, and the SR's RTP timestamp (still in the source's
/// timeline) are left as they are.
pub fn rewrite_rtcp_ssrcs_rfc3550(
    datagram: &mut [u8],
    sender_ssrc: u32,
    mut map_reported: impl FnMut(u32) -> Option<u32>,
) -> Result<usize, RtcpError> {
    let packets = validate_rtcp_compound_rfc3550(datagram)?;
    let mut at = 0;
    while at < datagram.len() {
        let p = &mut datagram[at..];
        let len = (usize::from(u16::from_be_bytes([p[2], p[3]])) + 1) * 4;
        let p = &mut p[..len];
        let (pt, count) = (p[1], p[0] & 0x1f);
        if rtcp_has_first_ssrc(pt, count, len) {
            p[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
        }
        // Where the reported-on SSRCs sit: report blocks (24 bytes each, SSRC first) after
        // the sender info in SR and right after the sender SSRC in RR; the media source
        // SSRC after the packet sender in feedback messages (RFC 4585 §6.1).
        let (first, stride, n) = match pt {
            RTCP_SR => (28, 24, usize::from(count)),
            RTCP_RR => (8, 24, usize::from(count)),
            RTCP_RTPFB_RFC4585 | RTCP_PSFB_RFC4585 => (8, 0, 1),
            _ => (0, 0, 0),
        };
        for i in 0..n {
            let off = first + stride * i;
            // A count that promises more blocks than the length holds: rewrite what is there.
            let Some(word) = p.get_mut(off..off + 4) else {
                break;
            };
            let old = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            if let Some(new) = map_reported(old) {
                word.copy_from_slice(&new.to_be_bytes());
            }
        }
        at += len;
    }
    Ok(packets)
}

// ---------------------------------------------------------------------------------------
// Payload type mapping
// ---------------------------------------------------------------------------------------

/// What the relay does with a packet's payload after the rewriter mapped its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadAction {
    /// The payload goes out unchanged (same codec on both legs, comfort noise, ...).
    Forward,
    /// G.711 μ-law in, A-law out: the relay converts the payload in place (same length).
    PcmuToPcma,
    /// G.711 A-law in, μ-law out.
    PcmaToPcmu,
    /// RFC 4733 telephone-event: forwarded unchanged. Marked apart because its M bit means
    /// "a new event starts", so the rewriter must not set it on a source switch.
    TelephoneEvent,
}

/// Where one input payload type goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadMapping {
    /// The payload type the output leg negotiated for it.
    pub out_pt: u8,
    pub action: PayloadAction,
}

/// A payload type outside RTP's 7 bits was given to [`PayloadMap::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload type {0} is outside 0..=127")]
pub struct PayloadTypeOutOfRange(pub u8);

/// Payload types from one source leg to one output leg, built from the two SDP answers.
///
/// A flat table indexed by PT (a few hundred bytes, `Copy`): one array read per packet, no
/// hashing, no allocation. A payload type that is not in the map was not negotiated on both
/// sides and is dropped rather than forwarded to a peer that cannot decode it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadMap {
    by_in_pt: [Option<PayloadMapping>; 128],
}

impl PayloadMap {
    /// A map that forwards nothing.
    pub const fn new() -> Self {
        PayloadMap {
            by_in_pt: [None; 128],
        }
    }

    /// Send input PT `in_pt` out as `out_pt`, doing `action` to the payload. Replaces an
    /// earlier mapping of `in_pt`.
    pub fn insert(
        &mut self,
        in_pt: u8,
        out_pt: u8,
        action: PayloadAction,
    ) -> Result<(), PayloadTypeOutOfRange> {
        for pt in [in_pt, out_pt] {
            if pt > 127 {
                return Err(PayloadTypeOutOfRange(pt));
            }
        }
        self.by_in_pt[usize::from(in_pt)] = Some(PayloadMapping { out_pt, action });
        Ok(())
    }

    /// Stop forwarding `in_pt`.
    pub fn remove(&mut self, in_pt: u8) {
        if let Some(slot) = self.by_in_pt.get_mut(usize::from(in_pt)) {
            *slot = None;
        }
    }

    /// Where `in_pt` goes, if anywhere.
    pub fn get(&self, in_pt: u8) -> Option<PayloadMapping> {
        self.by_in_pt.get(usize::from(in_pt)).copied().flatten()
    }
}

impl Default for PayloadMap {
    fn default() -> Self {
        PayloadMap::new()
    }
}

impl fmt::Debug for PayloadMap {
    /// Only the mapped entries, not 128 lines of `None`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.by_in_pt
                    .iter()
                    .enumerate()
                    .filter_map(|(pt, m)| m.map(|m| (pt, m))),
            )
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Stream rewriting
// ---------------------------------------------------------------------------------------

/// Which feeder a packet comes from, as the relay names it (a leg, a player, ...). Together
/// with the packet's SSRC it decides when the source of an output stream changed: a new
/// `SourceId`, or a new SSRC from the same one (a phone restarting its stream), is a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub u32);

/// Why [`StreamRewriter::rewrite`] refused a packet. The packet is left untouched: the
/// relay drops it and counts it by [`RewriteDrop::class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteDrop {
    /// The payload type is not mapped to the output leg (not negotiated on both sides).
    #[error("payload type {0} is not mapped to the output leg")]
    UnmappedPayloadType(u8),
    /// A late packet of the current source that is older than where it joined the output
    /// stream: its sequence number would repeat one the previous source already used.
    #[error("packet predates the current source's start in the output stream")]
    Stale,
    /// The source's sequence number jumped far away (more than [`MAX_DROPOUT_RFC3550`]
    /// ahead or [`MAX_MISORDER_RFC3550`] behind). Dropped on probation: if the next packet
    /// follows it, the source restarted its numbering and the stream is rebased as on a
    /// source switch (RFC 3550 Appendix A.1, `bad_seq`).
    #[error("sequence number jumped; on probation")]
    SequenceJump,
}

impl RewriteDrop {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        match self {
            RewriteDrop::UnmappedPayloadType(_) => "unmapped_pt",
            RewriteDrop::Stale => "stale",
            RewriteDrop::SequenceJump => "seq_jump",
        }
    }
}

/// RFC 3550 Appendix A.1: a sequence number up to this far ahead is the same stream with
/// some loss.
pub const MAX_DROPOUT_RFC3550: u16 = 3000;

/// RFC 3550 Appendix A.1: a sequence number up to this far behind is a reordered (or
/// duplicated) packet of the same stream.
pub const MAX_MISORDER_RFC3550: u16 = 100;

/// `a` comes after `b` in RFC 1982 serial-number arithmetic on 16 bits (RFC 3550 sequence
/// numbers wrap, so "after" means "less than half the space ahead").
fn seq_after_rfc1982(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// The packet with the highest sequence number the rewriter has sent so far.
#[derive(Debug, Clone, Copy)]
struct Emitted {
    seq: u16,
    ts: u32,
    at: Instant,
    /// Audio (not a telephone-event): only audio-to-audio steps teach the frame length.
    audio: bool,
}

/// The source currently feeding the output, and how its numbers map onto the output's.
#[derive(Debug, Clone, Copy)]
struct Feed {
    source: SourceId,
    in_ssrc: u32,
    /// out = in + delta, wrapping.
    seq_delta: u16,
    ts_delta: u32,
    /// The last output sequence number before this source joined; late packets of this
    /// source that would not come after it are stale. Cleared once the stream is
    /// [`MAX_MISORDER_RFC3550`] past it: anything later than that is a jump, not late.
    floor: Option<u16>,
    /// After a [`RewriteDrop::SequenceJump`]: the input sequence number that would confirm
    /// the source restarted its numbering.
    restart_at: Option<u16>,
}

/// Keeps one output stream's SSRC, sequence number and timestamp continuous while what
/// feeds it changes, and maps payload types into the output leg's numbering.
///
/// Within one source the mapping is a fixed offset, so the source's own gaps (loss) and
/// reordering pass through to the far end unchanged, which is what its jitter buffer and
/// loss statistics need. On a source switch (see [`SourceId`]) the next packet gets
/// `last_seq + 1` and `last_ts + elapsed`, where `elapsed` is the time since the last
/// packet went out, in samples, but at least one frame (the timestamp step learned from
/// the audio sent so far): a switch inside a 20 ms frame must not produce timestamps that
/// overlap the previous packet's audio. The first packet after a switch gets the M bit
/// (RFC 3551 §4.1: the receiver may resynchronize its playout there), except a
/// telephone-event, whose M bit would announce a new digit.
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    ssrc: u32,
    clock_rate: u32,
    initial_seq: u16,
    initial_ts: u32,
    last: Option<Emitted>,
    feed: Option<Feed>,
    /// Learned timestamp step between consecutive audio packets (0 until seen).
    frame_samples: u32,
}

impl StreamRewriter {
    /// A rewriter for an output stream with SSRC `ssrc` whose first packet gets
    /// `initial_seq` and `initial_ts`. RFC 3550 §5.1 wants all three random; this module
    /// has no randomness of its own, so the caller draws them. `clock_rate` is the output's
    /// RTP clock in Hz (8000 for G.711 and its telephone-event).
    pub fn new(ssrc: u32, initial_seq: u16, initial_ts: u32, clock_rate: u32) -> Self {
        StreamRewriter {
            ssrc,
            clock_rate,
            initial_seq,
            initial_ts,
            last: None,
            feed: None,
            frame_samples: 0,
        }
    }

    /// The output SSRC (also what RTCP of this direction gets, see
    /// [`rewrite_rtcp_ssrcs_rfc3550`]).
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The highest sequence number sent, once a packet went out.
    pub fn last_sequence(&self) -> Option<u16> {
        self.last.map(|l| l.seq)
    }

    /// The timestamp of that packet.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last.map(|l| l.ts)
    }

    /// Treat the next packet as a source switch even if it comes from the current source
    /// and SSRC (e.g. the relay knows the sender restarted after a re-INVITE).
    pub fn reset_source(&mut self) {
        self.feed = None;
    }

    /// Rewrite `pkt` in place for the output stream: SSRC, sequence number, timestamp,
    /// payload type, and the M bit on a source switch. `source` names the feeder it came
    /// from, `map` is that feeder's payload map towards this output, and `now` is when the
    /// relay handles the packet (a monotonic time passed in; this reads no clock). The
    /// rewriter remembers when it last sent, so a switch's elapsed time is `now` minus that.
    ///
    /// On success returns the mapping used, so the relay knows whether to transcode the
    /// payload. On `Err` the packet is untouched (and the output stream is unchanged; only
    /// a [`RewriteDrop::SequenceJump`] notes the jump for its probation).
    pub fn rewrite<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        source: SourceId,
        map: &PayloadMap,
        pkt: &mut RtpPacket<B>,
        now: Instant,
    ) -> Result<PayloadMapping, RewriteDrop> {
        let in_pt = pkt.payload_type();
        let mapping = map
            .get(in_pt)
            .ok_or(RewriteDrop::UnmappedPayloadType(in_pt))?;
        let (in_seq, in_ts, in_ssrc) = (pkt.sequence(), pkt.timestamp(), pkt.ssrc());
        let audio = mapping.action != PayloadAction::TelephoneEvent;

        // Keep the current mapping, or decide to rebase (a switch or a confirmed restart).
        let current = self
            .feed
            .filter(|f| f.source == source && f.in_ssrc == in_ssrc)
            .zip(self.last);
        let kept = match current {
            None => None,
            Some((feed, last)) => {
                let out_seq = in_seq.wrapping_add(feed.seq_delta);
                let ahead = out_seq.wrapping_sub(last.seq);
                let behind = last.seq.wrapping_sub(out_seq);
                if (1..MAX_DROPOUT_RFC3550).contains(&ahead) {
                    Some(feed)
                } else if behind < MAX_MISORDER_RFC3550 {
                    if feed
                        .floor
                        .is_some_and(|floor| !seq_after_rfc1982(out_seq, floor))
                    {
                        return Err(RewriteDrop::Stale);
                    }
                    Some(feed)
                } else if feed.restart_at == Some(in_seq) {
                    None
                } else {
                    self.feed = Some(Feed {
                        restart_at: Some(in_seq.wrapping_add(1)),
                        ..feed
                    });
                    return Err(RewriteDrop::SequenceJump);
                }
            }
        };
        let switched = kept.is_none();
        let mut feed = kept.unwrap_or_else(|| {
            // RFC 3550 §5.1: the sequence number goes on by one; the timestamp by the time
            // that passed, so the far end's playout clock stays true.
            let (out_seq, out_ts) = match self.last {
                None => (self.initial_seq, self.initial_ts),
                Some(last) => (
                    last.seq.wrapping_add(1),
                    last.ts.wrapping_add(self.switch_advance(now, last.at)),
                ),
            };
            Feed {
                source,
                in_ssrc,
                seq_delta: out_seq.wrapping_sub(in_seq),
                ts_delta: out_ts.wrapping_sub(in_ts),
                floor: self.last.map(|l| l.seq),
                restart_at: None,
            }
        });

        let out_seq = in_seq.wrapping_add(feed.seq_delta);
        let out_ts = in_ts.wrapping_add(feed.ts_delta);
        pkt.set_ssrc(self.ssrc);
        pkt.set_sequence(out_seq);
        pkt.set_timestamp(out_ts);
        pkt.set_payload_type(mapping.out_pt);
        if switched && audio {
            pkt.set_marker(true);
        }

        // Move the high-water mark; a late packet of the source leaves it where it is.
        let advances = self
            .last
            .is_none_or(|last| seq_after_rfc1982(out_seq, last.seq));
        if advances {
            if let Some(last) = self.last {
                let step = out_ts.wrapping_sub(last.ts);
                let in_order = out_seq == last.seq.wrapping_add(1);
                // A step over 200 ms is a silence gap, not a frame length: no telephony
                // codec packs frames that long.
                if !switched
                    && in_order
                    && audio
                    && last.audio
                    && (1..=self.clock_rate / 5).contains(&step)
                {
                    self.frame_samples = step;
                }
            }
            if feed
                .floor
                .is_some_and(|floor| out_seq.wrapping_sub(floor) >= MAX_MISORDER_RFC3550)
            {
                feed.floor = None;
            }
            self.last = Some(Emitted {
                seq: out_seq,
                ts: out_ts,
                at: now,
                audio,
            });
        }
        self.feed = Some(feed);
        Ok(mapping)
    }

    /// How far the timestamp moves on a source switch: the elapsed time in samples, at
    /// least one frame, and at least 1 so that it always moves forward.
    fn switch_advance(&self, now: Instant, last_at: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(last_at);
        samples_in(elapsed, self.clock_rate)
            .max(self.frame_samples)
            .max(1)
    }
}

/// `elapsed` in samples of a `clock_rate` Hz clock, modulo 2^32 like RTP timestamps.
fn samples_in(elapsed: Duration, clock_rate: u32) -> u32 {
    let samples = elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
    // Truncation is the RTP timestamp's own modulo-2^32 arithmetic (and 2^32 samples at
    // 8 kHz is six days of silence).
    (samples & u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The epoch of virtual time: the only clock read in these tests. Every other instant
    /// is this plus a `Duration`.
    #[allow(
        clippy::disallowed_methods,
        reason = "the virtual clock's epoch; never compared to real time"
    )]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A plain RTP packet: no CSRC, no extension, no padding.
    fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// The map of a PCMU+telephone-event (101) leg feeding a PCMA+telephone-event (96) leg.
    fn transcoding_map() -> PayloadMap {
        let mut m = PayloadMap::new();
        m.insert(PT_PCMU_RFC3551, PT_PCMA_RFC3551, PayloadAction::PcmuToPcma)
            .unwrap();
        m.insert(101, 96, PayloadAction::TelephoneEvent).unwrap();
        m
    }

    fn pcmu_map() -> PayloadMap {
        let mut m = PayloadMap::new();
        m.insert(0, 0, PayloadAction::Forward).unwrap();
        m.insert(101, 101, PayloadAction::TelephoneEvent).unwrap();
        m
    }

    // ---- RTP view -------------------------------------------------------------------

    #[test]
    fn rtp_reads_the_fixed_header() {
        let bytes = rtp(8, true, 0xbeef, 0x0102_0304, 0xdead_cafe, &[1, 2, 3]);
        let p = RtpPacket::new(&bytes[..]).unwrap();
        assert_eq!(p.payload_type(), 8);
        assert!(p.marker());
        assert_eq!(p.sequence(), 0xbeef);
        assert_eq!(p.timestamp(), 0x0102_0304);
        assert_eq!(p.ssrc(), 0xdead_cafe);
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.csrc(0), None);
        assert!(!p.has_extension() && !p.has_padding());
        assert_eq!(p.extension(), None);
        assert_eq!(p.payload_offset(), 12);
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(p.as_bytes(), &bytes[..]);
        // A keep-alive with no payload is valid RTP.
        let empty = rtp(0, false, 1, 2, 3, &[]);
        assert_eq!(RtpPacket::new(&empty[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn rtp_csrc_extension_and_padding() {
        // V=2 P=1 X=1 CC=2.
        let mut b = vec![0x80 | 0x20 | 0x10 | 2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[0, 0, 0, 0x11, 0, 0, 0, 0x22]); // CSRCs
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]); // 1-word extension
        b.extend_from_slice(&[9, 9, 9]); // payload
        b.extend_from_slice(&[0, 0, 3]); // padding, count 3
        let p = RtpPacket::new(&b[..]).unwrap();
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(
            (p.csrc(0), p.csrc(1), p.csrc(2)),
            (Some(0x11), Some(0x22), None)
        );
        assert_eq!(p.extension(), Some((0xbede, &[0xaa, 0xbb, 0xcc, 0xdd][..])));
        assert_eq!(p.payload_offset(), 28);
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.payload(), &[9, 9, 9]);
    }

    #[test]
    fn rtp_rejects_malformed_packets() {
        let ok = rtp(0, false, 1, 2, 3, &[0; 4]);
        assert_eq!(RtpPacket::new(&ok[..11]).unwrap_err(), RtpError::TooShort);
        let mut v1 = ok.clone();
        v1[0] = 0x40;
        assert_eq!(RtpPacket::new(&v1[..]).unwrap_err(), RtpError::Version);
        let mut cc = ok.clone();
        cc[0] = 0x82; // two CSRCs promised, four bytes present
        assert_eq!(RtpPacket::new(&cc[..]).unwrap_err(), RtpError::Csrc);
        let mut x = rtp(0, false, 1, 2, 3, &[0, 0]);
        x[0] |= 0x10; // extension header needs 4 bytes, 2 present
        assert_eq!(RtpPacket::new(&x[..]).unwrap_err(), RtpError::Extension);
        let mut x = rtp(0, false, 1, 2, 3, &[0, 0, 0, 2, 0, 0, 0, 0]);
        x[0] |= 0x10; // 2 words promised, 1 present
        assert_eq!(RtpPacket::new(&x[..]).unwrap_err(), RtpError::Extension);
        let mut pad0 = rtp(0, false, 1, 2, 3, &[1, 0]);
        pad0[0] |= 0x20;
        assert_eq!(RtpPacket::new(&pad0[..]).unwrap_err(), RtpError::Padding);
        let mut pad_big = rtp(0, false, 1, 2, 3, &[1, 3]);
        pad_big[0] |= 0x20; // 3 bytes of padding in a 2-byte payload
        assert_eq!(RtpPacket::new(&pad_big[..]).unwrap_err(), RtpError::Padding);
        let mut pad_all = rtp(0, false, 1, 2, 3, &[1, 2]);
        pad_all[0] |= 0x20; // the whole payload is padding: allowed
        assert_eq!(
            RtpPacket::new(&pad_all[..]).unwrap().payload(),
            &[] as &[u8]
        );
        assert_eq!(RtpError::Padding.class(), "padding");
    }

    #[test]
    fn rtp_writes_in_place() {
        let mut bytes = rtp(0, true, 1, 2, 3, &[0x55; 4]);
        let mut p = RtpPacket::new(&mut bytes[..]).unwrap();
        p.set_payload_type(8);
        assert!(p.marker(), "setting PT keeps M");
        p.set_marker(false);
        assert_eq!(p.payload_type(), 8, "clearing M keeps PT");
        p.set_sequence(0xffff);
        p.set_timestamp(0xffff_fffe);
        p.set_ssrc(0x0a0b_0c0d);
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            bytes,
            [
                0x80, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4
            ]
        );
    }

    #[test]
    fn rtp_debug_hides_the_payload() {
        let bytes = rtp(0, false, 7, 8, 9, &[0x42; 3]);
        let s = format!("{:?}", RtpPacket::new(&bytes[..]).unwrap());
        assert!(s.contains("seq: 7") && s.contains("payload_len: 3"), "{s}");
    }

    // ---- demux ----------------------------------------------------------------------

    #[test]
    fn rfc5761_demux() {
        assert_eq!(
            classify_rfc5761(&rtp(0, false, 1, 2, 3, &[])),
            PacketKind::Rtp
        );
        assert_eq!(
            classify_rfc5761(&rtp(8, true, 1, 2, 3, &[])),
            PacketKind::Rtp
        );
        assert_eq!(
            classify_rfc5761(&rtp(96, false, 1, 2, 3, &[])),
            PacketKind::Rtp
        );
        assert_eq!(
            classify_rfc5761(&rtp(127, true, 1, 2, 3, &[])),
            PacketKind::Rtp
        );
        for pt in 192..=223u8 {
            assert_eq!(
                classify_rfc5761(&[0x80, pt, 0, 1]),
                PacketKind::Rtcp,
                "{pt}"
            );
        }
        assert_eq!(classify_rfc5761(&[0x81, RTCP_RR, 0, 7]), PacketKind::Rtcp);
        assert_eq!(classify_rfc5761(&[0x00, 0x01, 0, 0]), PacketKind::Other); // STUN
        assert_eq!(classify_rfc5761(&[22, 0xfe, 0xfd]), PacketKind::Other); // DTLS
        assert_eq!(classify_rfc5761(&[0x40, 0x00]), PacketKind::Other); // TURN channel
        assert_eq!(classify_rfc5761(&[0x80]), PacketKind::Other);
        assert_eq!(classify_rfc5761(&[]), PacketKind::Other);
    }

    // ---- RTCP -----------------------------------------------------------------------

    /// An SR from `ssrc` with one report block about `reported`.
    fn sr(ssrc: u32, reported: u32) -> Vec<u8> {
        let mut p = vec![0x81, RTCP_SR, 0, 12];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0; 20]); // NTP, RTP ts, packet and octet counts
        p.extend_from_slice(&reported.to_be_bytes());
        p.extend_from_slice(&[0; 20]); // the rest of the report block
        assert_eq!(p.len(), 52);
        p
    }

    /// An SDES with one chunk for `ssrc` holding CNAME "a".
    fn sdes(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x81, RTCP_SDES, 0, 2];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[1, 1, b'a', 0]); // CNAME "a", then the END item
        p
    }

    /// A PLI (PSFB FMT 1) from `sender` about `media`.
    fn pli(sender: u32, media: u32) -> Vec<u8> {
        let mut p = vec![0x81, RTCP_PSFB_RFC4585, 0, 2];
        p.extend_from_slice(&sender.to_be_bytes());
        p.extend_from_slice(&media.to_be_bytes());
        p
    }

    fn be32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn rtcp_packet_view() {
        let b = sr(0x1111, 0x2222);
        let p = RtcpPacket::new(&b[..]).unwrap();
        assert_eq!(
            (p.packet_type(), p.count(), p.packet_len(), p.ssrc()),
            (RTCP_SR, 1, 52, Some(0x1111))
        );
        assert!(!p.has_padding());
        // A BYE with no sources and an RR with no SSRC word have no SSRC to rewrite.
        let mut bye = [0x80, RTCP_BYE, 0, 0];
        assert_eq!(RtcpPacket::new(&bye[..]).unwrap().ssrc(), None);
        assert!(!RtcpPacket::new(&mut bye[..]).unwrap().set_ssrc(5));
        let mut rr = [0x80, RTCP_RR, 0, 1, 0, 0, 0, 9];
        let mut p = RtcpPacket::new(&mut rr[..]).unwrap();
        assert!(p.set_ssrc(0x0102_0304));
        assert_eq!(rr, [0x80, RTCP_RR, 0, 1, 1, 2, 3, 4]);
        // The view covers only the first packet of a compound.
        let mut two = sr(1, 2);
        two.extend_from_slice(&sdes(1));
        assert_eq!(RtcpPacket::new(&two[..]).unwrap().as_bytes().len(), 52);
    }

    #[test]
    fn rtcp_rejects_malformed_packets() {
        assert_eq!(
            RtcpPacket::new(&[0x80, 200][..]).unwrap_err(),
            RtcpError::TooShort
        );
        assert_eq!(
            RtcpPacket::new(&[0x40, 201, 0, 0][..]).unwrap_err(),
            RtcpError::Version
        );
        assert_eq!(
            RtcpPacket::new(&[0x80, 201, 0, 1, 0, 0][..]).unwrap_err(),
            RtcpError::Length
        );
        // P set: count 0, and a count reaching into the header, are both refused.
        assert_eq!(
            RtcpPacket::new(&[0xa0, 201, 0, 1, 0, 0, 0, 0][..]).unwrap_err(),
            RtcpError::Padding
        );
        assert_eq!(
            RtcpPacket::new(&[0xa0, 201, 0, 1, 0, 0, 0, 5][..]).unwrap_err(),
            RtcpError::Padding
        );
        assert!(RtcpPacket::new(&[0xa0, 201, 0, 1, 0, 0, 0, 4][..]).is_ok());
    }

    #[test]
    fn rtcp_compound_validation() {
        let mut c = sr(1, 2);
        c.extend_from_slice(&sdes(1));
        assert_eq!(validate_rtcp_compound_rfc3550(&c), Ok(2));
        let types: Vec<u8> = rtcp_compound_rfc3550(&c)
            .map(|p| p.unwrap().packet_type())
            .collect();
        assert_eq!(types, [RTCP_SR, RTCP_SDES]);
        // A lone feedback packet (RFC 5506 reduced-size RTCP) is accepted.
        assert_eq!(validate_rtcp_compound_rfc3550(&pli(1, 2)), Ok(1));
        // Trailing bytes that are not a whole packet.
        let mut trailing = c.clone();
        trailing.extend_from_slice(&[0x80, 201]);
        assert_eq!(
            validate_rtcp_compound_rfc3550(&trailing),
            Err(RtcpError::TooShort)
        );
        // Padding on a packet that is not the last.
        let mut padded_first = c.clone();
        padded_first[0] |= 0x20;
        padded_first[51] = 4;
        assert_eq!(
            validate_rtcp_compound_rfc3550(&padded_first),
            Err(RtcpError::Padding)
        );
        assert_eq!(
            validate_rtcp_compound_rfc3550(&[]),
            Err(RtcpError::TooShort)
        );
    }

    #[test]
    fn rtcp_ssrcs_are_rewritten_in_place() {
        let mut c = sr(0xaaaa, 0x0c0c);
        c.extend_from_slice(&sdes(0xaaaa));
        c.extend_from_slice(&pli(0xaaaa, 0x0c0c));
        let n = rewrite_rtcp_ssrcs_rfc3550(&mut c, 0xbbbb, |reported| {
            (reported == 0x0c0c).then_some(0x1234)
        })
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(be32_at(&c, 4), 0xbbbb, "SR sender");
        assert_eq!(be32_at(&c, 28), 0x1234, "SR report block");
        assert_eq!(be32_at(&c, 52 + 4), 0xbbbb, "SDES chunk");
        assert_eq!(be32_at(&c, 64 + 4), 0xbbbb, "PLI sender");
        assert_eq!(be32_at(&c, 64 + 8), 0x1234, "PLI media source");

        // Unmapped report SSRCs stay; an RR whose count overstates its blocks is safe.
        let mut rr = vec![0x82, RTCP_RR, 0, 7, 0, 0, 0, 1];
        rr.extend_from_slice(&0x5555u32.to_be_bytes());
        rr.extend_from_slice(&[0; 20]);
        assert_eq!(rewrite_rtcp_ssrcs_rfc3550(&mut rr, 9, |_| None), Ok(1));
        assert_eq!((be32_at(&rr, 4), be32_at(&rr, 8)), (9, 0x5555));

        // A bad compound is refused untouched.
        let mut bad = sr(0xaaaa, 0);
        bad.extend_from_slice(&[0x80, 201, 0, 9]);
        let before = bad.clone();
        assert_eq!(
            rewrite_rtcp_ssrcs_rfc3550(&mut bad, 1, |_| Some(2)),
            Err(RtcpError::Length)
        );
        assert_eq!(bad, before);
    }

    // ---- payload map ----------------------------------------------------------------

    #[test]
    fn payload_map() {
        let mut m = transcoding_map();
        assert_eq!(
            m.get(0),
            Some(PayloadMapping {
                out_pt: 8,
                action: PayloadAction::PcmuToPcma
            })
        );
        assert_eq!(m.get(8), None);
        assert_eq!(m.get(200), None);
        assert_eq!(
            m.insert(128, 0, PayloadAction::Forward),
            Err(PayloadTypeOutOfRange(128))
        );
        assert_eq!(
            m.insert(0, 255, PayloadAction::Forward),
            Err(PayloadTypeOutOfRange(255))
        );
        m.remove(0);
        m.remove(255);
        assert_eq!(m.get(0), None);
        assert_eq!(
            format!("{m:?}"),
            "{101: PayloadMapping { out_pt: 96, action: TelephoneEvent }}"
        );
    }

    // ---- stream rewriter ------------------------------------------------------------

    const A: SourceId = SourceId(1);
    const PROMPT: SourceId = SourceId(2);

    /// Run one packet through `rw` and return the rewritten bytes' header fields.
    fn send(
        rw: &mut StreamRewriter,
        source: SourceId,
        map: &PayloadMap,
        bytes: &mut [u8],
        now: Instant,
    ) -> Result<(u8, bool, u16, u32, u32), RewriteDrop> {
        let mut p = RtpPacket::new(bytes).unwrap();
        rw.rewrite(source, map, &mut p, now)?;
        Ok((
            p.payload_type(),
            p.marker(),
            p.sequence(),
            p.timestamp(),
            p.ssrc(),
        ))
    }

    #[test]
    fn first_packet_takes_the_initial_values_then_offsets_hold() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(0x5151, 1000, 50_000, 8000);
        assert_eq!(rw.last_sequence(), None);
        let mut p = rtp(0, false, 7, 700, 0xaaaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0),
            Ok((0, true, 1000, 50_000, 0x5151))
        );
        // Same source: fixed offsets; its M bit passes through; loss gaps pass through.
        let mut p = rtp(0, false, 8, 860, 0xaaaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(20)),
            Ok((0, false, 1001, 50_160, 0x5151))
        );
        let mut p = rtp(0, true, 10, 1180, 0xaaaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(60)),
            Ok((0, true, 1003, 50_480, 0x5151))
        );
        // A late packet of the same source is forwarded with its own numbers and does not
        // move the high-water mark.
        let mut p = rtp(0, false, 9, 1020, 0xaaaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(61)),
            Ok((0, false, 1002, 50_320, 0x5151))
        );
        assert_eq!(rw.last_sequence(), Some(1003));
        assert_eq!(rw.last_timestamp(), Some(50_480));
        assert_eq!(rw.ssrc(), 0x5151);
    }

    #[test]
    fn source_switch_continues_sequence_and_elapsed_time() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(9, 65_534, u32::MAX - 100, 8000);
        // A prompt plays three 20 ms packets (and teaches the 160-sample frame).
        for i in 0..3u16 {
            let mut p = rtp(
                0,
                i == 0,
                100 + i,
                4000 + 160 * u32::from(i),
                0x77,
                &[0; 160],
            );
            send(&mut rw, PROMPT, &map, &mut p, t0 + ms(20 * u64::from(i))).unwrap();
        }
        assert_eq!(rw.last_sequence(), Some(0)); // 65534, 65535, 0: wrapped
        let last_ts = rw.last_timestamp().unwrap();
        assert_eq!(last_ts, (u32::MAX - 100).wrapping_add(320));
        // Then the bridged party, 100 ms after the last prompt packet: 800 samples later.
        let mut p = rtp(0, false, 30_000, 123_456, 0xbbbb, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(40 + 100)),
            Ok((0, true, 1, last_ts.wrapping_add(800), 9))
        );
        // Its next packet follows on its own offsets.
        let mut p = rtp(0, false, 30_001, 123_616, 0xbbbb, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(160)),
            Ok((0, false, 2, last_ts.wrapping_add(960), 9))
        );
    }

    #[test]
    fn a_switch_inside_a_frame_does_not_overlap_the_previous_audio() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        for i in 0..2u16 {
            let mut p = rtp(0, false, i, 160 * u32::from(i), 0x77, &[0; 160]);
            send(&mut rw, PROMPT, &map, &mut p, t0 + ms(20 * u64::from(i))).unwrap();
        }
        // 5 ms later (e.g. the same recvmmsg batch): one whole frame on, not 40 samples.
        let mut p = rtp(0, false, 500, 9, 0xbbbb, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(25)),
            Ok((0, true, 2, 320, 9))
        );
        // With no frame learned yet (a one-packet prompt), the timestamp still moves on.
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        let mut p = rtp(0, false, 0, 0, 0x77, &[0; 160]);
        send(&mut rw, PROMPT, &map, &mut p, t0).unwrap();
        let mut p = rtp(0, false, 500, 9, 0xbbbb, &[0; 160]);
        assert_eq!(send(&mut rw, A, &map, &mut p, t0), Ok((0, true, 1, 1, 9)));
    }

    #[test]
    fn payload_types_are_mapped_and_events_keep_their_marker() {
        let t0 = epoch();
        let map = transcoding_map();
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        let mut p = rtp(0, false, 1, 0, 0x77, &[0xff; 160]);
        let mut view = RtpPacket::new(&mut p[..]).unwrap();
        let m = rw.rewrite(A, &map, &mut view, t0).unwrap();
        assert_eq!(m.action, PayloadAction::PcmuToPcma);
        assert_eq!(view.payload_type(), PT_PCMA_RFC3551);
        // A telephone-event continuation arriving first from a new source: PT mapped,
        // M left clear (set, it would announce a new digit).
        let mut ev = rtp(101, false, 40, 1000, 0x88, &[5, 0x0a, 0, 160]);
        assert_eq!(
            send(&mut rw, PROMPT, &map, &mut ev, t0 + ms(20)),
            Ok((96, false, 1, 160, 9))
        );
        let mut ev = rtp(101, true, 41, 1000, 0x88, &[5, 0x0a, 0, 160]);
        assert_eq!(
            send(&mut rw, PROMPT, &map, &mut ev, t0 + ms(40)),
            Ok((96, true, 2, 160, 9)),
            "the source's own M bit passes through"
        );
    }

    #[test]
    fn unmapped_payload_types_are_dropped_untouched() {
        let t0 = epoch();
        let map = transcoding_map();
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        let mut p = rtp(0, false, 1, 0, 0x77, &[0; 160]);
        send(&mut rw, A, &map, &mut p, t0).unwrap();
        // PCMA was not negotiated from this source, and the comfort noise PT 13 neither:
        // dropped, the packet unchanged, and no source switch recorded.
        for pt in [8, 13] {
            let mut p = rtp(pt, false, 2, 160, 0x99, &[0; 160]);
            let before = p.clone();
            assert_eq!(
                send(&mut rw, PROMPT, &map, &mut p, t0 + ms(20)),
                Err(RewriteDrop::UnmappedPayloadType(pt))
            );
            assert_eq!(p, before);
        }
        let mut p = rtp(0, false, 2, 160, 0x77, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(20)),
            Ok((8, false, 1, 160, 9))
        );
        assert_eq!(RewriteDrop::UnmappedPayloadType(8).class(), "unmapped_pt");
    }

    #[test]
    fn late_packets_from_before_a_switch_are_stale() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(9, 100, 0, 8000);
        let mut p = rtp(0, false, 1, 0, 0x77, &[0; 160]);
        send(&mut rw, PROMPT, &map, &mut p, t0).unwrap();
        // The party's packet 11 arrives before its packet 10: 11 becomes 101, and 10 would
        // become 100, the prompt's number: dropped.
        let mut p = rtp(0, false, 11, 1760, 0xbb, &[0; 160]);
        assert_eq!(send(&mut rw, A, &map, &mut p, t0 + ms(20)).unwrap().2, 101);
        let mut p = rtp(0, false, 10, 1600, 0xbb, &[0; 160]);
        let before = p.clone();
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(21)),
            Err(RewriteDrop::Stale)
        );
        assert_eq!(p, before);
        let mut p = rtp(0, false, 12, 1920, 0xbb, &[0; 160]);
        assert_eq!(send(&mut rw, A, &map, &mut p, t0 + ms(40)).unwrap().2, 102);
    }

    #[test]
    fn switching_back_rebases_again() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        let mut now = t0;
        let mut seqs = Vec::new();
        // party, hold prompt, party again (same SSRC, numbers moved on meanwhile).
        for (source, ssrc, first) in [(A, 0xaa, 10u16), (PROMPT, 0x77, 500), (A, 0xaa, 60)] {
            for i in 0..5 {
                let seq = first + i;
                let mut p = rtp(0, false, seq, u32::from(seq) * 160, ssrc, &[0; 160]);
                seqs.push(send(&mut rw, source, &map, &mut p, now).unwrap().2);
                now += ms(20);
            }
        }
        assert_eq!(seqs, (0..15).collect::<Vec<u16>>());
    }

    #[test]
    fn a_sequence_jump_is_dropped_once_then_rebased() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        let mut p = rtp(0, false, 10, 0, 0xaa, &[0; 160]);
        send(&mut rw, A, &map, &mut p, t0).unwrap();
        // The phone restarts its numbering without changing SSRC: the first packet of the
        // new numbering is on probation, the second confirms it.
        let mut p = rtp(0, false, 40_000, 160, 0xaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(20)),
            Err(RewriteDrop::SequenceJump)
        );
        let mut p = rtp(0, false, 40_001, 320, 0xaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(40)),
            Ok((0, true, 1, 320, 9))
        );
        // A stray far-off packet alone is just dropped and changes nothing.
        let mut p = rtp(0, false, 5, 0, 0xaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(50)),
            Err(RewriteDrop::SequenceJump)
        );
        let mut p = rtp(0, false, 40_002, 480, 0xaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(60)),
            Ok((0, false, 2, 480, 9))
        );
    }

    #[test]
    fn reset_source_forces_a_rebase() {
        let t0 = epoch();
        let map = pcmu_map();
        let mut rw = StreamRewriter::new(9, 0, 0, 8000);
        let mut p = rtp(0, false, 10, 0, 0xaa, &[0; 160]);
        send(&mut rw, A, &map, &mut p, t0).unwrap();
        rw.reset_source();
        // Same source and SSRC, but numbers from a restarted sender: rebased, no drop.
        let mut p = rtp(0, false, 3, 99, 0xaa, &[0; 160]);
        assert_eq!(
            send(&mut rw, A, &map, &mut p, t0 + ms(20)),
            Ok((0, true, 1, 160, 9))
        );
    }

    #[test]
    fn samples_in_counts_clock_ticks() {
        assert_eq!(samples_in(ms(20), 8000), 160);
        assert_eq!(samples_in(ms(20), 16_000), 320);
        assert_eq!(samples_in(Duration::from_micros(124), 8000), 0);
        assert_eq!(samples_in(Duration::from_micros(125), 8000), 1);
        assert_eq!(samples_in(Duration::ZERO, 0), 0);
    }

    // ---- properties -----------------------------------------------------------------

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_views(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            rtp_hint in any::<bool>(),
        ) {
            let mut bytes = bytes;
            // Half the cases start like RTP/RTCP so validation gets past the first checks.
            if rtp_hint && !bytes.is_empty() {
                bytes[0] = 0x80 | (bytes[0] & 0x3f);
            }
            let _ = classify_rfc5761(&bytes);
            if let Ok(p) = RtpPacket::new(&bytes[..]) {
                prop_assert!(p.payload_offset() + p.padding_len() <= bytes.len());
                let _ = (p.marker(), p.payload_type(), p.sequence(), p.timestamp(), p.ssrc());
                let _ = (p.extension(), p.csrc(0), p.csrc(15), format!("{p:?}"));
                prop_assert_eq!(
                    p.payload().len(),
                    bytes.len() - p.payload_offset() - p.padding_len()
                );
            }
            let mut copy = bytes.clone();
            if let Ok(mut p) = RtpPacket::new(&mut copy[..]) {
                p.set_payload_type(0xff);
                p.set_marker(true);
                p.set_sequence(1);
                p.set_timestamp(2);
                p.set_ssrc(3);
                p.payload_mut().fill(0);
                let mut rw = StreamRewriter::new(1, 2, 3, 8000);
                let mut map = PayloadMap::new();
                map.insert(p.payload_type(), 0, PayloadAction::Forward).unwrap();
                prop_assert!(rw.rewrite(SourceId(0), &map, &mut p, epoch()).is_ok());
            }
            if let Ok(p) = RtcpPacket::new(&bytes[..]) {
                prop_assert!(p.packet_len() <= bytes.len());
                let _ = (p.packet_type(), p.count(), p.ssrc(), format!("{p:?}"));
            }
            let n = rtcp_compound_rfc3550(&bytes).count();
            prop_assert!(n <= bytes.len() / 4 + 1);
            let mut copy = bytes.clone();
            let valid = validate_rtcp_compound_rfc3550(&bytes);
            let rewritten = rewrite_rtcp_ssrcs_rfc3550(&mut copy, 7, |s| Some(s ^ 1));
            prop_assert_eq!(valid, rewritten);
            if rewritten.is_err() {
                prop_assert_eq!(&copy, &bytes);
            }
        }

        #[test]
        fn sequence_numbers_stay_continuous_across_switches_and_wraparound(
            initial_seq in prop_oneof![any::<u16>(), 65_400u16..=65_535],
            initial_ts in any::<u32>(),
            segments in proptest::collection::vec(
                (
                    0u32..3,                                  // which source
                    0u32..3,                                  // which SSRC of it
                    prop_oneof![any::<u16>(), 65_500u16..=65_535], // its first seq
                    any::<u32>(),                             // its first timestamp
                    1usize..60,                               // packets in the segment
                    0u64..200,                                // gap before it, ms
                    any::<bool>(),                            // a DTMF event segment?
                ),
                1..25,
            ),
        ) {
            let t0 = epoch();
            let map = pcmu_map();
            let mut rw = StreamRewriter::new(0xfeed, initial_seq, initial_ts, 8000);
            let mut now = t0;
            let mut prev: Option<(u16, u32)> = None;
            // Each source keeps its own numbering across its segments, as a real feeder
            // does: a later segment of the same source and SSRC resumes where it stopped.
            let mut resume = std::collections::HashMap::new();
            for (source, ssrc, seq0, ts0, count, gap, event) in segments {
                now += ms(gap);
                let (mut seq, mut ts) = *resume.entry((source, ssrc)).or_insert((seq0, ts0));
                for _ in 0..count {
                    let pt = if event { 101 } else { 0 };
                    let mut p = rtp(pt, false, seq, ts, 0x1000 + ssrc, &[0; 160]);
                    let (_, _, out_seq, out_ts, out_ssrc) =
                        send(&mut rw, SourceId(source), &map, &mut p, now).unwrap();
                    prop_assert_eq!(out_ssrc, 0xfeed);
                    match prev {
                        None => prop_assert_eq!((out_seq, out_ts), (initial_seq, initial_ts)),
                        Some((ps, pts)) => {
                            prop_assert_eq!(out_seq, ps.wrapping_add(1));
                            // Timestamps never go backwards (events repeat theirs).
                            prop_assert!(out_ts.wrapping_sub(pts) < 0x8000_0000);
                        }
                    }
                    prev = Some((out_seq, out_ts));
                    seq = seq.wrapping_add(1);
                    if !event {
                        ts = ts.wrapping_add(160);
                    }
                    now += ms(20);
                }
                resume.insert((source, ssrc), (seq, ts));
            }
        }
    }
}
