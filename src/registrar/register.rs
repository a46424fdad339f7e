//! REGISTER handling (RFC 3261 §10.3 with RFC 8898 bearer tokens and RFC 3261 §22 Digest):
//! authenticate, authorize the address of record, grant expiries, update the location
//! store, and answer with every current binding.
//!
//! | situation | answer |
//! | --- | --- |
//! | no credentials, or a scheme we do not take | 401, `Bearer realm="…"` (+ Digest challenges when the realm has SIP users) |
//! | bad, expired or not-yet-valid token | 401 with `error="invalid_token"` |
//! | valid token without the incoming grant, or AOR user ≠ identity | 403 |
//! | Digest: unknown user or wrong password | the same 401 (no user enumeration) |
//! | expiry below the minimum | 423 with Min-Expires |
//! | stale CSeq for a Call-ID | 500 (§10.3 step 7) |
//! | more contacts than allowed | 403 |
//! | otherwise | 200 with every binding and its remaining `expires`, never past the token's `exp` |
//!
//! A binding made over a stream connection (TCP, TLS, WS, WSS) lives only as long as that
//! connection, the client's flow (RFC 5626 §5.3): [`Registrar::connection_closed`] removes
//! it when the connection closes, as the client's own un-REGISTER would.
//!
//! Sans-IO in spirit: the caller passes `now` (unix seconds) and gets a [`Reply`] to send.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use super::bans::AuthGuard;
use super::digest::{DigestAuth, DigestError};
use super::location::{
    AorKey, Binding, ContactUpdate, Edge, Flow, LocationStore, RegisterError, RegisterOutcome,
    RegisterRequest,
};
use super::presence::Presence;
use super::token::{Grant, TokenVerifier};
use crate::config::{BanReply, ChallengeScheme, Config, RegistrarConfig};
use crate::metrics::RegisterOutcomeLabel as Outcome;
use crate::sip::msg::typed::{Credentials, parse_delta_seconds};
use crate::sip::msg::{HeaderName, SipMessage};
use crate::sip::{ConnectionId, Peer};

/// What to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Headers to add (WWW-Authenticate, Contact, Min-Expires, Path, ...).
    pub headers: Vec<(&'static str, String)>,
    /// For metrics.
    pub outcome: Outcome,
    /// Send nothing at all (a banned source with `ban_reply = "drop"`).
    pub silent: bool,
}

impl Reply {
    fn new(code: u16, reason: &'static str, outcome: Outcome) -> Self {
        Reply {
            code,
            reason,
            headers: Vec::new(),
            outcome,
            silent: false,
        }
    }

    /// 503: the binding could not be stored (the shared store is down or behind), so no
    /// 200: the client keeps its old binding and tries again (RFC 3261 §21.5.4).
    pub fn store_unavailable() -> Self {
        let mut r = Reply::new(503, "Location Store Unavailable", Outcome::StoreUnavailable);
        r.headers
            .push(("Retry-After", STORE_RETRY_AFTER.to_string()));
        r
    }

    /// The answer to a banned source.
    fn banned(how: BanReply) -> Self {
        Reply {
            silent: how == BanReply::Drop,
            ..Reply::new(403, "Forbidden (banned)", Outcome::Banned)
        }
    }
}

/// The authenticators, rebuilt on config reload.
struct Auth {
    realm: String,
    /// The host part of `[server] public_address`, another name clients may use for us.
    public_host: Option<String>,
    /// Expiry bounds and the contact cap (`[registrar]`, RFC 3261 §10.2.1.1, §10.3 step 7).
    limits: RegistrarConfig,
    /// What a 401 offers, in order (`[server] challenges`).
    challenges: Vec<ChallengeScheme>,
    tokens: TokenVerifier,
    digest: DigestAuth,
}

/// Who a REGISTER authenticated as.
struct Principal {
    account: String,
    identity: String,
    /// A Digest username may differ from the identity it maps to; either names the AOR.
    username: Option<String>,
    incoming: bool,
    /// Unix seconds after which no binding may last (the token's `exp`).
    not_after: Option<u64>,
}

