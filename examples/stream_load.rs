//! Media-stream load for `benches/streams/run.py`: callers whose calls run
//! `<Connect><Stream>` to an echo agent served here, each sending 20 ms PCMU frames and
//! timing each frame's way back (caller → switch → app → switch → caller).
//!
//! ```text
//! cargo run --release --example stream_load -- CALLERS SECONDS [--warmup S]
//! ```
//!
//! Protocol (JSON lines; everything on 127.0.0.1):
//!
//! 1. Stdout: `{"agent":"ws://127.0.0.1:P/agent"}` (the echo agent's URL, for the TwiML),
//!    `{"port":P}` (the one RTP socket every caller sends from and hears on, for the SDP
//!    offers), then `{"ready":CALLERS}`.
//! 2. Stdin: `{"i":i,"relay":PA}` for each caller whose call was answered (PA: the switch's
//!    port from its answer), then `{"go":true}` (or end of input).
//! 3. Every caller with a relay port sends for WARMUP + SECONDS, each at its own offset
//!    within the 20 ms tick; `{"media":"start"}` and `{"media":"end"}` mark the measured
//!    window (the last SECONDS).
//! 4. Stdout, one JSON line: `callers`, `run`, `streams` (WebSockets the agent accepted),
//!    `agent_media` (media messages it echoed), `sent` (frames sent in the window),
//!    `echoed` (of those, how many came back by 1 s after the window), `lost`,
//!    `lost_pct`, `rtt_ms_p50/p90/p99/p999/max` (send to echo arrival, this process's
//!    scheduling included), and `silent_callers` (heard nothing in the window).
//!
//! The echo agent follows Twilio's published schema: every `media` message it gets goes
//! back as the app's `media` with the same payload, at once.
#![allow(clippy::disallowed_methods)] // a load generator reads the real clock

#[path = "load_driver/relay_addrs.rs"]
mod relay_addrs;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use socket2::{Domain, Protocol, Socket, Type};
use switchboard::media::mmsg::{BATCH, RecvBatch, SendQueue};
use tokio_tungstenite::tungstenite::Message;

const FRAME: usize = 160;
const TICK: Duration = Duration::from_millis(20);
/// Frames whose send time is remembered per caller (5 s): an echo later than that is lost.
const RING: usize = 256;
const MAGIC: &[u8; 4] = b"SWBS";
const LINGER: Duration = Duration::from_secs(1);

struct Caller {
    relay: Option<SocketAddr>,
    seq: u16,
    ts: u32,
    ssrc: u32,
    next: Instant,
    /// When each of the last RING frames left (by seq % RING), and whether it was in the
    /// window and not yet echoed.
    sent_at: Vec<(u16, Instant, bool)>,
    heard: u64,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    echoed: u64,
    rtt_us: Vec<u32>,
}

