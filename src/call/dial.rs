//! `<Dial>`: find who to ring (a client's registered contacts after reading its presence, a
//! number through the trunk `[[routes]]` pick, a SIP URI), ring up to ten at once, let the
//! first answer win and cancel the rest, bridge, and report `DialCallStatus` the way Twilio
//! does (reference/twiml-and-twilio-client.md §1.2, §1.3, §2.4).
//!
//! The caller's INVITE is answered when the callee answers (with our own SDP: the relay
//! anchors the media): in SIP terms every Dial behaves like `answerOnBridge="true"`.

use std::net::SocketAddr;
use std::time::Duration;

use super::core::Input;
use super::core::leg::{self, Credentials, InviteSpec, Leg, LegState, Role};
use super::driver::{Call, Ev, LegEv, LegRef, Stop, now};
use super::{CallInfo, CallStatus, Direction, new_call_sid};
use crate::instructions::{Dial, DialNoun, DialTarget};
use crate::registrar::location::AorKey;
use crate::sip::transaction::TransactionKey;
use crate::sip::{Peer, Transport};
use crate::time::unix_ms;
use crate::webhook::ssrf::Guard;

/// Twilio rings at most ten nouns at once.
const MAX_FORKS: usize = 10;

/// Who one noun (or a REST `To`) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callee {
    Client(String),
    Number(String),
    Sip {
        uri: String,
        username: Option<String>,
        password: Option<String>,
    },
}

impl Callee {
    /// A REST `To`: `client:alice`, `sip:…`, or a number.
    pub fn parse_to(to: &str) -> Callee {
        if let Some(id) = to.strip_prefix("client:") {
            Callee::Client(id.to_string())
        } else if to.starts_with("sip:") || to.starts_with("sips:") {
            Callee::Sip {
                uri: to.to_string(),
                username: None,
                password: None,
            }
        } else {
            Callee::Number(to.to_string())
        }
    }

    /// Twilio's spelling of the callee in `To`.
    pub fn party(&self) -> String {
        match self {
            Callee::Client(id) => format!("client:{id}"),
            Callee::Number(n) => n.clone(),
            Callee::Sip { uri, .. } => uri.clone(),
        }
    }
}

/// One contact to send an INVITE to.
#[derive(Debug, Clone)]
pub struct Target {
    pub callee: Callee,
    pub uri: String,
    pub to_header: String,
    pub peer: Peer,
    pub routes: Vec<Box<str>>,
    pub credentials: Option<Credentials>,
    pub client: Option<AorKey>,
    pub trunk: Option<String>,
    /// A hop to the cluster node that holds the client's flow (`call::hop`).
    pub hop: Option<super::hop::HopSpec>,
}

/// Why a callee has nothing to ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// A client with no live registration.
    Offline,
    /// No route or no usable address.
    NoRoute(String),
    /// The destination policy refuses the address (private, loopback, link-local… and
    /// not in `[calls] allow_private_networks`).
    Refused(String),
}

/// The destination policy for SIP calls the switch places: the webhook SSRF ranges, with
/// `[calls] allow_private_networks` as the allow-list. A customer's `<Dial><Sip>` or REST
/// `To` must not make the switch send INVITEs (and media) into its own network or to a
/// cloud metadata address. Trunks are exempt: their `outbound_uri` is the operator's.
pub fn destination_guard(cfg: &crate::config::Config) -> Guard {
    Guard::for_setting(&cfg.calls.private_nets, "calls.allow_private_networks")
}

/// What `<Dial>` reports to its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialResult {
    /// `DialCallStatus`: completed, busy, no-answer, failed, canceled.
    pub status: &'static str,
    pub call_sid: Option<String>,
    pub duration: u64,
    /// Parameters beyond Twilio's (DialClientPresence).
    pub extra: Vec<(String, String)>,
}

impl DialResult {
    /// The action's parameters.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut p = vec![("DialCallStatus".to_string(), self.status.to_string())];
        if let Some(sid) = &self.call_sid {
            p.push(("DialCallSid".into(), sid.clone()));
        }
        p.push(("DialCallDuration".into(), self.duration.to_string()));
        p.extend(self.extra.iter().cloned());
        p
    }
}

