//! Bridged SRTP↔RTP load for `benches/srtp/run.py`: per call, an "A" side that is a
//! WebRTC-style endpoint (full ICE, controlling; DTLS client; SRTP; rtcp-mux; str0m in RTP
//! mode, one `Rtc` and one UDP socket per call) and a "B" side that is plain RTP (one UDP
//! socket per call). A relay (our switch, or rtpengine) sits between them. Every packet
//! carries a 160-byte PCMU-sized payload with a magic, the call index, the direction, a
//! sequence number and its send time (µs since the process started), so the receiving side
//! measures one-way latency and loss. 50 packets/s per stream, 2 streams per call (A→B
//! through SRTP into the relay and plain out of it, B→A the other way).
//!
//! ```text
//! cargo run --release --example srtp_load -- CALLS SECONDS [--threads T] [--connect-timeout S]
//! ```
//!
//! Protocol (JSON lines; everything on 127.0.0.1):
//!
//! 1. Phase 1, stdout: one line per call,
//!    `{"call":i,"a_port":P,"ufrag":"..","pwd":"..","fingerprint":"sha-256 AB:..",
//!    "ssrc_a":N,"b_port":Q,"ssrc_b":M}` (the A side's offer parameters and the B side's
//!    port), then `{"ready":CALLS}`. One DTLS certificate serves every A side.
//! 2. Phase 2, stdin: one line per call that was set up,
//!    `{"call":i,"relay_a":"127.0.0.1:PA","ufrag":"..","pwd":"..","fingerprint":"sha-256 ..",
//!    "relay_b":"127.0.0.1:PB","setup":"passive"}` (the relay's SRTP side from its answer
//!    to A, and the port the relay gave B; `setup` is the relay's `a=setup`: the A side is
//!    the DTLS client unless it is `active`), then `{"go":true}` (or end of input). Calls with no line are not
//!    run: they count as offered but never sent.
//! 3. The A sides run ICE and the DTLS handshake (client role) for up to the connect
//!    timeout (default 20 s). Then every stream sends for SECONDS (paced, each stream at
//!    its own offset within the 20 ms tick), and the receivers keep listening 300 ms more.
//!    An A side whose handshake did not complete sends nothing.
//! 4. Stdout: `{"media":"start"}` when the first thread starts sending and `{"media":"end"}`
//!    when the last one has sent its last packet (for measuring CPU over the media phase);
//!    then one JSON line with `calls`, `calls_run`, `handshakes_ok`, `handshake_ms_*`,
//!    `offered_pps` (CALLS × 2 × 50), `sent`, `send_err`, `received`, `loss_pct` (over
//!    sent), `lat_us_p50/p99/p999/max` (both directions), `misrouted` (a packet arriving
//!    on another call's socket), and per direction `a2b` / `b2a` (`sent`, `received`,
//!    `loss_pct`, `lat_us_p50/p99/p999`).
//!
//! `--direct` (the baseline): no relay and no phase 2 (stdin is ignored): each A side
//! talks to an in-process stand-in (ICE-lite, DTLS server, its own socket) that records
//! A→B as it decrypts it and sends B→A as SRTP itself: one hop and one SRTP
//! protection each way, the generator's own costs.
//!
//! The relay's SSRC towards A is not signalled by every relay (ours sends no `a=ssrc`), so
//! the A side declares each SSRC it sees in SRTP headers (they are in clear) before
//! handing the datagram to str0m, as browsers accept unsignalled SSRCs.
// A load generator reads the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::DtlsCert;
use str0m::media::{MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionMap, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

const PPS: u64 = 50;
const TICK: Duration = Duration::from_millis(20);
const PAYLOAD: usize = 160;
const MAGIC: &[u8; 4] = b"SWBL";
const LINGER: Duration = Duration::from_millis(300);

struct Args {
    calls: usize,
    seconds: u64,
    threads: usize,
    connect_timeout: Duration,
    direct: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut pos = Vec::new();
    let mut threads = 2usize;
    let mut connect = 20u64;
    let mut direct = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => {
                threads = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--threads N")?;
            }
            "--connect-timeout" => {
                connect = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--connect-timeout SECONDS")?;
            }
            "--direct" => direct = true,
            _ => pos.push(a),
        }
    }
    let [calls, seconds] = pos.as_slice() else {
        return Err("usage: srtp_load CALLS SECONDS [--threads T] [--connect-timeout S]".into());
    };
    Ok(Args {
        calls: calls.parse().map_err(|_| "CALLS: a number")?,
        seconds: seconds.parse().map_err(|_| "SECONDS: a number")?,
        threads: threads.max(1),
        connect_timeout: Duration::from_secs(connect),
        direct,
    })
}

