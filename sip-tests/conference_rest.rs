//! Conference and queue REST, black-box, beyond `conference.rs`: a participant on hold
//! (hearing its `HoldUrl` or the hold music, out of the mix both ways), announcements to
//! the whole conference and to one participant, a queue's `MaxSize`, and members dequeued
//! by REST to new instructions. Every caller sends its own tone and every prompt the
//! customer app serves is a tone of its own frequency, so what each phone hears is told
//! apart with a Goertzel filter; waits poll what the phones hear, with generous deadlines.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use harness::Switch;
use harness::customer_app::CustomerApp;
use harness::phones::{Caller, call_sids, caller, talk, talk_for, talk_through, talk_until};
use harness::rest::form;
use harness::tones::{absent, assert_hears, assert_not_hears, loud_samples, present, tone_samples};

const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const ACCOUNT: &str = "AC00000000000000000000000000000001";

/// The callers' tones, in the order they call.
const TONES: [f64; 3] = [400.0, 700.0, 1100.0];
/// The prompts' tones: none a caller's, and all 50 Hz away from any multiple of 100 Hz,
/// where the mixed callers' tones have their intermodulation products (a mix of 400 and
/// 1,100 Hz through G.711 has some 1,500 Hz), and from the hold music's notes.
const HOLD_HZ: f64 = 1650.0;
const EVERYONE_HZ: f64 = 2250.0;
const ONE_HZ: f64 = 2750.0;

/// How long a state the audio shows (a hold, an announcement) may take to come.
const WAIT: Duration = Duration::from_secs(15);

/// WAVs of tones in a directory of their own, removed on drop, and the customer app's
/// `[[route]]`s serving them.
struct Prompts {
    dir: PathBuf,
    routes: String,
}

