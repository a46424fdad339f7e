//! The relay end to end on real UDP sockets: a real [`MediaEngine`] bound to 127.0.0.1 on a
//! small private port range per test, and plain `UdpSocket`s standing in for the phones.
//!
//! Commands reach the relay thread asynchronously (each poll round applies them before it
//! reads the sockets), so no test assumes that a command took effect by the time it returns:
//! a flow is primed (sent until the far phone hears it) before it is measured, and a
//! command is known to be applied once a later command's effect is seen (a short play's
//! `PlayDone`). Timing is only ever checked against deadlines.

#![allow(
    clippy::disallowed_methods,
    reason = "these tests run real sockets against real threads: deadlines need the clock"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::command::{
    EndpointId, EventKind, MediaEvent, PayloadTypes, PlayItem, RecordEnd, RecordSpec, StreamParams,
};
use super::dtmf::DtmfTone;
use super::engine::{Endpoint, MediaEngine};
use super::g711::{self, G711Law};
use super::recorder::Recorder;
use super::rtp::RtpPacket;
use super::wav::{Wav, WavEncoding};
use crate::config::PortRange;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long anything that should happen may take on a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(5);

/// Audio packets carry 20 ms of G.711; probes are shorter so they can be told apart.
const FRAME: usize = 160;
const PROBE_LEN: usize = 16;

const TE: u8 = 101;

fn engine(first: u16, pairs: u16, timeout: Duration) -> Arc<MediaEngine> {
    MediaEngine::start(
        1,
        PortRange {
            first,
            last: first + 2 * pairs - 1,
        },
        LOCALHOST,
        timeout,
    )
    .expect("engine starts")
}

fn pts(law: G711Law) -> PayloadTypes {
    PayloadTypes {
        pcmu: (law == G711Law::Pcmu).then_some(0),
        pcma: (law == G711Law::Pcma).then_some(8),
        telephone_event: Some(TE),
    }
}

