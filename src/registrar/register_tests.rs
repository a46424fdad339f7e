//! `Registrar::handle` end to end: a registrar built from an in-test TOML config (two
//! accounts with their own API keys, issuers with the `../testdata` ES256 / EdDSA / RS256
//! public keys by PEM and by JWKS kid, one SIP user), real REGISTER messages parsed with
//! `SipMessage::parse`, a fixed `now`, and for every case the exact status code, metrics
//! outcome and header list (WWW-Authenticate, Contact, Min-Expires) of the reply, plus the
//! location store and presence left behind.
//!
//! The Digest challenges carry a random nonce; `normalized` checks that every Digest
//! challenge of one reply shares one nonce issued at the request's `now` and replaces it
//! with `NONCE` so the rest of the value is compared exactly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{Registrar, Reply};
use crate::config;
use crate::config::DEFAULT_MAX_CONTACTS as MAX_CONTACTS;
use crate::metrics::RegisterOutcomeLabel as Outcome;
use crate::registrar::location::{AorKey, Binding, LocationStore, MemoryStore};
use crate::registrar::presence::{Presence, PresenceState, PresenceStatus};
use crate::registrar::token::{ACCESS_TOKEN_CTY, LEEWAY_SECS};
use crate::sip::Peer;
use crate::sip::msg::SipMessage;
use crate::sip::peer::Transport;

const NOW: u64 = 1_800_000_000;
const REALM: &str = "switchboard.test";
const AC_A: &str = "AC00000000000000000000000000000001";
const AC_B: &str = "AC00000000000000000000000000000002";
const SK_A: &str = "SK00000000000000000000000000000001";
const SK_B: &str = "SK00000000000000000000000000000002";
const SECRET_A: &str = "account-a-api-key-secret";
const SECRET_B: &str = "account-b-api-key-secret";
const ISS_PEM: &str = "https://idp-pem.example";
const ISS_JWKS: &str = "https://idp-jwks.example";
const ISS_RSA: &str = "https://idp-rsa.example";
/// The SIP user: Digest username `softphone` stands for identity `carol` of account A.
const SIP_USERNAME: &str = "softphone";
const SIP_PASSWORD: &str = "wonderland";
const SIP_IDENTITY: &str = "carol";

const ES256_KEY: &str = include_str!("testdata/es256.key.pem");
const ES256_PUB: &str = include_str!("testdata/es256.pub.pem");
const ES256_B_KEY: &str = include_str!("testdata/es256-b.key.pem");
const ED25519_KEY: &str = include_str!("testdata/ed25519.key.pem");
const RS256_KEY: &str = include_str!("testdata/rs256.key.pem");
const RS256_PUB: &str = include_str!("testdata/rs256.pub.pem");
const JWKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/registrar/testdata/jwks.json"
);

/// Stands for the Digest nonce in expected WWW-Authenticate values.
const NONCE: &str = "<nonce>";
/// The UA's address.
const UA: &str = "192.0.2.10:5060";

/// The test config; `server_extra` goes into `[server]`, `tail` after everything else.
fn config_text(server_extra: &str, tail: &str) -> String {
    format!(
        r#"
[server]
realm = "{REALM}"
{server_extra}

[[accounts]]
sid = "{AC_A}"
auth_token = "account-a-auth-token"
[[accounts.api_keys]]
sid = "{SK_A}"
secret = "{SECRET_A}"
[[accounts.issuers]]
iss = "{ISS_PEM}"
algorithms = ["ES256"]
public_key_pem = '''
{ES256_PUB}'''
[[accounts.issuers]]
iss = "{ISS_JWKS}"
algorithms = ["ES256", "EdDSA", "RS256"]
jwks_file = "{JWKS}"
[[accounts.issuers]]
iss = "{ISS_RSA}"
algorithms = ["RS256"]
public_key_pem = '''
{RS256_PUB}'''

[[accounts]]
sid = "{AC_B}"
auth_token = "account-b-auth-token"
[[accounts.api_keys]]
sid = "{SK_B}"
secret = "{SECRET_B}"

[[sip_users]]
username = "{SIP_USERNAME}"
password = "{SIP_PASSWORD}"
identity = "{SIP_IDENTITY}"
account = "{AC_A}"

{tail}
"#
    )
}

/// A registrar over a fresh memory store and presence table.
struct Fixture {
    registrar: Registrar,
    store: Arc<dyn LocationStore>,
    presence: Arc<Presence>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(&config_text("", ""))
    }

    fn with(config_text: &str) -> Fixture {
        let cfg = config::parse("register-test.toml", config_text).expect("test config");
        let store: Arc<dyn LocationStore> = Arc::new(MemoryStore::new());
        let presence = Arc::new(Presence::new());
        let registrar =
            Registrar::new(&cfg, store.clone(), presence.clone()).expect("registrar builds");
        Fixture {
            registrar,
            store,
            presence,
        }
    }

    fn send(&self, req: &Reg, now: u64) -> Reply {
        self.send_from(req, &peer(), now)
    }

    /// `send` as if `req` arrived from `from` (a stream connection, say).
    fn send_from(&self, req: &Reg, from: &Peer, now: u64) -> Reply {
        let text = req.text();
        let msg = SipMessage::parse(text.clone().into_bytes())
            .unwrap_or_else(|e| panic!("test REGISTER does not parse ({e:?}):\n{text}"));
        crate::registrar::location::ready(self.registrar.handle(&msg, from, now))
    }

    /// Everything the store holds for both accounts, to prove a refused REGISTER changed
    /// nothing.
    fn snapshot(&self, now: u64) -> Snapshot {
        Snapshot {
            bindings: [AC_A, AC_B]
                .iter()
                .map(|a| self.store.list(a, now))
                .collect(),
            presence: [AC_A, AC_B].iter().map(|a| self.presence.list(a)).collect(),
            count: self.store.binding_count(),
        }
    }

    fn lookup(&self, account: &str, identity: &str) -> Vec<Binding> {
        self.store.lookup(&AorKey::new(account, identity), NOW)
    }

    fn presence_of(&self, account: &str, identity: &str) -> PresenceState {
        self.presence.get(&AorKey::new(account, identity))
    }
}

type Bindings = Vec<(Box<str>, Vec<Binding>)>;

#[derive(Debug, PartialEq)]
struct Snapshot {
    bindings: Vec<Bindings>,
    presence: Vec<Vec<(Box<str>, PresenceState)>>,
    count: usize,
}

fn ua_addr() -> SocketAddr {
    UA.parse().expect("UA address")
}

fn peer() -> Peer {
    Peer::udp(ua_addr())
}

// ---------------------------------------------------------------------------------------
// Tokens (as `token/tests.rs` makes them)
// ---------------------------------------------------------------------------------------

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("sign")
}

