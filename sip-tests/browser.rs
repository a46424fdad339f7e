//! A real browser: Debian's headless Chromium runs JsSIP (`sip-tests/browser/webphone.js`,
//! driven by puppeteer-core), which registers with a token over secure WebSocket, is rung
//! by a carrier call down its WebSocket, and unregisters. (WebRTC media for browser legs
//! is not built yet: the page rejects the call with 486.)
//!
//! Needs `chromium` (Debian) and `node`/`npm`; `sip-tests/browser/setup.sh` installs the
//! npm packages and bundles JsSIP on the first run; `.ci/run` installs the rest.
// Real processes: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::ua::{REALM, call_id_of, carrier_invite, token};
use harness::{Switch, sdp_offer};
use serde_json::Value;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const NUMBER: &str = "+15550100001";
/// Chromium's start, JsSIP's connect and REGISTER.
const BROWSER_WAIT: Duration = Duration::from_secs(40);

fn client(sw: &Switch, identity: &str) -> Value {
    let path = format!("Clients/{identity}.json");
    harness::rest::call_as(sw, ACCOUNT, AUTH_TOKEN, "GET", &path, "").1
}

#[test]
fn chromium_registers_over_wss_with_a_token_is_rung_and_unregisters() {
    let setup = Command::new("bash")
        .arg(harness::repo_path("sip-tests/browser/setup.sh"))
        .status()
        .expect("bash");
    assert!(
        setup.success(),
        "sip-tests/browser/setup.sh failed (node and npm installed?)"
    );
    assert!(
        std::path::Path::new("/usr/lib/chromium/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "Debian's chromium is needed: apt-get install chromium"
    );

    // The switch with a development certificate and WSS.
    let dir = std::env::temp_dir().join(harness::unique("browser-certs"));
    harness::dev_cert("localhost", &dir);
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let text = sample.replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
        1,
    );
    let config = std::env::temp_dir().join(format!("{}.toml", harness::unique("browser")));
    std::fs::write(&config, text).unwrap();
    let sw = Switch::start_with_args(&config, &["--wss", "127.0.0.1:0"]);
    let url = format!("wss://{}", sw.listening("sip/wss"));

    let mut page = Command::new("node")
        .arg(harness::repo_path("sip-tests/browser/webphone.js"))
        .args([&url, "alice", &token("alice"), REALM])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = page.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(BROWSER_WAIT)
            .unwrap_or_else(|_| panic!("the page never reported {what}"))
    };

    let registered = next("its registration");
    assert_eq!(registered["registered"], 200, "{registered}");
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

    // A carrier call to <Dial><Client>alice</Client> reaches the page.
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER, &sdp_offer(carrier.local_addr().ip()));
    carrier.send(&invite);
    let incoming = next("the incoming call");
    assert!(
        incoming["incoming"]
            .as_str()
            .unwrap_or("")
            .contains("+15557654321"),
        "{incoming}"
    );
    let (fin, _) = carrier
        .recv_final(&call_id_of(&invite), BROWSER_WAIT)
        .expect("the carrier's final answer");
    assert_eq!(fin.status(), Some(486), "{}", fin.text());

    // The page unregisters: alice goes offline.
    page.stdin.as_mut().unwrap().write_all(b"quit\n").unwrap();
    let gone = next("its un-REGISTER");
    assert_eq!(gone["unregistered"], true, "{gone}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while client(&sw, "alice")["status"] != "offline" {
        assert!(Instant::now() < deadline, "alice stays registered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = page.wait();
}