/// `(file name, Hz, ms)` each: served at `/{file name}`.
fn prompts(files: &[(&str, f64, u32)]) -> Prompts {
    let dir = std::env::temp_dir().join(harness::unique("conference-rest-prompts"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut routes = String::new();
    for &(name, hz, ms) in files {
        let path = dir.join(name);
        let wav = switchboard::media::wav::write_recording(&tone_samples(hz, ms));
        std::fs::write(&path, wav).unwrap();
        routes.push_str(&format!(
            "[[route]]\npath = \"/{name}\"\ncontent_type = \"audio/x-wav\"\nfile = \"{}\"\n",
            path.display()
        ));
    }
    Prompts { dir, routes }
}

impl Drop for Prompts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rest(sw: &Switch, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, json, _) = harness::rest::call_as(sw, ACCOUNT, AUTH_TOKEN, method, path, body);
    (status, json)
}

/// The sid of conference `room` once `n` participants are in it.
fn conference_with(sw: &Switch, n: usize) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, list) = rest(sw, "GET", "Conferences.json?FriendlyName=room", "");
        let conf = list["conferences"][0]["sid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let (_, parts) = rest(
            sw,
            "GET",
            &format!("Conferences/{conf}/Participants.json"),
            "",
        );
        if conf.starts_with("CF") && parts["participants"].as_array().map(Vec::len) == Some(n) {
            return conf;
        }
        assert!(
            Instant::now() < deadline,
            "{n} participants never in the room: {list} {parts}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A switch whose `/voice` is `app`'s, three callers in its conference hearing each other
/// (each its tone of [`TONES`]), their CallSids and the conference's sid.
fn three_in_the_room(app: &CustomerApp) -> (Switch, Vec<Caller>, Vec<String>, String) {
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut callers: Vec<Caller> = Vec::new();
    for n in 1..=3 {
        callers.push(caller(&sw));
        assert_eq!(call_sids(app, n).len(), n);
    }
    let sids = call_sids(app, 3);
    let conf = conference_with(&sw, 3);
    assert!(
        talk_until(&mut callers, &TONES, WAIT, full_mix),
        "the three never heard each other"
    );
    (sw, callers, sids, conf)
}

/// The queue `support` once it has `n` callers waiting.
fn queue_with(sw: &Switch, n: u64) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, list) = rest(sw, "GET", "Queues.json", "");
        let queue = list["queues"]
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["friendly_name"] == "support"))
            .cloned();
        if let Some(q) = queue
            && q["current_size"] == n
        {
            return q;
        }
        assert!(
            Instant::now() < deadline,
            "queue support never had {n} callers: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first request the customer app saw to `path` with `CallSid` `call`.
fn request_for(app: &CustomerApp, path: &str, call: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = app.requests();
        if let Some(r) = seen
            .iter()
            .find(|r| r["path"] == path && r["params"]["CallSid"] == call)
        {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {path} request for {call}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status callbacks to `/events` once there are `n`, in `SequenceNumber` order.
fn events(app: &CustomerApp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut events: Vec<Value> = app
            .requests()
            .into_iter()
            .filter(|r| r["path"] == "/events")
            .collect();
        if events.len() >= n || Instant::now() > deadline {
            events.sort_by_key(|e| {
                e["params"]["SequenceNumber"]
                    .as_str()
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(0)
            });
            return events;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each caller hears the two others and not itself.
fn assert_full_mix(heard: &[Vec<i16>], when: &str) {
    for (k, h) in heard.iter().enumerate() {
        for (j, &hz) in TONES.iter().enumerate() {
            let what = format!("caller {k} {when}");
            if j == k {
                assert_not_hears(h, hz, &what);
            } else {
                assert_hears(h, hz, &what);
            }
        }
    }
}

/// The mix, chunk by chunk: each caller hears the others' tones (that are sent) and not
/// its own.
fn full_mix(chunk: &[Vec<i16>]) -> bool {
    chunk.iter().enumerate().all(|(k, h)| {
        TONES.iter().enumerate().all(|(j, &hz)| {
            if j == k {
                absent(h, hz)
            } else {
                present(h, hz)
            }
        })
    })
}

/// `Hold=true` with a `HoldUrl` (TwiML whose `<Play>` is a 1,650 Hz tone): the held one
/// hears that and nobody else, nobody hears it; `Hold=false` puts it back in the mix.
/// `Hold=true` without a `HoldUrl`: the hold music. The participant resource and the
/// `hold` status callbacks say so.
#[test]
fn rest_hold_plays_the_hold_url_to_the_held_one_only_and_takes_it_out_of_the_mix() {
    let wavs = prompts(&[("hold.wav", HOLD_HZ, 3_000)]);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"{}
[[route]]
path = "/voice"
body = '<Response><Dial><Conference beep="false" statusCallback="/events" statusCallbackEvent="hold">room</Conference></Dial></Response>'
[[route]]
path = "/hold"
body = '<Response><Play>/hold.wav</Play></Response>'
[[route]]
path = "/events"
body = ""
"#,
            wavs.routes
        ),
    );
    let (sw, mut callers, sids, conf) = three_in_the_room(&app);
    let participant = |k: usize| format!("Conferences/{conf}/Participants/{}.json", sids[k]);

    // Caller 1 (700 Hz) on hold with its HoldUrl.
    let (status, p) = rest(
        &sw,
        "POST",
        &participant(1),
        &form(&[("Hold", "true"), ("HoldUrl", &app.url("/hold"))]),
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["hold"], true, "{p}");
    assert!(
        talk_until(&mut callers, &TONES, WAIT, |h| present(&h[1], HOLD_HZ)
            && absent(&h[0], 700.0)
            && absent(&h[2], 700.0)),
        "the hold never took effect"
    );
    let h = talk(&mut callers, &TONES, 3);
    assert_hears(&h[1], HOLD_HZ, "held caller 1 (its HoldUrl)");
    assert_not_hears(&h[1], 400.0, "held caller 1");
    assert_not_hears(&h[1], 1100.0, "held caller 1");
    for k in [0, 2] {
        let what = format!("caller {k} while 1 is held");
        assert_not_hears(&h[k], 700.0, &what);
        assert_not_hears(&h[k], HOLD_HZ, &what);
    }
    assert_hears(&h[0], 1100.0, "caller 0 while 1 is held");
    assert_hears(&h[2], 400.0, "caller 2 while 1 is held");
    let (status, p) = rest(&sw, "GET", &participant(1), "");
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (&p["hold"], &p["muted"]),
        (&Value::Bool(true), &Value::Bool(false)),
        "{p}"
    );
    let held = request_for(&app, "/hold", &sids[1]);
    assert_eq!(held["method"], "GET", "HoldUrl is fetched with GET: {held}");
    assert_eq!(held["signature_ok"], true, "{held}");

    // Back in the mix.
    let (status, p) = rest(&sw, "POST", &participant(1), "Hold=false");
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["hold"], false, "{p}");
    assert!(
        talk_until(&mut callers, &TONES, WAIT, full_mix),
        "caller 1 never came back into the mix"
    );
    let h = talk(&mut callers, &TONES, 3);
    assert_full_mix(&h, "after the hold");
    for (k, heard) in h.iter().enumerate() {
        assert_not_hears(heard, HOLD_HZ, &format!("caller {k} after the hold"));
    }
    let (_, p) = rest(&sw, "GET", &participant(1), "");
    assert_eq!(p["hold"], false, "{p}");

    // Caller 2 (1,100 Hz) on hold without a HoldUrl: the hold music.
    let (status, p) = rest(&sw, "POST", &participant(2), "Hold=true");
    assert_eq!(status, 200, "{p}");
    assert!(
        talk_until(&mut callers, &TONES, WAIT, |h| absent(&h[2], 400.0)
            && absent(&h[2], 700.0)
            && absent(&h[0], 1100.0)
            && absent(&h[1], 1100.0)),
        "the second hold never took effect"
    );
    let h = talk(&mut callers, &TONES, 3);
    let loud = loud_samples(&h[2], 1_000);
    assert!(
        loud * 8 > h[2].len(),
        "held caller 2 hears no hold music ({loud} loud samples of {})",
        h[2].len()
    );
    assert_not_hears(&h[2], 400.0, "held caller 2");
    assert_not_hears(&h[2], 700.0, "held caller 2");
    assert_not_hears(&h[2], HOLD_HZ, "held caller 2 (no HoldUrl)");
    assert_not_hears(&h[0], 1100.0, "caller 0 while 2 is held");
    assert_not_hears(&h[1], 1100.0, "caller 1 while 2 is held");
    assert_hears(&h[0], 700.0, "caller 0 while 2 is held");
    assert_hears(&h[1], 400.0, "caller 1 while 2 is held");
    let (status, p) = rest(&sw, "POST", &participant(2), "Hold=false");
    assert_eq!(status, 200, "{p}");
    assert!(
        talk_until(&mut callers, &TONES, WAIT, full_mix),
        "caller 2 never came back into the mix"
    );

    // statusCallbackEvent="hold": the holds and unholds alone, in order.
    let events = events(&app, 4);
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["params"]["StatusCallbackEvent"].as_str().unwrap_or(""),
                e["params"]["CallSid"].as_str().unwrap_or(""),
                e["params"]["Hold"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("participant-hold", sids[1].as_str(), "true"),
            ("participant-unhold", sids[1].as_str(), "false"),
            ("participant-hold", sids[2].as_str(), "true"),
            ("participant-unhold", sids[2].as_str(), "false"),
        ],
        "{events:?}"
    );
    for e in &events {
        assert_eq!(e["params"]["ConferenceSid"], conf.as_str(), "{e}");
        assert_eq!(e["signature_ok"], true, "{e}");
    }
    for c in &callers {
        c.hang_up();
    }
}