/// The echo agent: accepts every WebSocket, echoes each media payload.
async fn agent(listener: tokio::net::TcpListener, streams: Arc<AtomicU64>, media: Arc<AtomicU64>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (streams, media) = (streams.clone(), media.clone());
        tokio::spawn(async move {
            // A small read buffer: tungstenite zeroes the whole buffer before each read.
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4096);
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
            else {
                return;
            };
            streams.fetch_add(1, Ordering::Relaxed);
            while let Some(Ok(frame)) = ws.next().await {
                let Message::Text(t) = frame else { continue };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    continue;
                };
                if v["event"] == "media" {
                    media.fetch_add(1, Ordering::Relaxed);
                    let echo = json!({"event": "media", "streamSid": v["streamSid"],
                        "media": {"payload": v["media"]["payload"]}});
                    if ws.send(Message::text(echo.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

fn bind() -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_recv_buffer_size(8 << 20)?;
    s.set_send_buffer_size(8 << 20)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    Ok(s.into())
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[k]) / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "stream_load CALLERS SECONDS [--warmup S]";
    let mut pos = Vec::new();
    let mut warmup = 3u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--warmup" => warmup = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            v => pos.push(v.parse::<u64>().unwrap_or_else(|_| {
                eprintln!("{usage}");
                std::process::exit(2)
            })),
        }
    }
    let [callers, seconds] = pos[..] else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let callers = callers as usize;

    // The agent on its own runtime (two workers: it shares the machine with the switch).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("agent listener");
    let agent_addr = listener.local_addr().expect("agent address");
    let (streams, media) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    rt.spawn(agent(listener, streams.clone(), media.clone()));

    let std_sock = bind().unwrap_or_else(|e| {
        eprintln!("stream_load: cannot bind: {e}");
        std::process::exit(1)
    });
    let port = std_sock.local_addr().map(|a| a.port()).unwrap_or(0);
    let out = std::io::stdout();
    writeln!(
        out.lock(),
        "{}",
        json!({"agent": format!("ws://{agent_addr}/agent")})
    )
    .ok();
    writeln!(out.lock(), "{}", json!({"port": port})).ok();
    writeln!(out.lock(), "{}", json!({"ready": callers})).ok();
    out.lock().flush().ok();

    let mut cs: Vec<Caller> = (0..callers)
        .map(|i| Caller {
            relay: None,
            seq: (i as u16).wrapping_mul(7919),
            ts: (i as u32).wrapping_mul(104_729),
            ssrc: 0x5eed_0000 ^ i as u32,
            next: Instant::now(),
            sent_at: vec![(0, Instant::now(), false); RING],
            heard: 0,
        })
        .collect();
    let relays = relay_addrs::relay_addrs(cs.len());
    for (c, relay) in cs.iter_mut().zip(relays) {
        c.relay = relay;
    }
    let run = cs.iter().filter(|c| c.relay.is_some()).count();
    let start = Instant::now() + Duration::from_millis(100);
    for (i, c) in cs.iter_mut().enumerate() {
        c.next = start + TICK.mul_f64(i as f64 / callers.max(1) as f64);
    }
    let window_start = start + Duration::from_secs(warmup);
    let end = window_start + Duration::from_secs(seconds);
    let linger = end + LINGER;

    let mut sock = UdpSocket::from_std(std_sock);
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(&mut sock, Token(0), Interest::READABLE)
        .expect("register");
    let by_relay: HashMap<SocketAddr, usize> = cs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.relay.map(|r| (r, i)))
        .collect();
    let mut order: Vec<usize> = (0..cs.len()).filter(|&i| cs[i].relay.is_some()).collect();
    order.sort_by_key(|&i| cs[i].next);
    let mut cursor = 0;
    let mut events = Events::with_capacity(64);
    let mut recv = RecvBatch::new();
    let mut queue = SendQueue::new();
    let mut pkts = vec![[0u8; 12 + FRAME]; BATCH];
    let mut tally = Tally::default();
    let (mut said_start, mut said_end) = (false, false);
    loop {
        let now = Instant::now();
        if now >= linger {
            break;
        }
        if !said_start && now >= window_start {
            said_start = true;
            writeln!(out.lock(), "{}", json!({"media": "start"})).ok();
            out.lock().flush().ok();
        }
        if !said_end && now >= end {
            said_end = true;
            writeln!(out.lock(), "{}", json!({"media": "end"})).ok();
            out.lock().flush().ok();
        }
        let mut next_due = linger;
        if now < end && !order.is_empty() {
            loop {
                let mut n = 0;
                let mut dests = [None; BATCH];
                while n < BATCH {
                    let i = order[cursor];
                    let c = &mut cs[i];
                    if c.next > now {
                        break;
                    }
                    let p = &mut pkts[n];
                    p[0] = 0x80;
                    p[1] = 0;
                    p[2..4].copy_from_slice(&c.seq.to_be_bytes());
                    p[4..8].copy_from_slice(&c.ts.to_be_bytes());
                    p[8..12].copy_from_slice(&c.ssrc.to_be_bytes());
                    p[12..14].copy_from_slice(&(i as u16).to_be_bytes());
                    p[14..16].copy_from_slice(&c.seq.to_be_bytes());
                    p[16..20].copy_from_slice(MAGIC);
                    p[20..].fill(0x55);
                    let in_window = c.next >= window_start;
                    c.sent_at[c.seq as usize % RING] = (c.seq, now, in_window);
                    if in_window {
                        tally.sent += 1;
                    }
                    c.seq = c.seq.wrapping_add(1);
                    c.ts = c.ts.wrapping_add(FRAME as u32);
                    c.next += TICK;
                    dests[n] = c.relay;
                    cursor = (cursor + 1) % order.len();
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                let mut batch = queue.batch();
                for (pkt, to) in pkts[..n].iter().zip(dests) {
                    if let Some(to) = to {
                        batch.push(pkt, to);
                    }
                }
                batch.flush(sock.as_fd());
                if n < BATCH {
                    break;
                }
            }
            next_due = cs[order[cursor]].next;
        }
        let wait = next_due.saturating_duration_since(Instant::now());
        if poll.poll(&mut events, Some(wait)).is_err() || events.is_empty() {
            continue;
        }
        while let Ok(n) = recv.recv(sock.as_fd()) {
            let at = Instant::now();
            for (data, from) in recv.packets() {
                if data.len() < 12 + 8 || &data[16..20] != MAGIC {
                    continue;
                }
                let i = u16::from_be_bytes([data[12], data[13]]) as usize;
                let seq = u16::from_be_bytes([data[14], data[15]]);
                // The echo of caller i comes back on caller i's relay port.
                if by_relay.get(&from) != Some(&i) {
                    continue;
                }
                let c = &mut cs[i];
                let slot = &mut c.sent_at[seq as usize % RING];
                if slot.0 == seq && slot.2 {
                    slot.2 = false;
                    tally.echoed += 1;
                    c.heard += 1;
                    let rtt = at.saturating_duration_since(slot.1);
                    tally
                        .rtt_us
                        .push(rtt.as_micros().min(u32::MAX as u128) as u32);
                }
            }
            if n < BATCH {
                break;
            }
        }
    }
    tally.rtt_us.sort_unstable();
    let r = &tally.rtt_us;
    let lost = tally.sent.saturating_sub(tally.echoed);
    let result = json!({
        "callers": callers,
        "run": run,
        "streams": streams.load(Ordering::Relaxed),
        "agent_media": media.load(Ordering::Relaxed),
        "sent": tally.sent,
        "echoed": tally.echoed,
        "lost": lost,
        "lost_pct": if tally.sent > 0 { 100.0 * lost as f64 / tally.sent as f64 } else { 0.0 },
        "rtt_ms_p50": percentile(r, 0.5),
        "rtt_ms_p90": percentile(r, 0.9),
        "rtt_ms_p99": percentile(r, 0.99),
        "rtt_ms_p999": percentile(r, 0.999),
        "rtt_ms_max": r.last().map_or(0.0, |&v| f64::from(v) / 1000.0),
        "silent_callers": cs.iter().filter(|c| c.relay.is_some() && c.heard == 0).count(),
    });
    writeln!(out.lock(), "{result}").ok();
    out.lock().flush().ok();
    rt.shutdown_timeout(Duration::from_millis(200));
}
