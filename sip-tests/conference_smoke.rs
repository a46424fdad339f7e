//! Smoke: two carrier calls in one conference hear each other's tone and not their own.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::customer_app::CustomerApp;
use harness::rtp::{Codec, RtpPhone, SdpAudio, linear_to_ulaw, ulaw_to_linear};
use harness::ua::{call_id_of, carrier_invite, in_dialog};
use harness::{Switch, Udp};

const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const NUMBER: &str = "+15550100001";

fn config_with(voice_url: &str) -> PathBuf {
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let text = sample
        .lines()
        .map(|l| match l.starts_with("twiml = ") {
            true => format!("voice_url = \"{voice_url}\""),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("conf")));
    std::fs::write(&path, text).unwrap();
    path
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

#[test]
fn two_callers_hear_each_other() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        "[[route]]\npath = \"/voice\"\nbody = '<Response><Dial><Conference beep=\"false\">room</Conference></Dial></Response>'\n",
    );
    let sw = Switch::start_with_config(config_with(&app.url("/voice")));
    let mut calls = Vec::new();
    for _ in 0..2 {
        let carrier: Udp = sw.udp();
        let phone = RtpPhone::new();
        let invite = carrier_invite(&sw, &carrier, NUMBER, &phone.offer(&[Codec::Pcmu]));
        carrier.send(&invite);
        let (ok, _) = carrier
            .recv_final(&call_id_of(&invite), Duration::from_secs(5))
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
        let relay = SdpAudio::parse(&ok.body).rtp;
        calls.push((carrier, phone, relay));
    }
    let tones = [400.0, 1100.0];
    let mut heard: Vec<Vec<i16>> = vec![Vec::new(), Vec::new()];
    let start = Instant::now();
    let mut next = start;
    let mut i = 0usize;
    while start.elapsed() < Duration::from_secs(3) {
        if Instant::now() >= next {
            for (k, (_, phone, relay)) in calls.iter_mut().enumerate() {
                let frame: Vec<u8> = (0..160)
                    .map(|n| {
                        let t = (i * 160 + n) as f64 / 8000.0;
                        linear_to_ulaw(
                            (8000.0 * (2.0 * std::f64::consts::PI * tones[k] * t).sin()) as i16,
                        )
                    })
                    .collect();
                phone.send(*relay, 0, &frame);
            }
            i += 1;
            next += Duration::from_millis(20);
        }
        for (k, (_, phone, _)) in calls.iter().enumerate() {
            while let Some((rtp, _)) = phone.recv_until(Instant::now() + Duration::from_millis(1)) {
                if start.elapsed() > Duration::from_secs(1) {
                    heard[k].extend(rtp.payload.iter().map(|&b| ulaw_to_linear(b)));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for k in 0..2 {
        let own = goertzel(&heard[k], tones[k]);
        let other = goertzel(&heard[k], tones[1 - k]);
        eprintln!(
            "phone {k}: {} samples, own {own:.0}, other {other:.0}",
            heard[k].len()
        );
        assert!(
            other > 1000.0 && own * 50.0 < other,
            "phone {k}: own {own} other {other}"
        );
    }
}

/// A tone frame for phone `k` at time step `i`.
fn tone(hz: f64, i: usize) -> Vec<u8> {
    (0..160)
        .map(|n| {
            let t = (i * 160 + n) as f64 / 8000.0;
            linear_to_ulaw((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

#[test]
fn a_queued_caller_hears_hold_music_then_talks_with_the_agent_and_its_action_says_bridged() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Enqueue action="/queued">support</Enqueue></Response>'
after = 1
after_body = '<Response><Dial><Queue>support</Queue></Dial></Response>'
[[route]]
path = "/queued"
body = '<Response><Hangup/></Response>'
"#,
    );
    let sw = Switch::start_with_config(config_with(&app.url("/voice")));
    let dial = |sw: &Switch| {
        let carrier: Udp = sw.udp();
        let phone = RtpPhone::new();
        let invite = carrier_invite(sw, &carrier, NUMBER, &phone.offer(&[Codec::Pcmu]));
        carrier.send(&invite);
        let (ok, _) = carrier
            .recv_final(&call_id_of(&invite), Duration::from_secs(5))
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
        let relay = SdpAudio::parse(&ok.body).rtp;
        (carrier, phone, relay, invite, ok)
    };
    let (caller_sip, mut caller, caller_relay, _, _) = dial(&sw);
    // Hold music while waiting.
    let mut loud = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while let Some((rtp, _)) = caller.recv_until(until) {
        if rtp.payload.iter().any(|&b| ulaw_to_linear(b).abs() > 1000) {
            loud += 1;
        }
    }
    assert!(loud > 20, "the queued caller hears no hold music ({loud})");
    let (_, queues, _) = harness::rest::call_as(
        &sw,
        "AC00000000000000000000000000000001",
        AUTH_TOKEN,
        "GET",
        "Queues.json",
        "",
    );
    assert_eq!(queues["queues"][0]["friendly_name"], "support", "{queues}");
    assert_eq!(queues["queues"][0]["current_size"], 1, "{queues}");

    let (agent_sip, mut agent, agent_relay, agent_invite, agent_ok) = dial(&sw);
    let mut heard: Vec<Vec<i16>> = vec![Vec::new(), Vec::new()];
    let start = Instant::now();
    let mut next = start;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(3) {
        if Instant::now() >= next {
            caller.send(caller_relay, 0, &tone(400.0, i));
            agent.send(agent_relay, 0, &tone(1100.0, i));
            i += 1;
            next += Duration::from_millis(20);
        }
        for (k, phone) in [&caller, &agent].into_iter().enumerate() {
            while let Some((rtp, _)) = phone.recv_until(Instant::now() + Duration::from_millis(1)) {
                if start.elapsed() > Duration::from_secs(1) {
                    heard[k].extend(rtp.payload.iter().map(|&b| ulaw_to_linear(b)));
                }
            }
        }
    }
    let (c_own, c_other) = (goertzel(&heard[0], 400.0), goertzel(&heard[0], 1100.0));
    let (a_own, a_other) = (goertzel(&heard[1], 1100.0), goertzel(&heard[1], 400.0));
    eprintln!(
        "caller: own {c_own:.0} agent {c_other:.0}; agent: own {a_own:.0} caller {a_other:.0}"
    );
    assert!(
        c_other > 1000.0 && c_own * 50.0 < c_other,
        "the caller does not hear the agent"
    );
    assert!(
        a_other > 1000.0 && a_own * 50.0 < a_other,
        "the agent does not hear the caller"
    );

    // The agent hangs up: the caller's action hears `bridged`, and it hangs up.
    agent_sip.send(in_dialog("BYE", &agent_invite, &agent_ok, &agent_sip, 2));
    let queued = app
        .wait_requests(3, Duration::from_secs(5))
        .into_iter()
        .find(|r| r["path"] == "/queued")
        .expect("the Enqueue action");
    assert_eq!(queued["params"]["QueueResult"], "bridged", "{queued}");
    assert!(
        queued["params"]["QueueSid"]
            .as_str()
            .unwrap_or("")
            .starts_with("QU"),
        "{queued}"
    );
    let bye = harness::ua::expect_request(&caller_sip, "BYE", Duration::from_secs(5));
    assert!(bye.text().contains("BYE"));
}
