//! Conferences and queues black-box: carrier calls with RTP phones, each sending its own
//! tone, into `<Dial><Conference>` and `<Enqueue>`/`<Dial><Queue>` served by the customer
//! app; what each phone hears is checked with a Goertzel filter (its own tone absent, the
//! others present), and REST and the status callbacks as Twilio documents them.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::time::{Duration, Instant};

use harness::customer_app::CustomerApp;
use harness::phones::{Caller, call_sids, caller, talk};
use harness::rtp::{Codec, RtpPhone, SdpAudio, ulaw_to_linear};
use harness::tones::{assert_hears, assert_not_hears, goertzel, tone};
use harness::ua::in_dialog;
use harness::{Switch, Udp};

const AUTH_TOKEN: &str = "demo-auth-token-change-me";

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
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let Caller {
        sip: caller_sip,
        phone: mut waiting,
        relay: caller_relay,
        ..
    } = caller(&sw);
    // Hold music while waiting.
    let mut loud = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while let Some((rtp, _)) = waiting.recv_until(until) {
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

    let Caller {
        sip: agent_sip,
        phone: mut agent,
        relay: agent_relay,
        invite: agent_invite,
        ok: agent_ok,
    } = caller(&sw);
    let mut heard: Vec<Vec<i16>> = vec![Vec::new(), Vec::new()];
    let start = Instant::now();
    let mut next = start;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(3) {
        if Instant::now() >= next {
            waiting.send(caller_relay, 0, &tone(400.0, i));
            agent.send(agent_relay, 0, &tone(1100.0, i));
            i += 1;
            next += Duration::from_millis(20);
        }
        for (k, phone) in [&waiting, &agent].into_iter().enumerate() {
            while let Some((rtp, _)) = phone.try_recv() {
                if start.elapsed() > Duration::from_secs(1) {
                    heard[k].extend(rtp.payload.iter().map(|&b| ulaw_to_linear(b)));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
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

const ACCOUNT: &str = "AC00000000000000000000000000000001";

#[test]
fn rest_mutes_and_kicks_and_the_callbacks_tell_it_in_order() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial><Conference beep="false" statusCallback="/events" statusCallbackEvent="start end join leave mute">room</Conference></Dial></Response>'
[[route]]
path = "/events"
body = ""
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut callers = Vec::new();
    for n in 1..=3 {
        callers.push(caller(&sw));
        assert_eq!(call_sids(&app, n).len(), n);
    }
    let sids = call_sids(&app, 3);
    let tones = [400.0, 700.0, 1100.0];
    let heard = talk(&mut callers, &tones, 3);
    for (k, h) in heard.iter().enumerate() {
        for (j, &hz) in tones.iter().enumerate() {
            let what = format!("caller {k}");
            if j == k {
                assert_not_hears(h, hz, &what);
            } else {
                assert_hears(h, hz, &what);
            }
        }
    }
    let rest = |method: &str, path: &str, form: &str| {
        harness::rest::call_as(&sw, ACCOUNT, AUTH_TOKEN, method, path, form)
    };
    let (status, list, _) = rest(
        "GET",
        "Conferences.json?FriendlyName=room&Status=in-progress",
        "",
    );
    assert_eq!(status, 200);
    let conf = list["conferences"][0]["sid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(conf.starts_with("CF"), "{list}");
    let (_, parts, _) = rest("GET", &format!("Conferences/{conf}/Participants.json"), "");
    assert_eq!(
        parts["participants"].as_array().map(Vec::len),
        Some(3),
        "{parts}"
    );

    // Mute the 700 Hz caller: nobody hears it, it still hears the others.
    let (status, p, _) = rest(
        "POST",
        &format!("Conferences/{conf}/Participants/{}.json", sids[1]),
        "Muted=true",
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["muted"], true, "{p}");
    let heard = talk(&mut callers, &tones, 3);
    assert_not_hears(&heard[0], 700.0, "caller 0 with 1 muted");
    assert_not_hears(&heard[2], 700.0, "caller 2 with 1 muted");
    assert_hears(&heard[0], 1100.0, "caller 0 with 1 muted");
    assert_hears(&heard[1], 400.0, "muted caller 1");
    assert_hears(&heard[1], 1100.0, "muted caller 1");

    // Kick the 1,100 Hz caller: its Dial ends, the document too: BYE.
    let (status, _, _) = rest(
        "DELETE",
        &format!("Conferences/{conf}/Participants/{}.json", sids[2]),
        "",
    );
    assert_eq!(status, 204);
    let bye = harness::ua::expect_request(&callers[2].sip, "BYE", Duration::from_secs(5));
    assert!(bye.text().starts_with("BYE"));
    callers[0].hang_up();
    callers[1].hang_up();

    // The callbacks: joins, start, mute, leaves, end; one conference; in sequence.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events: Vec<serde_json::Value> = app
            .requests()
            .into_iter()
            .filter(|r| r["path"] == "/events")
            .collect();
        if events
            .iter()
            .any(|e| e["params"]["StatusCallbackEvent"] == "conference-end")
            || Instant::now() > deadline
        {
            break events;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| {
        e["params"]["SequenceNumber"]
            .as_str()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    });
    let names: Vec<&str> = sorted
        .iter()
        .map(|e| e["params"]["StatusCallbackEvent"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "participant-join",
            "conference-start",
            "participant-join",
            "participant-join",
            "participant-mute",
            "participant-leave",
            "participant-leave",
            "participant-leave",
            "conference-end",
        ],
        "{sorted:?}"
    );
    for (i, e) in sorted.iter().enumerate() {
        assert_eq!(e["params"]["ConferenceSid"], conf.as_str());
        assert_eq!(e["params"]["FriendlyName"], "room");
        assert_eq!(e["params"]["SequenceNumber"], (i + 1).to_string().as_str());
        assert_eq!(e["signature_ok"], true);
    }
    assert_eq!(sorted[4]["params"]["CallSid"], sids[1].as_str());
    assert_eq!(sorted[4]["params"]["Muted"], "true");
    assert_eq!(
        sorted[5]["params"]["CallSid"],
        sids[2].as_str(),
        "the kicked one leaves first"
    );
    let (_, fetched, _) = rest("GET", &format!("Conferences/{conf}.json"), "");
    assert_eq!(fetched["status"], "completed", "{fetched}");
}

#[test]
fn hold_music_until_the_moderator_joins_and_end_on_exit_ends_everyone() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial><Conference startConferenceOnEnter="false" beep="false">room</Conference></Dial></Response>'
after = 1
after_body = '<Response><Dial><Conference endConferenceOnExit="true" beep="false">room</Conference></Dial></Response>'
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut waiting = vec![caller(&sw)];
    // Alone and not started: hold music, which is not the moderator's tone.
    let heard = talk(&mut waiting, &[400.0], 2);
    let loud = heard[0].iter().filter(|s| s.abs() > 1000).count();
    assert!(loud > 1000, "no hold music ({loud} loud samples)");
    assert_not_hears(&heard[0], 1100.0, "waiting caller");
    let moderator = caller(&sw);
    waiting.push(moderator);
    let heard = talk(&mut waiting, &[400.0, 1100.0], 3);
    assert_hears(&heard[0], 1100.0, "caller once the moderator is in");
    assert_hears(&heard[1], 400.0, "moderator");
    assert_not_hears(&heard[0], 400.0, "caller");
    // The moderator leaves: the conference ends, and with it the caller's call.
    waiting[1].hang_up();
    let bye = harness::ua::expect_request(&waiting[0].sip, "BYE", Duration::from_secs(5));
    assert!(bye.text().starts_with("BYE"));
}

/// A switch whose callers join `room` and whose trunk is a UDP socket of the test's.
fn room_with_trunk() -> (CustomerApp, Switch, Udp) {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        "[[route]]\npath = \"/voice\"\nbody = '<Response><Dial><Conference beep=\"false\">room</Conference></Dial></Response>'\n",
    );
    let mut trunk = Udp::new("127.0.0.1:9".parse().unwrap());
    let path = harness::config_with_voice_url(&app.url("/voice"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("sip:127.0.0.1:5080", &format!("sip:{}", trunk.local_addr()));
    std::fs::write(&path, text).unwrap();
    let sw = Switch::start_with_config(&path);
    trunk.set_peer(sw.udp_addr());
    (app, sw, trunk)
}

/// Answers the INVITE the switch sends the trunk with an RTP phone: the INVITE, the phone,
/// and the relay port the phone talks to.
fn answer_on_trunk(trunk: &Udp) -> (harness::Msg, RtpPhone, std::net::SocketAddr) {
    let out = harness::ua::expect_request(trunk, "INVITE", Duration::from_secs(5));
    let phone = RtpPhone::new();
    let offer = SdpAudio::parse(&out.body);
    let answer = phone.answer(&offer, &[Codec::Pcmu]);
    trunk.send(harness::ua::reply(
        &out,
        200,
        "OK",
        "trunk1",
        trunk.local_addr(),
        Some(&answer),
    ));
    let _ack = harness::ua::expect_request(trunk, "ACK", Duration::from_secs(5));
    (out, phone, offer.rtp)
}

/// REST dials a number into a running conference (by its FriendlyName): the callee, on
/// the trunk, talks with the caller already in it.
#[test]
fn rest_dials_a_participant_into_the_conference() {
    let (_app, sw, trunk) = room_with_trunk();
    let first = caller(&sw);
    let (status, p, _) = harness::rest::call_as(
        &sw,
        ACCOUNT,
        AUTH_TOKEN,
        "POST",
        "Conferences/room/Participants.json",
        "To=%2B15551230000&From=%2B15550100001&Label=expert",
    );
    assert_eq!(status, 201, "{p}");
    assert!(
        p["call_sid"].as_str().unwrap_or("").starts_with("CA"),
        "{p}"
    );
    let (out, mut phone, relay) = answer_on_trunk(&trunk);
    assert!(out.start_line.contains("+15551230000"), "{}", out.text());
    let mut callers = [first];
    // The callee's phone talks through the relay port the switch offered it.
    let mut heard = [Vec::new(), Vec::new()];
    let start = Instant::now();
    let mut next = start;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(3) {
        if Instant::now() >= next {
            let c = &mut callers[0];
            c.phone.send(c.relay, 0, &tone(400.0, i));
            phone.send(relay, 0, &tone(1100.0, i));
            i += 1;
            next += Duration::from_millis(20);
        }
        for (k, ph) in [&callers[0].phone, &phone].into_iter().enumerate() {
            while let Some((rtp, _)) = ph.try_recv() {
                if start.elapsed() > Duration::from_secs(1) {
                    heard[k].extend(rtp.payload.iter().map(|&b| ulaw_to_linear(b)));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_hears(
        &heard[0],
        1100.0,
        "the caller hears the dialled participant",
    );
    assert_hears(&heard[1], 400.0, "the dialled participant hears the caller");
    let (_, parts, _) = harness::rest::call_as(
        &sw,
        ACCOUNT,
        AUTH_TOKEN,
        "GET",
        "Conferences.json?FriendlyName=room",
        "",
    );
    let conf = parts["conferences"][0]["sid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (_, parts, _) = harness::rest::call_as(
        &sw,
        ACCOUNT,
        AUTH_TOKEN,
        "GET",
        &format!("Conferences/{conf}/Participants.json"),
        "",
    );
    let labels: Vec<&str> = parts["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["label"].as_str())
        .collect();
    assert_eq!(labels, ["expert"], "{parts}");
}

/// `record="record-from-start"`: when the conference ends, one recording, listed with its
/// ConferenceSid, holds every participant's voice.
#[test]
fn a_recorded_conference_leaves_one_wav_with_every_voice() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        "[[route]]\npath = \"/voice\"\nbody = '<Response><Dial><Conference beep=\"false\" record=\"record-from-start\">room</Conference></Dial></Response>'\n",
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut callers: Vec<Caller> = (0..3).map(|_| caller(&sw)).collect();
    let tones = [400.0, 700.0, 1100.0];
    talk(&mut callers, &tones, 3);
    for c in &callers {
        c.hang_up();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let rec = loop {
        let (_, list, _) =
            harness::rest::call_as(&sw, ACCOUNT, AUTH_TOKEN, "GET", "Recordings.json", "");
        if let Some(r) = list["recordings"].as_array().and_then(|a| a.first()) {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no recording listed: {list}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        rec["conference_sid"]
            .as_str()
            .unwrap_or("")
            .starts_with("CF"),
        "{rec}"
    );
    assert_eq!(rec["source"], "Conference", "{rec}");
    let path = rec["uri"].as_str().unwrap().replace(".json", ".wav");
    let (status, wav) = harness::rest::get_bytes(&sw, ACCOUNT, AUTH_TOKEN, &path);
    assert_eq!(status, 200);
    let wav = switchboard::media::wav::Wav::parse(&wav, 1 << 26).expect("a WAV");
    let pcm = wav.to_pcm_8k();
    assert!(pcm.len() > 8000, "{} samples", pcm.len());
    for hz in tones {
        assert_hears(&pcm, hz, "the recording");
    }
    // Continuous, not choppy: every 20 ms frame but a few at the edges has sound.
    let frames: Vec<&[i16]> = pcm.chunks(160).collect();
    let inner = &frames[5..frames.len() - 5];
    let gaps = inner
        .iter()
        .filter(|f| f.iter().all(|s| s.abs() < 500))
        .count();
    assert!(
        gaps * 50 <= inner.len(),
        "{gaps} silent frames of {}",
        inner.len()
    );
}

/// `statusCallbackEvent="speaker"`: a participant who talks and then falls silent gets
/// participant-speech-start and participant-speech-stop; one who never talks gets none.
#[test]
fn speaker_events_follow_who_talks() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial><Conference beep="false" statusCallback="/events" statusCallbackEvent="speaker">room</Conference></Dial></Response>'
[[route]]
path = "/events"
body = ""
"#,
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut callers = vec![caller(&sw), caller(&sw)];
    let sids = call_sids(&app, 2);
    talk(&mut callers, &[700.0, 0.0], 2);
    talk(&mut callers, &[0.0, 0.0], 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    let events = loop {
        let events: Vec<serde_json::Value> = app
            .requests()
            .into_iter()
            .filter(|r| r["path"] == "/events")
            .collect();
        if events.len() >= 2 || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["params"]["StatusCallbackEvent"].as_str().unwrap_or(""),
                e["params"]["CallSid"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("participant-speech-start", sids[0].as_str()),
            ("participant-speech-stop", sids[0].as_str()),
        ],
        "{events:?}"
    );
    for c in &callers {
        c.hang_up();
    }
}

/// A supervisor dialled in by REST with `CallSidToCoach` (its `<Conference coach=…>`) is
/// heard by the agent alone and hears both; `Coaching=false` lets the customer hear it.
#[test]
fn a_coach_is_heard_by_the_agent_alone_until_coaching_ends() {
    let (app, sw, trunk) = room_with_trunk();
    let agent = caller(&sw);
    let customer = caller(&sw);
    let sids = call_sids(&app, 2);
    let rest = |method: &str, path: &str, form: &str| {
        harness::rest::call_as(&sw, ACCOUNT, AUTH_TOKEN, method, path, form)
    };
    let (status, p, _) = rest(
        "POST",
        "Conferences/room/Participants.json",
        &format!(
            "To=%2B15551230000&From=%2B15550100001&Label=supervisor&Coaching=true&CallSidToCoach={}",
            sids[0]
        ),
    );
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["call_sid_to_coach"], sids[0].as_str(), "{p}");
    let coach_sid = p["call_sid"].as_str().unwrap_or("").to_string();
    let (out, phone, relay) = answer_on_trunk(&trunk);
    // The supervisor talks through the relay port the switch offered it.
    let supervisor = Caller {
        sip: trunk,
        phone,
        relay,
        invite: out.text(),
        ok: out,
    };
    let mut callers = [agent, customer, supervisor];
    let tones = [400.0, 700.0, 1100.0];
    let deadline = Instant::now() + Duration::from_secs(5);
    let conf = loop {
        let (_, list, _) = rest("GET", "Conferences.json?FriendlyName=room", "");
        let conf = list["conferences"][0]["sid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let (_, parts, _) = rest("GET", &format!("Conferences/{conf}/Participants.json"), "");
        if parts["participants"].as_array().map(Vec::len) == Some(3) {
            break conf;
        }
        assert!(
            Instant::now() < deadline,
            "the supervisor never joined: {parts}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let heard = talk(&mut callers, &tones, 3);
    assert_hears(&heard[0], 700.0, "the agent hears the customer");
    assert_hears(&heard[0], 1100.0, "the agent hears the coach");
    assert_hears(&heard[1], 400.0, "the customer hears the agent");
    assert_not_hears(&heard[1], 1100.0, "the customer (coach's whisper)");
    assert_hears(&heard[2], 400.0, "the coach hears the agent");
    assert_hears(&heard[2], 700.0, "the coach hears the customer");
    let (status, p, _) = rest(
        "GET",
        &format!("Conferences/{conf}/Participants/{coach_sid}.json"),
        "",
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["coaching"], true, "{p}");
    assert_eq!(p["label"], "supervisor", "{p}");

    let (status, p, _) = rest(
        "POST",
        &format!("Conferences/{conf}/Participants/{coach_sid}.json"),
        "Coaching=false",
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["coaching"], false, "{p}");
    let heard = talk(&mut callers, &tones, 3);
    assert_hears(&heard[1], 1100.0, "the customer hears the former coach");
    assert_not_hears(&heard[2], 1100.0, "the former coach (itself)");
    // Coaching again, of the customer this time: the agent no longer hears it.
    let (status, p, _) = rest(
        "POST",
        &format!("Conferences/{conf}/Participants/{coach_sid}.json"),
        &format!("Coaching=true&CallSidToCoach={}", sids[1]),
    );
    assert_eq!(status, 200, "{p}");
    let heard = talk(&mut callers, &tones, 3);
    assert_not_hears(&heard[0], 1100.0, "the agent (whisper to the customer)");
    assert_hears(&heard[1], 1100.0, "the customer hears its coach");
    let (status, p, _) = rest(
        "POST",
        &format!("Conferences/{conf}/Participants/{coach_sid}.json"),
        "Coaching=true",
    );
    assert_eq!(status, 400, "Coaching=true without CallSidToCoach: {p}");
}
