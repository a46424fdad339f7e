//! Black-box slow and greedy clients (issue 16). HTTP: a connection that never finishes its
//! request head is closed at the header deadline, one source cannot hold more than its share
//! of connections (the rest get 503 with Retry-After at once), and another source is served
//! throughout. SIP over TCP: connections that trickle bytes without finishing a message, or
//! say nothing, are closed at their deadlines while real clients register.
#![allow(clippy::disallowed_methods)]

mod harness;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use harness::Switch;
use harness::ua::bearer_register;

/// `api::MAX_CONNECTIONS_PER_SOURCE` and `api::HEADER_READ_TIMEOUT`, as README states them.
const PER_SOURCE: usize = 128;
const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// What the server said on `s` within `wait`, and whether it then closed the connection.
fn read_what_comes(s: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !got.is_empty() {
                    continue;
                }
                return (got, false);
            }
            // Reset by the server: closed too.
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

/// A GET /health from `source` (a loopback address of its own), with its status line.
fn health_from(source: &str, http: SocketAddr) -> String {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{source}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect_timeout(&http.into(), Duration::from_secs(5))
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: switch\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (got, _) = read_what_comes(&mut s, Duration::from_secs(5));
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn unfinished_request_heads_are_closed_at_the_deadline_and_one_source_cannot_take_every_connection()
{
    let sw = Switch::start();
    let http = sw.http_addr();
    // 300 connections from 127.0.0.1, each with a request head it never finishes.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(http).expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: switch\r\nX-Slow: ")
            .expect("write");
        slow.push(s);
    }
    let opened = Instant::now();
    // Past the per-source cap the switch answered 503 with Retry-After and closed.
    let mut held = Vec::new();
    let mut refused = 0;
    for mut s in slow {
        let (got, closed) = read_what_comes(&mut s, Duration::from_millis(300));
        let text = String::from_utf8_lossy(&got).to_string();
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("Retry-After: 1"), "{text}");
            assert!(closed, "a refused connection is closed");
            refused += 1;
        } else {
            assert!(got.is_empty() && !closed, "a held connection: {text:?}");
            held.push(s);
        }
    }
    assert_eq!(held.len(), PER_SOURCE, "held from one source");
    assert_eq!(refused, 300 - PER_SOURCE);
    // The same source is refused while it holds its share; another one is served.
    assert!(health_from("127.0.0.1", http).starts_with("HTTP/1.1 503"));
    assert_eq!(health_from("127.0.0.2", http), "HTTP/1.1 200 OK");
    // At the header deadline every held connection is closed, though it never went quiet
    // on its own part (nothing more to send).
    let mut open = held;
    let limit = opened + HEADER_DEADLINE + Duration::from_secs(10);
    while !open.is_empty() {
        assert!(
            Instant::now() < limit,
            "{} slow connections still open {:?} after they connected",
            open.len(),
            opened.elapsed()
        );
        open.retain_mut(|s| !read_what_comes(s, Duration::from_millis(10)).1);
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the source is served again once its connections are gone.
    assert_eq!(health_from("127.0.0.1", http), "HTTP/1.1 200 OK");
}

/// `transport::tcp::FIRST_MESSAGE_TIMEOUT` and `MESSAGE_TIMEOUT`, as README states them.
const MESSAGE_DEADLINE: Duration = Duration::from_secs(10);

/// A client's REGISTER over TCP with a token, answered on its connection.
fn register_over_tcp(sw: &Switch, identity: &str) -> Option<u16> {
    let mut conn = sw.tcp();
    let reg = bearer_register(identity, conn.local_addr(), "TCP");
    conn.send(&reg);
    conn.recv_msg(Duration::from_secs(5))
        .and_then(|m| m.status())
}