/// The registrar.
pub struct Registrar {
    auth: ArcSwap<Auth>,
    digest_secret: [u8; 32],
    store: Arc<dyn LocationStore>,
    presence: Arc<Presence>,
    /// Failed credentials and bans (`[security]`).
    guard: Arc<AuthGuard>,
    /// In a cluster: this node, stamped on every binding it stores (it holds the flow).
    edge: OnceLock<Edge>,
    /// The AORs with a binding registered over each open stream connection, so the
    /// connection's close can end them. Only stream REGISTERs add to it; an entry goes when
    /// its connection closes (or its last binding over the connection is removed).
    flows: Mutex<HashMap<ConnectionId, HashSet<AorKey>>>,
    /// Whether a stream connection is still open (the transport's table, set by the
    /// server): a REGISTER stored after its connection closed must end its own flow.
    flow_open: OnceLock<FlowProbe>,
}

/// See `Registrar::set_flow_probe`.
type FlowProbe = Box<dyn Fn(ConnectionId) -> bool + Send + Sync>;

/// Attempts at ending one AOR's bindings over a closed flow when a REGISTER read from the
/// connection before it closed keeps refreshing them (each refresh is an `OutOfOrder`).
const FLOW_END_ROUNDS: usize = 4;

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar").finish_non_exhaustive()
    }
}

/// `host` of a `host[:port]` public address (IPv6 stays bracketed, as in URIs).
fn public_host(addr: &str) -> String {
    match crate::sip::msg::typed::Host::parse_hostport(addr) {
        Some((h, _)) => h.to_string(),
        None => addr.to_string(),
    }
}

fn random_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    for chunk in s.chunks_mut(8) {
        chunk.copy_from_slice(&crate::ids::random_u64().to_be_bytes());
    }
    s
}

impl Registrar {
    /// A registrar for `cfg`, storing bindings in `store`.
    pub fn new(
        cfg: &Config,
        store: Arc<dyn LocationStore>,
        presence: Arc<Presence>,
    ) -> Result<Self, String> {
        let digest_secret = random_secret();
        let auth = Self::build_auth(cfg, digest_secret)?;
        Ok(Registrar {
            auth: ArcSwap::from_pointee(auth),
            digest_secret,
            store,
            presence,
            guard: Arc::new(AuthGuard::new(cfg.security)),
            edge: OnceLock::new(),
            flows: Mutex::default(),
            flow_open: OnceLock::new(),
        })
    }

    fn build_auth(cfg: &Config, secret: [u8; 32]) -> Result<Auth, String> {
        Ok(Auth {
            realm: cfg.server.realm.clone(),
            public_host: cfg.server.public_address.as_deref().map(public_host),
            limits: cfg.registrar,
            challenges: cfg.server.challenges.clone(),
            tokens: TokenVerifier::new(cfg)?,
            digest: DigestAuth::new(cfg, secret),
        })
    }

    /// Applies a reloaded config (keys, users, realm). Nonces stay valid: the Digest
    /// secret lives as long as the process.
    pub fn reload(&self, cfg: &Config) -> Result<(), String> {
        self.auth
            .store(Arc::new(Self::build_auth(cfg, self.digest_secret)?));
        self.guard.reload(cfg.security);
        Ok(())
    }

    /// This node of a cluster, once its SIP address is bound: bindings stored from now on
    /// name it as the node that reaches the client.
    pub fn set_edge(&self, edge: Edge) {
        let _ = self.edge.set(edge);
    }

    /// This node of a cluster (`None` with the memory store).
    pub fn edge(&self) -> Option<&Edge> {
        self.edge.get()
    }

    /// How to tell whether a stream connection is still open (set once, at start). Without
    /// it, a REGISTER whose connection closed while its binding was being stored keeps
    /// that binding until it expires.
    pub fn set_flow_probe(&self, open: impl Fn(ConnectionId) -> bool + Send + Sync + 'static) {
        let _ = self.flow_open.set(Box::new(open));
    }

    /// Stream connection `conn` of this node, as bindings name it.
    fn flow(&self, conn: ConnectionId) -> Flow {
        Flow {
            conn,
            node: self.edge.get().map(|e| e.node.clone()),
        }
    }

