//! Black-box call tests: the real binary, a real customer web app (`examples/customer_app`,
//! which checks X-Twilio-Signature on every request), a carrier and registered clients
//! speaking SIP over UDP from loopback sockets.
//!
//! The carrier is any loopback source (the sample config's trunk takes 127.0.0.0/8); the
//! number +15550100001 runs the application whose `voice_url` points at the customer app.
// Tests wait on the wall clock; only the switch's sans-IO core is barred from reading it.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::customer_app::{CustomerApp, param};
use harness::ua::{
    self, call_id_of, expect_request, in_dialog as carrier_in_dialog, no_request, register, token,
    token_with,
};
use harness::{Msg, Switch, Udp, request, sdp_offer};
use serde_json::Value;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "demo-auth-token-change-me";
const REALM: &str = "switchboard.local";
const NUMBER: &str = "+15550100001";
const WAIT: Duration = Duration::from_secs(5);

/// A config: the sample one with the application fetching from `voice_url` (and optional
/// extra application keys), webhooks timing out after 1 s.
fn config_with(voice_url: &str, app_extra: &str, trunk_extra: &str) -> PathBuf {
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let text = sample
        .lines()
        .map(|l| match l.starts_with("twiml = ") {
            true => format!("voice_url = \"{voice_url}\"\n{app_extra}"),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("connect_timeout_ms = 10000", "connect_timeout_ms = 1000")
        .replace("timeout_ms = 15000", "timeout_ms = 1000")
        .replace(
            "outbound_uri = \"sip:127.0.0.1:5080\"",
            &format!("outbound_uri = \"sip:127.0.0.1:5080\"\n{trunk_extra}"),
        );
    assert_ne!(text, sample, "the sample config changed shape");
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("calls")));
    std::fs::write(&path, text).unwrap();
    path
}

/// A carrier INVITE to `number` from `ua`.
fn carrier_invite(sw: &Switch, ua: &Udp, number: &str) -> String {
    ua::carrier_invite(sw, ua, number, &sdp_offer(ua.local_addr().ip()))
}

/// A UA's response, with an SDP offer of the UA's address as the body when `sdp`.
fn reply(
    req: &Msg,
    code: u16,
    reason: &str,
    to_tag: &str,
    contact: SocketAddr,
    sdp: bool,
) -> String {
    let body = sdp.then(|| sdp_offer(contact.ip()));
    ua::reply(req, code, reason, to_tag, contact, body.as_deref())
}

/// The same for the callee side: a BYE from the client to the switch.
fn callee_bye(invite: &Msg, our_to_tag: &str, ua: &Udp) -> String {
    let contact = invite.header("Contact").expect("Contact in INVITE");
    let target = contact.trim_start_matches('<').split('>').next().unwrap();
    let to = invite.header("To").unwrap();
    format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nMax-Forwards: 70\r\nFrom: {to};tag={our_to_tag}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        ua.local_addr(),
        harness::branch(),
        invite.header("From").unwrap(),
        invite.header("Call-ID").unwrap(),
    )
}

/// REST with Basic auth: (status, JSON).
fn rest(sw: &Switch, method: &str, path: &str, form: &str) -> (u16, Value) {
    let (status, body, _) = harness::rest::call_as(sw, ACCOUNT, AUTH_TOKEN, method, path, form);
    (status, body)
}

fn wait_call_status(sw: &Switch, sid: &str, want: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, call) = rest(sw, "GET", &format!("Calls/{sid}.json"), "");
        if code == 200 && call["status"] == want {
            return call;
        }
        assert!(
            Instant::now() < deadline,
            "call {sid} never became {want}: {call}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client_status(sw: &Switch, identity: &str) -> String {
    let (_, c) = rest(sw, "GET", &format!("Clients/{identity}.json"), "");
    c["status"].as_str().unwrap_or("").to_string()
}

