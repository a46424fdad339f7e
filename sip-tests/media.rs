//! Black-box media tests: real RTP crosses the running switch in a bridged call.
//!
//! A carrier (any loopback source: the sample config's trunk takes 127.0.0.0/8) calls
//! +15550100001, whose inline TwiML dials client `alice`; alice is a token-registered UA.
//! Each side has an RTP phone (`harness::rtp`): its SDP advertises the phone's socket, and
//! the switch answers each leg with SDP of its own (its relay's address and port). The
//! tests send RTP to the port the switch advertised to one side and read what arrives at
//! the other side's phone.
// Real sockets and a real process: receive deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::rtp::{
    Codec, Rtp, RtpPhone, SdpAudio, alaw_to_linear, alaw_to_ulaw_nearest, linear_to_ulaw,
    rtp_packet, sdp_for, ulaw_to_alaw_nearest, ulaw_to_linear,
};
use harness::ua::{
    call_id_of, carrier_invite, expect_request, in_dialog as carrier_in_dialog, register, reply,
};
use harness::{Msg, Switch, Udp};

/// Runs the sample config's inline `<Dial><Client>alice</Client></Dial>`.
const NUMBER: &str = "+15550100001";
const WAIT: Duration = Duration::from_secs(5);
/// One 20 ms G.711 frame at 8 kHz.
const FRAME: usize = 160;

/// The sample config with `[media] timeout_secs` set and recordings kept out of the tree.
fn config(media_timeout_secs: u32) -> PathBuf {
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let dir = std::env::temp_dir().join(harness::unique("media-recordings"));
    let text = sample
        .replace(
            "\ntimeout_secs = 60\n",
            &format!("\ntimeout_secs = {media_timeout_secs}\n"),
        )
        .replace(
            "recordings_dir = \"recordings\"",
            &format!("recordings_dir = \"{}\"", dir.display()),
        );
    assert_eq!(
        text.matches(&format!("timeout_secs = {media_timeout_secs}\n"))
            .count(),
        1,
        "the sample config's [media] section changed shape"
    );
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("media")));
    std::fs::write(&path, text).unwrap();
    path
}

/// A bridged call with an RTP phone on each side.
struct Call {
    carrier: Udp,
    alice: Udp,
    carrier_rtp: RtpPhone,
    alice_rtp: RtpPhone,
    invite: String,
    /// The switch's 2xx to the carrier.
    ok: Msg,
    /// The switch's INVITE to alice.
    alice_inv: Msg,
    /// The switch's answer to the carrier: where the carrier sends its RTP.
    switch_for_carrier: SdpAudio,
    /// The switch's offer to alice: where alice sends hers.
    switch_for_alice: SdpAudio,
    /// When the carrier's INVITE went out.
    started: Instant,
}

/// Registers alice, places the carrier's call offering `carrier_codecs`, has alice answer
/// the switch's offer with `alice_codecs`, and ACKs: the call is bridged on return.
fn bridged(sw: &Switch, carrier_codecs: &[Codec], alice_codecs: &[Codec]) -> Call {
    let alice = sw.udp();
    register(&alice, "alice");
    call_alice(sw, alice, carrier_codecs, alice_codecs)
}

/// The same with alice already registered from `alice`.
fn call_alice(sw: &Switch, alice: Udp, carrier_codecs: &[Codec], alice_codecs: &[Codec]) -> Call {
    let carrier_rtp = RtpPhone::new();
    let offer = carrier_rtp.offer(carrier_codecs);
    call_alice_offering(sw, alice, carrier_rtp, &offer, alice_codecs)
}

