//! A [`WebRtcSession`] against a second, independent str0m peer playing the browser (full
//! ICE, controlling, DTLS client, as Chrome is towards an ICE-lite server), on a virtual
//! clock with datagrams carried in memory, some of them lost.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};
use str0m::rtp::{ExtensionMap, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

use super::*;

const OURS: &str = "192.0.2.1:40000";
const BROWSER: &str = "198.51.100.7:51000";
const BROWSER_SSRC: u32 = 0x1111_2222;
const OUR_SSRC: u32 = 0x3333_4444;

/// The epoch of virtual time: the only clock read here. Every other instant is this plus
/// a `Duration`.
#[allow(
    clippy::disallowed_methods,
    reason = "the virtual clock's epoch; never compared to real time"
)]
fn epoch() -> Instant {
    Instant::now()
}

struct Browser {
    rtc: Rtc,
    received: Vec<(u8, u16, Vec<u8>)>,
}

fn browser(identity_fp: &str, t0: Instant) -> (Browser, IceCreds, String) {
    let provider = std::sync::Arc::new(str0m::crypto::from_feature_flags());
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(provider)
        .set_rtp_mode(true)
        .set_extension_map(ExtensionMap::empty())
        .set_local_ice_credentials(IceCreds {
            ufrag: "brws".into(),
            pass: "browser-password-0123456789".into(),
        })
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(t0);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    rtc.add_remote_candidate(Candidate::host(OURS.parse().unwrap(), "udp").unwrap());
    let creds = rtc.direct_api().local_ice_credentials();
    let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
    let mid = Mid::from("0");
    {
        let mut api = rtc.direct_api();
        api.set_ice_controlling(true);
        api.set_remote_ice_credentials(IceCreds {
            ufrag: "ours".into(),
            pass: "switchboard-password-012345".into(),
        });
        api.set_remote_fingerprint(identity_fp.parse().unwrap());
        api.declare_media(mid, MediaKind::Audio);
        api.declare_stream_tx(Ssrc::from(BROWSER_SSRC), None, mid, None);
        api.expect_stream_rx(Ssrc::from(OUR_SSRC), None, mid, None);
        api.start_dtls(true).unwrap();
    }
    (
        Browser {
            rtc,
            received: Vec::new(),
        },
        creds,
        fp,
    )
}

fn params(browser_creds: &IceCreds, browser_fp: &str) -> SecureParams {
    SecureParams {
        local_ufrag: "ours".into(),
        local_pwd: "switchboard-password-012345".into(),
        remote_ufrag: browser_creds.ufrag.clone(),
        remote_pwd: browser_creds.pass.clone(),
        remote_fingerprint: browser_fp.to_string(),
        dtls_client: false,
        mid: "0".into(),
        mid_extension: None,
        remote_ssrcs: vec![BROWSER_SSRC],
        candidate: OURS.parse().unwrap(),
    }
}

/// Carries datagrams both ways until `until` or `done`; every `lose_every`-th datagram
/// (counting both directions) is lost.
struct Net {
    now: Instant,
    to_ours: VecDeque<(SocketAddr, Vec<u8>)>,
    to_browser: VecDeque<Vec<u8>>,
    count: usize,
    lose_every: usize,
    from_ours_rtp: Vec<Vec<u8>>,
}

impl Net {
    fn lose(&mut self) -> bool {
        self.count += 1;
        self.lose_every != 0 && self.count.is_multiple_of(self.lose_every)
    }

