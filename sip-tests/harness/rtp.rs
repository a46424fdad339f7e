//! A small RTP phone for black-box media tests: a UDP socket on 127.0.0.1 that sends and
//! receives RTP (RFC 3550 fixed header + payload), writes SDP offers and answers that
//! advertise that socket, and reads the switch's SDP.
//!
//! Like the rest of the harness it shares no code with the switch: the RTP header, the SDP
//! reader and the G.711 reference below are written from the RFCs and the ITU-T reference
//! (`g711.c`), so that a bug in the switch's own codec or parser cannot hide itself.

// Receive deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The audio formats a test phone offers or answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// RFC 4733 telephone-event at 8 kHz, dynamic payload type 101.
    TelephoneEvent,
}

impl Codec {
    pub const fn pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::TelephoneEvent => 101,
        }
    }

    pub const fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::TelephoneEvent => "telephone-event/8000",
        }
    }
}

/// One received RTP packet, header fields decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtp {
    pub version: u8,
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

impl Rtp {
    /// Parses the RFC 3550 fixed header (with CSRCs, an extension and padding skipped or
    /// removed); `None` if it is not RTP version 2 or is cut short.
    pub fn parse(bytes: &[u8]) -> Option<Rtp> {
        if bytes.len() < 12 || bytes[0] >> 6 != 2 {
            return None;
        }
        let cc = usize::from(bytes[0] & 0x0F);
        let mut start = 12 + 4 * cc;
        if bytes[0] & 0x10 != 0 {
            let ext = bytes.get(start + 2..start + 4)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        }
        let mut end = bytes.len();
        if bytes[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*bytes.last()?))?;
        }
        if start > end {
            return None;
        }
        Some(Rtp {
            version: 2,
            marker: bytes[1] & 0x80 != 0,
            pt: bytes[1] & 0x7F,
            seq: u16::from_be_bytes([bytes[2], bytes[3]]),
            ts: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            payload: bytes[start..end].to_vec(),
        })
    }
}

/// Builds an RTP packet: version 2, no padding, extension or CSRCs.
pub fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt & 0x7F | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A test phone's RTP socket and its outgoing stream (SSRC, sequence number, timestamp).
pub struct RtpPhone {
    sock: UdpSocket,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

impl RtpPhone {
    /// Binds 127.0.0.1 on an OS-chosen port.
    pub fn new() -> RtpPhone {
        RtpPhone::bind_on("127.0.0.1")
    }

    /// Binds another loopback address (`127.0.0.2`: a host other than the phones').
    pub fn bind_on(ip: &str) -> RtpPhone {
        let sock = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind rtp {ip}:0: {e}"));
        let port = sock.local_addr().unwrap().port();
        // Distinct streams per phone, fixed per port so a failure is reproducible in logs.
        let seed = u32::from(port).wrapping_mul(2_654_435_761);
        RtpPhone {
            sock,
            ssrc: seed ^ 0x5EED_0001,
            seq: (seed >> 16) as u16,
            ts: seed.rotate_left(7),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Sends one packet of our stream to `to` (marker on the first), then advances the
    /// sequence number by one and the timestamp by the payload's length (8 kHz G.711: one
    /// byte per sample). Returns the packet's (seq, ts).
    pub fn send(&mut self, to: SocketAddr, pt: u8, payload: &[u8]) -> (u16, u32) {
        let sent = (self.seq, self.ts);
        let pkt = rtp_packet(pt, false, self.seq, self.ts, self.ssrc, payload);
        self.send_raw(to, &pkt);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(payload.len() as u32);
        sent
    }

    /// One key press as RFC 4733 telephone-events (payload type 101, what `offer` maps
    /// it to), paced at 20 ms: a start, two continuations, then the end packet three times
    /// as §2.5.1.4 recommends. `event` is 0–9, 10 `*`, 11 `#`.
    pub fn press(&mut self, to: SocketAddr, event: u8) {
        let ts = self.ts;
        for (k, end) in [
            (1u16, false),
            (2, false),
            (3, false),
            (4, true),
            (4, true),
            (4, true),
        ] {
            let duration = k * 160;
            let flags = if end { 0x80 } else { 0 } | 10;
            let payload = [event, flags, (duration >> 8) as u8, duration as u8];
            let pkt = rtp_packet(101, k == 1, self.seq, ts, self.ssrc, &payload);
            self.send_raw(to, &pkt);
            self.seq = self.seq.wrapping_add(1);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.ts = ts.wrapping_add(4 * 160);
    }

    /// Sends any bytes to `to`.
    pub fn send_raw(&self, to: SocketAddr, bytes: &[u8]) {
        self.sock.send_to(bytes, to).expect("rtp send");
    }

    /// The next datagram and its source, or `None` once `deadline` has passed.
    pub fn recv_raw_until(&self, deadline: Instant) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                // ICMP port unreachable from an earlier send (Linux reports it here).
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("rtp recv: {e}"),
            }
        }
    }

