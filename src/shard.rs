//! The SIP shards: one per UDP socket, each a task that drives its own sans-IO
//! [`TransactionLayer`] with parsed messages from the transport (its own
//! [`UdpReceiver`], and TCP messages through a channel) and with the clock, and executes
//! what it asks for. Shards share the TCP connection table and the per-source rate
//! limiter, nothing else, so they scale with cores.
//!
//! The kernel hands each datagram to a shard by its 4-tuple, so one busy peer (a trunk,
//! a proxy, a load generator) would keep one shard busy and leave the others idle. So the
//! shard that receives a datagram hands it on to the shard its Call-ID hashes to (with one
//! randomly keyed hash for all shards): every transaction and retransmission of a call
//! still meets in one shard, and a busy flow uses every core.
//!
//! This is the one place that reads the clock for the SIP core.
//!
//! What a shard does with a message, in order:
//! - a request over its source's rate (`[server.limits]`) is dropped (UDP) or answered 503
//!   (streams) before anything else;
//! - malformed or unacceptable ones are refused statelessly or dropped (`sip::screen`);
//! - every message whose Call-ID a call owns goes to that call's task, and a new INVITE to
//!   the call service ([`CallService::on_new_invite`]), which starts a call task or refuses
//!   it; a refusal is answered here, through a server transaction;
//! - a new request beyond the shard's share of `max_server_transactions` gets 503 with
//!   Retry-After, statelessly;
//! - the rest are the shard's own transaction user (`Shard::on_request`): OPTIONS is
//!   answered, REGISTER goes to the [`Registrar`], requests of a dialog no call owns get
//!   481, anything else 405.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::call::router::CallInput;
use crate::call::service::{CallService, Refusal};
use crate::metrics::{Metrics, Shed};
use crate::registrar::register::{Registrar, Reply};
use crate::sip::msg::{Rejected, ResponseBuilder, SipMessage};
use crate::sip::rate_limit::{Admission, Rate, SourceLimiter};
use crate::sip::screen::{self, ACCEPTED_BODIES, SUPPORTED_EXTENSIONS, Verdict};
use crate::sip::transaction::{Input, Output, Timers, TransactionKey, TransactionLayer, TuEvent};
use crate::sip::{ALLOW, Method, Peer, Transport, peer::response_destination};
use crate::time::unix_now;
use crate::transport::Inbound;
use crate::transport::sender::SipSender;
use crate::transport::udp::UdpReceiver;

/// What every shard needs to know.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// RFC 3261 T1/T2/T4.
    pub timers: Timers,
    /// Our Server header value.
    pub server_name: Arc<str>,
    /// REGISTER handling and the location store.
    pub registrar: Arc<Registrar>,
    /// Counters for /metrics.
    pub metrics: Arc<Metrics>,
    /// Calls: new INVITEs go here, and every message whose Call-ID a call owns.
    pub calls: Option<Arc<CallService>>,
    /// The rate limiter all shards share, and the rates for sources in general and for
    /// addresses inside a trunk's `inbound_cidrs`.
    pub limiter: Arc<SourceLimiter>,
    pub source_rate: Rate,
    pub trunk_rate: Rate,
    /// Server transactions this shard holds at most (its share of the configured cap).
    pub max_server_transactions: usize,
    /// Which shard of a set owns a Call-ID; clones hash alike, so every shard agrees.
    pub spread: foldhash::fast::RandomState,
}

/// One SIP shard.
pub struct Shard {
    /// This shard's place among `siblings`.
    index: usize,
    /// Every shard of this address's set (this one included), by index: a datagram whose
    /// Call-ID hashes to another goes there.
    siblings: Arc<[mpsc::Sender<Inbound>]>,
    layer: TransactionLayer,
    udp: UdpReceiver,
    sender: SipSender,
    inbound: mpsc::Receiver<Inbound>,
    config: ShardConfig,
    /// Stateless answers (refusals) waiting to be sent.
    stateless: VecDeque<(Peer, Bytes)>,
    /// Keys the To tags of answers sent without a transaction (see `stateless_tag`).
    tag_key: RandomState,
    /// REGISTERs whose binding a shared store is writing: their answers come back here.
    stored_tx: mpsc::UnboundedSender<Stored>,
    stored_rx: mpsc::UnboundedReceiver<Stored>,
    /// How many are out; past `MAX_STORING` a REGISTER gets 503 at once.
    storing: usize,
    /// The update of the REGISTER that just entered the layer, authenticated on the way
    /// in (`on_new_register`), until its transaction hands it to `on_register`.
    prepared: Option<(TransactionKey, crate::registrar::register::Update)>,
}

