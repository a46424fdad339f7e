//! Rules serde cannot express: id formats, ranges, "exactly one of", and cross references
//! between sections. Each problem names the path of the offending value so the caller can
//! turn it into a file position; all problems are collected so the caller can report the
//! first one in file order, which is what a person fixing the file top to bottom expects.

use std::collections::HashSet;

use super::locate::{Seg, key_path};
use super::model::{Config, StoreKind};
use super::net::{Cidr, PortRange};
use super::patterns::{
    is_e164, is_ha1, is_http_url, is_redis_url, is_route_pattern, is_sid, is_sip_uri, is_sip_user,
};

/// One broken rule, at the value it concerns.
#[derive(Debug)]
pub(crate) struct Problem {
    pub path: Vec<Seg>,
    pub why: String,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: Vec<Seg>, why: impl Into<String>) {
        self.0.push(Problem {
            path,
            why: why.into(),
        });
    }
}

/// Inclusive bounds on `server.limits.max_message_bytes`: below 1 KiB ordinary INVITEs with
/// SDP do not fit; above 1 MiB a single peer could pin a lot of memory per connection.
pub const MESSAGE_BYTES_MIN: usize = 1024;
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Upper bound on `server.workers`.
pub const MAX_WORKERS: usize = 1024;
/// Upper bound on `calls.keep_finished`: each kept record is a few hundred bytes, so this
/// caps the REST history at a few hundred MB rather than letting a typo exhaust memory.
pub const KEEP_FINISHED_MAX: usize = 1_000_000;

/// Check `cfg`, and fill its parsed `#[serde(skip)]` fields when the strings are valid.
pub(crate) fn validate(cfg: &mut Config) -> Vec<Problem> {
    let mut p = Problems::default();
    server(cfg, &mut p);
    store(cfg, &mut p);
    let accounts = accounts(cfg, &mut p);
    let apps = applications(cfg, &accounts, &mut p);
    let trunks = trunks(cfg, &accounts, &mut p);
    numbers(cfg, &apps, &trunks, &mut p);
    routes(cfg, &mut p);
    sip_users(cfg, &accounts, &mut p);
    webhooks(cfg, &mut p);
    registrar(cfg, &mut p);
    calls(cfg, &mut p);
    calls_private_nets(cfg, &mut p);
    cluster(cfg, &mut p);
    tls(cfg, &mut p);
    media(cfg, &mut p);
    security(cfg, &mut p);
    limits(cfg, &mut p);
    p.0
}

