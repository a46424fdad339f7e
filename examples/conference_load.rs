//! Conference load for `benches/conference/run.py`: participants that each send a tone
//! (PCMU, 20 ms packets, each at its own offset within the tick) into a conference and
//! measure what they hear back: the mixer's stream, one packet per 20 ms tick.
//!
//! ```text
//! cargo run --release --example conference_load -- PARTICIPANTS ROOM_SIZE SECONDS \
//!     [--warmup S] [--threads T] [--sample N] [--talkers K]
//! ```
//!
//! Protocol (JSON lines; everything on 127.0.0.1):
//!
//! 1. Phase 1, stdout: one line per participant, `{"i":i,"port":P}` (its RTP socket, for
//!    the SDP offer of its call), then `{"ready":PARTICIPANTS}`. Participant `i` is in room
//!    `i / ROOM_SIZE`, at position `k = i % ROOM_SIZE`, and sends the tone
//!    `tone_hz(k)` if `k < K` (`--talkers`, default all), silence otherwise. Every
//!    participant of a generator thread shares that thread's socket (its port is in all
//!    their offers).
//! 2. Phase 2, stdin: `{"i":i,"relay":PA}` for each participant whose call was answered
//!    (PA: the switch's port from its answer), then `{"go":true}` (or end of input).
//! 3. Every participant with a relay port sends for WARMUP + SECONDS; what arrives in the
//!    last SECONDS is measured: `{"media":"start"}` and `{"media":"end"}` on stdout mark
//!    that window (for the switch's CPU over it).
//! 4. Stdout, one JSON line: `participants`, `run` (with a relay port), `sent`, `send_err`,
//!    `received` (in the window), `expected` (run × SECONDS × 50), `short_pct` (frames
//!    that never came: 100 × (1 − received / expected)), `seq_lost` (gaps in the mixer's
//!    sequence numbers: lost between the switch and here), `silent_participants` (heard
//!    nothing at all), `late_us_p50/p99/p999/max` (each packet's arrival against its
//!    participant's 20 ms grid, anchored at its earliest packet: the pacing a listener
//!    hears, this process's own scheduling included), and `content`: for every SAMPLE-th
//!    room, whether each participant heard every other talker's tone (up to 6 talkers:
//!    all are mixed; more: at least one, the loudest being mixed) and never its own
//!    (`checked`, `ok`, and the first failures).
#![allow(clippy::disallowed_methods)] // a load generator reads the real clock

#[path = "load_driver/relay_addrs.rs"]
mod relay_addrs;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};
use switchboard::media::g711::G711Law;
use switchboard::media::mmsg::{BATCH, RecvBatch, SendQueue};

const FRAME: usize = 160;
const TICK: Duration = Duration::from_millis(20);
/// Goertzel power of a tone counted as heard (a −12 dBFS tone gives ~1.3e7).
const PRESENT: f64 = 1e5;
/// Samples kept per checked participant (4 s).
const CHECK_SAMPLES: usize = 32_000;

fn tone_hz(k: usize) -> f64 {
    // 3-party rooms: 400, 700, 1100 Hz (no harmonics of each other); larger rooms spread
    // the rest over the band.
    match k {
        0 => 400.0,
        1 => 700.0,
        2 => 1100.0,
        k => 1250.0 + 27.0 * (k - 3) as f64,
    }
}

fn goertzel(x: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
}

struct Args {
    participants: usize,
    room: usize,
    seconds: u64,
    warmup: u64,
    threads: usize,
    sample: usize,
    /// Participants of each room that talk (the first ones); the others send silence.
    talkers: usize,
}