/// The same with the carrier's offer as given (it need not name `carrier_rtp`).
fn call_alice_offering(
    sw: &Switch,
    alice: Udp,
    carrier_rtp: RtpPhone,
    offer: &str,
    alice_codecs: &[Codec],
) -> Call {
    let carrier = sw.udp();
    let alice_rtp = RtpPhone::new();

    let invite = carrier_invite(sw, &carrier, NUMBER, offer);
    let started = Instant::now();
    carrier.send(&invite);

    let alice_inv = expect_request(&alice, "INVITE", WAIT);
    let switch_for_alice = SdpAudio::parse(&alice_inv.body);
    let answer = alice_rtp.answer(&switch_for_alice, alice_codecs);
    alice.send(reply(
        &alice_inv,
        200,
        "OK",
        "alice1",
        alice.local_addr(),
        Some(&answer),
    ));

    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("2xx to the carrier");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let switch_for_carrier = SdpAudio::parse(&ok.body);
    carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
    expect_request(&alice, "ACK", WAIT);
    Call {
        carrier,
        alice,
        carrier_rtp,
        alice_rtp,
        invite,
        ok,
        alice_inv,
        switch_for_carrier,
        switch_for_alice,
        started,
    }
}

impl Call {
    /// The switch hung the call up: the carrier answers `carrier_bye`, then alice gets
    /// hers and answers it; returns alice's BYE.
    fn both_hung_up(&self, carrier_bye: &Msg) -> Msg {
        self.carrier.send(reply(
            carrier_bye,
            200,
            "OK",
            "x",
            self.carrier.local_addr(),
            None,
        ));
        let bye = expect_request(&self.alice, "BYE", WAIT);
        self.alice.send(reply(
            &bye,
            200,
            "OK",
            "alice1",
            self.alice.local_addr(),
            None,
        ));
        bye
    }

    /// The carrier hangs up; alice gets the BYE and answers it.
    fn carrier_hangs_up(&self) {
        self.carrier.send(carrier_in_dialog(
            "BYE",
            &self.invite,
            &self.ok,
            &self.carrier,
            2,
        ));
        let (ok, _) = self
            .carrier
            .recv_final(&call_id_of(&self.invite), WAIT)
            .expect("200 to BYE");
        assert_eq!(ok.status(), Some(200));
        let bye = expect_request(&self.alice, "BYE", WAIT);
        self.alice.send(reply(
            &bye,
            200,
            "OK",
            "alice1",
            self.alice.local_addr(),
            None,
        ));
    }
}