#[test]
fn sip_connections_that_trickle_or_stall_are_closed_at_their_deadlines_while_clients_register() {
    let sw = Switch::start();
    let tcp = sw.tcp_addr();
    // 60 connections trickle a REGISTER one byte every 250 ms (never finishing it within
    // the deadline), 20 connect and say nothing, and one sends a complete OPTIONS (answered)
    // and then only the start of the next message.
    let head = b"REGISTER sip:switchboard.local SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-slow\r\n";
    let mut trickling: Vec<TcpStream> = (0..60).map(|_| TcpStream::connect(tcp).unwrap()).collect();
    let silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(tcp).unwrap()).collect();
    let mut half = sw.tcp();
    let options = harness::request(
        "OPTIONS",
        &format!("sip:switch@{tcp};transport=tcp"),
        half.local_addr(),
        "TCP",
        &[],
        "",
    );
    half.send(&options);
    assert_eq!(
        half.recv_msg(Duration::from_secs(5))
            .and_then(|m| m.status()),
        Some(200)
    );
    half.send(b"OPTIONS sip:switch SIP/2.0\r\nVia: SIP/2.0/TCP");
    let opened = Instant::now();
    let mut at = 0;
    let mut registered = 0;
    let mut alive_trickling = trickling.len();
    // While they trickle, real clients register over TCP, once a second.
    while opened.elapsed() < MESSAGE_DEADLINE + Duration::from_secs(8) {
        if at < head.len() {
            for s in &mut trickling {
                let _ = s.write_all(&head[at..at + 1]);
            }
            at += 1;
        }
        if registered < (opened.elapsed().as_secs() as usize).min(12) {
            assert_eq!(
                register_over_tcp(&sw, &format!("client{registered}")),
                Some(200),
                "a real client registers during the trickle\n{}",
                sw.stderr()
            );
            registered += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
        if opened.elapsed() > MESSAGE_DEADLINE + Duration::from_secs(3) {
            alive_trickling = trickling
                .iter_mut()
                .map(|s| read_what_comes(s, Duration::from_millis(5)).1)
                .filter(|closed| !closed)
                .count();
            if alive_trickling == 0 {
                break;
            }
        }
    }
    assert!(at < head.len(), "the trickle outlasted the deadline");
    assert_eq!(alive_trickling, 0, "trickling connections still open");
    for mut s in silent {
        assert!(
            read_what_comes(&mut s, Duration::from_secs(2)).1,
            "a silent connection still open"
        );
    }
    // The one whose second message stalled is closed too; its first was answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match half.try_send(b"x") {
            Err(_) => break,
            Ok(()) => {
                assert!(
                    Instant::now() < deadline,
                    "a stalled message's connection still open"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    assert!(registered >= 10, "{registered} clients registered");
}

/// A TCP connection to `to` from `source` (a loopback address of its own).
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{source}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect from {source} to {to}: {e}"));
    sock.into()
}

/// How many of `conns` the server has closed (end of stream or reset), without waiting.
fn closed_count(conns: &mut [TcpStream]) -> usize {
    let mut buf = [0u8; 512];
    conns
        .iter_mut()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            loop {
                match (&**s).read(&mut buf) {
                    Ok(0) => return true,
                    // Whatever was said before closing (an HTTP 408, say): read on.
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                    Err(_) => return true,
                }
            }
        })
        .count()
}

#[test]
fn a_thousand_trickling_sip_connections_and_a_thousand_stalled_http_ones_leave_room_for_real_clients()
 {
    let sw = Switch::start();
    let (tcp, http) = (sw.tcp_addr(), sw.http_addr());
    // 1,000 SIP connections from 4 addresses (250 each, under the per-address cap of 256),
    // each sending one byte of a REGISTER a second; 1,000 HTTP connections from 8 addresses
    // (125 each, under 128) that send the start of a request head and stall.
    let head = b"REGISTER sip:switchboard.local SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-slow\r\n";
    let mut sip: Vec<TcpStream> = (0..1000)
        .map(|i| connect_from(&format!("127.0.1.{}", 10 + i % 4), tcp))
        .collect();
    let mut web: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let mut s = connect_from(&format!("127.0.2.{}", 10 + i % 8), http);
            s.write_all(b"GET /health HTTP/1.1\r\nHost: switch\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let opened = Instant::now();
    let (mut at, mut registered, mut answered) = (0, 0, 0);
    let (mut sip_closed, mut web_closed) = (0, 0);
    // Once a second: every SIP connection gets its next byte, a real client registers over
    // TCP and REST answers another address; until the slow ones are all closed.
    while opened.elapsed() < HEADER_DEADLINE.max(MESSAGE_DEADLINE) + Duration::from_secs(15) {
        let second = Instant::now();
        for s in &mut sip {
            let _ = s.write_all(&head[at % head.len()..at % head.len() + 1]);
        }
        at += 1;
        assert_eq!(
            register_over_tcp(&sw, &format!("real{registered}")),
            Some(200),
            "a real client registers among 1,000 trickling connections\n{}",
            sw.stderr()
        );
        registered += 1;
        assert_eq!(health_from("127.0.0.2", http), "HTTP/1.1 200 OK");
        answered += 1;
        sip_closed = closed_count(&mut sip);
        web_closed = closed_count(&mut web);
        eprintln!(
            "{:?}: sip closed {sip_closed}, http closed {web_closed}",
            opened.elapsed()
        );
        if sip_closed == sip.len() && web_closed == web.len() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(second.elapsed()));
    }
    assert_eq!(sip_closed, 1000, "trickling SIP connections closed");
    assert_eq!(web_closed, 1000, "stalled HTTP connections closed");
    // They went at their deadlines, not at the idle timeout, and were counted as such.
    assert!(
        opened.elapsed() < Duration::from_secs(60),
        "closed only after {:?}",
        opened.elapsed()
    );
    let counted =
        sw.metric(r#"connections_refused_total{listener="sip",reason="first_message_deadline"}"#);
    assert!(
        counted >= 1000,
        "{counted} counted at the first-message deadline"
    );
    // Served throughout, not just once: a round a second until the deadlines.
    assert!(registered >= 5 && answered >= 5, "{registered} {answered}");
}