fn wait_client_status(sw: &Switch, identity: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = client_status(sw, identity);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{identity} stays {now}, never {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const DIAL_ALICE: &str = r#"
[[route]]
path = "/voice"
body = '<Response><Dial action="/dial-done" timeout="10"><Client>alice</Client></Dial></Response>'
[[route]]
path = "/dial-done"
body = '<Response><Hangup/></Response>'
"#;

#[test]
fn a_carrier_call_reaches_a_registered_client_and_the_app_hears_how_it_went() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let alice = sw.udp();
    register(&alice, "alice");
    assert_eq!(client_status(&sw, "alice"), "available");

    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);

    // The app is asked first, with Twilio's parameters, signed.
    let first = app.wait_requests(1, WAIT);
    let voice = &first[0];
    assert_eq!(voice["path"], "/voice");
    assert_eq!(voice["signature_ok"], true, "{voice}");
    assert_eq!(param(voice, "To"), NUMBER);
    assert_eq!(param(voice, "From"), "+15557654321");
    assert_eq!(param(voice, "Direction"), "inbound");
    assert_eq!(param(voice, "CallStatus"), "ringing");
    assert_eq!(param(voice, "AccountSid"), ACCOUNT);
    assert_eq!(param(voice, "ApiVersion"), "2010-04-01");
    let call_sid = param(voice, "CallSid").to_string();
    assert!(
        call_sid.starts_with("CA") && call_sid.len() == 34,
        "{call_sid}"
    );

    // Alice's phone rings: Max-Forwards one less than the carrier's, and the switch's own
    // offer (the relay anchors the media): its address, an even port of `rtp_ports`.
    let inv = expect_request(&alice, "INVITE", WAIT);
    assert_eq!(inv.header("Max-Forwards"), Some("69"));
    let offer = String::from_utf8_lossy(&inv.body).to_string();
    assert!(offer.contains("c=IN IP4 127.0.0.1\r\n"), "{offer}");
    let port: u16 = offer
        .split("m=audio ")
        .nth(1)
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an audio stream");
    assert!(
        (20000..30000).contains(&port) && port.is_multiple_of(2),
        "relay port {port} in rtp_ports, even"
    );
    assert!(inv.header("From").unwrap().contains("+15557654321"));
    alice.send(reply(
        &inv,
        180,
        "Ringing",
        "alice1",
        alice.local_addr(),
        false,
    ));
    alice.send(reply(&inv, 200, "OK", "alice1", alice.local_addr(), true));

    // The carrier sees ringing, then the answer with alice's SDP.
    let cid = call_id_of(&invite);
    let (ok, provisional) = carrier.recv_final(&cid, WAIT).expect("2xx to the carrier");
    assert_eq!(
        ok.status(),
        Some(200),
        "{}",
        String::from_utf8_lossy(&ok.raw)
    );
    assert!(provisional.iter().any(|p| p.status() == Some(180)));
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio"));
    carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
    // The switch ACKs alice's 2xx itself.
    expect_request(&alice, "ACK", WAIT);
    wait_client_status(&sw, "alice", "busy");
    wait_call_status(&sw, &call_sid, "in-progress");

    std::thread::sleep(Duration::from_millis(1100));
    // The carrier hangs up: alice gets BYE; the app's action hears `completed`.
    let bye = carrier_in_dialog("BYE", &invite, &ok, &carrier, 2);
    carrier.send(&bye);
    let bye_ok = carrier.recv_final(&cid, WAIT).expect("200 to BYE").0;
    assert_eq!(bye_ok.status(), Some(200));
    let alice_bye = expect_request(&alice, "BYE", WAIT);
    alice.send(reply(
        &alice_bye,
        200,
        "OK",
        "alice1",
        alice.local_addr(),
        false,
    ));

    let reqs = app.wait_requests(2, WAIT);
    let done = &reqs[1];
    assert_eq!(done["path"], "/dial-done");
    assert_eq!(done["signature_ok"], true);
    assert_eq!(param(done, "DialCallStatus"), "completed");
    assert!(param(done, "DialCallSid").starts_with("CA"));
    assert!(param(done, "DialCallDuration").parse::<u64>().unwrap() >= 1);
    assert_eq!(param(done, "CallSid"), call_sid);

    let parent = wait_call_status(&sw, &call_sid, "completed");
    assert_eq!(parent["direction"], "inbound");
    let (_, list) = rest(
        &sw,
        "GET",
        &format!("Calls.json?ParentCallSid={call_sid}"),
        "",
    );
    let child = &list["calls"][0];
    assert_eq!(child["status"], "completed", "{list}");
    assert_eq!(child["direction"], "outbound-dial");
    assert_eq!(child["to"], "client:alice");
    wait_client_status(&sw, "alice", "available");
}

#[test]
fn dialing_an_offline_client_sends_no_invite_and_reports_no_answer() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let reqs = app.wait_requests(2, WAIT);
    let done = &reqs[1];
    assert_eq!(param(done, "DialCallStatus"), "no-answer");
    assert_eq!(param(done, "DialClientPresence"), "offline");
    assert_eq!(param(done, "DialCallDuration"), "0");
    // The action hung up a call that was never answered: the carrier gets a final answer.
    let cid = call_id_of(&invite);
    let (fin, _) = carrier.recv_final(&cid, WAIT).expect("final answer");
    assert!(fin.status().unwrap() >= 400);
}