/// xorshift64*, for ICE credentials (uniqueness, not secrecy, is what a load test needs).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn ice_chars(&mut self, n: usize) -> String {
        const CH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| CH[(self.next() % CH.len() as u64) as usize] as char)
            .collect()
    }
}

/// A call ready to run: what phase 1 made, the relay's answer and (`--direct`) the
/// stand-in's socket and credentials.
type Setup = (Prepared, Answer, Option<(std::net::UdpSocket, IceCreds)>);

/// What phase 1 made for one call.
struct Prepared {
    idx: u32,
    a: std::net::UdpSocket,
    b: std::net::UdpSocket,
    creds: IceCreds,
    ssrc_a: u32,
    ssrc_b: u32,
}

/// The relay's side of one call, from phase 2.
struct Answer {
    relay_a: SocketAddr,
    creds: IceCreds,
    fingerprint: String,
    relay_b: SocketAddr,
    /// We are the DTLS client unless the relay answered `a=setup:active`.
    dtls_client: bool,
}

struct Call {
    idx: u32,
    a: UdpSocket,
    a_local: SocketAddr,
    b: UdpSocket,
    relay_b: SocketAddr,
    rtc: Rtc,
    wake: Instant,
    connected_ms: Option<f64>,
    failed: bool,
    tx: Ssrc,
    known_rx: Vec<u32>,
    seq_a: u64,
    seq_b: u16,
    ssrc_b: u32,
    ts: u32,
    /// `--direct`: the stand-in for the relay.
    peer: Option<Peer>,
}

/// The baseline's stand-in for a relay: ICE-lite, DTLS server, SRTP both ways.
struct Peer {
    sock: UdpSocket,
    local: SocketAddr,
    rtc: Rtc,
    wake: Instant,
    tx: Ssrc,
    seq: u64,
    connected: bool,
    failed: bool,
}

#[derive(Default)]
struct Stats {
    sent: [u64; 2],
    received: [u64; 2],
    lat: [Vec<u32>; 2],
    send_err: u64,
    misrouted: u64,
    handshake_ms: Vec<f64>,
    rtc_errors: u64,
    /// Timer runs (`Input::Timeout` for a due wake-up).
    timeouts: u64,
}

/// Shared, read-only context for the workers.
struct Shared {
    epoch: Instant,
    seconds: u64,
    connect_timeout: Duration,
    threads: usize,
    connecting_done: AtomicUsize,
    /// Threads that started (then finished) sending: the first start and the last end
    /// are announced on stdout, so CPU can be measured over the media phase alone.
    media_started: AtomicUsize,
    media_done: AtomicUsize,
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
    fingerprint: String,
}

const A2B: usize = 0;
const B2A: usize = 1;

fn payload(idx: u32, dir: usize, seq: u32, sent_us: u64) -> [u8; PAYLOAD] {
    let mut p = [0xffu8; PAYLOAD];
    p[0..4].copy_from_slice(MAGIC);
    p[4..8].copy_from_slice(&idx.to_be_bytes());
    p[8] = dir as u8;
    p[9..13].copy_from_slice(&seq.to_be_bytes());
    p[13..21].copy_from_slice(&sent_us.to_be_bytes());
    p
}

/// Records a payload that arrived on call `idx`'s side for direction `dir`.
fn record(stats: &mut Stats, idx: u32, dir: usize, p: &[u8], now_us: u64) {
    if p.len() < 21 || &p[0..4] != MAGIC || usize::from(p[8]) != dir {
        return;
    }
    let call = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    if call != idx {
        stats.misrouted += 1;
        return;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&p[13..21]);
    let sent = u64::from_be_bytes(t);
    stats.received[dir] += 1;
    stats.lat[dir].push(u32::try_from(now_us.saturating_sub(sent)).unwrap_or(u32::MAX));
}

