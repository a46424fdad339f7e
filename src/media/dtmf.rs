//! DTMF: RFC 4733 telephone-events in RTP, and SIP INFO `application/dtmf-relay`.
//!
//! Why it matters: `Gather` collects digits, `Record` and `Play` stop on a key, `Dial`
//! hangs up on `*`, and `Play digits="..."` sends them. Digits sent in-band as G.711 tones
//! do not survive every codec and are costly to detect, so phones and carriers signal
//! them as RFC 4733 events in the RTP stream (negotiated as `telephone-event/8000`), and
//! some older gear as SIP INFO requests. Both end up here as plain `char`s.
//!
//! An RFC 4733 payload is 4 bytes (§2.3):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! One key press is one *event*, identified by its RTP timestamp (the moment it began);
//! the sender repeats the report every packet interval with a growing duration, and sends
//! the final report (E bit set) three times (§2.5.1.4) because it carries the only
//! reliable end. So a receiver sees five to ten packets per digit and must report it
//! once: [`TelephoneEventReceiver`] does that by keying on the timestamp, and follows an
//! event longer than the 16-bit duration across its segments (§2.5.1.3, §2.5.2.3).
//! [`DtmfTone`] is the sending side. Everything here is pure: no clock, no I/O, and the
//! per-packet paths do not allocate.

use std::fmt;

/// RTP clock rate of `telephone-event` alongside 8 kHz G.711 (`telephone-event/8000`).
pub const TELEPHONE_EVENT_CLOCK_RATE: u32 = 8000;
/// Length of one event report in the RTP payload (RFC 4733 §2.3).
pub const TELEPHONE_EVENT_LEN: usize = 4;
/// Largest `application/dtmf-relay` body we parse; real ones are about 25 bytes.
pub const MAX_DTMF_RELAY_BODY: usize = 1024;

/// Why a DTMF payload or body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// An RTP telephone-event payload shorter than the 4-byte report.
    #[error("telephone-event payload of {0} bytes, need 4")]
    ShortPayload(usize),
    /// A character that is not one of `0-9 * # A-D`.
    #[error("{0:?} is not a DTMF digit")]
    NotADigit(char),
    /// A `dtmf-relay` body larger than [`MAX_DTMF_RELAY_BODY`].
    #[error("dtmf-relay body of {0} bytes is too large")]
    BodyTooLarge(usize),
    /// A `dtmf-relay` body without a `Signal=` line.
    #[error("dtmf-relay body has no Signal")]
    MissingSignal,
    /// A `Signal=` value that is not a DTMF digit (nor its event number 0–15).
    #[error("dtmf-relay Signal is not a DTMF digit")]
    BadSignal,
    /// A `Duration=` value that is not a number of milliseconds.
    #[error("dtmf-relay Duration is not a number")]
    BadDuration,
}

impl DtmfError {
    /// A stable, low-cardinality label for logs and metrics.
    pub const fn class(&self) -> &'static str {
        match self {
            DtmfError::ShortPayload(_) => "short_payload",
            DtmfError::NotADigit(_) => "not_a_digit",
            DtmfError::BodyTooLarge(_) => "too_large",
            DtmfError::MissingSignal | DtmfError::BadSignal | DtmfError::BadDuration => {
                "bad_dtmf_relay"
            }
        }
    }
}

/// The DTMF digits in RFC 4733 event-code order (RFC 4733 §3): events 0–15.
const DTMF_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The digit for an RFC 4733 DTMF event code (0–9, 10 `*`, 11 `#`, 12–15 `A`–`D`);
/// `None` for other events (16 is flash, 32+ are modem and fax tones, RFC 4734).
pub fn dtmf_event_to_digit(event: u8) -> Option<char> {
    DTMF_DIGITS.get(usize::from(event)).copied()
}

/// The RFC 4733 event code for a digit (`a`–`d` accepted as `A`–`D`).
pub fn dtmf_digit_to_event(digit: char) -> Option<u8> {
    let upper = digit.to_ascii_uppercase();
    DTMF_DIGITS
        .iter()
        .position(|&d| d == upper)
        .map(|i| i as u8)
}

