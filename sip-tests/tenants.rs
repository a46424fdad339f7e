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

fn wait_status(sw: &Switch, account: &str, token: &str, sid: &str, want: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (code, call, _) = call_as(sw, account, token, "GET", &format!("Calls/{sid}.json"), "");
        if code == 200 && call["status"] == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "call {sid} never became {want}: {call}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

    // B's REST call to the same number: accepted (as Twilio would), then failed for want
    // of a route of B's; A's carrier sees nothing.
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
    assert_eq!(code, 201, "{call}");
    let sid = call["sid"].as_str().unwrap().to_string();
    wait_status(&sw, ACCOUNT_B, TOKEN_B, &sid, "failed");
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