#[test]
fn two_contacts_ring_the_first_answer_wins_and_the_other_is_cancelled() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let desk = sw.udp();
    let mobile = sw.udp();
    register(&desk, "alice");
    register(&mobile, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let on_desk = expect_request(&desk, "INVITE", WAIT);
    let on_mobile = expect_request(&mobile, "INVITE", WAIT);
    desk.send(reply(
        &on_desk,
        180,
        "Ringing",
        "desk",
        desk.local_addr(),
        false,
    ));
    mobile.send(reply(
        &on_mobile,
        180,
        "Ringing",
        "mob",
        mobile.local_addr(),
        false,
    ));
    mobile.send(reply(
        &on_mobile,
        200,
        "OK",
        "mob",
        mobile.local_addr(),
        true,
    ));
    // The desk phone is cancelled (same branch as its INVITE) and answers 200 + 487.
    let cancel = expect_request(&desk, "CANCEL", WAIT);
    assert_eq!(cancel.header("Via"), on_desk.header("Via"));
    desk.send(reply(&cancel, 200, "OK", "desk", desk.local_addr(), false));
    desk.send(reply(
        &on_desk,
        487,
        "Request Terminated",
        "desk",
        desk.local_addr(),
        false,
    ));
    expect_request(&desk, "ACK", WAIT);
    let cid = call_id_of(&invite);
    let (ok, _) = carrier.recv_final(&cid, WAIT).unwrap();
    assert_eq!(ok.status(), Some(200));
    carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
    expect_request(&mobile, "ACK", WAIT);
    // The mobile hangs up: the carrier gets BYE after the action's <Hangup/>.
    mobile.send(callee_bye(&on_mobile, "mob", &mobile));
    let reqs = app.wait_requests(2, WAIT);
    assert_eq!(param(&reqs[1], "DialCallStatus"), "completed");
    let bye = expect_request(&carrier, "BYE", WAIT);
    assert_eq!(bye.header("Call-ID").unwrap(), cid);
}

#[test]
fn the_caller_hanging_up_while_ringing_cancels_the_client() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let alice = sw.udp();
    register(&alice, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    alice.send(reply(&inv, 180, "Ringing", "a", alice.local_addr(), false));
    let cid = call_id_of(&invite);
    // Wait for the 180 to reach the carrier, then CANCEL.
    let deadline = Instant::now() + WAIT;
    loop {
        let m = carrier
            .recv_response_to(&cid, deadline.saturating_duration_since(Instant::now()))
            .expect("180");
        if m.status() == Some(180) {
            break;
        }
    }
    let cancel = harness::ack_for(&invite, &Msg::parse(invite.as_bytes()))
        .replacen("ACK", "CANCEL", 1)
        .replace(" ACK\r\n", " CANCEL\r\n");
    carrier.send(&cancel);
    let c = expect_request(&alice, "CANCEL", WAIT);
    alice.send(reply(&c, 200, "OK", "a", alice.local_addr(), false));
    alice.send(reply(
        &inv,
        487,
        "Request Terminated",
        "a",
        alice.local_addr(),
        false,
    ));
    let (fin, _) = carrier.recv_final(&cid, WAIT).unwrap();
    // The 200 for the CANCEL and the 487 for the INVITE share the Call-ID.
    let mut codes = vec![fin.status().unwrap()];
    if let Some((m, _)) = carrier.recv_final(&cid, WAIT) {
        codes.push(m.status().unwrap());
    }
    assert!(codes.contains(&487), "{codes:?}");
    let reqs = app.wait_requests(2, WAIT);
    assert_eq!(param(&reqs[1], "DialCallStatus"), "canceled");
    let sid = param(&reqs[0], "CallSid").to_string();
    wait_call_status(&sw, &sid, "canceled");
}

#[test]
fn reject_busy_answers_486_and_a_redirect_chain_is_followed() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Redirect>/step2</Redirect><Hangup/></Response>'
[[route]]
path = "/step2"
body = '<Response><Redirect method="GET">step3</Redirect></Response>'
[[route]]
path = "/step3"
body = '<Response><Reject reason="busy"/></Response>'
"#,
    );
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let cid = call_id_of(&invite);
    let (fin, _) = carrier.recv_final(&cid, WAIT).unwrap();
    assert_eq!(fin.status(), Some(486));
    carrier.send(harness::ack_for(&invite, &fin));
    let reqs = app.wait_requests(3, WAIT);
    let paths: Vec<_> = reqs
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["/voice", "/step2", "/step3"]);
    assert_eq!(reqs[2]["method"], "GET");
    assert!(reqs.iter().all(|r| r["signature_ok"] == true));
    wait_call_status(&sw, param(&reqs[0], "CallSid"), "busy");
}

#[test]
fn a_failing_webhook_takes_the_fallback_url_with_the_error() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
status = 500
body = 'oops'
[[route]]
path = "/fallback"
body = '<Response><Reject/></Response>'
"#,
    );
    let extra = format!("voice_fallback_url = \"{}\"", app.url("/fallback"));
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), &extra, ""));
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let cid = call_id_of(&invite);
    let (fin, _) = carrier.recv_final(&cid, WAIT).unwrap();
    assert_eq!(fin.status(), Some(603), "<Reject/> from the fallback");
    let reqs = app.wait_requests(2, WAIT);
    assert_eq!(reqs[1]["path"], "/fallback");
    assert_eq!(param(&reqs[1], "ErrorCode"), "11200");
    assert_eq!(param(&reqs[1], "ErrorUrl"), app.url("/voice"));
}

