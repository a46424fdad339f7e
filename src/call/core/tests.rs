//! The call core on a virtual clock: a carrier (the caller, whose INVITE we answer) and
//! callees (the legs we dial) are scripted here, writing their messages with the SIP core's
//! own `Dialog` and `ResponseBuilder`; what the core sends is collected with the virtual
//! instant it left at, and a drop rule loses chosen transmissions.
//!
//! Nothing waits: time is an epoch plus offsets. Every scenario ends with every leg ended
//! and nothing left on the clock (`assert_quiet`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::leg::{self, Credentials, InviteSpec, Leg, LegState, Local};
use super::sdp::{LegSdp, SDP};
use super::*;
use crate::media::EndpointId;
use crate::sip::dialog::{Dialog, DialogState};
use crate::sip::msg::{HeaderName, ResponseBuilder, SipMessage};
use crate::sip::sdp::Direction;
use crate::sip::transaction::Timers;
use crate::sip::{Method, Peer, Transport};

const CARRIER: &str = "192.0.2.10:5060";
const OURS: &str = "192.0.2.1:5060";
const CALLEE_TAG: &str = "callee-tag";
const CARRIER_TAG: &str = "carrier-tag";

/// The epoch of virtual time: the only clock read in this module.
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

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn callee_addr(i: usize) -> SocketAddr {
    SocketAddr::new("192.0.2.30".parse().unwrap(), 5060 + i as u16)
}

fn parse(b: Bytes) -> SipMessage {
    SipMessage::parse(b).expect("a message the test or the core wrote parses")
}

/// An SDP body from a party at `ip:port`, with an optional direction attribute.
fn sdp(ip: &str, port: u16, direction: &str) -> Bytes {
    Bytes::from(format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    ))
}

/// The direction attribute of a body.
fn direction_of(body: &[u8]) -> &'static str {
    let text = std::str::from_utf8(body).unwrap();
    ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| text.contains(&format!("a={d}")))
        .unwrap_or("sendrecv")
}

/// One transmission by the core.
#[derive(Debug)]
struct Sent {
    at: Duration,
    to: Peer,
    msg: SipMessage,
}

type DropRule = Box<dyn FnMut(&SipMessage) -> bool>;

struct World {
    t0: Instant,
    now: Instant,
    core: CallCore,
    sent: Vec<Sent>,
    events: Vec<(Duration, Event)>,
    media: Vec<MediaOp>,
    lose: DropRule,
    /// The carrier's view of its dialog with us, once we answered.
    carrier: Option<Dialog>,
    carrier_invite: Option<SipMessage>,
    /// Each callee's view of its dialog with us, once it answered.
    callees: Vec<Option<Dialog>>,
}

impl World {
    fn new() -> World {
        let t0 = epoch();
        World {
            t0,
            now: t0,
            core: CallCore::new(CoreConfig {
                timers: Timers::default(),
                local: Local::new(None, addr(OURS)),
                server_name: "Switchboard-test".into(),
                sid: "CA00000000000000000000000000000001".into(),
            }),
            sent: Vec::new(),
            events: Vec::new(),
            media: Vec::new(),
            lose: Box::new(|_| false),
            carrier: None,
            carrier_invite: None,
            callees: Vec::new(),
        }
    }