    /// Failed credentials and bans, for `/metrics` and the bans listing.
    pub fn guard(&self) -> &Arc<AuthGuard> {
        &self.guard
    }

    /// Counts failed credentials from `from` for the AOR the request names (its To URI:
    /// a forged token names no verified identity).
    fn note_failure(&self, req: &SipMessage, from: &Peer, now: u64) {
        let aor = req
            .to_header()
            .ok()
            .and_then(|t| {
                t.uri
                    .sip()
                    .map(|u| format!("{}@{}", u.user.unwrap_or(""), u.host))
            })
            .unwrap_or_default();
        self.guard.failed(from.addr.ip(), &aor, now);
    }

    /// The location store.
    pub fn store(&self) -> &Arc<dyn LocationStore> {
        &self.store
    }

    /// Who may place a call with this INVITE's bearer token (a client app dialing out, its
    /// token naming the outgoing application): `Ok(None)` when the INVITE carries no
    /// Bearer credentials (it is not a client's call), `Err` with the answer for a bad
    /// token (401 `invalid_token`) or a token without the outgoing grant (403).
    pub fn authorize_call(
        &self,
        req: &SipMessage,
        from: &Peer,
        now: u64,
    ) -> Result<Option<Arc<Grant>>, Reply> {
        let auth = self.auth.load();
        let token = req
            .values(HeaderName::Authorization)
            .chain(req.values(HeaderName::ProxyAuthorization))
            .find_map(|v| match Credentials::parse(v) {
                Some(Credentials::Bearer(t)) => Some(t),
                _ => None,
            });
        let Some(token) = token else {
            return Ok(None);
        };
        if let Some(how) = self.guard.banned(from.addr.ip(), now) {
            return Err(Reply::banned(how));
        }
        match auth.tokens.verify(token, now) {
            Ok(grant) if grant.outgoing.is_some() => Ok(Some(grant)),
            Ok(_) => Err(Reply::new(403, "No Outgoing Grant", Outcome::Forbidden)),
            Err(e) => {
                tracing::debug!(class = e.class(), "INVITE with a bad token");
                self.note_failure(req, from, now);
                let mut r = Reply::new(401, "Unauthorized", Outcome::InvalidToken);
                r.headers.push((
                    "WWW-Authenticate",
                    format!("Bearer realm=\"{}\", error=\"invalid_token\"", auth.realm),
                ));
                Err(r)
            }
        }
    }

    /// Handles one REGISTER that passed screening: the answer, once the binding is
    /// stored. With the memory store the future is ready at its first poll.
    pub async fn handle(&self, req: &SipMessage, from: &Peer, now: u64) -> Reply {
        match self.prepare(req, from, now) {
            Ok(update) => self.store_update(update).await,
            Err(reply) => reply,
        }
    }

    /// Authenticates and authorizes one REGISTER and works out what it asks of the store;
    /// `Err` is the answer when it gets no further (a challenge, 403, 423, 400...).
    pub fn prepare(&self, req: &SipMessage, from: &Peer, now: u64) -> Result<Update, Reply> {
        self.prepare_inner(req, from, now).map_err(|r| *r)
    }

