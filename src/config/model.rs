//! The shape of `switchboard.toml`. Every table denies unknown fields so a misspelled key is
//! an error with a position, never a silently ignored setting. Every field has a default
//! where a sensible one exists, so a minimal (even empty) file gives a working loopback
//! switch.
//!
//! Values that need parsing (CIDR blocks, the port range) are kept as the strings written
//! in the file, because validation then reports a bad array element at its own position;
//! the parsed forms sit next to them in `#[serde(skip)]` fields that `config::parse` fills
//! after validation, so consumers never parse twice.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::net::{Cidr, PortRange};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub accounts: Vec<Account>,
    pub applications: Vec<Application>,
    pub trunks: Vec<Trunk>,
    pub numbers: Vec<Number>,
    pub routes: Vec<Route>,
    pub sip_users: Vec<SipUser>,
    pub webhooks: WebhooksConfig,
    pub registrar: RegistrarConfig,
    pub calls: CallsConfig,
    pub media: MediaConfig,
    pub security: SecurityConfig,
    pub limits: TenantLimitsConfig,
    pub cluster: ClusterConfig,
}

/// `[server]`: where the switch listens and how it presents itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// SIP addresses; UDP and TCP both bind each one.
    pub sip_listen: Vec<SocketAddr>,
    /// SIP over TLS (RFC 3261 §26, RFC 5630), `sips:` URIs; needs `tls_cert`/`tls_key`.
    pub sip_tls_listen: Vec<SocketAddr>,
    /// SIP over WebSocket (RFC 7118), subprotocol `sip`.
    pub ws_listen: Vec<SocketAddr>,
    /// SIP over secure WebSocket (browsers); needs `tls_cert`/`tls_key`.
    pub wss_listen: Vec<SocketAddr>,
    /// PEM certificate chain and private key for TLS and WSS; read at start and on SIGHUP.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// Origins a WebSocket upgrade may come from (`https://app.example.com`); empty: any.
    /// Another Origin gets 403 (a page elsewhere cannot use a visitor's browser on us).
    pub ws_origins: Vec<String>,
    /// REST API, `/health`, `/metrics`.
    pub http_listen: SocketAddr,
    /// Host (or host:port) advertised in Via, Contact and SDP when the switch sits behind
    /// NAT or listens on a wildcard address; `None` means the bound address.
    pub public_address: Option<String>,
    /// Digest/Bearer realm and the host part of client AORs (`sip:<identity>@<realm>`).
    pub realm: String,
    /// RTP port range as written, `EVEN-ODD`.
    pub rtp_ports: String,
    /// `rtp_ports`, parsed.
    #[serde(skip)]
    pub rtp_range: PortRange,
    /// Runtime worker threads; 0 means one per core.
    pub workers: usize,
    /// `User-Agent` / `Server` header value.
    pub user_agent: String,
    pub timers: TimersConfig,
    pub tcp: TcpConfig,
    pub limits: LimitsConfig,
    /// What a 401 to a REGISTER without credentials offers, in this order. The default is
    /// Bearer (RFC 8898), then Digest SHA-256 and MD5 (RFC 8760 order); Digest is only
    /// offered where the config has SIP users. Some clients abort on any challenge they
    /// cannot parse (libre-based ones such as baresip: a Bearer or SHA-256 challenge), so
    /// a deployment of those lists only what they understand.
    pub challenges: Vec<ChallengeScheme>,
}

/// One `WWW-Authenticate` challenge kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ChallengeScheme {
    /// `Bearer realm="…"` (RFC 8898).
    #[serde(rename = "bearer")]
    Bearer,
    /// `Digest … algorithm=SHA-256` (RFC 8760).
    #[serde(rename = "digest-sha256")]
    DigestSha256,
    /// `Digest … algorithm=MD5` (RFC 3261).
    #[serde(rename = "digest-md5")]
    DigestMd5,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            sip_listen: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            sip_tls_listen: Vec::new(),
            ws_listen: Vec::new(),
            wss_listen: Vec::new(),
            tls_cert: None,
            tls_key: None,
            ws_origins: Vec::new(),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_address: None,
            realm: "switchboard.local".to_owned(),
            rtp_ports: PortRange::default().to_string(),
            rtp_range: PortRange::default(),
            workers: 0,
            user_agent: concat!("Switchboard/", env!("CARGO_PKG_VERSION")).to_owned(),
            timers: TimersConfig::default(),
            tcp: TcpConfig::default(),
            limits: LimitsConfig::default(),
            challenges: vec![
                ChallengeScheme::Bearer,
                ChallengeScheme::DigestSha256,
                ChallengeScheme::DigestMd5,
            ],
        }
    }
}