/// A frame whose bytes say which packet it is (so a reordered, duplicated or foreign
/// packet cannot pass for another).
fn frame(stream: u8, i: usize) -> Vec<u8> {
    (0..FRAME)
        .map(|k| (k as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ stream)
        .collect()
}

/// Sends `n` frames from `from` to `to` with `pt`, one at a time, each awaited at
/// `receiver`: every one must arrive, in order, with the same payload, from `relay` (the
/// switch's address that `receiver` was given: symmetric RTP), with payload type
/// `want_pt` and the payload `expect(sent)`; and the stream `receiver` sees must be one
/// stream (one SSRC, sequence numbers +1, timestamps +160). Returns what arrived.
#[allow(clippy::too_many_arguments)]
fn stream_across(
    from: &mut RtpPhone,
    to: SocketAddr,
    pt: u8,
    payloads: &[Vec<u8>],
    receiver: &RtpPhone,
    relay: SocketAddr,
    want_pt: u8,
    expect: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<Rtp> {
    let mut got: Vec<Rtp> = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        from.send(to, pt, payload);
        let (p, src) = receiver.recv(WAIT).unwrap_or_else(|| {
            panic!(
                "packet {i} of {} sent to {to} never arrived{}",
                payloads.len(),
                if i == 0 {
                    " (a first packet lost at the start of a call: does the relay handle \
                     packets that woke it before the Bridge/Configure queued before them?)"
                } else {
                    ""
                }
            )
        });
        assert_eq!(
            src, relay,
            "packet {i} came from {src}, not the advertised {relay}"
        );
        assert_eq!(p.pt, want_pt, "packet {i}: payload type");
        assert_eq!(p.payload, expect(payload), "packet {i}: payload");
        if let Some(prev) = got.last() {
            assert_eq!(p.ssrc, prev.ssrc, "packet {i}: SSRC changed mid-stream");
            assert_eq!(
                p.seq,
                prev.seq.wrapping_add(1),
                "packet {i}: sequence number"
            );
            assert_eq!(
                p.ts,
                prev.ts.wrapping_add(payload.len() as u32),
                "packet {i}: timestamp"
            );
        }
        got.push(p);
    }
    got
}

// ---------------------------------------------------------------------------------------
// The harness's own pieces
// ---------------------------------------------------------------------------------------

#[test]
fn harness_g711_reference_and_rtp_and_sdp_round_trip() {
    assert_eq!(ulaw_to_linear(0xFF), 0);
    assert_eq!(ulaw_to_linear(0x7F), 0);
    assert_eq!(ulaw_to_linear(0x80), 32124);
    assert_eq!(ulaw_to_linear(0x00), -32124);
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xAA), 32256);
    assert_eq!(linear_to_ulaw(0), 0xFF);
    for c in 0..=255u8 {
        if c != 0x7F {
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), c, "{c:#x}");
        }
        // Nearest-value transcoding keeps the sign and is within G.711's worst step.
        let u = alaw_to_ulaw_nearest(c);
        assert_eq!(u >= 0x80, c >= 0x80);
        assert!((i32::from(ulaw_to_linear(u)) - i32::from(alaw_to_linear(c))).abs() <= 132);
        let a = ulaw_to_alaw_nearest(c);
        assert_eq!(a >= 0x80, c >= 0x80);
        assert!((i32::from(alaw_to_linear(a)) - i32::from(ulaw_to_linear(c))).abs() <= 132);
    }
    assert_eq!(alaw_to_ulaw_nearest(0xD5), 0xFE, "+8 is exact in μ-law");
    assert_eq!(ulaw_to_alaw_nearest(0xFF), 0xD5);

    let p = rtp_packet(8, true, 65535, 0xDEAD_BEEF, 42, &[1, 2, 3]);
    let r = Rtp::parse(&p).unwrap();
    assert_eq!(
        (r.marker, r.pt, r.seq, r.ts, r.ssrc),
        (true, 8, 65535, 0xDEAD_BEEF, 42)
    );
    assert_eq!(r.payload, vec![1, 2, 3]);

    let addr: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    let s = SdpAudio::parse(sdp_for(addr, &[Codec::Pcma, Codec::TelephoneEvent]).as_bytes());
    assert_eq!(s.rtp, addr);
    assert_eq!(s.pts, vec![8, 101]);
    assert_eq!(s.pt_of("telephone-event"), Some(101));
    assert_eq!(s.pt_of("PCMA"), Some(8));
    assert_eq!(s.pt_of("PCMU"), None);
    assert_eq!(s.direction, "sendrecv");
}

// ---------------------------------------------------------------------------------------
// Through the switch
// ---------------------------------------------------------------------------------------

#[test]
fn a_bridged_call_carries_audio_both_ways_through_the_switchs_ports() {
    let sw = Switch::start_with_config(config(60));
    let all = [Codec::Pcmu, Codec::Pcma, Codec::TelephoneEvent];
    let mut call = bridged(&sw, &all, &[Codec::Pcmu, Codec::TelephoneEvent]);

    // Each leg got the switch's own SDP: its address, an even port of its own per leg
    // (RTCP on the next), not the other party's.
    let (c, a) = (&call.switch_for_carrier, &call.switch_for_alice);
    for (side, s) in [("carrier", c), ("alice", a)] {
        assert_eq!(s.rtp.ip(), sw.udp_addr().ip(), "{side}: {s:?}");
        assert_eq!(s.rtp.port() % 2, 0, "{side}: RTP on an even port: {s:?}");
        assert_ne!(s.rtp.port(), call.carrier_rtp.port(), "{side}");
        assert_ne!(s.rtp.port(), call.alice_rtp.port(), "{side}");
        if let Some(rtcp) = s.rtcp_port {
            assert_eq!(rtcp, s.rtp.port() + 1, "{side}: {s:?}");
        }
        assert_eq!(s.direction, "sendrecv", "{side}");
    }
    assert_ne!(c.rtp, a.rtp, "one relay port per leg");
    assert_eq!(
        c.first_pt(),
        0,
        "answered with the carrier's first choice: {c:?}"
    );
    assert!(a.pt_of("PCMU").is_some(), "{a:?}");

    // Carrier → alice: PCMU bytes arrive unchanged, from the port alice was told.
    let out: Vec<Vec<u8>> = (0..25).map(|i| frame(0xC0, i)).collect();
    let to_alice = stream_across(
        &mut call.carrier_rtp,
        c.rtp,
        0,
        &out,
        &call.alice_rtp,
        a.rtp,
        0,
        |p| p.to_vec(),
    );
    assert_eq!(to_alice.len(), 25);

    // Alice → carrier, likewise, from the port the carrier was told.
    let back: Vec<Vec<u8>> = (0..25).map(|i| frame(0xA1, i)).collect();
    stream_across(
        &mut call.alice_rtp,
        a.rtp,
        0,
        &back,
        &call.carrier_rtp,
        c.rtp,
        0,
        |p| p.to_vec(),
    );

    // Both ways at once: interleaved, every packet still crosses.
    for i in 0..20 {
        let (x, y) = (frame(0x11, i), frame(0x22, i));
        call.carrier_rtp.send(c.rtp, 0, &x);
        call.alice_rtp.send(a.rtp, 0, &y);
        let (p, src) = call
            .alice_rtp
            .recv(WAIT)
            .expect("carrier's packet at alice");
        assert_eq!((src, p.payload), (a.rtp, x), "packet {i} at alice");
        let (p, src) = call
            .carrier_rtp
            .recv(WAIT)
            .expect("alice's packet at the carrier");
        assert_eq!((src, p.payload), (c.rtp, y), "packet {i} at the carrier");
    }
    call.carrier_hangs_up();
}