#[test]
fn a_webhook_timeout_or_malformed_xml_without_fallback_ends_the_call() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/slow"
delay_ms = 3000
body = '<Response><Hangup/></Response>'
[[route]]
path = "/broken"
body = '<Response><Dial>'
"#,
    );
    for path in ["/slow", "/broken"] {
        let sw = Switch::start_with_config(config_with(&app.url(path), "", ""));
        let carrier = sw.udp();
        let invite = carrier_invite(&sw, &carrier, NUMBER);
        carrier.send(&invite);
        let cid = call_id_of(&invite);
        // Twilio answers and plays "an application error has occurred", then hangs up.
        let (ok, _) = carrier.recv_final(&cid, WAIT).unwrap();
        assert_eq!(
            ok.status(),
            Some(200),
            "{path}: answered for the error prompt"
        );
        carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
        let bye = expect_request(&carrier, "BYE", Duration::from_secs(15));
        carrier.send(reply(&bye, 200, "OK", "x", carrier.local_addr(), false));
    }
}

#[test]
fn unknown_numbers_get_404() {
    let sw = Switch::start();
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, "+15550199999");
    carrier.send(&invite);
    let cid = call_id_of(&invite);
    let (fin, _) = carrier.recv_final(&cid, WAIT).unwrap();
    assert_eq!(fin.status(), Some(404));
}