/// `[server.timers]`: RFC 3261 §17 timer base values, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimersConfig {
    /// RTT estimate; retransmit intervals start here.
    pub t1_ms: u64,
    /// Cap on the retransmit interval for non-INVITE requests and INVITE responses.
    pub t2_ms: u64,
    /// How long a message may linger in the network.
    pub t4_ms: u64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

/// `[server.tcp]`: connection limits for SIP over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    /// Close a connection with no traffic for this long.
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            // Above the longest registration (3600 s), as Kamailio deployments set
            // tcp_connection_lifetime = 3605: closing the flow of a live binding strands it.
            idle_timeout_secs: 3605,
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

/// `[server.limits]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest SIP message accepted (UDP datagram or TCP frame), in bytes.
    pub max_message_bytes: usize,
    /// SIP requests a second one source address may send, sustained; beyond it they are
    /// dropped (UDP) or answered 503 (streams) before any work. 0: no limit.
    pub requests_per_second_per_source: u32,
    /// Requests one source may send at once above that rate.
    pub request_burst_per_source: u32,
    /// The same for each address inside a trunk's `inbound_cidrs`.
    pub trunk_requests_per_second: u32,
    pub trunk_request_burst: u32,
    /// Server transactions held at once (each keeps its last response for up to 32 s
    /// over UDP); beyond it new requests get 503 with Retry-After.
    pub max_server_transactions: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 65535,
            requests_per_second_per_source: 400,
            request_burst_per_source: 800,
            trunk_requests_per_second: 5000,
            trunk_request_burst: 10000,
            max_server_transactions: 1_000_000,
        }
    }
}

/// `[store]`: where registrations and presence live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Required for `redis`, e.g. `redis://127.0.0.1:6379`.
    pub url: Option<String>,
    /// Put before every key (and the pub/sub channel), so switches of different clusters
    /// can share one Redis. Default `sb`.
    pub key_prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Memory,
            url: None,
            key_prefix: "sb".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In-process; one switch only, lost on restart.
    #[default]
    Memory,
    /// Shared by several switches.
    Redis,
}

/// `[[accounts]]`: a tenant, Twilio-style.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// `AC` + 32 lowercase hex.
    pub sid: String,
    /// REST Basic-auth password and webhook signing key.
    pub auth_token: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Called when a client's presence changes.
    #[serde(default)]
    pub presence_callback: Option<String>,
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    #[serde(default)]
    pub issuers: Vec<Issuer>,
    /// This account's own `[limits]` (`account_max_calls`, `account_calls_per_second`),
    /// when they differ from the defaults.
    #[serde(default)]
    pub max_calls: Option<usize>,
    #[serde(default)]
    pub calls_per_second: Option<u32>,
}

/// `[[accounts.api_keys]]`: signs HS256 access tokens (`iss` = the key's sid).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// `SK` + 32 lowercase hex.
    pub sid: String,
    pub secret: String,
}

/// `[[accounts.issuers]]`: a third-party token issuer, verified with a public key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// Expected `iss` claim.
    pub iss: String,
    /// Accepted algorithms; taken from here, never from the token header.
    pub algorithms: Vec<Algorithm>,
    /// Exactly one of `public_key_pem` and `jwks_file`.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Path of a JWKS document; relative paths are relative to the working directory.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
    #[serde(rename = "RS256")]
    Rs256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    #[default]
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Rs256 => "RS256",
        }
    }
}