/// The payload of a plain RTP packet (after CSRCs and a header extension).
fn rtp_payload(pkt: &[u8]) -> Option<&[u8]> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let mut off = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*pkt.last()?))?;
    }
    pkt.get(off..end)
}

fn us_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

fn build_peer(
    sock: std::net::UdpSocket,
    creds: IceCreds,
    a: &Prepared,
    a_local: SocketAddr,
    shared: &Shared,
    now: Instant,
) -> Result<Peer, String> {
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(shared.provider.clone())
        .set_dtls_cert(shared.cert.clone())
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_extension_map(ExtensionMap::empty())
        .set_local_ice_credentials(creds)
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
    rtc.add_remote_candidate(Candidate::host(a_local, "udp").map_err(|e| e.to_string())?);
    let mid = Mid::from("0");
    let tx = Ssrc::from(a.ssrc_b);
    {
        let mut api = rtc.direct_api();
        api.set_ice_controlling(false);
        api.set_remote_ice_credentials(a.creds.clone());
        let fp = shared.fingerprint.parse().map_err(|e: String| e)?;
        api.set_remote_fingerprint(fp);
        api.declare_media(mid, MediaKind::Audio);
        api.declare_stream_tx(tx, None, mid, None);
        api.expect_stream_rx(Ssrc::from(a.ssrc_a), None, mid, None);
        api.start_dtls(false).map_err(|e| e.to_string())?;
    }
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(Peer {
        sock: UdpSocket::from_std(sock),
        local,
        rtc,
        wake: now,
        tx,
        seq: 1,
        connected: false,
        failed: false,
    })
}

fn build_call(
    p: Prepared,
    ans: Answer,
    peer: Option<(std::net::UdpSocket, IceCreds)>,
    shared: &Shared,
    now: Instant,
) -> Result<Call, String> {
    let a_local = p.a.local_addr().map_err(|e| e.to_string())?;
    let peer = match peer {
        Some((sock, creds)) => Some(build_peer(sock, creds, &p, a_local, shared, now)?),
        None => None,
    };
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(shared.provider.clone())
        .set_dtls_cert(shared.cert.clone())
        .set_rtp_mode(true)
        .set_extension_map(ExtensionMap::empty())
        .set_local_ice_credentials(p.creds.clone())
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(now);
    let local = Candidate::host(a_local, "udp").map_err(|e| e.to_string())?;
    rtc.add_local_candidate(local);
    let remote = Candidate::host(ans.relay_a, "udp").map_err(|e| e.to_string())?;
    rtc.add_remote_candidate(remote);
    let fp = ans
        .fingerprint
        .parse()
        .map_err(|e| format!("fingerprint {}: {e}", ans.fingerprint))?;
    let mid = Mid::from("0");
    let tx = Ssrc::from(p.ssrc_a);
    {
        let mut api = rtc.direct_api();
        api.set_ice_controlling(true);
        api.set_remote_ice_credentials(ans.creds);
        api.set_remote_fingerprint(fp);
        api.declare_media(mid, MediaKind::Audio);
        api.declare_stream_tx(tx, None, mid, None);
        api.start_dtls(ans.dtls_client).map_err(|e| e.to_string())?;
    }
    p.a.set_nonblocking(true).map_err(|e| e.to_string())?;
    p.b.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(Call {
        idx: p.idx,
        a: UdpSocket::from_std(p.a),
        a_local,
        b: UdpSocket::from_std(p.b),
        relay_b: ans.relay_b,
        rtc,
        wake: now,
        connected_ms: None,
        failed: false,
        tx,
        known_rx: Vec::new(),
        seq_a: 1,
        seq_b: 1,
        ssrc_b: p.ssrc_b,
        ts: 0,
        peer,
    })
}