#[test]
fn a_rest_call_rings_the_client_runs_twiml_and_hangs_up() {
    let sw = Switch::start();
    let alice = sw.udp();
    register(&alice, "alice");
    let form = "To=client%3Aalice&From=%2B15550100001&Twiml=%3CResponse%3E%3CPause+length%3D%221%22%2F%3E%3CHangup%2F%3E%3C%2FResponse%3E";
    let (code, call) = rest(&sw, "POST", "Calls.json", form);
    assert_eq!(code, 201, "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();
    let inv = expect_request(&alice, "INVITE", WAIT);
    assert!(inv.header("From").unwrap().contains("+15550100001"));
    alice.send(reply(&inv, 200, "OK", "r1", alice.local_addr(), true));
    expect_request(&alice, "ACK", WAIT);
    wait_call_status(&sw, &sid, "in-progress");
    let bye = expect_request(&alice, "BYE", Duration::from_secs(4));
    alice.send(reply(&bye, 200, "OK", "r1", alice.local_addr(), false));
    let done = wait_call_status(&sw, &sid, "completed");
    assert_eq!(done["direction"], "outbound-api");
    assert!(done["duration"].as_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[test]
fn dial_number_goes_out_through_the_trunk_and_answers_its_challenge() {
    let mut carrier_out = Udp::new("127.0.0.1:9".parse().unwrap());
    let trunk_addr = carrier_out.local_addr();
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial callerId="+15550100001" timeout="5">+4420700000</Dial></Response>'
"#,
    );
    let trunk = "username = \"switchboard\"\npassword = \"carrier-secret\"\nrealm = \"carrier.example.com\"";
    let cfg = config_with(&app.url("/voice"), "", trunk);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("sip:127.0.0.1:5080", &format!("sip:{trunk_addr}"));
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    carrier_out.set_peer(sw.udp_addr());
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let out = expect_request(&carrier_out, "INVITE", WAIT);
    assert!(
        out.start_line.starts_with("INVITE sip:+4420700000@"),
        "{}",
        out.start_line
    );
    assert!(out.header("From").unwrap().contains("+15550100001"));
    let challenge = "Proxy-Authenticate: Digest realm=\"carrier.example.com\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0";
    let resp = reply(
        &out,
        407,
        "Proxy Authentication Required",
        "c1",
        trunk_addr,
        false,
    )
    .replace("Content-Length: 0", challenge);
    carrier_out.send(resp);
    let ack = expect_request(&carrier_out, "ACK", WAIT);
    assert_eq!(ack.header("Call-ID"), out.header("Call-ID"));
    let again = expect_request(&carrier_out, "INVITE", WAIT);
    let auth = again.header("Proxy-Authorization").expect("credentials");
    assert!(
        auth.contains("username=\"switchboard\"") && auth.contains("realm=\"carrier.example.com\""),
        "{auth}"
    );
    assert_eq!(again.header("Call-ID"), out.header("Call-ID"));
    carrier_out.send(reply(&again, 486, "Busy Here", "c2", trunk_addr, false));
    let cid = call_id_of(&invite);
    let (fin, _) = carrier.recv_final(&cid, WAIT).unwrap();
    // No action: the document ends after a busy Dial; the caller hears busy.
    assert_eq!(fin.status(), Some(486));
    assert!(no_request(
        &carrier_out,
        "INVITE",
        Duration::from_millis(300)
    ));
}

/// A bridged call: alice answered the carrier; returns (carrier, alice, invite, 2xx to the
/// carrier, INVITE alice got).
fn bridged(sw: &Switch) -> (Udp, Udp, String, Msg, Msg) {
    let alice = sw.udp();
    register(&alice, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(sw, &carrier, NUMBER);
    carrier.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    alice.send(reply(&inv, 200, "OK", "alice1", alice.local_addr(), true));
    let cid = call_id_of(&invite);
    let (ok, _) = carrier.recv_final(&cid, WAIT).expect("2xx to the carrier");
    assert_eq!(ok.status(), Some(200));
    carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
    expect_request(&alice, "ACK", WAIT);
    (carrier, alice, invite, ok, inv)
}

#[test]
fn a_reinvite_for_hold_crosses_the_bridge_and_the_cdr_records_both_legs() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let cdr = std::env::temp_dir().join(format!("{}.jsonl", harness::unique("cdr")));
    let cfg = config_with(&app.url("/voice"), "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "# cdr_file = \"cdr.jsonl\"",
        &format!("cdr_file = \"{}\"", cdr.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    let (carrier, alice, invite, ok, _) = bridged(&sw);

    // The carrier puts the call on hold: the switch answers it (the relay anchors the
    // media) and passes the hold on to alice with a re-INVITE of its own.
    let hold_sdp = sdp_offer(carrier.local_addr().ip()).replace("a=sendrecv", "a=sendonly");
    let mut reinvite = carrier_in_dialog("INVITE", &invite, &ok, &carrier, 2);
    reinvite = reinvite.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:carrier@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold_sdp}",
            carrier.local_addr(),
            hold_sdp.len()
        ),
    );
    carrier.send(&reinvite);
    let at_alice = expect_request(&alice, "INVITE", WAIT);
    assert!(String::from_utf8_lossy(&at_alice.body).contains("a=sendonly"));
    assert!(at_alice.header("To").unwrap().contains("tag="), "in-dialog");
    let answer = reply(&at_alice, 200, "OK", "alice1", alice.local_addr(), true)
        .replace("a=sendrecv", "a=recvonly");
    alice.send(answer);
    // The switch ACKs alice's answer itself; the carrier has the switch's answer.
    expect_request(&alice, "ACK", WAIT);
    let cid = call_id_of(&invite);
    let (held, _) = carrier
        .recv_final(&cid, WAIT)
        .expect("answer to the re-INVITE");
    assert_eq!(held.status(), Some(200));
    assert!(held.header("CSeq").unwrap().starts_with("2 INVITE"));
    assert!(String::from_utf8_lossy(&held.body).contains("a=recvonly"));

    // Alice hangs up; the action's <Hangup/> ends the carrier's leg.
    let inv_at_alice_cid = at_alice.header("Call-ID").unwrap().to_string();
    let bye = format!(
        "BYE sip:switchboard@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {inv_at_alice_cid}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        sw.udp_addr(),
        alice.local_addr(),
        harness::branch(),
        at_alice.header("To").unwrap(),
        at_alice.header("From").unwrap(),
    );
    alice.send(bye);
    let bye_to_carrier = expect_request(&carrier, "BYE", WAIT);
    carrier.send(reply(
        &bye_to_carrier,
        200,
        "OK",
        "x",
        carrier.local_addr(),
        false,
    ));

    // Two CDR lines, parent and child, whole JSON, completed.
    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let text = std::fs::read_to_string(&cdr).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().all(|l| l["status"] == "completed"),
        "{lines:?}"
    );
    let child = lines
        .iter()
        .find(|l| l["direction"] == "outbound-dial")
        .unwrap();
    let parent = lines.iter().find(|l| l["direction"] == "inbound").unwrap();
    assert_eq!(child["parent_call_sid"], parent["sid"]);
    let _ = std::fs::remove_file(&cdr);

    // /metrics counts them too.
    let mut s = TcpStream::connect(sw.http_addr()).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut metrics = String::new();
    s.read_to_string(&mut metrics).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "calls_finished_total{status=\"completed\"} 2"),
        "{metrics}"
    );
    assert!(metrics.lines().any(|l| l == "calls_active 0"), "{metrics}");
}

