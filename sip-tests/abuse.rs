//! Black-box password and token guessing (issue 15): `[security]` counts failed credentials
//! per source address and bans the source; the ban holds against the right password, spares
//! everyone else, shows in `/metrics` and `/bans.json`, and lifts on time.
// Real sockets and a real process: receive deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{Msg, Switch, Udp, request};
use md5::{Digest as _, Md5};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const REALM: &str = "switchboard.local";
const REPLY: Duration = Duration::from_secs(5);

/// The sample config with a `[security]` section.
fn config(security: &str) -> PathBuf {
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    // The sample's own [security] keys give way to the test's.
    let keys = [
        "auth_fail_window_secs",
        "auth_fail_max_per_source",
        "auth_fail_max_per_aor",
        "ban_secs",
        "ban_reply",
    ];
    let kept: Vec<&str> = sample
        .lines()
        .filter(|l| !keys.iter().any(|k| l.starts_with(&format!("{k} ="))))
        .map(|l| if l == "[security]" { "" } else { l })
        .collect();
    assert_eq!(
        kept.len() + 5,
        sample.lines().count(),
        "the sample's [security] changed shape"
    );
    let text = format!("{}\n[security]\n{security}\n", kept.join("\n"));
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("abuse")));
    std::fs::write(&path, text).unwrap();
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Digest client for the sample's SIP user alice on one socket.
struct Guesser {
    ua: Udp,
    call_id: String,
    cseq: u32,
    nonce: String,
}

impl Guesser {
    fn new(sw: &Switch, ua: Udp) -> Guesser {
        Guesser::challenged(sw, ua).expect("a 401 challenge")
    }

    /// A guesser with a nonce, or None when the first REGISTER is not challenged (a
    /// banned source gets 403).
    fn challenged(sw: &Switch, ua: Udp) -> Option<Guesser> {
        let mut g = Guesser {
            ua,
            call_id: harness::unique("guess"),
            cseq: 0,
            nonce: String::new(),
        };
        let r = g.send(None).expect("an answer");
        if r.status() != Some(401) {
            return None;
        }
        let md5 = r
            .headers("WWW-Authenticate")
            .into_iter()
            .find(|c| c.starts_with("Digest") && c.contains("algorithm=MD5"))
            .unwrap_or_else(|| panic!("an MD5 challenge in {}\n{}", r.text(), sw.stderr()))
            .to_string();
        g.nonce = md5
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .into();
        Some(g)
    }

    /// One REGISTER with `authorization`; the final answer, or None within `wait`.
    fn send_within(&mut self, authorization: Option<&str>, wait: Duration) -> Option<Msg> {
        self.cseq += 1;
        let to = format!("<sip:alice@{REALM}>");
        let from = format!("{to};tag={}", harness::unique("f"));
        let cseq = format!("{} REGISTER", self.cseq);
        let contact = format!("<sip:alice@{}>", self.ua.local_addr());
        let mut headers = vec![
            ("To", to.as_str()),
            ("From", from.as_str()),
            ("Call-ID", self.call_id.as_str()),
            ("CSeq", cseq.as_str()),
            ("Contact", contact.as_str()),
        ];
        if let Some(a) = authorization {
            headers.push(("Authorization", a));
        }
        let req = request(
            "REGISTER",
            &format!("sip:{REALM}"),
            self.ua.local_addr(),
            "UDP",
            &headers,
            "",
        );
        self.ua.send(&req);
        self.ua.recv_final(&self.call_id, wait).map(|(m, _)| m)
    }

    fn send(&mut self, authorization: Option<&str>) -> Option<Msg> {
        self.send_within(authorization, REPLY)
    }

    /// Digest credentials for `password` (the next nonce count).
    fn digest(&self, password: &str) -> String {
        let uri = format!("sip:{REALM}");
        let nc = format!("{:08x}", self.cseq + 1);
        let ha1 = hex(&Md5::digest(format!("alice:{REALM}:{password}")));
        let ha2 = hex(&Md5::digest(format!("REGISTER:{uri}")));
        let resp = hex(&Md5::digest(format!(
            "{ha1}:{}:{nc}:c0ffee:auth:{ha2}",
            self.nonce
        )));
        format!(
            "Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\"",
            self.nonce
        )
    }

    fn guess(&mut self, password: &str) -> Option<u16> {
        let creds = self.digest(password);
        self.send(Some(&creds)).and_then(|m| m.status())
    }
}

