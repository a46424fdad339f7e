//! RTP and RTCP packet views.
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
//! The rewriting of headers onto one continuous output stream, and payload-type mapping,
//! are `super::rewriter`'s.
//!
//! Everything here is pure: no I/O, no clock reads (time comes in as an argument), no
//! allocation.

use std::fmt;

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

#[cfg(test)]
#[path = "rtp_tests.rs"]
mod tests;