    fn t1(&self) -> Duration {
        self.core.config().timers.t1
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Loses every transmission of the core for which `rule` says so.
    fn lose_if(&mut self, rule: impl FnMut(&SipMessage) -> bool + 'static) {
        self.lose = Box::new(rule);
    }

    fn collect(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { to, bytes } => {
                    let msg = parse(bytes);
                    if !(self.lose)(&msg) {
                        self.sent.push(Sent {
                            at: self.elapsed(),
                            to,
                            msg,
                        });
                    }
                }
                Output::Media(op) => self.media.push(op),
                Output::Event(ev) => self.events.push((self.elapsed(), ev)),
            }
        }
    }

    fn input(&mut self, input: Input) {
        self.core.handle(self.now, input);
        self.collect();
    }

    fn deliver(&mut self, msg: Bytes, from: SocketAddr) {
        let msg = parse(msg);
        self.input(Input::Received {
            msg,
            from: Peer::udp(from),
        });
    }

    /// Moves the clock forward by `d`, firing every timer due on the way at its instant.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = self.core.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.core.handle_timeout(self.now);
            self.collect();
        }
        self.now = until;
    }

    /// Messages sent so far with this method (requests) or status (responses).
    fn requests(&self, m: Method) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.msg.method() == Some(m))
            .collect()
    }

    fn responses(&self, code: u16) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.msg.status() == Some(code))
            .collect()
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).map(|(_, e)| e).collect()
    }

    // --- the carrier (main leg, UAS) ---

    /// The carrier's INVITE with an offer.
    fn carrier_calls(&mut self) {
        let body = sdp("192.0.2.10", 4000, "sendrecv");
        let invite = format!(
            "INVITE sip:+15550100001@{OURS} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {CARRIER};branch=z9hG4bKcarrier1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+15550100002@192.0.2.10>;tag={CARRIER_TAG}\r\n\
             To: <sip:+15550100001@{OURS}>\r\n\
             Call-ID: carrier-call-1\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:carrier@{CARRIER}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut bytes = invite.into_bytes();
        bytes.extend_from_slice(&body);
        let msg = parse(Bytes::from(bytes));
        self.carrier_invite = Some(msg.clone());
        self.input(Input::Received {
            msg,
            from: Peer::udp(addr(CARRIER)),
        });
        let media = LegSdp::new(EndpointId(1), 20000, "192.0.2.1".parse().unwrap(), 7);
        self.core.attach_main_media(media).unwrap();
        self.collect();
    }

    /// The carrier learns of our 2xx (the last one sent) and sets up its dialog.
    fn carrier_sees_2xx(&mut self) {
        let ok = self
            .sent
            .iter()
            .rev()
            .find(|s| s.msg.status() == Some(200) && s.msg.cseq().unwrap().method == Method::Invite)
            .expect("a 2xx to the caller")
            .msg
            .clone();
        let invite = self.carrier_invite.clone().unwrap();
        self.carrier = Some(Dialog::uac(&invite, &ok).unwrap());
    }

    /// The carrier sends a request in its dialog with us.
    fn carrier_sends(&mut self, method: Method, body: Option<Bytes>) -> SipMessage {
        let d = self.carrier.as_mut().expect("the carrier's dialog");
        let via = format!(
            "SIP/2.0/UDP {CARRIER};branch=z9hG4bK{}",
            crate::ids::random_u64()
        );
        let contact = format!("<sip:carrier@{CARRIER}>");
        let bytes = d.build_request(
            method,
            &via,
            Some(&contact),
            body.as_ref().map(|b| (SDP, b.as_ref())),
        );
        let msg = parse(bytes.clone());
        self.deliver(bytes, addr(CARRIER));
        msg
    }

    // --- callees (dial legs, UAC) ---

    /// Starts dial leg `i` towards a callee, optionally with credentials.
    fn dial(&mut self, credentials: Option<Credentials>) -> usize {
        let i = self.core.dial_count();
        let mut media = LegSdp::new(
            EndpointId(100 + i as u64),
            20002 + 2 * i as u16,
            "192.0.2.1".parse().unwrap(),
            9,
        );
        let offer = media.offer(Direction::SendRecv);
        let local = self.core.config().local.clone();
        let tag = format!("ours-{i}");
        let uri = format!("sip:bob@{}", callee_addr(i));
        let invite = leg::build_invite(
            &InviteSpec {
                uri: &uri,
                to: "<sip:bob@switchboard.local>",
                from: "<sip:+15550100002@192.0.2.1>",
                from_tag: &tag,
                call_id: &format!("dial-{i}"),
                cseq: 1,
                max_forwards: 69,
                routes: &[],
                transport: Transport::Udp,
                body: Some((SDP, offer.as_ref())),
                authorization: None,
                server: "Switchboard-test",
            },
            &local,
        );
        let key = TransactionKey::client_for_request(&invite).unwrap();
        let mut l = Leg::uac(
            format!("CA-child-{i}"),
            invite,
            key,
            Peer::udp(callee_addr(i)),
            tag,
        );
        l.credentials = credentials;
        l.media = Some(media);
        self.callees.push(None);
        self.input(Input::StartLeg {
            leg: Box::new(l),
            main: false,
        });
        i
    }

    /// The last INVITE sent to callee `i`.
    fn invite_to(&self, i: usize) -> SipMessage {
        self.sent
            .iter()
            .rev()
            .find(|s| s.msg.method() == Some(Method::Invite) && s.to.addr == callee_addr(i))
            .expect("an INVITE to the callee")
            .msg
            .clone()
    }

    /// Callee `i` answers our last INVITE to it with `code` (a 2xx with an SDP answer).
    fn callee_answers(&mut self, i: usize, code: u16) {
        let invite = self.invite_to(i);
        self.callee_answers_request(i, &invite, code, "sendrecv");
    }

    fn callee_answers_request(&mut self, i: usize, req: &SipMessage, code: u16, dir: &str) {
        let contact = format!("<sip:bob@{}>", callee_addr(i));
        let mut b = ResponseBuilder::new(req, code).to_tag(CALLEE_TAG);
        if (101..300).contains(&code) {
            b = b.header("Contact", contact);
        }
        if (200..300).contains(&code) {
            b = b.body(SDP, sdp("192.0.2.30", 30000 + i as u16, dir));
        }
        let resp = b.build();
        if code == 200 && req.cseq().unwrap().seq == 1 && self.callees[i].is_none() {
            self.callees[i] = Some(Dialog::uas(req, CALLEE_TAG, DialogState::Confirmed).unwrap());
        }
        self.deliver(resp, callee_addr(i));
    }

    /// Callee `i` sends a request in its dialog with us.
    fn callee_sends(&mut self, i: usize, method: Method, body: Option<Bytes>) -> SipMessage {
        let d = self.callees[i].as_mut().expect("the callee's dialog");
        let via = format!(
            "SIP/2.0/UDP {};branch=z9hG4bK{}",
            callee_addr(i),
            crate::ids::random_u64()
        );
        let contact = format!("<sip:bob@{}>", callee_addr(i));
        let bytes = d.build_request(
            method,
            &via,
            Some(&contact),
            body.as_ref().map(|b| (SDP, b.as_ref())),
        );
        let msg = parse(bytes.clone());
        self.deliver(bytes, callee_addr(i));
        msg
    }

    /// Answers a request the core sent (BYE, CANCEL, re-INVITE…) from where it went.
    fn reply(&mut self, req: &SipMessage, code: u16, to: SocketAddr) {
        let resp = ResponseBuilder::new(req, code).build();
        self.deliver(resp, to);
    }

    /// Answers every BYE the core sent, then lets every timer run out: every leg must be
    /// ended, and nothing may be left on the clock.
    fn assert_quiet(&mut self) {
        let byes: Vec<(SipMessage, SocketAddr)> = self
            .requests(Method::Bye)
            .iter()
            .map(|s| (s.msg.clone(), s.to.addr))
            .collect();
        for (bye, to) in byes {
            self.reply(&bye, 200, to);
        }
        self.advance(ms(64 * 500 + 40_000));
        if let Some(m) = self.core.main() {
            assert_eq!(m.state, LegState::Ended, "main leg still alive");
        }
        for i in 0..self.core.dial_count() {
            let l = self.core.leg(LegRef::Dial(i)).unwrap();
            assert_eq!(l.state, LegState::Ended, "dial leg {i} still alive");
        }
        assert!(
            !self.core.has_transactions(),
            "transactions left: {:?}",
            self.core
        );
        assert_eq!(self.core.poll_timeout(), None, "a timer is left");
    }
}

