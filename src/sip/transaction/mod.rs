//! RFC 3261 §17 transactions, with the RFC 6026 "Accepted" states, sans-IO.
//!
//! The [`TransactionLayer`] sits between the transport (which parses messages and sends
//! bytes) and the transaction user (TU: the registrar, the B2BUA). It is driven like
//! quinn-proto: feed it [`Input`]s with [`TransactionLayer::handle`], fire due timers with
//! [`TransactionLayer::handle_timeout`], drain [`Output`]s with
//! [`TransactionLayer::poll_output`], and sleep until [`TransactionLayer::poll_timeout`].
//! It never reads a clock or touches a socket, so every retransmission schedule is tested on
//! a virtual clock.
//!
//! ```text
//!        TU (registrar, B2BUA)
//!    Respond / SendRequest   ^ TuEvent (Request, Response, Ack, Cancelled, Timeout, ...)
//!             v              |
//!   +-------------------------------------------------------------+
//!   | TransactionLayer: server map, client map, timer heap        |
//!   |   ServerInvite (Fig. 7)  ServerNonInvite (Fig. 8)           |
//!   |   ClientInvite (Fig. 5)  ClientNonInvite (Fig. 6)           |
//!   +-------------------------------------------------------------+
//!             ^ Received             v Send { to, bytes }
//!        transport (UDP, TCP), which owns sockets and the clock
//! ```
//!
//! What the layer does on its own: it answers a new INVITE with 100 Trying at once, ACKs
//! 300–699 responses to our INVITEs, answers CANCEL (200 if it matches an INVITE server
//! transaction, 481 if not), and retransmits over UDP. Everything else is the TU's call.
//!
//! Known limits, as in RFC 3261: a server transaction whose TU never answers, and an
//! INVITE client transaction past its first provisional (Timer C is a proxy's), live until
//! the TU acts.

mod client_invite;
mod client_non_invite;
mod effects;
mod key;
mod provisional;
mod requests;
mod server_invite;
mod server_non_invite;
mod timer_queue;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

use bytes::Bytes;

use self::client_invite::ClientInvite;
use self::client_non_invite::ClientNonInvite;
use self::effects::Effects;
pub use self::key::TransactionKey;
pub use self::requests::{build_ack_for, build_cancel};
use self::server_invite::ServerInvite;
use self::server_non_invite::ServerNonInvite;
use self::timer_queue::{TimerQueue, TxId};
pub use self::timers::{TimerKind, Timers};
use crate::sip::method::Method;
use crate::sip::msg::{ResponseBuilder, SipMessage};
use crate::sip::peer::{Peer, response_destination};

/// What the layer is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message arrived from the network (already parsed).
    Received {
        /// The message.
        msg: SipMessage,
        /// Where it came from.
        from: Peer,
    },
    /// The TU answers a server transaction with a full response it built
    /// ([`ResponseBuilder`]); the layer parses it (`SipMessage::parse`) to learn the status
    /// code.
    Respond {
        /// The server transaction, from [`TuEvent::Request`].
        key: TransactionKey,
        /// The serialized response.
        response: Bytes,
    },
    /// A request the TU answered as it arrived, before handing it over (the shard refusing
    /// a new INVITE the call service turned down): handled as `Received` (a new server
    /// transaction, 100 Trying at once for an INVITE) followed at once by `Respond` with
    /// `response`, with no [`TuEvent::Request`] in between. A retransmission goes to its
    /// transaction as usual and `response` is unused; so it is for an ACK or a CANCEL,
    /// which the layer handles itself.
    Answered {
        /// The request.
        msg: SipMessage,
        /// Where it came from.
        from: Peer,
        /// The TU's answer, built as for `Respond`.
        response: Bytes,
    },
    /// The TU will not answer a server non-INVITE transaction (an answer to an unverified
    /// source that would be larger than its request, say): the transaction ends at once,
    /// without sending anything, so nothing is held for a request nobody answers. A
    /// retransmission then starts a new transaction and reaches the TU again. Ignored for
    /// an INVITE (which must be answered) and for a transaction already answered.
    Decline {
        /// The server transaction, from [`TuEvent::Request`].
        key: TransactionKey,
    },
    /// The TU starts a client transaction: `request` already carries our top Via with a
    /// fresh z9hG4bK branch; `to` is the next hop. An ACK (for a 2xx) is not a transaction:
    /// it is sent once, as is, and its retransmission stays with the TU.
    SendRequest {
        /// The request.
        request: SipMessage,
        /// The next hop.
        to: Peer,
    },
}

