//! Black-box tests of the secure and browser transports: SIP over TLS (RFC 3261 §26,
//! RFC 5630), over WebSocket and secure WebSocket (RFC 7118). The switch runs with a
//! certificate from `switchboard cert`; the clients trust only that certificate.
// Real sockets and a real process: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::ua::{REALM, call_id_of, carrier_invite, in_dialog, reply, token};
use harness::ws::{Upgrade, Ws};
use harness::{Switch, Tcp, request, sdp_offer};
use serde_json::Value;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const NUMBER: &str = "+15550100001";
const WAIT: Duration = Duration::from_secs(5);

/// A development certificate from `switchboard cert` and the sample config using it, with
/// WebSocket upgrades allowed from `https://app.example` only. (config, cert.pem)
fn secure_config() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(harness::unique("certs"));
    harness::dev_cert("switchboard.test", &dir);
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let text = sample.replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nws_origins = [\"https://app.example\"]\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
        1,
    );
    assert_ne!(text, sample, "the sample config has a [server] section");
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("secure")));
    std::fs::write(&path, text).unwrap();
    (path, dir.join("cert.pem"))
}

fn start() -> (Switch, PathBuf) {
    let (config, cert) = secure_config();
    let any = "127.0.0.1:0";
    let sw = Switch::start_with_args(&config, &["--sips", any, "--ws", any, "--wss", any]);
    (sw, cert)
}

fn client(sw: &Switch, identity: &str) -> Value {
    harness::rest::call_as(
        sw,
        ACCOUNT,
        AUTH_TOKEN,
        "GET",
        &format!("Clients/{identity}.json"),
        "",
    )
    .1
}

/// A REGISTER of `identity` as a browser sends it over a WebSocket (RFC 7118 §5: an
/// `.invalid` Via host and Contact).
fn ws_register(identity: &str, transport: &str) -> String {
    let host = "df7jal23ls0d.invalid";
    let to = format!("<sip:{identity}@{REALM}>");
    let from = format!("{to};tag={}", harness::unique("f"));
    let auth = format!("Bearer {}", token(identity));
    let tp = transport.to_ascii_uppercase();
    let via = format!("SIP/2.0/{tp} {host};branch={};rport", harness::branch());
    let contact = format!("<sip:{identity}@{host};transport={transport};ob>");
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nTo: {to}\r\nFrom: {from}\r\n\
         Call-ID: {}\r\nCSeq: 1 REGISTER\r\nContact: {contact}\r\nExpires: 600\r\n\
         Authorization: {auth}\r\nContent-Length: 0\r\n\r\n",
        harness::unique("ws")
    )
}

#[test]
fn a_client_over_tls_registers_and_is_called_on_its_connection() {
    let (sw, cert) = start();
    let mut alice = Tcp::connect_tls(sw.listening("sip/tls"), &cert);
    let to = format!("<sip:alice@{REALM}>");
    let from = format!("{to};tag={}", harness::unique("f"));
    let auth = format!("Bearer {}", token("alice"));
    let reg = request(
        "REGISTER",
        &format!("sip:{REALM}"),
        alice.local_addr(),
        "TLS",
        &[("To", &to), ("From", &from), ("Authorization", &auth)],
        "",
    );
    alice.send(&reg);
    let ok = alice.recv_msg(WAIT).expect("REGISTER answered over TLS");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let c = client(&sw, "alice");
    assert_eq!(c["status"], "available", "{c}");
    assert_eq!(c["contacts"][0]["transport"], "tls", "{c}");

    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER, &sdp_offer(carrier.local_addr().ip()));
    carrier.send(&invite);
    let inv = loop {
        let m = alice.recv_msg(WAIT).expect("an INVITE over TLS");
        if m.method() == Some("INVITE") {
            break m;
        }
    };
    assert!(
        inv.header("Via").unwrap().starts_with("SIP/2.0/TLS"),
        "{:?}",
        inv.header("Via")
    );
    assert!(inv.header("Contact").unwrap().contains("transport=tls"));
    let sdp = sdp_offer(std::net::IpAddr::from([127, 0, 0, 1]));
    alice.send(reply(&inv, 200, "OK", "a1", alice.local_addr(), Some(&sdp)));
    let (ok, _) = carrier.recv_final(&call_id_of(&invite), WAIT).expect("2xx");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 2));
    let bye = loop {
        let m = alice.recv_msg(WAIT).expect("a BYE over TLS");
        if m.method() == Some("BYE") {
            break m;
        }
    };
    alice.send(reply(&bye, 200, "OK", "a1", alice.local_addr(), None));
}

