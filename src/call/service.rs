//! Where calls start: a new INVITE from a shard (the dial plan decides whether and for whom),
//! or a REST request to call someone (`Originator`). Holds what every call task shares.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::core::leg::{self, Local};
use super::dial::{Callee, destination_guard};
use super::driver::{Call, CallStart};
use super::registry::CallRegistry;
use super::router::{CALL_INBOX, CallInput, CallRouter};
use super::tenant_limits::{AccountLimits, OverLimit};
use super::{
    CallInfo, CallStatus, Direction, OriginateError, OriginateRequest, Originator, new_call_sid,
};
use crate::config::dialplan::{DialPlan, InboundDecision};
use crate::config::{Config, Live};
use crate::instructions;
use crate::registrar::location::LocationStore;
use crate::registrar::presence::Presence;
use crate::registrar::register::Registrar;
use crate::sip::Peer;
use crate::sip::msg::SipMessage;
use crate::sip::msg::typed::SipUri;
use crate::sip::transaction::Timers;
use crate::time::unix_ms;
use crate::transport::sender::SipSender;
use crate::webhook::WebhookClient;
use crate::webhook::voice::method;

/// Where a call's instructions come from, and who hears about its progress.
#[derive(Debug, Clone, Default)]
pub struct AppSource {
    pub application_sid: Option<String>,
    pub url: Option<String>,
    pub method: instructions::Method,
    pub fallback_url: Option<String>,
    pub fallback_method: instructions::Method,
    pub twiml: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: instructions::Method,
    /// Events for `status_callback` (empty: just `completed`).
    pub status_callback_events: Vec<String>,
    /// Parameters added to the first instructions request only (a client token's
    /// `outgoing.params`).
    pub initial_params: Vec<(String, String)>,
    /// A hop from another cluster node (`call::hop`): its Dial rings only the contacts
    /// whose flow ends here, never hopping again.
    pub hop: bool,
}

impl AppSource {
    fn of_application(app: &crate::config::Application) -> AppSource {
        AppSource {
            application_sid: Some(app.sid.clone()),
            url: app.voice_url.clone(),
            method: method(app.voice_method),
            fallback_url: app.voice_fallback_url.clone(),
            fallback_method: method(app.voice_fallback_method),
            twiml: app.twiml.clone(),
            status_callback: app.status_callback.clone(),
            status_callback_method: method(app.status_callback_method),
            status_callback_events: Vec::new(),
            initial_params: Vec::new(),
            hop: false,
        }
    }
}

/// What every call task shares.
pub struct CallService {
    pub live: Arc<Live>,
    plan: Mutex<(Arc<Config>, Arc<DialPlan>)>,
    pub registry: Arc<CallRegistry>,
    pub router: Arc<CallRouter>,
    pub webhooks: Arc<WebhookClient>,
    pub store: Arc<dyn LocationStore>,
    pub presence: Arc<Presence>,
    /// Verifies the bearer tokens of clients placing calls.
    pub registrar: Arc<Registrar>,
    pub timers: Timers,
    pub server_name: Arc<str>,
    /// Our address in Via and Contact.
    pub local: Local,
    pub sender: SipSender,
    pub limits: instructions::Limits,
    /// The media plane every call's audio crosses.
    pub media: Arc<crate::media::MediaEngine>,
    /// The address our SDP advertises.
    pub media_ip: std::net::IpAddr,
    /// Where `<Record>` files go, listed by REST.
    pub recordings: Arc<super::recordings::Recordings>,
    /// What `<Play>` has fetched and decoded.
    pub audio: super::audio::AudioCache,
    /// The conferences of this node (REST reads them too).
    pub conferences: Arc<super::conferences::Conferences>,
    pub queues: Arc<super::queues::Queues>,
}

/// What the call service is built from, at start-up.
#[allow(missing_debug_implementations)]
pub struct CallDeps {
    pub live: Arc<Live>,
    pub registry: Arc<CallRegistry>,
    pub router: Arc<CallRouter>,
    pub webhooks: Arc<WebhookClient>,
    pub store: Arc<dyn LocationStore>,
    pub presence: Arc<Presence>,
    pub registrar: Arc<Registrar>,
    pub timers: Timers,
    pub server_name: Arc<str>,
    pub local: Local,
    pub sender: SipSender,
    pub media: MediaParts,
}

/// The media side of the call service, built at start-up.
#[derive(Debug)]
pub struct MediaParts {
    pub engine: Arc<crate::media::MediaEngine>,
    /// The address our SDP advertises.
    pub ip: std::net::IpAddr,
    pub recordings: Arc<super::recordings::Recordings>,
    pub audio: super::audio::AudioCache,
    pub conferences: Arc<super::conferences::Conferences>,
    pub queues: Arc<super::queues::Queues>,
}