/// No CR, LF or other control characters: these strings end up in SIP headers, where a
/// newline would inject a header.
fn header_safe(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn server(cfg: &mut Config, p: &mut Problems) {
    let s = &mut cfg.server;
    if s.sip_listen.is_empty() {
        p.push(
            key_path!["server", "sip_listen"],
            "at least one SIP listen address is needed",
        );
    }
    let mut seen = HashSet::new();
    for (i, addr) in s.sip_listen.iter().enumerate() {
        if !seen.insert(*addr) {
            p.push(
                key_path!["server", "sip_listen", i],
                format!("`{addr}` is listed twice"),
            );
        }
    }
    if let Some(public) = &s.public_address
        && (public.is_empty() || public.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        p.push(
            key_path!["server", "public_address"],
            "public_address must be a host or host:port without spaces",
        );
    }
    if s.realm.is_empty()
        || s.realm
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '@')
    {
        p.push(
            key_path!["server", "realm"],
            "realm must be a non-empty host-like name (no spaces, quotes or `@`)",
        );
    }
    match PortRange::parse(&s.rtp_ports) {
        Ok(r) => s.rtp_range = r,
        Err(why) => p.push(key_path!["server", "rtp_ports"], why),
    }
    // 0 means one per core; a huge count would fail thread creation at startup instead.
    if s.challenges.is_empty() {
        p.push(
            key_path!["server", "challenges"],
            "challenges must offer at least one of \"bearer\", \"digest-sha256\", \"digest-md5\"",
        );
    }
    let mut seen_challenges = HashSet::new();
    for (i, c) in s.challenges.iter().enumerate() {
        if !seen_challenges.insert(*c) {
            p.push(
                key_path!["server", "challenges", i],
                "this challenge is listed twice",
            );
        }
    }
    if s.workers > MAX_WORKERS {
        p.push(
            key_path!["server", "workers"],
            format!(
                "workers must be 0 (one per core) to {MAX_WORKERS}, not {}",
                s.workers
            ),
        );
    }
    if !header_safe(&s.user_agent) {
        p.push(
            key_path!["server", "user_agent"],
            "user_agent must not contain control characters",
        );
    }
    let t = s.timers;
    if t.t1_ms == 0 {
        p.push(
            key_path!["server", "timers", "t1_ms"],
            "t1_ms must be greater than 0",
        );
    }
    if t.t2_ms < t.t1_ms {
        p.push(
            key_path!["server", "timers", "t2_ms"],
            format!("t2_ms ({}) must be at least t1_ms ({})", t.t2_ms, t.t1_ms),
        );
    }
    let tcp = s.tcp;
    if tcp.idle_timeout_secs == 0 {
        p.push(
            key_path!["server", "tcp", "idle_timeout_secs"],
            "idle_timeout_secs must be greater than 0",
        );
    }
    if tcp.max_connections == 0 {
        p.push(
            key_path!["server", "tcp", "max_connections"],
            "max_connections must be greater than 0",
        );
    }
    if tcp.max_connections_per_ip == 0 {
        p.push(
            key_path!["server", "tcp", "max_connections_per_ip"],
            "max_connections_per_ip must be greater than 0",
        );
    }
    let m = s.limits.max_message_bytes;
    if !(MESSAGE_BYTES_MIN..=MESSAGE_BYTES_MAX).contains(&m) {
        p.push(
            key_path!["server", "limits", "max_message_bytes"],
            format!("max_message_bytes must be {MESSAGE_BYTES_MIN}..={MESSAGE_BYTES_MAX}, not {m}"),
        );
    }
    let l = &s.limits;
    for (rate, burst, rate_key, burst_key) in [
        (
            l.requests_per_second_per_source,
            l.request_burst_per_source,
            "requests_per_second_per_source",
            "request_burst_per_source",
        ),
        (
            l.trunk_requests_per_second,
            l.trunk_request_burst,
            "trunk_requests_per_second",
            "trunk_request_burst",
        ),
    ] {
        if rate > RATE_MAX {
            p.push(
                key_path!["server", "limits", rate_key],
                format!("{rate_key} must be 0 (no limit) ..= {RATE_MAX}, not {rate}"),
            );
        }
        if rate > 0 && !(1..=BURST_MAX).contains(&burst) {
            p.push(
                key_path!["server", "limits", burst_key],
                format!("{burst_key} must be 1..={BURST_MAX} when {rate_key} is set, not {burst}"),
            );
        }
    }
    if l.max_server_transactions < 1024 {
        p.push(
            key_path!["server", "limits", "max_server_transactions"],
            format!(
                "max_server_transactions must be at least 1024, not {}",
                l.max_server_transactions
            ),
        );
    }
}

/// Largest per-source request rate and burst: the bucket packs thousandths of a token in
/// 32 bits (`sip::rate_limit`).
const RATE_MAX: u32 = 1_000_000;
const BURST_MAX: u32 = 1_000_000;

fn store(cfg: &Config, p: &mut Problems) {
    match (&cfg.store.kind, &cfg.store.url) {
        (StoreKind::Redis, None) => {
            p.push(
                key_path!["store", "kind"],
                "kind = \"redis\" needs `url` (e.g. url = \"redis://127.0.0.1:6379\")",
            );
        }
        (StoreKind::Redis, Some(url)) if !is_redis_url(url) => {
            p.push(
                key_path!["store", "url"],
                format!("`{url}` is not a redis:// or rediss:// URL"),
            );
        }
        _ => {}
    }
}