/// `GET /bans.json` as the demo account.
fn bans(sw: &Switch) -> serde_json::Value {
    let (status, body, head) =
        harness::rest::http(sw, "GET", "/bans.json", ACCOUNT, AUTH_TOKEN, "");
    assert_eq!(status, 200, "{head}");
    body
}

/// 200 wrong passwords, then the right one, from one address: never a 200. The address
/// is banned; another registers meanwhile; the ban lifts after `ban_secs`.
#[test]
fn password_guessing_bans_the_source_until_the_ban_lifts() {
    let cfg = config(
        "auth_fail_window_secs = 60\nauth_fail_max_per_source = 20\nauth_fail_max_per_aor = 0\nban_secs = 3\nban_reply = \"403\"",
    );
    let sw = Switch::start_with_config(&cfg);
    let mut attacker = Guesser::new(&sw, sw.udp());
    let mut codes = Vec::new();
    for i in 0..200 {
        codes.push(attacker.guess(&format!("guess-{i}")).expect("an answer"));
    }
    assert!(!codes.contains(&200));
    assert!(codes[..20].iter().all(|c| *c == 401), "{:?}", &codes[..20]);
    assert!(
        codes[20..].iter().all(|c| *c == 403),
        "banned after 20: {codes:?}"
    );
    // The right password during the ban gets no further.
    assert_eq!(attacker.guess("alice-secret"), Some(403));
    let listed = bans(&sw);
    let list = listed["bans"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{listed}");
    assert_eq!(list[0]["source"], "127.0.0.1");
    assert_eq!(list[0]["reason"], "auth_fail_max_per_source");
    assert_eq!(sw.metric("auth_bans_active"), 1);
    assert!(sw.metric("auth_failures_total") >= 20);

    // Someone else, elsewhere, registers as usual meanwhile.
    let mut other = Guesser::new(&sw, Udp::bind_on("127.0.0.2", sw.udp_addr()));
    assert_eq!(other.guess("alice-secret"), Some(200));

    // The ban lifts on time: the right password then works from the attacker's address.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mut retry) = Guesser::challenged(&sw, sw.udp())
            && retry.guess("alice-secret") == Some(200)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the ban never lifted");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(sw.metric("auth_bans_active"), 0);
}

/// Forged tokens count like wrong passwords, and `ban_reply = "drop"` answers nothing.
#[test]
fn forged_tokens_lead_to_a_ban_and_drop_answers_nothing() {
    let cfg = config(
        "auth_fail_max_per_source = 20\nauth_fail_max_per_aor = 0\nban_secs = 60\nban_reply = \"drop\"",
    );
    let sw = Switch::start_with_config(&cfg);
    let mut forger = Guesser::new(&sw, Udp::bind_on("127.0.0.3", sw.udp_addr()));
    // A well-formed HS256 JWT shape signed with a key nobody configured.
    let real = harness::ua::token("alice");
    let parts: Vec<&str> = real.split('.').collect();
    let mut answered = 0;
    for i in 0..200 {
        let forged = format!("Bearer {}.{}.{}x{i}", parts[0], parts[1], &parts[2][..10]);
        match forger.send_within(Some(&forged), Duration::from_millis(300)) {
            Some(m) => {
                assert_eq!(m.status(), Some(401), "{}", m.text());
                answered += 1;
            }
            None => break,
        }
    }
    assert_eq!(answered, 20, "the 21st forged token is dropped");
    // The real token from the banned address: still nothing.
    let real_bearer = format!("Bearer {real}");
    assert!(
        forger
            .send_within(Some(&real_bearer), Duration::from_millis(500))
            .is_none()
    );
    assert_eq!(sw.metric("auth_bans_active"), 1);
    assert_eq!(sw.metric("sip_register_total{outcome=\"banned\"}"), 2);
}

/// The sample config answering +15550100001 from `voice_url`, with `media_extra` in place
/// of the sample's `recordings_max_bytes` line.
fn app_config(voice_url: &str, media_extra: &str) -> PathBuf {
    let text = harness::sample_with_voice_url(voice_url).replace(
        "recordings_max_bytes = 10737418240\n",
        &format!("{media_extra}\n"),
    );
    assert!(
        text.contains(media_extra),
        "the sample config changed shape"
    );
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("abuse")));
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether the switch's log shows `needle` within a few seconds (it is read by a thread).
fn logged(sw: &Switch, needle: &str) -> bool {
    let deadline = Instant::now() + REPLY;
    while Instant::now() < deadline {
        if sw.stderr().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A carrier call to +15550100001 that the switch answers and then hangs up (an
/// application error: the prompt, then BYE).
fn answered_then_hung_up(sw: &Switch) {
    let carrier = sw.udp();
    let invite = harness::ua::carrier_invite(
        sw,
        &carrier,
        "+15550100001",
        &harness::sdp_offer(carrier.local_addr().ip()),
    );
    carrier.send(&invite);
    let cid = harness::ua::call_id_of(&invite);
    let (ok, _) = carrier.recv_final(&cid, REPLY).expect("an answer");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    carrier.send(harness::ua::in_dialog("ACK", &invite, &ok, &carrier, 1));
    let bye = harness::ua::expect_request(&carrier, "BYE", Duration::from_secs(15));
    carrier.send(harness::ua::reply(
        &bye,
        200,
        "OK",
        "x",
        carrier.local_addr(),
        None,
    ));
}

/// A document that redirects to itself is fetched at most 20 times (the burst cap), then
/// the call ends like an application error.
#[test]
fn a_self_redirecting_document_stops_at_the_cap() {
    let app = harness::customer_app::CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/loop"
body = '<Response><Redirect>/loop</Redirect></Response>'
"#,
    );
    let sw = Switch::start_with_config(app_config(&app.url("/loop"), ""));
    answered_then_hung_up(&sw);
    // Nothing more comes after the call ended.
    let seen = app.wait_requests(21, Duration::from_millis(500));
    assert_eq!(seen.len(), 20, "fetches: {}", seen.len());
    assert!(logged(&sw, "Redirect loop"), "{}", sw.stderr());
}

/// Past `[media] recordings_max_bytes` a `<Record>` is skipped (with a logged reason) and
/// the next verb runs; nothing is written.
#[test]
fn a_record_past_the_storage_cap_is_skipped() {
    let app = harness::customer_app::CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Record maxLength="5" action="/recorded"/><Redirect>/after</Redirect></Response>'
[[route]]
path = "/after"
body = '<Response><Hangup/></Response>'
"#,
    );
    let dir = std::env::temp_dir().join(harness::unique("recordings"));
    let media = "recordings_max_bytes = 50000";
    let cfg = app_config(&app.url("/voice"), media);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "recordings_dir = \"recordings\"",
        &format!("recordings_dir = \"{}\"", dir.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    let carrier = sw.udp();
    let invite = harness::ua::carrier_invite(
        &sw,
        &carrier,
        "+15550100001",
        &harness::sdp_offer(carrier.local_addr().ip()),
    );
    carrier.send(&invite);
    let seen = app.wait_requests(2, REPLY);
    let paths: Vec<&str> = seen.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths, ["/voice", "/after"], "{seen:?}");
    assert!(
        logged(&sw, "past recordings_max_bytes (50000)"),
        "{}",
        sw.stderr()
    );
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "nothing written");
}