/// One RFC 4733 event report (the 4-byte payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    /// Event code; 0–15 are DTMF digits.
    pub event: u8,
    /// The E bit: this report ends the event.
    pub end: bool,
    /// Power level in −dBm0, 0–63 (6 bits). Senders use about 10.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units (1/8000 s), from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first report of a payload. Longer payloads are accepted and their tail
    /// ignored: some gateways pad, and multiple events in one packet (§2.5.1.5) are only
    /// used for non-DTMF tones. The R bit is ignored, as §2.3 requires of receivers.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::ShortPayload(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte payload (R bit zero, volume masked to its 6 bits).
    pub fn to_bytes(&self) -> [u8; TELEPHONE_EVENT_LEN] {
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F);
        [self.event, flags, d0, d1]
    }

    /// The DTMF digit, if this is a DTMF event.
    pub fn digit(&self) -> Option<char> {
        dtmf_event_to_digit(self.event)
    }
}

/// A digit reported once by [`TelephoneEventReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceivedDigit {
    /// `0-9 * # A-D`.
    pub digit: char,
    /// RTP timestamp identifying the event (its start).
    pub timestamp: u32,
}

/// What the receiver remembers about the latest event of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CurrentEvent {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    ended: bool,
    /// Longest duration reported so far for this segment.
    duration: u16,
}

/// How far behind the current event a timestamp may be and still count as a late packet
/// of an earlier event rather than a sender that moved its timestamps backwards. One
/// segment's worth (about 8 s at 8 kHz) covers reordering with room to spare.
const STALE_WINDOW: u32 = 0x1_0000;

/// A segment that reached this duration without an end is an event about to overflow
/// the 16-bit duration; only then is a new timestamp with the same code a continuation
/// (one second below the maximum, so lost updates near the end do not matter).
const LONG_EVENT_THRESHOLD: u16 = u16::MAX - TELEPHONE_EVENT_CLOCK_RATE as u16;

/// Receiver-side de-duplication of RFC 4733 events: each key press is reported once.
///
/// All packets of one event carry the same RTP timestamp, whatever their sequence
/// numbers: the initial report, the updates, and the three final reports. So the
/// receiver keeps the timestamp of the latest event and reports a digit when a packet
/// arrives with a *newer* timestamp (RTP serial arithmetic, so wrap-around is fine).
///
/// - A digit is reported on the first packet seen of its event, not at its end: `Gather`
///   must interrupt the prompt at once, and the end packets may all be lost.
/// - Packets with an older timestamp are late copies of an earlier event: ignored.
/// - An event longer than 0xFFFF units is sent as segments, each with a new timestamp
///   and no end bit on the earlier ones (§2.5.1.3); the receiver treats a same-code
///   segment that follows an unfinished, nearly-full one as the same key press (§2.5.2.3).
/// - A new SSRC is a new stream: its first event is reported whatever its timestamp.
///
/// Non-DTMF events (flash, fax tones) are tracked the same way but never reported.
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventReceiver {
    current: Option<CurrentEvent>,
}

impl TelephoneEventReceiver {
    /// A receiver that has seen nothing.
    pub const fn new() -> Self {
        TelephoneEventReceiver { current: None }
    }

    /// Forgets the stream (e.g. when the leg's source changes).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Feeds one telephone-event packet: its RTP SSRC and timestamp and its parsed
    /// payload. Returns the digit the first time its event is seen, `None` otherwise.
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        rtp_timestamp: u32,
        report: &TelephoneEvent,
    ) -> Option<ReceivedDigit> {
        let fresh = CurrentEvent {
            ssrc,
            timestamp: rtp_timestamp,
            event: report.event,
            ended: report.end,
            duration: report.duration,
        };
        let Some(cur) = self.current.as_mut().filter(|c| c.ssrc == ssrc) else {
            self.current = Some(fresh);
            return Self::report(&fresh);
        };
        let ahead = rtp_timestamp.wrapping_sub(cur.timestamp);
        if ahead == 0 {
            // Another report of the current event: an update or a final retransmission.
            cur.ended |= report.end;
            cur.duration = cur.duration.max(report.duration);
            return None;
        }
        let behind = cur.timestamp.wrapping_sub(rtp_timestamp);
        if behind <= STALE_WINDOW {
            // A late, reordered packet of an earlier event.
            return None;
        }
        let continues = !cur.ended
            && cur.event == report.event
            && cur.duration >= LONG_EVENT_THRESHOLD
            && ahead <= u32::from(u16::MAX) + 1;
        *cur = fresh;
        if continues {
            None
        } else {
            Self::report(&fresh)
        }
    }

    fn report(event: &CurrentEvent) -> Option<ReceivedDigit> {
        dtmf_event_to_digit(event.event).map(|digit| ReceivedDigit {
            digit,
            timestamp: event.timestamp,
        })
    }
}