/// Twilio's `DialCallStatus` for a set of final SIP codes, none of which answered.
pub fn failure_status(codes: &[u16]) -> &'static str {
    if codes.iter().any(|c| matches!(c, 486 | 600 | 603)) {
        "busy"
    } else if codes.is_empty() || codes.iter().all(|c| matches!(c, 408 | 480 | 487)) {
        "no-answer"
    } else {
        "failed"
    }
}

impl Call {
    /// The contacts `callee` is reached at. A client's presence is read here: offline means
    /// nobody to ring.
    pub async fn targets(&self, callee: &Callee) -> Result<Vec<Target>, Unreachable> {
        let (cfg, plan) = self.svc.config();
        match callee {
            Callee::Client(identity) => {
                let key = AorKey::new(self.info.account_sid.as_str(), identity.as_str());
                let bindings = self.svc.store.lookup(&key, crate::time::unix_now());
                if bindings.is_empty() {
                    return Err(Unreachable::Offline);
                }
                let to = format!("<sip:{}@{}>", leg::escape_user(identity), cfg.server.realm);
                let guard = destination_guard(&cfg);
                // In a cluster, a binding whose flow ends at another node is reached
                // through that node: one hop per node, however many contacts it holds.
                // A call that is itself a hop rings only the contacts here.
                let own = self.svc.registrar.edge().map(|e| &*e.node);
                let store = &self.svc.store;
                // A live node reaches its clients. A dead one's TCP flows died with it;
                // its UDP clients are reached from here, at the address they registered
                // from (RFC 5626: the flow is the client's, any node can send on it).
                let is_remote = |b: &&crate::registrar::location::Binding| {
                    b.edge.as_ref().is_some_and(|e| {
                        Some(&*e.node) != own
                            && (store.edge_alive(&e.node) || b.transport.is_reliable())
                    })
                };
                let mut bindings = bindings;
                bindings.retain(|b| {
                    !b.edge.as_ref().is_some_and(|e| {
                        Some(&*e.node) != own
                            && !store.edge_alive(&e.node)
                            && b.transport.is_reliable()
                    })
                });
                let mut hops: Vec<Target> = Vec::new();
                if !self.app.hop {
                    for b in bindings.iter().filter(is_remote) {
                        let Some(edge) = &b.edge else { continue };
                        if hops.iter().any(|h| h.peer.addr == edge.addr) {
                            continue;
                        }
                        hops.push(Target {
                            callee: callee.clone(),
                            uri: format!("sip:{}@{}", leg::escape_user(identity), edge.addr),
                            to_header: to.clone(),
                            peer: Peer::udp(edge.addr),
                            routes: Vec::new(),
                            credentials: None,
                            // The edge node's leg to the client sets it busy.
                            client: None,
                            trunk: None,
                            hop: Some(super::hop::HopSpec {
                                account: self.info.account_sid.clone(),
                            }),
                        });
                    }
                }
                let mut targets: Vec<Target> = bindings
                    .iter()
                    .filter(|b| !is_remote(b))
                    .filter_map(|b| {
                        let peer = match b.transport {
                            // Streams: down the client's own connection (a WebSocket's
                            // Contact names an `.invalid` host, RFC 7118 §5).
                            t @ (Transport::Tcp
                            | Transport::Tls
                            | Transport::Ws
                            | Transport::Wss) => Peer::stream(t, b.source, b.conn?),
                            // RFC 5626 `ob`: the client asks to be reached on its flow.
                            Transport::Udp if b.contact.contains(";ob") => Peer::udp(b.source),
                            // The Contact's address when it is on the host the client
                            // registered from (any port: a phone or a SIPp pair may
                            // register from one port and take calls on another) or passes
                            // the policy. Otherwise the address the REGISTER came from: a
                            // contact naming a private address behind NAT is unreachable
                            // anyway, and one naming somebody else's host would make us a
                            // reflector.
                            Transport::Udp => Peer::udp(
                                leg::uri_addr(&b.contact)
                                    .filter(|a| {
                                        a.ip() == b.source.ip() || guard.check_ip(a.ip()).is_ok()
                                    })
                                    .unwrap_or(b.source),
                            ),
                        };
                        Some(Target {
                            callee: callee.clone(),
                            uri: b.contact.to_string(),
                            to_header: to.clone(),
                            peer,
                            routes: b.path.to_vec(),
                            credentials: None,
                            client: Some(key.clone()),
                            trunk: None,
                            hop: None,
                        })
                    })
                    .collect();
                targets.extend(hops);
                if targets.is_empty() {
                    return Err(Unreachable::Offline);
                }
                Ok(targets)
            }
            Callee::Number(number) => {
                // Only this call's account's routes (or shared ones): never another
                // account's trunk and credentials.
                let Some(route) = plan.outbound(&self.info.account_sid, number) else {
                    return Err(Unreachable::NoRoute(format!(
                        "no route of account {} for {number}",
                        self.info.account_sid
                    )));
                };
                let Some(trunk_uri) = route.outbound_uri.clone() else {
                    return Err(Unreachable::NoRoute(route.why()));
                };
                let Some((host, port)) = leg::uri_hostport(&trunk_uri) else {
                    return Err(Unreachable::NoRoute(format!("bad trunk URI {trunk_uri}")));
                };
                let addr = resolve(&host, port)
                    .await
                    .first()
                    .copied()
                    .ok_or_else(|| Unreachable::NoRoute(format!("cannot resolve {host}")))?;
                let hostport = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let uri = format!("sip:{}@{hostport}", leg::escape_user(number));
                let trunk = cfg.trunks.iter().find(|t| t.name == route.trunk);
                let credentials = trunk.and_then(|t| {
                    Some(Credentials {
                        username: t.username.clone()?,
                        password: t.password.clone()?,
                        realm: t.realm.clone(),
                    })
                });
                Ok(vec![Target {
                    callee: callee.clone(),
                    to_header: format!("<{uri}>"),
                    uri,
                    peer: Peer::udp(addr),
                    routes: Vec::new(),
                    credentials,
                    client: None,
                    trunk: Some(route.trunk.clone()),
                    hop: None,
                }])
            }
            Callee::Sip {
                uri,
                username,
                password,
            } => {
                // Headers in the URI (`?X-Foo=bar`) are not copied into the INVITE yet.
                let bare = uri.split('?').next().unwrap_or(uri).to_string();
                let Some((host, port)) = leg::uri_hostport(&bare) else {
                    return Err(Unreachable::NoRoute(format!("bad SIP URI {uri}")));
                };
                // The address checked is the address used: resolved once, then every
                // refused one dropped (no DNS rebinding between a check and the send).
                let addrs = resolve(&host, port).await;
                if addrs.is_empty() {
                    return Err(Unreachable::NoRoute(format!("cannot resolve {host}")));
                }
                let guard = destination_guard(&cfg);
                let addr = match addrs.iter().find(|a| guard.check_ip(a.ip()).is_ok()) {
                    Some(a) => *a,
                    None => {
                        let why = guard
                            .check_ip(addrs[0].ip())
                            .err()
                            .map_or_else(String::new, |r| r.reason);
                        return Err(Unreachable::Refused(format!("{bare}: {why}")));
                    }
                };
                let credentials = match (username, password) {
                    (Some(u), Some(p)) => Some(Credentials {
                        username: u.clone(),
                        password: p.clone(),
                        realm: None,
                    }),
                    _ => None,
                };
                Ok(vec![Target {
                    callee: callee.clone(),
                    to_header: format!("<{bare}>"),
                    uri: bare,
                    peer: Peer::udp(addr),
                    routes: Vec::new(),
                    credentials,
                    client: None,
                    trunk: None,
                    hop: None,
                }])
            }
        }
    }