/// Takes everything the call's `Rtc` has to give.
fn drain(c: &mut Call, now: Instant, t_connect: Instant, shared: &Shared, stats: &mut Stats) {
    loop {
        match c.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                c.wake = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                if c.a.send_to(&t.contents, t.destination).is_err() {
                    stats.send_err += 1;
                }
            }
            Ok(Output::Event(Event::Connected)) => {
                if c.connected_ms.is_none() {
                    let ms = now.duration_since(t_connect).as_secs_f64() * 1000.0;
                    c.connected_ms = Some(ms);
                    stats.handshake_ms.push(ms);
                }
            }
            Ok(Output::Event(Event::RtpPacket(p))) => {
                record(stats, c.idx, B2A, &p.payload, us_since(shared.epoch, now));
            }
            Ok(Output::Event(_)) => {}
            Err(e) => {
                if !c.failed {
                    eprintln!("srtp_load: call {}: {e}", c.idx);
                    stats.rtc_errors += 1;
                }
                c.failed = true;
                c.wake = now + Duration::from_secs(3600);
                return;
            }
        }
    }
}

/// Takes everything the stand-in's `Rtc` has to give (`--direct`).
fn drain_peer(peer: &mut Peer, idx: u32, now: Instant, shared: &Shared, stats: &mut Stats) {
    loop {
        match peer.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                peer.wake = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                if peer.sock.send_to(&t.contents, t.destination).is_err() {
                    stats.send_err += 1;
                }
            }
            Ok(Output::Event(Event::Connected)) => peer.connected = true,
            Ok(Output::Event(Event::RtpPacket(p))) => {
                record(stats, idx, A2B, &p.payload, us_since(shared.epoch, now));
            }
            Ok(Output::Event(_)) => {}
            Err(_) => {
                peer.failed = true;
                peer.wake = now + Duration::from_secs(3600);
                return;
            }
        }
    }
}

/// Reads the stand-in's socket until it would block (`--direct`).
fn on_peer(c: &mut Call, buf: &mut [u8], shared: &Shared, stats: &mut Stats) {
    let idx = c.idx;
    let Some(peer) = c.peer.as_mut() else { return };
    loop {
        let (n, from) = match peer.sock.recv_from(buf) {
            Ok(x) => x,
            Err(_) => return,
        };
        if peer.failed {
            continue;
        }
        let now = Instant::now();
        let Ok(r) = Receive::new(Protocol::Udp, from, peer.local, &buf[..n]) else {
            continue;
        };
        if peer.rtc.handle_input(Input::Receive(now, r)).is_err() {
            stats.rtc_errors += 1;
        }
        drain_peer(peer, idx, now, shared, stats);
    }
}

/// Reads the A socket until it would block.
fn on_a(c: &mut Call, buf: &mut [u8], t_connect: Instant, shared: &Shared, stats: &mut Stats) {
    loop {
        let (n, from) = match c.a.recv_from(buf) {
            Ok(x) => x,
            Err(_) => return,
        };
        if c.failed {
            continue;
        }
        let now = Instant::now();
        let d = &buf[..n];
        // RTP (not RTCP, RFC 5761 §4): declare an unseen SSRC before str0m looks it up.
        if n >= 12 && d[0] >> 6 == 2 && !(64..=95).contains(&(d[1] & 0x7f)) {
            let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
            if !c.known_rx.contains(&ssrc) && c.known_rx.len() < 8 {
                c.known_rx.push(ssrc);
                let mid = Mid::from("0");
                c.rtc
                    .direct_api()
                    .expect_stream_rx(Ssrc::from(ssrc), None, mid, None);
            }
        }
        let Ok(r) = Receive::new(Protocol::Udp, from, c.a_local, d) else {
            continue;
        };
        if c.rtc.handle_input(Input::Receive(now, r)).is_err() {
            stats.rtc_errors += 1;
        }
        drain(c, now, t_connect, shared, stats);
    }
}

/// Reads the B socket until it would block.
fn on_b(c: &mut Call, buf: &mut [u8], shared: &Shared, stats: &mut Stats) {
    loop {
        let n = match c.b.recv_from(buf) {
            Ok((n, _)) => n,
            Err(_) => return,
        };
        if let Some(p) = rtp_payload(&buf[..n]) {
            record(stats, c.idx, A2B, p, us_since(shared.epoch, Instant::now()));
        }
    }
}

