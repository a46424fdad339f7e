//! The transaction layer on a virtual clock: a client layer and a server layer joined by an
//! in-memory network with a drop schedule (quinn-proto's `Pair`, for SIP).
//!
//! Time is an epoch plus offsets; nothing here waits. Every assertion is exact: the instants
//! of transmissions, the number of events, and the layers' maps emptying when the last timer
//! fires.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::msg::HeaderName;
use crate::sip::peer::Transport;

const CLIENT_ADDR: &str = "192.0.2.10:5060";
const SERVER_ADDR: &str = "192.0.2.20:5060";
/// The To tag the server TU puts in its responses.
const SERVER_TAG: &str = "srv-tag";

/// The epoch of virtual time: the only clock read in this module. Every other instant is
/// this plus a `Duration`.
#[allow(
    clippy::disallowed_methods,
    reason = "the virtual clock's epoch; never compared to real time"
)]
fn epoch() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// One transmission seen on the wire.
#[derive(Debug)]
struct Wire {
    at: Duration,
    from: Side,
    msg: SipMessage,
    dropped: bool,
}

type DropRule = Box<dyn FnMut(Side, &SipMessage) -> bool>;

/// Two layers, a virtual clock, and a lossy zero-latency network between them.
struct Pair {
    t0: Instant,
    now: Instant,
    transport: Transport,
    client: TransactionLayer,
    server: TransactionLayer,
    wire: Vec<Wire>,
    client_events: Vec<(Duration, TuEvent)>,
    server_events: Vec<(Duration, TuEvent)>,
    drop_rule: DropRule,
    /// The server TU answers every new request with this status as it arrives
    /// ([`Input::Answered`]) instead of waiting for its [`TuEvent::Request`].
    answer_on_arrival: Option<u16>,
}

impl Pair {
    fn new(transport: Transport) -> Pair {
        let t0 = epoch();
        Pair {
            t0,
            now: t0,
            transport,
            client: TransactionLayer::new(Timers::default()),
            server: TransactionLayer::new(Timers::default()),
            wire: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            drop_rule: Box::new(|_, _| false),
            answer_on_arrival: None,
        }
    }

    fn udp() -> Pair {
        Pair::new(Transport::Udp)
    }

    /// Drops every transmission for which `rule` says so (it sees each one once, in order).
    fn drop_if(&mut self, rule: impl FnMut(Side, &SipMessage) -> bool + 'static) {
        self.drop_rule = Box::new(rule);
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn peer(&self, addr: &str, conn: u64) -> Peer {
        let addr: SocketAddr = addr.parse().unwrap();
        match self.transport {
            Transport::Udp => Peer::udp(addr),
            t => Peer::stream(t, addr, conn),
        }
    }

    fn client_peer(&self) -> Peer {
        self.peer(CLIENT_ADDR, 1)
    }

    fn server_peer(&self) -> Peer {
        self.peer(SERVER_ADDR, 2)
    }

    /// Delivers outputs until both layers are quiet.
    fn drive(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.client.poll_output() {
                progressed = true;
                self.route(Side::Client, o);
            }
            while let Some(o) = self.server.poll_output() {
                progressed = true;
                self.route(Side::Server, o);
            }
            if !progressed {
                break;
            }
        }
    }

    fn route(&mut self, side: Side, output: Output) {
        let at = self.elapsed();
        match output {
            Output::Event(e) => match side {
                Side::Client => self.client_events.push((at, e)),
                Side::Server => self.server_events.push((at, e)),
            },
            Output::Send { to, bytes } => {
                let msg = SipMessage::parse(bytes).expect("the layer sends parseable messages");
                let dropped = (self.drop_rule)(side, &msg);
                self.wire.push(Wire {
                    at,
                    from: side,
                    msg: msg.clone(),
                    dropped,
                });
                let (expected, from) = match side {
                    Side::Client => (self.server_peer(), self.client_peer()),
                    Side::Server => (self.client_peer(), self.server_peer()),
                };
                assert_eq!(to, expected, "{side:?} sent to the wrong peer");
                if !dropped {
                    self.deliver(side, msg, from);
                }
            }
        }
    }

    fn deliver(&mut self, from_side: Side, msg: SipMessage, from: Peer) {
        // What a shard does with a new INVITE the call service refused.
        if let (Side::Client, Some(code)) = (from_side, self.answer_on_arrival)
            && msg.is_request()
            && TransactionKey::server(&msg).is_some_and(|k| !self.server.has_server(&k))
        {
            let response = ResponseBuilder::new(&msg, code)
                .to_tag(SERVER_TAG)
                .received_from(from.addr)
                .build();
            let answered = Input::Answered {
                msg,
                from,
                response,
            };
            return self.server.handle(self.now, answered);
        }
        let layer = match from_side {
            Side::Client => &mut self.server,
            Side::Server => &mut self.client,
        };
        layer.handle(self.now, Input::Received { msg, from });
    }