/// REGISTERs a shard may have waiting on the shared store before it sheds more: a
/// store slower than the offered rate would otherwise build an unbounded backlog.
const MAX_STORING: usize = 2048;

/// A REGISTER the store has answered.
struct Stored {
    key: TransactionKey,
    request: SipMessage,
    from: Peer,
    reply: Reply,
}

/// Where a well-formed message goes.
enum Route {
    /// A call task took it.
    Call,
    /// This shard's transaction layer.
    Layer(SipMessage),
    /// A new INVITE the call service refused: this shard answers it.
    Refused(SipMessage, Refusal),
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// Whether a datagram may go on under its source's rate, judged on its raw bytes before
/// it is parsed, so a flood costs a hash and an atomic per datagram. Responses always may
/// (they end our own transactions, and a stray one costs a lookup). Over the rate, it is
/// dropped, as a full network would drop it, and retransmission paces a real client.
fn admit_datagram(config: &ShardConfig, bytes: &[u8], from: &Peer) -> bool {
    if bytes.starts_with(b"SIP/2.0 ") || admitted(config, from) {
        return true;
    }
    config.metrics.message_dropped("rate_limited");
    false
}

/// Takes a token from `from`'s bucket, under the trunk rate for an address inside a
/// trunk's `inbound_cidrs` and the general one otherwise.
fn admitted(config: &ShardConfig, from: &Peer) -> bool {
    let rate = if is_trunk(config, from) {
        config.trunk_rate
    } else {
        config.source_rate
    };
    config.limiter.admit(from.addr.ip(), rate, now()) == Admission::Allowed
}

/// Whether `from` is inside a trunk's `inbound_cidrs`.
fn is_trunk(config: &ShardConfig, from: &Peer) -> bool {
    config
        .calls
        .as_ref()
        .is_some_and(|c| c.config().1.source_account(from.addr.ip()).is_some())
}

impl Shard {
    /// A shard receiving datagrams from `udp` and stream messages on `inbound`, sending
    /// with `sender` (its own UDP socket, so answers leave from the port they came to).
    pub fn new(
        (index, siblings): (usize, Arc<[mpsc::Sender<Inbound>]>),
        udp: UdpReceiver,
        sender: SipSender,
        inbound: mpsc::Receiver<Inbound>,
        config: ShardConfig,
    ) -> Self {
        let (stored_tx, stored_rx) = mpsc::unbounded_channel();
        Shard {
            index,
            siblings,
            layer: TransactionLayer::new(config.timers),
            sender,
            udp,
            inbound,
            config,
            stateless: VecDeque::new(),
            tag_key: RandomState::new(),
            stored_tx,
            stored_rx,
            storing: 0,
            prepared: None,
        }
    }

    /// Runs until the inbound channel closes (server shutdown).
    pub async fn run(mut self) {
        loop {
            let deadline = self
                .layer
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                inbound = self.udp.recv(|bytes, from| admit_datagram(&self.config, bytes, from)) => {
                    self.on_datagram(inbound)
                }
                inbound = self.inbound.recv() => match inbound {
                    // Handed on by another shard: already admitted there.
                    Some(Inbound { parsed, from }) if from.transport == Transport::Udp => {
                        self.on_message(parsed, from)
                    }
                    Some(Inbound { parsed, from }) => {
                        if self.admit(&parsed, &from) {
                            self.on_message(parsed, from);
                        }
                    }
                    None => return,
                },
                Some(done) = self.stored_rx.recv() => {
                    self.storing -= 1;
                    self.answer_register(done.key, &done.request, &done.from, done.reply);
                }
                () = sleep_until(deadline) => self.layer.handle_timeout(now()),
            }
            self.drain().await;
        }
    }

    /// A datagram off this shard's socket, admitted under its source's rate before it
    /// was parsed (`admit_datagram`): handled here or handed to the shard its Call-ID
    /// belongs to.
    fn on_datagram(&mut self, inbound: Inbound) {
        let owner = match &inbound.parsed {
            Ok(msg) if self.siblings.len() > 1 => msg.call_id().ok().map(|id| {
                (self.config.spread.hash_one(id.as_bytes()) % self.siblings.len() as u64) as usize
            }),
            _ => None,
        };
        match owner {
            Some(owner) if owner != self.index => {
                if self.siblings[owner].try_send(inbound).is_err() {
                    self.config.metrics.message_dropped("shard_queue_full");
                }
            }
            _ => self.on_message(inbound.parsed, inbound.from),
        }
    }