fn send_a(c: &mut Call, now: Instant, t_connect: Instant, shared: &Shared, stats: &mut Stats) {
    if c.connected_ms.is_none() || c.failed {
        return;
    }
    let p = payload(
        c.idx,
        A2B,
        c.seq_a as u32,
        us_since(shared.epoch, Instant::now()),
    );
    let seq = c.seq_a;
    c.seq_a += 1;
    let ts = c.ts;
    {
        let mut api = c.rtc.direct_api();
        let Some(stream) = api.stream_tx(&c.tx) else {
            return;
        };
        stream.write_rtp(RtpWrite::new(Pt::from(0), seq.into(), ts, now, &p[..]));
    }
    // str0m's pacer learns of the queued packet on a timeout: without one the packet
    // waits for the session's next timer.
    if c.rtc.handle_input(Input::Timeout(now)).is_err() {
        stats.rtc_errors += 1;
    }
    stats.sent[A2B] += 1;
    drain(c, now, t_connect, shared, stats);
}

fn send_b(c: &mut Call, shared: &Shared, stats: &mut Stats) {
    if let Some(peer) = c.peer.as_mut() {
        if !peer.connected || peer.failed {
            return;
        }
        let now = Instant::now();
        let p = payload(c.idx, B2A, peer.seq as u32, us_since(shared.epoch, now));
        let seq = peer.seq;
        peer.seq += 1;
        {
            let mut api = peer.rtc.direct_api();
            let Some(stream) = api.stream_tx(&peer.tx) else {
                return;
            };
            stream.write_rtp(RtpWrite::new(Pt::from(0), seq.into(), c.ts, now, &p[..]));
        }
        if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
            stats.rtc_errors += 1;
        }
        stats.sent[B2A] += 1;
        drain_peer(peer, c.idx, now, shared, stats);
        return;
    }
    let mut pkt = [0u8; 12 + PAYLOAD];
    pkt[0] = 0x80;
    pkt[1] = 0;
    pkt[2..4].copy_from_slice(&c.seq_b.to_be_bytes());
    pkt[4..8].copy_from_slice(&c.ts.to_be_bytes());
    pkt[8..12].copy_from_slice(&c.ssrc_b.to_be_bytes());
    let p = payload(
        c.idx,
        B2A,
        u32::from(c.seq_b),
        us_since(shared.epoch, Instant::now()),
    );
    pkt[12..].copy_from_slice(&p);
    c.seq_b = c.seq_b.wrapping_add(1);
    if c.b.send_to(&pkt, c.relay_b).is_ok() {
        stats.sent[B2A] += 1;
    } else {
        stats.send_err += 1;
    }
}

/// Runs every due timer; returns the earliest next wake-up.
fn timers(
    calls: &mut [Call],
    now: Instant,
    t_connect: Instant,
    shared: &Shared,
    stats: &mut Stats,
) -> Instant {
    let mut next = now + Duration::from_secs(1);
    for c in calls.iter_mut() {
        if c.wake <= now && !c.failed {
            stats.timeouts += 1;
            if c.rtc.handle_input(Input::Timeout(now)).is_err() {
                stats.rtc_errors += 1;
            }
            drain(c, now, t_connect, shared, stats);
        }
        next = next.min(c.wake);
        let idx = c.idx;
        if let Some(peer) = c.peer.as_mut() {
            if peer.wake <= now && !peer.failed {
                stats.timeouts += 1;
                if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                    stats.rtc_errors += 1;
                }
                drain_peer(peer, idx, now, shared, stats);
            }
            next = next.min(peer.wake);
        }
    }
    next
}

/// Polls the sockets once (up to `until`), handling what arrived.
#[allow(clippy::too_many_arguments)]
fn poll_once(
    poll: &mut Poll,
    events: &mut Events,
    calls: &mut [Call],
    until: Instant,
    buf: &mut [u8],
    t_connect: Instant,
    shared: &Shared,
    stats: &mut Stats,
) {
    let now = Instant::now();
    let timeout = until.saturating_duration_since(now);
    if poll.poll(events, Some(timeout)).is_err() {
        return;
    }
    for ev in events.iter() {
        let t = ev.token().0;
        let Some(c) = calls.get_mut(t / 3) else {
            continue;
        };
        match t % 3 {
            0 => on_a(c, buf, t_connect, shared, stats),
            1 => on_b(c, buf, shared, stats),
            _ => on_peer(c, buf, shared, stats),
        }
    }
}

