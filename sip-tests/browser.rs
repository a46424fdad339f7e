//! A real browser: Debian's headless Chromium runs JsSIP (`sip-tests/browser/webphone.js`,
//! driven by puppeteer-core). The page registers with a token over secure WebSocket,
//! answers a carrier's call and talks to the carrier's RTP phone through the switch
//! (WebRTC on the page's side: ICE, DTLS-SRTP; plain RTP on the carrier's), places calls
//! with its token's outgoing grant (digits into a `<Gather>`, a number out through the
//! trunk), and unregisters.
//!
//! Needs `chromium` (Debian) and `node`/`npm`; `sip-tests/browser/setup.sh` installs the
//! npm packages and bundles JsSIP on the first run; `.ci/run` installs the rest.
// Real processes: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::customer_app::CustomerApp;
use harness::rtp::{Codec, RtpPhone, SdpAudio, linear_to_ulaw, ulaw_to_linear};
use harness::ua::{REALM, call_id_of, carrier_invite, expect_request, in_dialog, reply};
use harness::{Switch, Udp};
use serde_json::Value;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const NUMBER: &str = "+15550100001";
/// The application the page's token may call out through (its outgoing grant).
const OUT_APP: &str = "AP000000000000000000000000000000b1";
/// Chromium's start, JsSIP's connect and REGISTER; ICE and DTLS.
const BROWSER_WAIT: Duration = Duration::from_secs(40);
/// How long each side talks in an audio check.
const TALK: Duration = Duration::from_secs(4);

fn client(sw: &Switch, identity: &str) -> Value {
    let path = format!("Clients/{identity}.json");
    harness::rest::call_as(sw, ACCOUNT, AUTH_TOKEN, "GET", &path, "").1
}

/// The sample config with a development certificate, the page's outgoing application
/// (`voice_url` on `app`) and the carrier trunk's outbound side at `trunk`.
fn config(app: Option<&CustomerApp>, trunk: Option<SocketAddr>) -> PathBuf {
    let dir = std::env::temp_dir().join(harness::unique("browser-certs"));
    harness::dev_cert("localhost", &dir);
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let mut text = sample.replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
        1,
    );
    if let Some(trunk) = trunk {
        text = text.replace("sip:127.0.0.1:5080", &format!("sip:{trunk}"));
    }
    if let Some(app) = app {
        text.push_str(&format!(
            "\n[[applications]]\nsid = \"{OUT_APP}\"\naccount = \"{ACCOUNT}\"\n\
             friendly_name = \"Browser calls\"\nvoice_url = \"{}\"\n",
            app.url("/out")
        ));
    }
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("browser")));
    std::fs::write(&path, text).unwrap();
    path
}

/// The webphone example's web app (`examples/webphone`): serves the page, mints its
/// tokens with the sample config's API key, passes on the switch's presence. Killed on drop.
struct Site {
    child: Child,
    url: String,
}