    fn next_timer(&self) -> Option<Instant> {
        [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires every timer up to `t0 + offset`, delivering what they send, and stops there.
    fn advance_to(&mut self, offset: Duration) {
        let target = self.t0 + offset;
        assert!(target >= self.now, "virtual time only moves forward");
        while let Some(next) = self.next_timer().filter(|&n| n <= target) {
            self.now = next;
            self.client.handle_timeout(next);
            self.server.handle_timeout(next);
            self.drive();
        }
        self.now = target;
    }

    /// Runs until no timer is left (bounded, so a bug cannot hang the test).
    fn run_until_idle(&mut self) {
        for _ in 0..10_000 {
            let Some(next) = self.next_timer() else {
                return;
            };
            self.advance_to(next - self.t0);
        }
        panic!("timers never ran out");
    }

    fn assert_idle(&mut self) {
        self.run_until_idle();
        assert!(
            self.client.is_empty(),
            "client layer holds state: {:?}",
            self.client
        );
        assert!(
            self.server.is_empty(),
            "server layer holds state: {:?}",
            self.server
        );
        assert_eq!(
            (self.client.client_count(), self.client.server_count()),
            (0, 0)
        );
        assert_eq!(
            (self.server.client_count(), self.server.server_count()),
            (0, 0)
        );
    }

    /// The client TU starts a transaction.
    fn client_sends(&mut self, request: SipMessage) {
        let to = self.server_peer();
        self.client
            .handle(self.now, Input::SendRequest { request, to });
        self.drive();
    }

    /// The latest request the server TU was given.
    fn server_request(&self, method: Method) -> (TransactionKey, SipMessage, Peer) {
        self.server_events
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                TuEvent::Request { key, request, from } if request.method() == Some(method) => {
                    Some((key.clone(), request.clone(), *from))
                }
                _ => None,
            })
            .expect("the server TU got the request")
    }

    /// The server TU answers its latest `method` request with `code`.
    fn server_responds(&mut self, method: Method, code: u16) {
        let (key, request, from) = self.server_request(method);
        let response = ResponseBuilder::new(&request, code)
            .to_tag(SERVER_TAG)
            .received_from(from.addr)
            .build();
        self.server
            .handle(self.now, Input::Respond { key, response });
        self.drive();
    }

    /// Offsets of the transmissions from `side` that `pred` selects (dropped ones included).
    fn sent(&self, side: Side, pred: impl Fn(&SipMessage) -> bool) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|w| w.from == side && pred(&w.msg))
            .map(|w| w.at)
            .collect()
    }

    /// Offsets of the transmissions from `side` that `pred` selects and the network delivered.
    fn delivered(&self, side: Side, pred: impl Fn(&SipMessage) -> bool) -> Vec<Duration> {
        let wire = self
            .wire
            .iter()
            .filter(|w| w.from == side && !w.dropped && pred(&w.msg));
        wire.map(|w| w.at).collect()
    }

    fn client_responses(&self) -> Vec<(Duration, u16, String)> {
        responses(&self.client_events)
    }

    fn timeouts(events: &[(Duration, TuEvent)]) -> Vec<(Duration, String)> {
        events
            .iter()
            .filter_map(|(at, e)| match e {
                TuEvent::Timeout { key } => Some((*at, key.method().to_owned())),
                _ => None,
            })
            .collect()
    }
}

/// `(offset, status, key method)` of every Response event.
fn responses(events: &[(Duration, TuEvent)]) -> Vec<(Duration, u16, String)> {
    events
        .iter()
        .filter_map(|(at, e)| match e {
            TuEvent::Response { key, response } => {
                Some((*at, response.status().unwrap(), key.method().to_owned()))
            }
            _ => None,
        })
        .collect()
}

fn is(method: Method) -> impl Fn(&SipMessage) -> bool {
    move |m| m.method() == Some(method)
}

fn status(code: u16) -> impl Fn(&SipMessage) -> bool {
    move |m| m.status() == Some(code)
}