/// `[[applications]]`: what a call does, as a webhook URL or inline instructions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// `AP` + 32 lowercase hex.
    pub sid: String,
    /// Sid of the owning account.
    pub account: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Exactly one of `voice_url` and `twiml`.
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_method: HttpMethod,
    #[serde(default)]
    pub voice_fallback_url: Option<String>,
    #[serde(default)]
    pub voice_fallback_method: HttpMethod,
    #[serde(default)]
    pub status_callback: Option<String>,
    #[serde(default)]
    pub status_callback_method: HttpMethod,
    /// Inline XML instructions, for an application that needs no web server.
    #[serde(default)]
    pub twiml: Option<String>,
}

/// `[[trunks]]`: a carrier connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Unique; routes and numbers refer to it.
    pub name: String,
    /// Sid of the account billed for / owning the trunk.
    pub account: String,
    /// Source networks whose INVITEs are accepted as coming from this trunk.
    #[serde(default)]
    pub inbound_cidrs: Vec<String>,
    /// `inbound_cidrs`, parsed.
    #[serde(skip)]
    pub inbound_nets: Vec<Cidr>,
    /// Where outbound calls go (`sip:` or `sips:`); required for a trunk that routes use.
    #[serde(default)]
    pub outbound_uri: Option<String>,
    /// Digest credentials for the carrier's challenges.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub realm: Option<String>,
}

/// `[[numbers]]`: an inbound number and the application that answers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Number {
    /// E.164, with `+`.
    pub number: String,
    /// Application sid.
    pub application: String,
    /// Only accept calls to this number from this trunk.
    #[serde(default)]
    pub trunk: Option<String>,
}

/// `[[routes]]`: outbound number prefix → trunk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `*` or a prefix such as `+`, `+1`, `+4420`.
    pub pattern: String,
    /// Trunk name. Its account owns the route: only that account's calls may take it
    /// (unless `shared`), and its credentials answer only that trunk's challenges.
    pub trunk: String,
    /// The account the route belongs to. Optional, since it is always the trunk's
    /// account; when written, `check` insists on that, so a route of account A can never
    /// name account B's trunk (toll fraud through B's carrier and credentials).
    #[serde(default)]
    pub account: Option<String>,
    /// Every account may dial through this route (an operator's wholesale trunk; the
    /// calls are carried, and billed, on the trunk owner's trunk). Off by default: an
    /// account's outbound calls use only its own routes.
    #[serde(default)]
    pub shared: bool,
    /// Orders routes with the same pattern (lower first); unset sorts last.
    #[serde(default)]
    pub priority: Option<u32>,
}

/// `[[sip_users]]`: Digest credentials that map a classic softphone to a client identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipUser {
    pub username: String,
    /// Exactly one of `password` and `ha1` (MD5 of `username:realm:password`, lowercase hex).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ha1: Option<String>,
    /// The client identity the registration stands for (`client:<identity>`).
    pub identity: String,
    /// Account sid.
    pub account: String,
}

/// `[registrar]`: how long registrations last and how many an address of record may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    /// Shortest non-zero expiry accepted; shorter requests get 423 with Min-Expires.
    pub min_expires: u32,
    /// Longest expiry granted; longer requests are shortened to it.
    pub max_expires: u32,
    /// Expiry used when a REGISTER names none.
    pub default_expires: u32,
    /// Most contacts one client identity may have registered at once.
    pub max_contacts: usize,
    /// Longest a bearer token may live: `exp` no further than this past `iat` (when the
    /// token has one) nor past now. Twilio's own limit is 24 h; a token valid for years is
    /// a credential nobody can revoke.
    pub max_token_lifetime_secs: u64,
}

/// `[registrar] max_token_lifetime_secs` when the file sets none: Twilio's 24 hours.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;

/// `[registrar] max_contacts` when the file sets none (Twilio allows 10 per identity).
pub const DEFAULT_MAX_CONTACTS: usize = 10;

impl Default for RegistrarConfig {
    fn default() -> Self {
        // Twilio: registrations last 600–3600 s and at most 10 per AOR. We accept down to
        // 60 s so clients behind NAT can refresh often.
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: DEFAULT_MAX_CONTACTS,
            max_token_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
        }
    }
}