impl std::fmt::Debug for CallService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallService")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Why a new INVITE was not taken: the shard answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(&'static str, String)>,
    /// Answer without a server transaction (RFC 3261 §8.2.7, a stateless UAS): the
    /// source is no trunk, so nothing vouches that it is who the packet says. A server
    /// transaction would resend a non-2xx final answer until Timer H (about 12 sends over
    /// 32 s) toward an address that may be spoofed: a reflector. Stateless, every INVITE
    /// received gets exactly one answer, and its retransmissions are refused again.
    pub stateless: bool,
    /// Send nothing (a banned source with `[security] ban_reply = "drop"`).
    pub silent: bool,
}

/// The Request-URI's user part, %-decoded (as written when an escape is malformed): the
/// number called, or a client's identity.
fn request_user(msg: &SipMessage) -> String {
    msg.request_uri()
        .and_then(SipUri::parse)
        .and_then(|u| {
            u.user.map(|u| {
                crate::percent::decode(u).map_or_else(|| u.to_string(), |c| c.into_owned())
            })
        })
        .unwrap_or_default()
}

/// A plain refusal: the code and reason, no extra headers.
fn refuse(code: u16, reason: &str) -> Option<Refusal> {
    Some(Refusal {
        code,
        reason: reason.to_string(),
        headers: Vec::new(),
        stateless: false,
        silent: false,
    })
}

impl CallService {
    pub fn new(deps: CallDeps) -> CallService {
        let CallDeps {
            live,
            registry,
            router,
            webhooks,
            store,
            presence,
            registrar,
            timers,
            server_name,
            local,
            sender,
            media,
        } = deps;
        let cfg = live.current();
        let plan = Arc::new(DialPlan::new(&cfg));
        CallService {
            live,
            plan: Mutex::new((cfg, plan)),
            registry,
            router,
            webhooks,
            store,
            presence,
            registrar,
            timers,
            server_name,
            local,
            sender,
            limits: instructions::Limits::default(),
            media: media.engine,
            media_ip: media.ip,
            recordings: media.recordings,
            audio: media.audio,
            conferences: media.conferences,
            queues: media.queues,
        }
    }

    /// Whether a new INVITE must be shed: too many live calls, or too many being set up
    /// (the switch is behind). The 503 goes before any webhook or relay work.
    fn overloaded(&self, cfg: &Config) -> Option<Refusal> {
        if self.registry.live_count() >= cfg.calls.max_concurrent {
            return Some(Refusal {
                code: 503,
                reason: "Too Many Calls".into(),
                headers: vec![("Retry-After", "5".into())],
                stateless: false,
                silent: false,
            });
        }
        if self.registry.setups() >= cfg.calls.max_setups {
            self.registry.note_shed();
            return Some(Refusal {
                code: 503,
                reason: "Overloaded".into(),
                headers: vec![("Retry-After", "1".into())],
                stateless: false,
                silent: false,
            });
        }
        None
    }

    /// A 503 for a call over one of `[limits]`, with its Retry-After.
    fn over_limit(over: OverLimit) -> Refusal {
        tracing::info!(
            limit = over.limit.as_str(),
            "call refused by a tenant limit"
        );
        Refusal {
            code: 503,
            reason: over.limit.reason().into(),
            headers: vec![("Retry-After", over.retry_after.to_string())],
            stateless: false,
            silent: false,
        }
    }

