//! Metric names and label sets in one place, counted with plain atomics and rendered in the
//! Prometheus text format 0.0.4 for `GET /metrics`.
//!
//! Every label takes its value from a fixed enum, so a hostile peer cannot grow the number
//! of series: an unknown drop class counts as `other`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sip_messages_received_total` | counter | `transport` = udp, tcp |
//! | `sip_messages_dropped_total` | counter | `class` = [`DropClass`] |
//! | `sip_register_total` | counter | `outcome` = [`RegisterOutcomeLabel`] |
//! | `sip_requests_shed_total` | counter | `reason` = [`Shed`] |
//! | `connections_refused_total` | counter | `listener` = sip, http; `reason` = [`ConnectionRefusal`] |
//! | `registrar_bindings` | gauge | (from `LocationStore::binding_count`) |
//! | `registrar_aors_available`, `_busy`, `_offline` | gauge | (from `Presence::counts`) |
//! | `calls_active` | gauge | (from `CallRegistry::live_count`: every leg counts) |
//! | `calls_setting_up` | gauge | (from `CallRegistry::setups`) |
//! | `calls_shed_total` | counter | (from `CallRegistry::shed_count`) |
//! | `calls_finished_total` | counter | `status` = final call status (from `CallRegistry`) |

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sip::peer::Transport;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a REGISTER ended, for `sip_register_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOutcomeLabel {
    /// 200 with at least one binding left.
    Ok,
    /// 200 that removed the last binding (`Expires: 0` or `*`).
    Unregistered,
    /// 401 with a challenge: no credentials were sent.
    Challenge,
    /// 401 `error="invalid_token"`, or failed Digest credentials.
    InvalidToken,
    /// 403: valid credentials, but not for this AOR or without the incoming grant, or too
    /// many contacts.
    Forbidden,
    /// 423 Interval Too Brief.
    IntervalTooBrief,
    /// 500: `RegisterError::OutOfOrder`.
    OutOfOrder,
    /// `RegisterError::TooManyContacts`.
    TooManyContacts,
    /// 400: a malformed Contact, To or Expires.
    BadRequest,
    /// 403 or no answer: the source is banned for failed credentials (`[security]`).
    Banned,
    /// 503: the shared location store could not store the binding.
    StoreUnavailable,
}

impl RegisterOutcomeLabel {
    pub const ALL: [RegisterOutcomeLabel; 11] = [
        RegisterOutcomeLabel::Ok,
        RegisterOutcomeLabel::Unregistered,
        RegisterOutcomeLabel::Challenge,
        RegisterOutcomeLabel::InvalidToken,
        RegisterOutcomeLabel::Forbidden,
        RegisterOutcomeLabel::IntervalTooBrief,
        RegisterOutcomeLabel::OutOfOrder,
        RegisterOutcomeLabel::TooManyContacts,
        RegisterOutcomeLabel::BadRequest,
        RegisterOutcomeLabel::Banned,
        RegisterOutcomeLabel::StoreUnavailable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RegisterOutcomeLabel::Ok => "ok",
            RegisterOutcomeLabel::Unregistered => "unregistered",
            RegisterOutcomeLabel::Challenge => "challenge",
            RegisterOutcomeLabel::InvalidToken => "invalid_token",
            RegisterOutcomeLabel::Forbidden => "forbidden",
            RegisterOutcomeLabel::IntervalTooBrief => "interval_too_brief",
            RegisterOutcomeLabel::OutOfOrder => "out_of_order",
            RegisterOutcomeLabel::TooManyContacts => "too_many_contacts",
            RegisterOutcomeLabel::BadRequest => "bad_request",
            RegisterOutcomeLabel::Banned => "banned",
            RegisterOutcomeLabel::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Why a received message was dropped unanswered, for `sip_messages_dropped_total{class}`:
/// the classes of `ParseError::class` and `screen::Verdict::Drop`, plus `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropClass {
    StartLine,
    HeaderSyntax,
    Unterminated,
    Framing,
    TooLarge,
    Empty,
    BadResponse,
    NoVia,
    BadAck,
    /// No answer to an unverified source fits in the size of its request.
    Amplification,
    /// The call owning the Call-ID has a full inbox.
    CallInboxFull,
    /// The source sent requests faster than `[server.limits]` allows it.
    RateLimited,
    /// The shard a message's Call-ID hashes to had a full queue.
    ShardQueueFull,
    Other,
}

