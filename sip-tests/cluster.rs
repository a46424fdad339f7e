//! Black-box cluster tests: a real `redis-server` and three switch processes (nodes a, b,
//! c) sharing it (`[store] kind = "redis"`), one config file, `--node` for each.
//!
//! The sample config's trunk takes any loopback source and +15550100001 runs its inline
//! `<Dial><Client>alice</Client></Dial>`; the nodes accept each other's hops from
//! 127.0.0.0/8 (`[cluster] peers_cidrs`).
// Real sockets and processes: deadlines read the real clock.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::time::{Duration, Instant};

use harness::cluster::{
    ACCOUNT, AUTH_TOKEN, NUMBER, WAIT, call_up, client_status, cluster_config, health, node, rest,
    wait_health, wait_status_everywhere,
};
use harness::customer_app::CustomerApp;
use harness::redis::Redis;
use harness::rtp::{Codec, RtpPhone, SdpAudio};
use harness::ua::{call_id_of, carrier_invite, in_dialog, reply, token};
use harness::{Msg, Switch, Tcp, Udp, request};
use serde_json::Value;

const REALM: &str = "switchboard.local";

/// A REGISTER of `identity` over TCP on `conn` (Call-ID `call_id`, CSeq `cseq`).
fn tcp_register(conn: &mut Tcp, identity: &str, call_id: &str, cseq: u32) -> Msg {
    let to = format!("<sip:{identity}@{REALM}>");
    let from = format!("{to};tag={}", harness::unique("f"));
    let auth = format!("Bearer {}", token(identity));
    let reg = request(
        "REGISTER",
        &format!("sip:{REALM}"),
        conn.local_addr(),
        "TCP",
        &[
            ("To", &to),
            ("From", &from),
            ("Authorization", &auth),
            ("Call-ID", call_id),
            ("CSeq", &format!("{cseq} REGISTER")),
        ],
        "",
    );
    conn.send(&reg);
    conn.recv_msg(WAIT).expect("REGISTER answered")
}

/// A REGISTER of `identity` from `ua` with `contact` and `call_id`/`cseq`; the final
/// answer.
fn udp_register(ua: &Udp, identity: &str, call_id: &str, cseq: u32, contact: &str) -> String {
    let to = format!("<sip:{identity}@{REALM}>");
    let from = format!("{to};tag={}", harness::unique("f"));
    let auth = format!("Bearer {}", token(identity));
    let reg = request(
        "REGISTER",
        &format!("sip:{REALM}"),
        ua.local_addr(),
        "UDP",
        &[
            ("To", &to),
            ("From", &from),
            ("Authorization", &auth),
            ("Call-ID", call_id),
            ("CSeq", &format!("{cseq} REGISTER")),
            ("Contact", contact),
        ],
        "",
    );
    ua.send(&reg);
    reg
}

fn expect_tcp(conn: &mut Tcp, method: &str) -> Msg {
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

/// `phone` sends 10 frames to `to`; true when `other` receives at least one.
fn audio_flows(phone: &mut RtpPhone, to: std::net::SocketAddr, other: &RtpPhone) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        for _ in 0..10 {
            phone.send(to, 0, &[0xff; 160]);
        }
        if other.recv(Duration::from_millis(200)).is_some() {
            return true;
        }
    }
    false
}