    /// Whether a message off a stream connection may go on under its source's rate (see
    /// `admitted`); over it, a request is answered 503, as a stream request is never
    /// retransmitted.
    fn admit(&mut self, parsed: &Result<SipMessage, Rejected>, from: &Peer) -> bool {
        if parsed.as_ref().is_ok_and(|m| !m.is_request()) || admitted(&self.config, from) {
            return true;
        }
        match parsed {
            Ok(request) if request.method() != Some(Method::Ack) => {
                self.config.metrics.request_shed(Shed::RateLimited);
                let headers = [("Retry-After", "1".to_owned())];
                self.answer_statelessly(request, from, 503, "Rate Limited", &headers);
            }
            _ => self.config.metrics.message_dropped("rate_limited"),
        }
        false
    }

    fn on_message(&mut self, parsed: Result<SipMessage, Rejected>, from: Peer) {
        self.config.metrics.message_received(from.transport);
        match screen::judge(parsed) {
            Verdict::Deliver(msg) => match self.route(msg, from) {
                Route::Call => {}
                Route::Layer(msg) if self.over_transaction_cap(&msg) => {
                    self.config.metrics.request_shed(Shed::ServerTransactions);
                    let headers = [("Retry-After", "2".to_owned())];
                    self.answer_statelessly(&msg, &from, 503, "", &headers);
                }
                Route::Layer(msg) if msg.method() == Some(Method::Register) => {
                    self.on_new_register(msg, from)
                }
                Route::Layer(msg) => self.layer.handle(now(), Input::Received { msg, from }),
                Route::Refused(_, r) if r.silent => {
                    tracing::debug!(peer = %from.addr, "banned source: INVITE not answered");
                }
                Route::Refused(msg, r) if r.stateless => {
                    self.answer_statelessly(&msg, &from, r.code, &r.reason, &r.headers);
                }
                Route::Refused(msg, r) => {
                    // From a trunk: answered as it enters the layer; its server transaction
                    // repeats the answer until the ACK and absorbs retransmitted INVITEs.
                    let response = self.response(&msg, &from, r.code, &r.reason, &r.headers);
                    let answered = Input::Answered {
                        msg,
                        from,
                        response,
                    };
                    self.layer.handle(now(), answered);
                }
            },
            Verdict::Refuse { request, refusal } => {
                tracing::debug!(peer = %from.addr, code = refusal.code, reason = %refusal.reason, "refusing request");
                // A refused request gets no transaction: if it is retransmitted it is simply
                // refused again, which costs no state (what a stateless proxy does).
                self.answer_statelessly(
                    &request,
                    &from,
                    refusal.code,
                    &refusal.reason,
                    &refusal.headers,
                );
            }
            Verdict::Drop(class) => {
                self.config.metrics.message_dropped(class);
                tracing::debug!(peer = %from.addr, class, "dropping message");
            }
        }
    }

    /// Whether `msg` is a request that would start a server transaction while this shard
    /// holds its share of `max_server_transactions` already (retransmissions of one it
    /// holds, responses and ACKs go on).
    fn over_transaction_cap(&self, msg: &SipMessage) -> bool {
        self.layer.server_count() >= self.config.max_server_transactions
            && msg.is_request()
            && msg.method() != Some(Method::Ack)
            && TransactionKey::server(msg).is_some_and(|key| !self.layer.has_server(&key))
    }

    /// Hands a message to the call that owns its Call-ID, or a new INVITE to the call
    /// service, which takes it or refuses it (decided once: a retransmission of a refused
    /// INVITE finds its server transaction).
    fn route(&mut self, msg: SipMessage, from: Peer) -> Route {
        let Some(calls) = &self.config.calls else {
            return Route::Layer(msg);
        };
        if let Ok(call_id) = msg.call_id()
            && let Some(inbox) = calls.router.route(call_id)
        {
            // A full inbox drops the message, as a full socket buffer would.
            if inbox.try_send(CallInput { msg, from }).is_err() {
                self.config.metrics.message_dropped("call_inbox_full");
            }
            return Route::Call;
        }
        let is_new_invite = msg.method() == Some(Method::Invite)
            && msg.to_header().ok().is_some_and(|t| t.tag().is_none());
        if !is_new_invite {
            return Route::Layer(msg);
        }
        let Some(key) = TransactionKey::server(&msg) else {
            // No usable top Via: the layer drops it.
            return Route::Layer(msg);
        };
        if self.layer.has_server(&key) {
            // A retransmission of an INVITE we refused: the transaction absorbs it.
            return Route::Layer(msg);
        }
        match calls.on_new_invite(msg.clone(), from) {
            None => Route::Call,
            Some(refusal) => Route::Refused(msg, refusal),
        }
    }