/// Returns the set of account sids, for cross references.
fn accounts(cfg: &Config, p: &mut Problems) -> HashSet<String> {
    let mut sids = HashSet::new();
    let mut key_sids = HashSet::new();
    for (i, a) in cfg.accounts.iter().enumerate() {
        if !is_sid("AC", &a.sid) {
            p.push(
                key_path!["accounts", i, "sid"],
                format!(
                    "account sid `{}` must be AC followed by 32 lowercase hex digits",
                    a.sid
                ),
            );
        } else if !sids.insert(a.sid.clone()) {
            p.push(
                key_path!["accounts", i, "sid"],
                format!("account `{}` is defined twice", a.sid),
            );
        }
        if a.auth_token.is_empty() {
            p.push(
                key_path!["accounts", i, "auth_token"],
                "auth_token must not be empty",
            );
        }
        if let Some(url) = &a.presence_callback
            && !is_http_url(url)
        {
            p.push(
                key_path!["accounts", i, "presence_callback"],
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        for (j, k) in a.api_keys.iter().enumerate() {
            if !is_sid("SK", &k.sid) {
                p.push(
                    key_path!["accounts", i, "api_keys", j, "sid"],
                    format!(
                        "API key sid `{}` must be SK followed by 32 lowercase hex digits",
                        k.sid
                    ),
                );
            } else if !key_sids.insert(k.sid.clone()) {
                // Tokens name their key in `iss`; a key under two accounts would be ambiguous.
                p.push(
                    key_path!["accounts", i, "api_keys", j, "sid"],
                    format!("API key `{}` is defined twice", k.sid),
                );
            }
            if k.secret.is_empty() {
                p.push(
                    key_path!["accounts", i, "api_keys", j, "secret"],
                    "secret must not be empty",
                );
            }
        }
        for (j, iss) in a.issuers.iter().enumerate() {
            let at = |field: &'static str| key_path!["accounts", i, "issuers", j, field];
            if iss.iss.is_empty() {
                p.push(at("iss"), "iss must not be empty");
            }
            if iss.algorithms.is_empty() {
                p.push(
                    at("algorithms"),
                    "list at least one algorithm (\"ES256\", \"EdDSA\" or \"RS256\")",
                );
            }
            match (&iss.public_key_pem, &iss.jwks_file) {
                (Some(_), Some(_)) => {
                    p.push(
                        at("jwks_file"),
                        "give either public_key_pem or jwks_file, not both",
                    );
                }
                (None, None) => {
                    p.push(
                        key_path!["accounts", i, "issuers", j],
                        "an issuer needs public_key_pem or jwks_file",
                    );
                }
                (Some(pem), None) if !pem.contains("-----BEGIN ") => {
                    p.push(
                        at("public_key_pem"),
                        "public_key_pem must be a PEM block (-----BEGIN PUBLIC KEY-----…)",
                    );
                }
                (None, Some(file)) if file.as_os_str().is_empty() => {
                    p.push(at("jwks_file"), "jwks_file must not be empty");
                }
                _ => {}
            }
        }
    }
    sids
}

fn check_account(accounts: &HashSet<String>, sid: &str, at: Vec<Seg>, p: &mut Problems) {
    if !accounts.contains(sid) {
        p.push(
            at,
            format!("no account `{sid}` is configured in [[accounts]]"),
        );
    }
}

/// Returns the set of application sids.
fn applications(cfg: &Config, accounts: &HashSet<String>, p: &mut Problems) -> HashSet<String> {
    let mut sids = HashSet::new();
    for (i, a) in cfg.applications.iter().enumerate() {
        let at = |field: &'static str| key_path!["applications", i, field];
        if !is_sid("AP", &a.sid) {
            p.push(
                at("sid"),
                format!(
                    "application sid `{}` must be AP followed by 32 lowercase hex digits",
                    a.sid
                ),
            );
        } else if !sids.insert(a.sid.clone()) {
            p.push(
                at("sid"),
                format!("application `{}` is defined twice", a.sid),
            );
        }
        check_account(accounts, &a.account, at("account"), p);
        match (&a.voice_url, &a.twiml) {
            (Some(_), Some(_)) => p.push(at("twiml"), "give either voice_url or twiml, not both"),
            (None, None) => p.push(
                key_path!["applications", i],
                "an application needs voice_url or twiml",
            ),
            (_, Some(x)) if x.trim().is_empty() => p.push(at("twiml"), "twiml must not be empty"),
            _ => {}
        }
        for (field, url) in [
            ("voice_url", &a.voice_url),
            ("voice_fallback_url", &a.voice_fallback_url),
            ("status_callback", &a.status_callback),
        ] {
            if let Some(url) = url
                && !is_http_url(url)
            {
                p.push(
                    at(field),
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
    }
    sids
}

/// Returns the set of trunk names.
fn trunks(cfg: &mut Config, accounts: &HashSet<String>, p: &mut Problems) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, t) in cfg.trunks.iter_mut().enumerate() {
        let at = |field: &'static str| key_path!["trunks", i, field];
        if t.name.is_empty() {
            p.push(at("name"), "trunk name must not be empty");
        } else if !names.insert(t.name.clone()) {
            p.push(at("name"), format!("trunk `{}` is defined twice", t.name));
        }
        check_account(accounts, &t.account, at("account"), p);
        t.inbound_nets.clear();
        for (j, c) in t.inbound_cidrs.iter().enumerate() {
            match Cidr::parse(c) {
                Ok(net) => t.inbound_nets.push(net),
                Err(why) => p.push(key_path!["trunks", i, "inbound_cidrs", j], why),
            }
        }
        if let Some(uri) = &t.outbound_uri
            && !is_sip_uri(uri)
        {
            p.push(
                at("outbound_uri"),
                format!("`{uri}` must be a sip: or sips: URI"),
            );
        }
        match (&t.username, &t.password) {
            (Some(_), None) => p.push(at("username"), "username needs a password"),
            (None, Some(_)) => p.push(at("password"), "password needs a username"),
            _ => {}
        }
        if t.realm.is_some() && t.username.is_none() {
            p.push(
                at("realm"),
                "realm only makes sense with username and password",
            );
        }
    }
    names
}

fn numbers(cfg: &Config, apps: &HashSet<String>, trunks: &HashSet<String>, p: &mut Problems) {
    let mut seen = HashSet::new();
    for (i, n) in cfg.numbers.iter().enumerate() {
        let at = |field: &'static str| key_path!["numbers", i, field];
        if !is_e164(&n.number) {
            p.push(
                at("number"),
                format!(
                    "`{}` is not an E.164 number (+ then 2 to 15 digits, no leading 0)",
                    n.number
                ),
            );
        } else if !seen.insert(n.number.as_str()) {
            p.push(
                at("number"),
                format!("number `{}` is listed twice", n.number),
            );
        }
        if !apps.contains(&n.application) {
            p.push(
                at("application"),
                format!(
                    "no application `{}` is configured in [[applications]]",
                    n.application
                ),
            );
        }
        if let Some(trunk) = &n.trunk
            && !trunks.contains(trunk)
        {
            p.push(
                at("trunk"),
                format!("no trunk `{trunk}` is configured in [[trunks]]"),
            );
        }
    }
}

fn routes(cfg: &Config, p: &mut Problems) {
    for (i, r) in cfg.routes.iter().enumerate() {
        let at = |field: &'static str| key_path!["routes", i, field];
        if !is_route_pattern(&r.pattern) {
            p.push(at("pattern"), format!("`{}` is not a route pattern (`*`, or a prefix like `+1` of digits after an optional +)", r.pattern));
        }
        match cfg.trunks.iter().find(|t| t.name == r.trunk) {
            None => p.push(
                at("trunk"),
                format!("no trunk `{}` is configured in [[trunks]]", r.trunk),
            ),
            Some(t) if t.outbound_uri.is_none() => {
                p.push(
                    at("trunk"),
                    format!(
                        "trunk `{}` has no outbound_uri, so calls cannot be routed to it",
                        r.trunk
                    ),
                );
            }
            Some(t) => {
                if let Some(account) = &r.account
                    && *account != t.account
                {
                    p.push(
                        at("account"),
                        format!(
                            "route of account {account} names trunk `{}` of account {}: an account may dial out only through its own trunks",
                            r.trunk, t.account
                        ),
                    );
                }
            }
        }
    }
}

fn sip_users(cfg: &Config, accounts: &HashSet<String>, p: &mut Problems) {
    let mut seen = HashSet::new();
    for (i, u) in cfg.sip_users.iter().enumerate() {
        let at = |field: &'static str| key_path!["sip_users", i, field];
        if !is_sip_user(&u.username) {
            p.push(
                at("username"),
                format!(
                    "username `{}` must be letters, digits and - _ . ! ~ * ' ( ) +",
                    u.username
                ),
            );
        } else if !seen.insert(u.username.as_str()) {
            // One realm, so a username must be unique or Digest cannot tell users apart.
            p.push(
                at("username"),
                format!("SIP user `{}` is defined twice", u.username),
            );
        }
        match (&u.password, &u.ha1) {
            (Some(_), Some(_)) => p.push(at("ha1"), "give either password or ha1, not both"),
            (None, None) => p.push(
                key_path!["sip_users", i],
                "a SIP user needs password or ha1",
            ),
            (Some(pw), None) if pw.is_empty() => {
                p.push(at("password"), "password must not be empty")
            }
            (None, Some(h)) if !is_ha1(h) => {
                p.push(
                    at("ha1"),
                    "ha1 must be 32 lowercase hex digits (MD5 of username:realm:password)",
                );
            }
            _ => {}
        }
        if !is_sip_user(&u.identity) {
            p.push(
                at("identity"),
                format!(
                    "identity `{}` must be letters, digits and - _ . ! ~ * ' ( ) +",
                    u.identity
                ),
            );
        }
        check_account(accounts, &u.account, at("account"), p);
    }
}

fn registrar(cfg: &mut Config, p: &mut Problems) {
    let r = &cfg.registrar;
    if r.min_expires == 0 {
        p.push(
            key_path!["registrar", "min_expires"],
            "min_expires must be at least 1",
        );
    }
    if r.max_expires < r.min_expires {
        p.push(
            key_path!["registrar", "max_expires"],
            format!(
                "max_expires ({}) is below min_expires ({})",
                r.max_expires, r.min_expires
            ),
        );
    }
    if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
        p.push(
            key_path!["registrar", "default_expires"],
            format!(
                "default_expires must lie between min_expires ({}) and max_expires ({})",
                r.min_expires, r.max_expires
            ),
        );
    }
    if r.max_token_lifetime_secs == 0 {
        p.push(
            key_path!["registrar", "max_token_lifetime_secs"],
            "max_token_lifetime_secs must be at least 1",
        );
    }
    if r.max_contacts == 0 {
        p.push(
            key_path!["registrar", "max_contacts"],
            "max_contacts must be at least 1",
        );
    }
}

fn webhooks(cfg: &mut Config, p: &mut Problems) {
    let w = &mut cfg.webhooks;
    if w.connect_timeout_ms == 0 {
        p.push(
            key_path!["webhooks", "connect_timeout_ms"],
            "connect_timeout_ms must be greater than 0",
        );
    }
    if w.timeout_ms == 0 {
        p.push(
            key_path!["webhooks", "timeout_ms"],
            "timeout_ms must be greater than 0",
        );
    }
    if w.max_body_bytes == 0 {
        p.push(
            key_path!["webhooks", "max_body_bytes"],
            "max_body_bytes must be greater than 0",
        );
    }
    w.private_nets.clear();
    for (j, c) in w.allow_private_networks.iter().enumerate() {
        match Cidr::parse(c) {
            Ok(net) => w.private_nets.push(net),
            Err(why) => p.push(key_path!["webhooks", "allow_private_networks", j], why),
        }
    }
}

/// Relay threads beyond this gain nothing on any machine we run on (and endpoint ids keep
/// the thread in 8 bits).
const MEDIA_THREADS_MAX: usize = 64;
/// A day: a media timeout longer than this is a typo, and no call would ever be ended.
const MEDIA_TIMEOUT_MAX: u64 = 86_400;

fn media(cfg: &Config, p: &mut Problems) {
    let m = &cfg.media;
    if m.threads > MEDIA_THREADS_MAX {
        p.push(
            key_path!["media", "threads"],
            format!(
                "threads must be 0 (one per core) to {MEDIA_THREADS_MAX}, not {}",
                m.threads
            ),
        );
    }
    if m.timeout_secs == 0 || m.timeout_secs > MEDIA_TIMEOUT_MAX {
        p.push(
            key_path!["media", "timeout_secs"],
            format!(
                "timeout_secs must be 1 to {MEDIA_TIMEOUT_MAX}, not {}",
                m.timeout_secs
            ),
        );
    }
    for (key, dir) in [
        ("recordings_dir", &m.recordings_dir),
        ("sounds_dir", &m.sounds_dir),
    ] {
        if dir.as_os_str().is_empty() {
            p.push(key_path!["media", key], format!("{key} must not be empty"));
        }
    }
    if m.max_play_bytes == 0 {
        p.push(
            key_path!["media", "max_play_bytes"],
            "max_play_bytes must be greater than 0",
        );
    }
}

fn calls_private_nets(cfg: &mut Config, p: &mut Problems) {
    let c = &mut cfg.calls;
    c.private_nets.clear();
    for (j, net) in c.allow_private_networks.iter().enumerate() {
        match Cidr::parse(net) {
            Ok(net) => c.private_nets.push(net),
            Err(why) => p.push(key_path!["calls", "allow_private_networks", j], why),
        }
    }
}

fn calls(cfg: &Config, p: &mut Problems) {
    let c = &cfg.calls;
    if let Some(file) = &c.cdr_file {
        if file.as_os_str().is_empty() {
            p.push(
                key_path!["calls", "cdr_file"],
                "cdr_file must not be empty (leave it out for no CDRs)",
            );
        } else if file.to_string_lossy().ends_with('/') {
            // The file system is not consulted here (`check` may run on another machine);
            // a missing directory is reported when the switch opens the file at start.
            p.push(
                key_path!["calls", "cdr_file"],
                format!(
                    "cdr_file `{}` names a directory, not a file",
                    file.display()
                ),
            );
        }
    }
    if c.keep_finished > KEEP_FINISHED_MAX {
        p.push(
            key_path!["calls", "keep_finished"],
            format!(
                "keep_finished must be 0 to {KEEP_FINISHED_MAX}, not {}",
                c.keep_finished
            ),
        );
    }
    if c.max_concurrent == 0 {
        p.push(
            key_path!["calls", "max_concurrent"],
            "max_concurrent must be at least 1 (0 would refuse every call)",
        );
    }
    if c.max_setups == 0 {
        p.push(
            key_path!["calls", "max_setups"],
            "max_setups must be at least 1 (0 would refuse every call)",
        );
    }
}

/// A ban or window longer than a day is a typo; 0 would make the window or ban useless.
const SECURITY_SECS_MAX: u64 = 86_400;

fn limits(cfg: &Config, p: &mut Problems) {
    if cfg.limits.identity_max_calls == 0 {
        p.push(
            key_path!["limits", "identity_max_calls"],
            "identity_max_calls must be at least 1 (client apps could place no call)",
        );
    }
    for (i, a) in cfg.accounts.iter().enumerate() {
        if a.max_calls == Some(0) {
            p.push(
                key_path!["accounts", i, "max_calls"],
                "max_calls must be at least 1 (leave it out for the [limits] default)",
            );
        }
    }
}

fn security(cfg: &Config, p: &mut Problems) {
    let s = &cfg.security;
    for (name, v) in [
        ("auth_fail_window_secs", s.auth_fail_window_secs),
        ("ban_secs", s.ban_secs),
    ] {
        if v == 0 || v > SECURITY_SECS_MAX {
            p.push(
                key_path!["security", name],
                format!("{name} must be 1 to {SECURITY_SECS_MAX}, not {v}"),
            );
        }
    }
}

fn cluster(cfg: &mut Config, p: &mut Problems) {
    let c = &mut cfg.cluster;
    c.peer_nets.clear();
    for (j, net) in c.peers_cidrs.iter().enumerate() {
        match Cidr::parse(net) {
            Ok(net) => c.peer_nets.push(net),
            Err(why) => p.push(key_path!["cluster", "peers_cidrs", j], why),
        }
    }
    if c.node_id.is_empty()
        || !c
            .node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        p.push(
            key_path!["cluster", "node_id"],
            format!(
                "node_id `{}` must be letters, digits, `-`, `_` or `.`",
                c.node_id
            ),
        );
    }
    if let Some(a) = &c.advertise
        && a.rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        p.push(
            key_path!["cluster", "advertise"],
            format!("advertise `{a}` must be host:port"),
        );
    }
    if c.secret.as_deref().is_some_and(|s| s.len() < 16) {
        p.push(
            key_path!["cluster", "secret"],
            "secret must be at least 16 characters",
        );
    }
    // (Said once the store itself is right: a missing or bad url comes first.)
    let shared =
        cfg.store.kind == StoreKind::Redis && cfg.store.url.as_deref().is_some_and(is_redis_url);
    if shared && c.peers_cidrs.is_empty() && c.secret.is_none() {
        p.push(
            key_path!["store", "kind"],
            "a redis store shares clients between nodes: set peers_cidrs or secret so nodes accept each other's calls",
        );
    }
    let prefix = &cfg.store.key_prefix;
    if prefix.is_empty() || prefix.contains(['{', '}', ' ']) {
        p.push(
            key_path!["store", "key_prefix"],
            format!("key_prefix `{prefix}` must be non-empty, without braces or spaces"),
        );
    }
}

fn tls(cfg: &Config, p: &mut Problems) {
    let s = &cfg.server;
    let secure = !s.sip_tls_listen.is_empty() || !s.wss_listen.is_empty();
    if secure && (s.tls_cert.is_none() || s.tls_key.is_none()) {
        let at = if s.sip_tls_listen.is_empty() {
            key_path!["server", "wss_listen"]
        } else {
            key_path!["server", "sip_tls_listen"]
        };
        p.push(
            at,
            "TLS listeners need tls_cert and tls_key (PEM files; `switchboard cert` writes a development pair)",
        );
    }
    if s.tls_cert.is_some() != s.tls_key.is_some() {
        p.push(
            key_path![
                "server",
                if s.tls_cert.is_some() {
                    "tls_cert"
                } else {
                    "tls_key"
                }
            ],
            "tls_cert and tls_key go together",
        );
    }
    for (i, o) in s.ws_origins.iter().enumerate() {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && !o.ends_with('/')
            && !o[o.find("//").map_or(0, |i| i + 2)..].contains('/');
        if !ok {
            p.push(
                key_path!["server", "ws_origins", i],
                format!("origin `{o}` must be scheme://host[:port], as browsers send it (no path, no trailing /)"),
            );
        }
    }
}
