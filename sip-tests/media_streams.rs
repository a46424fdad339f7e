//! Black-box tests of Twilio Media Streams (`<Connect><Stream>`, `<Start><Stream>`): a
//! carrier calls the running binary, the customer app (`examples/customer_app`) serves the
//! TwiML, and a WebSocket server written here from Twilio's published message schema
//! (<https://www.twilio.com/docs/voice/media-streams/websocket-messages>) plays the voice
//! agent: an echo agent that sends every media payload back, or a recorder of a fork.
//!
//! What is checked is what the caller and the app see: the caller's own audio coming back
//! in order over RTP, the app's messages field for field, `dtmf` on an RFC 4733 key
//! press, `mark` and `clear`, a fork of both tracks of a `<Dial>` that leaves the Dial's
//! audio untouched, the next TwiML after the app closes, and a refused URL's error path.
// Real sockets and a real process: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]
// tungstenite's handshake callback returns its (large) error response type.
#![allow(clippy::result_large_err)]

mod harness;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use harness::Switch;
use harness::customer_app::{CustomerApp, param};
use harness::rtp::{Codec, RtpPhone, SdpAudio};
use harness::ua::{
    answered_call, call_id_of, carrier_invite, expect_request, in_dialog, ok_to, reply,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, WebSocket, accept_hdr};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const NUMBER: &str = "+15550100001";
const WAIT: Duration = Duration::from_secs(5);
const FRAME: usize = 160;

/// What the agent saw of one connection: every message, and the upgrade's signature check.
#[derive(Default)]
struct Seen {
    messages: Vec<Value>,
    signature_ok: Option<bool>,
    closed: bool,
}