impl DropClass {
    pub const ALL: [DropClass; 14] = [
        DropClass::StartLine,
        DropClass::HeaderSyntax,
        DropClass::Unterminated,
        DropClass::Framing,
        DropClass::TooLarge,
        DropClass::Empty,
        DropClass::BadResponse,
        DropClass::NoVia,
        DropClass::BadAck,
        DropClass::Amplification,
        DropClass::CallInboxFull,
        DropClass::RateLimited,
        DropClass::ShardQueueFull,
        DropClass::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DropClass::StartLine => "start_line",
            DropClass::HeaderSyntax => "header_syntax",
            DropClass::Unterminated => "unterminated",
            DropClass::Framing => "framing",
            DropClass::TooLarge => "too_large",
            DropClass::Empty => "empty",
            DropClass::BadResponse => "bad_response",
            DropClass::NoVia => "no_via",
            DropClass::BadAck => "bad_ack",
            DropClass::Amplification => "amplification",
            DropClass::CallInboxFull => "call_inbox_full",
            DropClass::RateLimited => "rate_limited",
            DropClass::ShardQueueFull => "shard_queue_full",
            DropClass::Other => "other",
        }
    }

    /// The class named `class` (a `class()` string from the SIP layer), or `Other`.
    pub fn from_class(class: &str) -> DropClass {
        DropClass::ALL
            .into_iter()
            .find(|c| c.as_str() == class)
            .unwrap_or(DropClass::Other)
    }
}

/// Why a request was answered 503 with Retry-After before any work was done on it, for
/// `sip_requests_shed_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shed {
    /// The shard holds `[server.limits] max_server_transactions` (its share) already.
    ServerTransactions,
    /// Too many REGISTERs wait on the shared location store.
    StoreBacklog,
    /// A request on a stream over its source's rate (over UDP it is dropped instead,
    /// counted as `sip_messages_dropped_total{class="rate_limited"}`).
    RateLimited,
}

impl Shed {
    pub const ALL: [Shed; 3] = [
        Shed::ServerTransactions,
        Shed::StoreBacklog,
        Shed::RateLimited,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Shed::ServerTransactions => "server_transactions",
            Shed::StoreBacklog => "store_backlog",
            Shed::RateLimited => "rate_limited",
        }
    }
}

/// Which listener turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// SIP over TCP, TLS, WS or WSS.
    Sip,
    /// The HTTP API.
    Http,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Sip, Listener::Http];

    pub const fn as_str(self) -> &'static str {
        match self {
            Listener::Sip => "sip",
            Listener::Http => "http",
        }
    }
}

/// Why a stream connection was refused, or closed before it had done its part, for
/// `connections_refused_total{listener, reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionRefusal {
    /// The listener's total cap was reached.
    Total,
    /// The cap for one source address was reached.
    PerSource,
    /// No complete message within the first-message deadline (SIP streams).
    FirstMessageDeadline,
    /// A message started but not finished within its deadline (SIP streams).
    MessageDeadline,
}

impl ConnectionRefusal {
    pub const ALL: [ConnectionRefusal; 4] = [
        ConnectionRefusal::Total,
        ConnectionRefusal::PerSource,
        ConnectionRefusal::FirstMessageDeadline,
        ConnectionRefusal::MessageDeadline,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectionRefusal::Total => "total",
            ConnectionRefusal::PerSource => "per_source",
            ConnectionRefusal::FirstMessageDeadline => "first_message_deadline",
            ConnectionRefusal::MessageDeadline => "message_deadline",
        }
    }
}