/// `AnnounceUrl` on the conference: every participant hears it (then the mix again);
/// on a participant: that one alone hears it, the others go on talking.
#[test]
fn rest_announcements_reach_the_whole_conference_or_one_participant() {
    let wavs = prompts(&[
        ("everyone.wav", EVERYONE_HZ, 2_000),
        ("one.wav", ONE_HZ, 2_000),
    ]);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"{}
[[route]]
path = "/voice"
body = '<Response><Dial><Conference beep="false">room</Conference></Dial></Response>'
[[route]]
path = "/everyone"
body = '<Response><Play>/everyone.wav</Play></Response>'
[[route]]
path = "/one"
body = '<Response><Play>/one.wav</Play></Response>'
"#,
            wavs.routes
        ),
    );
    let (sw, mut callers, sids, conf) = three_in_the_room(&app);

    // To the conference: all three hear it, and when it is over, each other again.
    let (status, c) = rest(
        &sw,
        "POST",
        &format!("Conferences/{conf}.json"),
        &form(&[("AnnounceUrl", &app.url("/everyone"))]),
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["sid"], conf.as_str(), "{c}");
    let h = talk_through(
        &mut callers,
        &TONES,
        WAIT,
        |all| all.iter().all(|h| present(h, EVERYONE_HZ)),
        |chunk| full_mix(chunk) && chunk.iter().all(|h| absent(h, EVERYONE_HZ)),
    )
    .expect("the conference's announcement never came and went");
    for (k, heard) in h.iter().enumerate() {
        let what = format!("caller {k} (conference announcement)");
        assert_hears(heard, EVERYONE_HZ, &what);
        assert_not_hears(heard, ONE_HZ, &what);
    }
    for sid in &sids {
        let r = request_for(&app, "/everyone", sid);
        assert_eq!(r["signature_ok"], true, "{r}");
    }

    // To caller 2 alone: it hears it; 0 and 1 never do, and keep hearing each other.
    let (status, p) = rest(
        &sw,
        "POST",
        &format!("Conferences/{conf}/Participants/{}.json", sids[2]),
        &form(&[("AnnounceUrl", &app.url("/one"))]),
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["call_sid"], sids[2].as_str(), "{p}");
    let h = talk_through(
        &mut callers,
        &TONES,
        WAIT,
        |all| present(&all[2], ONE_HZ),
        |chunk| full_mix(chunk) && absent(&chunk[2], ONE_HZ),
    )
    .expect("the participant's announcement never came and went");
    assert_hears(&h[2], ONE_HZ, "caller 2 (its announcement)");
    for k in [0, 1] {
        let what = format!("caller {k} (caller 2's announcement)");
        assert_not_hears(&h[k], ONE_HZ, &what);
        assert_not_hears(&h[k], EVERYONE_HZ, &what);
        assert_hears(&h[k], TONES[1 - k], &what);
        assert_hears(&h[k], 1100.0, &what);
    }
    assert_not_hears(
        &h[2],
        EVERYONE_HZ,
        "caller 2 (no second conference announcement)",
    );
    let one: Vec<Value> = app
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/one")
        .collect();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["params"]["CallSid"], sids[2].as_str(), "{one:?}");
    for c in &callers {
        c.hang_up();
    }
}