fn worker(mut calls: Vec<Call>, shared: Arc<Shared>, t_connect: Instant) -> Stats {
    let mut stats = Stats::default();
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("srtp_load: poll: {e}");
            return stats;
        }
    };
    for (i, c) in calls.iter_mut().enumerate() {
        let r1 = poll
            .registry()
            .register(&mut c.a, Token(3 * i), Interest::READABLE);
        let r2 = poll
            .registry()
            .register(&mut c.b, Token(3 * i + 1), Interest::READABLE);
        let r3 = match c.peer.as_mut() {
            Some(peer) => {
                poll.registry()
                    .register(&mut peer.sock, Token(3 * i + 2), Interest::READABLE)
            }
            None => Ok(()),
        };
        if r1.is_err() || r2.is_err() || r3.is_err() {
            eprintln!("srtp_load: cannot register call {}'s sockets", c.idx);
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 2048];
    let shared = &*shared;

    // ICE + DTLS for every call of this thread, then until every thread is done too.
    let deadline = t_connect + shared.connect_timeout;
    let mut next_wake = Instant::now();
    let mut reported = false;
    loop {
        let now = Instant::now();
        if now >= next_wake {
            next_wake = timers(&mut calls, now, t_connect, shared, &mut stats);
        }
        let mine_done = calls.iter().all(|c| {
            (c.connected_ms.is_some() || c.failed)
                && c.peer.as_ref().is_none_or(|p| p.connected || p.failed)
        });
        if !reported && (mine_done || now >= deadline) {
            reported = true;
            shared.connecting_done.fetch_add(1, Ordering::SeqCst);
        }
        if reported && shared.connecting_done.load(Ordering::SeqCst) >= shared.threads {
            break;
        }
        let until = next_wake.min(now + Duration::from_millis(5));
        poll_once(
            &mut poll,
            &mut events,
            &mut calls,
            until,
            &mut buf,
            t_connect,
            shared,
            &mut stats,
        );
    }

    // Media: stream k (A of call k/2 or B of call k/2) sends at start + r·20 ms + k·20 ms / n.
    let n = 2 * calls.len();
    let rounds = shared.seconds * PPS;
    let start = Instant::now();
    if shared.media_started.fetch_add(1, Ordering::SeqCst) == 0 {
        announce("start");
    }
    let hard_end = start + Duration::from_secs(shared.seconds) + Duration::from_millis(500);
    let at = |r: u64, k: usize| -> Instant {
        start + TICK * (r as u32) + TICK.mul_f64(k as f64 / n.max(1) as f64)
    };
    let (mut r, mut k) = (0u64, 0usize);
    while r < rounds && n > 0 {
        let now = Instant::now();
        if now >= hard_end {
            break;
        }
        while r < rounds && at(r, k) <= now {
            let c = &mut calls[k / 2];
            if k % 2 == 0 {
                send_a(c, now, t_connect, shared, &mut stats);
            } else {
                send_b(c, shared, &mut stats);
                c.ts = c.ts.wrapping_add(PAYLOAD as u32);
            }
            k += 1;
            if k == n {
                k = 0;
                r += 1;
            }
        }
        if now >= next_wake {
            next_wake = timers(&mut calls, now, t_connect, shared, &mut stats);
        }
        let until = if r < rounds { at(r, k) } else { now };
        poll_once(
            &mut poll,
            &mut events,
            &mut calls,
            until.min(next_wake),
            &mut buf,
            t_connect,
            shared,
            &mut stats,
        );
    }
    if shared.media_done.fetch_add(1, Ordering::SeqCst) + 1 == shared.threads {
        announce("end");
    }
    let end = Instant::now() + LINGER;
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_wake {
            next_wake = timers(&mut calls, now, t_connect, shared, &mut stats);
        }
        poll_once(
            &mut poll,
            &mut events,
            &mut calls,
            end.min(next_wake),
            &mut buf,
            t_connect,
            shared,
            &mut stats,
        );
    }
    stats
}

/// `{"media":"start"}` / `{"media":"end"}` on stdout.
fn announce(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", json!({ "media": what }));
    let _ = out.flush();
}