fn parse_args() -> Result<Args, String> {
    let usage = "conference_load PARTICIPANTS ROOM_SIZE SECONDS [--warmup S] [--threads T] [--sample N] [--talkers K]";
    let mut pos = Vec::new();
    let mut a = Args {
        participants: 0,
        room: 3,
        seconds: 10,
        warmup: 2,
        threads: 1,
        sample: 10,
        talkers: usize::MAX,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number; {usage}"))
        };
        match arg.as_str() {
            "--warmup" => a.warmup = val("--warmup")?,
            "--threads" => a.threads = val("--threads")?.max(1) as usize,
            "--sample" => a.sample = val("--sample")?.max(1) as usize,
            "--talkers" => a.talkers = val("--talkers")? as usize,
            _ => pos.push(arg.parse::<u64>().map_err(|_| usage.to_string())?),
        }
    }
    let [p, r, s] = pos[..] else {
        return Err(usage.into());
    };
    (a.participants, a.room, a.seconds) = (p as usize, r.max(1) as usize, s);
    Ok(a)
}

struct Participant {
    i: usize,
    relay: Option<SocketAddr>,
    hz: f64,
    seq: u16,
    ts: u32,
    ssrc: u32,
    /// When it sends next.
    next: Instant,
    /// In the window: packets, arrival offsets against the 20 ms grid (µs), the sequence
    /// range seen, and (checked participants) the audio.
    received: u64,
    offsets: Vec<i64>,
    first_seq: Option<u32>,
    last_seq: u32,
    ext_seq: u32,
    audio: Option<Vec<i16>>,
}

impl Participant {
    /// Its next packet, into `out`.
    fn packet(&mut self, out: &mut [u8; 12 + FRAME]) {
        let mut pcm = [0i16; FRAME];
        for (n, s) in pcm.iter_mut().enumerate() {
            let t = f64::from(self.ts.wrapping_add(n as u32)) / 8000.0;
            *s = (8000.0 * (2.0 * std::f64::consts::PI * self.hz * t).sin()) as i16;
        }
        out[0] = 0x80;
        out[1] = 0;
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        G711Law::Pcmu.encode_slice(&pcm, &mut out[12..]);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        self.next += TICK;
    }

    /// A packet of the mix arrived at `at`.
    fn heard(&mut self, data: &[u8], at: Instant, window_start: Instant) {
        let seq = u16::from_be_bytes([data[2], data[3]]);
        // Extend the 16-bit sequence number (RFC 3550 A.1, no reordering check).
        let ext = match self.first_seq {
            None => {
                self.first_seq = Some(u32::from(seq));
                u32::from(seq)
            }
            Some(_) => {
                let last16 = self.ext_seq as u16;
                self.ext_seq
                    .wrapping_add(u32::from(seq.wrapping_sub(last16)))
            }
        };
        self.ext_seq = ext;
        self.last_seq = self.last_seq.max(ext);
        self.received += 1;
        let since = at.duration_since(window_start).as_micros() as i64;
        let grid = i64::from(ext.wrapping_sub(self.first_seq.unwrap_or(0))) * 20_000;
        self.offsets.push(since - grid);
        if let Some(audio) = self.audio.as_mut()
            && audio.len() < CHECK_SAMPLES
        {
            audio.extend(
                data[12..12 + FRAME]
                    .iter()
                    .map(|&b| G711Law::Pcmu.decode(b)),
            );
        }
    }
}

#[derive(Default)]
struct Tally {
    sent: u64,
    send_err: u64,
    received: u64,
    seq_lost: u64,
    silent: u64,
    late_us: Vec<i64>,
    checked: u64,
    ok: u64,
    failures: Vec<String>,
}