    /// Sends the INVITE to one target and records the child call: a dial leg (its index
    /// returned) with `child_of`, else the call's main leg (a REST-created call).
    pub fn start_leg(
        &mut self,
        t: Target,
        from: &str,
        max_forwards: u8,
        child_of: Option<&str>,
    ) -> Option<usize> {
        let call_id = format!(
            "{:016x}{:016x}",
            crate::ids::random_u64(),
            crate::ids::random_u64()
        );
        // A Dial leg is one more live call of the account, with one more RTP port pair.
        if child_of.is_some() {
            let (cfg, _) = self.svc.config();
            let over = cfg
                .accounts
                .iter()
                .find(|a| a.sid == self.info.account_sid)
                .and_then(|acct| {
                    self.svc
                        .registry
                        .limits()
                        .admit_leg(&acct.sid, &super::service::account_limits(&cfg, acct))
                        .err()
                });
            if let Some(over) = over {
                tracing::warn!(call = %self.info.sid, limit = over.limit.as_str(), "no new Dial leg: the account is at its limit");
                return None;
            }
        }
        if !self.enter_call_id(&call_id) {
            return None;
        }
        // Every leg gets its own relay endpoint and is offered its port.
        let mut media = match self.open_media(t.peer.transport.is_websocket()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(call = %self.info.sid, error = %e, "no media endpoint for a new leg");
                return None;
            }
        };
        let offer = media.offer(crate::sip::sdp::Direction::SendRecv);
        let from_user = from.strip_prefix("client:").unwrap_or(from);
        let from_header = format!(
            "<sip:{}@{}>",
            leg::escape_user(from_user),
            self.svc.local.hostport
        );
        let tag = crate::ids::tag();
        let server = self.svc.server_name.clone();
        let hop = t.hop.as_ref().map(|h| {
            let node = self.svc.registrar.edge().map_or("", |e| &*e.node);
            let identity = match &t.callee {
                Callee::Client(id) => id.as_str(),
                _ => "",
            };
            super::hop::header_value(
                &self.svc.config().0.cluster,
                node,
                &h.account,
                identity,
                &call_id,
                crate::time::unix_now(),
            )
        });
        let invite = leg::build_invite(
            &InviteSpec {
                uri: &t.uri,
                to: &t.to_header,
                from: &from_header,
                from_tag: &tag,
                call_id: &call_id,
                cseq: 1,
                max_forwards,
                routes: &t.routes,
                transport: t.peer.transport,
                body: Some((super::core::sdp::SDP, offer.as_ref())),
                // A hop's credential is for the peer node, as Authorization is for a UAS.
                authorization: hop.as_deref().map(|v| (super::hop::HEADER, v)),
                server: &server,
            },
            &self.svc.local,
        );
        let key = TransactionKey::client_for_request(&invite)?;
        let sid = match child_of {
            Some(_) => new_call_sid(),
            None => self.info.sid.clone(),
        };
        if let Some(parent) = child_of {
            self.svc.registry.insert(
                CallInfo {
                    sid: sid.clone(),
                    account_sid: self.info.account_sid.clone(),
                    parent_call_sid: Some(parent.to_string()),
                    from: from.to_string(),
                    to: t.callee.party(),
                    direction: Direction::OutboundDial,
                    status: CallStatus::Ringing,
                    created_ms: unix_ms(),
                    answered_ms: None,
                    ended_ms: None,
                    // A hop's leg to the client is internal too: the node the call
                    // arrived at lists its own Dial leg.
                    trunk: match self.app.hop {
                        true => Some(super::hop::TRUNK.into()),
                        false => t.trunk.clone(),
                    },
                    sip_call_id: Some(call_id.clone()),
                    sip_response_code: None,
                    application_sid: None,
                },
                None,
            );
        }
        let mut leg = Leg::uac(sid, invite, key, t.peer, tag);
        leg.credentials = t.credentials;
        leg.client = t.client;
        let mut media = media;
        media.signalling_host = Some(leg.peer.addr.ip());
        leg.media = Some(media);
        let idx = self.core().dial_count();
        self.input(Input::StartLeg {
            leg: Box::new(leg),
            main: child_of.is_none(),
        });
        Some(idx)
    }

    /// Ends a dial leg's child record.
    fn finish_child(&self, idx: usize, status: CallStatus) {
        let Some(l) = self.core().leg(LegRef::Dial(idx)) else {
            return;
        };
        let code = l.final_code;
        let answered = l.answered_at.map(|_| ());
        let ended = unix_ms();
        self.svc.registry.finish(&l.sid, move |i| {
            i.status = status;
            i.ended_ms = Some(ended);
            i.sip_response_code = code;
            if answered.is_none() {
                i.answered_ms = None;
            }
        });
    }

    /// Runs one `<Dial>`. `Err` when the caller left or REST intervened; the result is
    /// then in `self.last_dial` for the action.
    pub async fn dial(&mut self, d: &Dial) -> Result<DialResult, (Stop, DialResult)> {
        let callees: Vec<Callee> = match &d.target {
            DialTarget::Number(n) => vec![Callee::Number(n.trim().to_string())],
            DialTarget::Nouns(nouns) => nouns
                .iter()
                .filter_map(|n| match n {
                    DialNoun::Client(c) => Some(Callee::Client(c.identity.clone())),
                    DialNoun::Number(n) => Some(Callee::Number(n.number.clone())),
                    DialNoun::Sip(s) => Some(Callee::Sip {
                        uri: s.uri.clone(),
                        username: s.username.clone(),
                        password: s.password.clone(),
                    }),
                    // A Conference is run by `conference` (interpret.rs picks it).
                    DialNoun::Conference(_) => None,
                    DialNoun::Queue(_) => {
                        tracing::warn!(call = %self.info.sid, "<Dial><Queue> is not supported yet; skipped");
                        None
                    }
                })
                .take(MAX_FORKS)
                .collect(),
        };
        let mut targets = Vec::new();
        let mut offline = false;
        for c in &callees {
            match self.targets(c).await {
                Ok(t) => targets.extend(t),
                Err(Unreachable::Offline) => offline = true,
                Err(Unreachable::NoRoute(why)) => {
                    tracing::info!(call = %self.info.sid, why, "dial target unreachable")
                }
                Err(Unreachable::Refused(why)) => {
                    tracing::warn!(call = %self.info.sid, why, "dial target refused by the destination policy")
                }
            }
        }
        targets.truncate(MAX_FORKS);
        if targets.is_empty() {
            // Twilio: an unregistered client ends the leg at once with no-answer; we say why.
            let mut r = DialResult {
                status: if offline { "no-answer" } else { "failed" },
                call_sid: None,
                duration: 0,
                extra: Vec::new(),
            };
            if offline {
                r.extra
                    .push(("DialClientPresence".into(), "offline".into()));
            }
            return Ok(r);
        }
        let caller_from = self.info.from.clone();
        let from = d.caller_id.clone().unwrap_or(caller_from);
        // Max-Forwards goes on across the B2BUA so that a loop through it still ends.
        let max_forwards = match self.core().main() {
            Some(m) if m.role == Role::Uas => m
                .invite
                .max_forwards()
                .ok()
                .flatten()
                .unwrap_or(70)
                .saturating_sub(1),
            _ => 70,
        };
        let parent = self.info.sid.clone();
        let ours: Vec<usize> = targets
            .into_iter()
            .filter_map(|t| self.start_leg(t, &from, max_forwards, Some(&parent)))
            .collect();
        if ours.is_empty() {
            // No leg could be started (no RTP ports, no Call-ID): nothing rings.
            return Ok(self.dial_result("failed", None));
        }
        let deadline = now() + Duration::from_secs(u64::from(d.timeout.max(1)));
        let mut codes = Vec::new();
        let winner = loop {
            match self.next(Some(deadline)).await {
                None => {
                    self.cancel_all(&ours, None);
                    let r = self.dial_result("no-answer", None);
                    return Ok(r);
                }
                Some(Ev::Dial(i, ev)) if ours.contains(&i) => match ev {
                    LegEv::Ringing { early } => {
                        if let Some(l) = self.core().leg(LegRef::Dial(i)) {
                            self.svc
                                .registry
                                .update(&l.sid, |c| c.status = CallStatus::Ringing);
                        }
                        self.ring_main(early);
                    }
                    LegEv::Answered => break i,
                    LegEv::Failed(code) => {
                        codes.push(code);
                        self.finish_child(i, child_status(code));
                        let ended = |j: &usize| {
                            self.core()
                                .leg(LegRef::Dial(*j))
                                .is_none_or(|l| l.state == LegState::Ended)
                        };
                        if ours.iter().all(ended) {
                            let r = self.dial_result(failure_status(&codes), None);
                            return Ok(r);
                        }
                    }
                    LegEv::HungUp => {}
                },
                Some(
                    Ev::Dial(..)
                    | Ev::Main(_)
                    | Ev::Media(..)
                    | Ev::Conference(_)
                    | Ev::Queue(_)
                    | Ev::StreamEnded { .. },
                ) => {}
                Some(Ev::MainGone) => {
                    self.cancel_all(&ours, None);
                    let r = self.dial_result("canceled", None);
                    return Err((Stop::MainGone, r));
                }
                Some(Ev::Command(c)) => {
                    self.cancel_all(&ours, None);
                    let r = self.dial_result("canceled", None);
                    return Err((Stop::Command(c), r));
                }
            }
        };
        self.cancel_all(&ours, Some(winner));
        self.bridge(winner, d).await
    }

    /// CANCEL (or BYE) every leg of `legs` but `keep`, and close their records.
    fn cancel_all(&mut self, legs: &[usize], keep: Option<usize>) {
        for &i in legs {
            if Some(i) == keep {
                continue;
            }
            let Some(l) = self.core().leg(LegRef::Dial(i)) else {
                continue;
            };
            let (pending, answered) = (l.is_pending(), l.state == LegState::Answered);
            self.cancel_leg(LegRef::Dial(i));
            self.close_media(LegRef::Dial(i));
            if pending {
                self.finish_child(i, CallStatus::Canceled);
            } else if answered {
                self.finish_child(i, CallStatus::Completed);
            }
        }
    }

    fn dial_result(&self, status: &'static str, winner: Option<usize>) -> DialResult {
        let (sid, duration) = match winner {
            Some(w) => {
                let Some(l) = self.core().leg(LegRef::Dial(w)) else {
                    return DialResult {
                        status,
                        call_sid: None,
                        duration: 0,
                        extra: Vec::new(),
                    };
                };
                let d = l
                    .answered_at
                    .map_or(0, |a| now().saturating_duration_since(a).as_secs());
                (Some(l.sid.clone()), d)
            }
            None => (None, 0),
        };
        DialResult {
            status,
            call_sid: sid,
            duration,
            extra: Vec::new(),
        }
    }

    /// The winner answered: answer the caller with its SDP and stay bridged until one side
    /// hangs up, the time limit, or REST.
    async fn bridge(&mut self, w: usize, d: &Dial) -> Result<DialResult, (Stop, DialResult)> {
        // The client is in a call from its answer on.
        let Some(winner) = self.core().leg(LegRef::Dial(w)) else {
            return Ok(self.dial_result("failed", None));
        };
        let (client, sid) = (winner.client.clone(), winner.sid.clone());
        if let Some(k) = &client {
            self.svc.presence.set_busy(k, true, crate::time::unix_now());
        }
        // The callee's answer pointed the relay at it already; the relay joins the two
        // legs' endpoints before the caller gets our answer to its own offer: the caller
        // starts sending as soon as it has our 2xx, and packets that reach the relay
        // before the bridge are dropped.
        self.input(Input::Bridge(w));
        self.answer_now();
        self.mark_answered();
        let answered_ms = unix_ms();
        self.svc.registry.update(&sid, |c| {
            c.status = CallStatus::InProgress;
            c.answered_ms = Some(answered_ms);
        });
        let limit = now() + Duration::from_secs(u64::from(d.time_limit.max(1)));
        let stop = loop {
            match self.next(Some(limit)).await {
                None => {
                    self.send_bye(LegRef::Dial(w));
                    break None;
                }
                Some(Ev::Dial(i, LegEv::HungUp | LegEv::Failed(_))) if i == w => break None,
                // `hangupOnStar`: the caller leaves the callee and goes on with the next verb.
                Some(Ev::Media(LegRef::Main, crate::media::EventKind::Digit('*')))
                    if d.hangup_on_star =>
                {
                    self.send_bye(LegRef::Dial(w));
                    break None;
                }
                Some(Ev::MainGone) => {
                    self.send_bye(LegRef::Dial(w));
                    break Some(Stop::MainGone);
                }
                Some(Ev::Command(c)) => {
                    self.send_bye(LegRef::Dial(w));
                    break Some(Stop::Command(c));
                }
                Some(_) => {}
            }
        };
        self.input(Input::Unbridge);
        // The callee's endpoint closes (its ports go back to the pool); the caller's stays
        // for what the instructions do next.
        self.close_media(LegRef::Dial(w));
        if let Some(k) = &client {
            self.svc
                .presence
                .set_busy(k, false, crate::time::unix_now());
        }
        let r = self.dial_result("completed", Some(w));
        self.finish_child(w, CallStatus::Completed);
        match stop {
            None => Ok(r),
            Some(s) => Err((s, r)),
        }
    }
}

/// A child leg's final status from its SIP code.
fn child_status(code: u16) -> CallStatus {
    match code {
        486 | 600 | 603 => CallStatus::Busy,
        408 | 480 | 487 => CallStatus::NoAnswer,
        _ => CallStatus::Failed,
    }
}

/// Resolves a host (IP literal or name) to one address; A/AAAA only (no NAPTR/SRV yet).
async fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return vec![SocketAddr::new(ip, port)];
    }
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => Vec::new(),
    }
}