#[test]
fn a_browser_client_over_wss_registers_and_is_called_down_its_websocket() {
    let (sw, cert) = start();
    let mut page = Ws::connect(sw.listening("sip/wss"), Some(&cert), Upgrade::BROWSER)
        .expect("upgrade from the allowed Origin");
    page.send(ws_register("bob", "wss"));
    let ok = page.recv_msg(WAIT).expect("REGISTER answered over WSS");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert!(
        ok.header("Contact").unwrap().contains(".invalid"),
        "the binding keeps the browser's Contact: {}",
        ok.text()
    );
    let c = client(&sw, "bob");
    assert_eq!(c["contacts"][0]["transport"], "wss", "{c}");

    // A carrier call to a number dialling bob rings the page down its WebSocket.
    let config = std::fs::read_to_string(harness::default_config()).unwrap();
    assert!(config.contains("<Client>alice</Client>"));
    let mut alice_page =
        Ws::connect(sw.listening("sip/ws"), None, Upgrade::BROWSER).expect("plain ws upgrade");
    alice_page.send(ws_register("alice", "ws"));
    let ok = alice_page
        .recv_msg(WAIT)
        .expect("REGISTER answered over WS");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER, &sdp_offer(carrier.local_addr().ip()));
    carrier.send(&invite);
    let inv = alice_page.expect_request("INVITE", WAIT);
    assert!(
        inv.header("Via").unwrap().starts_with("SIP/2.0/WS "),
        "{:?}",
        inv.header("Via")
    );
    assert!(
        inv.text()
            .starts_with("INVITE sip:alice@df7jal23ls0d.invalid"),
        "{}",
        inv.text()
    );
    alice_page.send(reply(
        &inv,
        486,
        "Busy Here",
        "p1",
        alice_page.local_addr(),
        None,
    ));
    let (fin, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("final answer");
    assert_eq!(fin.status(), Some(486), "{}", fin.text());
}

#[test]
fn websocket_upgrades_need_the_sip_subprotocol_and_an_allowed_origin() {
    let (sw, cert) = start();
    let ws = sw.listening("sip/ws");
    let elsewhere = Upgrade {
        origin: Some("https://evil.example"),
        ..Upgrade::BROWSER
    };
    assert_eq!(Ws::connect(ws, None, elsewhere).err(), Some(403));
    let no_origin = Upgrade {
        origin: None,
        ..Upgrade::BROWSER
    };
    assert_eq!(Ws::connect(ws, None, no_origin).err(), Some(403));
    let no_sip = Upgrade {
        protocol: None,
        ..Upgrade::BROWSER
    };
    assert_eq!(Ws::connect(ws, None, no_sip).err(), Some(400));
    assert_eq!(
        Ws::connect(sw.listening("sip/wss"), Some(&cert), elsewhere).err(),
        Some(403)
    );
    assert!(Ws::connect(ws, None, Upgrade::BROWSER).is_ok());
}

#[test]
fn a_frame_that_is_not_sip_closes_the_websocket_and_bad_tls_leaves_the_switch_up() {
    let (mut sw, _cert) = start();
    let mut page = Ws::connect(sw.listening("sip/ws"), None, Upgrade::BROWSER).unwrap();
    page.send("hello, is this the switch?");
    let reason = page
        .closed_with(WAIT)
        .expect("the switch closes the connection");
    assert!(reason.contains("not a SIP message"), "{reason}");

    // A client that does not trust our certificate, and one that speaks no TLS at all.
    let other_dir = std::env::temp_dir().join(harness::unique("other-cert"));
    harness::dev_cert("other.test", &other_dir);
    let tcp = std::net::TcpStream::connect(sw.listening("sip/tls")).unwrap();
    let untrusted = harness::tls_over(tcp, harness::tls_client(&other_dir.join("cert.pem")));
    assert!(
        untrusted.is_err(),
        "a certificate we do not trust is refused"
    );
    let mut plain = Tcp::connect(sw.listening("sip/tls"));
    plain.send("REGISTER sip:x SIP/2.0\r\n\r\n");
    assert!(plain.closed_within(WAIT), "no TLS, no connection");
    sw.assert_alive("after bad TLS clients");
    let c = client(&sw, "tester");
    assert_eq!(c["status"], "offline", "nothing registered: {c}");
}

#[test]
fn a_renewed_certificate_is_served_after_sighup() {
    let (config, cert) = secure_config();
    let sw = Switch::start_with_args(&config, &["--sips", "127.0.0.1:0"]);
    let old = std::fs::read(&cert).unwrap();
    // Renew in place, as a certificate manager does, then tell the switch.
    let dir = cert.parent().unwrap();
    harness::dev_cert("renewed.test", dir);
    assert_ne!(std::fs::read(&cert).unwrap(), old, "a new certificate");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &sw.pid().to_string()])
        .status();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let tcp = std::net::TcpStream::connect(sw.listening("sip/tls")).unwrap();
        if harness::tls_over(tcp, harness::tls_client(&cert)).is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate is never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
