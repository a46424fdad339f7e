//! Black-box tenant isolation and abuse tests (issue 15): two accounts, each with its own
//! trunk, tried the way an attacker would.
//!
//! Account A is the sample config's (its trunk `carrier` takes 127.0.0.0/8); account B gets
//! a trunk `carrier-b` on 127.0.0.2/32 (the more specific block wins, so a carrier sending
//! from 127.0.0.2 is B's) and a number +15550100002. Outbound, each trunk points at its own
//! loopback UA, so a test sees which carrier a call left through.
// Tests wait on the wall clock; only the switch's sans-IO core is barred from reading it.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::rest::{call_as, form};
use harness::ua::{self, call_id_of, expect_request, no_request};
use harness::{Msg, Switch, Udp, sdp_offer};

const ACCOUNT_A: &str = "AC00000000000000000000000000000001";
const TOKEN_A: &str = "demo-auth-token-change-me";
const ACCOUNT_B: &str = "AC00000000000000000000000000000002";
const TOKEN_B: &str = "tenant-b-auth-token";
const NUMBER_B: &str = "+15550100002";
const WAIT: Duration = Duration::from_secs(5);

/// The two carriers' outbound sides (where each trunk's `outbound_uri` points).
struct Carriers {
    a_out: Udp,
    b_out: Udp,
}

impl Carriers {
    fn new() -> Carriers {
        let nowhere = "127.0.0.1:9".parse().unwrap();
        Carriers {
            a_out: Udp::new(nowhere),
            b_out: Udp::new(nowhere),
        }
    }
}

/// The sample config plus account B, its trunk, number and routes. `b_twiml` is what B's
/// number runs; `calls_extra` goes into `[calls]`; `extra` is appended.
fn two_tenants(c: &Carriers, b_twiml: &str, calls_extra: &str, extra: &str) -> PathBuf {
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let text = sample
        .replace(
            "outbound_uri = \"sip:127.0.0.1:5080\"",
            // A's carrier challenges with A's credentials: those must never answer for B.
            &format!(
                "outbound_uri = \"sip:{}\"\nusername = \"account-a\"\npassword = \"a-secret\"",
                c.a_out.local_addr()
            ),
        )
        .replace("allow_private_networks = []", calls_extra);
    assert_ne!(text, sample, "the sample config changed shape");
    let text = format!(
        r#"{text}
[[accounts]]
sid = "{ACCOUNT_B}"
auth_token = "{TOKEN_B}"

[[applications]]
sid = "AP00000000000000000000000000000002"
account = "{ACCOUNT_B}"
twiml = '{b_twiml}'

[[trunks]]
name = "carrier-b"
account = "{ACCOUNT_B}"
inbound_cidrs = ["127.0.0.2/32"]
outbound_uri = "sip:{b_out}"

[[numbers]]
number = "{NUMBER_B}"
application = "AP00000000000000000000000000000002"
trunk = "carrier-b"

[[routes]]
pattern = "+44"
trunk = "carrier-b"
{extra}"#,
        b_out = c.b_out.local_addr(),
    );
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("tenants")));
    std::fs::write(&path, text).unwrap();
    path
}

/// B's carrier (sending from 127.0.0.2) calls B's number; returns its socket and INVITE.
fn b_carrier_calls(sw: &Switch) -> (Udp, String) {
    let carrier = Udp::bind_on("127.0.0.2", sw.udp_addr());
    let invite = ua::carrier_invite(
        sw,
        &carrier,
        NUMBER_B,
        &sdp_offer(carrier.local_addr().ip()),
    );
    carrier.send(&invite);
    (carrier, invite)
}

/// A busy answer from a carrier UA to an INVITE it got.
fn busy(ua: &Udp, inv: &Msg) {
    ua.send(ua::reply(
        inv,
        486,
        "Busy Here",
        "busy1",
        ua.local_addr(),
        None,
    ));
}