    fn prepare_inner(&self, req: &SipMessage, from: &Peer, now: u64) -> Result<Update, Box<Reply>> {
        // A banned source is refused before its credentials are looked at: the right
        // password during a ban gets no further than a wrong one.
        if let Some(how) = self.guard.banned(from.addr.ip(), now) {
            return Err(Box::new(Reply::banned(how)));
        }
        let auth = self.auth.load();
        let principal = match authenticate(&auth, req, now) {
            Ok(p) => p,
            Err(reply) => {
                if reply.outcome == Outcome::InvalidToken {
                    self.note_failure(req, from, now);
                }
                return Err(Box::new(reply));
            }
        };
        let Ok(to) = req.to_header() else {
            return Err(Box::new(Reply::new(
                400,
                "Bad To Header",
                Outcome::BadRequest,
            )));
        };
        let Some(to_uri) = to.uri.sip() else {
            return Err(Box::new(Reply::new(
                400,
                "To Must Be A SIP URI",
                Outcome::BadRequest,
            )));
        };
        let Some(aor_user) = to_uri.user else {
            return Err(Box::new(Reply::new(
                400,
                "To Has No User Part",
                Outcome::BadRequest,
            )));
        };
        // RFC 3261 §10.3 step 3: the AOR must belong to a domain this registrar serves.
        if !aor_domain_ok(
            &auth,
            &to_uri.host.to_string(),
            req.request_uri().unwrap_or(""),
        ) {
            return Err(Box::new(Reply::new(
                404,
                "Not Found (domain not served here)",
                Outcome::BadRequest,
            )));
        }
        // RFC 6750 §3.1 / RFC 8898: authenticated but not allowed is 403, not a new challenge.
        if !principal.incoming {
            return Err(Box::new(Reply::new(
                403,
                "Forbidden (token has no incoming grant)",
                Outcome::Forbidden,
            )));
        }
        // The AOR user is %-escaped in the URI (RFC 3261 §19.1.2); identities are not.
        // A malformed escape names no identity, so it is refused like any other mismatch.
        let aor_user = crate::percent::decode(aor_user).unwrap_or_default();
        if *aor_user != principal.identity && Some(&*aor_user) != principal.username.as_deref() {
            return Err(Box::new(Reply::new(
                403,
                "Forbidden (AOR is not the authenticated identity)",
                Outcome::Forbidden,
            )));
        }
        // A token inside its verification leeway but past `exp` may not create a binding
        // that would already be over.
        if principal.not_after.is_some_and(|t| t <= now) {
            return Err(Box::new(challenge(
                &auth,
                now,
                Some("invalid_token"),
                false,
                Outcome::InvalidToken,
            )));
        }
        let key = AorKey::new(principal.account.as_str(), principal.identity.as_str());
        let (Ok(call_id), Ok(cseq)) = (req.call_id(), req.cseq()) else {
            return Err(Box::new(Reply::new(
                400,
                "Bad Call-ID or CSeq",
                Outcome::BadRequest,
            )));
        };
        let header_expires = req.expires().ok().flatten();
        let wildcard = req.is_contact_star();
        if wildcard && (req.contacts().count() > 0 || header_expires != Some(0)) {
            // §10.3 step 6: `*` only alone and only with Expires: 0.
            return Err(Box::new(Reply::new(
                400,
                "Wildcard Contact Needs Expires 0 And No Other Contact",
                Outcome::BadRequest,
            )));
        }
        let path: Box<[Box<str>]> = req.list(HeaderName::Path).map(Box::from).collect();
        let user_agent = req.first(HeaderName::UserAgent).map(Box::from);
        let mut updates = Vec::new();
        for contact in req.contacts() {
            let Ok(c) = contact else {
                return Err(Box::new(Reply::new(
                    400,
                    "Bad Contact",
                    Outcome::BadRequest,
                )));
            };
            let requested = match c.params.get("expires") {
                // A malformed parameter counts as absent, so `Expires: 0` beside a broken
                // `;expires=x` still unregisters instead of registering for an hour.
                Some(Some(v)) => parse_delta_seconds(v).or(header_expires),
                Some(None) | None => header_expires,
            }
            .unwrap_or(auth.limits.default_expires);
            let instance = c.params.get("+sip.instance").flatten().map(Box::from);
            let reg_id = c
                .params
                .get("reg-id")
                .flatten()
                .and_then(|v| v.parse().ok());
            if requested == 0 {
                updates.push(ContactUpdate::Remove {
                    contact: c.uri_text.into(),
                    instance,
                    reg_id,
                    call_id: call_id.into(),
                    cseq: cseq.seq,
                    flow: None,
                });
                continue;
            }
            if requested < auth.limits.min_expires {
                let mut r = Reply::new(423, "Interval Too Brief", Outcome::IntervalTooBrief);
                r.headers
                    .push(("Min-Expires", auth.limits.min_expires.to_string()));
                return Err(Box::new(r));
            }
            let mut expires_at = now + u64::from(requested.min(auth.limits.max_expires));
            if let Some(limit) = principal.not_after {
                // A registration never outlives the token that made it (RFC 8898 §2.1).
                expires_at = expires_at.min(limit);
            }
            updates.push(ContactUpdate::Add(Binding {
                contact: c.uri_text.into(),
                expires_at,
                call_id: call_id.into(),
                cseq: cseq.seq,
                instance,
                reg_id,
                path: path.clone(),
                source: from.addr,
                transport: from.transport,
                conn: from.conn,
                user_agent: user_agent.clone(),
                q: c.params.get("q").flatten().and_then(|q| q.parse().ok()),
                registered_at: now,
                edge: self.edge.get().map(|e| Box::new(e.clone())),
            }));
        }
        let request = RegisterRequest {
            key,
            call_id: call_id.into(),
            cseq: cseq.seq,
            wildcard_remove: wildcard,
            updates,
            max_contacts: auth.limits.max_contacts,
            now,
        };
        Ok(Update {
            request,
            path,
            // The flow it arrived on: its stream connection (none for UDP).
            flow: from.conn.map(|conn| self.flow(conn)),
        })
    }