/// One telephone-event RTP packet to send: header fields and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEventPacket {
    /// RTP sequence number (one per packet, retransmissions included).
    pub sequence: u16,
    /// RTP timestamp: the event's start, the same in every packet of the event.
    pub timestamp: u32,
    /// RTP marker bit: set on the first packet of the event only.
    pub marker: bool,
    /// When to send it, in milliseconds after the first packet (on the pacing ticks).
    pub send_offset_ms: u32,
    /// The 4-byte RFC 4733 payload.
    pub payload: [u8; TELEPHONE_EVENT_LEN],
}

/// A DTMF tone to send as RFC 4733 events.
///
/// With the defaults (100 ms, 20 ms pacing) a digit is seven packets, all with the
/// starting timestamp and consecutive sequence numbers, one per pacing tick:
///
/// ```text
/// tick  0     1     2     3     4       5       6
/// dur   160   320   480   640   800 E   800 E   800 E    (M bit on tick 0)
/// ```
///
/// The last report is sent three times (§2.5.1.4) so that one loss does not leave the
/// far end playing the tone until its own timeout. The tone occupies
/// [`DtmfTone::packet_count`] ticks; audio resuming on the next tick continues from
/// [`DtmfTone::following_media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfTone {
    /// RFC 4733 event code (0–15 for DTMF).
    pub event: u8,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// How long the tone lasts, in milliseconds (at least one tick is sent).
    pub duration_ms: u32,
    /// Packet interval, in milliseconds: the stream's ptime (taken as 1–1000).
    pub interval_ms: u32,
}

impl DtmfTone {
    /// Default tone length: 100 ms, comfortably above the 40 ms Q.24 detectors need.
    pub const DEFAULT_DURATION_MS: u32 = 100;
    /// Default pacing: 20 ms, the G.711 ptime.
    pub const DEFAULT_INTERVAL_MS: u32 = 20;
    /// Default level: −10 dBm0, what most endpoints send.
    pub const DEFAULT_VOLUME: u8 = 10;
    /// How many times the final report is sent (§2.5.1.4).
    pub const END_PACKETS: usize = 3;

    /// A default tone for `digit` (`0-9 * # A-D`, `a`–`d` accepted).
    pub fn for_digit(digit: char) -> Result<DtmfTone, DtmfError> {
        let event = dtmf_digit_to_event(digit).ok_or(DtmfError::NotADigit(digit))?;
        Ok(DtmfTone {
            event,
            volume: Self::DEFAULT_VOLUME,
            duration_ms: Self::DEFAULT_DURATION_MS,
            interval_ms: Self::DEFAULT_INTERVAL_MS,
        })
    }

    /// The pacing in milliseconds, kept within 1–1000 so that no product overflows.
    fn interval(&self) -> u32 {
        self.interval_ms.clamp(1, 1000)
    }

    fn interval_units(&self) -> u32 {
        self.interval() * (TELEPHONE_EVENT_CLOCK_RATE / 1000)
    }

    /// Event duration in timestamp units, capped at one segment (0xFFFF, about 8 s):
    /// a player never needs a longer tone.
    fn duration_units(&self) -> u16 {
        let units = u64::from(self.duration_ms) * u64::from(TELEPHONE_EVENT_CLOCK_RATE) / 1000;
        units.clamp(1, u64::from(u16::MAX)) as u16
    }

    /// Reports with a growing duration, the last of which has the E bit.
    fn update_count(&self) -> usize {
        u32::from(self.duration_units()).div_ceil(self.interval_units()) as usize
    }

    /// Packets (and pacing ticks) the tone takes: the updates plus two more copies of the
    /// final report.
    pub fn packet_count(&self) -> usize {
        self.update_count() + Self::END_PACKETS - 1
    }

    /// The packets of the tone starting at RTP timestamp `start_timestamp` with sequence
    /// number `start_sequence`. An iterator, so sending allocates nothing.
    pub fn packets(&self, start_timestamp: u32, start_sequence: u16) -> TonePackets {
        TonePackets {
            tone: *self,
            start_timestamp,
            start_sequence,
            index: 0,
        }
    }