/// Toll fraud: B's `<Dial><Number>` to a number only A has a route for, and B's REST call
/// to it, never leave through A's trunk (nor answer A's carrier with A's credentials); B's
/// own route still works.
#[test]
fn one_account_never_dials_out_through_another_accounts_trunk() {
    let mut c = Carriers::new();
    let cfg = two_tenants(
        &c,
        r#"<Response><Dial timeout="3">+19005550100</Dial><Dial timeout="3">+442070000000</Dial></Response>"#,
        "allow_private_networks = []",
        "",
    );
    let sw = Switch::start_with_config(&cfg);
    c.a_out.set_peer(sw.udp_addr());
    c.b_out.set_peer(sw.udp_addr());

    let (carrier, invite) = b_carrier_calls(&sw);
    // The first Dial has no route of B's: it fails at once, and the second goes out
    // through B's own trunk.
    let out = expect_request(&c.b_out, "INVITE", WAIT);
    assert!(
        out.start_line.starts_with("INVITE sip:+442070000000@"),
        "{}",
        out.start_line
    );
    busy(&c.b_out, &out);
    let (fin, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("final");
    assert_eq!(fin.status(), Some(486));
    assert!(
        no_request(&c.a_out, "INVITE", Duration::from_millis(300)),
        "B's call left through A's trunk"
    );

    // B's REST call to the same number: refused at once (400, 21215: no route of B's);
    // A's carrier sees nothing.
    let (code, call, _) = call_as(
        &sw,
        ACCOUNT_B,
        TOKEN_B,
        "POST",
        "Calls.json",
        &form(&[
            ("To", "+19005550101"),
            ("From", NUMBER_B),
            ("Twiml", "<Response/>"),
        ]),
    );
    assert_eq!(code, 400, "{call}");
    assert_eq!(call["code"], 21215, "{call}");
    assert!(
        no_request(&c.a_out, "INVITE", Duration::from_millis(300)),
        "B's REST call left through A's trunk"
    );

    // A itself still dials out through its own trunk (the control).
    let (code, call, _) = call_as(
        &sw,
        ACCOUNT_A,
        TOKEN_A,
        "POST",
        "Calls.json",
        &form(&[
            ("To", "+19005550102"),
            ("From", "+15550100001"),
            ("Twiml", "<Response/>"),
        ]),
    );
    assert_eq!(code, 201, "{call}");
    let out = expect_request(&c.a_out, "INVITE", WAIT);
    assert!(out.start_line.starts_with("INVITE sip:+19005550102@"));
    busy(&c.a_out, &out);
}

/// `switchboard check` refuses a route of account B that names A's trunk, at the line of
/// its `account`.
#[test]
fn check_refuses_a_route_naming_another_accounts_trunk() {
    let c = Carriers::new();
    let cfg = two_tenants(
        &c,
        "<Response/>",
        "allow_private_networks = []",
        &format!(
            "\n[[routes]]\npattern = \"+1900\"\ntrunk = \"carrier\"\naccount = \"{ACCOUNT_B}\"\n"
        ),
    );
    let out = harness::switchboard()
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let line = lines
        .iter()
        .rposition(|l| *l == format!("account = \"{ACCOUNT_B}\""))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            ":{line}:11: route of account {ACCOUNT_B} names trunk `carrier` of account {ACCOUNT_A}"
        )),
        "{err}"
    );
}