/// What the layer asks of its driver.
#[derive(Debug, Clone)]
pub enum Output {
    /// Put these bytes on the wire to `to`.
    Send {
        /// Destination (transport, address, connection).
        to: Peer,
        /// One complete message.
        bytes: Bytes,
    },
    /// Tell the TU.
    Event(TuEvent),
}

/// What the layer tells the transaction user.
#[derive(Debug, Clone)]
pub enum TuEvent {
    /// A new request created a server transaction (not ACK, not CANCEL). The TU must answer
    /// with [`Input::Respond`].
    Request {
        /// The new server transaction.
        key: TransactionKey,
        /// The request.
        request: SipMessage,
        /// Where it came from.
        from: Peer,
    },
    /// A CANCEL matched a server INVITE transaction: the layer already answered the CANCEL
    /// with 200 (§9.2); the TU should end the INVITE with 487 (via [`Input::Respond`] on
    /// `invite`) if it has not answered it finally yet.
    Cancelled {
        /// The INVITE's server transaction.
        invite: TransactionKey,
    },
    /// An ACK that matched no server transaction (the ACK for a 2xx): dialog business.
    Ack {
        /// The ACK.
        request: SipMessage,
        /// Where it came from.
        from: Peer,
    },
    /// A response for a client transaction (each provisional once per new status, the final
    /// once; for INVITE 2xx also retransmissions while Accepted).
    Response {
        /// The client transaction.
        key: TransactionKey,
        /// The response.
        response: SipMessage,
    },
    /// Timer B / F fired (client), or Timer H (server: no ACK for our final response).
    Timeout {
        /// The transaction that ended.
        key: TransactionKey,
    },
    /// A response that matched no client transaction (a proxy would forward it; we drop it).
    StrayResponse {
        /// The response.
        response: SipMessage,
        /// Where it came from.
        from: Peer,
    },
}

/// One of the four state machines.
#[derive(Debug)]
#[allow(
    clippy::enum_variant_names,
    reason = "named after the RFC 3261 transaction kinds"
)]
enum Machine {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

/// A live transaction.
#[derive(Debug)]
struct Transaction {
    key: TransactionKey,
    /// Where it sends: the next hop, or the response destination (§18.2.2) fixed when the
    /// request arrived.
    dest: Peer,
    machine: Machine,
    /// Server INVITE: the To tag of the first response from the TU that had one (the CANCEL's
    /// 200 reuses it, §9.2).
    to_tag: Option<Box<str>>,
    /// Server INVITE matched by RFC 2543 rules: the INVITE, to derive the key its ACK will
    /// have once we sent a To tag.
    legacy_invite: Option<SipMessage>,
    /// That derived key, indexed in `legacy_acks`.
    legacy_ack_key: Option<TransactionKey>,
}

// Keyed by branches and Call-IDs that peers choose: foldhash is fast and randomly seeded
// per process, so nobody can precompute colliding keys.
type HashMap<K, V> = foldhash::HashMap<K, V>;

/// The transaction layer: every client and server transaction of one SIP endpoint, their
/// timers, and the queue of outputs.
#[derive(Debug)]
pub struct TransactionLayer {
    timers: Timers,
    transactions: HashMap<TxId, Transaction>,
    servers: HashMap<TransactionKey, TxId>,
    clients: HashMap<TransactionKey, TxId>,
    /// RFC 2543 ACK keys (INVITE fields with our To tag) of server INVITE transactions.
    legacy_acks: HashMap<TransactionKey, TxId>,
    queue: TimerQueue,
    out: VecDeque<Output>,
    next_id: TxId,
}

impl TransactionLayer {
    /// An empty layer using `timers`.
    pub fn new(timers: Timers) -> Self {
        TransactionLayer {
            timers,
            transactions: HashMap::default(),
            servers: HashMap::default(),
            clients: HashMap::default(),
            legacy_acks: HashMap::default(),
            queue: TimerQueue::default(),
            out: VecDeque::new(),
            next_id: 0,
        }
    }