    fn step(&mut self, ours: &mut WebRtcSession, b: &mut Browser) {
        // Browser output.
        let mut wake = self.now + Duration::from_millis(20);
        loop {
            match b.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    wake = wake.min(t);
                    break;
                }
                Output::Transmit(t) => {
                    assert_eq!(t.destination, OURS.parse::<SocketAddr>().unwrap());
                    if !self.lose() {
                        self.to_ours.push_back((t.source, t.contents.to_vec()));
                    }
                }
                Output::Event(Event::RtpPacket(p)) => b.received.push((
                    *p.header.payload_type,
                    p.header.sequence_number,
                    p.payload.to_vec(),
                )),
                Output::Event(_) => {}
            }
        }
        // Our output.
        let mut buf = [0u8; 2048];
        loop {
            match ours.poll(&mut buf) {
                Polled::Idle(t) => {
                    wake = wake.min(t);
                    break;
                }
                Polled::Transmit { len, to } => {
                    assert_eq!(to, BROWSER.parse::<SocketAddr>().unwrap());
                    if !self.lose() {
                        self.to_browser.push_back(buf[..len].to_vec());
                    }
                }
                Polled::Rtp { len } => self.from_ours_rtp.push(buf[..len].to_vec()),
            }
        }
        // Deliver, then move the clock.
        let delivered = !self.to_ours.is_empty() || !self.to_browser.is_empty();
        while let Some((from, d)) = self.to_ours.pop_front() {
            ours.receive(self.now, from, &d);
        }
        while let Some(d) = self.to_browser.pop_front() {
            let r = str0m::net::Receive::new(
                str0m::net::Protocol::Udp,
                OURS.parse().unwrap(),
                BROWSER.parse().unwrap(),
                &d,
            )
            .unwrap();
            b.rtc.handle_input(Input::Receive(self.now, r)).unwrap();
        }
        if !delivered {
            self.now = wake.max(self.now + Duration::from_micros(100));
            ours.timeout(self.now);
            b.rtc.handle_input(Input::Timeout(self.now)).unwrap();
        }
    }
}

fn connect(lose_every: usize) -> (WebRtcSession, Browser, Net) {
    let identity = DtlsIdentity::generate().unwrap();
    assert!(identity.fingerprint().starts_with("sha-256 "));
    let t0 = epoch();
    let (mut b, creds, fp) = browser(identity.fingerprint(), t0);
    let types = PayloadTypes {
        pcmu: Some(0),
        pcma: Some(8),
        telephone_event: Some(101),
    };
    let mut ours =
        WebRtcSession::new(&identity, params(&creds, &fp), types, types, OUR_SSRC, t0).unwrap();
    let mut net = Net {
        now: t0,
        to_ours: VecDeque::new(),
        to_browser: VecDeque::new(),
        count: 0,
        lose_every,
        from_ours_rtp: Vec::new(),
    };
    while !(ours.is_connected() && b.rtc.is_connected()) {
        assert!(
            net.now - t0 < Duration::from_secs(30),
            "no connection in 30 s of virtual time"
        );
        net.step(&mut ours, &mut b);
    }
    (ours, b, net)
}

fn pcmu_packet(seq: u16, ts: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&OUR_SSRC.to_be_bytes());
    p.extend(std::iter::repeat_n(fill, 160));
    p
}

#[test]
fn handshake_then_media_both_ways() {
    let (mut ours, mut b, mut net) = connect(0);

    // Browser → us: SRTP in, plain RTP out of poll.
    let mid = Mid::from("0");
    for i in 0..5u16 {
        let mut api = b.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None).unwrap();
        tx.write_rtp(RtpWrite::new(
            0.into(),
            u64::from(1000 + i).into(),
            160 * u32::from(i),
            net.now,
            vec![0x55u8; 160],
        ));
        for _ in 0..4 {
            net.step(&mut ours, &mut b);
        }
    }
    assert_eq!(net.from_ours_rtp.len(), 5, "every packet unprotected once");
    let first = RtpPacket::new(&net.from_ours_rtp[0][..]).unwrap();
    assert_eq!(first.payload_type(), 0);
    assert_eq!(first.sequence(), 1000);
    assert_eq!(first.ssrc(), BROWSER_SSRC);
    assert!(first.payload().iter().all(|&x| x == 0x55));

    // Us → browser: plain RTP in, SRTP on the wire, the browser reads the payload back.
    for i in 0..5u16 {
        ours.send_rtp(
            net.now,
            &pcmu_packet(7 + i, 8000 + 160 * u32::from(i), 0x2a),
        );
        for _ in 0..4 {
            net.step(&mut ours, &mut b);
        }
    }
    assert_eq!(b.received.len(), 5);
    assert_eq!(b.received[0].0, 0);
    assert_eq!(b.received[0].1, 7);
    assert!(b.received.iter().all(|(_, _, p)| p == &vec![0x2a; 160]));
    assert_eq!(ours.mid(), "0");
}