/// A SIP destination at a private address (REST `To=sip:…`, `<Dial><Sip>`) is refused
/// unless `[calls] allow_private_networks` allows its range.
#[test]
fn private_sip_destinations_are_refused_unless_allowed() {
    for allowed in [false, true] {
        let mut c = Carriers::new();
        let pbx = Udp::new("127.0.0.1:9".parse().unwrap());
        // The Sip dial first, then a number through B's trunk: once B's carrier sees the
        // INVITE, the Sip dial is over.
        let twiml = format!(
            r#"<Response><Dial timeout="2"><Sip>sip:pbx@{}</Sip></Dial><Dial timeout="3">+442070000000</Dial></Response>"#,
            pbx.local_addr()
        );
        let calls = if allowed {
            r#"allow_private_networks = ["127.0.0.0/8"]"#
        } else {
            "allow_private_networks = []"
        };
        let cfg = two_tenants(&c, &twiml, calls, "");
        let sw = Switch::start_with_config(&cfg);
        c.b_out.set_peer(sw.udp_addr());

        let (_carrier, _invite) = b_carrier_calls(&sw);
        if allowed {
            let inv = expect_request(&pbx, "INVITE", WAIT);
            assert!(inv.start_line.starts_with("INVITE sip:pbx@127.0.0.1:"));
            let mut pbx = pbx;
            pbx.set_peer(sw.udp_addr());
            busy(&pbx, &inv);
        } else {
            let out = expect_request(&c.b_out, "INVITE", WAIT);
            busy(&c.b_out, &out);
            assert!(
                no_request(&pbx, "INVITE", Duration::from_millis(200)),
                "<Dial><Sip> reached a loopback address"
            );
        }

        for to in ["sip:x@127.0.0.3:5999", "sip:x@169.254.169.254"] {
            let (code, body, _) = call_as(
                &sw,
                ACCOUNT_B,
                TOKEN_B,
                "POST",
                "Calls.json",
                &form(&[("To", to), ("From", NUMBER_B), ("Twiml", "<Response/>")]),
            );
            let link_local = to.contains("169.254");
            if allowed && !link_local {
                assert_eq!(code, 201, "{to}: {body}");
            } else {
                assert_eq!(code, 400, "{to}: {body}");
                assert_eq!(body["code"], 21215, "{body}");
                let msg = body["message"].as_str().unwrap();
                assert!(msg.contains("calls.allow_private_networks"), "{msg}");
            }
        }
    }
}

/// Every response `ua` receives within `window`.
fn responses_within(ua: &Udp, window: Duration) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match ua.recv(left.max(Duration::from_millis(1))) {
            Some(b) => got.push(b),
            None => break,
        }
    }
    got
}