/// A carrier call answered with 200: our 2xx goes at 0, T1, 3·T1, 7·T1 … (intervals
/// doubling up to T2) until the ACK; once ACKed nothing more is sent. Losing the first two
/// ACKs changes nothing but the count.
#[test]
fn our_2xx_is_resent_until_the_ack() {
    let mut w = World::new();
    w.carrier_calls();
    w.input(Input::Answer {
        code: 200,
        reason: "",
    });
    let ok = w.responses(200);
    assert_eq!(ok.len(), 1);
    let body = ok[0].msg.body();
    assert!(
        std::str::from_utf8(&body)
            .unwrap()
            .contains("m=audio 20000 ")
    );
    w.advance(ms(3_700));
    let at: Vec<u64> = w
        .responses(200)
        .iter()
        .map(|s| s.at.as_millis() as u64)
        .collect();
    // 0, 500, 1500, 3500 (intervals 500, 1000, 2000).
    assert_eq!(at, vec![0, 500, 1500, 3500]);
    w.carrier_sees_2xx();
    w.carrier_sends(Method::Ack, None);
    w.advance(ms(20_000));
    assert_eq!(w.responses(200).len(), 4, "a 2xx after the ACK");
    assert!(w.requests(Method::Bye).is_empty());
    assert!(w.take_events().is_empty());
    // The carrier hangs up: 200 to its BYE, MainGone.
    w.carrier_sends(Method::Bye, None);
    assert_eq!(w.take_events(), vec![Event::MainGone]);
    w.assert_quiet();
}