/// A request from the client, with `branch` in its only Via.
fn request(method: &str, branch: &str, transport: Transport) -> SipMessage {
    let text = format!(
        "{method} sip:bob@192.0.2.20 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {CLIENT_ADDR};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:192.0.2.20;lr>\r\n\
         From: <sip:alice@example.com>;tag=alice-tag\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    SipMessage::parse(text.into_bytes()).unwrap()
}

fn options(branch: &str) -> SipMessage {
    request("OPTIONS", branch, Transport::Udp)
}

fn invite(branch: &str) -> SipMessage {
    request("INVITE", branch, Transport::Udp)
}

/// Drops the first `n` transmissions from `side` that `pred` selects.
fn drop_first(
    n: usize,
    side: Side,
    pred: impl Fn(&SipMessage) -> bool + 'static,
) -> impl FnMut(Side, &SipMessage) -> bool {
    let mut seen = 0;
    move |s, m| {
        if s == side && pred(m) {
            seen += 1;
            seen <= n
        } else {
            false
        }
    }
}

fn gaps(instants: &[Duration]) -> Vec<Duration> {
    instants.windows(2).map(|w| w[1] - w[0]).collect()
}

// ---------------------------------------------------------------------------------------
// Non-INVITE (RFC 3261 §17.1.2, §17.2.2)

#[test]
fn non_invite_udp_completes_after_three_lost_requests() {
    let mut p = Pair::udp();
    p.drop_if(drop_first(3, Side::Client, is(Method::Options)));
    p.client_sends(options("z9hG4bKopt1"));
    p.advance_to(ms(3500));
    // Timer E: T1, then doubling (0.5 s, 1 s, 2 s gaps).
    assert_eq!(
        p.sent(Side::Client, is(Method::Options)),
        [ms(0), ms(500), ms(1500), ms(3500)]
    );
    assert_eq!(
        p.server_events.len(),
        1,
        "the server TU sees the request once"
    );
    p.server_responds(Method::Options, 200);
    assert_eq!(p.client_responses(), [(ms(3500), 200, "OPTIONS".into())]);
    // Timer K (T4) ends the client, Timer J (64·T1) the server.
    p.advance_to(ms(8499));
    assert_eq!(p.client.client_count(), 1);
    p.advance_to(ms(8500));
    assert_eq!(p.client.client_count(), 0);
    p.advance_to(ms(35_499));
    assert_eq!(p.server.server_count(), 1);
    p.advance_to(ms(35_500));
    assert_eq!(p.server.server_count(), 0);
    assert_eq!(
        p.sent(Side::Client, is(Method::Options)).len(),
        4,
        "no retransmission after the final"
    );
    p.assert_idle();
}

#[test]
fn non_invite_timer_e_caps_at_t2_until_timer_f() {
    let mut p = Pair::udp();
    p.drop_if(|side, _| side == Side::Client);
    p.client_sends(options("z9hG4bKopt2"));
    p.advance_to(secs(40));
    let sent = p.sent(Side::Client, is(Method::Options));
    let expected: Vec<Duration> = [
        0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
    ]
    .map(ms)
    .into();
    assert_eq!(sent, expected);
    assert_eq!(gaps(&sent)[3..], [secs(4); 7], "capped at T2");
    assert_eq!(
        Pair::timeouts(&p.client_events),
        [(secs(32), "OPTIONS".into())]
    );
    assert_eq!(p.client_events.len(), 1);
    p.assert_idle();
}

#[test]
fn non_invite_provisional_switches_timer_e_to_t2() {
    let mut p = Pair::udp();
    p.client_sends(options("z9hG4bKopt3"));
    p.server_responds(Method::Options, 100);
    p.advance_to(secs(10));
    // The pending E (0.5 s) still fires, then every T2; each retransmission is answered
    // with the latest provisional, which the client TU sees only once.
    assert_eq!(
        p.sent(Side::Client, is(Method::Options)),
        [ms(0), ms(500), ms(4500), ms(8500)]
    );
    assert_eq!(
        p.sent(Side::Server, status(100)),
        [ms(0), ms(500), ms(4500), ms(8500)]
    );
    p.server_responds(Method::Options, 200);
    assert_eq!(
        p.client_responses(),
        [
            (ms(0), 100, "OPTIONS".into()),
            (secs(10), 200, "OPTIONS".into())
        ]
    );
    p.assert_idle();
}

#[test]
fn non_invite_server_absorbs_retransmissions_while_trying() {
    let mut p = Pair::udp();
    p.client_sends(options("z9hG4bKopt4"));
    p.advance_to(ms(1600));
    assert_eq!(p.sent(Side::Client, is(Method::Options)).len(), 3);
    assert!(
        p.sent(Side::Server, |_| true).is_empty(),
        "nothing to resend while Trying"
    );
    assert_eq!(p.server_events.len(), 1);
    assert_eq!(p.server.server_count(), 1);
    p.server_responds(Method::Options, 200);
    // A retransmission crossing the final gets the final again (Completed).
    let again = options("z9hG4bKopt4");
    let from = p.client_peer();
    p.server.handle(p.now, Input::Received { msg: again, from });
    p.drive();
    assert_eq!(p.sent(Side::Server, status(200)), [ms(1600), ms(1600)]);
    assert_eq!(
        p.client_responses().len(),
        1,
        "Timer K absorbs the duplicate"
    );
    p.assert_idle();
}

#[test]
fn a_declined_non_invite_ends_at_once_and_a_retransmission_reaches_the_tu_again() {
    let mut p = Pair::udp();
    p.client_sends(options("z9hG4bKdecline"));
    let (key, _, _) = p.server_request(Method::Options);
    p.server.handle(p.now, Input::Decline { key: key.clone() });
    p.drive();
    assert_eq!(p.server.server_count(), 0, "nothing held for it");
    assert!(p.sent(Side::Server, |_| true).is_empty(), "nothing sent");
    // The client retransmits (Timer E): a new transaction, and the TU sees it again.
    p.advance_to(ms(600));
    let requests = p
        .server_events
        .iter()
        .filter(|(_, e)| matches!(e, TuEvent::Request { .. }))
        .count();
    assert_eq!(requests, 2);
    // Answered this time: declining now changes nothing.
    p.server_responds(Method::Options, 200);
    p.server.handle(p.now, Input::Decline { key });
    assert_eq!(p.client_responses().len(), 1);
    p.assert_idle();
}

#[test]
fn timer_k_absorbs_a_retransmitted_final() {
    let mut p = Pair::udp();
    p.client_sends(options("z9hG4bKopt5"));
    p.advance_to(ms(100));
    p.server_responds(Method::Options, 200);
    // The network duplicates the 200 a second later.
    let dup = p
        .wire
        .iter()
        .find(|w| w.msg.status() == Some(200))
        .unwrap()
        .msg
        .clone();
    p.advance_to(ms(1100));
    let from = p.server_peer();
    p.deliver(Side::Server, dup, from);
    p.drive();
    assert_eq!(p.client_responses(), [(ms(100), 200, "OPTIONS".into())]);
    assert_eq!(
        p.sent(Side::Client, |_| true),
        [ms(0)],
        "nothing sent in reaction"
    );
    p.advance_to(ms(5099));
    assert_eq!(p.client.client_count(), 1);
    p.advance_to(ms(5100));
    assert_eq!(p.client.client_count(), 0, "Timer K = T4 after the final");
    p.assert_idle();
}

// ---------------------------------------------------------------------------------------
// INVITE client (RFC 3261 §17.1.1, RFC 6026)

#[test]
fn invite_timer_a_doubles_without_cap_and_timer_b_times_out() {
    let mut p = Pair::udp();
    p.drop_if(|side, _| side == Side::Client);
    p.client_sends(invite("z9hG4bKinv1"));
    p.advance_to(ms(31_999));
    assert!(p.client_events.is_empty());
    assert_eq!(p.client.client_count(), 1);
    p.advance_to(secs(32));
    let sent = p.sent(Side::Client, is(Method::Invite));
    assert_eq!(sent, [0, 500, 1500, 3500, 7500, 15_500, 31_500].map(ms));
    assert_eq!(gaps(&sent), [500, 1000, 2000, 4000, 8000, 16_000].map(ms));
    assert_eq!(
        Pair::timeouts(&p.client_events),
        [(secs(32), "INVITE".into())]
    );
    assert_eq!((p.client.client_count(), p.client.server_count()), (0, 0));
    assert_eq!((p.server.client_count(), p.server.server_count()), (0, 0));
    p.assert_idle();
    assert_eq!(p.sent(Side::Client, |_| true).len(), 7);
}

#[test]
fn server_invite_sends_100_trying_at_once() {
    let mut p = Pair::udp();
    p.client_sends(invite("z9hG4bKinv2"));
    assert_eq!(p.sent(Side::Server, status(100)), [ms(0)]);
    let trying = &p
        .wire
        .iter()
        .find(|w| w.msg.status() == Some(100))
        .unwrap()
        .msg;
    assert_eq!(
        trying.to_header().unwrap().tag(),
        None,
        "a 100 carries no To tag"
    );
    assert!(matches!(
        p.server_events.as_slice(),
        [(_, TuEvent::Request { .. })]
    ));
    assert_eq!(p.client_responses(), [(ms(0), 100, "INVITE".into())]);
    // The provisional stopped Timer A.
    p.advance_to(secs(20));
    assert_eq!(p.sent(Side::Client, is(Method::Invite)), [ms(0)]);
    p.server_responds(Method::Invite, 486);
    p.assert_idle();
}

#[test]
fn retransmitted_invite_gets_the_latest_response() {
    let mut p = Pair::udp();
    p.drop_if(|side, _| side == Side::Server);
    p.client_sends(invite("z9hG4bKinv3"));
    p.advance_to(ms(200));
    p.server_responds(Method::Invite, 180);
    p.advance_to(ms(1500));
    let sent: Vec<_> = p
        .wire
        .iter()
        .filter(|w| w.from == Side::Server)
        .map(|w| (w.at, w.msg.status().unwrap()))
        .collect();
    assert_eq!(
        sent,
        [
            (ms(0), 100),
            (ms(200), 180),
            (ms(500), 180),
            (ms(1500), 180)
        ]
    );
    assert_eq!(
        p.server_events.len(),
        1,
        "retransmissions do not reach the TU"
    );
    p.drop_if(|_, _| false);
    p.server_responds(Method::Invite, 486);
    p.assert_idle();
}

/// A request answered as it arrives runs the transaction an answer after the
/// `TuEvent::Request` would: 100 at once, the final repeated on Timer G until the ACK,
/// retransmissions absorbed. The TU hears of none of it.
#[test]
fn answered_on_arrival_runs_the_same_transaction_without_a_tu_event() {
    let mut p = Pair::udp();
    p.answer_on_arrival = Some(404);
    // The first final and the first two ACKs are lost.
    let mut finals_seen = 0;
    let mut acks = drop_first(2, Side::Client, is(Method::Ack));
    p.drop_if(move |side, m| {
        if side == Side::Server && m.status() == Some(404) {
            finals_seen += 1;
            return finals_seen == 1;
        }
        acks(side, m)
    });
    p.client_sends(invite("z9hG4bKans1"));
    p.advance_to(secs(60));
    assert_eq!(p.sent(Side::Server, status(100)), [ms(0)]);
    assert_eq!(
        p.sent(Side::Server, status(404)),
        [0, 500, 1500, 3500].map(ms),
        "the final at once, then Timer G until an ACK gets through"
    );
    assert_eq!(p.delivered(Side::Client, is(Method::Ack)), [ms(3500)]);
    // The client's Timer A retransmitted the INVITE until the 100 arrived: it did at once.
    assert_eq!(p.sent(Side::Client, is(Method::Invite)), [ms(0)]);
    assert!(p.server_events.is_empty(), "{:?}", p.server_events);
    assert_eq!(
        p.client_responses(),
        [
            (ms(0), 100, "INVITE".into()),
            (ms(500), 404, "INVITE".into())
        ]
    );
    p.assert_idle();
}

/// A retransmission of a request answered on arrival goes to its transaction, which
/// repeats its answer; the new answer is unused.
#[test]
fn a_retransmission_answered_on_arrival_gets_the_first_answer() {
    let mut p = Pair::udp();
    p.answer_on_arrival = Some(403);
    p.drop_if(|side, m| side == Side::Server && m.status() == Some(403));
    p.client_sends(options("z9hG4bKans2"));
    p.advance_to(ms(500));
    p.answer_on_arrival = Some(500);
    p.drop_if(|_, _| false);
    p.advance_to(secs(1));
    assert_eq!(p.sent(Side::Server, status(403)), [0, 500].map(ms));
    assert!(p.sent(Side::Server, status(500)).is_empty());
    assert!(p.server_events.is_empty());
    p.assert_idle();
}

#[test]
fn busy_here_is_acked_by_the_client_and_absorbed_by_the_server() {
    let mut p = Pair::udp();
    p.client_sends(invite("z9hG4bKinv4"));
    p.advance_to(secs(1));
    p.server_responds(Method::Invite, 486);

    let acks = p.sent(Side::Client, is(Method::Ack));
    assert_eq!(acks, [secs(1)]);
    let ack = &p
        .wire
        .iter()
        .find(|w| w.msg.method() == Some(Method::Ack))
        .unwrap()
        .msg;
    assert_eq!(
        ack.top_via().unwrap().branch(),
        Some("z9hG4bKinv4"),
        "same branch as the INVITE"
    );
    assert_eq!(ack.to_header().unwrap().tag(), Some(SERVER_TAG));
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.first(HeaderName::Route), Some("<sip:192.0.2.20;lr>"));

    assert_eq!(
        p.client_responses(),
        [
            (ms(0), 100, "INVITE".into()),
            (secs(1), 486, "INVITE".into())
        ]
    );
    assert_eq!(
        p.server_events.len(),
        1,
        "the ACK for a non-2xx stays in the transaction"
    );
    // Confirmed: no Timer G retransmissions; Timer I (T4) ends it.
    p.advance_to(ms(5999));
    assert_eq!(p.server.server_count(), 1);
    p.advance_to(secs(6));
    assert_eq!(p.server.server_count(), 0);
    // Timer D (32 s) ends the client.
    p.advance_to(ms(32_999));
    assert_eq!(p.client.client_count(), 1);
    p.advance_to(secs(33));
    assert_eq!(p.client.client_count(), 0);
    assert_eq!(p.sent(Side::Server, status(486)), [secs(1)]);
    p.assert_idle();
}