/// `MaxSize=1` by REST on a queue with one caller: the next `<Enqueue>` gets its action at
/// once with `QueueResult=queue-full`, whose TwiML it then runs (a 2,250 Hz prompt, hang
/// up); the caller in the queue stays, on hold music.
#[test]
fn a_full_queue_sends_the_next_caller_to_its_action_with_queue_full() {
    let wavs = prompts(&[("full.wav", EVERYONE_HZ, 1_500)]);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"{}
[[route]]
path = "/voice"
body = '<Response><Enqueue action="/queued">support</Enqueue></Response>'
[[route]]
path = "/queued"
body = '<Response><Play>/full.wav</Play><Hangup/></Response>'
"#,
            wavs.routes
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut waiting = caller(&sw);
    let queue = queue_with(&sw, 1);
    let qsid = queue["sid"].as_str().unwrap_or("").to_string();
    assert!(qsid.starts_with("QU"), "{queue}");
    let qpath = format!("Queues/{qsid}.json");
    for bad in ["0", "5001", "one"] {
        let (status, e) = rest(&sw, "POST", &qpath, &format!("MaxSize={bad}"));
        assert_eq!(status, 400, "MaxSize={bad}: {e}");
    }
    let (status, q) = rest(&sw, "POST", &qpath, "MaxSize=1");
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        (q["max_size"].as_u64(), q["current_size"].as_u64()),
        (Some(1), Some(1)),
        "{q}"
    );
    let (_, q) = rest(&sw, "GET", &qpath, "");
    assert_eq!(q["max_size"], 1, "{q}");

    let mut refused = caller(&sw);
    let sids = call_sids(&app, 2);
    assert_eq!(sids.len(), 2);
    let action = request_for(&app, "/queued", &sids[1]);
    assert_eq!(action["params"]["QueueResult"], "queue-full", "{action}");
    assert_eq!(action["params"]["QueueSid"], qsid.as_str(), "{action}");
    assert_eq!(action["signature_ok"], true, "{action}");
    assert!(
        talk_until(std::slice::from_mut(&mut refused), &[0.0], WAIT, |h| {
            present(&h[0], EVERYONE_HZ)
        }),
        "the refused caller never heard its action's prompt"
    );
    let bye = harness::ua::expect_request(&refused.sip, "BYE", WAIT);
    assert!(bye.text().starts_with("BYE"));

    // The first caller is still first in the queue, on hold music, not the prompt.
    let (_, members) = rest(&sw, "GET", &format!("Queues/{qsid}/Members.json"), "");
    let listed: Vec<(&str, u64)> = members["queue_members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["call_sid"].as_str().unwrap_or(""),
                        m["position"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, [(sids[0].as_str(), 1)], "{members}");
    let h = talk_for(
        std::slice::from_mut(&mut waiting),
        &[0.0],
        Duration::from_secs(2),
        Duration::ZERO,
    );
    let loud = loud_samples(&h[0], 1_000);
    assert!(
        loud * 8 > h[0].len(),
        "the queued caller hears no hold music ({loud} of {})",
        h[0].len()
    );
    assert_not_hears(&h[0], EVERYONE_HZ, "the queued caller");
    assert!(
        app.requests()
            .iter()
            .all(|r| !(r["path"] == "/queued" && r["params"]["CallSid"] == sids[0].as_str())),
        "the queued caller's action ran while it waits"
    );

    // It hangs up: its action hears `hangup`, and the queue is empty.
    waiting.hang_up();
    let action = request_for(&app, "/queued", &sids[0]);
    assert_eq!(action["params"]["QueueResult"], "hangup", "{action}");
    queue_with(&sw, 0);
}