    /// The config in force and its dial plan (compiled again only after a reload).
    pub fn config(&self) -> (Arc<Config>, Arc<DialPlan>) {
        let cfg = self.live.current();
        let mut cached = self.plan.lock().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&cached.0, &cfg) {
            *cached = (cfg.clone(), Arc::new(DialPlan::new(&cfg)));
        }
        (cached.0.clone(), cached.1.clone())
    }

    /// A new INVITE (no To tag, unknown Call-ID) arrived at a shard. Either a call task
    /// takes it (None), or the shard answers it with the refusal.
    pub fn on_new_invite(self: &Arc<Self>, msg: SipMessage, from: Peer) -> Option<Refusal> {
        let (cfg, plan) = self.config();
        // SIGTERM: the calls in progress finish, new ones go to another switch.
        if let Some(left) = self.registry.draining(crate::time::unix_now()) {
            return Some(Refusal {
                code: 503,
                reason: "Draining".into(),
                headers: vec![("Retry-After", left.to_string())],
                stateless: plan.source_account(from.addr.ip()).is_none(),
                silent: false,
            });
        }
        let refusal = self.decide_new_invite(&cfg, &plan, msg, from);
        // Trunk sources are vouched for by configuration; anyone else may be spoofed.
        let unverified = plan.source_account(from.addr.ip()).is_none();
        refusal.map(|r| Refusal {
            stateless: unverified || r.silent,
            ..r
        })
    }

    fn decide_new_invite(
        self: &Arc<Self>,
        cfg: &Arc<Config>,
        plan: &DialPlan,
        msg: SipMessage,
        from: Peer,
    ) -> Option<Refusal> {
        let cfg = cfg.clone();
        // Another node of the cluster, reaching a client whose flow ends here.
        let hop = msg
            .values_by_name(super::hop::HEADER)
            .next()
            .map(str::to_string);
        if let Some(hop) = hop {
            return self.hop_call(&cfg, &hop, msg, from);
        }
        // A client app dialing out presents its token (RFC 8898); carriers never do.
        match self
            .registrar
            .authorize_call(&msg, &from, crate::time::unix_now())
        {
            Ok(None) => {}
            Ok(Some(grant)) => return self.client_call(&cfg, &grant, msg, from),
            Err(reply) => {
                return Some(Refusal {
                    code: reply.code,
                    reason: reply.reason.to_string(),
                    silent: reply.silent,
                    headers: reply.headers,
                    stateless: false,
                });
            }
        }
        let called = request_user(&msg);
        let decision = plan.inbound(from.addr.ip(), &called);
        let InboundDecision::Carrier {
            trunk,
            account,
            application,
            number,
            ..
        } = decision
        else {
            tracing::info!(peer = %from.addr, called = %called, why = %decision.why(), "INVITE refused by the dial plan");
            return match decision.status() {
                403 => refuse(403, "Unknown Source"),
                _ => refuse(404, "Unknown Number"),
            };
        };
        if let Some(refusal) = self.overloaded(&cfg) {
            return Some(refusal);
        }
        let Some(acct) = cfg.accounts.iter().find(|a| a.sid == account) else {
            return refuse(500, "Account Missing");
        };
        if let Err(over) = self
            .registry
            .limits()
            .admit_leg(&account, &account_limits(&cfg, acct))
        {
            return Some(Self::over_limit(over));
        }
        let Some(app) = cfg.applications.iter().find(|a| a.sid == application) else {
            return refuse(500, "Application Missing");
        };
        if app.account != account {
            // One tenant's trunk must not reach another tenant's number.
            tracing::info!(peer = %from.addr, called = %called, trunk = %trunk, "number belongs to another account than the trunk");
            return refuse(404, "Unknown Number");
        }
        let call_id = msg.call_id().ok()?.to_string();
        let from_party = msg
            .first(crate::sip::HeaderName::From)
            .map(leg::twilio_party)
            .unwrap_or_default();
        let info = CallInfo {
            sid: new_call_sid(),
            account_sid: account.clone(),
            parent_call_sid: None,
            from: from_party,
            to: number,
            direction: Direction::Inbound,
            status: CallStatus::Ringing,
            created_ms: unix_ms(),
            answered_ms: None,
            ended_ms: None,
            trunk: Some(trunk),
            sip_call_id: Some(call_id.clone()),
            sip_response_code: None,
            application_sid: Some(app.sid.clone()),
        };
        self.spawn_inbound(
            info,
            acct.auth_token.clone(),
            AppSource::of_application(app),
            msg,
            from,
        );
        None
    }

    /// A hop from another cluster node (`call::hop`): ring the client's contacts whose
    /// flow ends here, answering the other node when one answers. No webhook: the node
    /// the call arrived at runs its instructions and reports it.
    fn hop_call(
        self: &Arc<Self>,
        cfg: &Arc<Config>,
        hop: &str,
        msg: SipMessage,
        from: Peer,
    ) -> Option<Refusal> {
        let identity = request_user(&msg);
        let call_id = msg.call_id().ok()?.to_string();
        let account = match super::hop::verify(
            &cfg.cluster,
            hop,
            &identity,
            &call_id,
            from.addr.ip(),
            crate::time::unix_now(),
        ) {
            Ok(account) => account,
            Err(why) => {
                tracing::warn!(peer = %from.addr, ?why, "hop INVITE from no cluster peer refused");
                return refuse(403, "Not A Cluster Peer");
            }
        };
        if identity.is_empty() || identity.contains(['<', '>', '&', '"']) {
            return refuse(404, "No Such Client");
        }
        if let Some(refusal) = self.overloaded(cfg) {
            return Some(refusal);
        }
        let Some(acct) = cfg.accounts.iter().find(|a| a.sid == account) else {
            return refuse(404, "Unknown Account");
        };
        if let Err(over) = self
            .registry
            .limits()
            .admit_leg(&account, &account_limits(cfg, acct))
        {
            return Some(Self::over_limit(over));
        }
        let from_party = msg
            .first(crate::sip::HeaderName::From)
            .map(leg::twilio_party)
            .unwrap_or_default();
        let info = CallInfo {
            sid: new_call_sid(),
            account_sid: account,
            parent_call_sid: None,
            from: from_party,
            to: format!("client:{identity}"),
            direction: Direction::Inbound,
            status: CallStatus::Ringing,
            created_ms: unix_ms(),
            answered_ms: None,
            ended_ms: None,
            trunk: Some(super::hop::TRUNK.into()),
            sip_call_id: Some(call_id),
            sip_response_code: None,
            application_sid: None,
        };
        let app = AppSource {
            twiml: Some(format!(
                "<Response><Dial><Client>{identity}</Client></Dial></Response>"
            )),
            hop: true,
            ..AppSource::default()
        };
        self.spawn_inbound(info, acct.auth_token.clone(), app, msg, from);
        None
    }

    /// Starts the task of an inbound call whose INVITE is `msg`.
    fn spawn_inbound(
        self: &Arc<Self>,
        info: CallInfo,
        auth_token: String,
        app: AppSource,
        msg: SipMessage,
        from: Peer,
    ) {
        let Some(call_id) = info.sip_call_id.clone() else {
            return;
        };
        let (tx, rx) = mpsc::channel(CALL_INBOX);
        if !self.router.add(&call_id, tx.clone()) {
            // The same Call-ID raced in on another shard: that call has it.
            return;
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        self.registry.insert(info.clone(), Some(cmd_tx));
        let mut call = Call::new(
            self.clone(),
            CallStart {
                inbox: rx,
                inbox_tx: tx,
                commands: cmd_rx,
                info,
                auth_token,
                app,
                setup: Some(self.registry.begin_setup()),
            },
        );
        call.entered_call_id(call_id);
        tokio::spawn(async move {
            call.receive(CallInput { msg, from });
            call.run_inbound().await;
        });
    }

    /// A call placed by a registered client app: its token names the application
    /// (`grants.voice.outgoing`), which gets `From=client:<identity>`, `To` = the dialed
    /// user part, and the token's outgoing params (Twilio Client semantics, reference §2.3).
    fn client_call(
        self: &Arc<Self>,
        cfg: &Config,
        grant: &crate::registrar::token::Grant,
        msg: SipMessage,
        from: Peer,
    ) -> Option<Refusal> {
        let outgoing = grant.outgoing.as_ref()?;
        if let Some(refusal) = self.overloaded(cfg) {
            return Some(refusal);
        }
        let Some(acct) = cfg.accounts.iter().find(|a| a.sid == grant.account_sid) else {
            return refuse(403, "Unknown Account");
        };
        if let Err(over) = self.registry.limits().admit_creation(
            &acct.sid,
            Some(&grant.identity),
            &account_limits(cfg, acct),
            unix_ms(),
        ) {
            return Some(Self::over_limit(over));
        }
        let Some(app) = cfg
            .applications
            .iter()
            .find(|a| a.sid == outgoing.application_sid && a.account == grant.account_sid)
        else {
            return refuse(404, "Unknown Application");
        };
        let to = request_user(&msg);
        let info = CallInfo {
            sid: new_call_sid(),
            account_sid: grant.account_sid.clone(),
            parent_call_sid: None,
            from: format!("client:{}", grant.identity),
            to,
            direction: Direction::Inbound,
            status: CallStatus::Ringing,
            created_ms: unix_ms(),
            answered_ms: None,
            ended_ms: None,
            trunk: None,
            sip_call_id: Some(msg.call_id().ok()?.to_string()),
            sip_response_code: None,
            application_sid: Some(app.sid.clone()),
        };
        let mut source = AppSource::of_application(app);
        source.initial_params = outgoing.params.clone();
        self.spawn_inbound(info, acct.auth_token.clone(), source, msg, from);
        None
    }

    /// Starts a REST-created call.
    pub fn originate(self: &Arc<Self>, req: OriginateRequest) -> Result<CallInfo, OriginateError> {
        let (cfg, _) = self.config();
        if self.registry.live_count() >= cfg.calls.max_concurrent {
            return Err(OriginateError::Unavailable(
                "too many calls in progress".into(),
            ));
        }
        let Some(acct) = cfg.accounts.iter().find(|a| a.sid == req.account_sid) else {
            return Err(OriginateError::Invalid {
                code: 20404,
                message: "account not found".into(),
            });
        };
        self.registry
            .limits()
            .admit_creation(&acct.sid, None, &account_limits(&cfg, acct), unix_ms())
            .map_err(|over| OriginateError::Limited {
                limit: over.limit.as_str(),
                retry_after: over.retry_after,
            })?;
        refuse_private_sip_to(&cfg, &req.to)?;
        // A number no route of this account (nor a shared one) takes: refused at once, as
        // Twilio refuses a destination the account may not call (never another account's
        // trunk, the toll-fraud hole).
        if let Callee::Number(number) = Callee::parse_to(&req.to) {
            let (_, plan) = self.config();
            if plan.outbound(&req.account_sid, &number).is_none() {
                return Err(OriginateError::Invalid {
                    code: 21215,
                    message: format!(
                        "Account not authorized to call {number}: no route of this account matches it"
                    ),
                });
            }
        }
        let info = CallInfo {
            sid: new_call_sid(),
            account_sid: req.account_sid.clone(),
            parent_call_sid: None,
            from: req.from.clone(),
            to: req.to.clone(),
            direction: Direction::OutboundApi,
            status: CallStatus::Queued,
            created_ms: unix_ms(),
            answered_ms: None,
            ended_ms: None,
            trunk: None,
            sip_call_id: None,
            sip_response_code: None,
            application_sid: None,
        };
        let app = AppSource {
            application_sid: None,
            url: req.url.clone(),
            method: req.method,
            fallback_url: req.fallback_url.clone(),
            fallback_method: req.fallback_method,
            twiml: req.twiml.clone(),
            status_callback: req.status_callback.clone(),
            status_callback_method: req.status_callback_method,
            status_callback_events: req.status_callback_events.clone(),
            initial_params: Vec::new(),
            hop: false,
        };
        let (tx, rx) = mpsc::channel(CALL_INBOX);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        self.registry.insert(info.clone(), Some(cmd_tx));
        let call = Call::new(
            self.clone(),
            CallStart {
                inbox: rx,
                inbox_tx: tx,
                commands: cmd_rx,
                info: info.clone(),
                auth_token: acct.auth_token.clone(),
                app,
                setup: None,
            },
        );
        tokio::spawn(call.run_outbound(req));
        Ok(info)
    }
}