    /// The next RTP packet (anything else, such as RTCP, is skipped) and its source, or
    /// `None` once `deadline` has passed.
    pub fn recv_until(&self, deadline: Instant) -> Option<(Rtp, SocketAddr)> {
        loop {
            let (bytes, from) = self.recv_raw_until(deadline)?;
            // RTCP (RFC 5761 §4): packet types 200..=204 sit where RTP's M+PT byte is.
            if bytes.len() >= 2 && (200..=204).contains(&bytes[1]) {
                continue;
            }
            if let Some(p) = Rtp::parse(&bytes) {
                return Some((p, from));
            }
        }
    }

    /// An RTP packet already waiting, without blocking (a socket read timeout rounds up to
    /// the kernel's tick, too coarse for a loop that paces 20 ms frames).
    pub fn try_recv(&self) -> Option<(Rtp, SocketAddr)> {
        let mut buf = [0u8; 2048];
        self.sock.set_nonblocking(true).unwrap();
        let got = loop {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if n >= 2 && (200..=204).contains(&buf[1]) {
                        continue;
                    }
                    match Rtp::parse(&buf[..n]) {
                        Some(p) => break Some((p, from)),
                        None => continue,
                    }
                }
                Err(_) => break None,
            }
        };
        self.sock.set_nonblocking(false).unwrap();
        got
    }

    /// The next RTP packet within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<(Rtp, SocketAddr)> {
        self.recv_until(Instant::now() + timeout)
    }

    /// Reads and throws away whatever arrives until `deadline`; returns how many datagrams.
    pub fn drain_until(&self, deadline: Instant) -> usize {
        let mut n = 0;
        while self.recv_raw_until(deadline).is_some() {
            n += 1;
        }
        n
    }

    /// An SDP offer for this socket with `codecs` in order of preference.
    pub fn offer(&self, codecs: &[Codec]) -> String {
        sdp_for(self.local_addr(), codecs)
    }

    /// This socket's SDP answer to `offer`, with those of `codecs` it has.
    pub fn answer(&self, offer: &SdpAudio, codecs: &[Codec]) -> String {
        answer_for(self.local_addr(), offer, codecs)
    }
}

impl Default for RtpPhone {
    fn default() -> Self {
        RtpPhone::new()
    }
}

/// An SDP body advertising `addr` with `codecs` at their usual payload types, sendrecv.
pub fn sdp_for(addr: SocketAddr, codecs: &[Codec]) -> String {
    let formats: Vec<(u8, Codec)> = codecs.iter().map(|&c| (c.pt(), c)).collect();
    sdp_with(addr, &formats)
}

/// An SDP answer from `addr` to `offer`: the `codecs` the offer has, in our order, at the
/// offer's payload type numbers (RFC 3264 §6.1: a dynamic type keeps the offerer's number).
/// Panics if none of them is offered.
pub fn answer_for(addr: SocketAddr, offer: &SdpAudio, codecs: &[Codec]) -> String {
    let formats: Vec<(u8, Codec)> = codecs
        .iter()
        .filter_map(|&c| {
            let name = c.rtpmap().split('/').next().unwrap();
            offer.pt_of(name).map(|pt| (pt, c))
        })
        .collect();
    assert!(
        formats.iter().any(|(_, c)| *c != Codec::TelephoneEvent),
        "none of {codecs:?} in the offer {offer:?}"
    );
    sdp_with(addr, &formats)
}

fn sdp_with(addr: SocketAddr, formats: &[(u8, Codec)]) -> String {
    let ip = addr.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=phone {port} 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {}\r\n",
        pts.join(" "),
        port = addr.port(),
    );
    for (pt, c) in formats {
        s.push_str(&format!("a=rtpmap:{pt} {}\r\n", c.rtpmap()));
        if *c == Codec::TelephoneEvent {
            s.push_str(&format!("a=fmtp:{pt} 0-16\r\n"));
        }
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

/// What an SDP body says about its first audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAudio {
    /// `c=` address (media level, else session level) and the `m=audio` port.
    pub rtp: SocketAddr,
    /// `a=rtcp:` port, if given.
    pub rtcp_port: Option<u16>,
    /// Payload types in `m=` order.
    pub pts: Vec<u8>,
    /// `a=rtpmap:` entries: (pt, "ENCODING/RATE").
    pub rtpmap: Vec<(u8, String)>,
    /// `sendrecv`, `sendonly`, `recvonly` or `inactive` (sendrecv when absent).
    pub direction: String,
}

impl SdpAudio {
    /// Parses `body`; panics with the body if it has no usable audio stream.
    pub fn parse(body: &[u8]) -> SdpAudio {
        let text = String::from_utf8_lossy(body);
        Self::try_parse(&text).unwrap_or_else(|| panic!("no audio stream in SDP:\n{text}"))
    }