fn params(remote: SocketAddr, law: G711Law) -> StreamParams {
    StreamParams {
        remote_rtp: remote,
        remote_rtcp: SocketAddr::new(remote.ip(), remote.port() + 1),
        signalling_host: None,
        law,
        send: pts(law),
        receive: pts(law),
        sending: true,
        receiving: true,
    }
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// What a phone received, parsed.
#[derive(Debug, Clone)]
struct Rx {
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
    from: SocketAddr,
    at: Instant,
}

/// A phone: one socket sending one RTP stream of its own.
struct Phone {
    sock: UdpSocket,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Phone {
    fn new(ssrc: u32) -> Phone {
        let sock = UdpSocket::bind((LOCALHOST, 0)).expect("phone socket");
        sock.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        Phone {
            sock,
            ssrc,
            seq: ssrc as u16,
            ts: ssrc.rotate_left(7),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends the next packet of its stream (timestamp advancing by the payload length).
    fn send(&mut self, port: u16, pt: u8, payload: &[u8]) {
        let p = rtp(pt, false, self.seq, self.ts, self.ssrc, payload);
        self.sock.send_to(&p, (LOCALHOST, port)).unwrap();
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(payload.len() as u32);
    }

    /// The next datagram, if one arrives before `deadline`.
    fn recv_until(&self, deadline: Instant) -> Option<Rx> {
        let mut buf = [0u8; 2048];
        loop {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let p = RtpPacket::new(&buf[..n]).expect("the relay sends valid RTP");
                    return Some(Rx {
                        pt: p.payload_type(),
                        marker: p.marker(),
                        seq: p.sequence(),
                        ts: p.timestamp(),
                        ssrc: p.ssrc(),
                        payload: p.payload().to_vec(),
                        from,
                        at: Instant::now(),
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(e) => panic!("phone receive failed: {e}"),
            }
        }
    }

    /// The next full audio frame (probes skipped), or a panic naming `what`.
    fn recv_frame(&self, what: &str) -> Rx {
        let deadline = Instant::now() + WAIT;
        loop {
            let rx = self
                .recv_until(deadline)
                .unwrap_or_else(|| panic!("{what}: nothing arrived within {WAIT:?}"));
            if rx.payload.len() != PROBE_LEN {
                return rx;
            }
        }
    }
}

/// Sends short probes from `from` to `port` until `to` hears one: the endpoints' commands
/// have then been applied and `from` is latched. Returns the packet `to` heard.
fn prime(from: &mut Phone, port: u16, pt: u8, to: &Phone) -> Rx {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        from.send(port, pt, &[g711::ULAW_SILENCE; PROBE_LEN]);
        if let Some(rx) = to.recv_until(Instant::now() + Duration::from_millis(20)) {
            return rx;
        }
    }
    panic!("no probe from {} to port {port} got through", from.addr());
}

/// The next event within `timeout`.
fn next_event(rx: &mut UnboundedReceiver<MediaEvent>, timeout: Duration) -> Option<MediaEvent> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(ev) = rx.try_recv() {
            return Some(ev);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Returns once every command sent for `id` so far has been applied (commands are applied
/// in order, and a 20 ms play ends with an event). `id` must be configured. Any other
/// event seen meanwhile is returned.
fn barrier(
    engine: &MediaEngine,
    id: EndpointId,
    rx: &mut UnboundedReceiver<MediaEvent>,
) -> Vec<MediaEvent> {
    engine.play(id, vec![PlayItem::Silence(Duration::from_millis(20))], 1);
    let mut others = Vec::new();
    loop {
        let ev = next_event(rx, WAIT).expect("PlayDone of the barrier");
        if ev.endpoint == id && matches!(ev.kind, EventKind::PlayDone) {
            return others;
        }
        others.push(ev);
    }
}

/// A bridged call: two endpoints, each facing its own phone.
struct Call {
    engine: Arc<MediaEngine>,
    a: Endpoint,
    b: Endpoint,
    phone_a: Phone,
    phone_b: Phone,
    events: UnboundedReceiver<MediaEvent>,
}

fn call(engine: Arc<MediaEngine>, group: u64, law_a: G711Law, law_b: G711Law) -> Call {
    let (tx, events) = unbounded_channel();
    let a = engine.open(group, tx.clone()).unwrap();
    let b = engine.open(group, tx).unwrap();
    let phone_a = Phone::new(0x1111_0000 + group as u32);
    let phone_b = Phone::new(0x2222_0000 + group as u32);
    engine.configure(a.id(), params(phone_a.addr(), law_a));
    engine.configure(b.id(), params(phone_b.addr(), law_b));
    engine.bridge(a.id(), b.id());
    Call {
        engine,
        a,
        b,
        phone_a,
        phone_b,
        events,
    }
}

/// 160 bytes that differ from packet to packet (every code value turns up).
fn payload(i: usize) -> Vec<u8> {
    (0..FRAME).map(|j| ((i * 31 + j * 7) % 256) as u8).collect()
}

/// Checks that `got` continue one RTP stream: same SSRC, sequence +1, timestamp +160.
fn assert_continuous(got: &[Rx], what: &str) {
    for w in got.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc, "{what}: SSRC changed");
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{what}: sequence not +1"
        );
        assert_eq!(
            w[1].ts,
            w[0].ts.wrapping_add(FRAME as u32),
            "{what}: timestamp not +160"
        );
    }
}

#[test]
fn pcmu_to_pcmu_is_relayed_unchanged_both_ways_on_one_continuous_stream() {
    let mut c = call(
        engine(31_000, 4, WAIT * 12),
        1,
        G711Law::Pcmu,
        G711Law::Pcmu,
    );
    let (pa, pb) = (c.a.port(), c.b.port());
    let first_ab = prime(&mut c.phone_a, pa, 0, &c.phone_b);
    let first_ba = prime(&mut c.phone_b, pb, 0, &c.phone_a);
    // What each phone hears comes from the endpoint it talks to (symmetric RTP).
    assert_eq!(first_ab.from.port(), pb);
    assert_eq!(first_ba.from.port(), pa);

    let mut at_b = vec![first_ab];
    let mut at_a = vec![first_ba];
    for i in 0..50 {
        let out = payload(i);
        c.phone_a.send(pa, 0, &out);
        let got = c.phone_b.recv_frame("A to B");
        assert_eq!(got.payload, out, "A to B payload of packet {i}");
        assert_eq!(got.pt, 0);
        assert_eq!(got.from.port(), pb);
        at_b.push(got);

        let back = payload(1000 + i);
        c.phone_b.send(pb, 0, &back);
        let got = c.phone_a.recv_frame("B to A");
        assert_eq!(got.payload, back, "B to A payload of packet {i}");
        assert_eq!(got.pt, 0);
        at_a.push(got);
    }
    // The probes carry 16 samples (and more of them may have been sent than the one
    // heard), so continuity is checked over the audio.
    assert_continuous(&at_b[1..], "at B");
    assert_continuous(&at_a[1..], "at A");
    assert_eq!(
        at_b[1].ssrc, at_b[0].ssrc,
        "probes and audio share the stream"
    );
    assert!(
        at_b[1..].iter().all(|r| !r.marker),
        "no M bit within one source's stream"
    );
    let s = c.engine.stats();
    assert!(s.relayed >= 100, "{s:?}");
    assert_eq!((s.foreign, s.malformed), (0, 0), "{s:?}");
}

#[test]
fn pcmu_to_pcma_is_transcoded_in_place_and_relabelled() {
    let mut c = call(
        engine(31_020, 4, WAIT * 12),
        2,
        G711Law::Pcmu,
        G711Law::Pcma,
    );
    let (pa, pb) = (c.a.port(), c.b.port());
    let probe = prime(&mut c.phone_a, pa, 0, &c.phone_b);
    assert_eq!(probe.pt, 8);
    prime(&mut c.phone_b, pb, 8, &c.phone_a);

    let mut at_b = Vec::new();
    for i in 0..20 {
        let ulaw = payload(i);
        c.phone_a.send(pa, 0, &ulaw);
        let got = c.phone_b.recv_frame("PCMU to PCMA");
        assert_eq!(got.pt, 8, "B's PCMA payload type");
        let want: Vec<u8> = ulaw.iter().map(|&u| g711::ulaw_to_alaw(u)).collect();
        assert_eq!(got.payload, want, "packet {i} transcoded");
        at_b.push(got);

        let alaw = payload(500 + i);
        c.phone_b.send(pb, 8, &alaw);
        let got = c.phone_a.recv_frame("PCMA to PCMU");
        assert_eq!(got.pt, 0, "A's PCMU payload type");
        let want: Vec<u8> = alaw.iter().map(|&a| g711::alaw_to_ulaw(a)).collect();
        assert_eq!(got.payload, want, "packet {i} transcoded back");
    }
    assert_continuous(&at_b, "at B");
    // A payload type A never negotiated is not forwarded: the next audio is what B hears.
    c.phone_a.send(pa, 8, &payload(77));
    c.phone_a.send(pa, 0, &payload(78));
    let got = c.phone_b.recv_frame("after an unnegotiated PT");
    let want: Vec<u8> = payload(78).iter().map(|&u| g711::ulaw_to_alaw(u)).collect();
    assert_eq!(got.payload, want);
}

#[test]
fn a_third_party_cannot_inject_into_or_steal_a_latched_stream() {
    let engine = engine(31_040, 4, WAIT * 12);
    let (tx, _events) = unbounded_channel();
    let a = engine.open(3, tx.clone()).unwrap();
    let b = engine.open(3, tx).unwrap();
    let mut phone_a = Phone::new(0xA);
    let mut phone_b = Phone::new(0xB);
    // A is behind NAT: its SDP names an address it does not send from, so only latching
    // finds it.
    let signalled: SocketAddr = (LOCALHOST, 9).into();
    engine.configure(a.id(), params(signalled, G711Law::Pcmu));
    engine.configure(b.id(), params(phone_b.addr(), G711Law::Pcmu));
    engine.bridge(a.id(), b.id());
    prime(&mut phone_a, a.port(), 0, &phone_b);
    // B's audio reaches A where A really is.
    prime(&mut phone_b, b.port(), 0, &phone_a);

    let mut sprayer = Phone::new(0x5bad);
    let before = engine.stats().foreign;
    for _ in 0..5 {
        sprayer.send(a.port(), 0, &[0x42; FRAME]);
    }
    let deadline = Instant::now() + WAIT;
    while engine.stats().foreign < before + 5 {
        assert!(
            Instant::now() < deadline,
            "the sprayer's packets were not counted as foreign: {:?}",
            engine.stats()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The sprayer's packets were handled before these, so had any been forwarded B would
    // hear them first.
    for i in 0..5 {
        let out = payload(i);
        phone_a.send(a.port(), 0, &out);
        let got = phone_b.recv_frame("A after the spray");
        assert_eq!(got.payload, out, "B heard the sprayer");
    }
    // The latch still points at A: B's audio goes to A, not to the sprayer.
    for i in 0..5 {
        let back = payload(100 + i);
        phone_b.send(b.port(), 0, &back);
        assert_eq!(phone_a.recv_frame("B after the spray").payload, back);
    }
    assert!(
        sprayer
            .recv_until(Instant::now() + Duration::from_millis(50))
            .is_none(),
        "the sprayer got audio"
    );
}

#[test]
fn play_sends_the_samples_paced_at_20_ms_then_reports_play_done() {
    let engine = engine(31_060, 2, WAIT * 12);
    let (tx, mut events) = unbounded_channel();
    let ep = engine.open(4, tx).unwrap();
    let phone = Phone::new(0x44);
    engine.configure(ep.id(), params(phone.addr(), G711Law::Pcmu));
    // Samples that survive μ-law exactly, and a length that leaves the last frame short.
    let samples: Vec<i16> = (0..30 * FRAME - 50)
        .map(|i| g711::ulaw_decode(((i * 13) % 256) as u8))
        .collect();
    let frames = samples.len().div_ceil(FRAME);
    engine.play(ep.id(), vec![PlayItem::Audio(samples.clone().into())], 1);

    let mut got = Vec::new();
    for i in 0..frames {
        let rx = phone.recv_frame("played audio");
        assert_eq!(rx.pt, 0);
        assert_eq!(rx.payload.len(), FRAME, "frame {i} is 20 ms");
        assert_eq!(rx.from.port(), ep.port());
        got.push(rx);
    }
    assert_continuous(&got, "played stream");
    let decoded: Vec<i16> = got
        .iter()
        .flat_map(|r| r.payload.iter().map(|&c| g711::ulaw_decode(c)))
        .collect();
    assert_eq!(&decoded[..samples.len()], &samples[..]);
    // The short last frame is padded with silence.
    assert!(decoded[samples.len()..].iter().all(|&s| s == 0));
    assert_eq!(decoded.len(), frames * FRAME);

    // Paced, not burst: 30 frames span about 580 ms. The relay may catch up at most
    // 100 ms after a stall, so anything under ~480 ms is a burst.
    let span = got[frames - 1].at - got[0].at;
    assert!(
        span >= Duration::from_millis(400),
        "{frames} frames arrived within {span:?}"
    );

    let ev = next_event(&mut events, WAIT).expect("PlayDone");
    assert_eq!(ev.endpoint, ep.id());
    assert!(matches!(ev.kind, EventKind::PlayDone), "{ev:?}");
    assert!(
        phone
            .recv_until(Instant::now() + Duration::from_millis(60))
            .is_none(),
        "nothing is sent after the end"
    );
    assert_eq!(engine.stats().played, frames as u64);
}

/// Sends the packets of one RFC 4733 tone for `digit`, end packets included.
fn send_tone(phone: &Phone, port: u16, digit: char, ts: u32, seq: u16) -> u16 {
    let tone = DtmfTone::for_digit(digit).unwrap();
    let mut n = 0;
    for p in tone.packets(ts, seq) {
        let bytes = rtp(
            TE,
            p.marker,
            p.sequence,
            p.timestamp,
            phone.ssrc,
            &p.payload,
        );
        phone.sock.send_to(&bytes, (LOCALHOST, port)).unwrap();
        n += 1;
    }
    assert_eq!(n, tone.packet_count());
    seq.wrapping_add(n as u16)
}

#[test]
fn an_rfc4733_key_press_is_reported_once() {
    let engine = engine(31_080, 2, WAIT * 12);
    let (tx, mut events) = unbounded_channel();
    let ep = engine.open(5, tx).unwrap();
    let phone = Phone::new(0x55);
    engine.configure(ep.id(), params(phone.addr(), G711Law::Pcmu));
    assert!(barrier(&engine, ep.id(), &mut events).is_empty());

    // Seven packets for '5' (three of them end reports, all with the same timestamp)...
    let seq = send_tone(&phone, ep.port(), '5', 8000, 10);
    // ...then '#' as a marker: it is handled after every packet of '5'.
    send_tone(&phone, ep.port(), '#', 8000 + 2400, seq);

    let mut digits = Vec::new();
    while digits.last() != Some(&'#') {
        let ev = next_event(&mut events, WAIT).expect("digit events");
        assert_eq!(ev.endpoint, ep.id());
        match ev.kind {
            EventKind::Digit(d) => digits.push(d),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(digits, ['5', '#']);
}

#[test]
fn a_recording_holds_exactly_what_the_leg_sent() {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-relay-test-{}-{}",
        std::process::id(),
        crate::ids::random_u64()
    ));
    let mut c = call(
        engine(31_100, 4, WAIT * 12),
        6,
        G711Law::Pcmu,
        G711Law::Pcmu,
    );
    let pa = c.a.port();
    prime(&mut c.phone_a, pa, 0, &c.phone_b);

    let recorder = Recorder::create(&dir, "RE0123456789abcdef").unwrap();
    c.engine.record(
        c.a.id(),
        RecordSpec {
            recorder,
            max_length: Duration::from_secs(60),
            silence_timeout: Duration::ZERO,
            finish_on_key: String::new(),
            trim_silence: false,
        },
    );
    assert!(barrier(&c.engine, c.a.id(), &mut c.events).is_empty());
    // The barrier's silence went to phone A; it is not what is recorded.
    let n = 25;
    let mut sent = Vec::new();
    for i in 0..n {
        let p = payload(i);
        c.phone_a.send(pa, 0, &p);
        sent.extend_from_slice(&p);
        // Relayed to B only after being recorded: B hearing it means it is in the file.
        c.phone_b.recv_frame("recorded audio");
    }
    c.engine.stop_record(c.a.id());

    let ev = next_event(&mut c.events, WAIT).expect("RecordDone");
    assert_eq!(ev.endpoint, c.a.id());
    let EventKind::RecordDone {
        end,
        result,
        heard_voice,
    } = ev.kind
    else {
        panic!("expected RecordDone, got {:?}", ev.kind);
    };
    assert_eq!(end, RecordEnd::Stopped);
    assert!(heard_voice, "loud audio counts as voice");
    let finished = result.expect("recording finished");
    assert_eq!(finished.data_bytes as usize, 2 * n * FRAME);
    let bytes = std::fs::read(&finished.path).unwrap();
    let wav = Wav::parse(&bytes, usize::MAX).expect("a valid WAV file");
    assert_eq!(wav.format().encoding, WavEncoding::Pcm16);
    assert_eq!((wav.format().sample_rate, wav.format().channels), (8000, 1));
    let want: Vec<i16> = sent.iter().map(|&c| g711::ulaw_decode(c)).collect();
    assert_eq!(wav.to_pcm_8k(), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_call_without_media_times_out_and_one_with_media_does_not() {
    let timeout = Duration::from_secs(1);
    let engine = engine(31_120, 4, timeout);
    let start = Instant::now();
    let (tx_idle, mut idle_events) = unbounded_channel();
    let idle = engine.open(7, tx_idle).unwrap();
    // Another call whose one leg talks and whose other leg is silent: the call has media.
    let (tx_live, mut live_events) = unbounded_channel();
    let talking = engine.open(8, tx_live.clone()).unwrap();
    let silent = engine.open(8, tx_live).unwrap();
    let mut phone = Phone::new(0x77);
    engine.configure(talking.id(), params(phone.addr(), G711Law::Pcmu));

    let mut timeouts = 0;
    let deadline = start + 3 * timeout + WAIT;
    let mut next_send = Instant::now();
    // Until the idle call has been reported twice (once per period).
    while timeouts < 2 {
        assert!(
            Instant::now() < deadline,
            "the idle call was reported {timeouts} times"
        );
        if Instant::now() >= next_send {
            phone.send(talking.port(), 0, &[g711::ULAW_SILENCE; FRAME]);
            next_send += Duration::from_millis(50);
        }
        if let Some(ev) = next_event(&mut idle_events, Duration::from_millis(10)) {
            assert_eq!(ev.endpoint, idle.id());
            assert!(matches!(ev.kind, EventKind::MediaTimeout), "{ev:?}");
            if timeouts == 0 {
                assert!(
                    start.elapsed() >= timeout,
                    "reported after {:?}",
                    start.elapsed()
                );
            }
            timeouts += 1;
        }
        if let Ok(ev) = live_events.try_recv() {
            panic!("a call with media got {ev:?}");
        }
    }
    drop((silent, talking));
}

#[test]
fn ports_go_back_to_the_pool_when_endpoints_are_dropped() {
    let engine = engine(31_140, 4, WAIT * 12);
    let total = engine.total_port_pairs();
    assert_eq!((total, engine.free_port_pairs()), (4, 4));
    let (tx, _events) = unbounded_channel();
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(engine.open(9, tx.clone()).unwrap());
        assert_eq!(engine.free_port_pairs(), total - i - 1);
    }
    let mut phone_a = Phone::new(0x91);
    let phone_b = Phone::new(0x92);
    engine.configure(held[0].id(), params(phone_a.addr(), G711Law::Pcmu));
    engine.configure(held[1].id(), params(phone_b.addr(), G711Law::Pcmu));
    engine.bridge(held[0].id(), held[1].id());
    prime(&mut phone_a, held[0].port(), 0, &phone_b);
    let ports: Vec<u16> = held.iter().map(Endpoint::port).collect();

    drop(held);
    let deadline = Instant::now() + WAIT;
    while engine.free_port_pairs() != total {
        assert!(
            Instant::now() < deadline,
            "{} of {total} pairs free after closing",
            engine.free_port_pairs()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(engine.stats().endpoints, 0);
    // The sockets are closed too: the ports can be bound again.
    for p in ports {
        UdpSocket::bind((LOCALHOST, p)).expect("RTP port free again");
        UdpSocket::bind((LOCALHOST, p + 1)).expect("RTCP port free again");
    }
    // And the pool hands them out again.
    let again: Vec<Endpoint> = (0..4)
        .map(|_| engine.open(9, tx.clone()).unwrap())
        .collect();
    assert_eq!(engine.free_port_pairs(), 0);
    assert!(engine.open(9, tx).is_err());
    drop(again);
}

#[test]
fn a_prompt_on_a_bridged_leg_continues_its_stream_and_the_relay_resumes_after_it() {
    let mut c = call(
        engine(31_160, 4, WAIT * 12),
        10,
        G711Law::Pcmu,
        G711Law::Pcmu,
    );
    let pa = c.a.port();
    prime(&mut c.phone_a, pa, 0, &c.phone_b);
    let mut at_b = Vec::new();
    for i in 0..10 {
        c.phone_a.send(pa, 0, &payload(i));
        at_b.push(c.phone_b.recv_frame("relayed before the prompt"));
    }
    let samples: Vec<i16> = (0..5 * FRAME)
        .map(|i| g711::ulaw_decode((i % 256) as u8))
        .collect();
    c.engine
        .play(c.b.id(), vec![PlayItem::Audio(samples.clone().into())], 1);
    let ev = next_event(&mut c.events, WAIT).expect("PlayDone");
    assert!(matches!(ev.kind, EventKind::PlayDone), "{ev:?}");
    let played: Vec<Rx> = (0..5).map(|_| c.phone_b.recv_frame("the prompt")).collect();
    let decoded: Vec<i16> = played
        .iter()
        .flat_map(|r| r.payload.iter().map(|&c| g711::ulaw_decode(c)))
        .collect();
    assert_eq!(decoded, samples);
    at_b.extend(played);
    for i in 0..10 {
        let out = payload(100 + i);
        c.phone_a.send(pa, 0, &out);
        let got = c.phone_b.recv_frame("relayed after the prompt");
        assert_eq!(got.payload, out);
        at_b.push(got);
    }

    // One stream for B's phone: one SSRC, sequence +1 per packet through both switches,
    // time moving forward by at least a frame, the M bit exactly where the source changed.
    for (i, w) in at_b.windows(2).enumerate() {
        assert_eq!(w[1].ssrc, w[0].ssrc, "SSRC changed at packet {}", i + 1);
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence at packet {}",
            i + 1
        );
        let step = w[1].ts.wrapping_sub(w[0].ts);
        assert!(
            (FRAME as u32..8000 * 10).contains(&step),
            "timestamp step {step} at packet {}",
            i + 1
        );
        let switch = i + 1 == 10 || i + 1 == 15;
        assert_eq!(w[1].marker, switch, "M bit at packet {}", i + 1);
    }
}

/// An RTCP receiver report (RFC 3550 §6.4.2) from `sender` about `source`: one report block.
fn receiver_report(sender: u32, source: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&source.to_be_bytes());
    // Fraction lost, cumulative lost, highest sequence, jitter, LSR, DLSR: recognisable bytes.
    p.extend((0..20).map(|i| 0xA0 + i as u8));
    p
}

#[test]
fn rtcp_is_relayed_with_ssrcs_rewritten_and_only_from_the_latched_source() {
    let engine = engine(31_200, 4, WAIT * 12);
    let (tx, _events) = unbounded_channel();
    let a = engine.open(9, tx.clone()).unwrap();
    let b = engine.open(9, tx).unwrap();
    let mut phone_a = Phone::new(0x3333_0001);
    let mut phone_b = Phone::new(0x4444_0002);
    let rtcp_a = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let rtcp_b = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    rtcp_b
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let with_rtcp = |phone: &Phone, rtcp: &UdpSocket| StreamParams {
        remote_rtcp: rtcp.local_addr().unwrap(),
        ..params(phone.addr(), G711Law::Pcmu)
    };
    engine.configure(a.id(), with_rtcp(&phone_a, &rtcp_a));
    engine.configure(b.id(), with_rtcp(&phone_b, &rtcp_b));
    engine.bridge(a.id(), b.id());
    // RTP both ways first: the relay then knows each leg's SSRCs in and out.
    let heard_by_b = prime(&mut phone_a, a.port(), 0, &phone_b);
    let heard_by_a = prime(&mut phone_b, b.port(), 0, &phone_a);

    // A reports on the stream it hears from the relay (the relay's SSRC towards A).
    let report = receiver_report(phone_a.ssrc, heard_by_a.ssrc);
    let rtcp_port_a = a.port() + 1;
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + WAIT;
    let (n, from) = loop {
        rtcp_a.send_to(&report, (LOCALHOST, rtcp_port_a)).unwrap();
        if let Ok(got) = rtcp_b.recv_from(&mut buf) {
            break got;
        }
        assert!(Instant::now() < deadline, "no RTCP reached B");
    };
    assert_eq!(from.port(), b.port() + 1, "from B's RTCP port");
    let got = &buf[..n];
    assert_eq!(got.len(), report.len());
    assert_eq!(&got[..4], &report[..4], "same packet type and length");
    // B sees the relay's SSRC towards B as the sender, reporting on B's own stream.
    assert_eq!(got[4..8], heard_by_b.ssrc.to_be_bytes(), "sender SSRC");
    assert_eq!(got[8..12], phone_b.ssrc.to_be_bytes(), "reported SSRC");
    assert_eq!(&got[12..], &report[12..], "report block body unchanged");

    // Another source sending RTCP to A's RTCP port is dropped: its reports (told apart by
    // their body) never reach B, and A's next report still does.
    let stranger = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let mut forged = receiver_report(phone_a.ssrc, heard_by_a.ssrc);
    forged[12..].fill(0xEE);
    for _ in 0..5 {
        stranger.send_to(&forged, (LOCALHOST, rtcp_port_a)).unwrap();
    }
    rtcp_a.send_to(&report, (LOCALHOST, rtcp_port_a)).unwrap();
    let (n, _) = rtcp_b
        .recv_from(&mut buf)
        .expect("A's report after the stranger's");
    assert_eq!(&buf[12..n], &report[12..], "A's report, not the stranger's");
    while let Ok((n, _)) = rtcp_b.recv_from(&mut buf) {
        assert_ne!(
            &buf[12..n],
            &forged[12..],
            "the stranger's report was relayed"
        );
    }
    assert!(engine.stats().foreign >= 5, "{:?}", engine.stats());
}

#[path = "relay_conference_tests.rs"]
mod conference;
