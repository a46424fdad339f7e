//! Black-box tests: the real `switchboard` binary on loopback, driven over UDP and TCP by the
//! synchronous test UAs in `harness/`. Timeouts here are generous upper bounds for "never
//! arrived", not performance claims.

// These tests talk to a real process over real sockets, so they read the real clock
// (for receive deadlines only; nothing asserts a duration).
#![allow(clippy::disallowed_methods)]

#[path = "harness/mod.rs"]
mod harness;

use harness::{Msg, Switch, ack_for, param, request, sdp_offer, switchboard, without_header};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Upper bound for a response that should come at once.
const REPLY: Duration = Duration::from_secs(5);
/// How long we listen to conclude that nothing (more) is coming.
const QUIET: Duration = Duration::from_secs(1);

fn ruri(to: SocketAddr) -> String {
    format!("sip:switch@{to}")
}

fn header_of<'a>(msg: &'a str, name: &str) -> &'a str {
    let head = msg.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .skip(1)
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

fn call_id(req: &str) -> String {
    header_of(req, "Call-ID").to_string()
}

/// Sends an OPTIONS over UDP and returns (request, response).
fn udp_options(sw: &Switch, ua: &harness::Udp, extra: &[(&str, &str)]) -> (String, Msg) {
    let req = request(
        "OPTIONS",
        &ruri(sw.udp_addr()),
        ua.local_addr(),
        "UDP",
        extra,
        "",
    );
    ua.send(&req);
    let (resp, _) = ua.recv_final(&call_id(&req), REPLY).unwrap_or_else(|| {
        panic!(
            "no final response to OPTIONS\n{req}\n--- stderr ---\n{}",
            sw.stderr()
        )
    });
    (req, resp)
}

fn assert_status(resp: &Msg, code: u16, req: &str) {
    assert_eq!(
        resp.status(),
        Some(code),
        "request:\n{req}\nresponse:\n{}",
        resp.text()
    );
}

// ------------------------------------------------------------------------------------------
// UDP
// ------------------------------------------------------------------------------------------

#[test]
fn udp_options_200_with_capabilities_and_rport() {
    let sw = Switch::start();
    let ua = sw.udp();
    let req = request(
        "OPTIONS",
        &ruri(sw.udp_addr()),
        ua.local_addr(),
        "UDP",
        &[],
        "",
    );
    ua.send(&req);
    let (raw, from) = ua.recv_from(REPLY).expect("a response to OPTIONS");
    let resp = Msg::parse(&raw);
    assert_status(&resp, 200, &req);
    let text = resp.text();

    // RFC 3581 §4: sent from the address and port the request arrived on.
    assert_eq!(from, sw.udp_addr(), "response source\n{text}");

    assert!(
        resp.list_contains("Allow", "OPTIONS"),
        "Allow lacks OPTIONS\n{text}"
    );
    assert!(resp.header("Accept").is_some(), "no Accept\n{text}");
    assert!(resp.header("Supported").is_some(), "no Supported\n{text}");

    // Dialog-identifying headers copied; To gets a tag (RFC 3261 §8.2.6.2).
    assert_eq!(resp.header("From"), Some(header_of(&req, "From")), "{text}");
    assert_eq!(
        resp.header("Call-ID"),
        Some(header_of(&req, "Call-ID")),
        "{text}"
    );
    assert_eq!(resp.header("CSeq"), Some(header_of(&req, "CSeq")), "{text}");
    let tag = resp.to_tag().unwrap_or_default();
    assert!(!tag.is_empty(), "To has no tag\n{text}");
    assert!(
        resp.header("To")
            .unwrap()
            .starts_with(header_of(&req, "To")),
        "{text}"
    );

    // Via copied, with received/rport filled (RFC 3581 §4: received even if equal to sent-by).
    let vias = resp.list("Via");
    assert_eq!(vias.len(), 1, "exactly our Via\n{text}");
    let via = &vias[0];
    let req_via = header_of(&req, "Via");
    assert_eq!(param(via, "branch"), param(req_via, "branch"), "{text}");
    assert!(
        via.starts_with(&format!("SIP/2.0/UDP {}", ua.local_addr())),
        "{text}"
    );
    assert_eq!(
        param(via, "received"),
        Some(Some("127.0.0.1".into())),
        "{text}"
    );
    assert_eq!(
        param(via, "rport"),
        Some(Some(ua.local_addr().port().to_string())),
        "{text}"
    );
}