    /// Stores a prepared REGISTER and answers it: 200 with every binding only once the
    /// store holds them.
    pub async fn store_update(&self, update: Update) -> Reply {
        let Update {
            request,
            path,
            flow,
        } = update;
        let (key, now) = (request.key.clone(), request.now);
        match self.apply(request).await {
            Ok(outcome) => {
                if let Some(flow) = &flow {
                    self.track_flow(flow, &key, &outcome.bindings, now).await;
                }
                let mut r = if outcome.bindings.is_empty() {
                    Reply::new(200, "OK", Outcome::Unregistered)
                } else {
                    Reply::new(200, "OK", Outcome::Ok)
                };
                for b in &outcome.bindings {
                    r.headers.push(("Contact", contact_value(b, now)));
                }
                // RFC 3327 §5.3: the registrar returns the Path it stored.
                for p in path.iter() {
                    r.headers.push(("Path", p.to_string()));
                }
                r
            }
            Err(RegisterError::OutOfOrder) => {
                Reply::new(500, "Out Of Order REGISTER", Outcome::OutOfOrder)
            }
            Err(RegisterError::TooManyContacts { .. }) => {
                Reply::new(403, "Too Many Contacts", Outcome::TooManyContacts)
            }
            Err(RegisterError::Unavailable) => Reply::store_unavailable(),
        }
    }

    /// Applies one change to the store and, once stored, brings presence in line (its
    /// callbacks and a cluster hear of it through `Presence`): what every REGISTER does.
    async fn apply(&self, request: RegisterRequest) -> Result<RegisterOutcome, RegisterError> {
        let (key, now) = (request.key.clone(), request.now);
        let outcome = self.store.register(request).await?;
        self.presence.sync(&key, self.store.as_ref(), now);
        Ok(outcome)
    }

    /// Keeps `flows` in step with what a stream REGISTER for `key` left (`bindings`, every
    /// live binding of the AOR).
    async fn track_flow(&self, flow: &Flow, key: &AorKey, bindings: &[Binding], now: u64) {
        let over = bindings.iter().any(|b| b.is_over(flow));
        {
            let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
            if over {
                flows.entry(flow.conn).or_default().insert(key.clone());
            } else if let Some(keys) = flows.get_mut(&flow.conn)
                // Read again under the lock: `bindings` may be older than what another
                // REGISTER over this connection has since stored and listed here.
                && !self
                    .store
                    .lookup(key, now)
                    .iter()
                    .any(|b| b.is_over(flow))
            {
                keys.remove(key);
                if keys.is_empty() {
                    flows.remove(&flow.conn);
                }
            }
        }
        // The connection may have closed while the binding was being stored, and its close
        // found nothing listed then: end the flow now. (A close after this check finds the
        // entry made above.)
        if over && self.flow_open.get().is_some_and(|open| !open(flow.conn)) {
            self.connection_closed(flow.conn, now).await;
        }
    }