#[test]
fn lost_acks_make_the_server_retransmit_and_the_client_reack() {
    let mut p = Pair::udp();
    p.drop_if(drop_first(5, Side::Client, is(Method::Ack)));
    p.client_sends(invite("z9hG4bKinv5"));
    p.advance_to(secs(1));
    p.server_responds(Method::Invite, 486);
    p.advance_to(secs(60));
    // Timer G: T1 doubling, capped at T2 (gaps 0.5, 1, 2, 4, 4).
    let finals = p.sent(Side::Server, status(486));
    assert_eq!(finals, [1000, 1500, 2500, 4500, 8500, 12_500].map(ms));
    assert_eq!(gaps(&finals), [500, 1000, 2000, 4000, 4000].map(ms));
    // Each retransmitted final is ACKed again; the sixth ACK gets through and stops G.
    assert_eq!(p.sent(Side::Client, is(Method::Ack)), finals);
    assert_eq!(p.delivered(Side::Client, is(Method::Ack)), [ms(12_500)]);
    assert_eq!(
        responses(&p.client_events)
            .iter()
            .filter(|r| r.1 == 486)
            .count(),
        1
    );
    assert!(Pair::timeouts(&p.server_events).is_empty());
    assert_eq!(p.server_events.len(), 1);
    p.assert_idle();
}