fn hs(alg: Algorithm, claims: &Value, secret: &str) -> String {
    sign(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

fn es256(key_pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    sign(
        &header,
        claims,
        &EncodingKey::from_ec_pem(key_pem.as_bytes()).expect("EC key"),
    )
}

fn eddsa(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    sign(
        &header,
        claims,
        &EncodingKey::from_ed_pem(ED25519_KEY.as_bytes()).expect("Ed25519 key"),
    )
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    sign(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(RS256_KEY.as_bytes()).expect("RSA key"),
    )
}

/// A Twilio-shaped access token's claims: account A, API key A, incoming granted.
fn access_claims(identity: &str, exp: u64) -> Value {
    json!({
        "jti": format!("{SK_A}-{NOW}"),
        "iss": SK_A,
        "sub": AC_A,
        "iat": NOW - 60,
        "exp": exp,
        "grants": { "identity": identity, "voice": { "incoming": { "allow": true } } }
    })
}

/// Signs access-token claims with API key A's secret (HS256, Twilio's `cty`).
fn access(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.cty = Some(ACCESS_TOKEN_CTY.to_owned());
    sign(
        &header,
        claims,
        &EncodingKey::from_secret(SECRET_A.as_bytes()),
    )
}

/// A valid access token for `identity`, valid for an hour.
fn token(identity: &str) -> String {
    access(&access_claims(identity, NOW + 3600))
}

/// `access_claims` with `edit` applied.
fn access_with(identity: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = access_claims(identity, NOW + 3600);
    edit(&mut claims);
    access(&claims)
}

/// A third-party issuer token's claims, valid for 600 s, incoming granted.
fn issuer_claims(iss: &str, sub: &str) -> Value {
    json!({
        "iss": iss,
        "sub": sub,
        "exp": NOW + 600,
        "grants": { "voice": { "incoming": { "allow": true } } }
    })
}

// ---------------------------------------------------------------------------------------
// REGISTER messages
// ---------------------------------------------------------------------------------------

/// A REGISTER, field by field.
#[derive(Clone)]
struct Reg {
    /// The AOR user, as written in From/To (escapes and all).
    user: String,
    call_id: String,
    cseq: u32,
    /// One Contact header per element.
    contacts: Vec<String>,
    expires: Option<String>,
    authorization: Vec<String>,
    /// Further header lines (`Name: value`).
    extra: Vec<String>,
    /// Hosts of the Request-URI and of the AOR in From/To (both `REALM` by default).
    ruri_host: String,
    aor_host: String,
}

static BRANCH: AtomicU64 = AtomicU64::new(1);

impl Reg {
    /// `sip:<user>@REALM`, one contact (`ua1`), `Expires: 3600`, no credentials.
    fn new(user: &str) -> Reg {
        Reg {
            user: user.to_owned(),
            call_id: "reg-1@192.0.2.10".to_owned(),
            cseq: 1,
            contacts: vec![contact_uri(1)],
            expires: Some("3600".to_owned()),
            authorization: Vec::new(),
            extra: Vec::new(),
            ruri_host: REALM.to_owned(),
            aor_host: REALM.to_owned(),
        }
    }

    /// The Request-URI host and the AOR host.
    fn hosts(mut self, ruri: &str, aor: &str) -> Reg {
        self.ruri_host = ruri.to_owned();
        self.aor_host = aor.to_owned();
        self
    }

    /// `new(user)` with `Authorization: Bearer <token>`.
    fn bearer(user: &str, token: &str) -> Reg {
        Reg::new(user).auth(&format!("Bearer {token}"))
    }

    fn header(mut self, line: &str) -> Reg {
        self.extra.push(line.to_owned());
        self
    }

    fn auth(mut self, value: &str) -> Reg {
        self.authorization.push(value.to_owned());
        self
    }

    fn cseq(mut self, cseq: u32) -> Reg {
        self.cseq = cseq;
        self
    }

    fn call_id(mut self, call_id: &str) -> Reg {
        self.call_id = call_id.to_owned();
        self
    }

    fn contacts<S: AsRef<str>>(mut self, contacts: &[S]) -> Reg {
        self.contacts = contacts.iter().map(|c| c.as_ref().to_owned()).collect();
        self
    }

    fn expires(mut self, expires: Option<&str>) -> Reg {
        self.expires = expires.map(str::to_owned);
        self
    }

    fn text(&self) -> String {
        let branch = BRANCH.fetch_add(1, Ordering::Relaxed);
        let aor = format!("<sip:{}@{}>", self.user, self.aor_host);
        let mut t = format!(
            "REGISTER sip:{} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {UA};branch=z9hG4bK-reg-{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {aor};tag=from-{branch}\r\n\
             To: {aor}\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n",
            self.ruri_host, self.call_id, self.cseq
        );
        for c in &self.contacts {
            t.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = &self.expires {
            t.push_str(&format!("Expires: {e}\r\n"));
        }
        for line in &self.extra {
            t.push_str(&format!("{line}\r\n"));
        }
        for a in &self.authorization {
            t.push_str(&format!("Authorization: {a}\r\n"));
        }
        t.push_str("User-Agent: register-tests/1\r\nContent-Length: 0\r\n\r\n");
        t
    }
}

/// The URI of test contact `n` (without `<>`).
fn contact(n: usize) -> String {
    format!("sip:ua{n}@192.0.2.10:5060")
}

/// Contact header value for test contact `n`.
fn contact_uri(n: usize) -> String {
    format!("<{}>", contact(n))
}

// ---------------------------------------------------------------------------------------
// Expected replies
// ---------------------------------------------------------------------------------------

type Headers = Vec<(&'static str, String)>;

/// The expected Digest challenge for `algorithm`.
fn digest_challenge(algorithm: &str) -> String {
    format!("Digest realm=\"{REALM}\", nonce=\"{NONCE}\", qop=\"auth\", algorithm={algorithm}")
}

/// The 401 challenge set: Bearer (with `error` when given), then Digest SHA-256 and MD5
/// (the realm has a SIP user), in the default `[server] challenges` order.
fn www(error: Option<&str>) -> Headers {
    let bearer = match error {
        Some(e) => format!("Bearer realm=\"{REALM}\", error=\"{e}\""),
        None => format!("Bearer realm=\"{REALM}\""),
    };
    vec![
        ("WWW-Authenticate", bearer),
        ("WWW-Authenticate", digest_challenge("SHA-256")),
        ("WWW-Authenticate", digest_challenge("MD5")),
    ]
}

fn challenge() -> Headers {
    www(None)
}

fn invalid_token() -> Headers {
    www(Some("invalid_token"))
}

/// `Contact: <contact(n)>;expires=s` for each `(n, s)`, in order.
fn contacts(list: &[(usize, u64)]) -> Headers {
    list.iter()
        .map(|&(n, s)| ("Contact", format!("<{}>;expires={s}", contact(n))))
        .collect()
}

fn none() -> Headers {
    Vec::new()
}

/// The Digest nonce of a challenge value, if it is one.
fn nonce_of(value: &str) -> Option<&str> {
    let rest = value.strip_prefix("Digest ")?;
    let start = rest.find("nonce=\"")? + "nonce=\"".len();
    let len = rest[start..].find('"')?;
    Some(&rest[start..start + len])
}

/// The reply's headers with the Digest nonce replaced by `NONCE`, after checking that it
/// is one of ours (32 bytes of base64url, issued at `now`) and the same in every Digest
/// challenge of the reply.
fn normalized(reply: &Reply, now: u64) -> Headers {
    let mut seen: Option<String> = None;
    reply
        .headers
        .iter()
        .map(|(name, value)| {
            let Some(nonce) = nonce_of(value).filter(|_| *name == "WWW-Authenticate") else {
                return (*name, value.clone());
            };
            let raw = URL_SAFE_NO_PAD
                .decode(nonce)
                .unwrap_or_else(|e| panic!("nonce {nonce:?} is not base64url: {e}"));
            assert_eq!(raw.len(), 32, "nonce {nonce:?} length");
            let issued = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
            assert_eq!(issued, now, "nonce {nonce:?} issued at `now`");
            match &seen {
                Some(first) => assert_eq!(first, nonce, "one nonce per 401"),
                None => seen = Some(nonce.to_owned()),
            }
            (*name, value.replace(nonce, NONCE))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

/// One REGISTER and its expected answer.
struct Step {
    req: Reg,
    /// The `now` it is handled at.
    at: u64,
    code: u16,
    outcome: Outcome,
    headers: Headers,
}

fn step(req: Reg, code: u16, outcome: Outcome, headers: Headers) -> Step {
    Step {
        req,
        at: NOW,
        code,
        outcome,
        headers,
    }
}

impl Step {
    fn at(mut self, at: u64) -> Step {
        self.at = at;
        self
    }
}

/// REGISTERs sent in order to one fresh registrar, then a check of what they left behind.
struct Case {
    name: &'static str,
    steps: Vec<Step>,
    then: fn(&Fixture),
}

fn case(name: &'static str, steps: Vec<Step>) -> Case {
    Case {
        name,
        steps,
        then: |_| {},
    }
}

fn case_then(name: &'static str, steps: Vec<Step>, then: fn(&Fixture)) -> Case {
    Case { name, steps, then }
}

/// A single REGISTER refused with `code`/`outcome`/`headers`; nothing may be stored.
fn refused(name: &'static str, req: Reg, code: u16, outcome: Outcome, headers: Headers) -> Case {
    case_then(name, vec![step(req, code, outcome, headers)], |f| {
        assert_eq!(f.store.binding_count(), 0, "nothing stored")
    })
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let f = Fixture::new();
        for (i, s) in c.steps.iter().enumerate() {
            let before = f.snapshot(s.at);
            let reply = f.send(&s.req, s.at);
            let at = format!("{} (step {})", c.name, i + 1);
            assert_eq!(
                (reply.code, reply.outcome),
                (s.code, s.outcome),
                "{at}: {} {} {:?}",
                reply.code,
                reply.reason,
                reply.headers
            );
            assert_eq!(normalized(&reply, s.at), s.headers, "{at}: headers");
            if reply.code != 200 {
                assert_eq!(
                    f.snapshot(s.at),
                    before,
                    "{at}: a refused REGISTER changes nothing"
                );
            }
        }
        (c.then)(&f);
    }
}

// ---------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------

#[test]
fn credentials_that_do_not_authenticate_get_401() {
    use Outcome::{Challenge, InvalidToken};
    let alice = |token: String| Reg::bearer("alice", &token);
    let claims = access_claims("alice", NOW + 3600);
    let cases = vec![
        refused(
            "no credentials",
            Reg::new("alice"),
            401,
            Challenge,
            challenge(),
        ),
        refused(
            "no credentials, no Contact (a query)",
            Reg::new("alice").contacts::<&str>(&[]),
            401,
            Challenge,
            challenge(),
        ),
        refused(
            "malformed token: not a JWT",
            alice("not-a-jwt".to_owned()),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "malformed token: three parts, not base64url JSON",
            alice("a.b.c".to_owned()),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "malformed token: string exp",
            alice(access_with("alice", |c| c["exp"] = json!("2000000000"))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "expired beyond the leeway",
            alice(access(&access_claims("alice", NOW - LEEWAY_SECS - 1))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "nbf in the future beyond the leeway",
            alice(access_with("alice", |c| {
                c["nbf"] = json!(NOW + LEEWAY_SECS + 1);
            })),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "bad signature: another secret",
            alice(hs(Algorithm::HS256, &claims, "not-the-secret")),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "bad signature: claims swapped for another identity",
            alice({
                let good = token("mallory");
                let parts: Vec<&str> = good.split('.').collect();
                format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
            }),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "bad signature: issuer token signed with another EC key",
            alice(es256(ES256_B_KEY, None, &issuer_claims(ISS_PEM, "alice"))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "algorithm not allowed: EdDSA for an ES256-only issuer",
            alice(eddsa(None, &issuer_claims(ISS_PEM, "alice"))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "algorithm not allowed: RS256 with an API key",
            alice(rs256(None, &claims)),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "alg none",
            alice(format!(
                "{}.{}.",
                b64(&json!({"alg": "none"})),
                b64(&claims)
            )),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "alg none, issuer token",
            alice(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&issuer_claims(ISS_PEM, "alice"))
            )),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "HS/RS confusion: HS256 keyed with the RSA public key PEM",
            alice(hs(
                Algorithm::HS256,
                &issuer_claims(ISS_RSA, "alice"),
                RS256_PUB,
            )),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "HS/RS confusion through a JWKS kid",
            alice({
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some("rsa-1".to_owned());
                sign(
                    &header,
                    &issuer_claims(ISS_JWKS, "alice"),
                    &EncodingKey::from_secret(RS256_PUB.as_bytes()),
                )
            }),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "unknown kid",
            alice(es256(
                ES256_B_KEY,
                Some("no-such-kid"),
                &issuer_claims(ISS_JWKS, "alice"),
            )),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "API key B's sid, signed with key A's secret",
            alice(access_with("alice", |c| c["iss"] = json!(SK_B))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "wrong account: signed by account B's key, sub = account A",
            alice(hs(
                Algorithm::HS256,
                &{
                    let mut c = access_claims("alice", NOW + 3600);
                    c["iss"] = json!(SK_B);
                    c
                },
                SECRET_B,
            )),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "aud naming another service",
            alice(access_with("alice", |c| {
                c["aud"] = json!("https://other.example");
            })),
            401,
            InvalidToken,
            invalid_token(),
        ),
        // Inside the verification leeway the token verifies, but a binding made with it
        // would already be over: refused as an invalid token, nothing stored.
        refused(
            "exp == now (inside the leeway)",
            alice(access(&access_claims("alice", NOW))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "exp 1 s ago (inside the leeway)",
            alice(access(&access_claims("alice", NOW - 1))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "exp exactly LEEWAY_SECS ago (edge of the leeway)",
            alice(access(&access_claims("alice", NOW - LEEWAY_SECS))),
            401,
            InvalidToken,
            invalid_token(),
        ),
        refused(
            "exp == now, Expires 0 (nothing to remove with it either)",
            alice(access(&access_claims("alice", NOW))).expires(Some("0")),
            401,
            InvalidToken,
            invalid_token(),
        ),
        // RFC 4475 §3.1.2.10 (regaut01): a scheme we cannot check is as good as none.
        refused(
            "unknown auth scheme",
            Reg::new("alice").auth("NoOneKnowsThisScheme opaque-data=here"),
            401,
            Challenge,
            challenge(),
        ),
        // Never checked against our users (CVE-2021-41158 is the client-side twin).
        refused(
            "Digest credentials for another realm",
            Reg::new(SIP_IDENTITY).auth(&format!(
                "Digest username=\"{SIP_USERNAME}\", realm=\"other.example\", \
                 nonce=\"AAAAAGtJ0gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", uri=\"sip:{REALM}\", \
                 response=\"00000000000000000000000000000000\", qop=auth, nc=00000001, \
                 cnonce=\"c0ffee\""
            )),
            401,
            Challenge,
            challenge(),
        ),
        // Not token68 (RFC 6750 §2.1): not Bearer credentials at all, so the plain
        // challenge (RFC 6750 §3.1: no error code without authentication information).
        refused(
            "Bearer value that is not a token68",
            Reg::new("alice").auth("Bearer not a token"),
            401,
            Challenge,
            challenge(),
        ),
    ];
    run(cases);
}

#[test]
fn authenticated_but_not_allowed_gets_403() {
    use Outcome::Forbidden;
    let cases = vec![
        refused(
            "access token without a voice grant",
            Reg::bearer(
                "alice",
                &access_with("alice", |c| {
                    c["grants"].as_object_mut().expect("grants").remove("voice");
                }),
            ),
            403,
            Forbidden,
            none(),
        ),
        refused(
            "access token with incoming.allow = false",
            Reg::bearer(
                "alice",
                &access_with("alice", |c| {
                    c["grants"]["voice"]["incoming"]["allow"] = json!(false);
                }),
            ),
            403,
            Forbidden,
            none(),
        ),
        refused(
            "issuer token without grants",
            Reg::bearer(
                "dave",
                &eddsa(
                    Some("ed-1"),
                    &json!({"iss": ISS_JWKS, "sub": "dave", "exp": NOW + 600}),
                ),
            ),
            403,
            Forbidden,
            none(),
        ),
        refused(
            "identity is not the AOR user",
            Reg::bearer("bob", &token("alice")),
            403,
            Forbidden,
            none(),
        ),
        refused(
            "identity differs only in case",
            Reg::bearer("Alice", &token("alice")),
            403,
            Forbidden,
            none(),
        ),
        refused(
            "escaped AOR user that decodes to someone else",
            Reg::bearer("%62ob", &token("alice")),
            403,
            Forbidden,
            none(),
        ),
        refused(
            // The Digest username names the AOR only for Digest: a token whose identity
            // is that username is not the identity it maps to.
            "token identity = the SIP user's Digest username, AOR = its identity",
            Reg::bearer(SIP_IDENTITY, &token(SIP_USERNAME)),
            403,
            Forbidden,
            none(),
        ),
    ];
    run(cases);
}

// ---------------------------------------------------------------------------------------
// Successful registrations
// ---------------------------------------------------------------------------------------

#[test]
fn valid_tokens_register_and_expiry_never_outlives_the_token() {
    use Outcome::Ok;
    let cases = vec![
        case_then(
            "access token, Expires 3600",
            vec![step(
                Reg::bearer("alice", &token("alice")),
                200,
                Ok,
                contacts(&[(1, 3600)]),
            )],
            |f| {
                let b = f.lookup(AC_A, "alice");
                assert_eq!(b.len(), 1);
                assert_eq!(&*b[0].contact, contact(1));
                assert_eq!(b[0].expires_at, NOW + 3600);
                assert_eq!((&*b[0].call_id, b[0].cseq), ("reg-1@192.0.2.10", 1));
                assert_eq!(b[0].source, ua_addr());
                assert_eq!(b[0].transport, Transport::Udp);
                assert_eq!(b[0].user_agent.as_deref(), Some("register-tests/1"));
                assert_eq!(b[0].registered_at, NOW);
                assert_eq!(
                    f.presence_of(AC_A, "alice"),
                    PresenceState {
                        status: PresenceStatus::Available,
                        changed_at: Some(NOW)
                    }
                );
                // Only alice's AOR of account A: nothing under account B.
                assert!(f.store.list(AC_B, NOW).is_empty());
                assert_eq!(f.presence_of(AC_B, "alice"), PresenceState::UNKNOWN);
            },
        ),
        case_then(
            "token expiring in 120 s, Expires 3600 -> 120",
            vec![step(
                Reg::bearer("alice", &access(&access_claims("alice", NOW + 120))),
                200,
                Ok,
                contacts(&[(1, 120)]),
            )],
            |f| assert_eq!(f.lookup(AC_A, "alice")[0].expires_at, NOW + 120),
        ),
        case(
            "token expiring in 1 s",
            vec![step(
                Reg::bearer("alice", &access(&access_claims("alice", NOW + 1))),
                200,
                Ok,
                contacts(&[(1, 1)]),
            )],
        ),
        case(
            "token expiring in 120 s, contact expires=90 -> 90",
            vec![step(
                Reg::bearer("alice", &access(&access_claims("alice", NOW + 120)))
                    .contacts(&[format!("{};expires=90", contact_uri(1))]),
                200,
                Ok,
                contacts(&[(1, 90)]),
            )],
        ),
        case(
            "Expires 7200 shortened to the 3600 maximum",
            vec![step(
                Reg::bearer("alice", &token("alice")).expires(Some("7200")),
                200,
                Ok,
                contacts(&[(1, 3600)]),
            )],
        ),
        case(
            "no Expires: the 3600 default",
            vec![step(
                Reg::bearer("alice", &token("alice")).expires(None),
                200,
                Ok,
                contacts(&[(1, 3600)]),
            )],
        ),
        case(
            "Expires 60: the minimum is accepted",
            vec![step(
                Reg::bearer("alice", &token("alice")).expires(Some("60")),
                200,
                Ok,
                contacts(&[(1, 60)]),
            )],
        ),
        case(
            "a contact's expires parameter wins over the header",
            vec![step(
                Reg::bearer("alice", &token("alice"))
                    .contacts(&[format!("{};expires=600", contact_uri(1)), contact_uri(2)]),
                200,
                Ok,
                contacts(&[(1, 600), (2, 3600)]),
            )],
        ),
        case(
            "issuer token, ES256 PEM",
            vec![step(
                Reg::bearer(
                    "bob",
                    &es256(ES256_KEY, None, &issuer_claims(ISS_PEM, "bob")),
                ),
                200,
                Ok,
                contacts(&[(1, 600)]),
            )],
        ),
        case(
            "issuer token, ES256 JWKS kid ec-b",
            vec![step(
                Reg::bearer(
                    "bob",
                    &es256(ES256_B_KEY, Some("ec-b"), &issuer_claims(ISS_JWKS, "bob")),
                ),
                200,
                Ok,
                contacts(&[(1, 600)]),
            )],
        ),
        case(
            "issuer token, EdDSA JWKS kid ed-1",
            vec![step(
                Reg::bearer("bob", &eddsa(Some("ed-1"), &issuer_claims(ISS_JWKS, "bob"))),
                200,
                Ok,
                contacts(&[(1, 600)]),
            )],
        ),
        case(
            "issuer token, RS256 JWKS kid rsa-1",
            vec![step(
                Reg::bearer(
                    "bob",
                    &rs256(Some("rsa-1"), &issuer_claims(ISS_JWKS, "bob")),
                ),
                200,
                Ok,
                contacts(&[(1, 600)]),
            )],
        ),
        case_then(
            "issuer token, RS256 PEM",
            vec![step(
                Reg::bearer("erin", &rs256(None, &issuer_claims(ISS_RSA, "erin"))),
                200,
                Ok,
                contacts(&[(1, 600)]),
            )],
            |f| {
                assert_eq!(f.lookup(AC_A, "erin")[0].expires_at, NOW + 600);
                assert_eq!(
                    f.presence_of(AC_A, "erin").status,
                    PresenceStatus::Available
                );
            },
        ),
        case(
            "a token at its exp is refused, a fresh one then registers",
            vec![
                step(
                    Reg::bearer("alice", &access(&access_claims("alice", NOW))),
                    401,
                    Outcome::InvalidToken,
                    invalid_token(),
                ),
                step(
                    Reg::bearer("alice", &access(&access_claims("alice", NOW + 2))).cseq(2),
                    200,
                    Ok,
                    contacts(&[(1, 2)]),
                ),
            ],
        ),
        // RFC 3261 §19.1.4: an escaped character is the character. `|` may not appear
        // unescaped in a SIP user part, so such identities always arrive escaped.
        case_then(
            "%-escaped AOR user matching the identity",
            vec![step(
                Reg::bearer(
                    "google-oauth2%7C1234",
                    &es256(
                        ES256_KEY,
                        None,
                        &issuer_claims(ISS_PEM, "google-oauth2|1234"),
                    ),
                ),
                200,
                Ok,
                contacts(&[(1, 600)]),
            )],
            |f| {
                assert_eq!(f.lookup(AC_A, "google-oauth2|1234").len(), 1);
                assert!(f.lookup(AC_A, "google-oauth2%7C1234").is_empty());
                assert_eq!(
                    f.presence_of(AC_A, "google-oauth2|1234").status,
                    PresenceStatus::Available
                );
            },
        ),
        case_then(
            "needlessly %-escaped AOR user",
            vec![step(
                Reg::bearer("%61lic%65", &token("alice")),
                200,
                Ok,
                contacts(&[(1, 3600)]),
            )],
            |f| assert_eq!(f.lookup(AC_A, "alice").len(), 1),
        ),
        case_then(
            "same identity in two accounts: two AORs",
            vec![
                step(
                    Reg::bearer("alice", &token("alice")),
                    200,
                    Ok,
                    contacts(&[(1, 3600)]),
                ),
                step(
                    Reg::bearer(
                        "alice",
                        &hs(
                            Algorithm::HS256,
                            &{
                                let mut c = access_claims("alice", NOW + 1800);
                                c["iss"] = json!(SK_B);
                                c["sub"] = json!(AC_B);
                                c
                            },
                            SECRET_B,
                        ),
                    )
                    .call_id("other-device")
                    .contacts(&[contact_uri(2)]),
                    200,
                    Ok,
                    contacts(&[(2, 1800)]),
                ),
            ],
            |f| {
                assert_eq!(&*f.lookup(AC_A, "alice")[0].contact, contact(1));
                assert_eq!(&*f.lookup(AC_B, "alice")[0].contact, contact(2));
            },
        ),
    ];
    run(cases);
}

// ---------------------------------------------------------------------------------------
// Registration rules (RFC 3261 §10.3)
// ---------------------------------------------------------------------------------------

#[test]
fn binding_rules() {
    use Outcome::{BadRequest, IntervalTooBrief, Ok, OutOfOrder, TooManyContacts, Unregistered};
    let alice = || Reg::bearer("alice", &token("alice"));
    let ten: Vec<String> = (1..=MAX_CONTACTS).map(contact_uri).collect();
    let all_ten: Vec<(usize, u64)> = (1..=MAX_CONTACTS).map(|n| (n, 3600)).collect();
    let cases = vec![
        case_then(
            "Expires 0 removes the binding",
            vec![
                step(alice(), 200, Ok, contacts(&[(1, 3600)])),
                step(
                    alice().cseq(2).expires(Some("0")),
                    200,
                    Unregistered,
                    none(),
                )
                .at(NOW + 10),
            ],
            |f| {
                assert_eq!(f.store.binding_count(), 0);
                assert!(f.lookup(AC_A, "alice").is_empty());
                assert_eq!(
                    f.presence_of(AC_A, "alice"),
                    PresenceState {
                        status: PresenceStatus::Offline,
                        changed_at: Some(NOW + 10)
                    }
                );
            },
        ),
        case_then(
            "contact expires=0 removes only that contact",
            vec![
                step(
                    alice().contacts(&[contact_uri(1), contact_uri(2)]),
                    200,
                    Ok,
                    contacts(&[(1, 3600), (2, 3600)]),
                ),
                step(
                    alice()
                        .cseq(2)
                        .contacts(&[format!("{};expires=0", contact_uri(1))]),
                    200,
                    Ok,
                    contacts(&[(2, 3600)]),
                ),
            ],
            |f| {
                assert_eq!(f.lookup(AC_A, "alice").len(), 1);
                assert_eq!(
                    f.presence_of(AC_A, "alice").status,
                    PresenceStatus::Available
                );
            },
        ),
        case_then(
            "Contact * with Expires 0 removes every binding",
            vec![
                step(
                    alice().contacts(&[contact_uri(1), contact_uri(2)]),
                    200,
                    Ok,
                    contacts(&[(1, 3600), (2, 3600)]),
                ),
                step(
                    alice()
                        .call_id("another-call-id")
                        .contacts(&[contact_uri(3)]),
                    200,
                    Ok,
                    contacts(&[(1, 3600), (2, 3600), (3, 3600)]),
                ),
                step(
                    alice().cseq(2).contacts(&["*"]).expires(Some("0")),
                    200,
                    Unregistered,
                    none(),
                ),
            ],
            |f| {
                assert_eq!(f.store.binding_count(), 0);
                assert_eq!(f.presence_of(AC_A, "alice").status, PresenceStatus::Offline);
            },
        ),
        case(
            "Contact * with a stale CSeq",
            vec![
                step(alice().cseq(5), 200, Ok, contacts(&[(1, 3600)])),
                step(
                    alice().cseq(5).contacts(&["*"]).expires(Some("0")),
                    500,
                    OutOfOrder,
                    none(),
                ),
            ],
        ),
        refused(
            "Contact * with another contact",
            alice()
                .contacts(&["*".to_owned(), contact_uri(1)])
                .expires(Some("0")),
            400,
            BadRequest,
            none(),
        ),
        refused(
            "Contact * with Expires 3600",
            alice().contacts(&["*"]),
            400,
            BadRequest,
            none(),
        ),
        refused(
            "Contact * without Expires",
            alice().contacts(&["*"]).expires(None),
            400,
            BadRequest,
            none(),
        ),
        refused(
            "Expires 30",
            alice().expires(Some("30")),
            423,
            IntervalTooBrief,
            vec![("Min-Expires", "60".to_owned())],
        ),
        refused(
            "contact expires=59",
            alice().contacts(&[format!("{};expires=59", contact_uri(1))]),
            423,
            IntervalTooBrief,
            vec![("Min-Expires", "60".to_owned())],
        ),
        refused(
            "Expires 1",
            alice().expires(Some("1")),
            423,
            IntervalTooBrief,
            vec![("Min-Expires", "60".to_owned())],
        ),
        case_then(
            "same Call-ID with a CSeq that does not grow",
            vec![
                step(alice().cseq(5), 200, Ok, contacts(&[(1, 3600)])),
                step(
                    alice().cseq(5).expires(Some("1800")),
                    500,
                    OutOfOrder,
                    none(),
                ),
                step(
                    alice().cseq(4).expires(Some("1800")),
                    500,
                    OutOfOrder,
                    none(),
                ),
                step(alice().cseq(5).expires(Some("0")), 500, OutOfOrder, none()),
                step(
                    alice().cseq(6).expires(Some("1800")),
                    200,
                    Ok,
                    contacts(&[(1, 1800)]),
                ),
                // Another Call-ID replaces the binding whatever its CSeq.
                step(
                    alice().call_id("rebooted").cseq(1).expires(Some("900")),
                    200,
                    Ok,
                    contacts(&[(1, 900)]),
                ),
            ],
            |f| {
                let b = f.lookup(AC_A, "alice");
                assert_eq!(b.len(), 1);
                assert_eq!((&*b[0].call_id, b[0].cseq), ("rebooted", 1));
            },
        ),
        case_then(
            "an 11th contact",
            vec![
                step(alice().contacts(&ten), 200, Ok, contacts(&all_ten)),
                step(
                    alice()
                        .call_id("second-device")
                        .contacts(&[contact_uri(MAX_CONTACTS + 1)]),
                    403,
                    TooManyContacts,
                    none(),
                ),
                // A refresh does not grow the AOR: still allowed (and moves to the end).
                step(
                    alice()
                        .call_id("second-device")
                        .contacts(&[contact_uri(3)])
                        .expires(Some("600")),
                    200,
                    Ok,
                    contacts(
                        &(1..=MAX_CONTACTS)
                            .filter(|&n| n != 3)
                            .map(|n| (n, 3600))
                            .chain([(3, 600)])
                            .collect::<Vec<_>>(),
                    ),
                ),
                // Replacing one contact by another in one request keeps the count.
                step(
                    alice()
                        .call_id("second-device")
                        .cseq(2)
                        .contacts(&[
                            format!("{};expires=0", contact_uri(3)),
                            contact_uri(MAX_CONTACTS + 1),
                        ])
                        .expires(Some("600")),
                    200,
                    Ok,
                    contacts(
                        &(1..=MAX_CONTACTS)
                            .filter(|&n| n != 3)
                            .map(|n| (n, 3600))
                            .chain([(MAX_CONTACTS + 1, 600)])
                            .collect::<Vec<_>>(),
                    ),
                ),
            ],
            |f| {
                assert_eq!(f.lookup(AC_A, "alice").len(), MAX_CONTACTS);
                assert_eq!(f.store.binding_count(), MAX_CONTACTS);
            },
        ),
        refused(
            "11 contacts in one REGISTER",
            alice().contacts(&(1..=MAX_CONTACTS + 1).map(contact_uri).collect::<Vec<_>>()),
            403,
            TooManyContacts,
            none(),
        ),
        case(
            "a REGISTER without Contact lists the bindings with their remaining time",
            vec![
                step(alice(), 200, Ok, contacts(&[(1, 3600)])),
                step(
                    alice().cseq(2).contacts::<&str>(&[]),
                    200,
                    Ok,
                    contacts(&[(1, 3500)]),
                )
                .at(NOW + 100),
            ],
        ),
    ];
    run(cases);
}

#[test]
fn contact_forms_flows_and_path_come_back() {
    use Outcome::Ok;
    let alice = || Reg::bearer("alice", &token("alice"));
    let instance = "\"<urn:uuid:00000000-0000-4000-8000-000000000001>\"";
    let cases = vec![
        // Without <>, the parameters belong to the header (RFC 3261 §20.10).
        case(
            "addr-spec Contact with an expires parameter",
            vec![step(
                alice().contacts(&[format!("{};expires=120", contact(1))]),
                200,
                Ok,
                contacts(&[(1, 120)]),
            )],
        ),
        case_then(
            "display name, q, and a token-limited expiry",
            vec![step(
                Reg::bearer("alice", &access(&access_claims("alice", NOW + 300)))
                    .contacts(&[format!("\"Alice\" {};q=0.5", contact_uri(1))]),
                200,
                Ok,
                contacts(&[(1, 300)]),
            )],
            |f| assert_eq!(f.lookup(AC_A, "alice")[0].q, Some(0.5)),
        ),
        case_then(
            "RFC 5626 flow: +sip.instance and reg-id are echoed; Path is returned",
            vec![
                step(
                    alice()
                        .contacts(&[format!(
                            "{};+sip.instance={instance};reg-id=1",
                            contact_uri(1)
                        )])
                        .header("Path: <sip:edge.example;lr>")
                        .header("Supported: path, outbound"),
                    200,
                    Ok,
                    vec![
                        (
                            "Contact",
                            format!(
                                "<{}>;expires=3600;+sip.instance={instance};reg-id=1",
                                contact(1)
                            ),
                        ),
                        ("Path", "<sip:edge.example;lr>".to_owned()),
                    ],
                ),
                // The same flow from a new address replaces the binding (RFC 5626 §6).
                step(
                    alice()
                        .call_id("after-reboot")
                        .contacts(&[format!(
                            "{};+sip.instance={instance};reg-id=1",
                            contact_uri(2)
                        )])
                        .expires(Some("600")),
                    200,
                    Ok,
                    vec![(
                        "Contact",
                        format!(
                            "<{}>;expires=600;+sip.instance={instance};reg-id=1",
                            contact(2)
                        ),
                    )],
                ),
            ],
            |f| {
                let b = f.lookup(AC_A, "alice");
                assert_eq!(b.len(), 1);
                assert_eq!(b[0].reg_id, Some(1));
                assert!(b[0].path.is_empty(), "the second REGISTER had no Path");
            },
        ),
    ];
    run(cases);
}

#[test]
fn configured_limits_and_challenges_apply_and_reload() {
    use Outcome::{Challenge, IntervalTooBrief, InvalidToken, Ok, TooManyContacts};
    let limits = "[registrar]\n\
                  min_expires = 120\n\
                  max_expires = 900\n\
                  default_expires = 600\n\
                  max_contacts = 2\n";
    let alice = || Reg::bearer("alice", &token("alice"));
    let f = Fixture::with(&config_text(
        "challenges = [\"digest-md5\", \"bearer\"]",
        limits,
    ));
    let md5 = digest_challenge("MD5");
    let bearer = format!("Bearer realm=\"{REALM}\"");
    let bearer_error = format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"");
    let steps = [
        (
            Reg::new("alice"),
            401,
            Challenge,
            vec![
                ("WWW-Authenticate", md5.clone()),
                ("WWW-Authenticate", bearer),
            ],
        ),
        (
            Reg::bearer("alice", "not-a-jwt"),
            401,
            InvalidToken,
            vec![
                ("WWW-Authenticate", md5.clone()),
                ("WWW-Authenticate", bearer_error.clone()),
            ],
        ),
        (
            alice().expires(Some("119")),
            423,
            IntervalTooBrief,
            vec![("Min-Expires", "120".to_owned())],
        ),
        (alice().expires(None), 200, Ok, contacts(&[(1, 600)])),
        (
            alice().cseq(2).contacts(&[contact_uri(2)]),
            200,
            Ok,
            contacts(&[(1, 600), (2, 900)]),
        ),
        (
            alice().cseq(3).contacts(&[contact_uri(3)]),
            403,
            TooManyContacts,
            none(),
        ),
    ];
    for (i, (req, code, outcome, headers)) in steps.into_iter().enumerate() {
        let reply = f.send(&req, NOW);
        assert_eq!(
            (reply.code, reply.outcome),
            (code, outcome),
            "step {}: {reply:?}",
            i + 1
        );
        assert_eq!(normalized(&reply, NOW), headers, "step {}", i + 1);
    }

    // Without Bearer in the list, a client that sent a token still gets its Bearer error
    // (first); the defaults come back for the limits.
    let cfg = config::parse(
        "reloaded.toml",
        &config_text("challenges = [\"digest-sha256\"]", ""),
    )
    .expect("reloaded config");
    f.registrar.reload(&cfg).expect("reload");
    let reply = f.send(&Reg::bearer("alice", "not-a-jwt"), NOW);
    assert_eq!(
        normalized(&reply, NOW),
        vec![
            ("WWW-Authenticate", bearer_error),
            ("WWW-Authenticate", digest_challenge("SHA-256")),
        ]
    );
    let reply = f.send(&alice().cseq(4).contacts(&[contact_uri(3)]), NOW);
    assert_eq!(
        (reply.code, normalized(&reply, NOW)),
        (200, contacts(&[(1, 600), (2, 900), (3, 3600)]))
    );
}

// ---------------------------------------------------------------------------------------
// Digest (the SIP user)
// ---------------------------------------------------------------------------------------

/// `Authorization: Digest …` for the SIP user, answering `nonce` (MD5 or SHA-256, per RFC
/// 7616 §3.4.1 with `qop=auth`), computed here independently of `digest::hash`.
fn digest_credentials(
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    nc: u32,
    sha256: bool,
) -> String {
    fn h(sha256: bool, s: &str) -> String {
        use md5::Digest as _;
        if sha256 {
            format!("{:x}", sha2::Sha256::digest(s.as_bytes()))
        } else {
            format!("{:x}", md5::Md5::digest(s.as_bytes()))
        }
    }
    let uri = format!("sip:{REALM}");
    let (nc, cnonce) = (format!("{nc:08x}"), "0a4f113b");
    let ha1 = h(sha256, &format!("{username}:{realm}:{password}"));
    let ha2 = h(sha256, &format!("REGISTER:{uri}"));
    let response = h(sha256, &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let algorithm = if sha256 { "SHA-256" } else { "MD5" };
    format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={algorithm}, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    )
}

/// The nonce a 401 offers.
fn challenged_nonce(reply: &Reply) -> String {
    assert_eq!(reply.code, 401, "{reply:?}");
    reply
        .headers
        .iter()
        .find_map(|(_, v)| nonce_of(v))
        .expect("a Digest challenge")
        .to_owned()
}

#[test]
fn digest_user_registers_its_identity() {
    let f = Fixture::new();
    let first = f.send(&Reg::new(SIP_IDENTITY), NOW);
    assert_eq!(normalized(&first, NOW), challenge());
    let nonce = challenged_nonce(&first);

    // The AOR may name the identity or the Digest username; either way the binding is the
    // identity's, and it lasts what was asked (no token to bound it).
    for (i, (aor_user, sha256)) in [(SIP_IDENTITY, false), (SIP_USERNAME, true)]
        .into_iter()
        .enumerate()
    {
        let cseq = u32::try_from(i).expect("small") + 2;
        let nc = u32::try_from(i).expect("small") + 1;
        let creds = digest_credentials(SIP_USERNAME, REALM, SIP_PASSWORD, &nonce, nc, sha256);
        let reply = f.send(&Reg::new(aor_user).cseq(cseq).auth(&creds), NOW + 1);
        assert_eq!((reply.code, reply.outcome), (200, Outcome::Ok), "{reply:?}");
        assert_eq!(normalized(&reply, NOW + 1), contacts(&[(1, 3600)]));
    }
    assert_eq!(f.lookup(AC_A, SIP_IDENTITY).len(), 1);
    assert!(f.lookup(AC_A, SIP_USERNAME).is_empty());
    assert_eq!(
        f.presence_of(AC_A, SIP_IDENTITY).status,
        PresenceStatus::Available
    );

    // A replayed nonce count, a wrong password, and another user's AOR.
    // nc 1 of this nonce was used above.
    let replay = digest_credentials(SIP_USERNAME, REALM, SIP_PASSWORD, &nonce, 1, false);
    let reply = f.send(&Reg::new(SIP_IDENTITY).cseq(9).auth(&replay), NOW + 2);
    assert_eq!((reply.code, reply.outcome), (401, Outcome::InvalidToken));
    assert_eq!(normalized(&reply, NOW + 2), challenge());

    let fresh = challenged_nonce(&f.send(&Reg::new(SIP_IDENTITY), NOW + 3));
    let wrong = digest_credentials(SIP_USERNAME, REALM, "not-the-password", &fresh, 1, false);
    let reply = f.send(&Reg::new(SIP_IDENTITY).cseq(10).auth(&wrong), NOW + 3);
    assert_eq!((reply.code, reply.outcome), (401, Outcome::InvalidToken));
    assert_eq!(normalized(&reply, NOW + 3), challenge());

    let good = digest_credentials(SIP_USERNAME, REALM, SIP_PASSWORD, &fresh, 1, true);
    let reply = f.send(&Reg::new("alice").cseq(11).auth(&good), NOW + 3);
    assert_eq!((reply.code, reply.outcome), (403, Outcome::Forbidden));
    assert!(reply.headers.is_empty());
    assert!(f.lookup(AC_A, "alice").is_empty());

    // Right password and a nonce of ours, but computed for (and naming) another realm:
    // never used, so the plain challenge and nothing changes.
    let fresh = challenged_nonce(&f.send(&Reg::new(SIP_IDENTITY), NOW + 4));
    let foreign = digest_credentials(
        SIP_USERNAME,
        "other.example",
        SIP_PASSWORD,
        &fresh,
        1,
        false,
    );
    let reply = f.send(
        &Reg::new(SIP_IDENTITY)
            .cseq(12)
            .expires(Some("0"))
            .auth(&foreign),
        NOW + 4,
    );
    assert_eq!((reply.code, reply.outcome), (401, Outcome::Challenge));
    assert_eq!(normalized(&reply, NOW + 4), challenge());
    assert_eq!(f.lookup(AC_A, SIP_IDENTITY).len(), 1, "binding still there");

    // The right password on a nonce past its 300 s: re-challenged with stale=true.
    let stale = digest_credentials(SIP_USERNAME, REALM, SIP_PASSWORD, &fresh, 2, false);
    let at = NOW + 4 + 301;
    let reply = f.send(&Reg::new(SIP_IDENTITY).cseq(13).auth(&stale), at);
    assert_eq!((reply.code, reply.outcome), (401, Outcome::Challenge));
    assert_eq!(
        normalized(&reply, at),
        challenge()
            .into_iter()
            .map(|(n, v)| if v.starts_with("Digest ") {
                (n, format!("{v}, stale=true"))
            } else {
                (n, v)
            })
            .collect::<Headers>()
    );

    // Expires 0 with good credentials removes it and the identity goes offline.
    let good = digest_credentials(SIP_USERNAME, REALM, SIP_PASSWORD, &fresh, 1, false);
    let reply = f.send(
        &Reg::new(SIP_IDENTITY)
            .cseq(14)
            .expires(Some("0"))
            .auth(&good),
        NOW + 5,
    );
    assert_eq!((reply.code, reply.outcome), (200, Outcome::Unregistered));
    assert!(reply.headers.is_empty());
    assert_eq!(
        f.presence_of(AC_A, SIP_IDENTITY),
        PresenceState {
            status: PresenceStatus::Offline,
            changed_at: Some(NOW + 5)
        }
    );
}

#[test]
fn a_token_is_used_even_beside_digest_credentials_for_another_realm() {
    let f = Fixture::new();
    let foreign = digest_credentials(SIP_USERNAME, "other.example", SIP_PASSWORD, "n", 1, false);
    let reply = f.send(
        &Reg::new("alice")
            .auth(&foreign)
            .auth(&format!("Bearer {}", token("alice"))),
        NOW,
    );
    assert_eq!((reply.code, reply.outcome), (200, Outcome::Ok), "{reply:?}");
    assert_eq!(reply.headers, contacts(&[(1, 3600)]));
}

/// RFC 3261 §10.3 step 3: the AOR must be in a domain served here (404 otherwise).
#[test]
fn aor_domain_must_be_served_here() {
    use Outcome::{BadRequest, Ok};
    let cases = vec![
        refused(
            "AOR in a foreign domain",
            Reg::bearer("alice", &token("alice")).hosts(REALM, "other.example"),
            404,
            BadRequest,
            none(),
        ),
        refused(
            "foreign domain in both Request-URI and AOR",
            Reg::bearer("alice", &token("alice")).hosts("other.example", "other.example"),
            404,
            BadRequest,
            none(),
        ),
        refused(
            "AOR at an IP the REGISTER was not sent to",
            Reg::bearer("alice", &token("alice")).hosts("192.0.2.1", "192.0.2.99"),
            404,
            BadRequest,
            none(),
        ),
        case(
            "the switch's IP as the client's domain",
            vec![step(
                Reg::bearer("alice", &token("alice")).hosts("192.0.2.1", "192.0.2.1"),
                200,
                Ok,
                contacts(&[(1, 3600)]),
            )],
        ),
        case(
            "realm in another case",
            vec![step(
                Reg::bearer("alice", &token("alice")).hosts(REALM, &REALM.to_uppercase()),
                200,
                Ok,
                contacts(&[(1, 3600)]),
            )],
        ),
    ];
    run(cases);
}

// ---------------------------------------------------------------------------------------
// RFC 5626 §5.3: a binding made over a stream connection ends when the connection closes
// ---------------------------------------------------------------------------------------

fn over(transport: Transport, conn: u64) -> Peer {
    Peer::stream(transport, ua_addr(), conn)
}

impl Fixture {
    /// `Registrar::connection_closed`, which never waits with the memory store.
    fn close(&self, conn: u64, now: u64) -> usize {
        crate::registrar::location::ready(self.registrar.connection_closed(conn, now))
    }

    /// Connections the registrar still lists bindings under.
    fn flows_listed(&self) -> Vec<u64> {
        let flows = self.registrar.flows.lock().unwrap();
        let mut conns: Vec<u64> = flows.keys().copied().collect();
        conns.sort_unstable();
        conns
    }
}

#[test]
fn a_closed_connection_ends_its_bindings_and_presence_goes_offline() {
    let f = Fixture::new();
    let ws = over(Transport::Ws, 7);
    let reply = f.send_from(&Reg::bearer("alice", &token("alice")), &ws, NOW);
    assert_eq!((reply.code, reply.outcome), (200, Outcome::Ok), "{reply:?}");
    assert_eq!(f.lookup(AC_A, "alice")[0].conn, Some(7));
    // Over UDP: no connection, nothing listed, untouched by any close.
    let reply = f.send(&Reg::bearer("bob", &token("bob")), NOW);
    assert_eq!((reply.code, reply.outcome), (200, Outcome::Ok), "{reply:?}");
    assert_eq!(f.flows_listed(), vec![7]);
    assert_eq!(
        f.presence_of(AC_A, "alice").status,
        PresenceStatus::Available
    );

    let mut changes = f.presence.subscribe();
    assert_eq!(f.close(7, NOW + 10), 1);
    assert!(f.lookup(AC_A, "alice").is_empty());
    assert_eq!(
        f.presence_of(AC_A, "alice"),
        PresenceState {
            status: PresenceStatus::Offline,
            changed_at: Some(NOW + 10)
        }
    );
    // Broadcast like any un-REGISTER's change, so presence callbacks hear of it.
    let change = changes.try_recv().expect("a presence change");
    assert_eq!(
        (&*change.identity, change.status, change.at),
        ("alice", PresenceStatus::Offline, NOW + 10)
    );
    assert!(changes.try_recv().is_err(), "one change only");
    assert_eq!(f.lookup(AC_A, "bob").len(), 1);
    assert_eq!(f.presence_of(AC_A, "bob").status, PresenceStatus::Available);
    assert_eq!(f.store.binding_count(), 1);
    // The entry went with the connection; a second close finds nothing.
    assert!(f.flows_listed().is_empty());
    assert_eq!(f.close(7, NOW + 11), 0);

    // Nothing of the removal stays behind: the client, reconnected, registers again with
    // the next CSeq of its Call-ID.
    let reply = f.send_from(
        &Reg::bearer("alice", &token("alice")).cseq(2),
        &over(Transport::Ws, 8),
        NOW + 20,
    );
    assert_eq!((reply.code, reply.outcome), (200, Outcome::Ok), "{reply:?}");
    assert_eq!(
        f.presence_of(AC_A, "alice").status,
        PresenceStatus::Available
    );
}

#[test]
fn a_binding_moved_to_another_flow_survives_the_old_connection_closing() {
    let f = Fixture::new();
    let reg = |cseq| Reg::bearer("alice", &token("alice")).cseq(cseq);
    // Registered over connection 1, then refreshed over connection 2 (the client
    // reconnected before the server saw the first connection close).
    assert_eq!(
        f.send_from(&reg(1), &over(Transport::Tcp, 1), NOW).code,
        200
    );
    assert_eq!(
        f.send_from(&reg(2), &over(Transport::Tcp, 2), NOW + 1).code,
        200
    );
    assert_eq!(f.flows_listed(), vec![1, 2]);
    assert_eq!(f.close(1, NOW + 2), 0);
    let left = f.lookup(AC_A, "alice");
    assert_eq!((left.len(), left[0].conn), (1, Some(2)));
    assert_eq!(
        f.presence_of(AC_A, "alice").status,
        PresenceStatus::Available
    );

    // Then refreshed over UDP: closing connection 2 leaves it too.
    assert_eq!(f.send(&reg(3), NOW + 3).code, 200);
    assert_eq!(f.close(2, NOW + 4), 0);
    assert_eq!(f.lookup(AC_A, "alice")[0].transport, Transport::Udp);
    assert_eq!(
        f.presence_of(AC_A, "alice").status,
        PresenceStatus::Available
    );
    assert!(f.flows_listed().is_empty());
}

#[test]
fn each_flow_of_an_instance_ends_with_its_own_connection() {
    let f = Fixture::new();
    let instance = "\"<urn:uuid:00000000-0000-4000-8000-000000000001>\"";
    let flow = |reg_id: u32| {
        Reg::bearer("alice", &token("alice"))
            .call_id(&format!("flow-{reg_id}@192.0.2.10"))
            .contacts(&[format!(
                "{};+sip.instance={instance};reg-id={reg_id}",
                contact_uri(1)
            )])
    };
    assert_eq!(
        f.send_from(&flow(1), &over(Transport::Tls, 11), NOW).code,
        200
    );
    assert_eq!(
        f.send_from(&flow(2), &over(Transport::Tls, 12), NOW).code,
        200
    );
    assert_eq!(f.lookup(AC_A, "alice").len(), 2);

    assert_eq!(f.close(11, NOW + 1), 1);
    let left = f.lookup(AC_A, "alice");
    assert_eq!((left.len(), left[0].reg_id), (1, Some(2)));
    assert_eq!(
        f.presence_of(AC_A, "alice").status,
        PresenceStatus::Available,
        "the other flow still reaches the client"
    );
    assert_eq!(f.close(12, NOW + 2), 1);
    assert_eq!(f.presence_of(AC_A, "alice").status, PresenceStatus::Offline);
}

#[test]
fn an_unregister_over_the_connection_unlists_it() {
    let f = Fixture::new();
    let reg = |cseq| Reg::bearer("alice", &token("alice")).cseq(cseq);
    let tcp = over(Transport::Tcp, 5);
    assert_eq!(f.send_from(&reg(1), &tcp, NOW).code, 200);
    assert_eq!(f.flows_listed(), vec![5]);
    let reply = f.send_from(&reg(2).expires(Some("0")), &tcp, NOW + 1);
    assert_eq!((reply.code, reply.outcome), (200, Outcome::Unregistered));
    assert!(f.flows_listed().is_empty(), "nothing left to end");
}

#[test]
fn a_register_stored_after_its_connection_closed_ends_at_once() {
    let f = Fixture::new();
    // The transport has already forgotten connection 9 (its close was handled before
    // this REGISTER, read from it earlier, reached the registrar).
    f.registrar.set_flow_probe(|conn| conn != 9);
    let reply = f.send_from(
        &Reg::bearer("alice", &token("alice")),
        &over(Transport::Tcp, 9),
        NOW,
    );
    assert_eq!(reply.code, 200);
    assert!(f.lookup(AC_A, "alice").is_empty());
    assert_eq!(f.presence_of(AC_A, "alice").status, PresenceStatus::Offline);
    assert!(f.flows_listed().is_empty());
    // An open connection keeps its binding.
    let reply = f.send_from(
        &Reg::bearer("alice", &token("alice")).cseq(2),
        &over(Transport::Tcp, 10),
        NOW,
    );
    assert_eq!(reply.code, 200);
    assert_eq!(f.lookup(AC_A, "alice").len(), 1);
    assert_eq!(f.flows_listed(), vec![10]);
}