    /// Handles one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Received { msg, from } if msg.is_request() => {
                self.on_request(now, msg, from, None)
            }
            Input::Received { msg, from } => self.on_response(now, msg, from),
            Input::Answered {
                msg,
                from,
                response,
            } if msg.is_request() => self.on_request(now, msg, from, Some(response)),
            Input::Answered { .. } => tracing::debug!("TU answered a response; dropped"),
            Input::Respond { key, response } => self.on_tu_response(now, &key, response),
            Input::Decline { key } => self.on_tu_decline(&key),
            Input::SendRequest { request, to } => self.send_request(now, request, to),
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.queue.pop_due(now) {
            // Lazy deletion: the transaction may be gone, and its machine ignores a timer
            // that its current state does not run.
            self.run(now, entry.tx, |machine, fx| match machine {
                Machine::ClientInvite(m) => m.on_timer(entry.kind, fx),
                Machine::ClientNonInvite(m) => m.on_timer(entry.kind, fx),
                Machine::ServerInvite(m) => m.on_timer(entry.kind, fx),
                Machine::ServerNonInvite(m) => m.on_timer(entry.kind, fx),
            });
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest pending timer (possibly one that turns out stale: waking up for it is
    /// harmless).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.next_deadline()
    }

    /// Whether a server transaction with `key` is live (a retransmitted request belongs to
    /// it).
    pub fn has_server(&self, key: &TransactionKey) -> bool {
        self.servers.contains_key(key)
    }

    /// Live server transactions.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Live client transactions.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// A request from the network; `answer` is the TU's response when it answered on
    /// arrival ([`Input::Answered`]), else the TU hears of it.
    fn on_request(&mut self, now: Instant, msg: SipMessage, from: Peer, answer: Option<Bytes>) {
        if let Err(e) = msg.cseq().and(msg.call_id().map(drop)) {
            tracing::debug!(error = %e, "request without usable CSeq/Call-ID dropped");
            return;
        }
        let Some(key) = TransactionKey::server(&msg) else {
            tracing::debug!("request without usable top Via dropped");
            return;
        };
        if msg.method() == Some(Method::Ack) {
            return self.on_ack(now, key, msg, from);
        }
        if let Some(&id) = self.servers.get(&key) {
            // A retransmission (of a CANCEL too: it has its own transaction).
            self.run(now, id, |machine, fx| match machine {
                Machine::ServerInvite(m) => m.on_retransmission(fx),
                Machine::ServerNonInvite(m) => m.on_retransmission(fx),
                _ => {}
            });
            return;
        }
        match msg.method() {
            Some(Method::Cancel) => self.on_cancel(now, key, msg, from),
            Some(Method::Invite) => {
                let reliable = from.transport.is_reliable();
                // §18.2.1: `received` is added whatever the transport.
                let trying = ResponseBuilder::new(&msg, 100)
                    .received_from(from.addr)
                    .build();
                let legacy = (!key.is_rfc3261()).then(|| msg.clone());
                let id = self.create(now, key.clone(), &msg, from, |fx| {
                    Machine::ServerInvite(ServerInvite::start(trying, reliable, fx))
                });
                if let (Some(id), Some(invite)) = (id, legacy)
                    && let Some(tx) = self.transactions.get_mut(&id)
                {
                    tx.legacy_invite = Some(invite);
                }
                self.hand_to_tu(now, key, msg, from, answer);
            }
            _ => {
                let reliable = from.transport.is_reliable();
                self.create(now, key.clone(), &msg, from, |_| {
                    Machine::ServerNonInvite(ServerNonInvite::new(reliable))
                });
                self.hand_to_tu(now, key, msg, from, answer);
            }
        }
    }

    /// A new server transaction's request: the TU's answer on arrival, or a
    /// [`TuEvent::Request`] for it to answer.
    fn hand_to_tu(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: SipMessage,
        from: Peer,
        answer: Option<Bytes>,
    ) {
        match answer {
            Some(response) => self.on_tu_response(now, &key, response),
            None => self
                .out
                .push_back(Output::Event(TuEvent::Request { key, request, from })),
        }
    }

    /// ACK: for a non-2xx final it belongs to the INVITE server transaction (same branch,
    /// or the RFC 2543 fields with our To tag); anything else is the TU's.
    fn on_ack(&mut self, now: Instant, key: TransactionKey, msg: SipMessage, from: Peer) {
        let id = self
            .servers
            .get(&key)
            .or_else(|| self.legacy_acks.get(&key))
            .copied();
        let pass_up = match id {
            Some(id) => self
                .run(now, id, |machine, fx| match machine {
                    Machine::ServerInvite(m) => m.on_ack(fx),
                    _ => true,
                })
                .unwrap_or(true),
            None => true,
        };
        if pass_up {
            self.out
                .push_back(Output::Event(TuEvent::Ack { request: msg, from }));
        }
    }

    /// A new CANCEL (§9.2): its own non-INVITE server transaction, answered here.
    fn on_cancel(&mut self, now: Instant, key: TransactionKey, msg: SipMessage, from: Peer) {
        let invite = TransactionKey::server_as(&msg, "INVITE", None)
            .and_then(|k| self.servers.get(&k).map(|&id| (k, id)));
        let mut to_tag = None;
        let mut proceeding = false;
        if let Some(tx) = invite
            .as_ref()
            .and_then(|(_, id)| self.transactions.get(id))
            && let Machine::ServerInvite(m) = &tx.machine
        {
            proceeding = m.is_proceeding();
            to_tag = tx.to_tag.clone();
        }
        let code = if invite.is_some() { 200 } else { 481 };
        let tag = to_tag.unwrap_or_else(|| derived_tag(&msg).into_boxed_str());
        let response = ResponseBuilder::new(&msg, code)
            .to_tag(&tag)
            .received_from(from.addr)
            .build();
        let reliable = from.transport.is_reliable();
        self.create(now, key, &msg, from, |fx| {
            let mut m = ServerNonInvite::new(reliable);
            m.on_tu_response(code, response, fx);
            Machine::ServerNonInvite(m)
        });
        if let (Some((invite, _)), true) = (invite, proceeding) {
            self.out
                .push_back(Output::Event(TuEvent::Cancelled { invite }));
        }
    }

    fn on_response(&mut self, now: Instant, msg: SipMessage, from: Peer) {
        let Some(key) = TransactionKey::client_for_response(&msg) else {
            tracing::debug!("response without usable top Via/CSeq dropped");
            return;
        };
        let Some(&id) = self.clients.get(&key) else {
            self.out.push_back(Output::Event(TuEvent::StrayResponse {
                response: msg,
                from,
            }));
            return;
        };
        self.run(now, id, |machine, fx| match machine {
            Machine::ClientInvite(m) => m.on_response(msg, fx),
            Machine::ClientNonInvite(m) => m.on_response(msg, fx),
            _ => {}
        });
    }

    fn on_tu_response(&mut self, now: Instant, key: &TransactionKey, response: Bytes) {
        let parsed = match SipMessage::parse(response.clone()) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = ?e.error, %key, "unparseable response from TU dropped");
                return;
            }
        };
        let Some(code) = parsed.status() else {
            tracing::debug!(%key, "TU answered with a request; dropped");
            return;
        };
        let Some(&id) = self.servers.get(key) else {
            tracing::debug!(%key, code, "response for no server transaction dropped");
            return;
        };
        let sent = self.run(now, id, |machine, fx| match machine {
            Machine::ServerInvite(m) => m.on_tu_response(code, response, fx),
            Machine::ServerNonInvite(m) => m.on_tu_response(code, response, fx),
            _ => false,
        });
        if sent == Some(true) {
            self.remember_to_tag(id, &parsed, code);
        }
    }

    fn on_tu_decline(&mut self, key: &TransactionKey) {
        let Some(&id) = self.servers.get(key) else {
            return;
        };
        let unanswered = matches!(
            self.transactions.get(&id).map(|tx| &tx.machine),
            Some(Machine::ServerNonInvite(m)) if m.is_trying()
        );
        if unanswered {
            self.remove(id);
        }
    }

    /// Keeps the To tag the TU chose for a server INVITE: a later CANCEL's 200 reuses it,
    /// and under RFC 2543 rules the ACK for our final carries it (§17.2.3).
    fn remember_to_tag(&mut self, id: TxId, response: &SipMessage, code: u16) {
        let Some(tx) = self.transactions.get_mut(&id) else {
            return;
        };
        if !matches!(tx.machine, Machine::ServerInvite(_)) {
            return;
        }
        let tag = response.to_header().ok().and_then(|t| t.tag());
        if tx.to_tag.is_none() {
            tx.to_tag = tag.map(Box::from);
        }
        let (Some(invite), Some(tag), true) = (&tx.legacy_invite, tag, code >= 200) else {
            return;
        };
        if tx.legacy_ack_key.is_some() {
            return;
        }
        if let Some(ack_key) = TransactionKey::server_as(invite, "INVITE", Some(tag))
            && ack_key != tx.key
        {
            tx.legacy_ack_key = Some(ack_key.clone());
            self.legacy_acks.insert(ack_key, id);
        }
    }

    fn send_request(&mut self, now: Instant, request: SipMessage, to: Peer) {
        if request.method() == Some(Method::Ack) {
            self.out.push_back(Output::Send {
                to,
                bytes: request.as_bytes().clone(),
            });
            return;
        }
        let Some(key) = TransactionKey::client_for_request(&request) else {
            tracing::debug!("request from TU without a Via branch dropped");
            return;
        };
        if self.clients.contains_key(&key) {
            tracing::debug!(%key, "request from TU reuses a live branch; dropped");
            return;
        }
        let reliable = to.transport.is_reliable();
        let id = self.allocate(key.clone(), to);
        self.clients.insert(key, id);
        self.run_new(now, id, |fx| {
            if request.method() == Some(Method::Invite) {
                Machine::ClientInvite(ClientInvite::start(request, reliable, fx))
            } else {
                Machine::ClientNonInvite(ClientNonInvite::start(
                    request.as_bytes().clone(),
                    reliable,
                    fx,
                ))
            }
        });
    }

    /// Creates a server transaction for `msg`, which came from `from`.
    fn create(
        &mut self,
        now: Instant,
        key: TransactionKey,
        msg: &SipMessage,
        from: Peer,
        init: impl FnOnce(&mut Effects<'_>) -> Machine,
    ) -> Option<TxId> {
        let Ok(via) = msg.top_via() else { return None };
        let dest = response_destination(&via, &from);
        let id = self.allocate(key.clone(), dest);
        self.servers.insert(key, id);
        self.run_new(now, id, init);
        self.transactions.contains_key(&id).then_some(id)
    }

    /// Reserves an id and a placeholder entry; [`Self::run_new`] installs the machine.
    fn allocate(&mut self, key: TransactionKey, dest: Peer) -> TxId {
        let id = self.next_id;
        self.next_id += 1;
        let tx = Transaction {
            key,
            dest,
            // Replaced by run_new before anyone can observe it.
            machine: Machine::ServerNonInvite(ServerNonInvite::new(true)),
            to_tag: None,
            legacy_invite: None,
            legacy_ack_key: None,
        };
        self.transactions.insert(id, tx);
        id
    }

    fn run_new(&mut self, now: Instant, id: TxId, init: impl FnOnce(&mut Effects<'_>) -> Machine) {
        self.run(now, id, |machine, fx| *machine = init(fx));
    }

    /// Runs `f` on transaction `id` with its effects, and forgets the transaction if it
    /// terminated. `None` if there is no such transaction.
    fn run<R>(
        &mut self,
        now: Instant,
        id: TxId,
        f: impl FnOnce(&mut Machine, &mut Effects<'_>) -> R,
    ) -> Option<R> {
        let tx = self.transactions.get_mut(&id)?;
        let mut fx = Effects {
            now,
            timers: self.timers,
            tx: id,
            key: &tx.key,
            dest: tx.dest,
            out: &mut self.out,
            queue: &mut self.queue,
            terminated: false,
        };
        let result = f(&mut tx.machine, &mut fx);
        if fx.terminated {
            self.remove(id);
        }
        Some(result)
    }

    fn remove(&mut self, id: TxId) {
        let Some(tx) = self.transactions.remove(&id) else {
            return;
        };
        tracing::trace!(key = %tx.key, "transaction terminated");
        if tx.key.is_client() {
            self.clients.remove(&tx.key);
        } else {
            self.servers.remove(&tx.key);
        }
        if let Some(k) = tx.legacy_ack_key {
            self.legacy_acks.remove(&k);
        }
    }

    /// Whether nothing at all is held: no transaction, no index entry, no timer.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.transactions.is_empty()
            && self.servers.is_empty()
            && self.clients.is_empty()
            && self.legacy_acks.is_empty()
            && self.queue.len() == 0
            && self.out.is_empty()
    }
}

/// A To tag for a response the layer makes up itself (200/481 to CANCEL when the TU has
/// not chosen one): stable for retransmissions of the same CANCEL, distinct across calls.
fn derived_tag(request: &SipMessage) -> String {
    let mut h = DefaultHasher::new();
    request.call_id().ok().hash(&mut h);
    request.top_via().ok().and_then(|v| v.branch()).hash(&mut h);
    request
        .from_header()
        .ok()
        .and_then(|f| f.tag())
        .hash(&mut h);
    format!("{:016x}", h.finish())
}
