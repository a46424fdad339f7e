//! Black-box tests of the media verbs: a carrier calls an application that plays a prompt,
//! gathers digits and records a message, all through the running binary, with real RTP on
//! loopback and a real customer web app (`examples/customer_app`) serving the TwiML and the
//! prompt's WAV file.
//!
//! What is checked is what a caller and the customer's app would see: the prompt's samples
//! as decoded from the RTP that arrives, `Digits` at the Gather action after RFC 4733
//! key presses, and a recording whose samples (downloaded from REST) are what was said.
// Real sockets and a real process: receive deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::time::{Duration, Instant};

use harness::Switch;
use harness::customer_app::{CustomerApp, param};
use harness::rtp::{Codec, RtpPhone, SdpAudio, linear_to_ulaw, ulaw_to_linear};
use harness::ua::{
    answered_call, call_id_of, carrier_invite, expect_request, in_dialog, ok_to, reply,
};
use serde_json::Value;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const NUMBER: &str = "+15550100001";
const WAIT: Duration = Duration::from_secs(5);
const FRAME: usize = 160;

/// The app's first request for `path`, waiting for it.
fn wait_path(app: &CustomerApp, path: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(r) = app.requests().into_iter().find(|r| r["path"] == path) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no request for {path}: {:?}",
            app.requests()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// GET on the REST API with the account's Basic auth: (status, body bytes).
fn rest_get(sw: &Switch, url: &str) -> (u16, Vec<u8>) {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    harness::rest::get_bytes(sw, ACCOUNT, AUTH_TOKEN, path)
}

/// Equal sample sequences, or a failure naming the first difference (not 8,000 numbers).
fn assert_same(got: &[i16], want: &[i16], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        let end = (i + 8).min(got.len()).min(want.len());
        panic!(
            "{what}: first difference at sample {i} of {}: got {:?}, want {:?}",
            want.len(),
            &got[i..end],
            &want[i..end]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: lengths");
}

/// A recognisable prompt: a 300 Hz tone rising in level, `ms` long, at 8 kHz.
fn prompt_samples(ms: usize) -> Vec<i16> {
    let n = ms * 8;
    (0..n)
        .map(|i| {
            let level = 2_000.0 + 10_000.0 * i as f64 / n as f64;
            (level * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / 8_000.0).sin()) as i16
        })
        .collect()
}

/// Speech-level audio to record: 440 Hz at about −12 dBFS.
fn voice_frame(i: usize) -> [u8; FRAME] {
    let mut out = [0u8; FRAME];
    for (j, b) in out.iter_mut().enumerate() {
        let t = (i * FRAME + j) as f64 / 8_000.0;
        *b = linear_to_ulaw((8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16);
    }
    out
}

#[test]
fn an_application_plays_a_prompt_gathers_digits_and_records_a_message() {
    let dir = std::env::temp_dir().join(harness::unique("ivr-prompt"));
    std::fs::create_dir_all(&dir).unwrap();
    let prompt = prompt_samples(1_000);
    let wav = dir.join("prompt.wav");
    std::fs::write(&wav, switchboard::media::wav::write_recording(&prompt)).unwrap();
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"
[[route]]
path = "/prompt.wav"
content_type = "audio/x-wav"
file = "{}"
[[route]]
path = "/voice"
body = '<Response><Play>/prompt.wav</Play><Gather numDigits="2" timeout="5" action="/gathered"/><Say>never reached</Say></Response>'
[[route]]
path = "/gathered"
body = '<Response><Record maxLength="10" timeout="3" action="/recorded"/></Response>'
[[route]]
path = "/recorded"
body = '<Response><Hangup/></Response>'
"#,
            wav.display()
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let (invite, ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let relay = SdpAudio::parse(&ok.body).rtp;

    // The prompt: 50 frames whose μ-law decodes to the file's samples through G.711.
    let mut heard = Vec::new();
    let mut seqs = Vec::new();
    let deadline = Instant::now() + WAIT;
    while heard.len() < prompt.len() {
        let (p, from) = phone.recv_until(deadline).expect("the whole prompt");
        assert_eq!(
            from, relay,
            "symmetric RTP: from the port the switch advertised"
        );
        assert_eq!(p.pt, 0);
        seqs.push(p.seq);
        heard.extend(p.payload.iter().map(|&b| ulaw_to_linear(b)));
    }
    // The switch's encoder is ITU-T G.191's (unit-tested against G.711's tables there);
    // Sun's linear2ulaw in the harness rounds some negative samples the other way.
    let expected: Vec<i16> = prompt
        .iter()
        .map(|&s| ulaw_to_linear(switchboard::media::g711::ulaw_encode(s)))
        .collect();
    assert_same(&heard, &expected, "decoded prompt samples match the file");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "one continuous stream: {seqs:?}"
    );

    // Two key presses as RFC 4733 events: the Gather action hears them. A key pressed
    // while the <Play> before the <Gather> still runs is not the Gather's: give the switch
    // a moment to move on from the prompt's last frame.
    std::thread::sleep(Duration::from_millis(300));
    phone.press(relay, 4);
    phone.press(relay, 2);
    let gathered = &wait_path(&app, "/gathered");
    assert_eq!(gathered["signature_ok"], true);
    assert_eq!(param(gathered, "Digits"), "42");

    // <Record> beeps (playBeep defaults to true); then we speak for one second and
    // press '#' (in the default finishOnKey).
    let beep_end = Instant::now() + Duration::from_secs(2);
    let mut beep_packets = 0;
    while let Some((p, _)) = phone.recv_until(beep_end) {
        if p.payload.iter().any(|&b| ulaw_to_linear(b).abs() > 1_000) {
            beep_packets += 1;
        }
        if beep_packets >= 20 {
            break;
        }
    }
    assert!(beep_packets >= 20, "the beep: {beep_packets} loud frames");
    // Let the beep finish before speaking (it is half a second).
    std::thread::sleep(Duration::from_millis(400));
    // Half a second of silence, one second of speech, half a second of silence: the
    // default trim="trim-silence" keeps the speech alone.
    let silence = [0xFFu8; FRAME];
    let mut said = Vec::new();
    for _ in 0..25 {
        phone.send(relay, 0, &silence);
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..50 {
        let frame = voice_frame(i);
        said.extend(frame.iter().map(|&b| ulaw_to_linear(b)));
        phone.send(relay, 0, &frame);
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..25 {
        phone.send(relay, 0, &silence);
        std::thread::sleep(Duration::from_millis(20));
    }
    phone.press(relay, 11); // '#'

    let recorded = &wait_path(&app, "/recorded");
    assert_eq!(recorded["signature_ok"], true);
    assert_eq!(param(recorded, "Digits"), "#");
    assert_eq!(param(recorded, "RecordingDuration"), "1");
    let sid = param(recorded, "RecordingSid").to_string();
    assert!(sid.starts_with("RE"), "{recorded}");
    let url = param(recorded, "RecordingUrl").to_string();
    assert!(url.ends_with(&format!("/Recordings/{sid}")), "{url}");

    // <Hangup/>: the carrier gets BYE.
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
    let _ = invite;

    // The recording, from REST: exactly what was said.
    let (status, body) = rest_get(&sw, &format!("{url}.wav"));
    assert_eq!(status, 200);
    let wav = switchboard::media::wav::Wav::parse(&body, body.len()).expect("a WAV");
    let samples = wav.to_pcm_8k();
    assert_same(
        &samples,
        &said,
        "recorded samples are what was said, silence trimmed",
    );
    let (status, list) = rest_get(
        &sw,
        &format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings.json"),
    );
    assert_eq!(status, 200);
    let list: Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(list["recordings"][0]["sid"], sid.as_str(), "{list}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_silent_recording_is_dropped_and_the_next_verb_runs() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Record timeout="1" playBeep="false" action="/recorded"/><Redirect>/after</Redirect></Response>'
[[route]]
path = "/recorded"
body = '<Response><Hangup/></Response>'
[[route]]
path = "/after"
body = '<Response><Hangup/></Response>'
"#,
    );
    let recordings = std::env::temp_dir().join(harness::unique("ivr-recordings"));
    let cfg = harness::config_with_voice_url(&app.url("/voice"));
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "recordings_dir = \"recordings\"",
        &format!("recordings_dir = \"{}\"", recordings.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let (_invite, ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let relay = SdpAudio::parse(&ok.body).rtp;
    // Two seconds of digital silence: the 1 s silence timeout ends the recording.
    for _ in 0..100 {
        phone.send(relay, 0, &[0xFF; FRAME]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
    let paths: Vec<String> = app
        .wait_requests(2, WAIT)
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["/voice", "/after"],
        "no action for an empty recording"
    );
    let (_, list) = rest_get(
        &sw,
        &format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings.json"),
    );
    let list: Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(
        list["recordings"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );
    // And no file is left behind (the directory exists: the switch made it at start).
    let left: Vec<_> = std::fs::read_dir(&recordings)
        .expect("the recordings directory")
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "left in the recordings directory: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&recordings);
}

#[test]
fn an_application_error_plays_the_error_prompt_then_hangs_up() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
status = 500
body = 'oops'
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let phone = RtpPhone::new();
    let (_invite, _ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    // The shipped prompt is about four seconds: count its frames until the BYE.
    let mut loud = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some((p, _)) = phone.recv_until(deadline) {
        if p.payload.iter().any(|&b| ulaw_to_linear(b).abs() > 500) {
            loud += 1;
        }
        if let Some(m) = carrier.recv_msg(Duration::from_millis(1))
            && m.method() == Some("BYE")
        {
            carrier.send(ok_to(&m, &carrier));
            break;
        }
    }
    assert!(
        loud >= 50,
        "the error prompt was heard ({loud} frames with speech)"
    );
}

#[test]
fn star_leaves_the_dialed_client_and_the_document_goes_on() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial hangupOnStar="true" action="/after-dial"><Client>alice</Client></Dial></Response>'
[[route]]
path = "/after-dial"
body = '<Response><Hangup/></Response>'
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let alice = sw.udp();
    harness::ua::register(&alice, "alice");
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let alice_rtp = RtpPhone::new();
    let invite = carrier_invite(
        &sw,
        &carrier,
        NUMBER,
        &phone.offer(&[Codec::Pcmu, Codec::TelephoneEvent]),
    );
    carrier.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    let answer = alice_rtp.answer(
        &SdpAudio::parse(&inv.body),
        &[Codec::Pcmu, Codec::TelephoneEvent],
    );
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

    // '*' as RFC 4733: alice is hung up, the Dial's action hears `completed`, and its
    // <Hangup/> ends the carrier's call.
    let relay = SdpAudio::parse(&ok.body).rtp;
    phone.press(relay, 10);
    let bye = expect_request(&alice, "BYE", WAIT);
    alice.send(ok_to(&bye, &alice));
    let after = &wait_path(&app, "/after-dial");
    assert_eq!(param(after, "DialCallStatus"), "completed");
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
}

#[test]
fn a_gather_hears_digits_sent_as_sip_info() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Gather numDigits="2" timeout="5" action="/gathered"/></Response>'
[[route]]
path = "/gathered"
body = '<Response><Hangup/></Response>'
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let phone = RtpPhone::new();
    let (invite, ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    // application/dtmf-relay INFO, as many SIP phones and SBCs send DTMF.
    for (cseq, digit) in [(2, "7"), (3, "#")] {
        let body = format!("Signal={digit}\r\nDuration=160\r\n");
        let info = in_dialog("INFO", &invite, &ok, &carrier, cseq).replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        carrier.send(&info);
        let (answer, _) = carrier
            .recv_final(&call_id_of(&invite), WAIT)
            .expect("INFO answered");
        assert_eq!(answer.status(), Some(200));
    }
    // '#' is the default finishOnKey: Digits is what came before it.
    let gathered = &wait_path(&app, "/gathered");
    assert_eq!(param(gathered, "Digits"), "7");
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
}

/// What the carrier's phone hears until `until` or a second without packets: (packets,
/// packets with sound, the longest run of silent packets between two with sound).
fn listen(phone: &RtpPhone, until: Instant) -> (usize, usize, usize) {
    let (mut packets, mut loud, mut gap, mut longest) = (0, 0, 0, 0);
    while let Some((p, _)) = phone.recv_until(until.min(Instant::now() + Duration::from_secs(1))) {
        if p.pt != 0 {
            continue;
        }
        packets += 1;
        if p.payload.iter().any(|&b| ulaw_to_linear(b).abs() > 1_000) {
            if loud > 0 {
                longest = longest.max(gap);
            }
            loud += 1;
            gap = 0;
        } else {
            gap += 1;
        }
    }
    (packets, loud, longest)
}

/// espeak-ng's own length for `text` (en-us), in 20 ms frames.
fn espeak_frames(text: &str) -> usize {
    let path = std::env::temp_dir().join(format!("{}.wav", harness::unique("espeak")));
    let ok = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng (apt-get install espeak-ng)");
    assert!(ok.success());
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let wav = switchboard::media::wav::Wav::parse(&bytes, 1 << 26).unwrap();
    (wav.duration_ms() / 20) as usize
}

const SPOKEN: &str = "Thank you for calling the switchboard. Your call is important to us.";

#[test]
fn say_speaks_the_text_about_as_long_as_espeak_ng_does() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"
[[route]]
path = "/voice"
body = '<Response><Say voice="alice" language="en-US">{SPOKEN}</Say><Hangup/></Response>'
"#
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let phone = RtpPhone::new();
    let (_invite, _ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let (packets, loud, _) = listen(&phone, Instant::now() + Duration::from_secs(12));
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
    let want = espeak_frames(SPOKEN);
    eprintln!("heard {packets} packets ({loud} with sound); espeak-ng alone: {want} frames");
    assert!(
        packets * 100 >= want * 85 && packets * 100 <= want * 115,
        "{packets} packets for {want} frames of speech"
    );
    assert!(
        loud * 2 > packets,
        "mostly silence: {loud} of {packets} packets have sound"
    );
}

#[test]
fn say_inside_gather_stops_at_the_first_digit() {
    let long = SPOKEN.repeat(4);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"
[[route]]
path = "/voice"
body = '<Response><Gather numDigits="1" timeout="5" action="/digits"><Say>{long}</Say></Gather></Response>'
[[route]]
path = "/digits"
body = '<Response><Hangup/></Response>'
"#
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let (_invite, ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let relay = SdpAudio::parse(&ok.body).rtp;
    let (_, loud, _) = listen(&phone, Instant::now() + Duration::from_millis(1_500));
    assert!(
        loud > 10,
        "no speech before the key press ({loud} loud packets)"
    );
    phone.press(relay, 5);
    // In flight when the digit arrived: a few packets; after that, no more speech.
    let _ = listen(&phone, Instant::now() + Duration::from_millis(300));
    let (_, after, _) = listen(&phone, Instant::now() + Duration::from_millis(1_500));
    assert_eq!(after, 0, "speech went on after the digit");
    let digits = wait_path(&app, "/digits");
    assert_eq!(param(&digits, "Digits"), "5", "{digits}");
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
}

/// Twilio's voice names and an unknown language fall back to a voice we have, and SSML's
/// `<break>` is a pause in the speech.
#[test]
fn an_unknown_voice_falls_back_and_a_break_is_a_pause() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Say voice="Polly.Nobody-Neural" language="xx-YY">Hello there. <break time="2s"/> <prosody rate="slow">Goodbye now.</prosody></Say><Hangup/></Response>'
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let carrier = sw.udp();
    let phone = RtpPhone::new();
    let (_invite, _ok) = answered_call(&sw, &carrier, NUMBER, &phone);
    let (packets, loud, gap) = listen(&phone, Instant::now() + Duration::from_secs(8));
    let bye = expect_request(&carrier, "BYE", WAIT);
    carrier.send(ok_to(&bye, &carrier));
    eprintln!("heard {packets} packets, {loud} with sound, longest pause {gap} packets");
    assert!(
        loud > 20,
        "the fallback voice said nothing: {loud} loud packets"
    );
    assert!(
        (95..=130).contains(&gap),
        "the 2 s break is a pause of {gap} packets"
    );
}