/// A refused INVITE from a source no trunk vouches for draws exactly one answer, no larger
/// than the INVITE, however long nobody ACKs it (a spoofed source gets no 12x reflection);
/// a retransmission draws one more. From a trunk the same refusal is a transaction and is
/// resent until the ACK (the control: the test sees retransmissions when there are any).
/// A REGISTER challenge to an unverified source is trimmed to the request's size.
#[test]
fn refusals_to_unverified_sources_are_one_answer_no_larger_than_the_request() {
    let c = Carriers::new();
    let cfg = two_tenants(&c, "<Response/>", "allow_private_networks = []", "");
    // Only 127.0.0.3 is A's trunk now, so 127.0.0.1 is nobody's; T1 = 100 ms makes Timer G
    // resend at 100, 300, 700 and 1500 ms.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "inbound_cidrs = [\"127.0.0.0/8\"]",
            "inbound_cidrs = [\"127.0.0.3/32\"]",
        )
        .replace("t1_ms = 500", "t1_ms = 100");
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    let window = Duration::from_millis(1800);

    let stranger = sw.udp();
    let invite = ua::carrier_invite(
        &sw,
        &stranger,
        "+15550100001",
        &sdp_offer(stranger.local_addr().ip()),
    );
    stranger.send(&invite);
    let got = responses_within(&stranger, window);
    assert_eq!(
        got.len(),
        1,
        "one answer, not a transaction's retransmissions"
    );
    let answer = Msg::parse(&got[0]);
    assert_eq!(answer.status(), Some(403), "{}", answer.text());
    assert!(
        got[0].len() <= invite.len(),
        "{} > {}",
        got[0].len(),
        invite.len()
    );
    stranger.send(&invite);
    let again = responses_within(&stranger, window);
    assert_eq!(again.len(), 1, "a retransmission: one more");
    // RFC 3261 §8.2.7: a stateless answer to a retransmission carries the same To tag.
    assert!(answer.to_tag().is_some());
    assert_eq!(Msg::parse(&again[0]).to_tag(), answer.to_tag());

    // The control: B's trunk (127.0.0.2) calling a number that is not B's is refused by a
    // server transaction, resent until the ACK that never comes.
    let trunk = Udp::bind_on("127.0.0.2", sw.udp_addr());
    let invite = ua::carrier_invite(
        &sw,
        &trunk,
        "+15550100999",
        &sdp_offer(trunk.local_addr().ip()),
    );
    trunk.send(&invite);
    let finals: Vec<u16> = responses_within(&trunk, window)
        .iter()
        .filter_map(|b| Msg::parse(b).status())
        .filter(|s| *s >= 200)
        .collect();
    assert!(
        finals.len() >= 3 && finals.iter().all(|s| *s == 404),
        "{finals:?}"
    );

    // A REGISTER without credentials: the 401 names at least the first scheme (Bearer) and
    // is no larger than the request.
    let register = |extra: &str| {
        format!(
            "REGISTER sip:switchboard.local SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nMax-Forwards: 70\r\nFrom: <sip:mallory@switchboard.local>;tag={}\r\nTo: <sip:mallory@switchboard.local>\r\nCall-ID: {}\r\nCSeq: 1 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n",
            stranger.local_addr(),
            harness::branch(),
            harness::unique("t"),
            harness::unique("c"),
        )
    };
    let req = register(&format!(
        "Contact: <sip:mallory@{}>\r\nExpires: 3600\r\nUser-Agent: softphone/1.0\r\n",
        stranger.local_addr()
    ));
    stranger.send(&req);
    let got = responses_within(&stranger, Duration::from_millis(500));
    assert_eq!(got.len(), 1);
    let challenge = Msg::parse(&got[0]);
    assert_eq!(challenge.status(), Some(401));
    assert!(
        got[0].len() <= req.len(),
        "{} > {}",
        got[0].len(),
        req.len()
    );
    let schemes = challenge.headers("WWW-Authenticate");
    assert!(schemes[0].starts_with("Bearer"), "{schemes:?}");
    // A bare REGISTER smaller than any possible 401 gets none, and it is counted.
    let before = sw.metric("sip_messages_dropped_total{class=\"amplification\"}");
    stranger.send(register(""));
    assert!(responses_within(&stranger, Duration::from_millis(500)).is_empty());
    assert_eq!(
        sw.metric("sip_messages_dropped_total{class=\"amplification\"}"),
        before + 1
    );
}