    /// The stream connection `conn` closed, and with it the flow (RFC 5626 §5.3): every
    /// binding still registered over it is removed as the client's un-REGISTER (`Expires:
    /// 0`) of that contact would remove it, and presence follows. A binding since
    /// refreshed over another connection or over UDP stays. Returns how many were removed.
    pub async fn connection_closed(&self, conn: ConnectionId, now: u64) -> usize {
        let keys = self
            .flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conn);
        let Some(keys) = keys else {
            return 0;
        };
        let flow = self.flow(conn);
        let mut removed = 0;
        for key in keys {
            removed += self.end_flow(&key, &flow, now).await;
        }
        removed
    }

    /// Removes `key`'s bindings over the closed `flow`.
    async fn end_flow(&self, key: &AorKey, flow: &Flow, now: u64) -> usize {
        for _ in 0..FLOW_END_ROUNDS {
            let over: Vec<Binding> = self
                .store
                .lookup(key, now)
                .into_iter()
                .filter(|b| b.is_over(flow))
                .collect();
            if over.is_empty() {
                return 0;
            }
            let updates: Vec<ContactUpdate> = over
                .iter()
                .map(|b| {
                    let (call_id, cseq) = removal_order(b, flow);
                    ContactUpdate::Remove {
                        contact: b.contact.clone(),
                        instance: b.instance.clone(),
                        reg_id: b.reg_id,
                        call_id,
                        cseq,
                        // Matched in the store's own update, so a binding re-registered
                        // over another connection since the lookup is not touched.
                        flow: Some(flow.clone()),
                    }
                })
                .collect();
            let (call_id, cseq) = removal_order(&over[0], flow);
            let request = RegisterRequest {
                key: key.clone(),
                call_id,
                cseq,
                wildcard_remove: false,
                updates,
                max_contacts: self.auth.load().limits.max_contacts,
                now,
            };
            match self.apply(request).await {
                Ok(_) => {
                    tracing::debug!(account = %key.account, identity = %key.identity, conn = flow.conn, bindings = over.len(), "flow closed: bindings removed");
                    return over.len();
                }
                // Refreshed over this same flow since the lookup (a REGISTER read before
                // the close): look again.
                Err(RegisterError::OutOfOrder) => continue,
                Err(e) => {
                    tracing::warn!(account = %key.account, identity = %key.identity, error = %e, "flow closed but its bindings could not be removed; they lapse at their expiry");
                    return 0;
                }
            }
        }
        tracing::warn!(account = %key.account, identity = %key.identity, "flow closed but its bindings kept being refreshed; they lapse at their expiry");
        0
    }
}

/// The Call-ID and CSeq of a removal of `b` that RFC 3261 §10.3 step 7 orders after the
/// REGISTER that stored it: its own Call-ID, one CSeq higher. A CSeq already at the top of
/// its range has no successor, so that removal takes a Call-ID of its own instead (a
/// binding from another Call-ID is replaced unconditionally).
fn removal_order(b: &Binding, flow: &Flow) -> (Box<str>, u32) {
    match b.cseq.checked_add(1) {
        Some(cseq) => (b.call_id.clone(), cseq),
        None => (format!("flow-closed-{:x}", flow.conn).into(), 1),
    }
}

/// Seconds a client waits after a 503 for a store that is down.
const STORE_RETRY_AFTER: u32 = 5;

/// A REGISTER that passed authentication, as the store will apply it.
#[derive(Debug)]
pub struct Update {
    request: RegisterRequest,
    /// The Path the 200 echoes (RFC 3327 §5.3).
    path: Box<[Box<str>]>,
    /// The stream connection it came over (`None` for UDP): its bindings end with it.
    flow: Option<Flow>,
}

/// Whether an AOR host is ours (RFC 3261 §10.3 step 3). Ours are the realm, and the host
/// the client addressed the REGISTER to when it names us directly: an IP literal (the
/// client reached us at that address) or the configured public address. A client that uses
/// the switch's address as its SIP domain therefore registers `sip:alice@203.0.113.10`
/// fine, while an AOR in a foreign domain gets 404.
fn aor_domain_ok(auth: &Auth, to_host: &str, request_uri: &str) -> bool {
    if to_host.eq_ignore_ascii_case(&auth.realm) {
        return true;
    }
    let Some(ruri) = crate::sip::msg::typed::SipUri::parse(request_uri) else {
        return false;
    };
    let ruri_host = ruri.host.to_string();
    let addressed_to_us = ruri.host.ip().is_some()
        || auth
            .public_host
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(&ruri_host));
    addressed_to_us && ruri_host.eq_ignore_ascii_case(to_host)
}

