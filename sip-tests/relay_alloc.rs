//! The relay's hot path allocates nothing per packet (DESIGN.md, "Layers", media/).
//!
//! A counting global allocator wraps the system one. The test starts a real media engine
//! on 127.0.0.1 with two relay threads, bridges two calls (one PCMU to PCMA, so the
//! transcoding path is included, and one PCMU to PCMU), warms them up (latching done,
//! buffers grown), then relays 5,000 packets each way on each call and counts every
//! allocation in the process while it does. The phones are this thread, driven with
//! preallocated buffers and no formatting inside the measured window, and nothing else runs
//! in the process (`harness = false`: no test harness threads either), so the count is the
//! relay's own.

#![allow(
    clippy::disallowed_methods,
    reason = "a real-socket test: deadlines need the clock"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard::config::PortRange;
use switchboard::media::g711::{self, G711Law};
use switchboard::media::{MediaEngine, PayloadTypes, StreamParams};

struct Counting;

/// Allocations (including growing reallocations) anywhere in the process.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Of those, the ones made on this (the phones') thread.
static ON_TEST_THREAD: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IS_TEST_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize) {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
    // `try_with`: a thread being torn down has no thread-locals left.
    if IS_TEST_THREAD.try_with(Cell::get).unwrap_or(false) {
        ON_TEST_THREAD.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// atomics and a const-initialized thread-local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FRAME: usize = 160;
const WARM_UP: usize = 200;
const MEASURED: usize = 5_000;
/// Packets each phone sends before the phones read what the others sent: well within the
/// socket buffers, so loopback loses nothing.
const WINDOW: usize = 20;
const WAIT: Duration = Duration::from_secs(5);

fn params(remote: SocketAddr, law: G711Law) -> StreamParams {
    let pts = PayloadTypes {
        pcmu: (law == G711Law::Pcmu).then_some(0),
        pcma: (law == G711Law::Pcma).then_some(8),
        telephone_event: Some(101),
    };
    StreamParams {
        remote_rtp: remote,
        remote_rtcp: SocketAddr::new(remote.ip(), remote.port() + 1),
        signalling_host: None,
        law,
        send: pts,
        receive: pts,
        sending: true,
        receiving: true,
    }
}

/// One phone: its socket, the relay port it sends to, and a reused packet buffer.
struct Phone {
    sock: UdpSocket,
    to: SocketAddr,
    law: G711Law,
    seq: u16,
    ts: u32,
    ssrc: u32,
    out: [u8; 12 + FRAME],
    inbuf: [u8; 2048],
}

impl Phone {
    fn new(ssrc: u32, law: G711Law) -> Phone {
        let sock = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Phone {
            sock,
            to: (LOCALHOST, 0).into(),
            law,
            seq: ssrc as u16,
            ts: ssrc,
            ssrc,
            out: [0; 12 + FRAME],
            inbuf: [0; 2048],
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends packet `n` of its stream: payload byte `j` is `(n + j) % 256`.
    fn send(&mut self, n: usize) {
        let o = &mut self.out;
        o[0] = 0x80;
        o[1] = self.law.payload_type();
        o[2..4].copy_from_slice(&self.seq.to_be_bytes());
        o[4..8].copy_from_slice(&self.ts.to_be_bytes());
        o[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        for (j, b) in o[12..].iter_mut().enumerate() {
            *b = ((n + j) % 256) as u8;
        }
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        // A refused send shows up as a packet that never arrives.
        let _ = self.sock.send_to(&self.out, self.to);
    }

    /// Receives packet `n` of the peer's stream (sent in `from_law`) and checks its
    /// payload arrived in this phone's law. `Err` on timeout or a wrong packet; neither
    /// path allocates.
    fn recv(&mut self, n: usize, from_law: G711Law) -> Result<(), &'static str> {
        let deadline = Instant::now() + WAIT;
        let len = loop {
            match self.sock.recv_from(&mut self.inbuf) {
                Ok((len, _)) => break len,
                Err(_) if Instant::now() < deadline => {}
                Err(_) => return Err("a relayed packet never arrived"),
            }
        };
        if len != 12 + FRAME {
            return Err("a relayed packet has the wrong length");
        }
        if self.inbuf[1] & 0x7f != self.law.payload_type() {
            return Err("a relayed packet has the wrong payload type");
        }
        for (j, &b) in self.inbuf[12..len].iter().enumerate() {
            let sent = ((n + j) % 256) as u8;
            let want = match (from_law, self.law) {
                (G711Law::Pcmu, G711Law::Pcma) => g711::ulaw_to_alaw(sent),
                (G711Law::Pcma, G711Law::Pcmu) => g711::alaw_to_ulaw(sent),
                _ => sent,
            };
            if b != want {
                return Err("a relayed payload differs from what was sent");
            }
        }
        Ok(())
    }

    /// Sends probes until `to` hears one (the commands are applied, the sender latched),
    /// then drains the probes still in flight.
    fn prime(&mut self, to: &mut Phone) {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "the relay never forwarded a probe"
            );
            self.send(0);
            if to.sock.recv_from(&mut to.inbuf).is_ok() {
                break;
            }
        }
        to.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while to.sock.recv_from(&mut to.inbuf).is_ok() {}
        to.sock
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
    }
}

/// `count` packets each way on every call, `WINDOW` at a time.
fn relay(calls: &mut [(Phone, Phone)], count: usize) -> Result<(), &'static str> {
    let mut n = 0;
    while n < count {
        let w = WINDOW.min(count - n);
        for (a, b) in calls.iter_mut() {
            for i in 0..w {
                a.send(n + i);
                b.send(n + i + 128);
            }
        }
        for (a, b) in calls.iter_mut() {
            let (la, lb) = (a.law, b.law);
            for i in 0..w {
                b.recv(n + i, la)?;
                a.recv(n + i + 128, lb)?;
            }
        }
        n += w;
    }
    Ok(())
}

fn main() {
    IS_TEST_THREAD.with(|t| t.set(true));

    // The counter counts: a sanity check that this test can fail.
    let before = ALLOCS.load(Ordering::SeqCst);
    drop(std::hint::black_box(Box::new([0u8; 64])));
    assert!(
        ALLOCS.load(Ordering::SeqCst) > before,
        "the allocator is not counting"
    );

    let engine: Arc<MediaEngine> = MediaEngine::start(
        2,
        PortRange {
            first: 31_200,
            last: 31_219,
        },
        LOCALHOST,
        Duration::from_secs(600),
    )
    .expect("media engine");

    // Call 0: PCMU on one side, PCMA on the other (transcoded both ways). Call 1: PCMU on
    // both. Different groups, so with two threads each call has its own relay thread.
    let mut calls = Vec::new();
    let mut endpoints = Vec::new();
    for (group, (law_a, law_b)) in [
        (G711Law::Pcmu, G711Law::Pcma),
        (G711Law::Pcmu, G711Law::Pcmu),
    ]
    .into_iter()
    .enumerate()
    {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let ea = engine.open(group as u64, tx.clone()).unwrap();
        let eb = engine.open(group as u64, tx).unwrap();
        let mut a = Phone::new(0xA000 + group as u32, law_a);
        let mut b = Phone::new(0xB000 + group as u32, law_b);
        a.to = (LOCALHOST, ea.port()).into();
        b.to = (LOCALHOST, eb.port()).into();
        engine.configure(ea.id(), params(a.addr(), law_a));
        engine.configure(eb.id(), params(b.addr(), law_b));
        engine.bridge(ea.id(), eb.id());
        a.prime(&mut b);
        b.prime(&mut a);
        calls.push((a, b));
        endpoints.push((ea, eb, events));
    }

    relay(&mut calls, WARM_UP).expect("warm-up");
    let relayed_before = engine.stats().relayed;

    // The measured window: from here to the second snapshot nothing on this thread
    // allocates (no formatting, no collections, preallocated buffers).
    let (allocs0, bytes0, here0) = (
        ALLOCS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
        ON_TEST_THREAD.load(Ordering::SeqCst),
    );
    let outcome = relay(&mut calls, MEASURED);
    let (allocs1, bytes1, here1) = (
        ALLOCS.load(Ordering::SeqCst),
        BYTES.load(Ordering::SeqCst),
        ON_TEST_THREAD.load(Ordering::SeqCst),
    );

    outcome.expect("every packet relayed intact");
    let relayed = engine.stats().relayed - relayed_before;
    let allocs = allocs1 - allocs0;
    let here = here1 - here0;
    println!(
        "relay_alloc: {allocs} allocations ({} bytes; {here} on the phones' thread) while \
         relaying {relayed} packets (2 calls x 2 directions x {MEASURED}, one call transcoding)",
        bytes1 - bytes0
    );
    assert_eq!(relayed, 4 * MEASURED as u64, "{:?}", engine.stats());
    assert_eq!(allocs, 0, "the relay allocated while relaying");
    for (_, _, mut events) in endpoints {
        assert!(events.try_recv().is_err(), "no event during a healthy call");
    }
    conference_allocates_nothing_per_frame(&engine);
    println!("relay_alloc: ok");
}

/// Three phones in one conference, each sending a frame every 20 ms: the mixer's ticks
/// (decode, N−1 mix, encode, send on each participant's stream) allocate nothing.
fn conference_allocates_nothing_per_frame(engine: &Arc<MediaEngine>) {
    const WARM_UP_ROUNDS: usize = 50;
    const ROUNDS: usize = 150;
    let conference = engine.new_conference();
    let (tx, _events) = tokio::sync::mpsc::unbounded_channel();
    let mut phones = Vec::new();
    let mut endpoints = Vec::new();
    for k in 0..3u32 {
        let e = engine.open(10 + u64::from(k), tx.clone()).unwrap();
        let mut p = Phone::new(0xC000 + k, G711Law::Pcmu);
        p.to = (LOCALHOST, e.port()).into();
        p.sock.set_nonblocking(true).unwrap();
        engine.configure(e.id(), params(p.addr(), G711Law::Pcmu));
        engine.join(e.id(), conference, false);
        phones.push(p);
        endpoints.push(e);
    }
    // Paced like real phones; what comes back is counted, not checked (relay_tests.rs
    // checks the mix).
    let rounds = |count: usize, phones: &mut Vec<Phone>| -> usize {
        let mut heard = 0;
        let mut next = Instant::now();
        for n in 0..count {
            for p in phones.iter_mut() {
                p.send(n);
            }
            next += Duration::from_millis(20);
            while Instant::now() < next {
                for p in phones.iter_mut() {
                    while p.sock.recv_from(&mut p.inbuf).is_ok() {
                        heard += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        heard
    };
    rounds(WARM_UP_ROUNDS, &mut phones);
    let (allocs0, here0) = (
        ALLOCS.load(Ordering::SeqCst),
        ON_TEST_THREAD.load(Ordering::SeqCst),
    );
    let heard = rounds(ROUNDS, &mut phones);
    let (allocs1, here1) = (
        ALLOCS.load(Ordering::SeqCst),
        ON_TEST_THREAD.load(Ordering::SeqCst),
    );
    let allocs = allocs1 - allocs0;
    println!(
        "relay_alloc: {allocs} allocations ({} on the phones' thread) while mixing {ROUNDS} \
         ticks of a 3-party conference ({heard} mixed frames heard)",
        here1 - here0
    );
    assert!(
        heard >= 3 * ROUNDS * 9 / 10,
        "the phones heard only {heard} mixed frames"
    );
    assert_eq!(allocs, 0, "the mixer allocated while mixing");
    drop(endpoints);
}