const TRANSPORTS: [Transport; 5] = Transport::ALL;

const fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
        Transport::Ws => 3,
        Transport::Wss => 4,
    }
}

const fn transport_label(t: Transport) -> &'static str {
    t.name()
}

/// Values read at render time from their owners rather than counted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gauges {
    /// `LocationStore::binding_count()`.
    pub bindings: usize,
    /// `Presence::counts()`: identities available, busy, offline.
    pub aors_available: usize,
    pub aors_busy: usize,
    pub aors_offline: usize,
    /// `CallRegistry::live_count()`.
    pub calls_active: usize,
    /// `CallRegistry::setups()`.
    pub calls_setting_up: usize,
    /// `CallRegistry::shed_count()`.
    pub calls_shed: u64,
    /// `CallRegistry::finished_counts()`, final statuses only are rendered.
    pub calls_finished: [(&'static str, u64); 5],
    /// `AuthGuard`: failed credentials and bans since start, bans in force now.
    pub auth_failures: u64,
    pub auth_bans: u64,
    pub auth_bans_active: usize,
    /// `TenantLimits::refused_counts()`: calls refused by each `[limits]` limit.
    pub calls_refused: [(&'static str, u64); 4],
}

/// The switch's counters. Share one through an `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    received: [AtomicU64; TRANSPORTS.len()],
    dropped: [AtomicU64; DropClass::ALL.len()],
    register: [AtomicU64; RegisterOutcomeLabel::ALL.len()],
    shed: [AtomicU64; Shed::ALL.len()],
    connections_refused: [[AtomicU64; ConnectionRefusal::ALL.len()]; Listener::ALL.len()],
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// One SIP message (datagram or stream frame) received.
    pub fn message_received(&self, transport: Transport) {
        self.received[transport_index(transport)].fetch_add(1, Ordering::Relaxed);
    }

    /// One message dropped unanswered; `class` as the SIP layer names it.
    pub fn message_dropped(&self, class: &str) {
        self.dropped[DropClass::from_class(class) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One REGISTER answered.
    pub fn register_outcome(&self, outcome: RegisterOutcomeLabel) {
        self.register[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One request answered 503 + Retry-After to shed load.
    pub fn request_shed(&self, why: Shed) {
        self.shed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One connection refused or closed early.
    pub fn connection_refused(&self, listener: Listener, why: ConnectionRefusal) {
        self.connections_refused[listener as usize][why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in the Prometheus text format 0.0.4 (serve as [`CONTENT_TYPE`]).
    pub fn render(&self, gauges: &Gauges) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        header(
            &mut out,
            "sip_messages_received_total",
            "counter",
            "SIP messages received, by transport.",
        );
        for t in TRANSPORTS {
            let v = load(&self.received[transport_index(t)]);
            sample(
                &mut out,
                "sip_messages_received_total",
                ("transport", transport_label(t)),
                v,
            );
        }
        header(
            &mut out,
            "sip_messages_dropped_total",
            "counter",
            "SIP messages dropped without an answer, by class.",
        );
        for c in DropClass::ALL {
            let v = load(&self.dropped[c as usize]);
            sample(
                &mut out,
                "sip_messages_dropped_total",
                ("class", c.as_str()),
                v,
            );
        }
        header(
            &mut out,
            "sip_register_total",
            "counter",
            "REGISTER requests answered, by outcome.",
        );
        for o in RegisterOutcomeLabel::ALL {
            let v = load(&self.register[o as usize]);
            sample(&mut out, "sip_register_total", ("outcome", o.as_str()), v);
        }
        let shed = "sip_requests_shed_total";
        header(
            &mut out,
            shed,
            "counter",
            "SIP requests answered 503 with Retry-After before any work, by reason.",
        );
        for r in Shed::ALL {
            sample(
                &mut out,
                shed,
                ("reason", r.as_str()),
                load(&self.shed[r as usize]),
            );
        }
        let refused = "connections_refused_total";
        header(
            &mut out,
            refused,
            "counter",
            "Stream connections refused at a cap, or closed at a deadline, by listener and reason.",
        );
        for l in Listener::ALL {
            for r in ConnectionRefusal::ALL {
                // HTTP deadlines are hyper's: only its caps are counted.
                if l == Listener::Http
                    && !matches!(r, ConnectionRefusal::Total | ConnectionRefusal::PerSource)
                {
                    continue;
                }
                let v = load(&self.connections_refused[l as usize][r as usize]);
                let (l, r) = (l.as_str(), r.as_str());
                let _ = writeln!(out, "{refused}{{listener=\"{l}\",reason=\"{r}\"}} {v}");
            }
        }
        let levels = [
            (
                "registrar_bindings",
                "Registered contacts held, including expired ones not yet swept.",
                gauges.bindings,
            ),
            (
                "registrar_aors_available",
                "Client identities registered and not in a call.",
                gauges.aors_available,
            ),
            (
                "registrar_aors_busy",
                "Client identities registered and in a call.",
                gauges.aors_busy,
            ),
            (
                "registrar_aors_offline",
                "Client identities seen before and now without a registration.",
                gauges.aors_offline,
            ),
            (
                "calls_active",
                "Calls in progress, each Dial leg counted as a call of its own.",
                gauges.calls_active,
            ),
            (
                "calls_setting_up",
                "Inbound calls between their INVITE and its final answer (shed beyond [calls] max_setups).",
                gauges.calls_setting_up,
            ),
        ];
        for (name, help, v) in levels {
            header(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
        let calls = "calls_finished_total";
        header(
            &mut out,
            calls,
            "counter",
            "Calls (and Dial legs) ended, by final status.",
        );
        for (status, v) in gauges.calls_finished {
            sample(&mut out, calls, ("status", status), v);
        }
        let shed = "calls_shed_total";
        header(
            &mut out,
            shed,
            "counter",
            "New INVITEs answered 503 because too many calls were being set up.",
        );
        let _ = writeln!(out, "{shed} {}", gauges.calls_shed);
        let refused = "calls_refused_total";
        header(
            &mut out,
            refused,
            "counter",
            "Calls refused (503 to SIP, 429 to REST) by a [limits] limit of their account or client identity.",
        );
        for (limit, v) in gauges.calls_refused {
            sample(&mut out, refused, ("limit", limit), v);
        }
        for (name, kind, help, v) in [
            (
                "auth_failures_total",
                "counter",
                "Failed credentials (wrong Digest response, bad or forged token) on REGISTER or INVITE.",
                gauges.auth_failures,
            ),
            (
                "auth_bans_total",
                "counter",
                "Source addresses banned for failed credentials ([security]).",
                gauges.auth_bans,
            ),
            (
                "auth_bans_active",
                "gauge",
                "Source addresses banned now.",
                gauges.auth_bans_active as u64,
            ),
        ] {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line. Label values come from the enums above: none needs escaping.
fn sample(out: &mut String, name: &str, (label, value): (&str, &str), v: u64) {
    let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.message_received(Transport::Udp);
        m.message_received(Transport::Udp);
        m.message_received(Transport::Tcp);
        m.request_shed(Shed::ServerTransactions);
        m.connection_refused(Listener::Http, ConnectionRefusal::PerSource);
        m.connection_refused(Listener::Sip, ConnectionRefusal::MessageDeadline);
        m.message_dropped("header_syntax");
        m.message_dropped("something we never heard of");
        m.register_outcome(RegisterOutcomeLabel::Ok);
        m.register_outcome(RegisterOutcomeLabel::OutOfOrder);
        let text = m.render(&Gauges {
            bindings: 7,
            aors_available: 3,
            aors_busy: 1,
            aors_offline: 2,
            calls_active: 4,
            calls_setting_up: 3,
            calls_shed: 11,
            calls_finished: [
                ("completed", 9),
                ("busy", 1),
                ("failed", 0),
                ("no-answer", 2),
                ("canceled", 3),
            ],
            auth_failures: 40,
            auth_bans: 2,
            auth_bans_active: 1,
            calls_refused: [
                ("account_max_calls", 1),
                ("account_calls_per_second", 2),
                ("identity_max_calls", 3),
                ("identity_calls_per_minute", 4),
            ],
        });
        for line in [
            "# HELP sip_messages_received_total SIP messages received, by transport.",
            "# TYPE sip_messages_received_total counter",
            "sip_messages_received_total{transport=\"udp\"} 2",
            "sip_messages_received_total{transport=\"tcp\"} 1",
            "sip_messages_dropped_total{class=\"header_syntax\"} 1",
            "sip_requests_shed_total{reason=\"server_transactions\"} 1",
            "sip_requests_shed_total{reason=\"store_backlog\"} 0",
            "connections_refused_total{listener=\"http\",reason=\"per_source\"} 1",
            "connections_refused_total{listener=\"http\",reason=\"total\"} 0",
            "connections_refused_total{listener=\"sip\",reason=\"message_deadline\"} 1",
            "sip_messages_dropped_total{class=\"other\"} 1",
            "sip_messages_dropped_total{class=\"framing\"} 0",
            "sip_register_total{outcome=\"ok\"} 1",
            "sip_register_total{outcome=\"out_of_order\"} 1",
            "sip_register_total{outcome=\"interval_too_brief\"} 0",
            "# TYPE registrar_bindings gauge",
            "registrar_bindings 7",
            "registrar_aors_available 3",
            "registrar_aors_busy 1",
            "registrar_aors_offline 2",
            "calls_active 4",
            "calls_setting_up 3",
            "calls_shed_total 11",
            "# TYPE calls_finished_total counter",
            "calls_finished_total{status=\"completed\"} 9",
            "calls_finished_total{status=\"no-answer\"} 2",
            "auth_failures_total 40",
            "auth_bans_total 2",
            "# TYPE auth_bans_active gauge",
            "auth_bans_active 1",
            "calls_refused_total{limit=\"identity_max_calls\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
        // Every line is a comment or `name{labels} value` / `name value`, each metric has
        // exactly one TYPE line before its samples, and no series repeats.
        let mut typed = std::collections::HashSet::new();
        let mut series = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(typed.insert(name.to_owned()), "two TYPE lines for {name}");
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect("name value");
            value.parse::<u64>().expect("integer value");
            let name = key.split('{').next().unwrap();
            assert!(typed.contains(name), "{name} sampled before its TYPE");
            assert!(series.insert(key.to_owned()), "series {key} twice");
        }
        assert_eq!(
            series.len(),
            Transport::ALL.len()
                + DropClass::ALL.len()
                + RegisterOutcomeLabel::ALL.len()
                + Shed::ALL.len()
                // SIP: every refusal reason; HTTP: its two caps.
                + ConnectionRefusal::ALL.len()
                + 2
                + 4
                + 2
                + 5
                + 1
                + 3
                + 4
        );
    }

    #[test]
    fn drop_classes_round_trip() {
        for c in DropClass::ALL {
            assert_eq!(DropClass::from_class(c.as_str()), c);
        }
        // Everything the parser can say has its own label.
        use crate::sip::msg::ParseError;
        for e in [
            ParseError::StartLine,
            ParseError::HeaderSyntax,
            ParseError::Unterminated,
            ParseError::Framing,
            ParseError::Empty,
        ] {
            assert_ne!(DropClass::from_class(e.class()), DropClass::Other, "{e:?}");
        }
    }
}