#[test]
fn dial_timeout_cancels_the_ringing_client_and_reports_no_answer() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial action="/done" timeout="1"><Client>alice</Client></Dial></Response>'
[[route]]
path = "/done"
body = '<Response><Reject reason="busy"/></Response>'
"#,
    );
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let alice = sw.udp();
    register(&alice, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    alice.send(reply(&inv, 180, "Ringing", "a", alice.local_addr(), false));
    let cancel = expect_request(&alice, "CANCEL", WAIT);
    alice.send(reply(&cancel, 200, "OK", "a", alice.local_addr(), false));
    alice.send(reply(
        &inv,
        487,
        "Request Terminated",
        "a",
        alice.local_addr(),
        false,
    ));
    let reqs = app.wait_requests(2, WAIT);
    assert_eq!(param(&reqs[1], "DialCallStatus"), "no-answer");
    let cid = call_id_of(&invite);
    let (fin, _) = carrier.recv_final(&cid, WAIT).unwrap();
    assert_eq!(
        fin.status(),
        Some(486),
        "the action's <Reject reason=\"busy\"/>"
    );
}

#[test]
fn rest_modifies_a_live_call_with_new_twiml_and_hangs_another_up() {
    let sw = Switch::start();
    let alice = sw.udp();
    register(&alice, "alice");
    let pause = "To=client%3Aalice&From=%2B15550100001&Twiml=%3CResponse%3E%3CPause+length%3D%2230%22%2F%3E%3C%2FResponse%3E";
    for modify in [
        "Twiml=%3CResponse%3E%3CHangup%2F%3E%3C%2FResponse%3E",
        "Status=completed",
    ] {
        let (code, call) = rest(&sw, "POST", "Calls.json", pause);
        assert_eq!(code, 201, "{call}");
        let sid = call["sid"].as_str().unwrap().to_string();
        let inv = expect_request(&alice, "INVITE", WAIT);
        alice.send(reply(&inv, 200, "OK", "m", alice.local_addr(), true));
        expect_request(&alice, "ACK", WAIT);
        wait_call_status(&sw, &sid, "in-progress");
        let (code, body) = rest(&sw, "POST", &format!("Calls/{sid}.json"), modify);
        assert_eq!(code, 200, "{modify}: {body}");
        let bye = expect_request(&alice, "BYE", WAIT);
        alice.send(reply(&bye, 200, "OK", "m", alice.local_addr(), false));
        wait_call_status(&sw, &sid, "completed");
        // A finished call cannot be modified any more.
        let (code, _) = rest(
            &sw,
            "POST",
            &format!("Calls/{sid}.json"),
            "Status=completed",
        );
        assert_eq!(code, 400, "{modify}");
    }
}

/// Waits on a TCP connection for a request with this method.
fn expect_tcp_request(conn: &mut harness::Tcp, method: &str) -> Msg {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = conn
            .recv_msg(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("no {method} over TCP"));
        if m.method() == Some(method) {
            return m;
        }
    }
}

#[test]
fn a_client_registered_over_tcp_is_called_on_its_connection() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let mut alice = sw.tcp();
    let to = format!("<sip:alice@{REALM}>");
    let from = format!("{to};tag={}", harness::unique("f"));
    let auth = format!("Bearer {}", token("alice"));
    let reg = request(
        "REGISTER",
        &format!("sip:{REALM}"),
        alice.local_addr(),
        "TCP",
        &[("To", &to), ("From", &from), ("Authorization", &auth)],
        "",
    );
    alice.send(&reg);
    let ok = alice.recv_msg(WAIT).expect("REGISTER answered");
    assert_eq!(ok.status(), Some(200));

    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let inv = expect_tcp_request(&mut alice, "INVITE");
    assert!(
        inv.header("Via").unwrap().starts_with("SIP/2.0/TCP"),
        "{:?}",
        inv.header("Via")
    );
    assert!(inv.header("Contact").unwrap().contains("transport=tcp"));
    alice.send(reply(&inv, 200, "OK", "t1", alice.local_addr(), true));
    let (ok, _) = carrier.recv_final(&call_id_of(&invite), WAIT).expect("2xx");
    assert_eq!(ok.status(), Some(200));
    carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
    expect_tcp_request(&mut alice, "ACK");
    carrier.send(carrier_in_dialog("BYE", &invite, &ok, &carrier, 2));
    let bye = expect_tcp_request(&mut alice, "BYE");
    alice.send(reply(&bye, 200, "OK", "t1", alice.local_addr(), false));
    let reqs = app.wait_requests(2, WAIT);
    assert_eq!(param(&reqs[1], "DialCallStatus"), "completed");
}

#[test]
fn a_trunk_cannot_reach_another_accounts_number() {
    let cfg = config_with("http://127.0.0.1:9/voice", "", "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[[accounts]]
sid = "AC00000000000000000000000000000002"
auth_token = "other-tenant"

[[applications]]
sid = "AP00000000000000000000000000000002"
account = "AC00000000000000000000000000000002"
twiml = "<Response><Hangup/></Response>"

[[numbers]]
number = "+15550100002"
application = "AP00000000000000000000000000000002"
"#,
    );
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, "+15550100002");
    carrier.send(&invite);
    let (fin, _) = carrier.recv_final(&call_id_of(&invite), WAIT).unwrap();
    assert_eq!(fin.status(), Some(404), "the trunk belongs to AC…01");
}