/// `[webhooks]`: how call-instruction and callback fetches behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub connect_timeout_ms: u64,
    /// Whole request, connect included.
    pub timeout_ms: u64,
    /// Largest response body read.
    pub max_body_bytes: usize,
    pub max_redirects: u32,
    /// Private/loopback networks webhooks may reach; all others are refused (SSRF guard).
    pub allow_private_networks: Vec<String>,
    /// `allow_private_networks`, parsed.
    #[serde(skip)]
    pub private_nets: Vec<Cidr>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            connect_timeout_ms: 10_000,
            timeout_ms: 15_000,
            max_body_bytes: 65_536,
            max_redirects: 3,
            allow_private_networks: Vec::new(),
            private_nets: Vec::new(),
        }
    }
}

/// `[calls]`: how many calls the switch carries and what it remembers of them.
///
/// Read once at start: the registry and the CDR file are set up before the first call,
/// so a reload does not change them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Call detail records, one JSON line per finished call, appended; `None` = no CDRs.
    /// Relative paths are relative to the working directory.
    pub cdr_file: Option<PathBuf>,
    /// Finished calls the REST API still answers for (`GET Calls/{Sid}.json`), newest
    /// kept; older ones are only in the CDR file.
    pub keep_finished: usize,
    /// Live calls (every leg counts) beyond which new ones are refused: a new INVITE gets
    /// 503, a REST `POST Calls.json` gets 503.
    pub max_concurrent: usize,
    /// Calls being set up at once (INVITE received, not yet answered or refused: the
    /// webhook fetch, the dialled legs ringing) beyond which a new INVITE gets 503 with
    /// Retry-After before any webhook or relay work. This is the switch's own backlog:
    /// when it is saturated setups take longer and pile up here, and the excess is shed
    /// early instead of every call slowing until retransmissions collapse the goodput.
    pub max_setups: usize,
    /// Private/loopback networks the switch may place SIP calls to (REST `To=sip:…`,
    /// `<Dial><Sip>`, a client contact that is not where the client registered from); all
    /// others are refused like a webhook URL (same ranges). Trunks' `outbound_uri`s are
    /// the operator's own choice and exempt.
    pub allow_private_networks: Vec<String>,
    /// `allow_private_networks`, parsed.
    #[serde(skip)]
    pub private_nets: Vec<Cidr>,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            cdr_file: None,
            keep_finished: 10_000,
            max_concurrent: 10_000,
            max_setups: 250,
            allow_private_networks: Vec::new(),
            private_nets: Vec::new(),
        }
    }
}

/// `[media]`: the media plane (relay, player, recorder).
///
/// Read once at start, like `[calls]`: the relay threads and the recordings directory are
/// set up before the first call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Relay threads; 0 means one per core.
    pub threads: usize,
    /// A call whose relay has received no RTP on any leg for this long is ended.
    pub timeout_secs: u64,
    /// Where `Record` writes its WAV files (created if missing). Relative paths are
    /// relative to the working directory.
    pub recordings_dir: PathBuf,
    /// Where `Play` reads audio named by a relative path (inline TwiML has no base URL).
    pub sounds_dir: PathBuf,
    /// Largest audio file `Play` fetches or reads, in bytes.
    pub max_play_bytes: usize,
    /// Decoded prompts kept in memory for reuse, in bytes of 8 kHz PCM.
    pub play_cache_bytes: usize,
    /// Most bytes the recordings may take (stored, plus the most the ones being written
    /// can still write); a `Record` that would pass it is skipped. 0 = no cap.
    pub recordings_max_bytes: u64,
    /// Least free space a `Record` must leave on the recordings' filesystem, counting the
    /// most it can write; 0 = no floor.
    pub recordings_min_free_bytes: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            threads: 0,
            timeout_secs: 60,
            recordings_dir: PathBuf::from("recordings"),
            sounds_dir: PathBuf::from("sounds"),
            max_play_bytes: 16 << 20,
            play_cache_bytes: 64 << 20,
            recordings_max_bytes: 10 << 30,
            recordings_min_free_bytes: 256 << 20,
        }
    }
}