/// One thread's participants share one socket (the port in all their offers): sends go out
/// in `sendmmsg` batches, the mix comes back in `recvmmsg` batches, told apart by the
/// switch port it came from (each participant's relay port). A socket per participant
/// would cost the generator a system call per packet each way and starve the switch of
/// the machine's second core.
fn run_thread(
    sock: std::net::UdpSocket,
    mut ps: Vec<Participant>,
    a: &Args,
    room_tones: &[f64],
    start: Instant,
) -> Tally {
    let mut sock = UdpSocket::from_std(sock);
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(&mut sock, Token(0), Interest::READABLE)
        .expect("register");
    let by_relay: HashMap<SocketAddr, usize> = ps
        .iter()
        .enumerate()
        .filter_map(|(n, p)| p.relay.map(|r| (r, n)))
        .collect();
    // Participants in sending order (each keeps its offset within the tick).
    let mut order: Vec<usize> = (0..ps.len()).filter(|&n| ps[n].relay.is_some()).collect();
    order.sort_by_key(|&n| ps[n].next);
    let mut cursor = 0;
    let window_start = start + Duration::from_secs(a.warmup);
    let end = window_start + Duration::from_secs(a.seconds);
    let linger = end + Duration::from_millis(300);
    let mut events = Events::with_capacity(64);
    let mut res = Tally::default();
    let mut recv = RecvBatch::new();
    let mut queue = SendQueue::new();
    let mut pkts = vec![[0u8; 12 + FRAME]; BATCH];
    loop {
        let now = Instant::now();
        if now >= linger {
            break;
        }
        // Send whatever is due, a batch at a time.
        let mut next_due = linger;
        if now < end && !order.is_empty() {
            loop {
                let mut n = 0;
                while n < BATCH {
                    let p = &mut ps[order[cursor]];
                    if p.next > now {
                        break;
                    }
                    p.packet(&mut pkts[n]);
                    cursor = (cursor + 1) % order.len();
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                let mut batch = queue.batch();
                for (k, pkt) in pkts[..n].iter().enumerate() {
                    let to = ps[order[(cursor + order.len() - n + k) % order.len()]]
                        .relay
                        .expect("only participants with a relay are in order");
                    batch.push(pkt, to);
                }
                let sent = batch.flush(sock.as_fd());
                res.sent += sent as u64;
                if n < BATCH {
                    break;
                }
            }
            next_due = ps[order[cursor]].next;
        }
        let wait = next_due.saturating_duration_since(Instant::now());
        if poll.poll(&mut events, Some(wait)).is_err() {
            continue;
        }
        if events.is_empty() {
            continue;
        }
        while let Ok(n) = recv.recv(sock.as_fd()) {
            let at = Instant::now();
            for (data, from) in recv.packets() {
                if at < window_start || at > end || data.len() < 12 + FRAME {
                    continue;
                }
                if let Some(&k) = by_relay.get(&from) {
                    ps[k].heard(data, at, window_start);
                }
            }
            if n < BATCH {
                break;
            }
        }
    }
    for p in &ps {
        if p.relay.is_none() {
            continue;
        }
        res.received += p.received;
        if let Some(first) = p.first_seq {
            let span = u64::from(p.last_seq - first) + 1;
            res.seq_lost += span.saturating_sub(p.received);
        }
        if p.received == 0 {
            res.silent += 1;
        }
        if let Some(min) = p.offsets.iter().min() {
            res.late_us.extend(p.offsets.iter().map(|o| o - min));
        }
        if let Some(audio) = &p.audio {
            res.checked += 1;
            let k = p.i % a.room;
            let mut why = Vec::new();
            if audio.len() < CHECK_SAMPLES / 2 {
                why.push(format!("only {} samples", audio.len()));
            } else {
                // Up to 6 talkers are all mixed: each must be heard. Past that only the
                // loudest are: some other must be heard.
                let mut others_heard = 0;
                for (j, &hz) in room_tones.iter().enumerate() {
                    let power = goertzel(audio, hz);
                    if j == k && power >= PRESENT / 100.0 {
                        why.push(format!("hears itself ({hz} Hz power {power:.0})"));
                    }
                    if j != k && power > PRESENT {
                        others_heard += 1;
                    } else if j != k && room_tones.len() <= 6 {
                        why.push(format!("misses {hz} Hz (power {power:.0})"));
                    }
                }
                if others_heard == 0 {
                    why.push("hears nobody".into());
                }
            }
            if why.is_empty() {
                res.ok += 1;
            } else if res.failures.len() < 5 {
                res.failures
                    .push(format!("participant {}: {}", p.i, why.join(", ")));
            }
        }
    }
    res
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A socket with room for a burst of the mix (4 MB each way).
fn bind() -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_recv_buffer_size(4 << 20)?;
    s.set_send_buffer_size(4 << 20)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    Ok(s.into())
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let out = std::io::stdout();
    let mut socks = Vec::with_capacity(a.threads);
    for _ in 0..a.threads {
        match bind() {
            Ok(s) => socks.push(s),
            Err(e) => {
                eprintln!("conference_load: cannot bind a socket: {e}");
                std::process::exit(1);
            }
        }
    }
    let mut ps = Vec::with_capacity(a.participants);
    for i in 0..a.participants {
        let room = i / a.room;
        let sock = &socks[room % a.threads];
        let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
        writeln!(out.lock(), "{}", json!({"i": i, "port": port})).ok();
        ps.push(Participant {
            i,
            relay: None,
            hz: if i % a.room < a.talkers {
                tone_hz(i % a.room)
            } else {
                0.0
            },
            seq: (i as u16).wrapping_mul(7919),
            ts: (i as u32).wrapping_mul(104_729),
            ssrc: 0x5eed_0000 ^ i as u32,
            next: Instant::now(),
            received: 0,
            offsets: Vec::new(),
            first_seq: None,
            last_seq: 0,
            ext_seq: 0,
            audio: (room % a.sample == 0).then(|| Vec::with_capacity(CHECK_SAMPLES)),
        });
    }
    writeln!(out.lock(), "{}", json!({"ready": a.participants})).ok();
    out.lock().flush().ok();
    let relays = relay_addrs::relay_addrs(ps.len());
    for (p, relay) in ps.iter_mut().zip(relays) {
        p.relay = relay;
    }
    let run = ps.iter().filter(|p| p.relay.is_some()).count();
    let room_tones: Vec<f64> = (0..a.room.min(a.talkers)).map(tone_hz).collect();
    let start = Instant::now() + Duration::from_millis(100);
    let n = ps.len();
    for p in ps.iter_mut() {
        p.next = start + TICK.mul_f64(p.i as f64 / n.max(1) as f64);
    }
    // Deal whole rooms to threads.
    let mut shares: Vec<Vec<Participant>> = (0..a.threads).map(|_| Vec::new()).collect();
    for p in ps {
        let t = (p.i / a.room) % a.threads;
        shares[t].push(p);
    }
    let results: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .zip(socks)
            .map(|(share, sock)| {
                let (a, tones) = (&a, &room_tones);
                s.spawn(move || run_thread(sock, share, a, tones, start))
            })
            .collect();
        std::thread::sleep(
            (start + Duration::from_secs(a.warmup)).saturating_duration_since(Instant::now()),
        );
        writeln!(out.lock(), "{}", json!({"media": "start"})).ok();
        out.lock().flush().ok();
        std::thread::sleep(
            (start + Duration::from_secs(a.warmup + a.seconds))
                .saturating_duration_since(Instant::now()),
        );
        writeln!(out.lock(), "{}", json!({"media": "end"})).ok();
        out.lock().flush().ok();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut all = Tally::default();
    for r in results {
        all.sent += r.sent;
        all.send_err += r.send_err;
        all.received += r.received;
        all.seq_lost += r.seq_lost;
        all.silent += r.silent;
        all.late_us.extend(r.late_us);
        all.checked += r.checked;
        all.ok += r.ok;
        all.failures.extend(r.failures);
    }
    all.late_us.sort_unstable();
    let expected = run as u64 * a.seconds * 50;
    let short = if expected == 0 {
        0.0
    } else {
        100.0 * (1.0 - all.received as f64 / expected as f64)
    };
    all.failures.truncate(5);
    writeln!(
        out.lock(),
        "{}",
        json!({
            "participants": a.participants,
            "room_size": a.room,
            "run": run,
            "sent": all.sent,
            "send_err": all.send_err,
            "received": all.received,
            "expected": expected,
            "short_pct": (short * 1000.0).round() / 1000.0,
            "seq_lost": all.seq_lost,
            "silent_participants": all.silent,
            "late_us_p50": pct(&all.late_us, 0.5),
            "late_us_p99": pct(&all.late_us, 0.99),
            "late_us_p999": pct(&all.late_us, 0.999),
            "late_us_max": all.late_us.last().copied().unwrap_or(0),
            "content": {"checked": all.checked, "ok": all.ok, "failures": all.failures},
        })
    )
    .ok();
}