/// A token living longer than `[registrar] max_token_lifetime_secs` (24 h by default) gets
/// 401 invalid_token, though its signature is good.
#[test]
fn a_token_over_the_maximum_lifetime_is_refused() {
    // Minted under a config that allows two days (the sample's would refuse --ttl 172800).
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let lenient = sample.replace(
        "max_contacts = 10",
        "max_contacts = 10\nmax_token_lifetime_secs = 172800",
    );
    assert_ne!(lenient, sample);
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("lenient")));
    std::fs::write(&path, lenient).unwrap();
    let long = harness::ua::token_from(&path, "alice", &["--incoming", "--ttl", "172800"]);
    // The sample config's own CLI refuses to mint it.
    let refused = harness::switchboard()
        .args(["token", "-c"])
        .arg(harness::default_config())
        .args(["--identity", "alice", "--incoming", "--ttl", "172800"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));

    let sw = Switch::start();
    let mut client = Guesser::new(&sw, sw.udp());
    let r = client
        .send(Some(&format!("Bearer {long}")))
        .expect("an answer");
    assert_eq!(r.status(), Some(401), "{}", r.text());
    assert!(
        r.headers("WWW-Authenticate")
            .iter()
            .any(|c| c.contains("error=\"invalid_token\"")),
        "{}",
        r.text()
    );
    // A day-long token registers.
    let day = harness::ua::token_with("alice", &["--incoming", "--ttl", "86400"]);
    let r = client
        .send(Some(&format!("Bearer {day}")))
        .expect("an answer");
    assert_eq!(r.status(), Some(200), "{}", r.text());
}