    fn try_parse(text: &str) -> Option<SdpAudio> {
        let mut session_ip: Option<IpAddr> = None;
        let mut media_ip: Option<IpAddr> = None;
        let mut session_dir: Option<String> = None;
        let mut audio: Option<(u16, Vec<u8>)> = None;
        let mut in_audio = false;
        let mut seen_media = false;
        let mut rtcp_port = None;
        let mut rtpmap = Vec::new();
        let mut direction: Option<String> = None;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(m) = line.strip_prefix("m=") {
                if audio.is_some() {
                    break; // only the first audio stream
                }
                seen_media = true;
                let mut f = m.split_whitespace();
                in_audio = f.next() == Some("audio");
                if in_audio {
                    let port = f.next()?.parse().ok()?;
                    let _proto = f.next()?;
                    let pts = f.filter_map(|p| p.parse().ok()).collect();
                    audio = Some((port, pts));
                }
                continue;
            }
            if seen_media && !in_audio {
                continue;
            }
            if let Some(c) = line.strip_prefix("c=") {
                let ip = c
                    .split_whitespace()
                    .nth(2)?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()?;
                if seen_media {
                    media_ip = Some(ip);
                } else {
                    session_ip = Some(ip);
                }
            } else if let Some(a) = line.strip_prefix("a=") {
                let (name, value) = a.split_once(':').unwrap_or((a, ""));
                match name {
                    "rtpmap" => {
                        let (pt, enc) = value.split_once(' ')?;
                        rtpmap.push((pt.parse().ok()?, enc.trim().to_string()));
                    }
                    "rtcp" if seen_media => {
                        rtcp_port = value.split_whitespace().next()?.parse().ok();
                    }
                    "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
                        if seen_media {
                            direction = Some(name.to_string());
                        } else {
                            session_dir = Some(name.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let (port, pts) = audio?;
        let ip = media_ip.or(session_ip)?;
        Some(SdpAudio {
            rtp: SocketAddr::new(ip, port),
            rtcp_port,
            pts,
            rtpmap,
            direction: direction
                .or(session_dir)
                .unwrap_or_else(|| "sendrecv".to_string()),
        })
    }

    /// The payload type this SDP maps to `encoding` (e.g. "PCMU"), static types included.
    pub fn pt_of(&self, encoding: &str) -> Option<u8> {
        let mapped = self.rtpmap.iter().find(|(pt, enc)| {
            self.pts.contains(pt)
                && enc
                    .split('/')
                    .next()
                    .is_some_and(|e| e.eq_ignore_ascii_case(encoding))
        });
        if let Some((pt, _)) = mapped {
            return Some(*pt);
        }
        let fixed = match encoding.to_ascii_uppercase().as_str() {
            "PCMU" => 0,
            "PCMA" => 8,
            _ => return None,
        };
        self.pts.contains(&fixed).then_some(fixed)
    }

    /// The first payload type of the `m=` line: the codec an answer chose.
    pub fn first_pt(&self) -> u8 {
        *self.pts.first().expect("an m= line with a payload type")
    }
}

// ---------------------------------------------------------------------------------------
// G.711 reference (ITU-T G.191 / Sun `g711.c`), 16-bit scale
// ---------------------------------------------------------------------------------------

/// Linear 16-bit value of a μ-law code (Sun `ulaw2linear`).
pub fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = ((i32::from(u) & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// Linear 16-bit value of an A-law code (Sun `alaw2linear`).
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = (i32::from(a) & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// μ-law code (Sun `linear2ulaw`) of a 16-bit sample.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let mut pcm = i32::from(sample) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(8159) + 33;
    match SEG_END.iter().position(|&e| pcm <= e) {
        None => (0x7F ^ mask) as u8,
        Some(seg) => {
            let uval = ((seg as i32) << 4) | ((pcm >> (seg + 1)) & 0x0F);
            (uval ^ mask) as u8
        }
    }
}

/// The code of law `to_table` whose value is nearest to `value`, on the same side of zero
/// as `negative` says, ties to the smaller magnitude: how a transcoder that wants the far
/// end to hear the closest sound maps one G.711 law onto the other.
fn nearest(value: i32, negative: bool, decode: fn(u8) -> i16) -> u8 {
    (0..=255u8)
        .filter(|&c| (c < 0x80) == negative)
        .min_by_key(|&c| {
            let v = i32::from(decode(c));
            ((v - value).abs(), v.abs())
        })
        .unwrap()
}

/// A-law code → the μ-law code nearest in value (sign kept).
pub fn alaw_to_ulaw_nearest(a: u8) -> u8 {
    nearest(i32::from(alaw_to_linear(a)), a < 0x80, ulaw_to_linear)
}

/// μ-law code → the A-law code nearest in value (sign kept).
pub fn ulaw_to_alaw_nearest(u: u8) -> u8 {
    nearest(i32::from(ulaw_to_linear(u)), u < 0x80, alaw_to_linear)
}