impl Site {
    /// `outgoing_app`: the application the page's calls run (none: no outgoing grant).
    fn start(sw: &Switch, outgoing_app: Option<&str>) -> Site {
        let bin = harness::customer_app::example_bin("webphone");
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--ws-url", &format!("wss://{}", sw.listening("sip/wss"))])
            .args(["--api", &format!("http://{}", sw.http_addr())])
            .args([
                "--realm",
                REALM,
                "--outgoing-app",
                outgoing_app.unwrap_or(""),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (cargo build --examples)", bin.display()));
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the webphone site said {first:?}"))
            .to_string();
        Site { child, url }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example page in Chromium, driven through its buttons by webphone.js: events in,
/// commands out.
struct Page {
    child: Child,
    events: mpsc::Receiver<Value>,
    _site: Site,
}

impl Page {
    /// Opens the page, which goes online as `identity` (a token from the site, REGISTER
    /// over WSS), and waits for the REGISTER's 200.
    fn open(sw: &Switch, identity: &str, outgoing_app: Option<&str>) -> Page {
        // Once per test process: the tests run in parallel, and two `npm install`s in one
        // directory break each other.
        static SETUP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let ok = *SETUP.get_or_init(|| {
            Command::new("bash")
                .arg(harness::repo_path("sip-tests/browser/setup.sh"))
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            ok,
            "sip-tests/browser/setup.sh failed (node and npm installed?)"
        );
        assert!(
            Path::new("/usr/lib/chromium/chromium").exists()
                || std::env::var_os("CHROMIUM").is_some(),
            "Debian's chromium is needed: apt-get install chromium"
        );
        let site = Site::start(sw, outgoing_app);
        let mut child = Command::new("node")
            .arg(harness::repo_path("sip-tests/browser/webphone.js"))
            .args([&site.url, identity])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node");
        let (tx, events) = mpsc::channel::<Value>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut page = Page {
            child,
            events,
            _site: site,
        };
        let registered = page.wait_for("registered");
        assert_eq!(registered["registered"], 200, "{registered}");
        page
    }

    /// The next event that has `key`; events without it (progress of something else)
    /// are skipped, a failure of the page is a panic.
    fn wait_for(&mut self, key: &str) -> Value {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the page never reported {key}"));
            if ev.get(key).is_some() {
                return ev;
            }
            assert!(
                ev.get("failed").is_none() && ev.get("call_failed").is_none(),
                "the page failed while waiting for {key}: {ev}"
            );
        }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// What the page displays: registration, presence, call state, the mute button.
    fn show(&mut self) -> Value {
        self.send("show");
        self.wait_for("shown")["shown"].clone()
    }

    /// Waits until the page displays `value` as `key` (see [`Page::show`]); what it shows.
    fn shown(&mut self, key: &str, value: &str) -> Value {
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            let shown = self.show();
            if shown[key] == value {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {key} {value}: {shown}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stats(&mut self) -> Value {
        self.send("stats");
        self.wait_for("stats")["stats"].clone()
    }

    /// Unregisters and closes the browser.
    fn quit(mut self, sw: &Switch, identity: &str) {
        self.send("quit");
        let gone = self.wait_for("unregistered");
        assert_eq!(gone["unregistered"], true, "{gone}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while client(sw, identity)["status"] != "offline" {
            assert!(Instant::now() < deadline, "{identity} stays registered");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
    }
}

/// One 20 ms frame of a 1 kHz tone at half scale, μ-law.
fn tone_frame(i: usize) -> Vec<u8> {
    (0..160)
        .map(|n| {
            let t = (i * 160 + n) as f64 / 8000.0;
            linear_to_ulaw((16_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16)
        })
        .collect()
}

/// The phone sends the tone to `to` for [`TALK`] while counting what comes back: packets,
/// and packets carrying sound (a sample above -30 dBFS).
fn talk(phone: &mut RtpPhone, to: SocketAddr) -> (usize, usize) {
    let (mut packets, mut loud) = (0, 0);
    let start = Instant::now();
    let mut next = start;
    let mut i = 0;
    while start.elapsed() < TALK {
        if Instant::now() >= next {
            phone.send(to, 0, &tone_frame(i));
            i += 1;
            next += Duration::from_millis(20);
        }
        if let Some((rtp, _)) = phone.recv_until(next.min(start + TALK)) {
            packets += 1;
            if rtp.pt == 0 && rtp.payload.iter().any(|&b| ulaw_to_linear(b).abs() > 1000) {
                loud += 1;
            }
        }
    }
    eprintln!("carrier's phone: {packets} packets back in {TALK:?}, {loud} with sound");
    (packets, loud)
}

/// The page's inbound audio shows packets and sound energy.
fn assert_page_hears(page: &mut Page) {
    let stats = page.stats();
    eprintln!("page's audio: {stats}");
    assert!(
        stats["inPackets"].as_u64().unwrap_or(0) > 50,
        "the page received too little audio: {stats}"
    );
    assert!(
        stats["inEnergy"].as_f64().unwrap_or(0.0) > 0.0,
        "the page heard only silence: {stats}"
    );
    assert_eq!(stats["dtls"], "connected", "{stats}");
}

#[test]
fn chromium_answers_a_carrier_call_and_audio_crosses_the_bridge_both_ways() {
    let cfg = config(None, None);
    let sw = Switch::start_with_args(&cfg, &["--wss", "127.0.0.1:0"]);
    let mut page = Page::open(&sw, "alice", None);
    // The page shows the switch's presence (REST, through its site).
    page.shown("presence", "available");
    let c = client(&sw, "alice");
    assert_eq!(c["status"], "available", "{c}");
    let contact = &c["contacts"][0];
    assert_eq!(contact["transport"], "wss", "{c}");
    assert!(
        contact["user_agent"]
            .as_str()
            .unwrap_or("")
            .contains("JsSIP"),
        "{c}"
    );

    // A carrier call with an RTP phone to <Dial><Client>alice</Client>: the page answers.
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let invite = carrier_invite(
        &sw,
        &carrier,
        NUMBER,
        &phone.offer(&[Codec::Pcmu, Codec::TelephoneEvent]),
    );
    carrier.send(&invite);
    let incoming = page.wait_for("incoming");
    assert!(
        incoming["incoming"]
            .as_str()
            .unwrap_or("")
            .contains("+15557654321"),
        "{incoming}"
    );
    page.send("answer");
    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), BROWSER_WAIT)
        .expect("the carrier's final answer");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    carrier.send(harness::ack_for(&invite, &ok));
    page.wait_for("confirmed");
    let relay = SdpAudio::parse(&ok.body).rtp;

    // The tone goes in at the carrier, the fake microphone's beeps come back.
    let (packets, loud) = talk(&mut phone, relay);
    assert!(
        packets > 100,
        "the carrier got {packets} packets in {TALK:?}"
    );
    assert!(
        loud > 0,
        "the carrier heard only silence ({packets} packets)"
    );
    assert_page_hears(&mut page);
    let shown = page.shown("presence", "busy");
    assert_eq!(shown["registration"], "registered", "{shown}");
    assert_eq!(shown["call"], "in call", "{shown}");

    // Mute: the carrier's phone hears silence (Chrome sends silent frames or none).
    page.send("mute");
    assert_eq!(page.wait_for("muted")["muted"], true);
    std::thread::sleep(Duration::from_millis(500));
    let (_, loud) = talk(&mut phone, relay);
    assert_eq!(loud, 0, "the carrier still hears the muted page");
    page.send("mute");
    assert_eq!(page.wait_for("muted")["muted"], false);
    std::thread::sleep(Duration::from_millis(500));
    let (_, loud) = talk(&mut phone, relay);
    assert!(loud > 0, "the carrier hears nothing after unmute");

    // The carrier hangs up: the page's call ends.
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 2));
    page.wait_for("ended");
    page.quit(&sw, "alice");
}

#[test]
fn chromium_places_calls_digits_reach_a_gather_and_a_number_goes_out_through_the_trunk() {
    // The outgoing application: first a <Gather>, then (second call) a <Dial><Number>.
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/out"
body = '<Response><Gather action="/digits" numDigits="3" timeout="10"/></Response>'
after = 1
after_body = '<Response><Dial><Number>+15551230000</Number></Dial></Response>'

[[route]]
path = "/digits"
body = "<Response><Hangup/></Response>"
"#,
    );
    // The carrier's side of the trunk (answering the switch, wherever it listens).
    let mut trunk = Udp::new("127.0.0.1:9".parse().unwrap());
    let cfg = config(Some(&app), Some(trunk.local_addr()));
    let sw = Switch::start_with_args(&cfg, &["--wss", "127.0.0.1:0"]);
    trunk.set_peer(sw.udp_addr());
    let mut page = Page::open(&sw, "alice", Some(OUT_APP));

    // 1. Digits pressed on the page (RFC 4733 inside SRTP) end up in the <Gather>.
    page.send("call +15551230000");
    page.wait_for("confirmed");
    let voice = &app.wait_requests(1, BROWSER_WAIT)[0];
    assert_eq!(voice["params"]["From"], "client:alice", "{voice}");
    assert_eq!(voice["params"]["To"], "+15551230000", "{voice}");
    // ICE and DTLS come up after the 200; give them a moment before pressing keys.
    std::thread::sleep(Duration::from_secs(2));
    page.send("dtmf 428");
    let seen = app.wait_requests(2, BROWSER_WAIT);
    assert_eq!(seen[1]["path"], "/digits", "{}", seen[1]);
    assert_eq!(seen[1]["params"]["Digits"], "428", "{}", seen[1]);
    page.wait_for("ended");

    // 2. A number: out through the trunk to the carrier, whose phone talks with the page.
    page.send("call +15551230000");
    let out = expect_request(&trunk, "INVITE", BROWSER_WAIT);
    assert!(out.start_line.contains("+15551230000"), "{}", out.text());
    let mut phone = RtpPhone::new();
    let offer = SdpAudio::parse(&out.body);
    let answer = phone.answer(&offer, &[Codec::Pcmu, Codec::TelephoneEvent]);
    trunk.send(reply(
        &out,
        200,
        "OK",
        "trunk1",
        trunk.local_addr(),
        Some(&answer),
    ));
    page.wait_for("confirmed");
    let (packets, loud) = talk(&mut phone, offer.rtp);
    assert!(
        packets > 100,
        "the carrier got {packets} packets in {TALK:?}"
    );
    assert!(
        loud > 0,
        "the carrier heard only silence ({packets} packets)"
    );
    assert_page_hears(&mut page);
    page.send("hangup");
    let bye = expect_request(&trunk, "BYE", BROWSER_WAIT);
    trunk.send(reply(&bye, 200, "OK", "trunk1", trunk.local_addr(), None));
    page.quit(&sw, "alice");
}

#[test]
fn a_browser_whose_certificate_does_not_match_its_fingerprint_gets_no_media_and_a_bye() {
    let cfg = config(None, None);
    let sw = Switch::start_with_args(&cfg, &["--wss", "127.0.0.1:0"]);
    let mut page = Page::open(&sw, "alice", None);
    let carrier = sw.udp();
    let mut phone = RtpPhone::new();
    let invite = carrier_invite(&sw, &carrier, NUMBER, &phone.offer(&[Codec::Pcmu]));
    carrier.send(&invite);
    page.wait_for("incoming");
    // The page's answer names a certificate it does not have: DTLS with it must fail.
    page.send("forge-fingerprint");
    page.send("answer");
    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), BROWSER_WAIT)
        .expect("the carrier's final answer");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    carrier.send(harness::ack_for(&invite, &ok));
    let relay = SdpAudio::parse(&ok.body).rtp;
    // The switch ends the browser's leg, and with it the call (the Dial was its last verb).
    let ended = page.wait_for("ended");
    assert_eq!(ended["ended"], "Terminated", "{ended}");
    let (packets, _) = talk(&mut phone, relay);
    assert_eq!(packets, 0, "media passed a failed handshake");
    let bye = expect_request(&carrier, "BYE", BROWSER_WAIT);
    assert!(bye.text().contains(&call_id_of(&invite)), "{}", bye.text());
    page.quit(&sw, "alice");
}