/// `<uri>;expires=N` plus the RFC 5626 parameters that identify the flow.
fn contact_value(b: &Binding, now: u64) -> String {
    let mut v = format!("<{}>;expires={}", b.contact, b.seconds_left(now));
    if let Some(i) = &b.instance {
        v.push_str(";+sip.instance=");
        v.push_str(i);
    }
    if let Some(r) = b.reg_id {
        v.push_str(&format!(";reg-id={r}"));
    }
    v
}

/// The challenges of a 401, in the configured order (RFC 8898 §2.2 lets a 401 carry both
/// schemes). Digest is offered only where the realm has SIP users; a client that presented
/// a well-formed bearer token always gets its Bearer challenge back with the error, since
/// it evidently speaks Bearer (a header that is not `Bearer <token68>` carries no usable
/// authentication information, so RFC 6750 §3.1 gives it a plain challenge).
fn challenge(auth: &Auth, now: u64, error: Option<&str>, stale: bool, outcome: Outcome) -> Reply {
    let mut r = Reply::new(401, "Unauthorized", outcome);
    let bearer = || match error {
        Some(e) => format!("Bearer realm=\"{}\", error=\"{e}\"", auth.realm),
        None => format!("Bearer realm=\"{}\"", auth.realm),
    };
    let offers = |s: ChallengeScheme| auth.challenges.contains(&s);
    let mut digest_done = false;
    if error.is_some() && !offers(ChallengeScheme::Bearer) {
        r.headers.push(("WWW-Authenticate", bearer()));
    }
    for scheme in &auth.challenges {
        match scheme {
            ChallengeScheme::Bearer => r.headers.push(("WWW-Authenticate", bearer())),
            // Both Digest algorithms share one nonce, so they are emitted together.
            ChallengeScheme::DigestSha256 | ChallengeScheme::DigestMd5 => {
                if !digest_done && auth.digest.has_users() {
                    let sha = offers(ChallengeScheme::DigestSha256);
                    let md5 = offers(ChallengeScheme::DigestMd5);
                    for c in auth.digest.challenges_for(now, stale, sha, md5) {
                        r.headers.push(("WWW-Authenticate", c));
                    }
                }
                digest_done = true;
            }
        }
    }
    r
}

fn authenticate(auth: &Auth, req: &SipMessage, now: u64) -> Result<Principal, Reply> {
    let mut digest_creds = None;
    for value in req.values(HeaderName::Authorization) {
        match Credentials::parse(value) {
            Some(Credentials::Bearer(token)) => {
                return match auth.tokens.verify(token, now) {
                    Ok(grant) => Ok(Principal {
                        account: grant.account_sid.clone(),
                        identity: grant.identity.clone(),
                        username: None,
                        incoming: grant.incoming,
                        not_after: Some(grant.expires_at),
                    }),
                    Err(e) => {
                        tracing::debug!(class = e.class(), "REGISTER with a bad token");
                        Err(challenge(
                            auth,
                            now,
                            Some("invalid_token"),
                            false,
                            Outcome::InvalidToken,
                        ))
                    }
                };
            }
            // Only credentials for our realm are ours to check (never another's).
            Some(Credentials::Digest(params))
                if params.get("realm") == Some(auth.realm.as_str()) =>
            {
                digest_creds = Some(params);
            }
            _ => {}
        }
    }
    let Some(params) = digest_creds else {
        return Err(challenge(auth, now, None, false, Outcome::Challenge));
    };
    let uri = req.request_uri().unwrap_or("");
    match auth.digest.verify("REGISTER", uri, &params, now) {
        Ok(user) => Ok(Principal {
            account: user.account,
            identity: user.identity,
            username: Some(user.username),
            incoming: true,
            not_after: None,
        }),
        Err(DigestError::Stale) => Err(challenge(auth, now, None, true, Outcome::Challenge)),
        Err(e) => {
            tracing::debug!(class = e.class(), "REGISTER with bad Digest credentials");
            Err(challenge(auth, now, None, false, Outcome::InvalidToken))
        }
    }
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