#[test]
fn pcma_from_the_carrier_reaches_a_pcmu_only_client_transcoded() {
    let sw = Switch::start_with_config(config(60));
    let mut call = bridged(&sw, &[Codec::Pcma], &[Codec::Pcmu]);
    let (c, a) = (
        call.switch_for_carrier.clone(),
        call.switch_for_alice.clone(),
    );
    assert_eq!(c.first_pt(), 8, "the carrier offered PCMA only: {c:?}");
    assert!(c.pt_of("PCMU").is_none(), "{c:?}");
    assert!(
        a.pt_of("PCMU").is_some(),
        "alice must be offered PCMU: {a:?}"
    );

    // Every A-law code, twice over in 160-byte frames: alice hears, in μ-law, the nearest
    // value to what the carrier sent.
    let alaw: Vec<Vec<u8>> = (0..4)
        .map(|f| (0..FRAME).map(|k| ((f * FRAME + k) % 256) as u8).collect())
        .collect();
    stream_across(
        &mut call.carrier_rtp,
        c.rtp,
        8,
        &alaw,
        &call.alice_rtp,
        a.rtp,
        0,
        |p| p.iter().map(|&b| alaw_to_ulaw_nearest(b)).collect(),
    );
    // And alice's μ-law reaches the carrier as A-law.
    let ulaw: Vec<Vec<u8>> = (0..4)
        .map(|f| {
            (0..FRAME)
                .map(|k| ((f * FRAME + k + 7) % 256) as u8)
                .collect()
        })
        .collect();
    stream_across(
        &mut call.alice_rtp,
        a.rtp,
        0,
        &ulaw,
        &call.carrier_rtp,
        c.rtp,
        8,
        |p| p.iter().map(|&b| ulaw_to_alaw_nearest(b)).collect(),
    );
    call.carrier_hangs_up();
}