/// The `[limits]` of `acct`: its own overrides, else the defaults. `account_max_calls = 0`
/// is 80% of the RTP port pairs (every leg holds one), so one account never takes them all.
pub fn account_limits(cfg: &Config, acct: &crate::config::Account) -> AccountLimits {
    let l = &cfg.limits;
    let pairs = (usize::from(cfg.server.rtp_range.last) + 1)
        .saturating_sub(usize::from(cfg.server.rtp_range.first))
        / 2;
    let default_calls = match l.account_max_calls {
        0 => (pairs * 4 / 5).max(1),
        n => n,
    };
    AccountLimits {
        max_calls: acct.max_calls.unwrap_or(default_calls),
        calls_per_second: acct.calls_per_second.unwrap_or(l.account_calls_per_second),
        identity_max_calls: l.identity_max_calls,
        identity_calls_per_minute: l.identity_calls_per_minute,
    }
}

/// A REST `To=sip:…` whose host is an address the destination policy refuses gets the
/// 400 at once, as Twilio refuses a destination the account may not call (21215). A host
/// name is checked after it resolves, in the call (which then fails).
fn refuse_private_sip_to(cfg: &Config, to: &str) -> Result<(), OriginateError> {
    let Callee::Sip { uri, .. } = Callee::parse_to(to) else {
        return Ok(());
    };
    let Some((host, _)) = leg::uri_hostport(uri.split('?').next().unwrap_or(&uri)) else {
        return Ok(());
    };
    let Ok(ip) = host.parse::<std::net::IpAddr>() else {
        return Ok(());
    };
    destination_guard(cfg)
        .check_ip(ip)
        .map_err(|r| OriginateError::Invalid {
            code: 21215,
            message: format!("Account not authorized to call {to}: {}", r.reason),
        })
}

/// The REST API's handle for placing calls.
#[derive(Debug, Clone)]
pub struct ServiceOriginator(pub Arc<CallService>);

impl Originator for ServiceOriginator {
    fn originate(&self, req: OriginateRequest) -> Result<CallInfo, OriginateError> {
        self.0.originate(req)
    }
}