/// No ACK ever: the 2xx goes until 64·T1 (intervals capped at T2), then the call ends with
/// our BYE and MainGone.
#[test]
fn no_ack_ends_the_call_with_bye_at_64_t1() {
    let mut w = World::new();
    w.carrier_calls();
    w.input(Input::Answer {
        code: 200,
        reason: "",
    });
    w.advance(ms(40_000));
    let at: Vec<u64> = w
        .responses(200)
        .iter()
        .map(|s| s.at.as_millis() as u64)
        .collect();
    assert_eq!(
        at,
        vec![
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    // One BYE (resent by its transaction while unanswered).
    let bye = w.requests(Method::Bye);
    assert!(
        bye.iter()
            .all(|b| b.msg.top_via().unwrap().branch() == bye[0].msg.top_via().unwrap().branch())
    );
    assert_eq!(bye[0].at, 64 * w.t1());
    assert_eq!(bye[0].to.addr, addr(CARRIER));
    assert_eq!(w.take_events(), vec![Event::MainGone]);
    w.assert_quiet();
}

/// CANCEL before the answer: the layer answers the CANCEL, we answer the INVITE with 487,
/// and the call hears MainGone.
#[test]
fn a_cancel_from_the_caller_ends_it_with_487() {
    let mut w = World::new();
    w.carrier_calls();
    w.input(Input::Ring { early: false });
    assert_eq!(w.responses(180).len(), 1);
    let invite = w.carrier_invite.clone().unwrap();
    let cancel = crate::sip::transaction::build_cancel(&invite);
    w.deliver(cancel, addr(CARRIER));
    assert_eq!(w.responses(487).len(), 1);
    assert_eq!(w.take_events(), vec![Event::MainGone]);
    // The carrier ACKs the 487 (hop by hop; the layer absorbs it).
    let ack = format!(
        "ACK sip:+15550100001@{OURS} SIP/2.0\r\nVia: SIP/2.0/UDP {CARRIER};branch=z9hG4bKcarrier1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15550100002@192.0.2.10>;tag={CARRIER_TAG}\r\n\
         To: {}\r\nCall-ID: carrier-call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        w.responses(487)[0].msg.first(HeaderName::To).unwrap()
    );
    w.deliver(Bytes::from(ack), addr(CARRIER));
    w.assert_quiet();
}

/// Two callees answer at once: the first wins; we cancel the other as the interpreter does,
/// and its 2xx crossing our CANCEL gets ACK and BYE.
#[test]
fn two_simultaneous_answers_the_late_one_gets_ack_and_bye() {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(None);
    let b = w.dial(None);
    w.callee_answers(a, 180);
    w.callee_answers(b, 180);
    w.callee_answers(a, 200);
    assert_eq!(
        w.take_events(),
        vec![
            Event::Dial(a, LegEv::Ringing { early: false }),
            Event::Dial(b, LegEv::Ringing { early: false }),
            Event::Dial(a, LegEv::Answered),
        ]
    );
    // The winner's answer pointed its endpoint at it.
    assert!(matches!(
        w.media.last(),
        Some(MediaOp::Configure(EndpointId(100), p)) if p.remote_rtp.port() == 30000
    ));
    w.input(Input::Cancel(LegRef::Dial(b)));
    let cancels = w.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].to.addr, callee_addr(b));
    // b's 2xx crosses the CANCEL.
    w.callee_answers(b, 200);
    let acks: Vec<SocketAddr> = w.requests(Method::Ack).iter().map(|s| s.to.addr).collect();
    assert_eq!(acks, vec![callee_addr(a), callee_addr(b)]);
    let byes: Vec<SocketAddr> = w.requests(Method::Bye).iter().map(|s| s.to.addr).collect();
    assert_eq!(byes, vec![callee_addr(b)]);
    assert!(w.take_events().is_empty(), "the late answer is no event");
    // Its 2xx again (our ACK lost): the same ACK again, no second BYE.
    w.callee_answers(b, 200);
    assert_eq!(w.requests(Method::Ack).len(), 3);
    assert_eq!(w.requests(Method::Bye).len(), 1);
    // The CANCEL's 200, then the call ends.
    let cancel = w.requests(Method::Cancel)[0].msg.clone();
    w.reply(&cancel, 200, callee_addr(b));
    w.input(Input::Bye(LegRef::Dial(a)));
    w.input(Input::Answer {
        code: 480,
        reason: "",
    });
    w.assert_quiet();
}