#[test]
fn handshake_survives_loss() {
    // Every fourth datagram lost, whichever way: STUN and DTLS retransmit.
    let (ours, b, _) = connect(4);
    assert!(ours.is_connected() && b.rtc.is_connected());
    assert!(!ours.has_failed());
}

#[test]
fn strangers_and_garbage_cost_nothing() {
    let (mut ours, mut b, mut net) = connect(0);
    let stranger: SocketAddr = "203.0.113.9:9999".parse().unwrap();
    // Not STUN, DTLS or RTP; a truncated RTP header; an RTP packet that is not SRTP.
    ours.receive(net.now, stranger, b"hello");
    ours.receive(net.now, stranger, &[0x80, 0x00, 0x01]);
    ours.receive(net.now, stranger, &pcmu_packet(1, 1, 0));
    let mut buf = [0u8; 2048];
    loop {
        match ours.poll(&mut buf) {
            Polled::Idle(_) => break,
            Polled::Rtp { .. } => panic!("unauthenticated RTP came out"),
            Polled::Transmit { .. } => {}
        }
    }
    assert!(ours.is_connected());
    net.step(&mut ours, &mut b);
}

#[test]
fn a_bad_fingerprint_is_refused_up_front() {
    let identity = DtlsIdentity::generate().unwrap();
    let creds = IceCreds {
        ufrag: "x".into(),
        pass: "y".into(),
    };
    let mut p = params(&creds, "sha-256 nothex");
    p.remote_fingerprint = "no-space-here".into();
    let r = WebRtcSession::new(
        &identity,
        p,
        PayloadTypes::default(),
        PayloadTypes::default(),
        1,
        epoch(),
    );
    assert!(matches!(r, Err(SecureError::Fingerprint(_))));
}

#[test]
fn sequence_numbers_extend_across_wraps() {
    assert_eq!(extend_seq(None, 65535), 65535);
    assert_eq!(extend_seq(Some(65535), 0), 65536);
    assert_eq!(extend_seq(Some(65536), 65535), 65535);
    assert_eq!(extend_seq(Some(3 * 65536 + 10), 11), 3 * 65536 + 11);
}

#[test]
fn a_certificate_that_does_not_match_the_fingerprint_fails_the_session() {
    let identity = DtlsIdentity::generate().unwrap();
    let t0 = epoch();
    let (mut b, creds, _fp) = browser(identity.fingerprint(), t0);
    // The SDP said another certificate: a man in the middle, or a stale answer.
    let (_other, _, other_fp) = browser(identity.fingerprint(), t0);
    let mut ours = WebRtcSession::new(
        &identity,
        params(&creds, &other_fp),
        PayloadTypes::default(),
        PayloadTypes::default(),
        OUR_SSRC,
        t0,
    )
    .unwrap();
    let mut net = Net {
        now: t0,
        to_ours: VecDeque::new(),
        to_browser: VecDeque::new(),
        count: 0,
        lose_every: 0,
        from_ours_rtp: Vec::new(),
    };
    while !ours.has_failed() {
        assert!(
            net.now - t0 < Duration::from_secs(30),
            "a wrong certificate went unnoticed for 30 s of virtual time"
        );
        assert!(!ours.is_connected(), "connected to the wrong certificate");
        let _ = b
            .rtc
            .direct_api()
            .stream_tx(&Ssrc::from(BROWSER_SSRC))
            .map(|s| {
                s.write_rtp(RtpWrite::new(
                    0.into(),
                    1.into(),
                    0,
                    net.now,
                    &[0x55; 160][..],
                ))
            });
        net.step(&mut ours, &mut b);
    }
    assert!(!ours.is_connected());
    assert!(net.from_ours_rtp.is_empty(), "media passed without keys");
}