/// `POST Queues/{QU}/Members/Front.json` and `Members/{CallSid}.json` with `Url`: the
/// member leaves the queue and runs that URL's TwiML (a prompt of its own tone, heard by
/// it alone), its `<Enqueue action>` is told `QueueResult=redirected` at once, and the
/// others stay queued in order.
#[test]
fn rest_dequeues_the_front_member_and_a_named_one_to_new_instructions() {
    let wavs = prompts(&[
        ("front.wav", EVERYONE_HZ, 1_500),
        ("member.wav", ONE_HZ, 1_500),
    ]);
    let app = CustomerApp::start(
        AUTH_TOKEN,
        &format!(
            r#"{}
[[route]]
path = "/voice"
body = '<Response><Enqueue action="/queued">support</Enqueue></Response>'
[[route]]
path = "/queued"
body = '<Response><Hangup/></Response>'
[[route]]
path = "/front"
body = '<Response><Play>/front.wav</Play><Hangup/></Response>'
[[route]]
path = "/member"
body = '<Response><Play>/member.wav</Play><Hangup/></Response>'
"#,
            wavs.routes
        ),
    );
    let sw = Switch::start_with_config(harness::config_with_voice_url(&app.url("/voice")));
    let mut callers: Vec<Caller> = Vec::new();
    for n in 1..=2 {
        callers.push(caller(&sw));
        assert_eq!(call_sids(&app, n).len(), n);
        queue_with(&sw, n as u64);
    }
    let sids = call_sids(&app, 2);
    let qsid = queue_with(&sw, 2)["sid"].as_str().unwrap_or("").to_string();
    let members = format!("Queues/{qsid}/Members");
    let (status, m) = rest(&sw, "GET", &format!("{members}/Front.json"), "");
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (&m["call_sid"], &m["position"]),
        (&Value::from(sids[0].as_str()), &Value::from(1)),
        "{m}"
    );
    let (status, e) = rest(&sw, "POST", &format!("{members}/Front.json"), "");
    assert_eq!(status, 400, "no Url: {e}");

    // The front one to /front.
    let (status, m) = rest(
        &sw,
        "POST",
        &format!("{members}/Front.json"),
        &form(&[("Url", &app.url("/front"))]),
    );
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["call_sid"], sids[0].as_str(), "{m}");
    assert_eq!(m["position"], 1, "{m}");
    let h = talk_through(
        &mut callers,
        &[0.0, 0.0],
        WAIT,
        |all| present(&all[0], EVERYONE_HZ),
        |_| true,
    )
    .expect("the dequeued caller never heard /front's prompt");
    let bye = harness::ua::expect_request(&callers[0].sip, "BYE", WAIT);
    assert!(bye.text().starts_with("BYE"));
    assert_not_hears(&h[1], EVERYONE_HZ, "the caller still queued");
    let front = request_for(&app, "/front", &sids[0]);
    assert_eq!(front["method"], "POST", "{front}");
    assert_eq!(front["signature_ok"], true, "{front}");
    let action = request_for(&app, "/queued", &sids[0]);
    assert_eq!(action["params"]["QueueResult"], "redirected", "{action}");
    assert_eq!(action["params"]["QueueSid"], qsid.as_str(), "{action}");
    assert_eq!(action["signature_ok"], true, "{action}");
    let q = queue_with(&sw, 1);
    let (_, list) = rest(&sw, "GET", &format!("{members}.json"), "");
    assert_eq!(
        list["queue_members"][0]["call_sid"],
        sids[1].as_str(),
        "{list}"
    );
    assert_eq!(list["queue_members"][0]["position"], 1, "{list}");
    let h = talk_for(
        &mut callers[1..],
        &[0.0],
        Duration::from_secs(2),
        Duration::ZERO,
    );
    let loud = loud_samples(&h[0], 1_000);
    assert!(
        loud * 8 > h[0].len(),
        "the caller left in the queue hears no hold music ({loud} of {}; {q})",
        h[0].len()
    );
    assert_not_hears(&h[0], EVERYONE_HZ, "the caller left in the queue");

    // The other one by its CallSid, to /member.
    let (status, m) = rest(
        &sw,
        "POST",
        &format!("{members}/{}.json", sids[1]),
        &form(&[("Url", &app.url("/member"))]),
    );
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["call_sid"], sids[1].as_str(), "{m}");
    assert!(
        talk_until(&mut callers[1..], &[0.0], WAIT, |h| present(&h[0], ONE_HZ)),
        "the caller dequeued by CallSid never heard /member's prompt"
    );
    let bye = harness::ua::expect_request(&callers[1].sip, "BYE", WAIT);
    assert!(bye.text().starts_with("BYE"));
    let action = request_for(&app, "/queued", &sids[1]);
    assert_eq!(action["params"]["QueueResult"], "redirected", "{action}");
    queue_with(&sw, 0);
    let (status, e) = rest(
        &sw,
        "POST",
        &format!("{members}/Front.json"),
        &form(&[("Url", &app.url("/front"))]),
    );
    assert_eq!(status, 404, "an empty queue has no front: {e}");
    // Each action was told once; /front and /member ran for their caller alone.
    let seen = app.requests();
    for (path, n) in [("/queued", 2), ("/front", 1), ("/member", 1)] {
        let hits = seen.iter().filter(|r| r["path"] == path).count();
        assert_eq!(hits, n, "{path}: {seen:?}");
    }
}