    /// Runs the layer's outputs (and our reactions to its events) until it is quiet.
    async fn drain(&mut self) {
        loop {
            if let Some((to, bytes)) = self.stateless.pop_front() {
                self.sender.send_waiting(&to, &bytes).await;
                continue;
            }
            match self.layer.poll_output() {
                Some(Output::Send { to, bytes }) => self.sender.send_waiting(&to, &bytes).await,
                Some(Output::Event(event)) => self.on_event(event),
                None => return,
            }
        }
    }

    fn on_event(&mut self, event: TuEvent) {
        match event {
            TuEvent::Request { key, request, from } => self.on_request(key, &request, &from),
            TuEvent::Cancelled { invite } => {
                // No INVITE is ever left pending today (they are answered at once), so a
                // CANCEL can only race with an answer already sent.
                tracing::debug!(?invite, "CANCEL for an INVITE already answered");
            }
            TuEvent::Ack { from, .. } => {
                tracing::debug!(peer = %from.addr, "ACK outside a transaction")
            }
            TuEvent::Response { key, .. } => {
                tracing::debug!(?key, "response for a client transaction")
            }
            TuEvent::Timeout { key } => tracing::debug!(?key, "transaction timed out"),
            TuEvent::StrayResponse { from, .. } => {
                tracing::debug!(peer = %from.addr, "stray response dropped")
            }
        }
    }

    /// The transaction user: what the switch does with a well-formed request.
    fn on_request(&mut self, key: TransactionKey, request: &SipMessage, from: &Peer) {
        let (code, reason) = match request.method() {
            // Draining (SIGTERM): a load balancer's OPTIONS probe sees the node leaving.
            Some(Method::Options) if let Some(left) = self.draining() => {
                let headers = [("Retry-After", left.to_string())];
                return self.answer(key, request, from, 503, "Draining", &headers);
            }
            Some(Method::Options) => (200, ""),
            Some(Method::Register) => return self.on_register(key, request, from),
            // Requests inside a dialog we do not have (RFC 3261 §12.2.2).
            Some(Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Notify) => {
                (481, "")
            }
            // Recognised, but not served by this element (RFC 3261 §8.2.1); an INVITE here
            // had no call service to go to, or a To tag no call owns.
            _ => (405, ""),
        };
        self.answer(key, request, from, code, reason, &[]);
    }

    /// A REGISTER that may start a server transaction. It is authenticated first, and one
    /// refused (a challenge, a bad token, 403, 423...) is answered statelessly, as RFC 3261
    /// §8.2.7 suggests for challenges: a source that never authenticates (a scanner, a
    /// flood) costs no transaction and no memory. Only an accepted REGISTER enters the
    /// layer, its prepared update kept for [`Self::on_register`].
    fn on_new_register(&mut self, msg: SipMessage, from: Peer) {
        let new = TransactionKey::server(&msg).filter(|key| !self.layer.has_server(key));
        let Some(key) = new else {
            // A retransmission (the transaction answers it) or no usable Via (dropped).
            return self.layer.handle(now(), Input::Received { msg, from });
        };
        match self.config.registrar.prepare(&msg, &from, unix_now()) {
            Ok(update) => {
                self.prepared = Some((key, update));
                self.layer.handle(now(), Input::Received { msg, from });
            }
            Err(reply) => {
                self.config.metrics.register_outcome(reply.outcome);
                tracing::debug!(peer = %from.addr, code = reply.code, outcome = ?reply.outcome, "REGISTER refused");
                if !reply.silent {
                    self.answer_statelessly(&msg, &from, reply.code, reply.reason, &reply.headers);
                }
            }
        }
    }