    /// RTP timestamp and sequence number for audio resuming on the tick after the tone:
    /// timestamps advance with the ticks the tone used, so the far end's jitter buffer
    /// sees time pass as it did.
    pub fn following_media(&self, start_timestamp: u32, start_sequence: u16) -> (u32, u16) {
        let ticks = self.packet_count() as u32;
        (
            start_timestamp.wrapping_add(ticks * self.interval_units()),
            start_sequence.wrapping_add(ticks as u16),
        )
    }
}

/// Iterator over the packets of a [`DtmfTone`].
#[derive(Debug, Clone)]
pub struct TonePackets {
    tone: DtmfTone,
    start_timestamp: u32,
    start_sequence: u16,
    index: usize,
}

impl Iterator for TonePackets {
    type Item = TelephoneEventPacket;

    fn next(&mut self) -> Option<TelephoneEventPacket> {
        let i = self.index;
        if i >= self.tone.packet_count() {
            return None;
        }
        self.index += 1;
        let updates = self.tone.update_count();
        let total = self.tone.duration_units();
        let end = i + 1 >= updates;
        let duration = if end {
            total
        } else {
            // (i + 1) ticks so far; below `total` since this is not the last update.
            ((i as u32 + 1) * self.tone.interval_units()) as u16
        };
        let report = TelephoneEvent {
            event: self.tone.event,
            end,
            volume: self.tone.volume,
            duration,
        };
        Some(TelephoneEventPacket {
            sequence: self.start_sequence.wrapping_add(i as u16),
            timestamp: self.start_timestamp,
            marker: i == 0,
            send_offset_ms: i as u32 * self.tone.interval(),
            payload: report.to_bytes(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.tone.packet_count() - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for TonePackets {}

/// A digit from a SIP INFO `application/dtmf-relay` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfRelay {
    /// `0-9 * # A-D`.
    pub digit: char,
    /// `Duration=` in milliseconds, when present.
    pub duration_ms: Option<u32>,
}

impl fmt::Display for DtmfRelay {
    /// The body to send: `Signal=5\r\nDuration=160\r\n` (Duration defaults to 100 ms).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signal={}\r\nDuration={}\r\n",
            self.digit,
            self.duration_ms.unwrap_or(DtmfTone::DEFAULT_DURATION_MS)
        )
    }
}

/// Parses an `application/dtmf-relay` body (the de-facto format of Cisco and most
/// phones): lines `Signal=<digit>` and `Duration=<ms>`, in any order, keys
/// case-insensitive, blanks around `=` allowed, CRLF or LF, other keys ignored. `Signal`
/// may also be the event number (`10` for `*`, `11` for `#`), as some gateways send.
pub fn parse_dtmf_relay(body: &[u8]) -> Result<DtmfRelay, DtmfError> {
    if body.len() > MAX_DTMF_RELAY_BODY {
        return Err(DtmfError::BodyTooLarge(body.len()));
    }
    let mut digit = None;
    let mut duration_ms = None;
    for line in body.split(|&b| b == b'\n') {
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            continue;
        };
        let key = line[..eq].trim_ascii();
        let value = line[eq + 1..].trim_ascii();
        if key.eq_ignore_ascii_case(b"signal") && digit.is_none() {
            digit = Some(parse_signal(value)?);
        } else if key.eq_ignore_ascii_case(b"duration") && duration_ms.is_none() {
            let ms = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or(DtmfError::BadDuration)?;
            duration_ms = Some(ms);
        }
    }
    Ok(DtmfRelay {
        digit: digit.ok_or(DtmfError::MissingSignal)?,
        duration_ms,
    })
}

/// A `Signal=` value: one digit character, or an event number 0–15.
fn parse_signal(value: &[u8]) -> Result<char, DtmfError> {
    match value {
        [c] => dtmf_digit_to_event(char::from(*c))
            .and_then(dtmf_event_to_digit)
            .ok_or(DtmfError::BadSignal),
        [b'1', c @ b'0'..=b'5'] => Ok(DTMF_DIGITS[usize::from(10 + (c - b'0'))]),
        _ => Err(DtmfError::BadSignal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn event_codes_and_digits() {
        let all: String = (0..16).filter_map(dtmf_event_to_digit).collect();
        assert_eq!(all, "0123456789*#ABCD");
        assert_eq!(dtmf_event_to_digit(16), None, "flash is not a digit");
        assert_eq!(dtmf_event_to_digit(36), None);
        for (i, c) in all.chars().enumerate() {
            assert_eq!(dtmf_digit_to_event(c), Some(i as u8));
        }
        assert_eq!(dtmf_digit_to_event('d'), Some(15));
        assert_eq!(dtmf_digit_to_event('E'), None);
        assert_eq!(dtmf_digit_to_event('w'), None);
    }

    #[test]
    fn parse_payloads() {
        // Digit 5, not ended, volume 10, duration 160.
        assert_eq!(
            TelephoneEvent::parse(&[0x05, 0x0A, 0x00, 0xA0]),
            Ok(ev(5, false, 160))
        );
        // '#' ended, R bit set (ignored), volume 63, duration 800.
        let e = TelephoneEvent::parse(&[0x0B, 0xFF, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 63,
                duration: 800
            }
        );
        assert_eq!(e.digit(), Some('#'));
        // Padding after the report is ignored.
        assert_eq!(
            TelephoneEvent::parse(&[0x00, 0x8A, 0x01, 0x40, 0, 0, 0, 0]),
            Ok(ev(0, true, 320))
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::ShortPayload(3))
        );
        assert_eq!(TelephoneEvent::parse(&[]), Err(DtmfError::ShortPayload(0)));
        assert_eq!(DtmfError::ShortPayload(3).class(), "short_payload");
    }

    #[test]
    fn build_payloads() {
        assert_eq!(ev(5, false, 160).to_bytes(), [0x05, 0x0A, 0x00, 0xA0]);
        assert_eq!(ev(11, true, 800).to_bytes(), [0x0B, 0x8A, 0x03, 0x20]);
        // Volume is 6 bits: a bad value cannot set E or R.
        let loud = TelephoneEvent {
            event: 1,
            end: false,
            volume: 0xFF,
            duration: 0xFFFF,
        };
        assert_eq!(loud.to_bytes(), [0x01, 0x3F, 0xFF, 0xFF]);
        for e in [ev(0, true, 0), ev(15, false, 65535), ev(16, true, 1234)] {
            assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Ok(e));
        }
    }

    /// The packets of a typical phone's key press: updates, then three end reports.
    fn key_press(event: u8, ts: u32) -> Vec<(u32, TelephoneEvent)> {
        let mut v: Vec<_> = (1..=5).map(|k| (ts, ev(event, false, 160 * k))).collect();
        v.extend((0..3).map(|_| (ts, ev(event, true, 960))));
        v
    }

    #[test]
    fn receiver_reports_each_key_press_once() {
        let mut rx = TelephoneEventReceiver::new();
        let mut got = Vec::new();
        let presses = [(1, 1000u32), (2, 3000), (2, 5000), (11, 7000)];
        for (event, ts) in presses {
            for (ts, e) in key_press(event, ts) {
                got.extend(rx.on_packet(0xABCD, ts, &e));
            }
        }
        let digits: String = got.iter().map(|d| d.digit).collect();
        assert_eq!(digits, "122#", "the same key twice is two presses");
        assert_eq!(got[2].timestamp, 5000);
    }

    #[test]
    fn receiver_survives_loss_and_reordering() {
        let mut rx = TelephoneEventReceiver::new();
        // Only the end packets of '7' arrive: still reported, once.
        assert_eq!(
            rx.on_packet(1, 800, &ev(7, true, 800)).map(|d| d.digit),
            Some('7')
        );
        assert_eq!(rx.on_packet(1, 800, &ev(7, true, 800)), None);
        // '8' starts; then a late retransmission of '7' arrives: ignored.
        assert!(rx.on_packet(1, 2400, &ev(8, false, 160)).is_some());
        assert_eq!(rx.on_packet(1, 800, &ev(7, true, 800)), None);
        assert_eq!(rx.on_packet(1, 2400, &ev(8, true, 800)), None);
        // A late start packet of '8' after its end: still the same event.
        assert_eq!(rx.on_packet(1, 2400, &ev(8, false, 160)), None);
    }

    #[test]
    fn receiver_handles_timestamp_wraparound() {
        let mut rx = TelephoneEventReceiver::new();
        let before = u32::MAX - 100;
        assert!(rx.on_packet(9, before, &ev(3, true, 800)).is_some());
        // The next press has wrapped past zero: newer, reported.
        assert_eq!(
            rx.on_packet(9, 1500, &ev(4, false, 160)).map(|d| d.digit),
            Some('4')
        );
        // And the old one, seen again, is behind.
        assert_eq!(rx.on_packet(9, before, &ev(3, true, 800)), None);
    }

    #[test]
    fn receiver_resets_on_a_new_stream_or_a_big_jump() {
        let mut rx = TelephoneEventReceiver::new();
        assert!(rx.on_packet(1, 50_000, &ev(1, true, 800)).is_some());
        // A new SSRC with a lower timestamp: a new stream, reported.
        assert!(rx.on_packet(2, 10, &ev(1, false, 160)).is_some());
        // The same SSRC jumping far backwards (a sender that reset its clock): reported.
        assert!(
            rx.on_packet(2, 10u32.wrapping_sub(1_000_000), &ev(5, false, 160))
                .is_some()
        );
        rx.reset();
        assert!(rx.on_packet(2, 10, &ev(1, false, 160)).is_some());
    }

    #[test]
    fn receiver_follows_a_long_event_across_segments() {
        let mut rx = TelephoneEventReceiver::new();
        assert!(rx.on_packet(5, 1000, &ev(0, false, 160)).is_some());
        assert_eq!(rx.on_packet(5, 1000, &ev(0, false, 0xFFFF)), None);
        // Next segment: timestamp advanced by the full duration, same code, no end yet.
        assert_eq!(rx.on_packet(5, 1000 + 0xFFFF, &ev(0, false, 1600)), None);
        assert_eq!(rx.on_packet(5, 1000 + 0xFFFF, &ev(0, true, 2400)), None);
        // Whereas the same key pressed again after a short press is a new digit, even if
        // every end packet of the first press was lost.
        assert!(rx.on_packet(5, 200_000, &ev(0, false, 800)).is_some());
        assert!(rx.on_packet(5, 201_600, &ev(0, false, 160)).is_some());
    }

    #[test]
    fn receiver_ignores_non_dtmf_events() {
        let mut rx = TelephoneEventReceiver::new();
        assert_eq!(rx.on_packet(1, 100, &ev(16, false, 160)), None, "flash");
        assert_eq!(rx.on_packet(1, 100, &ev(16, true, 800)), None);
        assert!(rx.on_packet(1, 2000, &ev(16 - 7, false, 160)).is_some());
    }

    #[test]
    fn sender_makes_a_100ms_tone_with_three_end_packets() {
        let tone = DtmfTone::for_digit('5').unwrap();
        assert_eq!(tone.packet_count(), 7);
        let packets: Vec<_> = tone.packets(48_000, 65_534).collect();
        assert_eq!(packets.len(), 7);
        let reports: Vec<_> = packets
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        let durations: Vec<u16> = reports.iter().map(|r| r.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = reports.iter().map(|r| r.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(reports.iter().all(|r| r.event == 5 && r.volume == 10));
        assert!(packets.iter().all(|p| p.timestamp == 48_000));
        let seqs: Vec<u16> = packets.iter().map(|p| p.sequence).collect();
        assert_eq!(seqs, [65_534, 65_535, 0, 1, 2, 3, 4], "wraps");
        let markers: Vec<bool> = packets.iter().map(|p| p.marker).collect();
        assert_eq!(markers, [true, false, false, false, false, false, false]);
        let offsets: Vec<u32> = packets.iter().map(|p| p.send_offset_ms).collect();
        assert_eq!(offsets, [0, 20, 40, 60, 80, 100, 120]);
        assert_eq!(packets[0].payload, [0x05, 0x0A, 0x00, 0xA0]);
        // Audio resumes on the eighth tick.
        assert_eq!(tone.following_media(48_000, 65_534), (48_000 + 7 * 160, 5));
    }

    #[test]
    fn sender_output_round_trips_through_the_receiver() {
        let mut rx = TelephoneEventReceiver::new();
        let mut ts = 0u32;
        let mut seq = 100u16;
        let mut heard = String::new();
        for digit in "159#*D".chars() {
            let tone = DtmfTone::for_digit(digit).unwrap();
            for p in tone.packets(ts, seq) {
                let report = TelephoneEvent::parse(&p.payload).unwrap();
                heard.extend(rx.on_packet(42, p.timestamp, &report).map(|d| d.digit));
            }
            (ts, seq) = tone.following_media(ts, seq);
        }
        assert_eq!(heard, "159#*D");
    }

    #[test]
    fn sender_odd_durations() {
        // 50 ms at 20 ms pacing: 160, 320, then the end at 400, three times.
        let tone = DtmfTone {
            duration_ms: 50,
            ..DtmfTone::for_digit('A').unwrap()
        };
        let d: Vec<(u16, bool)> = tone
            .packets(0, 0)
            .map(|p| {
                let r = TelephoneEvent::parse(&p.payload).unwrap();
                (r.duration, r.end)
            })
            .collect();
        assert_eq!(
            d,
            [
                (160, false),
                (320, false),
                (400, true),
                (400, true),
                (400, true)
            ]
        );
        // Zero-length still sends one (ended) report, three times.
        let tone = DtmfTone {
            duration_ms: 0,
            ..tone
        };
        assert_eq!(tone.packets(0, 0).len(), 3);
        assert_eq!(DtmfTone::for_digit('x'), Err(DtmfError::NotADigit('x')));
        // Absurd settings are clamped, never overflow: 8 s cap, 1 s pacing.
        let tone = DtmfTone {
            duration_ms: u32::MAX,
            interval_ms: u32::MAX,
            ..tone
        };
        let last = tone.packets(0, 0).last().unwrap();
        assert_eq!(
            TelephoneEvent::parse(&last.payload).unwrap().duration,
            u16::MAX
        );
        assert_eq!(tone.packet_count(), 9 + 2);
        assert_eq!(last.send_offset_ms, 10_000);
    }

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(
            parse_dtmf_relay(b"Signal=5\r\nDuration=160\r\n"),
            Ok(DtmfRelay {
                digit: '5',
                duration_ms: Some(160)
            })
        );
        assert_eq!(
            parse_dtmf_relay(b"signal = #\nduration= 250"),
            Ok(DtmfRelay {
                digit: '#',
                duration_ms: Some(250)
            })
        );
        assert_eq!(
            parse_dtmf_relay(b"Duration=100\r\nSignal=d\r\n"),
            Ok(DtmfRelay {
                digit: 'D',
                duration_ms: Some(100)
            })
        );
        assert_eq!(
            parse_dtmf_relay(b"Signal=*").map(|r| (r.digit, r.duration_ms)),
            Ok(('*', None))
        );
        // Event numbers for * and #, as some gateways send.
        assert_eq!(parse_dtmf_relay(b"Signal=10").map(|r| r.digit), Ok('*'));
        assert_eq!(parse_dtmf_relay(b"Signal=11").map(|r| r.digit), Ok('#'));
        assert_eq!(parse_dtmf_relay(b"Signal=15").map(|r| r.digit), Ok('D'));
        // Unknown keys and garbage lines are ignored.
        assert_eq!(
            parse_dtmf_relay(b"Foo=bar\r\nnonsense\r\nSignal=0\r\n").map(|r| r.digit),
            Ok('0')
        );

        assert_eq!(
            parse_dtmf_relay(b"Duration=160"),
            Err(DtmfError::MissingSignal)
        );
        assert_eq!(parse_dtmf_relay(b""), Err(DtmfError::MissingSignal));
        assert_eq!(
            parse_dtmf_relay(b"Signal=!"),
            Err(DtmfError::BadSignal),
            "flash"
        );
        assert_eq!(parse_dtmf_relay(b"Signal=16"), Err(DtmfError::BadSignal));
        assert_eq!(parse_dtmf_relay(b"Signal=55"), Err(DtmfError::BadSignal));
        assert_eq!(parse_dtmf_relay(b"Signal="), Err(DtmfError::BadSignal));
        assert_eq!(
            parse_dtmf_relay(b"Signal=5\r\nDuration=-1"),
            Err(DtmfError::BadDuration)
        );
        let big = vec![b' '; MAX_DTMF_RELAY_BODY + 1];
        assert_eq!(
            parse_dtmf_relay(&big),
            Err(DtmfError::BodyTooLarge(MAX_DTMF_RELAY_BODY + 1))
        );
    }

    #[test]
    fn dtmf_relay_body_round_trip() {
        let relay = DtmfRelay {
            digit: '#',
            duration_ms: Some(160),
        };
        assert_eq!(relay.to_string(), "Signal=#\r\nDuration=160\r\n");
        assert_eq!(parse_dtmf_relay(relay.to_string().as_bytes()), Ok(relay));
    }
}