#[test]
fn a_third_party_spraying_the_carriers_port_after_latching_is_not_relayed() {
    let sw = Switch::start_with_config(config(60));
    let mut call = bridged(&sw, &[Codec::Pcmu], &[Codec::Pcmu]);
    let (c, a) = (
        call.switch_for_carrier.clone(),
        call.switch_for_alice.clone(),
    );
    // The carrier speaks first: the switch latches onto it.
    let first: Vec<Vec<u8>> = (0..3).map(|i| frame(0xC0, i)).collect();
    stream_across(
        &mut call.carrier_rtp,
        c.rtp,
        0,
        &first,
        &call.alice_rtp,
        a.rtp,
        0,
        |p| p.to_vec(),
    );

    // A sprayer sends to the carrier's relay port; the carrier keeps talking after each
    // burst. Datagrams on one socket are read in order, so had any sprayed packet been
    // relayed it would reach alice before the carrier's next one.
    let mut sprayer = RtpPhone::new();
    let spray = vec![0x5A; FRAME];
    for round in 0..10 {
        for _ in 0..5 {
            sprayer.send(c.rtp, 0, &spray);
        }
        let mine = frame(0xC1, round);
        call.carrier_rtp.send(c.rtp, 0, &mine);
        let (p, src) = call
            .alice_rtp
            .recv(WAIT)
            .unwrap_or_else(|| panic!("round {round}: the carrier's packet never reached alice"));
        assert_ne!(
            p.payload, spray,
            "round {round}: a sprayed packet reached alice"
        );
        assert_eq!((src, p.payload), (a.rtp, mine), "round {round}");
    }
    // Alice's audio still goes to the carrier, not to the sprayer.
    let back: Vec<Vec<u8>> = (0..5).map(|i| frame(0xA1, i)).collect();
    stream_across(
        &mut call.alice_rtp,
        a.rtp,
        0,
        &back,
        &call.carrier_rtp,
        c.rtp,
        0,
        |p| p.to_vec(),
    );
    // Nothing went to the sprayer: whatever the switch sent there would be queued on its
    // socket by now (the carrier's packets sent after it have all been delivered).
    let stray = sprayer.drain_until(Instant::now() + Duration::from_millis(200));
    assert_eq!(stray, 0, "the switch sent {stray} datagrams to the sprayer");
    call.carrier_hangs_up();
}

/// A sprayer on 127.0.0.2 sprays the carrier's relay port before the carrier says anything
/// (so it may latch), then the carrier speaks from `nat` (or, when `None`, its own RTP
/// socket): from the carrier's first packet on alice hears only the carrier, alice's audio
/// goes to where the carrier really is, and nothing goes to the sprayer. `tag` marks the
/// frames of this run.
fn an_early_sprayer_loses_the_stream(call: &mut Call, mut nat: Option<RtpPhone>, tag: u8) {
    let (c, a) = (
        call.switch_for_carrier.clone(),
        call.switch_for_alice.clone(),
    );
    let mut sprayer = RtpPhone::bind_on("127.0.0.2");
    let spray = vec![0x5A; FRAME];
    for _ in 0..20 {
        sprayer.send(c.rtp, 0, &spray);
    }
    // Whatever the sprayer got through before the carrier spoke.
    let early = call
        .alice_rtp
        .drain_until(Instant::now() + Duration::from_millis(300));
    let speaker = match nat.as_mut() {
        Some(n) => n,
        None => &mut call.carrier_rtp,
    };
    for round in 0..10 {
        for _ in 0..5 {
            sprayer.send(c.rtp, 0, &spray);
        }
        let mine = frame(tag, round);
        speaker.send(c.rtp, 0, &mine);
        // Datagrams on one socket are read in order: had a sprayed packet sent after the
        // carrier's first one been relayed, it would reach alice before the next one. In
        // round 0 the sprays before the carrier's first packet still went through.
        let (p, src) = loop {
            let (p, src) = call.alice_rtp.recv(WAIT).unwrap_or_else(|| {
                panic!("round {round}: the carrier's packet never reached alice (early: {early})")
            });
            if round > 0 || p.payload != spray {
                break (p, src);
            }
        };
        assert_eq!(src, a.rtp);
        assert_eq!(p.payload, mine, "round {round}: alice heard the sprayer");
    }
    sprayer.drain_until(Instant::now() + Duration::from_millis(100));
    // Alice's audio goes to where the carrier really is.
    let back: Vec<Vec<u8>> = (0..5).map(|i| frame(tag ^ 0x60, i)).collect();
    stream_across(
        &mut call.alice_rtp,
        a.rtp,
        0,
        &back,
        speaker,
        c.rtp,
        0,
        |p| p.to_vec(),
    );
    let stray = sprayer.drain_until(Instant::now() + Duration::from_millis(200));
    assert_eq!(stray, 0, "the switch sent {stray} datagrams to the sprayer");
}

/// The carrier's SDP names its public address (127.0.0.1 here) but its NAT rewrote the
/// port: the carrier's packets come from its SDP's IP, another port, and outrank an early
/// sprayer's.
#[test]
fn an_early_sprayer_loses_the_stream_once_the_caller_speaks_from_behind_a_nat() {
    let sw = Switch::start_with_config(config(60));
    let mut call = bridged(&sw, &[Codec::Pcmu], &[Codec::Pcmu]);
    let nat = RtpPhone::new();
    assert_ne!(nat.port(), call.carrier_rtp.port());
    an_early_sprayer_loses_the_stream(&mut call, Some(nat), 0xC1);
    call.carrier_hangs_up();
}