#[test]
fn two_answers_at_once_the_late_one_is_acked_and_hung_up() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let desk = sw.udp();
    let mobile = sw.udp();
    register(&desk, "alice");
    register(&mobile, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let on_desk = expect_request(&desk, "INVITE", WAIT);
    let on_mobile = expect_request(&mobile, "INVITE", WAIT);
    // Both answer before either hears of the other.
    desk.send(reply(&on_desk, 200, "OK", "desk", desk.local_addr(), true));
    mobile.send(reply(
        &on_mobile,
        200,
        "OK",
        "mob",
        mobile.local_addr(),
        true,
    ));
    // Each 2xx is ACKed (RFC 3261 §13.2.2.4); exactly one of them is then hung up.
    let mut byes = 0;
    for ua in [&desk, &mobile] {
        expect_request(ua, "ACK", WAIT);
        if !no_request(ua, "BYE", Duration::from_millis(700)) {
            byes += 1;
        }
    }
    assert_eq!(byes, 1, "the late answer gets a BYE, the winner none");
    let (ok, _) = carrier.recv_final(&call_id_of(&invite), WAIT).unwrap();
    assert_eq!(ok.status(), Some(200));
}

#[test]
fn our_2xx_is_retransmitted_until_the_carrier_acks() {
    let app = CustomerApp::start(AUTH_TOKEN, DIAL_ALICE);
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let alice = sw.udp();
    register(&alice, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    alice.send(reply(&inv, 200, "OK", "a", alice.local_addr(), true));
    let cid = call_id_of(&invite);
    let (first, _) = carrier.recv_final(&cid, WAIT).unwrap();
    assert_eq!(first.status(), Some(200));
    // No ACK yet: T1 = 500 ms later the same 2xx comes again (RFC 3261 §13.3.1.4).
    let (again, _) = carrier
        .recv_final(&cid, Duration::from_secs(2))
        .expect("2xx again");
    assert_eq!(again.status(), Some(200));
    assert_eq!(again.header("To"), first.header("To"));
    carrier.send(carrier_in_dialog("ACK", &invite, &first, &carrier, 1));
    // After the ACK: at most one already in flight, then silence.
    let mut late = 0;
    let end = Instant::now() + Duration::from_millis(2500);
    while let Some(m) =
        carrier.recv_response_to(&cid, end.saturating_duration_since(Instant::now()))
    {
        if m.status() == Some(200) {
            late += 1;
        }
    }
    assert!(late <= 1, "2xx still retransmitted after the ACK ({late})");
}

#[test]
fn pause_answers_the_caller_and_a_later_dial_bridges_without_a_reinvite() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Pause length="1"/><Dial><Client>alice</Client></Dial></Response>'
"#,
    );
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let alice = sw.udp();
    register(&alice, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(&sw, &carrier, NUMBER);
    carrier.send(&invite);
    // Answered at once with the relay's media: the pause is silence from the switch.
    let (ok, _) = carrier.recv_final(&call_id_of(&invite), WAIT).unwrap();
    assert_eq!(ok.status(), Some(200));
    let answer = String::from_utf8_lossy(&ok.body).to_string();
    assert!(
        answer.contains("c=IN IP4 127.0.0.1") && answer.contains("a=sendrecv"),
        "{answer}"
    );
    carrier.send(carrier_in_dialog("ACK", &invite, &ok, &carrier, 1));
    let sid = param(&app.wait_requests(1, WAIT)[0], "CallSid").to_string();
    wait_call_status(&sw, &sid, "in-progress");

    // After the pause alice rings with the switch's offer, and answers. The carrier's
    // media already ends at the relay: it needs no re-INVITE.
    let inv = expect_request(&alice, "INVITE", WAIT);
    assert!(String::from_utf8_lossy(&inv.body).contains("a=sendrecv"));
    alice.send(reply(&inv, 200, "OK", "p1", alice.local_addr(), true));
    expect_request(&alice, "ACK", WAIT);
    assert!(no_request(&carrier, "INVITE", Duration::from_millis(500)));
    // The carrier hangs up: alice is hung up too.
    carrier.send(carrier_in_dialog("BYE", &invite, &ok, &carrier, 2));
    let bye = expect_request(&alice, "BYE", WAIT);
    alice.send(reply(&bye, 200, "OK", "p1", alice.local_addr(), false));
    wait_call_status(&sw, &sid, "completed");
}