    /// REGISTER: authenticated here; the binding stored at once (the memory store) or by
    /// a task that waits for the shared store and hands the answer back to this shard.
    /// Meanwhile the server transaction absorbs retransmissions.
    fn on_register(&mut self, key: TransactionKey, request: &SipMessage, from: &Peer) {
        let registrar = &self.config.registrar;
        let prepared = match self.prepared.take() {
            Some((k, update)) if k == key => Ok(update),
            // Not prepared on the way in (cannot happen today; kept correct anyway).
            _ => registrar.prepare(request, from, unix_now()),
        };
        let update = match prepared {
            Ok(update) => update,
            Err(reply) => return self.answer_register(key, request, from, reply),
        };
        if self.storing >= MAX_STORING {
            self.config.metrics.request_shed(Shed::StoreBacklog);
            let reply = Reply::store_unavailable();
            return self.answer_register(key, request, from, reply);
        }
        let registrar = registrar.clone();
        let mut store = Box::pin(async move { registrar.store_update(update).await });
        // The memory store is done at the first poll: no task, no channel.
        if let Poll::Ready(reply) = store.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return self.answer_register(key, request, from, reply);
        }
        self.storing += 1;
        let tx = self.stored_tx.clone();
        let (request, from) = (request.clone(), *from);
        tokio::spawn(async move {
            let reply = store.await;
            let _ = tx.send(Stored {
                key,
                request,
                from,
                reply,
            });
        });
    }

    fn answer_register(
        &mut self,
        key: TransactionKey,
        request: &SipMessage,
        from: &Peer,
        reply: Reply,
    ) {
        self.config.metrics.register_outcome(reply.outcome);
        tracing::debug!(peer = %from.addr, code = reply.code, outcome = ?reply.outcome, "REGISTER");
        if reply.silent {
            self.layer.handle(now(), Input::Decline { key });
            return;
        }
        self.answer(key, request, from, reply.code, reply.reason, &reply.headers);
    }

    /// Answers `request` through its server transaction.
    fn answer(
        &mut self,
        key: TransactionKey,
        request: &SipMessage,
        from: &Peer,
        code: u16,
        reason: &str,
        headers: &[(&'static str, String)],
    ) {
        let full = self.response(request, from, code, reason, headers);
        // A REGISTER that succeeded proved who sent it; a trunk is vouched for by config.
        // Anyone else may be a spoofed address: the answer must not be larger than the
        // request (a 401 with three challenges is 2.7x a bare REGISTER), or none is sent.
        let vouched = (request.method() == Some(Method::Register) && (200..300).contains(&code))
            || full.len() <= request.as_bytes().len()
            || is_trunk(&self.config, from);
        let response = if vouched {
            Some(full)
        } else {
            self.fitted(request, from, code, reason, headers)
        };
        match response {
            Some(response) => self.layer.handle(now(), Input::Respond { key, response }),
            None => {
                self.config.metrics.message_dropped("amplification");
                tracing::debug!(peer = %from.addr, code, "no answer fits in the size of the request from an unverified source");
                self.layer.handle(now(), Input::Decline { key });
            }
        }
    }

    /// While the switch drains, the seconds of grace left.
    fn draining(&self) -> Option<u64> {
        let calls = self.config.calls.as_ref()?;
        calls.registry.draining(unix_now())
    }

    /// Answers `request` once, with no transaction (RFC 3261 §8.2.7): nothing is resent
    /// and a retransmitted request is simply answered again. Unless a trunk sent it, the
    /// sender is not verified, so the answer is never larger than the request (see
    /// [`Self::fitted`]); one that cannot be made to fit is not sent (counted as
    /// `amplification` drops).
    fn answer_statelessly(
        &mut self,
        request: &SipMessage,
        from: &Peer,
        code: u16,
        reason: &str,
        headers: &[(&'static str, String)],
    ) {
        let to = request
            .top_via()
            .map_or(*from, |v| response_destination(&v, from));
        let answer = if is_trunk(&self.config, from) {
            // A trunk is vouched for by config: it gets the full answer.
            let tag = self.stateless_tag(request);
            let answer = Answer {
                code,
                reason,
                headers,
            };
            Some(self.response_with(request, from, &answer, &tag, Trim::FULL))
        } else {
            self.fitted(request, from, code, reason, headers)
        };
        match answer {
            Some(bytes) => self.stateless.push_back((to, bytes)),
            None => {
                self.config.metrics.message_dropped("amplification");
                tracing::debug!(peer = %from.addr, code, "no answer fits in the size of the request from an unverified source");
            }
        }
    }

    /// The fullest answer no larger than `request`, for a source nothing vouches for (a
    /// spoofed one must not turn the switch into an amplifier). Optional parts go first:
    /// the Server header, then OPTIONS' Accept*/Supported, then challenges after the first
    /// (in the configured order, so the preferred scheme stays). `None`: even the least
    /// answer is larger (only a request stripped to the bare minimum, which no real
    /// client sends, is that small).
    fn fitted(
        &self,
        request: &SipMessage,
        from: &Peer,
        code: u16,
        reason: &str,
        headers: &[(&'static str, String)],
    ) -> Option<Bytes> {
        let limit = request.as_bytes().len();
        let tag = self.stateless_tag(request);
        let challenges = headers.iter().filter(|(n, _)| is_challenge(n)).count();
        let mut trims = vec![
            Trim::FULL,
            Trim {
                server: false,
                ..Trim::FULL
            },
            Trim {
                server: false,
                extras: false,
                ..Trim::FULL
            },
        ];
        trims.extend((1..challenges).rev().map(|keep| Trim {
            server: false,
            extras: false,
            challenges: keep,
        }));
        trims
            .into_iter()
            .map(|t| {
                let answer = Answer {
                    code,
                    reason,
                    headers,
                };
                self.response_with(request, from, &answer, &tag, t)
            })
            .find(|b| b.len() <= limit)
    }

    /// Builds a response with the headers RFC 3261 asks of each status. An empty `reason`
    /// means the standard phrase.
    fn response(
        &self,
        request: &SipMessage,
        from: &Peer,
        code: u16,
        reason: &str,
        headers: &[(&'static str, String)],
    ) -> Bytes {
        let answer = Answer {
            code,
            reason,
            headers,
        };
        self.response_with(request, from, &answer, &crate::ids::tag(), Trim::FULL)
    }

    /// The To tag of an answer that may go out without a transaction: the same for every
    /// retransmission of one request (RFC 3261 §8.2.6.2 via §8.2.7: a stateless UAS must
    /// answer a retransmission with the same tag), different for every other request, and
    /// unguessable (keyed by a per-process random key).
    fn stateless_tag(&self, request: &SipMessage) -> String {
        let branch = request
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let call_id = request.call_id().unwrap_or_default();
        let from_tag = request
            .from_header()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        let h = self.tag_key.hash_one((branch, call_id, from_tag));
        format!("{h:016x}")
    }

    /// [`Self::response`] without the optional parts `trim` leaves out.
    fn response_with(
        &self,
        request: &SipMessage,
        from: &Peer,
        answer: &Answer<'_>,
        tag: &str,
        trim: Trim,
    ) -> Bytes {
        let Answer {
            code,
            reason,
            headers,
        } = *answer;
        let mut b = ResponseBuilder::new(request, code)
            .to_tag(tag)
            .received_from(from.addr);
        if !reason.is_empty() {
            b = b.reason(reason);
        }
        let mut challenges = 0;
        for (name, value) in headers {
            if is_challenge(name) {
                challenges += 1;
                if challenges > trim.challenges {
                    continue;
                }
            }
            b = b.header(name, value.clone());
        }
        // §11.2: an OPTIONS answer lists what we allow, accept and support; §8.2.1: so
        // does a 405 (a MUST there, so it is never trimmed).
        if code == 405 || (code == 200 && trim.extras) {
            b = b.header("Allow", ALLOW);
        }
        if code == 200 && trim.extras {
            b = b
                .header("Accept", ACCEPTED_BODIES.join(", "))
                .header("Accept-Encoding", "identity")
                .header("Accept-Language", "en")
                .header("Supported", SUPPORTED_EXTENSIONS.join(", "));
        }
        if trim.server {
            b = b.header("Server", self.config.server_name.to_string());
        }
        b.build()
    }
}

/// What a response says: its status, reason phrase (empty: the standard one) and the
/// headers the deciding layer asked for.
#[derive(Debug, Clone, Copy)]
struct Answer<'a> {
    code: u16,
    reason: &'a str,
    headers: &'a [(&'static str, String)],
}

/// Which optional parts of a response are kept.
#[derive(Debug, Clone, Copy)]
struct Trim {
    /// Our Server header (RFC 3261 §20.35, optional).
    server: bool,
    /// Allow/Accept*/Supported on a 200 (SHOULD in §11.2).
    extras: bool,
    /// How many WWW-/Proxy-Authenticate headers, first first.
    challenges: usize,
}

impl Trim {
    const FULL: Trim = Trim {
        server: true,
        extras: true,
        challenges: usize::MAX,
    };
}

fn is_challenge(name: &str) -> bool {
    name.eq_ignore_ascii_case("WWW-Authenticate") || name.eq_ignore_ascii_case("Proxy-Authenticate")
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