#[test]
fn timer_h_times_out_when_no_ack_arrives() {
    let mut p = Pair::udp();
    p.drop_if(|side, m| side == Side::Client && m.method() == Some(Method::Ack));
    p.client_sends(invite("z9hG4bKinv6"));
    p.advance_to(secs(1));
    p.server_responds(Method::Invite, 486);
    p.advance_to(ms(32_999));
    assert_eq!(p.server.server_count(), 1);
    p.advance_to(secs(33));
    let finals = p.sent(Side::Server, status(486));
    assert_eq!(
        finals,
        [
            1000, 1500, 2500, 4500, 8500, 12_500, 16_500, 20_500, 24_500, 28_500, 32_500
        ]
        .map(ms)
    );
    assert_eq!(
        Pair::timeouts(&p.server_events),
        [(secs(33), "INVITE".into())]
    );
    assert_eq!(p.server.server_count(), 0);
    assert_eq!(p.sent(Side::Client, is(Method::Ack)).len(), 11);
    p.assert_idle();
    assert_eq!(p.sent(Side::Server, status(486)).len(), 11);
}

#[test]
fn invite_2xx_goes_accepted_and_its_ack_reaches_the_tu() {
    let mut p = Pair::udp();
    p.client_sends(invite("z9hG4bKinv7"));
    p.advance_to(secs(1));
    p.server_responds(Method::Invite, 200);
    assert_eq!(
        p.client_responses(),
        [
            (ms(0), 100, "INVITE".into()),
            (secs(1), 200, "INVITE".into())
        ]
    );
    assert!(
        p.sent(Side::Client, is(Method::Ack)).is_empty(),
        "a 2xx ACK is the TU's"
    );
    assert_eq!((p.client.client_count(), p.server.server_count()), (1, 1));

    // The server TU retransmits its 2xx; the Accepted client passes it up again.
    p.advance_to(ms(1500));
    p.server_responds(Method::Invite, 200);
    assert_eq!(p.client_responses().len(), 3);

    // A retransmitted INVITE is absorbed while Accepted (RFC 6026).
    let from = p.client_peer();
    p.server.handle(
        p.now,
        Input::Received {
            msg: invite("z9hG4bKinv7"),
            from,
        },
    );
    p.drive();
    assert_eq!(p.sent(Side::Server, |_| true).len(), 3);

    // The client TU sends the ACK for the 2xx with a new branch: no transaction.
    let ack = request("ACK", "z9hG4bKack7", Transport::Udp);
    p.client_sends(ack);
    assert_eq!(p.client.client_count(), 1);
    let acks: Vec<_> = p
        .server_events
        .iter()
        .filter(|(_, e)| matches!(e, TuEvent::Ack { .. }))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(acks, [ms(1500)]);

    // Timers L and M (64·T1) end both sides.
    p.advance_to(ms(32_999));
    assert_eq!((p.client.client_count(), p.server.server_count()), (1, 1));
    p.advance_to(secs(33));
    assert_eq!((p.client.client_count(), p.server.server_count()), (0, 0));
    p.assert_idle();
}