/// A client identity over its concurrent-call limit gets 503 with Retry-After while the
/// other account's carrier call goes through; an account past its creation rate gets 429
/// from REST.
#[test]
fn an_identity_over_its_limit_gets_503_and_another_account_is_untouched() {
    let mut c = Carriers::new();
    let cfg = two_tenants(
        &c,
        r#"<Response><Dial timeout="3">+442070000000</Dial></Response>"#,
        "allow_private_networks = []",
        "",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("identity_max_calls = 4", "identity_max_calls = 1")
        .replace(
            &format!("auth_token = \"{TOKEN_B}\""),
            &format!("auth_token = \"{TOKEN_B}\"\ncalls_per_second = 1"),
        );
    std::fs::write(&cfg, text).unwrap();
    let sw = Switch::start_with_config(&cfg);
    c.b_out.set_peer(sw.udp_addr());

    // alice is registered with A; bob, a client app of A, calls through A's application
    // (which rings alice) and she lets it ring.
    let alice = sw.udp();
    ua::register(&alice, "alice");
    let bob = sw.udp();
    let token = ua::token_with("bob", &["--outgoing", "AP00000000000000000000000000000001"]);
    let place = || {
        let from = format!("<sip:bob@switchboard.local>;tag={}", harness::unique("b"));
        let auth = format!("Bearer {token}");
        let req = harness::request(
            "INVITE",
            "sip:+15551230000@switchboard.local",
            bob.local_addr(),
            "UDP",
            &[("From", &from), ("Authorization", &auth)],
            &sdp_offer(bob.local_addr().ip()),
        );
        bob.send(&req);
        req
    };
    let first = place();
    let ringing = expect_request(&alice, "INVITE", WAIT);
    let second = place();
    let (fin, _) = bob
        .recv_final(&call_id_of(&second), WAIT)
        .expect("an answer");
    assert_eq!(fin.status(), Some(503), "{}", fin.text());
    assert!(fin.text().contains("Client Call Limit"), "{}", fin.text());
    assert!(fin.header("Retry-After").is_some());
    bob.send(harness::ack_for(&second, &fin));
    assert_eq!(
        sw.metric("calls_refused_total{limit=\"identity_max_calls\"}"),
        1
    );

    // Account B's carrier call is not affected.
    let (carrier, invite) = b_carrier_calls(&sw);
    let out = expect_request(&c.b_out, "INVITE", WAIT);
    busy(&c.b_out, &out);
    let (fin, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("final");
    assert_eq!(fin.status(), Some(486));

    // B's REST: one call a second; the second at once gets 429 with Retry-After.
    let create = || {
        call_as(
            &sw,
            ACCOUNT_B,
            TOKEN_B,
            "POST",
            "Calls.json",
            &form(&[
                ("To", "+442070000001"),
                ("From", NUMBER_B),
                ("Twiml", "<Response/>"),
            ]),
        )
    };
    let (code, body, _) = create();
    assert_eq!(code, 201, "{body}");
    let (code, body, head) = create();
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["code"], 20429);
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    drop((first, ringing));
}

/// Registers alice from `ua` with `contact` as her Contact (a bearer token).
fn register_with_contact(ua: &Udp, contact: &str) {
    let to = "<sip:alice@switchboard.local>".to_string();
    let from = format!("{to};tag={}", harness::unique("f"));
    let auth = format!("Bearer {}", ua::token("alice"));
    let req = harness::request(
        "REGISTER",
        "sip:switchboard.local",
        ua.local_addr(),
        "UDP",
        &[
            ("To", &to),
            ("From", &from),
            ("Authorization", &auth),
            ("Contact", contact),
        ],
        "",
    );
    ua.send(&req);
    let (resp, _) = ua.recv_final(&call_id_of(&req), WAIT).expect("answered");
    assert_eq!(resp.status(), Some(200), "{}", resp.text());
}

/// A UDP client's Contact on another host than the one it registered from is not called
/// there (a Contact must not aim the switch at a third party): the INVITE goes to where
/// the REGISTER came from. A Contact on the same host, another port, is called as given.
#[test]
fn a_client_is_called_on_its_own_host_never_at_a_third_party() {
    for same_host in [false, true] {
        let sw = Switch::start();
        let alice = sw.udp();
        let target = if same_host {
            Udp::new(sw.udp_addr())
        } else {
            Udp::bind_on("127.0.0.3", sw.udp_addr())
        };
        register_with_contact(&alice, &format!("<sip:alice@{}>", target.local_addr()));
        let carrier = sw.udp();
        let invite = ua::carrier_invite(
            &sw,
            &carrier,
            "+15550100001",
            &sdp_offer(carrier.local_addr().ip()),
        );
        carrier.send(&invite);
        let (called, spared) = if same_host {
            (&target, &alice)
        } else {
            (&alice, &target)
        };
        let inv = expect_request(called, "INVITE", WAIT);
        assert!(
            inv.start_line
                .contains(&format!("sip:alice@{}", target.local_addr())),
            "{}",
            inv.start_line
        );
        assert!(
            no_request(spared, "INVITE", Duration::from_millis(300)),
            "same_host={same_host}: the INVITE went to the wrong place"
        );
    }
}