#[test]
fn a_client_app_places_a_call_through_the_application_its_token_names() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial><Client>alice</Client></Dial></Response>'
"#,
    );
    let sw = Switch::start_with_config(config_with(&app.url("/voice"), "", ""));
    let alice = sw.udp();
    register(&alice, "alice");
    let bob = sw.udp();
    let ruri = format!("sip:+15551230000@{REALM}");
    let place = |auth: &str| {
        let from = format!("<sip:bob@{REALM}>;tag={}", harness::unique("b"));
        let req = request(
            "INVITE",
            &ruri,
            bob.local_addr(),
            "UDP",
            &[("From", &from), ("Authorization", auth)],
            &sdp_offer(bob.local_addr().ip()),
        );
        bob.send(&req);
        req
    };
    // A token without the outgoing grant may not place calls; a broken one is 401.
    let no_grant = place(&format!("Bearer {}", token_with("bob", &["--incoming"])));
    let (fin, _) = bob.recv_final(&call_id_of(&no_grant), WAIT).unwrap();
    assert_eq!(fin.status(), Some(403));
    bob.send(harness::ack_for(&no_grant, &fin));
    let broken = place("Bearer not.a.token");
    let (fin, _) = bob.recv_final(&call_id_of(&broken), WAIT).unwrap();
    assert_eq!(fin.status(), Some(401));
    assert!(
        fin.header("WWW-Authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    bob.send(harness::ack_for(&broken, &fin));

    let token = token_with("bob", &["--outgoing", "AP00000000000000000000000000000001"]);
    let invite = place(&format!("Bearer {token}"));
    let voice = &app.wait_requests(1, WAIT)[0];
    assert_eq!(voice["signature_ok"], true);
    assert_eq!(param(voice, "From"), "client:bob");
    assert_eq!(param(voice, "Caller"), "client:bob");
    assert_eq!(param(voice, "To"), "+15551230000");
    assert_eq!(param(voice, "Direction"), "inbound");
    assert_eq!(
        param(voice, "ApplicationSid"),
        "AP00000000000000000000000000000001"
    );
    let inv = expect_request(&alice, "INVITE", WAIT);
    assert!(
        inv.header("From").unwrap().contains("sip:bob@"),
        "{:?}",
        inv.header("From")
    );
    alice.send(reply(&inv, 200, "OK", "c1", alice.local_addr(), true));
    let (ok, _) = bob.recv_final(&call_id_of(&invite), WAIT).unwrap();
    assert_eq!(ok.status(), Some(200));
}

/// Past its setup backlog (`[calls] max_setups`) a new INVITE gets 503 with Retry-After
/// before any webhook work, and once the backlog clears calls are taken again.
#[test]
fn past_its_setup_backlog_a_new_invite_is_shed_with_503() {
    let app = CustomerApp::start(
        AUTH_TOKEN,
        r#"
[[route]]
path = "/voice"
body = '<Response><Dial timeout="20"><Client>alice</Client></Dial></Response>'
"#,
    );
    let path = config_with(&app.url("/voice"), "", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let shed = text.replace("max_setups = 250", "max_setups = 1");
    assert_ne!(shed, text, "the sample config has no max_setups");
    std::fs::write(&path, shed).unwrap();
    let sw = Switch::start_with_config(path);
    let alice = sw.udp();
    register(&alice, "alice");
    // The first call rings alice: it is being set up.
    let first = sw.udp();
    let invite = carrier_invite(&sw, &first, NUMBER);
    first.send(&invite);
    let inv = expect_request(&alice, "INVITE", WAIT);
    alice.send(reply(&inv, 180, "Ringing", "a", alice.local_addr(), false));
    assert_eq!(sw.metric("calls_setting_up"), 1);
    // The second is shed at once, before its webhook.
    let second = sw.udp();
    let invite2 = carrier_invite(&sw, &second, NUMBER);
    second.send(&invite2);
    let (fin, _) = second.recv_final(&call_id_of(&invite2), WAIT).unwrap();
    assert_eq!(fin.status(), Some(503));
    assert!(fin.header("Retry-After").is_some(), "{}", fin.text());
    assert_eq!(sw.metric("calls_shed_total"), 1);
    assert_eq!(app.requests().len(), 1, "the shed call fetched its webhook");
    // Alice answers: the first call is set up, and a third is taken again.
    alice.send(reply(&inv, 200, "OK", "a", alice.local_addr(), true));
    let (ok, _) = first.recv_final(&call_id_of(&invite), WAIT).unwrap();
    assert_eq!(ok.status(), Some(200));
    // The backlog slot is given back just after the 200 goes out.
    sw.wait_metric("calls_setting_up", 0, WAIT);
    let third = sw.udp();
    let invite3 = carrier_invite(&sw, &third, NUMBER);
    third.send(&invite3);
    let inv3 = expect_request(&alice, "INVITE", WAIT);
    assert_eq!(inv3.method(), Some("INVITE"));
    assert_eq!(sw.metric("calls_shed_total"), 1);
    assert_eq!(app.wait_requests(2, WAIT).len(), 2);
}
