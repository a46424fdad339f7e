//! Black-box registrar tests: the real binary, tokens minted by `switchboard token`, SIP over
//! UDP and TCP from the test UAs, and presence read back over the REST API.

// Real sockets and a real process: receive deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

#[path = "harness/mod.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use harness::{Msg, Switch, request, switchboard};
use md5::{Digest as _, Md5};

/// The sample config's demo account, as `switchboard token` and the REST API know it.
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const REALM: &str = "switchboard.local";
const REPLY: Duration = Duration::from_secs(5);

fn token(identity: &str, extra: &[&str]) -> String {
    let out = switchboard()
        .args(["token", "-c"])
        .arg(harness::default_config())
        .args(["--identity", identity])
        .args(extra)
        .output()
        .expect("run switchboard token");
    assert!(
        out.status.success(),
        "token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A REGISTER for `user` with optional Authorization and extra headers.
fn register(local: SocketAddr, transport: &str, user: &str, extra: &[(&str, &str)]) -> String {
    let to = format!("<sip:{user}@{REALM}>");
    let mut headers: Vec<(&str, &str)> = vec![("To", &to), ("From", &to)];
    headers.extend_from_slice(extra);
    let from_tagged = format!("{to};tag={}", harness::unique("f"));
    for h in headers.iter_mut() {
        if h.0 == "From" {
            h.1 = &from_tagged;
        }
    }
    request(
        "REGISTER",
        &format!("sip:{REALM}"),
        local,
        transport,
        &headers,
        "",
    )
}

fn call_id(req: &str) -> String {
    req.lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .expect("Call-ID")
        .to_string()
}

/// A REGISTER for `user` over UDP from `ua`, and its final response.
fn register_udp(sw: &Switch, ua: &harness::Udp, user: &str, extra: &[(&str, &str)]) -> Msg {
    send_udp(sw, ua, &register(ua.local_addr(), "UDP", user, extra))
}

fn send_udp(sw: &Switch, ua: &harness::Udp, req: &str) -> Msg {
    ua.send(req);
    ua.recv_final(&call_id(req), REPLY)
        .unwrap_or_else(|| panic!("no answer to\n{req}\nstderr:\n{}", sw.stderr()))
        .0
}

/// GET on the REST API with Basic auth; returns (status, JSON body).
fn rest(sw: &Switch, path: &str, user: &str, pass: &str) -> (u16, serde_json::Value) {
    let (status, body, _) = harness::rest::http(sw, "GET", path, user, pass, "");
    (status, body)
}

fn client(sw: &Switch, identity: &str) -> serde_json::Value {
    let (status, body) = rest(
        sw,
        &format!("/2010-04-01/Accounts/{ACCOUNT}/Clients/{identity}.json"),
        ACCOUNT,
        AUTH_TOKEN,
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn wait_status(sw: &Switch, identity: &str, want: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let c = client(sw, identity);
        if c["status"] == want {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{identity} never became {want}: {c}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn expires_of(contact: &str) -> u64 {
    harness::param(contact, "expires")
        .flatten()
        .expect("expires param")
        .parse()
        .unwrap()
}

#[test]
fn token_register_over_udp_makes_the_client_available_then_offline() {
    let sw = Switch::start();
    let ua = sw.udp();
    assert_eq!(
        client(&sw, "alice")["status"],
        "offline",
        "never seen is offline"
    );

    // No credentials: a Bearer challenge, and Digest ones too (the realm has a SIP user).
    let r = register_udp(&sw, &ua, "alice", &[]);
    assert_eq!(r.status(), Some(401));
    let challenges = r.headers("WWW-Authenticate");
    assert!(
        challenges
            .iter()
            .any(|c| *c == format!("Bearer realm=\"{REALM}\"")),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Digest ") && c.contains("algorithm=SHA-256")),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Digest ") && c.contains("algorithm=MD5")),
        "{challenges:?}"
    );

    let tok = token("alice", &["--incoming"]);
    let auth = format!("Bearer {tok}");
    let r = register_udp(&sw, &ua, "alice", &[("Authorization", &auth)]);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let contacts = r.headers("Contact");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let e = expires_of(contacts[0]);
    assert!(
        e > 3000 && e <= 3600,
        "expires {e} within the default and the token's 3600 s"
    );

    let c = wait_status(&sw, "alice", "available", REPLY);
    let contact = &c["contacts"][0];
    assert_eq!(contact["transport"], "udp");
    assert_eq!(contact["source"], ua.local_addr().to_string());
    assert!(
        contact["uri"]
            .as_str()
            .unwrap()
            .contains(&ua.local_addr().to_string())
    );

    // Expires: 0 removes the binding; presence follows.
    let r = register_udp(
        &sw,
        &ua,
        "alice",
        &[
            ("Authorization", &auth),
            ("Expires", "0"),
            ("CSeq", "2 REGISTER"),
        ],
    );
    assert_eq!(r.status(), Some(200));
    assert!(r.headers("Contact").is_empty(), "no binding left");
    wait_status(&sw, "alice", "offline", REPLY);
}

#[test]
fn token_register_over_tcp_is_remembered_with_its_transport() {
    let sw = Switch::start();
    let mut conn = sw.tcp();
    let tok = token("bob", &["--incoming"]);
    let req = register(
        conn.local_addr(),
        "TCP",
        "bob",
        &[("Authorization", &format!("Bearer {tok}"))],
    );
    conn.send(&req);
    let r = conn.recv_msg(REPLY).expect("200 over TCP");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let c = wait_status(&sw, "bob", "available", REPLY);
    assert_eq!(c["contacts"][0]["transport"], "tcp");
    assert_eq!(c["contacts"][0]["source"], conn.local_addr().to_string());
}

/// A REGISTER for `user` over TCP on `conn`, with a bearer token; returns once it got 200.
fn register_tcp(sw: &Switch, conn: &mut harness::Tcp, user: &str) {
    let tok = token(user, &["--incoming"]);
    let req = register(
        conn.local_addr(),
        "TCP",
        user,
        &[("Authorization", &format!("Bearer {tok}"))],
    );
    conn.send(&req);
    let r = conn
        .recv_msg(REPLY)
        .unwrap_or_else(|| panic!("no answer over TCP\nstderr:\n{}", sw.stderr()));
    assert_eq!(r.status(), Some(200), "{}", r.text());
}

/// RFC 5626 §5.3: a binding made over a stream connection is that connection's flow and
/// ends with it; the client goes offline when it closes, not when the registration
/// would have expired (an hour).
#[test]
fn closing_the_tcp_connection_ends_its_binding_at_once() {
    let sw = Switch::start();
    let mut conn = sw.tcp();
    register_tcp(&sw, &mut conn, "dave");
    let c = wait_status(&sw, "dave", "available", REPLY);
    assert_eq!(c["contacts"][0]["transport"], "tcp");
    sw.wait_metric("registrar_bindings", 1, REPLY);

    drop(conn);
    let c = wait_status(&sw, "dave", "offline", REPLY);
    assert_eq!(c["contacts"], serde_json::json!([]), "{c}");
    sw.wait_metric("registrar_bindings", 0, REPLY);
}

/// Only what was registered over the closed connection ends: the same identity's UDP
/// binding, and another client's, stay.
#[test]
fn a_closed_tcp_connection_leaves_udp_bindings_alone() {
    let sw = Switch::start();
    let ua = sw.udp();
    let erin = format!("Bearer {}", token("erin", &["--incoming"]));
    let r = register_udp(&sw, &ua, "erin", &[("Authorization", &erin)]);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let other = sw.udp();
    let frank = format!("Bearer {}", token("frank", &["--incoming"]));
    let r = register_udp(&sw, &other, "frank", &[("Authorization", &frank)]);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    // erin also registers a second contact over TCP.
    let mut conn = sw.tcp();
    register_tcp(&sw, &mut conn, "erin");
    sw.wait_metric("registrar_bindings", 3, REPLY);
    let c = wait_status(&sw, "erin", "available", REPLY);
    assert_eq!(c["contacts"].as_array().map(Vec::len), Some(2), "{c}");

    drop(conn);
    // The close is handled once erin's TCP contact is gone; her UDP one is all that's left.
    sw.wait_metric("registrar_bindings", 2, REPLY);
    let c = client(&sw, "erin");
    assert_eq!(c["status"], "available", "{c}");
    let contacts = c["contacts"].as_array().expect("contacts");
    assert_eq!(contacts.len(), 1, "{c}");
    assert_eq!(contacts[0]["transport"], "udp");
    assert_eq!(contacts[0]["source"], ua.local_addr().to_string());
    assert_eq!(client(&sw, "frank")["status"], "available");
}

#[test]
fn the_binding_lapses_when_the_token_expires() {
    let sw = Switch::start();
    let ua = sw.udp();
    let tok = token("carol", &["--incoming", "--ttl", "3"]);
    let r = register_udp(
        &sw,
        &ua,
        "carol",
        &[("Authorization", &format!("Bearer {tok}"))],
    );
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let e = expires_of(r.headers("Contact")[0]);
    assert!(
        e <= 3,
        "a registration never outlives its token: expires={e}"
    );
    wait_status(&sw, "carol", "available", REPLY);
    wait_status(&sw, "carol", "offline", Duration::from_secs(15));
}

#[test]
fn bad_tokens_and_wrong_grants_get_the_exact_answers() {
    let sw = Switch::start();
    let ua = sw.udp();
    let auth = |t: &str| format!("Bearer {t}");

    // Garbage and a token with a broken signature: 401 invalid_token.
    let good = token("alice", &["--incoming"]);
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    for bad in ["not.a.jwt", tampered.as_str()] {
        let r = register_udp(&sw, &ua, "alice", &[("Authorization", &auth(bad))]);
        assert_eq!(r.status(), Some(401), "{bad}");
        assert!(
            r.headers("WWW-Authenticate")
                .iter()
                .any(|c| c.starts_with("Bearer") && c.contains("error=\"invalid_token\"")),
            "{:?}",
            r.headers("WWW-Authenticate")
        );
    }
    // A valid token without the incoming grant: 403.
    let outgoing_only = token("alice", &[]);
    let r = register_udp(
        &sw,
        &ua,
        "alice",
        &[("Authorization", &auth(&outgoing_only))],
    );
    assert_eq!(r.status(), Some(403), "{}", r.text());
    // A valid token for alice registering bob's AOR: 403.
    let r = register_udp(&sw, &ua, "bob", &[("Authorization", &auth(&good))]);
    assert_eq!(r.status(), Some(403), "{}", r.text());
    // Too brief an expiry: 423 with Min-Expires.
    let r = register_udp(
        &sw,
        &ua,
        "alice",
        &[("Authorization", &auth(&good)), ("Expires", "5")],
    );
    assert_eq!(r.status(), Some(423));
    assert_eq!(r.header("Min-Expires"), Some("60"));
    assert_eq!(
        client(&sw, "alice")["status"],
        "offline",
        "nothing was registered"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn digest_user_registers_as_its_identity() {
    let sw = Switch::start();
    let ua = sw.udp();
    let first = register(ua.local_addr(), "UDP", "alice", &[]);
    let r = send_udp(&sw, &ua, &first);
    assert_eq!(r.status(), Some(401));
    let md5 = r
        .headers("WWW-Authenticate")
        .into_iter()
        .find(|c| c.starts_with("Digest") && c.contains("algorithm=MD5"))
        .expect("an MD5 challenge")
        .to_string();
    let nonce = md5
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let uri = format!("sip:{REALM}");
    let answer = |password: &str, nc: &str| {
        let ha1 = hex(&Md5::digest(format!("alice:{REALM}:{password}")));
        let ha2 = hex(&Md5::digest(format!("REGISTER:{uri}")));
        let resp = hex(&Md5::digest(format!(
            "{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"
        )));
        format!(
            "Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\""
        )
    };
    // A wrong password gets the same 401 an unknown user would.
    let r = register_udp(
        &sw,
        &ua,
        "alice",
        &[
            ("Authorization", &answer("wrong", "00000001")),
            ("CSeq", "2 REGISTER"),
        ],
    );
    assert_eq!(r.status(), Some(401));
    let r = register_udp(
        &sw,
        &ua,
        "alice",
        &[
            ("Authorization", &answer("alice-secret", "00000002")),
            ("CSeq", "3 REGISTER"),
        ],
    );
    assert_eq!(r.status(), Some(200), "{}", r.text());
    wait_status(&sw, "alice", "available", REPLY);
    // The same nonce count again is a replay.
    let r = register_udp(
        &sw,
        &ua,
        "alice",
        &[
            ("Authorization", &answer("alice-secret", "00000002")),
            ("CSeq", "4 REGISTER"),
        ],
    );
    assert_eq!(r.status(), Some(401), "replayed nc");
}

#[test]
fn rest_api_authenticates_and_scopes_to_the_account() {
    let sw = Switch::start();
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Clients.json");
    assert_eq!(rest(&sw, &path, ACCOUNT, "wrong").0, 401);
    assert_eq!(rest(&sw, &path, "", "").0, 401);
    let other = "/2010-04-01/Accounts/AC0000000000000000000000000000ffff/Clients.json";
    assert_eq!(rest(&sw, other, ACCOUNT, AUTH_TOKEN).0, 404);
    let (status, body) = rest(&sw, &path, ACCOUNT, AUTH_TOKEN);
    assert_eq!(status, 200, "{body}");
    assert!(body["clients"].is_array());
    let (status, metrics) = {
        let mut s = TcpStream::connect(sw.http_addr()).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        (raw.split(' ').nth(1).unwrap().to_string(), raw)
    };
    assert_eq!(status, "200");
    assert!(metrics.contains("sip_register_total"), "{metrics}");
}

/// One HTTP request read off `listener` (head and Content-Length body), answered 200.
fn accept_one_post(
    listener: &std::net::TcpListener,
    within: Duration,
) -> (String, Vec<(String, String)>) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no presence callback arrived");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(REPLY)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let (head, body) = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before a full request");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                break (head.to_string(), body[..len].to_string());
            }
        }
    };
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let params = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    (head, params)
}

#[test]
fn presence_changes_reach_the_account_callback_signed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/presence",
        listener.local_addr().unwrap().port()
    );
    let conf = std::fs::read_to_string(harness::default_config()).unwrap();
    let with_callback = conf.replacen(
        "friendly_name = \"Demo account\"",
        &format!("friendly_name = \"Demo account\"\npresence_callback = \"{url}\""),
        1,
    );
    assert_ne!(
        conf, with_callback,
        "the sample config names the demo account"
    );
    let path =
        std::env::temp_dir().join(format!("{}.toml", harness::unique("switchboard-presence-")));
    std::fs::write(&path, &with_callback).unwrap();
    let sw = Switch::start_with_config(&path);
    let ua = sw.udp();
    let tok = token("dave", &["--incoming"]);
    let r = register_udp(
        &sw,
        &ua,
        "dave",
        &[("Authorization", &format!("Bearer {tok}"))],
    );
    assert_eq!(r.status(), Some(200), "{}", r.text());

    let (head, params) = accept_one_post(&listener, Duration::from_secs(10));
    assert!(head.starts_with("POST /presence HTTP/1.1"), "{head}");
    let signature = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-Twilio-Signature: ")
                .or_else(|| l.strip_prefix("x-twilio-signature: "))
        })
        .expect("X-Twilio-Signature header");
    assert!(
        switchboard::webhook::verify_twilio_signature(AUTH_TOKEN, &url, &params, signature),
        "signature must verify with the account's auth token: {head}\n{params:?}"
    );
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("AccountSid"), Some(ACCOUNT));
    assert_eq!(get("Identity"), Some("dave"));
    assert_eq!(get("Status"), Some("available"));
    let _ = std::fs::remove_file(&path);
}