/// The carrier's SDP names a private address (as a phone behind NAT writes its own), so no
/// source matches the SDP: only the IP its SIP came from (127.0.0.1) tells the carrier's
/// media from the sprayer's (127.0.0.2). Every spray after the carrier took the stream is
/// counted as foreign on /metrics.
#[test]
fn behind_nat_with_a_private_sdp_an_early_sprayer_loses_the_stream_to_the_sip_host() {
    let sw = Switch::start_with_config(config(60));
    let alice = sw.udp();
    register(&alice, "alice");
    let nat = RtpPhone::new();
    let private: SocketAddr = "10.0.0.99:4000".parse().unwrap();
    let offer = sdp_for(private, &[Codec::Pcmu]);
    let mut call = call_alice_offering(&sw, alice, nat, &offer, &[Codec::Pcmu]);
    an_early_sprayer_loses_the_stream(&mut call, None, 0xC2);
    let foreign = sw.metric("rtp_packets_dropped_total{reason=\"foreign\"}");
    assert!(
        foreign >= 45,
        "{foreign} foreign packets counted, 45 sprayed after the carrier spoke"
    );
    assert!(sw.metric("rtp_packets_relayed_total") >= 18);
    call.carrier_hangs_up();
}

#[test]
fn a_bridged_call_with_no_media_ends_after_the_media_timeout() {
    let sw = Switch::start_with_config(config(2));
    let mut call = bridged(&sw, &[Codec::Pcmu], &[Codec::Pcmu]);
    let c = call.switch_for_carrier.clone();

    // While the carrier sends, the call stays up: for twice the timeout, a frame every
    // 50 ms, and no BYE on either side.
    let talk_until = Instant::now() + Duration::from_secs(4);
    let mut i = 0;
    while Instant::now() < talk_until {
        call.carrier_rtp.send(c.rtp, 0, &frame(0xC0, i));
        i += 1;
        for ua in [&call.carrier, &call.alice] {
            if let Some(m) = ua.recv_msg(Duration::from_millis(25)) {
                assert_ne!(
                    m.method(),
                    Some("BYE"),
                    "BYE while media flows: {}",
                    m.text()
                );
            }
        }
    }
    assert!(
        call.alice_rtp
            .drain_until(Instant::now() + Duration::from_millis(100))
            > 0,
        "the carrier's audio reached alice"
    );

    // Silence: both sides get a BYE, answered with 200.
    let silent_from = Instant::now();
    let bye = expect_request(&call.carrier, "BYE", Duration::from_secs(2 + 5));
    assert!(
        silent_from.elapsed() >= Duration::from_millis(1500),
        "BYE {:?} after the last packet: before the 2 s timeout",
        silent_from.elapsed()
    );
    let bye = call.both_hung_up(&bye);
    assert_eq!(
        bye.header("Call-ID"),
        call.alice_inv.header("Call-ID"),
        "alice's dialog ends"
    );
}

#[test]
fn a_bridged_call_where_nobody_sends_rtp_ends_after_the_media_timeout() {
    let sw = Switch::start_with_config(config(2));
    let call = bridged(&sw, &[Codec::Pcmu], &[Codec::Pcmu]);
    let bye = expect_request(&call.carrier, "BYE", Duration::from_secs(2 + 5));
    assert!(
        call.started.elapsed() >= Duration::from_secs(2),
        "BYE {:?} after the INVITE: before the 2 s timeout",
        call.started.elapsed()
    );
    call.both_hung_up(&bye);
}

