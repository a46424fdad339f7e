//! Black-box drain tests: SIGTERM refuses new calls (INVITE, OPTIONS and /health say 503),
//! lets the calls in progress finish within `[cluster] drain_grace_secs`, hangs up the rest,
//! and exits 0. Mostly on a cluster node (a real `redis-server`), as a load balancer sees
//! one; the in-dialog, REGISTER, REST and SIGINT cases on a single switch (memory store).
// Real processes: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::time::{Duration, Instant};

use harness::cluster::{ACCOUNT, AUTH_TOKEN, NUMBER, WAIT, call_up, cluster_config, node};
use harness::redis::Redis;
use harness::request;
use harness::ua::{call_id_of, carrier_invite, in_dialog, reply};

#[test]
fn sigterm_drains_new_calls_get_503_the_call_up_finishes_then_exit_0() {
    let redis = Redis::start();
    let (config, _) = cluster_config(&redis, "");
    let mut a = node(&config, "a");
    let (carrier, alice, invite, ok, _) = call_up(&a);

    a.terminate();
    // Seen by a load balancer: /health and OPTIONS say 503.
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, h, _) = harness::rest::http(&a, "GET", "/health", "", "", "");
        if code == 503 {
            assert_eq!(h["status"], "draining", "{h}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/health never says draining: {h}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let probe = a.udp();
    let options = request(
        "OPTIONS",
        &format!("sip:{}", a.udp_addr()),
        probe.local_addr(),
        "UDP",
        &[],
        "",
    );
    probe.send(&options);
    let (resp, _) = probe
        .recv_final(&call_id_of(&options), WAIT)
        .expect("OPTIONS answered");
    assert_eq!(resp.status(), Some(503), "{}", resp.text());
    assert!(resp.header("Retry-After").is_some(), "{}", resp.text());
    // A new call goes elsewhere.
    let other = a.udp();
    let second = carrier_invite(
        &a,
        &other,
        NUMBER,
        &harness::sdp_offer(other.local_addr().ip()),
    );
    other.send(&second);
    let (resp, _) = other
        .recv_final(&call_id_of(&second), WAIT)
        .expect("INVITE answered");
    assert_eq!(resp.status(), Some(503), "{}", resp.text());
    assert!(resp.header("Retry-After").is_some(), "{}", resp.text());
    assert!(
        a.exited().is_none(),
        "the call in progress holds the node up"
    );

    // The call in progress goes on and ends normally; then the node exits 0.
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 2));
    let (bye_ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("200 to BYE");
    assert_eq!(bye_ok.status(), Some(200));
    let bye = harness::ua::expect_request(&alice, "BYE", WAIT);
    alice.send(reply(&bye, 200, "OK", "alice1", alice.local_addr(), None));
    let status = a
        .wait_exit(Duration::from_secs(10))
        .expect("exits after its last call");
    assert!(status.success(), "{status}");
}

#[test]
fn a_drain_grace_that_runs_out_hangs_up_the_calls_left_and_exits_0() {
    let redis = Redis::start();
    let (config, _) = cluster_config(&redis, "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "drain_grace_secs = 30",
        "drain_grace_secs = 1",
        1,
    );
    assert!(text.contains("drain_grace_secs = 1"));
    std::fs::write(&config, text).unwrap();
    let mut a = node(&config, "a");
    let (carrier, alice, _, _, _) = call_up(&a);

    a.terminate();
    let bye = harness::ua::expect_request(&carrier, "BYE", WAIT);
    carrier.send(reply(&bye, 200, "OK", "x", carrier.local_addr(), None));
    let bye = harness::ua::expect_request(&alice, "BYE", WAIT);
    alice.send(reply(&bye, 200, "OK", "alice1", alice.local_addr(), None));
    let status = a
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the grace");
    assert!(status.success(), "{status}");
}

/// Waits until `/health` answers 503 `draining` (SIGTERM seen), keeping its other fields.
fn wait_draining(sw: &harness::Switch) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, h, _) = harness::rest::http(sw, "GET", "/health", "", "", "");
        if code == 503 {
            assert_eq!(h["status"], "draining", "{h}");
            assert_eq!(h["store"], "up", "{h}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/health never says draining: {h}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_single_switch_draining_keeps_reinvites_and_register_and_refuses_rest_calls() {
    // The sample config as is: one switch, the memory store.
    let mut sw = harness::Switch::start();
    let (carrier, alice, invite, ok, _) = call_up(&sw);

    sw.terminate();
    wait_draining(&sw);

    // The call in progress goes on: a hold re-INVITE crosses the bridge and is answered.
    let hold = harness::sdp_offer(carrier.local_addr().ip()).replace("a=sendrecv", "a=sendonly");
    let reinvite = in_dialog("INVITE", &invite, &ok, &carrier, 2).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:carrier@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold}",
            carrier.local_addr(),
            hold.len()
        ),
    );
    carrier.send(&reinvite);
    let at_alice = harness::ua::expect_request(&alice, "INVITE", WAIT);
    let answer = harness::sdp_offer(alice.local_addr().ip()).replace("a=sendrecv", "a=recvonly");
    alice.send(reply(
        &at_alice,
        200,
        "OK",
        "alice1",
        alice.local_addr(),
        Some(&answer),
    ));
    harness::ua::expect_request(&alice, "ACK", WAIT);
    let (held, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("answer to the re-INVITE");
    assert_eq!(held.status(), Some(200), "{}", held.text());
    assert!(held.header("CSeq").unwrap().starts_with("2 INVITE"));
    carrier.send(in_dialog("ACK", &invite, &held, &carrier, 2));

    // REGISTER still works: clients move on their own once the switch is gone.
    let bob = sw.udp();
    harness::ua::register(&bob, "bob");

    // A call placed through REST goes elsewhere too.
    let form = harness::rest::form(&[
        ("To", "client:bob"),
        ("From", "+15557654321"),
        ("Twiml", "<Response><Hangup/></Response>"),
    ]);
    let (code, body, head) =
        harness::rest::call_as(&sw, ACCOUNT, AUTH_TOKEN, "POST", "Calls.json", &form);
    assert_eq!(code, 503, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    assert!(
        sw.exited().is_none(),
        "the call in progress holds the switch up"
    );

    // The call ends normally; then the switch exits 0.
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 3));
    let (bye_ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("200 to BYE");
    assert_eq!(bye_ok.status(), Some(200));
    let bye = harness::ua::expect_request(&alice, "BYE", WAIT);
    alice.send(reply(&bye, 200, "OK", "alice1", alice.local_addr(), None));
    let status = sw
        .wait_exit(Duration::from_secs(10))
        .expect("exits after its last call");
    assert!(status.success(), "{status}");
}

#[test]
fn sigint_during_a_drain_stops_at_once() {
    // Grace 30 s (the sample's); the test gives up on the exit well before that.
    let mut sw = harness::Switch::start();
    let _call = call_up(&sw);

    sw.terminate();
    wait_draining(&sw);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &sw.pid().to_string()])
        .status();
    let status = sw
        .wait_exit(Duration::from_secs(10))
        .expect("SIGINT ends the drain");
    assert!(status.success(), "{status}");
}