/// CANCEL must wait for a provisional (RFC 3261 §9.1): nothing goes while the callee has
/// sent nothing but 100; the CANCEL leaves with the first 180, even when the first CANCEL
/// is lost (the layer resends it), and the 487 is no event.
#[test]
fn cancel_waits_for_a_provisional() {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(None);
    w.callee_answers(a, 100);
    w.input(Input::Cancel(LegRef::Dial(a)));
    w.advance(ms(2_000));
    assert!(
        w.requests(Method::Cancel).is_empty(),
        "CANCEL before a provisional"
    );
    let mut first = true;
    w.lose_if(move |m| {
        let lose = first && m.method() == Some(Method::Cancel);
        if lose {
            first = false;
        }
        lose
    });
    w.callee_answers(a, 180);
    assert!(w.requests(Method::Cancel).is_empty());
    w.advance(ms(600));
    let cancels = w.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1, "the lost CANCEL resent at T1");
    let cancel = cancels[0].msg.clone();
    w.reply(&cancel, 200, callee_addr(a));
    w.callee_answers(a, 487);
    assert!(
        w.take_events().is_empty(),
        "a cancelled leg is no event: {:?}",
        w.events
    );
    w.input(Input::Answer {
        code: 480,
        reason: "",
    });
    w.assert_quiet();
}

/// A 2xx after our CANCEL: ACK and BYE, and no event.
#[test]
fn a_2xx_after_our_cancel_gets_ack_and_bye() {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(None);
    w.callee_answers(a, 180);
    w.take_events();
    w.input(Input::Cancel(LegRef::Dial(a)));
    assert_eq!(w.requests(Method::Cancel).len(), 1);
    w.callee_answers(a, 200);
    assert_eq!(w.requests(Method::Ack).len(), 1);
    assert_eq!(w.requests(Method::Bye).len(), 1);
    assert!(w.take_events().is_empty());
    let cancel = w.requests(Method::Cancel)[0].msg.clone();
    w.reply(&cancel, 481, callee_addr(a));
    w.input(Input::Answer {
        code: 487,
        reason: "",
    });
    w.assert_quiet();
}

fn creds(realm: Option<&str>) -> Option<Credentials> {
    Some(Credentials {
        username: "trunkuser".into(),
        password: "s3cret".into(),
        realm: realm.map(str::to_string),
    })
}