#[test]
fn udp_garbage_gets_no_reply_and_switch_survives() {
    let mut sw = Switch::start();
    let ua = sw.udp();
    let mut noise: Vec<u8> = (0..1400u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    noise[0] = 0xff;
    let garbage: [&[u8]; 5] = [
        b"garbage \x00\xff\xfe not sip at all",
        &noise,
        b"\x00",
        b"HELLO WORLD\r\n\r\n",
        b"SIP/2.0\r\n\r\n",
    ];
    for g in garbage {
        ua.send(g);
    }
    if let Some(d) = ua.recv(QUIET) {
        panic!("garbage got a reply:\n{}", String::from_utf8_lossy(&d));
    }
    sw.assert_alive("after garbage datagrams");
    let (req, resp) = udp_options(&sw, &ua, &[]);
    assert_status(&resp, 200, &req);
}

#[test]
fn udp_missing_call_id_is_400() {
    let sw = Switch::start();
    let ua = sw.udp();
    let req = request(
        "OPTIONS",
        &ruri(sw.udp_addr()),
        ua.local_addr(),
        "UDP",
        &[],
        "",
    );
    let req = without_header(&req, "Call-ID");
    ua.send(&req);
    let resp = ua
        .recv_msg(REPLY)
        .unwrap_or_else(|| panic!("no response\n{}", sw.stderr()));
    assert_status(&resp, 400, &req);
    // A 400 still goes back to the right transaction.
    let b = param(resp.header("Via").unwrap_or(""), "branch");
    assert_eq!(
        b,
        param(header_of(&req, "Via"), "branch"),
        "{}",
        resp.text()
    );
}

#[test]
fn udp_invite_max_forwards_zero_is_483() {
    let sw = Switch::start();
    let ua = sw.udp();
    let sdp = sdp_offer(ua.local_addr().ip());
    let req = request(
        "INVITE",
        &ruri(sw.udp_addr()),
        ua.local_addr(),
        "UDP",
        &[("Max-Forwards", "0")],
        &sdp,
    );
    ua.send(&req);
    let (resp, _) = ua
        .recv_final(&call_id(&req), REPLY)
        .expect("final response");
    assert_status(&resp, 483, &req);
    ua.send(ack_for(&req, &resp));
}

#[test]
fn udp_unknown_require_is_420_with_unsupported() {
    let sw = Switch::start();
    let ua = sw.udp();
    let (req, resp) = udp_options(&sw, &ua, &[("Require", "nonexistent-ext")]);
    assert_status(&resp, 420, &req);
    assert!(
        resp.list_contains("Unsupported", "nonexistent-ext"),
        "{}",
        resp.text()
    );
}

#[test]
fn udp_unknown_method_is_501() {
    let sw = Switch::start();
    let ua = sw.udp();
    let req = request("FOO", &ruri(sw.udp_addr()), ua.local_addr(), "UDP", &[], "");
    ua.send(&req);
    let (resp, _) = ua
        .recv_final(&call_id(&req), REPLY)
        .expect("final response");
    assert_status(&resp, 501, &req);
}

fn send_invite(sw: &Switch, ua: &harness::Udp) -> String {
    let sdp = sdp_offer(ua.local_addr().ip());
    let req = request(
        "INVITE",
        &ruri(sw.udp_addr()),
        ua.local_addr(),
        "UDP",
        &[],
        &sdp,
    );
    ua.send(&req);
    req
}

/// INVITE to a number the dial plan does not know (the sample trunk takes loopback
/// sources) → 100 Trying first, then 404, answered statefully. Returns the 404.
fn invite_100_then_404(sw: &Switch, ua: &harness::Udp, req: &str) -> Msg {
    let cid = call_id(req);
    let first = ua
        .recv_response_to(&cid, REPLY)
        .unwrap_or_else(|| panic!("no response to INVITE\n{}", sw.stderr()));
    assert_status(&first, 100, req);
    // (RFC 3261 §8.2.6.2: a tag MAY be present in a 100, so none is asserted.)
    let (fin, _) = ua
        .recv_final(&cid, REPLY)
        .expect("final response to INVITE");
    assert_status(&fin, 404, req);
    assert!(fin.to_tag().is_some(), "404 without To tag\n{}", fin.text());
    fin
}

/// Counts final responses with this Call-ID arriving within `window`.
fn count_finals(ua: &harness::Udp, cid: &str, window: Duration) -> usize {
    let end = Instant::now() + window;
    let mut n = 0;
    while let Some(m) = ua.recv_response_to(cid, end.saturating_duration_since(Instant::now())) {
        if m.status().unwrap_or(0) >= 200 {
            n += 1;
        }
    }
    n
}

#[test]
fn udp_invite_100_then_404_and_ack_ends_it() {
    let sw = Switch::start();
    let ua = sw.udp();
    let req = send_invite(&sw, &ua);
    let fin = invite_100_then_404(&sw, &ua, &req);
    ua.send(ack_for(&req, &fin));
    // Timer G would retransmit after T1 = 500 ms, then 1 s later; the ACK stops it.
    let n = count_finals(&ua, &call_id(&req), Duration::from_secs(3));
    assert_eq!(n, 0, "final response retransmitted after ACK");
}

#[test]
fn udp_invite_404_retransmitted_until_ack() {
    let sw = Switch::start();
    let ua = sw.udp();
    let req = send_invite(&sw, &ua);
    let cid = call_id(&req);
    let fin = invite_100_then_404(&sw, &ua, &req);
    // No ACK: timer G (T1 = 500 ms) must retransmit the same final response. Generous window.
    let (again, _) = ua
        .recv_final(&cid, Duration::from_secs(4))
        .expect("404 not retransmitted without an ACK (timer G)");
    assert_eq!(again.status(), Some(404), "{}", again.text());
    assert_eq!(
        again.to_tag(),
        fin.to_tag(),
        "retransmission must be the same response"
    );
    ua.send(ack_for(&req, &fin));
    // Unstopped, timer G would send two more in the next 5 s (at +1 s and +3 s). At most one
    // may already have been in flight when the ACK arrived.
    let n = count_finals(&ua, &cid, Duration::from_secs(5));
    assert!(
        n <= 1,
        "final response still retransmitted after ACK ({n} more)"
    );
}

#[test]
fn udp_options_retransmission_absorbed_by_transaction() {
    let sw = Switch::start();
    let ua = sw.udp();
    let (req, first) = udp_options(&sw, &ua, &[]);
    assert_status(&first, 200, &req);
    ua.send(&req); // same branch: a retransmission
    let (second, _) = ua
        .recv_final(&call_id(&req), REPLY)
        .expect("response to retransmission");
    assert_status(&second, 200, &req);
    assert!(first.to_tag().is_some(), "{}", first.text());
    assert_eq!(
        second.to_tag(),
        first.to_tag(),
        "retransmission answered by a new transaction"
    );
}

// ------------------------------------------------------------------------------------------
// TCP
// ------------------------------------------------------------------------------------------

fn tcp_options(sw: &Switch, conn: &harness::Tcp) -> String {
    request(
        "OPTIONS",
        &format!("sip:switch@{};transport=tcp", sw.tcp_addr()),
        conn.local_addr(),
        "TCP",
        &[],
        "",
    )
}

#[test]
fn tcp_options_200_on_same_connection() {
    let sw = Switch::start();
    let mut conn = sw.tcp();
    let req = tcp_options(&sw, &conn);
    conn.send(&req);
    let resp = conn
        .recv_msg(REPLY)
        .unwrap_or_else(|| panic!("no response on the connection\n{}", sw.stderr()));
    assert_status(&resp, 200, &req);
    assert_eq!(resp.header("Call-ID"), Some(header_of(&req, "Call-ID")));
    assert_eq!(
        param(resp.header("Via").unwrap_or(""), "branch"),
        param(header_of(&req, "Via"), "branch")
    );
    // RFC 3261 §20.14: Content-Length MUST be present over stream transports.
    assert!(resp.header("Content-Length").is_some(), "{}", resp.text());
    assert!(resp.list_contains("Allow", "OPTIONS"), "{}", resp.text());
}

#[test]
fn tcp_two_pipelined_requests_get_two_responses() {
    let sw = Switch::start();
    let mut conn = sw.tcp();
    let a = tcp_options(&sw, &conn);
    let b = tcp_options(&sw, &conn);
    conn.send(format!("{a}{b}"));
    let mut want = vec![call_id(&a), call_id(&b)];
    for _ in 0..2 {
        let resp = conn
            .recv_msg(REPLY)
            .unwrap_or_else(|| panic!("missing response; still waiting for {want:?}"));
        assert_eq!(resp.status(), Some(200), "{}", resp.text());
        let cid = resp.header("Call-ID").unwrap_or("").to_string();
        let i = want
            .iter()
            .position(|c| *c == cid)
            .unwrap_or_else(|| panic!("unexpected response\n{}", resp.text()));
        want.remove(i);
    }
    assert!(
        conn.recv_message(QUIET).is_none(),
        "a third message arrived"
    );
}

#[test]
fn tcp_body_split_across_writes_gives_one_response() {
    let sw = Switch::start();
    let mut conn = sw.tcp();
    let sdp = sdp_offer(conn.local_addr().ip());
    let req = request(
        "OPTIONS",
        &format!("sip:switch@{};transport=tcp", sw.tcp_addr()),
        conn.local_addr(),
        "TCP",
        &[],
        &sdp,
    );
    let split = req.len() - sdp.len() / 2;
    conn.send(&req[..split]);
    assert!(
        conn.recv_message(QUIET).is_none(),
        "answered before the body was complete"
    );
    conn.send(&req[split..]);
    let resp = conn
        .recv_msg(REPLY)
        .expect("response once the body is complete");
    assert_status(&resp, 200, &req);
    assert_eq!(resp.header("Call-ID"), Some(header_of(&req, "Call-ID")));
    assert!(conn.recv_message(QUIET).is_none(), "more than one response");
}

#[test]
fn tcp_negative_content_length_closes_connection() {
    let sw = Switch::start();
    let mut conn = sw.tcp();
    let req = request(
        "OPTIONS",
        &format!("sip:switch@{};transport=tcp", sw.tcp_addr()),
        conn.local_addr(),
        "TCP",
        &[("Content-Length", "-999")],
        "",
    );
    conn.send(&req);
    assert!(
        conn.closed_within(REPLY),
        "connection still open after Content-Length: -999; received so far:\n{}",
        String::from_utf8_lossy(conn.pending())
    );
}

// ------------------------------------------------------------------------------------------
// Torture corpora: the switch must survive every message and keep answering.
// ------------------------------------------------------------------------------------------

fn survive_corpus(dir: &str) {
    let mut sw = Switch::start();
    let ua = sw.udp();
    let mut files: Vec<_> = std::fs::read_dir(harness::repo_path(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e == "dat"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {dir}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        ua.send(&bytes);
        let (req, resp) = {
            let req = request(
                "OPTIONS",
                &ruri(sw.udp_addr()),
                ua.local_addr(),
                "UDP",
                &[],
                "",
            );
            ua.send(&req);
            let resp = ua.recv_final(&call_id(&req), REPLY).map(|(m, _)| m);
            (req, resp)
        };
        sw.assert_alive(&format!("after {}", f.display()));
        let resp = resp.unwrap_or_else(|| {
            panic!(
                "no answer to OPTIONS after {}\n--- stderr ---\n{}",
                f.display(),
                sw.stderr()
            )
        });
        assert_eq!(
            resp.status(),
            Some(200),
            "OPTIONS after {}:\n{req}\n{}",
            f.display(),
            resp.text()
        );
    }
}

#[test]
fn udp_survives_rfc4475_corpus() {
    survive_corpus("sip-tests/vectors/rfc4475");
}

#[test]
fn udp_survives_rfc5118_corpus_raw() {
    // Sent as stored (bare LF, some wrong Content-Lengths): all malformed on the wire.
    survive_corpus("sip-tests/vectors/rfc5118");
}

// ------------------------------------------------------------------------------------------
// `switchboard check`
// ------------------------------------------------------------------------------------------

#[test]
fn check_accepts_shipped_config() {
    let path = harness::default_config();
    let out = switchboard()
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim_end(), format!("{}: ok", path.display()));
}

/// A copy of the shipped config with one key of `[server]` misspelled; returns the text and
/// the 1-based line of that key.
fn misspell_server_key(conf: &str) -> (String, usize) {
    let lines: Vec<&str> = conf.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "[server]")
        .expect("conf/switchboard.toml has a [server] table");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    // The first `key = value` line of the table, if any; else insert one.
    let key_line = lines[start + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| {
            let t = l.trim_start();
            !t.starts_with('#')
                && t.split_once('=').is_some_and(|(k, _)| {
                    let k = k.trim();
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
        })
        .map(|i| start + 1 + i);
    match key_line {
        Some(i) => {
            // Typo: the key's first letter doubled ("sip" -> "ssip").
            let l = lines[i];
            let t = l.trim_start();
            out[i] = format!("{}{}{t}", &l[..l.len() - t.len()], &t[..1]);
            (out.join("\n") + "\n", i + 1)
        }
        None => {
            out.insert(start + 1, "lissten = \"127.0.0.1:5060\"".to_string());
            (out.join("\n") + "\n", start + 2)
        }
    }
}

#[test]
fn check_reports_misspelled_server_key_with_position() {
    let conf =
        std::fs::read_to_string(harness::default_config()).expect("read conf/switchboard.toml");
    let (bad, line) = misspell_server_key(&conf);
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("switchboard-check-")));
    std::fs::write(&path, &bad).unwrap();
    let out = switchboard()
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run check");
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let prefix = format!("{}:{line}:", path.display());
    let rest = stderr.strip_prefix(&prefix).unwrap_or_else(|| {
        panic!("stderr should start with {prefix:?}COL: (line of the typo)\ngot: {stderr}")
    });
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert!(
        !col.is_empty() && col != "0",
        "no column after {prefix:?}: {stderr}"
    );
    assert!(
        rest[col.len()..].starts_with(':'),
        "expected `:` after the column: {stderr}"
    );
}