#[test]
fn a_call_at_one_node_rings_a_client_registered_over_tcp_at_another() {
    let redis = Redis::start();
    let app = CustomerApp::start(
        AUTH_TOKEN,
        "[[route]]\npath = \"/presence\"\ncontent_type = \"text/plain\"\nbody = \"\"\n",
    );
    let (config, _) = cluster_config(
        &redis,
        &format!("presence_callback = \"{}\"", app.url("/presence")),
    );
    let (a, b, c) = (node(&config, "a"), node(&config, "b"), node(&config, "c"));
    let nodes = [&a, &b, &c];

    // alice's flow ends at b: a TCP connection.
    let mut alice = b.tcp();
    let ok = tcp_register(&mut alice, "alice", &harness::unique("reg"), 1);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    wait_status_everywhere(&nodes, "alice", "available");

    // A carrier calls node a; alice is rung down her connection at b.
    let carrier = a.udp();
    let mut carrier_rtp = RtpPhone::new();
    let mut alice_rtp = RtpPhone::new();
    let invite = carrier_invite(&a, &carrier, NUMBER, &carrier_rtp.offer(&[Codec::Pcmu]));
    carrier.send(&invite);
    let inv = expect_tcp(&mut alice, "INVITE");
    assert!(
        inv.header("Via").unwrap().starts_with("SIP/2.0/TCP"),
        "{:?}",
        inv.header("Via")
    );
    assert!(
        inv.header("From").unwrap().contains("+15557654321"),
        "the caller passes through the hop: {:?}",
        inv.header("From")
    );
    let switch_for_alice = SdpAudio::parse(&inv.body);
    let answer = alice_rtp.answer(&switch_for_alice, &[Codec::Pcmu]);
    alice.send(reply(
        &inv,
        200,
        "OK",
        "alice1",
        alice.local_addr(),
        Some(&answer),
    ));
    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("2xx to the carrier");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let switch_for_carrier = SdpAudio::parse(&ok.body);
    carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
    expect_tcp(&mut alice, "ACK");

    // Audio both ways, through a's relay and b's.
    assert!(
        audio_flows(&mut carrier_rtp, switch_for_carrier.rtp, &alice_rtp),
        "carrier → alice"
    );
    assert!(
        audio_flows(&mut alice_rtp, switch_for_alice.rtp, &carrier_rtp),
        "alice → carrier"
    );
    wait_status_everywhere(&nodes, "alice", "busy");

    // Node c carries nothing of this call, yet lists it (once: the hop at b is internal)
    // and hangs it up where it runs.
    let (code, list) = rest(&c, "Calls.json");
    assert_eq!(code, 200, "{list}");
    let calls = list["calls"].as_array().expect("calls").clone();
    let parent = calls
        .iter()
        .find(|c| c["to"] == NUMBER && c["parent_call_sid"].is_null())
        .unwrap_or_else(|| panic!("the carrier's call is listed at c: {list}"));
    assert_eq!(parent["status"], "in-progress", "{parent}");
    assert_eq!(
        calls.iter().filter(|c| c["to"] == "client:alice").count(),
        1,
        "the Dial leg once, not the hop at b: {list}"
    );
    let sid = parent["sid"].as_str().unwrap().to_string();
    let (code, fetched) = rest(&c, &format!("Calls/{sid}.json"));
    assert_eq!((code, &fetched["sid"]), (200, &parent["sid"]), "{fetched}");
    let (code, modified, _) = harness::rest::call_as(
        &c,
        ACCOUNT,
        AUTH_TOKEN,
        "POST",
        &format!("Calls/{sid}.json"),
        "Status=completed",
    );
    assert_eq!(code, 200, "{modified}");
    let carrier_bye = harness::ua::expect_request(&carrier, "BYE", WAIT);
    carrier.send(reply(
        &carrier_bye,
        200,
        "OK",
        "x",
        carrier.local_addr(),
        None,
    ));
    let bye = expect_tcp(&mut alice, "BYE");
    alice.send(reply(&bye, 200, "OK", "alice1", alice.local_addr(), None));
    wait_status_everywhere(&nodes, "alice", "available");

    // One callback per change in the whole cluster, though every node saw each change.
    let _ = app.wait_requests(3, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    let statuses: Vec<String> = app
        .requests()
        .iter()
        .filter(|r| r["path"] == "/presence")
        .map(|r| r["params"]["Status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(statuses, ["available", "busy", "available"]);
}

#[test]
fn registers_through_two_nodes_at_once_lose_no_binding_and_keep_cseq_order() {
    let redis = Redis::start();
    let (config, prefix) = cluster_config(&redis, "");
    let (a, b) = (node(&config, "a"), node(&config, "b"));

    // Ten devices of one AOR register at the same moment, half through each node: every
    // one is stored (no update overwrites another's).
    let uas: Vec<Udp> = (0..10)
        .map(|i| if i % 2 == 0 { a.udp() } else { b.udp() })
        .collect();
    let regs: Vec<String> = uas
        .iter()
        .enumerate()
        .map(|(i, ua)| {
            let contact = format!("<sip:carol-{i}@{}>", ua.local_addr());
            udp_register(ua, "carol", &harness::unique("dev"), 1, &contact)
        })
        .collect();
    for (ua, reg) in uas.iter().zip(&regs) {
        let (resp, _) = ua.recv_final(&call_id_of(reg), WAIT).expect("answered");
        assert_eq!(resp.status(), Some(200), "{}", resp.text());
    }
    let stored = redis.cmd(&["GET", &format!("{prefix}:aor:{{{ACCOUNT}:carol}}")]);
    for i in 0..10 {
        assert!(
            stored.contains(&format!("carol-{i}@")),
            "device {i} lost: {stored}"
        );
    }
    for sw in [&a, &b] {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, v) = rest(sw, "Clients/carol.json");
            let n = v["contacts"].as_array().map_or(0, Vec::len);
            if n == 10 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} lists {n} contacts",
                sw.http_addr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // One device, one Call-ID: CSeq 7 through a and CSeq 6 through b at once. Whichever
    // arrives first, CSeq 7 is what stays (RFC 3261 §10.3 step 7): 6 after 7 gets 500.
    for round in 0..10 {
        let (ua_a, ua_b) = (a.udp(), b.udp());
        let call_id = harness::unique("dave");
        let contact = format!("<sip:dave@{}>", ua_a.local_addr());
        let seven = udp_register(&ua_a, "dave", &call_id, 7 + 10 * round, &contact);
        let six = udp_register(&ua_b, "dave", &call_id, 6 + 10 * round, &contact);
        let (r7, _) = ua_a
            .recv_final(&call_id_of(&seven), WAIT)
            .expect("7 answered");
        let (r6, _) = ua_b
            .recv_final(&call_id_of(&six), WAIT)
            .expect("6 answered");
        assert_eq!(r7.status(), Some(200), "{}", r7.text());
        assert!(matches!(r6.status(), Some(200 | 500)), "{}", r6.text());
        let stored = redis.cmd(&["GET", &format!("{prefix}:aor:{{{ACCOUNT}:dave}}")]);
        assert!(
            stored.contains(&format!("\"s\":{}", 7 + 10 * round)),
            "round {round}: the higher CSeq must stay: {stored}"
        );
    }
}

#[test]
fn redis_down_refuses_registers_keeps_known_clients_reachable_and_recovers() {
    let mut redis = Redis::start();
    let (config, prefix) = cluster_config(&redis, "");
    let (a, b) = (node(&config, "a"), node(&config, "b"));
    wait_health(&a, "up");
    wait_health(&b, "up");

    let alice = b.udp();
    harness::ua::register(&alice, "alice");
    wait_status_everywhere(&[&a, &b], "alice", "available");

    redis.stop();
    wait_health(&a, "down");
    wait_health(&b, "down");
    assert_eq!(a.metric("location_store_up"), 0);

    // No 200 that is not stored.
    let bob = b.udp();
    let reg = udp_register(
        &bob,
        "bob",
        &harness::unique("bob"),
        1,
        &format!("<sip:bob@{}>", bob.local_addr()),
    );
    let (resp, _) = bob.recv_final(&call_id_of(&reg), WAIT).expect("answered");
    assert_eq!(resp.status(), Some(503), "{}", resp.text());
    assert!(resp.header("Retry-After").is_some(), "{}", resp.text());

    // alice is known from the replica: a call at a still reaches her through b.
    let carrier = a.udp();
    let invite = carrier_invite(
        &a,
        &carrier,
        NUMBER,
        &harness::sdp_offer(carrier.local_addr().ip()),
    );
    carrier.send(&invite);
    let inv = harness::ua::expect_request(&alice, "INVITE", WAIT);
    alice.send(reply(
        &inv,
        486,
        "Busy Here",
        "alice1",
        alice.local_addr(),
        None,
    ));
    let (fin, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("final answer");
    assert_eq!(fin.status(), Some(486), "{}", fin.text());

    // Back, from its append-only file: alice's binding is there, REGISTER works again.
    redis.restart();
    wait_health(&a, "up");
    wait_health(&b, "up");
    assert_eq!(a.metric("location_store_up"), 1);
    let stored = redis.cmd(&["GET", &format!("{prefix}:aor:{{{ACCOUNT}:alice}}")]);
    assert!(
        stored.contains("sip:"),
        "alice's binding survived: {stored}"
    );
    let reg = udp_register(
        &bob,
        "bob",
        &harness::unique("bob"),
        1,
        &format!("<sip:bob@{}>", bob.local_addr()),
    );
    let (resp, _) = bob.recv_final(&call_id_of(&reg), WAIT).expect("answered");
    assert_eq!(resp.status(), Some(200), "{}", resp.text());
    wait_status_everywhere(&[&a, &b], "bob", "available");
}

#[test]
fn a_hop_from_outside_the_cluster_is_refused() {
    let redis = Redis::start();
    let (config, _) = cluster_config(&redis, "");
    // Only 10.0.0.0/8 are peers: a loopback sender with the header is an outsider.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "peers_cidrs = [\"127.0.0.0/8\"]",
        "peers_cidrs = [\"10.0.0.0/8\"]",
    );
    std::fs::write(&config, text).unwrap();
    let b = node(&config, "b");
    let alice = b.udp();
    harness::ua::register(&alice, "alice");
    let outsider = b.udp();
    let invite = carrier_invite(
        &b,
        &outsider,
        NUMBER,
        &harness::sdp_offer(outsider.local_addr().ip()),
    )
    .replacen(
        "\r\nCall-ID:",
        &format!("\r\nX-Switchboard-Hop: account={ACCOUNT};node=x;ts=0\r\nCall-ID:"),
        1,
    );
    assert!(invite.contains("X-Switchboard-Hop"));
    outsider.send(&invite);
    let (fin, _) = outsider
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("final answer");
    assert_eq!(fin.status(), Some(403), "{}", fin.text());
    assert!(harness::ua::no_request(
        &alice,
        "INVITE",
        Duration::from_millis(500)
    ));
}

#[test]
fn a_node_killed_during_a_sipp_register_run_loses_no_binding_it_answered() {
    let redis = Redis::start();
    let (config, prefix) = cluster_config(&redis, "");
    let mut b = node(&config, "b");
    let work = std::env::temp_dir().join(harness::unique("sipp-kill"));
    std::fs::create_dir_all(&work).unwrap();
    // 600 distinct users with their own tokens, at 300/s: the kill lands mid-run.
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..600 {
        let id = format!("k{i:04}");
        csv.push_str(&format!("{id};{}\n", harness::ua::mint(&id)));
    }
    std::fs::write(work.join("users.csv"), csv).unwrap();
    let sipp = std::process::Command::new("sipp")
        .current_dir(&work)
        .arg(b.udp_addr().to_string())
        .arg("-sf")
        .arg(harness::repo_path("sip-tests/sipp/register_uac.xml"))
        .args(["-inf", "users.csv", "-key", "realm", REALM])
        .args([
            "-i",
            "127.0.0.1",
            "-t",
            "u1",
            "-m",
            "600",
            "-r",
            "300",
            "-l",
            "600",
        ])
        .args([
            "-nostdin",
            "-timeout",
            "4s",
            "-trace_msg",
            "-message_file",
            "msgs.log",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp (apt-get install sip-tester) must be installed");
    std::thread::sleep(Duration::from_millis(1000));
    b.kill();
    // What SIPp received is logged by now; it would go on retransmitting into the void.
    std::thread::sleep(Duration::from_millis(500));
    let mut sipp = sipp;
    let _ = std::process::Command::new("kill")
        .arg(sipp.id().to_string())
        .status();
    let _ = sipp.wait();

    // Every REGISTER that got a 200 before the kill has its binding in Redis.
    let log = std::fs::read_to_string(work.join("msgs.log")).expect("SIPp's message log");
    let answered: Vec<String> = log
        .split("message received")
        .filter(|m| m.contains("SIP/2.0 200"))
        .filter_map(|m| {
            let to = m.lines().find(|l| l.starts_with("To:"))?;
            let user = to.split("sip:").nth(1)?.split('@').next()?;
            // (Only ours: a stray datagram to SIPp's port is logged too.)
            let ours = user.len() == 5 && user.starts_with('k') && to.contains(REALM);
            ours.then(|| user.to_string())
        })
        .collect();
    assert!(
        answered.len() > 10 && answered.len() < 600,
        "the kill should land mid-run: {} of 600 answered",
        answered.len()
    );
    for id in &answered {
        let stored = redis.cmd(&["EXISTS", &format!("{prefix}:aor:{{{ACCOUNT}:{id}}}")]);
        assert_eq!(stored.trim(), "1", "{id} got 200 but is not in redis");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Polls `/health` until the node's directory view is `want`.
fn wait_nodes(sw: &Switch, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = health(sw);
        let nodes: Vec<&str> = h["nodes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if nodes == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes stay {nodes:?}, never {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_nodes_udp_client_is_reached_from_another_node() {
    let redis = Redis::start();
    let (config, _) = cluster_config(&redis, "");
    let (a, mut b) = (node(&config, "a"), node(&config, "b"));
    wait_nodes(&a, &["a", "b"]);
    let mut alice = b.udp();
    harness::ua::register(&alice, "alice");
    wait_status_everywhere(&[&a], "alice", "available");

    b.kill();
    // b stops refreshing its directory entry; a then sends to alice's flow itself.
    wait_nodes(&a, &["a"]);
    let carrier = a.udp();
    let invite = carrier_invite(
        &a,
        &carrier,
        NUMBER,
        &harness::sdp_offer(carrier.local_addr().ip()),
    );
    carrier.send(&invite);
    let (inv, from) = loop {
        let (bytes, from) = alice.recv_from(WAIT).expect("an INVITE for alice");
        let m = Msg::parse(&bytes);
        if m.method() == Some("INVITE") {
            break (m, from);
        }
    };
    assert_eq!(from.port(), a.udp_addr().port(), "sent by node a itself");
    alice.set_peer(from);
    alice.send(reply(
        &inv,
        486,
        "Busy Here",
        "alice1",
        alice.local_addr(),
        None,
    ));
    let (fin, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("final answer");
    assert_eq!(fin.status(), Some(486), "{}", fin.text());
}

#[test]
fn the_cluster_sample_config_is_the_sample_with_a_shared_store() {
    let sample = std::fs::read_to_string(harness::default_config()).unwrap();
    let cluster =
        std::fs::read_to_string(harness::repo_path("conf/cluster/switchboard.toml")).unwrap();
    // Past its header, the sample but for [store] and [cluster]: nothing else drifts.
    let body = &cluster[cluster
        .find("# Switchboard sample configuration.")
        .expect("the sample")..];
    let expected = sample
        .replacen(
            "kind = \"memory\"\n# kind = \"redis\"\n# url = \"redis://127.0.0.1:6379\"\n# key_prefix = \"sb\"          #",
            "kind = \"redis\"\nurl = \"redis://127.0.0.1:6390\"\nkey_prefix = \"sb\"            #",
            1,
        )
        .replacen(
            "node_id = \"local\"\n# advertise = \"10.0.0.11:5060\"\n# peers_cidrs = [\"10.0.0.0/24\"]\n",
            "node_id = \"a\"                # each node's --node overrides it\n# advertise = \"10.0.0.11:5060\"   # default: the node's first SIP address as bound\npeers_cidrs = [\"127.0.0.0/8\"]\n",
            1,
        );
    assert_ne!(
        expected, sample,
        "the sample's [store] or [cluster] changed shape"
    );
    assert!(
        body == expected,
        "conf/cluster/switchboard.toml drifted from conf/switchboard.toml"
    );
    let out = harness::switchboard()
        .args(["check", "-c"])
        .arg(harness::repo_path("conf/cluster/switchboard.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_node_killed_mid_call_clears_its_busy_count_when_it_restarts() {
    let redis = Redis::start();
    let (config, _) = cluster_config(&redis, "");
    let (mut a, b) = (node(&config, "a"), node(&config, "b"));
    let (_carrier, _alice, _, _, _) = call_up(&a);
    wait_status_everywhere(&[&a, &b], "alice", "busy");

    // The call dies with a; its count stays in Redis until a is back.
    a.kill();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(client_status(&b, "alice"), "busy");
    let a2 = node(&config, "a");
    wait_status_everywhere(&[&a2, &b], "alice", "available");
}
