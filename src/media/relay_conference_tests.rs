//! Conferences on the real relay: endpoints of three calls (on different relay threads)
//! move to the conference's thread when they join, and each phone hears the others' audio
//! and never its own, on one continuous stream.

use super::*;

/// Each phone sends a constant level (μ-law codes of `level`); what a phone hears is then
/// the sum of the others' levels, whatever the phase of the mixer's tick.
struct Room {
    engine: Arc<MediaEngine>,
    endpoints: Vec<Endpoint>,
    phones: Vec<Phone>,
    levels: Vec<i16>,
    _events: UnboundedReceiver<MediaEvent>,
}

fn room(levels: &[i16], first_port: u16) -> Room {
    let engine = MediaEngine::start(
        2,
        PortRange {
            first: first_port,
            last: first_port + 2 * 8 - 1,
        },
        LOCALHOST,
        Duration::from_secs(60),
    )
    .expect("engine starts");
    let (tx, events) = unbounded_channel();
    let mut endpoints = Vec::new();
    let mut phones = Vec::new();
    for (i, _) in levels.iter().enumerate() {
        // Groups 1, 2, 3: the calls start on different threads.
        let e = engine.open(i as u64 + 1, tx.clone()).unwrap();
        let p = Phone::new(0x3333_0000 + i as u32);
        // Three phones in one loop: a read must not wait.
        p.sock.set_nonblocking(true).unwrap();
        engine.configure(e.id(), params(p.addr(), G711Law::Pcmu));
        endpoints.push(e);
        phones.push(p);
    }
    Room {
        engine,
        endpoints,
        phones,
        levels: levels.to_vec(),
        _events: events,
    }
}

impl Room {
    /// Every phone sends one 20 ms frame of its level (muted ones too).
    fn send_round(&mut self) {
        for (i, p) in self.phones.iter_mut().enumerate() {
            let code = g711::ulaw_encode(self.levels[i]);
            let port = self.endpoints[i].port();
            p.send(port, 0, &[code; FRAME]);
        }
    }

    /// Sends at 20 ms pacing for `rounds` rounds, collecting what each phone hears.
    fn talk(&mut self, rounds: usize) -> Vec<Vec<Rx>> {
        let mut heard = vec![Vec::new(); self.phones.len()];
        let mut next = Instant::now();
        for _ in 0..rounds {
            self.send_round();
            next += Duration::from_millis(20);
            for (i, p) in self.phones.iter().enumerate() {
                while let Some(rx) = p.recv_until(Instant::now()) {
                    heard[i].push(rx);
                }
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        heard
    }
}

/// The level a frame decodes to (all samples the same, or a panic).
fn level_of(rx: &Rx) -> i16 {
    let first = g711::ulaw_decode(rx.payload[0]);
    assert!(
        rx.payload.iter().all(|&c| g711::ulaw_decode(c) == first),
        "a mixed frame of constant levels varies: {:?}",
        &rx.payload[..8]
    );
    first
}

/// What μ-law carries for `x`.
fn ulaw(x: i16) -> i16 {
    g711::ulaw_decode(g711::ulaw_encode(x))
}

/// The last `n` frames a phone heard are all the mix of `levels` (each as μ-law carried
/// it to the mixer, the sum as μ-law carries it back).
fn hears(heard: &[Rx], n: usize, levels: &[i16], what: &str) {
    let want = ulaw(levels.iter().map(|&l| ulaw(l)).sum());
    assert!(heard.len() >= n, "{what}: only {} frames", heard.len());
    let got: Vec<i16> = heard[heard.len() - n..].iter().map(level_of).collect();
    assert!(
        got.iter().all(|&l| l == want),
        "{what}: heard {got:?}, want {want}"
    );
}

#[test]
fn three_calls_on_different_threads_each_hear_the_other_two() {
    let mut r = room(&[1000, 2000, 4000], 43_000);
    let conf = r.engine.new_conference();
    for e in &r.endpoints {
        r.engine.join(e.id(), conf, false);
    }
    let heard = r.talk(40);
    hears(&heard[0], 10, &[2000, 4000], "phone 0");
    hears(&heard[1], 10, &[1000, 4000], "phone 1");
    hears(&heard[2], 10, &[1000, 2000], "phone 2");
    for (i, h) in heard.iter().enumerate() {
        assert_continuous(&h[h.len() - 20..], &format!("phone {i}"));
    }

    // Muted: heard by nobody, still hears the others.
    r.engine.mute(r.endpoints[1].id(), true);
    let heard = r.talk(20);
    hears(&heard[0], 10, &[4000], "phone 0, 1 muted");
    hears(&heard[1], 10, &[1000, 4000], "muted phone 1");
    hears(&heard[2], 10, &[1000], "phone 2, 1 muted");

    // Phone 2 leaves: it hears nothing more from the mix, the others no longer hear it.
    r.engine.mute(r.endpoints[1].id(), false);
    r.engine.leave(r.endpoints[2].id());
    let heard = r.talk(20);
    hears(&heard[0], 10, &[2000], "phone 0 after 2 left");
    hears(&heard[1], 10, &[1000], "phone 1 after 2 left");
    let before = heard[2].len();
    let heard = r.talk(10);
    assert!(
        heard[2].is_empty(),
        "phone 2 still hears the room ({before} then {})",
        heard[2].len()
    );
}

/// A participant who left can be bridged again on its call's own thread, and a closed
/// endpoint that was moved gives its ports back.
#[test]
fn a_participant_goes_home_and_is_bridged_again_and_ports_come_back() {
    let mut r = room(&[1000, 2000], 43_100);
    let free = r.engine.free_port_pairs();
    let conf = r.engine.new_conference();
    for e in &r.endpoints {
        r.engine.join(e.id(), conf, false);
    }
    let heard = r.talk(20);
    hears(&heard[0], 5, &[2000], "phone 0");
    for e in &r.endpoints {
        r.engine.leave(e.id());
    }
    // Both were opened for groups 1 and 2: bridging needs one thread; leave sent them home.
    let (tx, _rx) = unbounded_channel();
    let third = r.engine.open(1, tx).unwrap();
    let mut p3 = Phone::new(0x4444_0000);
    r.engine
        .configure(third.id(), params(p3.addr(), G711Law::Pcmu));
    r.engine.bridge(r.endpoints[0].id(), third.id());
    let rx = prime(&mut r.phones[0], r.endpoints[0].port(), 0, &p3);
    assert_eq!(rx.payload.len(), PROBE_LEN);
    let _ = prime(&mut p3, third.port(), 0, &r.phones[0]);
    drop(third);
    r.endpoints.clear();
    let deadline = Instant::now() + WAIT;
    while r.engine.free_port_pairs() < free + 2 {
        assert!(
            Instant::now() < deadline,
            "ports of moved endpoints not returned"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn conferences_take_the_relay_threads_in_turn_whatever_else_is_opened() {
    let r = room(&[1000], 45_100);
    // A call opens its endpoint, then its conference: one each, over and over.
    let (tx, _events) = unbounded_channel();
    let mut threads = Vec::new();
    let mut held = Vec::new();
    for g in 0..4 {
        held.push(r.engine.open(100 + g, tx.clone()).unwrap());
        threads.push(r.engine.new_conference().thread());
    }
    assert_eq!(threads, [0, 1, 0, 1]);
}
