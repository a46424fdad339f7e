//! Black-box drain tests: SIGTERM refuses new calls (INVITE, OPTIONS and /health say 503),
//! lets the calls in progress finish within `[cluster] drain_grace_secs`, hangs up the rest,
//! and exits 0. Run on a cluster node (a real `redis-server`), as a load balancer sees one.
// Real processes: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::time::{Duration, Instant};

use harness::cluster::{NUMBER, WAIT, call_up, cluster_config, node};
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