// ---------------------------------------------------------------------------------------
// CANCEL (RFC 3261 §9)

#[test]
fn cancel_matching_an_invite_gets_200_and_ends_it_with_487() {
    let mut p = Pair::udp();
    let inv = invite("z9hG4bKinv8");
    p.client_sends(inv.clone());
    p.server_responds(Method::Invite, 180);
    p.advance_to(secs(1));
    p.client_sends(SipMessage::parse(build_cancel(&inv)).unwrap());

    let ok = p
        .wire
        .iter()
        .find(|w| w.msg.status() == Some(200))
        .expect("200 to CANCEL");
    assert_eq!(ok.at, secs(1));
    assert_eq!(ok.msg.cseq().unwrap().method, Method::Cancel);
    assert_eq!(
        ok.msg.to_header().unwrap().tag(),
        Some(SERVER_TAG),
        "same tag as the INVITE's 180"
    );
    let (invite_key, _, _) = p.server_request(Method::Invite);
    let cancelled: Vec<_> = p
        .server_events
        .iter()
        .filter_map(|(_, e)| match e {
            TuEvent::Cancelled { invite } => Some(invite.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, [invite_key]);
    assert_eq!(
        p.server_events.len(),
        2,
        "the CANCEL itself is not a TU request"
    );

    p.server_responds(Method::Invite, 487);
    assert_eq!(p.sent(Side::Client, is(Method::Ack)), [secs(1)]);
    assert_eq!(
        p.client_responses(),
        [
            (ms(0), 100, "INVITE".into()),
            (ms(0), 180, "INVITE".into()),
            (secs(1), 200, "CANCEL".into()),
            (secs(1), 487, "INVITE".into()),
        ]
    );
    assert_eq!(p.server_events.len(), 2, "ACK absorbed");
    p.assert_idle();
}

#[test]
fn cancel_after_the_final_gets_200_without_event() {
    let mut p = Pair::udp();
    let inv = invite("z9hG4bKinv9");
    p.client_sends(inv.clone());
    p.server_responds(Method::Invite, 486);
    p.advance_to(secs(2));
    assert_eq!(p.server.server_count(), 1, "Confirmed until Timer I");
    p.client_sends(SipMessage::parse(build_cancel(&inv)).unwrap());
    assert_eq!(p.sent(Side::Server, status(200)), [secs(2)]);
    assert_eq!(p.server_events.len(), 1, "no Cancelled event");
    p.assert_idle();
}

#[test]
fn unmatched_cancel_gets_481_and_retransmissions_are_absorbed() {
    let mut p = Pair::udp();
    p.drop_if(drop_first(1, Side::Server, status(481)));
    let never_sent = invite("z9hG4bKinv10");
    p.client_sends(SipMessage::parse(build_cancel(&never_sent)).unwrap());
    p.advance_to(secs(1));
    assert_eq!(p.sent(Side::Client, is(Method::Cancel)), [ms(0), ms(500)]);
    assert_eq!(p.sent(Side::Server, status(481)), [ms(0), ms(500)]);
    assert!(p.server_events.is_empty());
    assert_eq!(p.server.server_count(), 1, "one CANCEL transaction");
    assert_eq!(p.client_responses(), [(ms(500), 481, "CANCEL".into())]);
    p.assert_idle();
}

// ---------------------------------------------------------------------------------------
// Reliable transports: no retransmission, D/I/J/K zero.

#[test]
fn tcp_never_retransmits_but_b_f_h_still_fire() {
    let mut p = Pair::new(Transport::Tcp);
    p.drop_if(|side, m| {
        side == Side::Client
            && (m.method() == Some(Method::Options) || m.method() == Some(Method::Ack))
    });
    p.client_sends(request("OPTIONS", "z9hG4bKtcp1", Transport::Tcp));
    p.client_sends(request("INVITE", "z9hG4bKtcp2", Transport::Tcp));
    p.advance_to(secs(1));
    p.server_responds(Method::Invite, 486);
    p.advance_to(secs(40));
    assert_eq!(p.sent(Side::Client, is(Method::Options)), [ms(0)]);
    assert_eq!(p.sent(Side::Client, is(Method::Invite)), [ms(0)]);
    assert_eq!(p.sent(Side::Server, status(486)), [secs(1)], "no Timer G");
    assert_eq!(
        Pair::timeouts(&p.client_events),
        [(secs(32), "OPTIONS".into())]
    );
    assert_eq!(
        Pair::timeouts(&p.server_events),
        [(secs(33), "INVITE".into())]
    );
    p.assert_idle();
}

#[test]
fn tcp_completed_and_confirmed_states_end_at_once() {
    let mut p = Pair::new(Transport::Tcp);
    p.client_sends(request("OPTIONS", "z9hG4bKtcp3", Transport::Tcp));
    p.server_responds(Method::Options, 200);
    // Timer K and Timer J are zero.
    assert_eq!((p.client.client_count(), p.server.server_count()), (0, 0));

    p.client_sends(request("INVITE", "z9hG4bKtcp4", Transport::Tcp));
    p.advance_to(secs(2));
    p.server_responds(Method::Invite, 486);
    // Timer D and Timer I are zero: the ACK ends both at once.
    assert_eq!(p.sent(Side::Client, is(Method::Ack)), [secs(2)]);
    assert_eq!((p.client.client_count(), p.server.server_count()), (0, 0));
    assert_eq!(p.wire.len(), 6, "OPTIONS, 200, INVITE, 100, 486, ACK");
    p.assert_idle();
}

// ---------------------------------------------------------------------------------------
// RFC 2543 fallback (§17.2.3)

#[test]
fn rfc2543_retransmission_and_ack_matching_over_the_pair() {
    let mut p = Pair::udp();
    // A pre-RFC 3261 client: its branch has no magic cookie. Lose the 100 so it retransmits.
    p.drop_if(drop_first(1, Side::Server, status(100)));
    p.client_sends(invite("legacy-1"));
    p.advance_to(ms(600));
    assert_eq!(p.sent(Side::Client, is(Method::Invite)), [ms(0), ms(500)]);
    assert_eq!(
        p.server.server_count(),
        1,
        "the retransmission matched by fields"
    );
    let (key, _, _) = p.server_request(Method::Invite);
    assert!(!key.is_rfc3261());
    assert_eq!(p.server_events.len(), 1);
    p.server_responds(Method::Invite, 486);
    // The ACK carries our To tag and matches the INVITE transaction: no event, no Timer G.
    assert_eq!(p.sent(Side::Client, is(Method::Ack)), [ms(600)]);
    assert_eq!(p.server_events.len(), 1);
    p.advance_to(secs(5));
    assert_eq!(p.sent(Side::Server, status(486)), [ms(600)]);
    p.assert_idle();
}

#[test]
fn rfc2543_without_branch_on_the_server_layer() {
    let t0 = epoch();
    let mut server = TransactionLayer::new(Timers::default());
    let from = Peer::udp(CLIENT_ADDR.parse().unwrap());
    let text = |method: &str, to_tag: &str| {
        SipMessage::parse(
            format!(
                "{method} sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP {CLIENT_ADDR}\r\n\
                 From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>{to_tag}\r\n\
                 Call-ID: legacy-call\r\nCSeq: 5 {method}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
        .unwrap()
    };
    let drain = |layer: &mut TransactionLayer| {
        std::iter::from_fn(|| layer.poll_output()).collect::<Vec<_>>()
    };

    server.handle(
        t0,
        Input::Received {
            msg: text("INVITE", ""),
            from,
        },
    );
    let out = drain(&mut server);
    let [
        Output::Send { .. },
        Output::Event(TuEvent::Request { key, request, .. }),
    ] = out.as_slice()
    else {
        panic!("expected 100 then Request, got {out:?}");
    };
    let (key, request) = (key.clone(), request.clone());
    assert!(!key.is_rfc3261());

    // Retransmission: the 100 again, nothing for the TU.
    server.handle(
        t0 + ms(500),
        Input::Received {
            msg: text("INVITE", ""),
            from,
        },
    );
    assert!(matches!(
        drain(&mut server).as_slice(),
        [Output::Send { .. }]
    ));

    // A CANCEL matches by the same fields.
    server.handle(
        t0 + ms(600),
        Input::Received {
            msg: text("CANCEL", ""),
            from,
        },
    );
    let out = drain(&mut server);
    assert!(
        matches!(out.as_slice(), [Output::Send { .. }, Output::Event(TuEvent::Cancelled { invite })] if *invite == key),
        "{out:?}"
    );

    let terminated = ResponseBuilder::new(&request, 487)
        .to_tag("t2543")
        .received_from(from.addr)
        .build();
    server.handle(
        t0 + secs(1),
        Input::Respond {
            key,
            response: terminated,
        },
    );
    assert_eq!(drain(&mut server).len(), 1);

    // An ACK with another To tag is not ours: it goes to the TU.
    server.handle(
        t0 + ms(1100),
        Input::Received {
            msg: text("ACK", ";tag=other"),
            from,
        },
    );
    assert!(matches!(
        drain(&mut server).as_slice(),
        [Output::Event(TuEvent::Ack { .. })]
    ));
    // Timer G still runs.
    server.handle_timeout(t0 + ms(1500));
    assert!(matches!(
        drain(&mut server).as_slice(),
        [Output::Send { .. }]
    ));
    // The ACK with our tag matches: absorbed, Timer G stops, Timer I ends it.
    server.handle(
        t0 + ms(1600),
        Input::Received {
            msg: text("ACK", ";tag=t2543"),
            from,
        },
    );
    assert!(drain(&mut server).is_empty());
    server.handle_timeout(t0 + ms(6599));
    assert!(drain(&mut server).is_empty());
    assert_eq!(
        server.server_count(),
        2,
        "INVITE (Confirmed) and CANCEL (Completed)"
    );
    server.handle_timeout(t0 + ms(6600));
    assert_eq!(server.server_count(), 1, "Timer I = T4 after the ACK");
    server.handle_timeout(t0 + ms(32_600));
    assert_eq!(
        server.server_count(),
        0,
        "Timer J = 64·T1 after the CANCEL's 200"
    );
    server.handle_timeout(t0 + secs(60));
    assert!(drain(&mut server).is_empty());
    assert!(server.is_empty());
}

// ---------------------------------------------------------------------------------------
// Robustness and memory

#[test]
fn broken_messages_and_strays_never_panic() {
    let t0 = epoch();
    let mut layer = TransactionLayer::new(Timers::default());
    let from = Peer::udp(CLIENT_ADDR.parse().unwrap());
    let bad = [
        "OPTIONS sip:b@x SIP/2.0\r\nVia: garbage\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: x OPTIONS\r\n\r\n",
        "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 1 OPTIONS\r\n\r\n",
        "ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: bad<\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n",
        "SIP/2.0 200 OK\r\nVia: nope\r\nCSeq: 1 OPTIONS\r\n\r\n",
        "SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\n",
    ];
    for text in bad {
        let msg = SipMessage::parse(text.as_bytes()).unwrap();
        layer.handle(t0, Input::Received { msg, from });
    }
    assert!(layer.poll_output().is_none());
    // Garbage from the TU is dropped too.
    layer.handle(
        t0,
        Input::Respond {
            key: TransactionKey::server(&options("z9hG4bKx")).unwrap(),
            response: Bytes::from_static(b"junk"),
        },
    );
    assert!(layer.poll_output().is_none());
    // A well-formed response for no transaction is a stray.
    let stray = SipMessage::parse(
        &b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnone\r\nFrom: <sip:a@x>;tag=1\r\n\
           To: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"[..],
    )
    .unwrap();
    layer.handle(t0, Input::Received { msg: stray, from });
    assert!(matches!(
        layer.poll_output(),
        Some(Output::Event(TuEvent::StrayResponse { .. }))
    ));
    assert!(layer.is_empty());
}

#[test]
fn many_transactions_leave_nothing_behind() {
    let mut p = Pair::udp();
    // Lose every third transmission, in either direction.
    let mut n = 0u32;
    p.drop_if(move |_, _| {
        n += 1;
        n.is_multiple_of(3)
    });
    for i in 0..100 {
        p.client_sends(options(&format!("z9hG4bKo{i}")));
        p.client_sends(invite(&format!("z9hG4bKi{i}")));
    }
    assert_eq!(p.client.client_count(), 200);
    // The server TU answers every request a second after it arrives (non-2xx for INVITE:
    // a lost 2xx would be the TU's to retransmit).
    let mut answered = 0;
    for round in 1..=60 {
        p.advance_to(secs(round));
        let new: Vec<_> = p.server_events[answered..]
            .iter()
            .filter_map(|(_, e)| match e {
                TuEvent::Request { key, request, from } => {
                    Some((key.clone(), request.clone(), *from))
                }
                _ => None,
            })
            .collect();
        answered = p.server_events.len();
        for (key, request, from) in new {
            let code = if request.method() == Some(Method::Invite) {
                486
            } else {
                200
            };
            let response = ResponseBuilder::new(&request, code)
                .to_tag(SERVER_TAG)
                .received_from(from.addr)
                .build();
            p.server.handle(p.now, Input::Respond { key, response });
            p.drive();
        }
    }
    let finals = responses(&p.client_events)
        .iter()
        .filter(|r| r.1 >= 200)
        .count();
    assert_eq!(finals, 200, "every transaction completed despite the loss");
    assert!(Pair::timeouts(&p.client_events).is_empty());
    p.assert_idle();
}
