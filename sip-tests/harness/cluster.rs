//! A cluster for the black-box tests: the sample config on a test `Redis` under a fresh
//! key prefix, nodes started with `--node`, and what every node reports.
// Waits read the real clock.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Switch;
use super::redis::Redis;
use super::ua::{call_id_of, carrier_invite, in_dialog, reply};
use super::{Msg, Udp};

pub const ACCOUNT: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "demo-auth-token-change-me";
pub const NUMBER: &str = "+15550100001";
pub const WAIT: Duration = Duration::from_secs(5);

/// The sample config on `redis` under a fresh key prefix, nodes trusting loopback, with
/// `extra_account` lines in the demo account (a presence_callback).
pub fn cluster_config(redis: &Redis, extra_account: &str) -> (PathBuf, String) {
    let sample = std::fs::read_to_string(super::default_config()).unwrap();
    let prefix = super::unique("sb");
    let text = sample
        .replacen(
            "[store]\nkind = \"memory\"\n",
            &format!(
                "[store]\nkind = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n",
                redis.url()
            ),
            1,
        )
        .replacen(
            "[cluster]\nnode_id = \"local\"\n",
            "[cluster]\nnode_id = \"local\"\npeers_cidrs = [\"127.0.0.0/8\"]\n",
            1,
        )
        .replacen(
            "friendly_name = \"Demo account\"",
            &format!("friendly_name = \"Demo account\"\n{extra_account}"),
            1,
        );
    assert_eq!(
        text.matches(&prefix).count() + text.matches("peers_cidrs = [\"127.0.0.0/8\"]").count(),
        2,
        "the sample config's [store] or [cluster] section changed shape"
    );
    let path = std::env::temp_dir().join(format!("{}.toml", super::unique("cluster")));
    std::fs::write(&path, text).unwrap();
    (path, prefix)
}

pub fn node(config: &PathBuf, id: &str) -> Switch {
    Switch::start_with_args(config, &["--node", id])
}

pub fn rest(sw: &Switch, path: &str) -> (u16, Value) {
    let (code, v, _) = super::rest::call_as(sw, ACCOUNT, AUTH_TOKEN, "GET", path, "");
    (code, v)
}

pub fn client_status(sw: &Switch, identity: &str) -> String {
    let (_, c) = rest(sw, &format!("Clients/{identity}.json"));
    c["status"].as_str().unwrap_or("").to_string()
}

/// Waits until every node reports `identity` as `want`.
pub fn wait_status_everywhere(nodes: &[&Switch], identity: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    for sw in nodes {
        loop {
            let now = client_status(sw, identity);
            if now == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{identity} stays {now} at {}, never {want}",
                sw.http_addr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn health(sw: &Switch) -> Value {
    super::rest::http(sw, "GET", "/health", "", "", "").1
}

pub fn wait_health(sw: &Switch, store: &str) {
    let deadline = Instant::now() + WAIT;
    while health(sw)["store"] != store {
        assert!(
            Instant::now() < deadline,
            "store never {store}: {}",
            health(sw)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// alice registered at `sw` over UDP and a carrier's call to her answered and ACKed:
/// (carrier, alice, the carrier's INVITE, the switch's 2xx to it, alice's INVITE).
pub fn call_up(sw: &Switch) -> (Udp, Udp, String, Msg, Msg) {
    let alice = sw.udp();
    super::ua::register(&alice, "alice");
    let carrier = sw.udp();
    let invite = carrier_invite(
        sw,
        &carrier,
        NUMBER,
        &super::sdp_offer(carrier.local_addr().ip()),
    );
    carrier.send(&invite);
    let inv = super::ua::expect_request(&alice, "INVITE", WAIT);
    let sdp = super::sdp_offer(alice.local_addr().ip());
    alice.send(reply(
        &inv,
        200,
        "OK",
        "alice1",
        alice.local_addr(),
        Some(&sdp),
    ));
    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("2xx to the carrier");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
    super::ua::expect_request(&alice, "ACK", WAIT);
    (carrier, alice, invite, ok, inv)
}