/// A WebSocket server on 127.0.0.1 that takes one connection and runs `behave` on it.
struct Agent {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Agent {
    fn start(behave: fn(&mut WebSocket<TcpStream>, &Arc<Mutex<Seen>>)) -> Agent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let agent_seen = seen.clone();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let url = format!("ws://{addr}/agent");
            let check_seen = agent_seen.clone();
            let check = move |req: &Request, resp: Response| {
                let got = req
                    .headers()
                    .get("X-Twilio-Signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                check_seen.lock().unwrap().signature_ok = Some(got == Some(signature(&url)));
                Ok(resp)
            };
            let Ok(mut ws) = accept_hdr(tcp, check) else {
                return;
            };
            behave(&mut ws, &agent_seen);
            let _ = ws.close(None);
            let _ = ws.flush();
            agent_seen.lock().unwrap().closed = true;
        });
        Agent { addr, seen }
    }

    fn url(&self) -> String {
        format!("ws://{}/agent", self.addr)
    }

    fn messages(&self) -> Vec<Value> {
        self.seen.lock().unwrap().messages.clone()
    }

    /// Waits until the agent saw a message for which `f` holds.
    fn wait_for(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| f(m)) {
                return m;
            }
            assert!(Instant::now() < deadline, "the agent never saw {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// X-Twilio-Signature of a WebSocket upgrade: HMAC-SHA1 of the URL alone (no parameters)
/// with the account's auth token, base64.
fn signature(url: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(AUTH_TOKEN.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The next text message, or None on a read timeout; Err when the socket is gone.
fn read_text(ws: &mut WebSocket<TcpStream>, seen: &Arc<Mutex<Seen>>) -> Result<Option<Value>, ()> {
    match ws.read() {
        Ok(Message::Text(t)) => {
            let v: Value = serde_json::from_str(t.as_str()).expect("the switch sends JSON");
            seen.lock().unwrap().messages.push(v.clone());
            Ok(Some(v))
        }
        Ok(_) => Ok(None),
        Err(tokio_tungstenite::tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(_) => Err(()),
    }
}

fn send(ws: &mut WebSocket<TcpStream>, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// The echo agent. First a malformed message (to be skipped), then every media payload
/// goes back; after the 25th, a mark. Once that mark comes back and a `dtmf` was seen, it
/// queues 5 s of audio and a mark, clears them, waits for that mark, and closes.
fn echo_agent(ws: &mut WebSocket<TcpStream>, seen: &Arc<Mutex<Seen>>) {
    ws.send(Message::text("this is not JSON")).unwrap();
    let (mut media, mut marked, mut dtmf, mut cleared) = (0, false, false, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Ok(msg) = read_text(ws, seen) else { return };
        let Some(v) = msg else { continue };
        let sid = v["streamSid"].clone();
        match v["event"].as_str() {
            Some("media") => {
                media += 1;
                let echo = json!({"event": "media", "streamSid": sid,
                    "media": {"payload": v["media"]["payload"]}});
                send(ws, echo);
                if media == 25 {
                    send(
                        ws,
                        json!({"event": "mark", "streamSid": sid, "mark": {"name": "after-25"}}),
                    );
                }
            }
            Some("mark") if v["mark"]["name"] == "after-25" => marked = true,
            Some("mark") if v["mark"]["name"] == "cleared" => return,
            Some("dtmf") => dtmf = true,
            _ => {}
        }
        if marked && dtmf && !cleared {
            cleared = true;
            let long = STANDARD.encode(vec![0x2a_u8; 5 * 8000]);
            send(
                ws,
                json!({"event": "media", "streamSid": sid, "media": {"payload": long}}),
            );
            send(
                ws,
                json!({"event": "mark", "streamSid": sid, "mark": {"name": "cleared"}}),
            );
            std::thread::sleep(Duration::from_millis(200));
            send(ws, json!({"event": "clear", "streamSid": sid}));
        }
    }
}

/// A fork's app: records what it gets until `stop` (or the socket closes).
fn recording_agent(ws: &mut WebSocket<TcpStream>, seen: &Arc<Mutex<Seen>>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match read_text(ws, seen) {
            Err(()) => return,
            Ok(Some(v)) if v["event"] == "stop" => return,
            Ok(_) => {}
        }
    }
}

/// 20 ms of μ-law whose bytes say which frame it is (`tag` tells two senders apart),
/// never the silence code.
fn frame(tag: u8, i: usize) -> [u8; FRAME] {
    let mut f = [0u8; FRAME];
    for (j, b) in f.iter_mut().enumerate() {
        *b = 0x10 + ((tag as usize * 37 + i * 7 + j) % 0x60) as u8;
    }
    f
}

/// Sends `frames` at 20 ms intervals from `phone` to `to` while collecting what `phone`
/// receives; then keeps collecting for `linger`. Returns the payloads received, in order.
fn talk_and_listen(
    phone: &mut RtpPhone,
    to: SocketAddr,
    frames: &[[u8; FRAME]],
    linger: Duration,
) -> Vec<Vec<u8>> {
    let mut heard = Vec::new();
    let mut next = Instant::now();
    let mut sent = 0;
    let mut end = None;
    loop {
        let now = Instant::now();
        if sent < frames.len() && now >= next {
            phone.send(to, 0, &frames[sent]);
            sent += 1;
            next += Duration::from_millis(20);
        }
        if sent == frames.len() && end.is_none() {
            end = Some(now + linger);
        }
        if end.is_some_and(|e| now >= e) {
            return heard;
        }
        while let Some((p, _)) = phone.try_recv() {
            if p.pt == 0 {
                heard.push(p.payload);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts `got` is `want`, frame for frame, naming the first difference (not dumping both).
fn same_frames(got: &[Vec<u8>], want: &[[u8; FRAME]], what: &str) {
    let first_bad = got.iter().zip(want).position(|(g, w)| g[..] != w[..]);
    assert!(
        got.len() == want.len() && first_bad.is_none(),
        "{what}: {} frames of {}, first difference at {first_bad:?}",
        got.len(),
        want.len()
    );
}

#[test]
fn an_echo_agent_on_connect_stream_returns_the_callers_audio_then_the_document_goes_on() {
    let agent = Agent::start(echo_agent);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"
[[route]]
path = "/voice"
body = '<Response><Connect action="/after-stream"><Stream url="{}" statusCallback="/stream-status"><Parameter name="agent" value="echo"/><Parameter name="lang" value="en-US"/></Stream></Connect><Say>never reached</Say></Response>'
[[route]]
path = "/after-stream"
body = '<Response><Hangup/></Response>'
"#,
            agent.url()
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let (_invite, ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let relay = SdpAudio::parse(&ok.body).rtp;
    let start = agent.wait_for("start", |m| m["event"] == "start");

    // The caller speaks 50 distinct frames; the echo comes back, every frame, in order.
    let spoken: Vec<[u8; FRAME]> = (0..50).map(|i| frame(1, i)).collect();
    // The linger is generous: the echo's way back is a few ms, but a loaded CI machine
    // runs four switches of these tests at once.
    let heard = talk_and_listen(&mut phone, relay, &spoken, Duration::from_millis(2000));
    let echoed: Vec<&Vec<u8>> = heard.iter().filter(|p| p[0] != 0x2a).collect();
    assert_eq!(
        echoed.len(),
        spoken.len(),
        "the caller hears each of its 50 frames once"
    );
    for (i, (got, want)) in echoed.iter().zip(&spoken).enumerate() {
        assert_eq!(
            &got[..],
            &want[..],
            "frame {i} comes back in order, unchanged"
        );
    }
    phone.press(relay, 5);
    // After the mark and the digit, the agent queues 5 s and clears it after 200 ms: the
    // caller hears a little of it, far from all of it, and the agent then closes.
    let rest = talk_and_listen(&mut phone, relay, &[], Duration::from_millis(1500));
    let long = rest.iter().filter(|p| p[..] == [0x2a; FRAME]).count();
    assert!(long > 0, "the queued audio started playing");
    assert!(
        long < 150,
        "clear dropped the queued audio ({long} frames of 250 played)"
    );

    // The next TwiML: the action, with the stream's sid; its <Hangup/> ends the call.
    let after = app.wait_request("the <Connect> action", |r| r["path"] == "/after-stream");
    let stream_sid = start["streamSid"].as_str().unwrap().to_owned();
    assert_eq!(param(&after, "StreamSid"), stream_sid);
    assert_eq!(after["signature_ok"], true);
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));

    // What the agent saw, against the schema.
    let seen = agent.seen.lock().unwrap();
    assert_eq!(
        seen.signature_ok,
        Some(true),
        "X-Twilio-Signature over the URL"
    );
    let m = &seen.messages;
    assert_eq!(
        m[0],
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    );
    assert_eq!(m[1]["event"], "start");
    assert_eq!(m[1]["sequenceNumber"], "1");
    let s = &m[1]["start"];
    assert!(
        stream_sid.starts_with("MZ") && stream_sid.len() == 34,
        "{stream_sid}"
    );
    assert_eq!(s["streamSid"], stream_sid);
    assert_eq!(s["accountSid"], ACCOUNT);
    assert_eq!(s["callSid"], param(&after, "CallSid"));
    assert_eq!(
        s["tracks"],
        json!(["inbound"]),
        "a bidirectional stream sends inbound only"
    );
    assert_eq!(
        s["customParameters"],
        json!({"agent": "echo", "lang": "en-US"})
    );
    assert_eq!(
        s["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    let media: Vec<&Value> = m.iter().filter(|v| v["event"] == "media").collect();
    assert!(media.len() >= 50);
    for (i, v) in media.iter().enumerate() {
        assert_eq!(v["streamSid"], stream_sid);
        assert_eq!(v["media"]["track"], "inbound");
        assert_eq!(v["media"]["chunk"], (i + 1).to_string());
        assert!(
            v["media"]["timestamp"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
    }
    let first: Vec<u8> = STANDARD
        .decode(media[0]["media"]["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        first, spoken[0],
        "the first media message is the caller's first frame"
    );
    // Every message after `connected` counts up by one.
    for (i, v) in m.iter().skip(1).enumerate() {
        assert_eq!(v["sequenceNumber"], (i + 1).to_string(), "{v}");
    }
    let dtmf = m
        .iter()
        .find(|v| v["event"] == "dtmf")
        .expect("a dtmf message");
    assert_eq!(
        dtmf["dtmf"],
        json!({"track": "inbound_track", "digit": "5"})
    );
    let marks: Vec<&Value> = m.iter().filter(|v| v["event"] == "mark").collect();
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert_eq!(marks[0]["mark"]["name"], "after-25");
    assert_eq!(marks[1]["mark"]["name"], "cleared");
    drop(seen);

    // statusCallback: started, then stopped.
    let status = |event: &str| {
        app.wait_request(event, |r| {
            r["path"] == "/stream-status" && param(r, "StreamEvent") == event
        })
    };
    let started = status("stream-started");
    assert_eq!(param(&started, "StreamSid"), stream_sid);
    assert_eq!(sw.metric("media_streams_started_total"), 1);
    assert_eq!(
        sw.metric(r#"media_streams_ended_total{how="closed_by_app"}"#),
        1
    );
    assert_eq!(
        param(&started, "StreamName"),
        stream_sid,
        "no name: the sid"
    );
    assert_eq!(started["signature_ok"], true);
    status("stream-stopped");
}

#[test]
fn a_fork_of_both_tracks_hears_a_dial_without_disturbing_it() {
    let agent = Agent::start(recording_agent);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"
[[route]]
path = "/voice"
body = '<Response><Start><Stream name="fork" url="{}" track="both_tracks" statusCallback="/stream-status"/></Start><Dial><Client>alice</Client></Dial></Response>'
"#,
            agent.url()
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let alice = sw.udp();
    harness::ua::register(&alice, "alice");
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let mut alice_rtp = RtpPhone::new();
    let invite = carrier_invite(
        &sw,
        &carrier,
        NUMBER,
        &phone.offer(&[Codec::Pcmu, Codec::TelephoneEvent]),
    );
    carrier.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    let alice_relay = SdpAudio::parse(&inv.body).rtp;
    let answer = alice_rtp.answer(&SdpAudio::parse(&inv.body), &[Codec::Pcmu]);
    alice.send(reply(
        &inv,
        200,
        "OK",
        "alice1",
        alice.local_addr(),
        Some(&answer),
    ));
    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("answered");
    assert_eq!(ok.status(), Some(200));
    carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
    expect_request(&alice, "ACK", WAIT);
    let relay = SdpAudio::parse(&ok.body).rtp;
    agent.wait_for("start", |m| m["event"] == "start");

    // Both talk at once, 50 frames each, from two threads.
    let caller_says: Vec<[u8; FRAME]> = (0..50).map(|i| frame(1, i)).collect();
    let alice_says: Vec<[u8; FRAME]> = (0..50).map(|i| frame(2, i)).collect();
    let alice_thread = {
        let says = alice_says.clone();
        std::thread::spawn(move || {
            let heard = talk_and_listen(
                &mut alice_rtp,
                alice_relay,
                &says,
                Duration::from_millis(1500),
            );
            (heard, alice_rtp)
        })
    };
    let caller_heard =
        talk_and_listen(&mut phone, relay, &caller_says, Duration::from_millis(1500));
    let (alice_heard, _alice_rtp) = alice_thread.join().unwrap();
    // The Dial's audio is untouched: each side hears the other's frames, all, in order.
    same_frames(&caller_heard, &alice_says, "the caller hears alice");
    same_frames(&alice_heard, &caller_says, "alice hears the caller");

    // The carrier hangs up: the fork gets `stop`.
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 2));
    let bye = expect_request(&alice, "BYE", WAIT);
    alice.send(ok_to(&bye, &alice));
    agent.wait_for("stop", |m| m["event"] == "stop");

    let m = agent.messages();
    let start = &m[1]["start"];
    assert_eq!(start["tracks"], json!(["inbound", "outbound"]));
    let track = |t: &str| -> Vec<Vec<u8>> {
        m.iter()
            .filter(|v| v["event"] == "media" && v["media"]["track"] == t)
            .map(|v| {
                STANDARD
                    .decode(v["media"]["payload"].as_str().unwrap())
                    .unwrap()
            })
            .collect()
    };
    // The inbound track is what the caller said; the outbound one what it heard (alice).
    same_frames(
        &track("inbound"),
        &caller_says,
        "the inbound track is the caller",
    );
    same_frames(
        &track("outbound"),
        &alice_says,
        "the outbound track is what it heard",
    );
    for t in ["inbound", "outbound"] {
        let chunks: Vec<&str> = m
            .iter()
            .filter(|v| v["event"] == "media" && v["media"]["track"] == t)
            .map(|v| v["media"]["chunk"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (1..=50).map(|i| i.to_string()).collect();
        assert_eq!(chunks, want, "{t} chunks count from 1");
    }
    assert!(
        !m.iter().any(|v| v["event"] == "dtmf"),
        "a fork gets no dtmf"
    );
    let stop = m.last().unwrap();
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["stop"]["accountSid"], ACCOUNT);
    let started = app.wait_request("stream-started", |r| {
        r["path"] == "/stream-status" && param(r, "StreamEvent") == "stream-started"
    });
    assert_eq!(param(&started, "StreamName"), "fork");
    app.wait_request("stream-stopped", |r| {
        r["path"] == "/stream-status" && param(r, "StreamEvent") == "stream-stopped"
    });
}

#[test]
fn a_refused_stream_url_reports_stream_error_and_the_next_verb_runs() {
    // Nothing listens on this port once the listener is dropped.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"
[[route]]
path = "/voice"
body = '<Response><Connect><Stream url="ws://127.0.0.1:{port}/agent" statusCallback="/stream-status"/></Connect><Redirect>/next</Redirect></Response>'
[[route]]
path = "/next"
body = '<Response><Hangup/></Response>'
"#
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let phone = RtpPhone::new();
    answered_call(&sw, &carrier, NUMBER, &phone);
    let error = app.wait_request("stream-error", |r| {
        r["path"] == "/stream-status" && param(r, "StreamEvent") == "stream-error"
    });
    assert!(
        param(&error, "StreamError").starts_with("31902"),
        "connection refused is Twilio's 31902: {error}"
    );
    app.wait_request("the next verb's fetch", |r| r["path"] == "/next");
    assert_eq!(sw.metric(r#"media_streams_ended_total{how="error"}"#), 1);
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
}

#[test]
fn rest_starts_a_fork_and_stops_it_by_name() {
    let agent = Agent::start(recording_agent);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Pause length="30"/></Response>'
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let (invite, ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let relay = SdpAudio::parse(&ok.body).rtp;
    let voice = app.wait_request("the voice request", |r| r["path"] == "/voice");
    let call_sid = param(&voice, "CallSid").to_owned();
    let streams = format!("Calls/{call_sid}/Streams.json");
    let rest = |method: &str, path: &str, form: &str| {
        harness::rest::call_as(&sw, ACCOUNT, AUTH_TOKEN, method, path, form)
    };

    // Refusals first: no Url, an http:// Url, an unknown track, another call.
    let (code, body, _) = rest("POST", &streams, "");
    assert_eq!((code, body["code"].as_u64()), (400, Some(20001)), "{body}");
    let bad_url = harness::rest::form(&[("Url", "http://127.0.0.1/agent")]);
    assert_eq!(rest("POST", &streams, &bad_url).0, 400);
    let bad_track = harness::rest::form(&[("Url", &agent.url()), ("Track", "sideways")]);
    assert_eq!(rest("POST", &streams, &bad_track).0, 400);
    let other = "Calls/CA00000000000000000000000000000000/Streams.json";
    assert_eq!(rest("POST", other, &bad_track).0, 404);
    assert_eq!(rest("GET", &streams, "").0, 405);

    let form = harness::rest::form(&[
        ("Url", &agent.url()),
        ("Name", "rest-fork"),
        ("Parameter1.Name", "who"),
        ("Parameter1.Value", "rest"),
        ("StatusCallback", &app.url("/stream-status")),
    ]);
    let (code, created, _) = rest("POST", &streams, &form);
    assert_eq!(code, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("MZ") && sid.len() == 34, "{sid}");
    assert_eq!(created["account_sid"], ACCOUNT);
    assert_eq!(created["call_sid"], call_sid.as_str());
    assert_eq!(created["name"], "rest-fork");
    assert_eq!(created["status"], "in-progress");
    assert_eq!(
        created["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{call_sid}/Streams/{sid}.json")
    );
    let start = agent.wait_for("start", |m| m["event"] == "start");
    assert_eq!(start["streamSid"], sid.as_str());
    assert_eq!(start["start"]["tracks"], json!(["inbound"]));
    assert_eq!(start["start"]["customParameters"], json!({"who": "rest"}));

    let spoken: Vec<[u8; FRAME]> = (0..20).map(|i| frame(3, i)).collect();
    talk_and_listen(&mut phone, relay, &spoken, Duration::from_millis(300));
    // Everything the caller said reaches the app (waited for, not timed).
    let media_seen = |n: usize| {
        agent
            .messages()
            .iter()
            .filter(|v| v["event"] == "media")
            .count()
            >= n
    };
    let deadline = Instant::now() + WAIT;
    while !media_seen(spoken.len()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let inbound: Vec<Vec<u8>> = agent
        .messages()
        .iter()
        .filter(|v| v["event"] == "media")
        .map(|v| {
            STANDARD
                .decode(v["media"]["payload"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    same_frames(&inbound, &spoken, "the REST fork hears the caller");

    // Stopped by name: `stop` reaches the app, then the stream is gone (404).
    let stream_path = format!("Calls/{call_sid}/Streams/rest-fork.json");
    let (code, stopped, _) = rest("POST", &stream_path, "Status=stopped");
    assert_eq!(code, 200, "{stopped}");
    assert_eq!(stopped["sid"], sid.as_str());
    assert_eq!(stopped["status"], "stopped");
    agent.wait_for("stop", |m| m["event"] == "stop");
    let deadline = Instant::now() + WAIT;
    while rest("POST", &stream_path, "Status=stopped").0 != 404 {
        assert!(
            Instant::now() < deadline,
            "the stopped stream is still listed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    app.wait_request("stream-stopped", |r| {
        r["path"] == "/stream-status" && param(r, "StreamEvent") == "stream-stopped"
    });
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 2));
    let (bye_ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("the BYE answered");
    assert_eq!(bye_ok.status(), Some(200));
}