fn pct(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p * sorted.len() as f64) as usize).min(sorted.len() - 1);
    Some(sorted[i])
}

fn loss(sent: u64, received: u64) -> f64 {
    if sent == 0 {
        return 0.0;
    }
    let l = 100.0 * (sent.saturating_sub(received)) as f64 / sent as f64;
    (l * 1000.0).round() / 1000.0
}

/// Phase 2's input: one answer line per call that was set up, until `{"go":...}` or EOF.
fn read_answers(prepared: &mut [Option<Prepared>]) -> Vec<Setup> {
    let mut answers = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("go").is_some() {
            break;
        }
        let parsed = (|| {
            let i = usize::try_from(v.get("call")?.as_u64()?).ok()?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let ans = Answer {
                relay_a: s("relay_a")?.parse().ok()?,
                creds: IceCreds {
                    ufrag: s("ufrag")?,
                    pass: s("pwd")?,
                },
                fingerprint: s("fingerprint")?,
                relay_b: s("relay_b")?.parse().ok()?,
                dtls_client: s("setup").as_deref() != Some("active"),
            };
            Some((i, ans))
        })();
        let Some((i, ans)) = parsed else {
            eprintln!("srtp_load: bad answer line: {line}");
            continue;
        };
        if let Some(p) = prepared.get_mut(i).and_then(Option::take) {
            answers.push((p, ans, None));
        }
    }
    answers
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let epoch = Instant::now();
    let provider = Arc::new(str0m::crypto::from_feature_flags());
    let Some(cert) = provider.dtls_provider.generate_certificate() else {
        eprintln!("srtp_load: cannot generate a DTLS certificate");
        std::process::exit(1);
    };
    let fingerprint = {
        let mut probe = RtcConfig::new()
            .set_crypto_provider(provider.clone())
            .set_dtls_cert(cert.clone())
            .build(epoch);
        probe.direct_api().local_dtls_fingerprint().to_string()
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ (u64::from(std::process::id()) << 32)
        | 1;
    let mut rng = Rng(seed);

    // Phase 1: sockets and credentials; the offers' parameters on stdout.
    let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(args.calls);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0..args.calls {
        let bind = || std::net::UdpSocket::bind("127.0.0.1:0");
        let (a, b) = match (bind(), bind()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("srtp_load: bind for call {i}: {e}");
                std::process::exit(1);
            }
        };
        let a_port = a.local_addr().map(|x| x.port()).unwrap_or(0);
        let b_port = b.local_addr().map(|x| x.port()).unwrap_or(0);
        let creds = IceCreds {
            ufrag: rng.ice_chars(8),
            pass: rng.ice_chars(24),
        };
        let idx = i as u32;
        let ssrc_a = 0x5000_0000 + idx;
        let ssrc_b = 0x6000_0000 + idx;
        let line = json!({"call": i, "a_port": a_port, "ufrag": creds.ufrag, "pwd": creds.pass,
            "fingerprint": fingerprint, "ssrc_a": ssrc_a, "b_port": b_port, "ssrc_b": ssrc_b});
        let _ = writeln!(out, "{line}");
        prepared.push(Some(Prepared {
            idx,
            a,
            b,
            creds,
            ssrc_a,
            ssrc_b,
        }));
    }
    let _ = writeln!(out, "{}", json!({"ready": args.calls}));
    let _ = out.flush();
    drop(out);

    // Phase 2: the relay's answers (none with --direct: stdin is not read).
    let mut answers: Vec<Setup> = if args.direct {
        Vec::new()
    } else {
        read_answers(&mut prepared)
    };
    if args.direct {
        // The stand-ins' sockets and credentials; their answers are made here.
        for p in prepared.iter_mut() {
            let Some(p) = p.take() else { continue };
            let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
                eprintln!("srtp_load: cannot bind a stand-in socket");
                std::process::exit(1);
            };
            let Ok(local) = sock.local_addr() else {
                std::process::exit(1);
            };
            let creds = IceCreds {
                ufrag: rng.ice_chars(8),
                pass: rng.ice_chars(24),
            };
            let ans = Answer {
                relay_a: local,
                creds: creds.clone(),
                fingerprint: fingerprint.clone(),
                relay_b: local,
                dtls_client: true,
            };
            answers.push((p, ans, Some((sock, creds))));
        }
    }
    drop(prepared);

    let threads = args.threads.min(answers.len().max(1));
    let shared = Arc::new(Shared {
        epoch,
        seconds: args.seconds,
        connect_timeout: args.connect_timeout,
        threads,
        connecting_done: AtomicUsize::new(0),
        media_started: AtomicUsize::new(0),
        media_done: AtomicUsize::new(0),
        provider,
        cert,
        fingerprint,
    });
    let calls_run = answers.len();
    let mut per_thread: Vec<Vec<Setup>> = (0..threads).map(|_| Vec::new()).collect();
    for (j, pa) in answers.into_iter().enumerate() {
        per_thread[j % threads].push(pa);
    }
    let t_connect = Instant::now();
    let handles: Vec<_> = per_thread
        .into_iter()
        .map(|list| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let now = Instant::now();
                let mut calls = Vec::with_capacity(list.len());
                for (p, a, peer) in list {
                    let idx = p.idx;
                    match build_call(p, a, peer, &shared, now) {
                        Ok(c) => calls.push(c),
                        Err(e) => eprintln!("srtp_load: call {idx}: {e}"),
                    }
                }
                worker(calls, shared, t_connect)
            })
        })
        .collect();
    let mut all = Stats::default();
    for h in handles {
        let Ok(s) = h.join() else {
            eprintln!("srtp_load: a worker panicked");
            continue;
        };
        for d in 0..2 {
            all.sent[d] += s.sent[d];
            all.received[d] += s.received[d];
            all.lat[d].extend_from_slice(&s.lat[d]);
        }
        all.send_err += s.send_err;
        all.misrouted += s.misrouted;
        all.rtc_errors += s.rtc_errors;
        all.timeouts += s.timeouts;
        all.handshake_ms.extend_from_slice(&s.handshake_ms);
    }
    let dir = |d: usize, lat: &mut Vec<u32>| {
        lat.sort_unstable();
        json!({"sent": all.sent[d], "received": all.received[d],
            "loss_pct": loss(all.sent[d], all.received[d]),
            "lat_us_p50": pct(lat, 0.5), "lat_us_p99": pct(lat, 0.99),
            "lat_us_p999": pct(lat, 0.999)})
    };
    let mut lat_a2b = std::mem::take(&mut all.lat[A2B]);
    let mut lat_b2a = std::mem::take(&mut all.lat[B2A]);
    let a2b = dir(A2B, &mut lat_a2b);
    let b2a = dir(B2A, &mut lat_b2a);
    let mut lat: Vec<u32> = lat_a2b;
    lat.extend_from_slice(&lat_b2a);
    lat.sort_unstable();
    let mut hs = all.handshake_ms.clone();
    hs.sort_by(f64::total_cmp);
    let hpct = |p: f64| -> Option<f64> {
        if hs.is_empty() {
            return None;
        }
        let i = ((p * hs.len() as f64) as usize).min(hs.len() - 1);
        Some((hs[i] * 10.0).round() / 10.0)
    };
    let sent = all.sent[0] + all.sent[1];
    let received = all.received[0] + all.received[1];
    let summary = json!({
        "calls": args.calls, "calls_run": calls_run, "threads": threads,
        "handshakes_ok": hs.len(), "handshakes_failed": calls_run - hs.len(),
        "handshake_ms_p50": hpct(0.5), "handshake_ms_p99": hpct(0.99),
        "handshake_ms_max": hs.last().map(|m| (m * 10.0).round() / 10.0),
        "offered_pps": args.calls as u64 * 2 * PPS, "seconds": args.seconds,
        "sent": sent, "send_err": all.send_err, "received": received,
        "loss_pct": loss(sent, received),
        "lat_us_p50": pct(&lat, 0.5), "lat_us_p99": pct(&lat, 0.99),
        "lat_us_p999": pct(&lat, 0.999), "lat_us_max": lat.last(),
        "misrouted": all.misrouted, "rtc_errors": all.rtc_errors, "timer_runs": all.timeouts,
        "a2b": a2b, "b2a": b2a,
    });
    println!("{summary}");
}
