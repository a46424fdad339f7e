//! Tests of the RTP/RTCP views, the payload map and the stream rewriter.

use super::*;
use crate::media::rewriter::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};

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