#[test]
fn rtp_ports_are_taken_per_leg_and_return_to_the_pool_when_the_call_ends() {
    let sw = Switch::start_with_config(config(60));
    let total = sw.metric("rtp_port_pairs_total");
    // rtp_ports = "20000-29999": 5000 even/odd pairs.
    assert_eq!(total, 5000);
    assert_eq!(sw.metric("rtp_port_pairs_free"), total);

    let call = bridged(&sw, &[Codec::Pcmu], &[Codec::Pcmu]);
    // One pair for the carrier's leg, one for alice's.
    assert_eq!(sw.metric("rtp_port_pairs_free"), total - 2);
    call.carrier_hangs_up();
    sw.wait_metric("rtp_port_pairs_free", total, WAIT);

    // A second call takes them again and gives them back again.
    let call = call_alice(&sw, call.alice, &[Codec::Pcmu], &[Codec::Pcmu]);
    assert_eq!(sw.metric("rtp_port_pairs_free"), total - 2);
    call.carrier_hangs_up();
    sw.wait_metric("rtp_port_pairs_free", total, WAIT);
}

#[test]
fn a_carrier_hold_stops_audio_towards_the_carrier_and_reaches_alice_as_a_reinvite() {
    let sw = Switch::start_with_config(config(60));
    let mut c = bridged(
        &sw,
        &[Codec::Pcmu, Codec::TelephoneEvent],
        &[Codec::Pcmu, Codec::TelephoneEvent],
    );
    let to_switch_c = c.switch_for_carrier.rtp;
    let to_switch_a = c.switch_for_alice.rtp;
    // Both ways flow first (each side latched).
    let both: Vec<Vec<u8>> = (0..5).map(|i| frame(1, i)).collect();
    stream_across(
        &mut c.carrier_rtp,
        to_switch_c,
        0,
        &both,
        &c.alice_rtp,
        to_switch_a,
        0,
        |p| p.to_vec(),
    );
    stream_across(
        &mut c.alice_rtp,
        to_switch_a,
        0,
        &both,
        &c.carrier_rtp,
        to_switch_c,
        0,
        |p| p.to_vec(),
    );

    // The carrier holds: sendonly. The switch answers recvonly itself and asks alice for
    // the same with a re-INVITE of its own.
    let hold = c
        .carrier_rtp
        .offer(&[Codec::Pcmu, Codec::TelephoneEvent])
        .replace("a=sendrecv", "a=sendonly");
    let reinvite = carrier_in_dialog("INVITE", &c.invite, &c.ok, &c.carrier, 2).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:carrier@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold}",
            c.carrier.local_addr(),
            hold.len()
        ),
    );
    c.carrier.send(&reinvite);
    let (held, _) = c
        .carrier
        .recv_final(&call_id_of(&c.invite), WAIT)
        .expect("the switch answers the hold");
    assert_eq!(held.status(), Some(200));
    assert_eq!(SdpAudio::parse(&held.body).direction, "recvonly");
    c.carrier
        .send(carrier_in_dialog("ACK", &c.invite, &held, &c.carrier, 2));
    let at_alice = expect_request(&c.alice, "INVITE", WAIT);
    let offer = SdpAudio::parse(&at_alice.body);
    assert_eq!(offer.direction, "sendonly", "the hold is passed on");
    let answer = c
        .alice_rtp
        .answer(&offer, &[Codec::Pcmu, Codec::TelephoneEvent])
        .replace("a=sendrecv", "a=recvonly");
    c.alice.send(reply(
        &at_alice,
        200,
        "OK",
        "alice1",
        c.alice.local_addr(),
        Some(&answer),
    ));
    expect_request(&c.alice, "ACK", WAIT);

    // Held: the carrier's music still reaches alice ...
    let music: Vec<Vec<u8>> = (0..5).map(|i| frame(3, i)).collect();
    stream_across(
        &mut c.carrier_rtp,
        to_switch_c,
        0,
        &music,
        &c.alice_rtp,
        to_switch_a,
        0,
        |p| p.to_vec(),
    );
    // ... and nothing alice sends reaches the carrier.
    for i in 0..10 {
        c.alice_rtp.send(to_switch_a, 0, &frame(4, i));
    }
    let quiet_until = Instant::now() + Duration::from_millis(500);
    while let Some((p, _)) = c.carrier_rtp.recv_until(quiet_until) {
        assert!(
            !(0..10).any(|i| p.payload == frame(4, i)),
            "alice's audio reached the carrier on hold"
        );
    }
    c.carrier_hangs_up();
}