/// `[security]`: password and token guessing. Failed credentials (a wrong Digest response,
/// a bad or forged token; never a plain 401 challenge, which is the normal first step of
/// Digest) are counted per source address and per address of record in a sliding window.
/// A source past `auth_fail_max_per_source` is banned for `ban_secs`; an AOR past
/// `auth_fail_max_per_aor` (guessing spread over many sources) bans every source that then
/// fails against it, without locking out the owner, who does not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub auth_fail_window_secs: u64,
    /// 0 turns the per-source count off.
    pub auth_fail_max_per_source: u32,
    /// 0 turns the per-AOR count off.
    pub auth_fail_max_per_aor: u32,
    pub ban_secs: u64,
    /// What a banned source's REGISTER or token INVITE gets.
    pub ban_reply: BanReply,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        // 20 failures a minute from one address is no phone with a typo (it retries at
        // its registration interval) but stops a guesser at 20 tries instead of
        // thousands; many honest phones behind one NAT each fail rarely. 10 an AOR: one
        // identity's devices fail together only when its password changed.
        SecurityConfig {
            auth_fail_window_secs: 60,
            auth_fail_max_per_source: 20,
            auth_fail_max_per_aor: 10,
            ban_secs: 600,
            ban_reply: BanReply::Forbidden,
        }
    }
}

/// `ban_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BanReply {
    /// 403 Forbidden.
    #[serde(rename = "403")]
    Forbidden,
    /// No answer at all (the guesser learns nothing, but cannot tell a ban from loss).
    #[serde(rename = "drop")]
    Drop,
}

/// `[limits]`: what one account, and one client identity, may use (`call::tenant_limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimitsConfig {
    /// Live calls of one account, every leg counted (each holds an RTP port pair); 0 =
    /// 80% of the port pairs of `rtp_ports`, so no account can take the whole pool.
    /// `[[accounts]] max_calls` overrides it.
    pub account_max_calls: usize,
    /// Calls one account creates per second (REST and its client apps; carrier calls are
    /// not counted); 0 = no limit. `[[accounts]] calls_per_second` overrides it.
    pub account_calls_per_second: u32,
    /// Live calls one client identity has placed.
    pub identity_max_calls: usize,
    /// Calls one client identity places per minute; 0 = no limit.
    pub identity_calls_per_minute: u32,
}

impl Default for TenantLimitsConfig {
    fn default() -> Self {
        TenantLimitsConfig {
            account_max_calls: 0,
            account_calls_per_second: 50,
            identity_max_calls: 4,
            identity_calls_per_minute: 30,
        }
    }
}

/// `[cluster]`: this switch among others sharing one `[store] kind = "redis"`.
///
/// A binding records the `node_id` of the switch that holds the client's flow; a call for
/// that client arriving at another node goes to `advertise` first (a hop INVITE), and the
/// edge node reaches the client down its connection or NAT binding. Hop INVITEs are
/// accepted only from `peers_cidrs` or with a valid `secret` HMAC, so no outsider can use
/// a node as a relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster (default `local`).
    pub node_id: String,
    /// This node's SIP address as other nodes reach it (`host:port`, UDP); default: the
    /// first `sip_listen` address as bound.
    pub advertise: Option<String>,
    /// Where other nodes' hop INVITEs may come from.
    pub peers_cidrs: Vec<String>,
    /// `peers_cidrs`, parsed.
    #[serde(skip)]
    pub peer_nets: Vec<Cidr>,
    /// A secret every node shares: hop INVITEs carry an HMAC of it.
    pub secret: Option<String>,
    /// On SIGTERM: how long calls in progress may go on (new ones get 503) before exit.
    pub drain_grace_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: "local".into(),
            advertise: None,
            peers_cidrs: Vec::new(),
            peer_nets: Vec::new(),
            secret: None,
            drain_grace_secs: 30,
        }
    }
}