fn challenge(w: &mut World, i: usize, code: u16, realm: &str) {
    let invite = w.invite_to(i);
    let header = if code == 407 {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    let value = format!(
        "Digest realm=\"{realm}\", nonce=\"n{}\", qop=\"auth\"",
        w.sent.len()
    );
    let resp = ResponseBuilder::new(&invite, code)
        .to_tag(CALLEE_TAG)
        .header(header, value)
        .build();
    w.deliver(resp, callee_addr(i));
}

/// A 407 for the configured realm is answered once, with CSeq + 1 and a new branch; a
/// second challenge fails the leg.
#[test]
fn a_challenge_is_answered_once() {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(creds(Some("carrier.example")));
    challenge(&mut w, a, 407, "carrier.example");
    let invites = w.requests(Method::Invite);
    assert_eq!(invites.len(), 2);
    let again = &invites[1].msg;
    assert_eq!(again.cseq().unwrap().seq, 2);
    assert_ne!(
        again.top_via().unwrap().branch(),
        invites[0].msg.top_via().unwrap().branch()
    );
    let auth = again.values_by_name("Proxy-Authorization").next().unwrap();
    assert!(auth.contains("username=\"trunkuser\""), "{auth}");
    assert!(auth.contains("realm=\"carrier.example\""), "{auth}");
    assert!(w.take_events().is_empty());
    challenge(&mut w, a, 407, "carrier.example");
    assert_eq!(w.requests(Method::Invite).len(), 2, "answered twice");
    assert_eq!(w.take_events(), vec![Event::Dial(a, LegEv::Failed(407))]);
    w.input(Input::Answer {
        code: 503,
        reason: "",
    });
    w.assert_quiet();
}

/// A challenge for another realm than the credentials' is not answered: the leg fails.
#[test]
fn a_challenge_for_another_realm_is_not_answered() {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(creds(Some("carrier.example")));
    challenge(&mut w, a, 401, "evil.example");
    assert_eq!(w.requests(Method::Invite).len(), 1);
    assert_eq!(w.take_events(), vec![Event::Dial(a, LegEv::Failed(401))]);
    // And a leg without credentials never answers one.
    let b = w.dial(None);
    challenge(&mut w, b, 401, "carrier.example");
    assert_eq!(w.requests(Method::Invite).len(), 2);
    assert_eq!(w.take_events(), vec![Event::Dial(b, LegEv::Failed(401))]);
    w.input(Input::Answer {
        code: 503,
        reason: "",
    });
    w.assert_quiet();
}

/// Carrier and callee answered and bridged: the steps every in-dialog test starts from.
fn bridged() -> (World, usize) {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(None);
    w.callee_answers(a, 200);
    w.input(Input::Bridge(a));
    assert!(
        w.media
            .contains(&MediaOp::Bridge(EndpointId(1), EndpointId(100)))
    );
    w.input(Input::Answer {
        code: 200,
        reason: "",
    });
    w.carrier_sees_2xx();
    w.carrier_sends(Method::Ack, None);
    w.take_events();
    w.media.clear();
    (w, a)
}

/// The carrier puts the call on hold: we answer its re-INVITE ourselves (recvonly) and pass
/// the hold to the callee as our own sendonly re-INVITE; its answer is ACKed and points the
/// relay; resuming passes back the same way.
#[test]
fn hold_is_passed_to_the_other_leg() {
    let (mut w, a) = bridged();
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendonly")));
    let ok = w
        .responses(200)
        .into_iter()
        .rfind(|s| s.to.addr == addr(CARRIER))
        .unwrap();
    assert_eq!(direction_of(&ok.msg.body()), "recvonly");
    // The relay now only hears the carrier (which takes nothing while it holds).
    assert!(matches!(
        w.media.first(),
        Some(MediaOp::Configure(EndpointId(1), p)) if !p.sending && p.receiving
    ));
    let reinvite = w.invite_to(a);
    assert_eq!(reinvite.cseq().unwrap().seq, 2);
    assert_eq!(direction_of(&reinvite.body()), "sendonly");
    w.callee_answers_request(a, &reinvite, 200, "recvonly");
    let acks = w.requests(Method::Ack);
    assert_eq!(acks.last().unwrap().to.addr, callee_addr(a));
    assert_eq!(acks.last().unwrap().msg.cseq().unwrap().seq, 2);
    assert!(matches!(
        w.media.last(),
        Some(MediaOp::Configure(EndpointId(100), p)) if p.sending && !p.receiving
    ));
    // The same hold again passes nothing on.
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendonly")));
    assert_eq!(
        w.requests(Method::Invite).len(),
        2,
        "INVITE, re-INVITE only"
    );
    // Resume.
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendrecv")));
    let resume = w.invite_to(a);
    assert_eq!(resume.cseq().unwrap().seq, 3);
    assert_eq!(direction_of(&resume.body()), "sendrecv");
    w.callee_answers_request(a, &resume, 200, "sendrecv");
    assert!(w.take_events().is_empty());
    w.input(Input::Bye(LegRef::Main));
    w.input(Input::Bye(LegRef::Dial(a)));
    w.assert_quiet();
}

/// Glare: the callee's re-INVITE crossing ours gets 491 and changes nothing; our re-INVITE
/// refused with 491 goes again after the §14.1 back-off (2.1 to 4 s: we own the leg's
/// Call-ID), and its answer applies.
#[test]
fn glare_gets_491_and_ours_is_retried_after_the_back_off() {
    let (mut w, a) = bridged();
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendonly")));
    let ours = w.invite_to(a);
    let configured = w.media.len();
    // The callee's own re-INVITE crosses ours.
    w.callee_sends(
        a,
        Method::Invite,
        Some(sdp("192.0.2.31", 31000, "sendrecv")),
    );
    let glare = w.responses(491);
    assert_eq!(glare.len(), 1);
    assert_eq!(glare[0].to.addr, callee_addr(a));
    assert_eq!(w.media.len(), configured, "a 491'd offer changed the relay");
    // The callee refuses ours with 491 too.
    let refused_at = w.elapsed();
    w.callee_answers_request(a, &ours, 491, "");
    assert_eq!(w.requests(Method::Invite).len(), 2);
    w.advance(ms(5_000));
    // One per CSeq: the first INVITE, our re-INVITE, its retry (the layer resends each
    // unanswered INVITE at T1, which is not what is counted here).
    let mut invites = w.requests(Method::Invite);
    invites.dedup_by_key(|s| s.msg.cseq().unwrap().seq);
    assert_eq!(invites.len(), 3, "our re-INVITE was not retried");
    let waited = invites[2].at - refused_at;
    assert!(
        waited >= ms(2_100) && waited <= ms(4_000),
        "back-off {waited:?} outside 2.1..4 s"
    );
    let retry = invites[2].msg.clone();
    assert_eq!(direction_of(&retry.body()), "sendonly");
    assert!(retry.cseq().unwrap().seq > ours.cseq().unwrap().seq);
    w.callee_answers_request(a, &retry, 200, "recvonly");
    assert!(matches!(
        w.media.last(),
        Some(MediaOp::Configure(EndpointId(100), p)) if p.sending && !p.receiving
    ));
    w.input(Input::Bye(LegRef::Main));
    w.input(Input::Bye(LegRef::Dial(a)));
    w.assert_quiet();
}

/// The back-off's ranges, in units of 10 ms.
#[test]
fn glare_back_off_ranges() {
    use super::in_dialog::glare_backoff;
    assert_eq!(glare_backoff(true, 0), ms(2_100));
    assert_eq!(glare_backoff(true, 190), ms(4_000));
    assert_eq!(glare_backoff(false, 0), ms(0));
    assert_eq!(glare_backoff(false, 200), ms(2_000));
    for r in [1u64, 77, 1_000_003, u64::MAX] {
        let owner = glare_backoff(true, r);
        assert!(owner >= ms(2_100) && owner <= ms(4_000));
        assert_eq!(owner.as_millis() % 10, 0);
        assert!(glare_backoff(false, r) <= ms(2_000));
    }
}

/// Our re-INVITE refused (488): the session stays as it was: the relay is not touched, and
/// the same hold asked again is offered again (nothing believes it was agreed).
#[test]
fn a_failed_reinvite_leaves_the_session_as_it_was() {
    let (mut w, a) = bridged();
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendonly")));
    let ours = w.invite_to(a);
    w.media.clear();
    w.callee_answers_request(a, &ours, 488, "");
    assert!(w.media.is_empty(), "a refused offer touched the relay");
    assert!(
        w.take_events().is_empty(),
        "a refused re-INVITE ends nothing"
    );
    let leg = w.core.leg(LegRef::Dial(a)).unwrap();
    let media = leg.media.as_ref().unwrap();
    assert_eq!(media.asked_direction, Direction::SendRecv);
    assert!(!media.awaiting_answer);
    assert!(media.params.unwrap().sending && media.params.unwrap().receiving);
    // Asked again, the hold goes again, and this time it is agreed.
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendonly")));
    let again = w.invite_to(a);
    assert!(again.cseq().unwrap().seq > ours.cseq().unwrap().seq);
    assert_eq!(direction_of(&again.body()), "sendonly");
    w.callee_answers_request(a, &again, 200, "recvonly");
    w.input(Input::Bye(LegRef::Main));
    w.input(Input::Bye(LegRef::Dial(a)));
    w.assert_quiet();
}

/// A re-INVITE of ours answered 481 (the dialog is gone at the far end): that leg ends with
/// BYE and the call hears it hung up.
#[test]
fn a_481_to_our_reinvite_ends_the_leg() {
    let (mut w, a) = bridged();
    w.carrier_sends(Method::Invite, Some(sdp("192.0.2.10", 4000, "sendonly")));
    let ours = w.invite_to(a);
    w.callee_answers_request(a, &ours, 481, "");
    assert_eq!(w.take_events(), vec![Event::Dial(a, LegEv::HungUp)]);
    assert_eq!(w.requests(Method::Bye).len(), 1);
    w.input(Input::Bye(LegRef::Main));
    w.assert_quiet();
}

/// BYE from the callee while bridged: HungUp; INFO from one bridged leg reaches the other
/// and its answer comes back.
#[test]
fn bridged_legs_pass_info_and_hear_bye() {
    let (mut w, a) = bridged();
    let info = Bytes::from_static(b"Signal=5\r\nDuration=160\r\n");
    let d = w.carrier.as_mut().unwrap();
    let via = format!("SIP/2.0/UDP {CARRIER};branch=z9hG4bKinfo1");
    let bytes = d.build_request(
        Method::Info,
        &via,
        None,
        Some(("application/dtmf-relay", info.as_ref())),
    );
    w.deliver(bytes, addr(CARRIER));
    let passed = w.requests(Method::Info);
    assert_eq!(passed.len(), 1);
    assert_eq!(passed[0].to.addr, callee_addr(a));
    assert_eq!(passed[0].msg.body(), info);
    let passed = passed[0].msg.clone();
    w.reply(&passed, 200, callee_addr(a));
    let to_carrier = w
        .responses(200)
        .into_iter()
        .rfind(|s| s.msg.cseq().unwrap().method == Method::Info)
        .unwrap();
    assert_eq!(to_carrier.to.addr, addr(CARRIER));
    assert!(
        w.take_events().is_empty(),
        "a passed INFO is no digit for us"
    );
    w.callee_sends(a, Method::Bye, None);
    assert_eq!(w.take_events(), vec![Event::Dial(a, LegEv::HungUp)]);
    w.input(Input::Unbridge);
    w.input(Input::Bye(LegRef::Main));
    w.assert_quiet();
}

/// Not bridged, a SIP INFO digit is ours (Gather).
#[test]
fn info_digit_when_not_bridged_is_an_event() {
    let mut w = World::new();
    w.carrier_calls();
    w.input(Input::Answer {
        code: 200,
        reason: "",
    });
    w.carrier_sees_2xx();
    w.carrier_sends(Method::Ack, None);
    let d = w.carrier.as_mut().unwrap();
    let via = format!("SIP/2.0/UDP {CARRIER};branch=z9hG4bKinfo2");
    let bytes = d.build_request(
        Method::Info,
        &via,
        None,
        Some(("application/dtmf-relay", b"Signal=7\r\nDuration=100\r\n")),
    );
    w.deliver(bytes, addr(CARRIER));
    assert_eq!(w.take_events(), vec![Event::Digit(LegRef::Main, '7')]);
    w.input(Input::MediaTimeout);
    assert_eq!(w.take_events(), vec![Event::MainGone]);
    assert_eq!(w.requests(Method::Bye).len(), 1);
    w.assert_quiet();
}

/// A request for a dialog we do not have gets 481.
#[test]
fn unknown_dialog_gets_481() {
    let mut w = World::new();
    w.carrier_calls();
    let stray = format!(
        "BYE sip:switchboard@{OURS} SIP/2.0\r\nVia: SIP/2.0/UDP {CARRIER};branch=z9hG4bKstray\r\n\
         Max-Forwards: 70\r\nFrom: <sip:x@192.0.2.10>;tag=x\r\nTo: <sip:y@{OURS}>;tag=nope\r\n\
         Call-ID: carrier-call-1\r\nCSeq: 5 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    w.deliver(Bytes::from(stray), addr(CARRIER));
    assert_eq!(w.responses(481).len(), 1);
    w.input(Input::Answer {
        code: 480,
        reason: "",
    });
    w.assert_quiet();
}

/// A browser leg whose DTLS failed: a ringing leg is left alone (its answer or its media
/// timeout decides), an answered one gets BYE and reads as hung up; the other leg stays.
#[test]
fn failed_secure_media_ends_only_an_answered_leg() {
    let mut w = World::new();
    w.carrier_calls();
    let a = w.dial(None);
    w.callee_answers(a, 180);
    let _ = w.take_events();
    w.input(Input::MediaFailed(LegRef::Dial(a)));
    assert!(w.take_events().is_empty());
    assert!(w.requests(Method::Bye).is_empty());
    w.callee_answers(a, 200);
    assert_eq!(w.take_events(), vec![Event::Dial(a, LegEv::Answered)]);
    w.input(Input::MediaFailed(LegRef::Dial(a)));
    assert_eq!(w.take_events(), vec![Event::Dial(a, LegEv::HungUp)]);
    let byes: Vec<SocketAddr> = w.requests(Method::Bye).iter().map(|s| s.to.addr).collect();
    assert_eq!(byes, vec![callee_addr(a)]);
    // Reported again (it is not): nothing more.
    w.input(Input::MediaFailed(LegRef::Dial(a)));
    assert!(w.take_events().is_empty());
    assert_eq!(w.requests(Method::Bye).len(), 1);
}