/// Waits until the switch's stderr contains `needle` (logs arrive asynchronously).
fn wait_for_log(sw: &Switch, needle: &str) -> String {
    for _ in 0..100 {
        let log = sw.stderr();
        if log.contains(needle) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("switch never logged {needle:?}; stderr:\n{}", sw.stderr());
}

/// Logs written to a pipe (as here) or a file carry no ANSI colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour() {
    let sw = Switch::start();
    let log = wait_for_log(&sw, "switchboard ready");
    assert!(!log.contains('\x1b'), "escape codes in the log:\n{log:?}");
}

fn sighup(sw: &Switch) {
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(sw.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -HUP failed");
}

/// SIGHUP with a broken file: the reload is refused with `file:line:col: why`, the switch
/// keeps its old config and keeps answering; with a good file the reload is applied.
#[test]
fn sighup_reload_refuses_a_bad_config_and_applies_a_good_one() {
    let conf = std::fs::read_to_string(harness::default_config()).unwrap();
    let path = std::env::temp_dir().join(format!("{}.toml", harness::unique("switchboard-hup-")));
    std::fs::write(&path, &conf).unwrap();
    let mut sw = Switch::start_with_config(&path);

    let (bad, line) = misspell_server_key(&conf);
    std::fs::write(&path, &bad).unwrap();
    sighup(&sw);
    let log = wait_for_log(&sw, "config reload failed");
    let position = format!("{}:{line}:", path.display());
    assert!(
        log.contains(&position),
        "the refusal names {position}COL; stderr:\n{log}"
    );
    sw.assert_alive("after a refused reload");
    let ua = sw.udp();
    let (req, resp) = udp_options(&sw, &ua, &[]);
    assert_status(&resp, 200, &req);

    std::fs::write(&path, &conf).unwrap();
    sighup(&sw);
    wait_for_log(&sw, "config reloaded");
    let (req, resp) = udp_options(&sw, &ua, &[]);
    assert_status(&resp, 200, &req);
    let _ = std::fs::remove_file(&path);
}

/// A client that sends its request and half-closes (as `nc -N` and scripted health checks
/// do) still gets the answer before the switch closes the connection. On an idle loopback
/// the shard usually answers before the reader even sees the EOF, so this guards the
/// requirement rather than proving the writer's linger (`transport/tcp.rs` LINGER), which
/// matters when the shard is busy.
#[test]
fn tcp_reply_survives_the_peers_half_close() {
    use std::io::{Read, Write};
    let sw = Switch::start();
    let mut s = std::net::TcpStream::connect(sw.tcp_addr()).unwrap();
    s.set_read_timeout(Some(REPLY)).unwrap();
    let local = s.local_addr().unwrap();
    let req = request("OPTIONS", &ruri(sw.tcp_addr()), local, "TCP", &[], "");
    s.write_all(req.as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(
        got.starts_with("SIP/2.0 200 OK\r\n"),
        "no reply after half-close: {got:?}"
    );
    assert!(got.contains(&call_id(&req)), "{got}");
}