/// A real softphone: baresip (libre) registers with Digest. libre aborts on any challenge
/// it cannot parse (Bearer, and SHA-256 in Debian's 1.0), which is what `[server]
/// challenges` is for; this test runs the configuration the README gives for it. CI
/// installs baresip; elsewhere the test says it was skipped.
#[test]
fn baresip_registers_with_digest() {
    let found = std::process::Command::new("baresip")
        .arg("-h")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have baresip installed (.ci/run installs it)"
        );
        eprintln!("SKIPPED: baresip is not installed (apt-get install baresip)");
        return;
    }
    let conf = std::fs::read_to_string(harness::default_config()).unwrap();
    let for_libre = conf.replacen(
        "challenges = [\"bearer\", \"digest-sha256\", \"digest-md5\"]",
        "challenges = [\"digest-md5\"]",
        1,
    );
    assert_ne!(conf, for_libre);
    let dir = std::env::temp_dir().join(harness::unique("switchboard-baresip-"));
    std::fs::create_dir_all(&dir).unwrap();
    let switch_conf = dir.join("switchboard.toml");
    std::fs::write(&switch_conf, for_libre).unwrap();
    let sw = Switch::start_with_config(&switch_conf);
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:alice@{REALM}>;auth_pass=alice-secret;outbound=\"sip:{}\";regint=600\n",
            sw.udp_addr()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("config"),
        "sip_listen 127.0.0.1:0\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
         module_app account.so\naudio_player none\naudio_source none\n",
    )
    .unwrap();
    let mut phone = std::process::Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start baresip");
    let c = wait_status(&sw, "alice", "available", Duration::from_secs(15));
    let _ = phone.kill();
    let _ = phone.wait();
    let ua = c["contacts"][0]["user_agent"].as_str().unwrap_or("");
    assert!(ua.starts_with("baresip"), "registered by baresip: {c}");
    assert_eq!(c["contacts"][0]["transport"], "udp");
    let _ = std::fs::remove_dir_all(&dir);
}
