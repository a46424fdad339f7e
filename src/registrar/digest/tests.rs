use super::hash::{Algorithm, ResponseInputs};
use super::nonce::{NONCE_CHARS, NONCE_TTL_SECS, NonceKey};
use super::*;
use crate::config::SipUser;
use crate::sip::msg::typed::Challenge;

const REALM: &str = "switchboard.test";
const URI: &str = "sip:switchboard.test";
const T0: u64 = 1_700_000_000;
/// Secret for the known-answer vectors: bytes 0x00..=0x1f.
const SECRET: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8;
        i += 1;
    }
    s
};

fn user(username: &str, password: Option<&str>, ha1: Option<&str>) -> SipUser {
    SipUser {
        username: username.to_owned(),
        password: password.map(str::to_owned),
        ha1: ha1.map(str::to_owned),
        identity: format!("{username}-id"),
        account: "AC00000000000000000000000000000001".to_owned(),
    }
}

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.server.realm = REALM.to_owned();
    cfg.sip_users = vec![
        user("alice", Some("wonderland"), None),
        // md5("bob:switchboard.test:builder"), computed with python3 hashlib.
        user("bob", None, Some("7365227DD28A0BFA5FEAA4DDE42702CD")),
    ];
    cfg
}

fn auth() -> DigestAuth {
    DigestAuth::new(&config(), SECRET)
}

/// A client's Authorization parameters, built field by field so tests can drop or change one.
#[derive(Clone)]
struct Creds {
    fields: Vec<(&'static str, String)>,
}

impl Creds {
    /// Correct credentials computed from a password with our own (KAT-checked) hashing.
    fn new(alg: Algorithm, username: &str, password: &str, nonce: &str, nc: &str) -> Creds {
        let ha1 = alg.ha1(username, REALM, password);
        Self::from_ha1(alg, username, &ha1, nonce, nc)
    }

    fn from_ha1(alg: Algorithm, username: &str, ha1: &Hex, nonce: &str, nc: &str) -> Creds {
        let cnonce = "0a4f113b";
        let response = alg
            .response(
                ha1,
                &ResponseInputs {
                    method: "REGISTER",
                    uri: URI,
                    nonce,
                    nc,
                    cnonce,
                    qop: "auth",
                },
            )
            .hex();
        let mut fields = vec![
            ("username", q(username)),
            ("realm", q(REALM)),
            ("nonce", q(nonce)),
            ("uri", q(URI)),
            ("response", q(response.as_str())),
            ("qop", "auth".to_owned()),
            ("nc", nc.to_owned()),
            ("cnonce", q(cnonce)),
        ];
        if alg == Algorithm::Sha256 {
            fields.push(("algorithm", "SHA-256".to_owned()));
        }
        Creds { fields }
    }

    fn without(mut self, name: &str) -> Creds {
        self.fields.retain(|(n, _)| *n != name);
        self
    }

    fn set(mut self, name: &'static str, value: &str) -> Creds {
        self.fields.retain(|(n, _)| *n != name);
        self.fields.push((name, value.to_owned()));
        self
    }

    fn text(&self) -> String {
        self.fields
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn verify(&self, auth: &DigestAuth, now: u64) -> Result<DigestUser, DigestError> {
        let text = self.text();
        auth.verify("REGISTER", URI, &AuthParams(&text), now)
    }
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn nonce_of(auth: &DigestAuth, now: u64) -> String {
    let ch = auth.challenges(now, false);
    let c = Challenge::parse(&ch[0]).expect("challenge parses");
    c.params.get("nonce").expect("nonce").to_owned()
}

// Known answers, computed independently with python3 (hashlib, hmac, base64):
//   H = hashlib.md5 / hashlib.sha256, hexdigest
//   HA1 = H("username:realm:password"), HA2 = H("method:uri")
//   response = H(f"{HA1}:{nonce}:{nc}:{cnonce}:auth:{HA2}")
// The RFC 7616 §3.9.1 inputs reproduce the RFC's own answers.
#[test]
fn known_answer_rfc7616_example() {
    let inputs = ResponseInputs {
        method: "GET",
        uri: "/dir/index.html",
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        nc: "00000001",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        qop: "auth",
    };
    let md5 = Algorithm::Md5.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
    assert_eq!(
        Algorithm::Md5.response(&md5, &inputs).hex().as_str(),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    let sha = Algorithm::Sha256.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
    assert_eq!(
        Algorithm::Sha256.response(&sha, &inputs).hex().as_str(),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

// End to end, nonce included. python3:
//   body = struct.pack(">QQ", 1700000000, 0x0123456789abcdef)
//   tag = hmac.new(bytes(range(32)), body + b"switchboard.test", sha256).digest()[:16]
//   nonce = urlsafe_b64encode(body + tag).rstrip("=")
//         = "AAAAAGVT8QABI0VniavN7_ClIp5odvbjNSRxgfQh68A"
//   user alice, password wonderland, realm switchboard.test, REGISTER sip:switchboard.test,
//   nc 00000001, cnonce 0a4f113b, qop auth:
//   MD5     HA1 d1771b25f7364afa0182a3d7b0ecec65      response 3a206c5c79d642915a7b539ae705eec9
//   SHA-256 HA1 0800046ef69044cd1345941a2c28eb9f96e5678f95306f6406b0a0f5e0a3acbf
//           response 6ac3eb209c133164fc7f5a0daaee1beb0de9d2917b7011271c1fe0f6fcc2aad8
#[test]
fn known_answer_end_to_end() {
    const NONCE: &str = "AAAAAGVT8QABI0VniavN7_ClIp5odvbjNSRxgfQh68A";
    assert_eq!(
        NonceKey::new(&SECRET, REALM).mint_with(T0, 0x0123_4567_89ab_cdef),
        NONCE
    );
    assert_eq!(
        Algorithm::Md5.ha1("alice", REALM, "wonderland").as_str(),
        "d1771b25f7364afa0182a3d7b0ecec65"
    );
    assert_eq!(
        Algorithm::Sha256.ha1("alice", REALM, "wonderland").as_str(),
        "0800046ef69044cd1345941a2c28eb9f96e5678f95306f6406b0a0f5e0a3acbf"
    );
    let header = |response: &str, alg: &str| {
        format!(
            "username=\"alice\", realm=\"switchboard.test\", nonce=\"{NONCE}\", \
             uri=\"sip:switchboard.test\", response=\"{response}\", qop=auth, nc=00000001, \
             cnonce=\"0a4f113b\"{alg}"
        )
    };
    let alice = DigestUser {
        username: "alice".into(),
        identity: "alice-id".into(),
        account: "AC00000000000000000000000000000001".into(),
    };
    let md5 = header("3a206c5c79d642915a7b539ae705eec9", "");
    assert_eq!(
        auth().verify("REGISTER", URI, &AuthParams(&md5), T0 + 10),
        Ok(alice.clone())
    );
    let md5 = header("3a206c5c79d642915a7b539ae705eec9", ", algorithm=MD5");
    assert_eq!(
        auth().verify("REGISTER", URI, &AuthParams(&md5), T0 + 10),
        Ok(alice.clone())
    );
    let sha = header(
        "6ac3eb209c133164fc7f5a0daaee1beb0de9d2917b7011271c1fe0f6fcc2aad8",
        ", algorithm=SHA-256",
    );
    assert_eq!(
        auth().verify("REGISTER", URI, &AuthParams(&sha), T0 + 10),
        Ok(alice)
    );
    // Uppercase hex in the response is the same number.
    let upper = header("3A206C5C79D642915A7B539AE705EEC9", "");
    assert!(
        auth()
            .verify("REGISTER", URI, &AuthParams(&upper), T0)
            .is_ok()
    );
    // Another method changes HA2.
    assert_eq!(
        auth().verify("INVITE", URI, &AuthParams(&md5), T0),
        Err(DigestError::BadCredentials)
    );
}

#[test]
fn password_user_both_algorithms() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let ok = Creds::new(Algorithm::Sha256, "alice", "wonderland", &n, "00000001").verify(&a, T0);
    assert_eq!(ok.map(|u| u.identity), Ok("alice-id".to_owned()));
    let n = nonce_of(&a, T0);
    let ok = Creds::new(Algorithm::Md5, "alice", "wonderland", &n, "00000001").verify(&a, T0);
    assert_eq!(ok.map(|u| u.username), Ok("alice".to_owned()));
}

#[test]
fn ha1_user_md5_only() {
    let a = auth();
    assert!(a.has_users());
    // The configured ha1 (uppercase there) is used as lowercase hex, so the client's
    // password-derived HA1 matches.
    let n = nonce_of(&a, T0);
    let ok = Creds::new(Algorithm::Md5, "bob", "builder", &n, "00000001").verify(&a, T0);
    assert_eq!(ok.map(|u| u.identity), Ok("bob-id".to_owned()));
    // SHA-256 from an ha1-only user cannot be checked: same answer as a wrong password.
    let n = nonce_of(&a, T0);
    let sha = Creds::new(Algorithm::Sha256, "bob", "builder", &n, "00000001").verify(&a, T0);
    assert_eq!(sha, Err(DigestError::BadCredentials));
}

#[test]
fn wrong_password_and_unknown_user_look_alike() {
    let a = auth();
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let n = nonce_of(&a, T0);
        let wrong = Creds::new(alg, "alice", "guess", &n, "00000001").verify(&a, T0);
        let unknown = Creds::new(alg, "mallory", "wonderland", &n, "00000001").verify(&a, T0);
        let empty = Creds::new(alg, "", "", &n, "00000001").verify(&a, T0);
        assert_eq!(wrong, Err(DigestError::BadCredentials));
        assert_eq!(unknown, wrong);
        assert_eq!(empty, wrong);
    }
    // A client that somehow knows the dummy HA1 still gets nowhere.
    let n = nonce_of(&a, T0);
    let dummy = a.dummy_md5;
    let c = Creds::from_ha1(Algorithm::Md5, "mallory", &dummy, &n, "00000001");
    assert_eq!(c.verify(&a, T0), Err(DigestError::BadCredentials));
    let c = Creds::from_ha1(Algorithm::Md5, "", &dummy, &n, "00000001");
    assert_eq!(c.verify(&a, T0), Err(DigestError::BadCredentials));
}

#[test]
fn stale_after_lifetime() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let at = |nc: &str, now: u64| {
        Creds::new(Algorithm::Md5, "alice", "wonderland", &n, nc).verify(&a, now)
    };
    assert!(at("00000001", T0 + NONCE_TTL_SECS).is_ok());
    assert_eq!(
        at("00000002", T0 + NONCE_TTL_SECS + 1),
        Err(DigestError::Stale)
    );
    assert_eq!(at("00000003", T0 + 10_000), Err(DigestError::Stale));
    // A wrong password is never told "stale" (RFC 7616: only with a valid digest).
    let wrong = Creds::new(Algorithm::Md5, "alice", "guess", &n, "00000004");
    assert_eq!(
        wrong.verify(&a, T0 + NONCE_TTL_SECS + 1),
        Err(DigestError::BadCredentials)
    );
    // A nonce from far in the future (clock stepped back) is stale too, never accepted.
    let later = nonce_of(&a, T0 + 1_000);
    let c = Creds::new(Algorithm::Md5, "alice", "wonderland", &later, "00000001");
    assert_eq!(c.verify(&a, T0), Err(DigestError::Stale));
}

#[test]
fn forged_or_tampered_nonce_is_never_stale() {
    let a = auth();
    let check = |nonce: &str, now: u64| {
        let r =
            Creds::new(Algorithm::Md5, "alice", "wonderland", nonce, "00000001").verify(&a, now);
        assert!(
            matches!(r, Err(DigestError::BadCredentials | DigestError::Malformed)),
            "{nonce}: {r:?}"
        );
    };
    let good = nonce_of(&a, T0);
    assert_eq!(good.len(), NONCE_CHARS);
    // Flip each character in turn (the timestamp, the random part and the tag).
    for i in 0..good.len() {
        let mut b = good.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        check(std::str::from_utf8(&b).unwrap(), T0);
    }
    // Minted under another secret (another process), old or new: never stale.
    let other = NonceKey::new(&[7u8; 32], REALM);
    check(&other.mint(T0), T0);
    check(&other.mint(T0 - 10_000), T0);
    // Minted for another realm with our secret.
    check(&NonceKey::new(&SECRET, "other.realm").mint(T0), T0);
    // Not our shape at all.
    for bad in [
        "",
        "abc",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        &good[..42],
    ] {
        check(bad, T0);
    }
    check(&format!("{good}A"), T0);
    let padded = format!("{good}=");
    check(&padded, T0);
}

#[test]
fn nonce_count_must_grow() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let v = |nc: &str| Creds::new(Algorithm::Md5, "alice", "wonderland", &n, nc).verify(&a, T0);
    assert!(v("00000001").is_ok());
    assert_eq!(v("00000001"), Err(DigestError::Replay));
    assert!(v("00000002").is_ok());
    assert_eq!(v("00000001"), Err(DigestError::Replay));
    assert_eq!(v("00000002"), Err(DigestError::Replay));
    assert!(v("0000000a").is_ok());
    assert!(v("0000000B").is_ok());
    assert_eq!(v("00000009"), Err(DigestError::Replay));
    // A failed attempt does not advance the count.
    let wrong = Creds::new(Algorithm::Md5, "alice", "guess", &n, "00000100");
    assert_eq!(wrong.verify(&a, T0), Err(DigestError::BadCredentials));
    assert!(v("00000020").is_ok());
    // Each nonce has its own count.
    let n2 = nonce_of(&a, T0);
    assert_ne!(n, n2);
    let c = Creds::new(Algorithm::Md5, "alice", "wonderland", &n2, "00000001");
    assert!(c.verify(&a, T0).is_ok());
}

#[test]
fn replay_table_is_bounded_and_pruned() {
    let a = auth();
    let use_nonce = |n: &str, nc: &str, now: u64| {
        Creds::new(Algorithm::Md5, "alice", "wonderland", n, nc).verify(&a, now)
    };
    // Expired nonces are swept.
    for i in 0..10 {
        let n = nonce_of(&a, T0 + i);
        assert!(use_nonce(&n, "00000001", T0 + i).is_ok());
    }
    assert_eq!(a.replay.lock().unwrap().len(), 10);
    let n = nonce_of(&a, T0 + 1_000);
    assert!(use_nonce(&n, "00000001", T0 + 1_000).is_ok());
    assert_eq!(a.replay.lock().unwrap().len(), 1);

    // Full of live nonces: the oldest are forgotten and answered as stale, never re-accepted.
    let a = auth();
    a.replay.lock().unwrap().cap = 8;
    let nonces: Vec<String> = (0..8).map(|i| nonce_of(&a, T0 + i)).collect();
    for n in &nonces {
        assert!(use_nonce_on(&a, n, "00000001", T0 + 10).is_ok());
    }
    let newest = nonce_of(&a, T0 + 20);
    assert!(use_nonce_on(&a, &newest, "00000001", T0 + 20).is_ok());
    assert!(a.replay.lock().unwrap().len() <= 8);
    assert_eq!(
        use_nonce_on(&a, &nonces[0], "00000001", T0 + 20),
        Err(DigestError::Stale)
    );
    assert_eq!(
        use_nonce_on(&a, &nonces[0], "00000002", T0 + 20),
        Err(DigestError::Stale)
    );
    // Still remembered ones keep their counts.
    assert_eq!(
        use_nonce_on(&a, &nonces[7], "00000001", T0 + 20),
        Err(DigestError::Replay)
    );
    assert!(use_nonce_on(&a, &nonces[7], "00000002", T0 + 20).is_ok());
    // A fresh nonce still works.
    let fresh = nonce_of(&a, T0 + 30);
    assert!(use_nonce_on(&a, &fresh, "00000001", T0 + 30).is_ok());
}

fn use_nonce_on(a: &DigestAuth, n: &str, nc: &str, now: u64) -> Result<DigestUser, DigestError> {
    Creds::new(Algorithm::Md5, "alice", "wonderland", n, nc).verify(a, now)
}

#[test]
fn wrong_realm_is_refused_before_use() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let good = Creds::new(Algorithm::Md5, "alice", "wonderland", &n, "00000001");
    for realm in [
        "\"other.realm\"",
        "\"SWITCHBOARD.TEST\"",
        "\"\"",
        "\"switchboard.test \"",
    ] {
        assert_eq!(
            good.clone().set("realm", realm).verify(&a, T0),
            Err(DigestError::WrongRealm),
            "{realm}"
        );
    }
    // Unquoted but equal is still our realm.
    assert!(good.set("realm", REALM).verify(&a, T0).is_ok());
}

#[test]
fn uri_must_match_exactly() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let c = Creds::new(Algorithm::Md5, "alice", "wonderland", &n, "00000001");
    for uri in [
        "sip:other.test",
        "sip:switchboard.test;transport=tcp",
        "SIP:switchboard.test",
        "",
    ] {
        let text = c.text();
        assert_eq!(
            a.verify("REGISTER", uri, &AuthParams(&text), T0),
            Err(DigestError::UriMismatch),
            "{uri}"
        );
    }
    assert!(c.verify(&a, T0).is_ok());
}

#[test]
fn missing_or_bad_fields_are_malformed() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let good = Creds::new(Algorithm::Md5, "alice", "wonderland", &n, "00000001");
    for name in [
        "username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce",
    ] {
        assert_eq!(
            good.clone().without(name).verify(&a, T0),
            Err(DigestError::Malformed),
            "{name}"
        );
    }
    let bad = [
        ("qop", "auth-int"),
        ("qop", "\"auth,auth-int\""),
        ("nc", "1"),
        ("nc", "000000001"),
        ("nc", "0000000g"),
        ("nc", "00000000"),
        ("nc", "+0000001"),
        ("cnonce", "\"\""),
        ("response", "\"abc\""),
        ("response", "\"zz06ddd4ee5f8e1b5bd1e1df8f0e8b3d\""),
        // A SHA-256-length response for MD5.
        (
            "response",
            "\"6ac3eb209c133164fc7f5a0daaee1beb0de9d2917b7011271c1fe0f6fcc2aad8\"",
        ),
    ];
    for (name, value) in bad {
        assert_eq!(
            good.clone().set(name, value).verify(&a, T0),
            Err(DigestError::Malformed),
            "{name}={value}"
        );
    }
    // RFC 2069 style: no qop, nc, cnonce.
    let old = good.clone().without("qop").without("nc").without("cnonce");
    assert_eq!(old.verify(&a, T0), Err(DigestError::Malformed));
    assert_eq!(
        a.verify("REGISTER", URI, &AuthParams(""), T0),
        Err(DigestError::Malformed)
    );
    // qop token case does not matter when the hash agrees.
    assert!(good.verify(&a, T0).is_ok());
}

#[test]
fn unsupported_algorithms() {
    let a = auth();
    let n = nonce_of(&a, T0);
    let good = Creds::new(Algorithm::Md5, "alice", "wonderland", &n, "00000001");
    for alg in ["MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA-1", "\"\""] {
        assert_eq!(
            good.clone().set("algorithm", alg).verify(&a, T0),
            Err(DigestError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    assert!(good.set("algorithm", "md5").verify(&a, T0).is_ok());
}

#[test]
fn challenges_parse_back_and_work() {
    let a = auth();
    let ch = a.challenges(T0, false);
    assert_eq!(ch.len(), 2);
    let mut nonce = None;
    for (value, alg) in ch.iter().zip(["SHA-256", "MD5"]) {
        let c = Challenge::parse(value).expect("parses");
        assert_eq!(c.scheme, "Digest");
        assert_eq!(c.params.get("realm"), Some(REALM));
        assert_eq!(c.params.get("qop"), Some("auth"));
        assert!(value.contains("qop=\"auth\""), "{value}");
        assert_eq!(c.params.get("algorithm"), Some(alg));
        assert_eq!(c.params.get("stale"), None);
        let n = c.params.get("nonce").expect("nonce");
        assert_eq!(n.len(), NONCE_CHARS);
        assert_eq!(*nonce.get_or_insert(n), n, "one nonce for both");
    }
    // A client answering each challenge gets in.
    for value in &ch {
        let c = Challenge::parse(value).unwrap();
        let alg = Algorithm::parse(c.params.get("algorithm")).unwrap();
        let n = c.params.get("nonce").unwrap();
        let nc = if alg == Algorithm::Sha256 {
            "00000001"
        } else {
            "00000002"
        };
        assert!(
            Creds::new(alg, "alice", "wonderland", n, nc)
                .verify(&a, T0 + 1)
                .is_ok()
        );
    }
    for value in a.challenges(T0, true) {
        let c = Challenge::parse(&value).unwrap();
        assert_eq!(c.params.get("stale"), Some("true"));
    }
    // Fresh nonce every time.
    assert_ne!(nonce_of(&a, T0), nonce_of(&a, T0));
}

#[test]
fn realm_needing_escapes_round_trips() {
    let mut cfg = config();
    cfg.server.realm = r#"odd "realm" \ here"#.to_owned();
    let a = DigestAuth::new(&cfg, SECRET);
    let ch = a.challenges(T0, false);
    let c = Challenge::parse(&ch[1]).unwrap();
    let realm = c.params.get("realm").unwrap();
    assert_eq!(unquote(realm), cfg.server.realm);
    let n = c.params.get("nonce").unwrap();
    // The client echoes the realm as it received it (escaped) and hashes the unescaped one.
    let ha1 = Algorithm::Md5.ha1("alice", &cfg.server.realm, "wonderland");
    let creds = Creds::from_ha1(Algorithm::Md5, "alice", &ha1, n, "00000001")
        .set("realm", &format!("\"{realm}\""));
    assert!(creds.verify(&a, T0).is_ok());
}

#[test]
fn users_without_credentials_are_skipped() {
    let mut cfg = config();
    cfg.sip_users = vec![
        user("carol", None, None),
        user("dave", None, Some("not-hex")),
        user("alice", Some("wonderland"), None),
        user("alice", Some("other"), None),
    ];
    let a = DigestAuth::new(&cfg, SECRET);
    assert!(a.has_users());
    assert_eq!(a.users.len(), 1);
    let n = nonce_of(&a, T0);
    assert!(
        Creds::new(Algorithm::Md5, "alice", "wonderland", &n, "00000001")
            .verify(&a, T0)
            .is_ok()
    );
    let c = Creds::from_ha1(Algorithm::Md5, "dave", &a.dummy_md5, &n, "00000002");
    assert_eq!(c.verify(&a, T0), Err(DigestError::BadCredentials));
    assert!(!DigestAuth::new(&Config::default(), SECRET).has_users());
    assert!(!format!("{a:?}").contains("wonderland"));
}

#[test]
fn error_classes_are_distinct_and_stable() {
    use DigestError::*;
    let all = [
        Malformed,
        WrongRealm,
        BadCredentials,
        Stale,
        Replay,
        UnsupportedAlgorithm,
        UriMismatch,
    ];
    let classes: std::collections::HashSet<_> = all.iter().map(|e| e.class()).collect();
    assert_eq!(classes.len(), all.len());
    assert_eq!(BadCredentials.class(), "bad_credentials");
    assert_eq!(Stale.class(), "stale");
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DigestAuth>();
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ -~]{0,80}",
            "\"[ -~]{0,80}\"?",
            "[0-9a-fA-F]{0,70}",
            "[A-Za-z0-9_-]{40,45}",
            Just(REALM.to_owned()),
            Just(format!("\"{REALM}\"")),
            Just(URI.to_owned()),
            Just("auth".to_owned()),
            Just("SHA-256".to_owned()),
            Just("00000001".to_owned()),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "qop",
                "nc",
                "cnonce",
                "algorithm",
                "opaque",
                "userhash",
                "USERNAME",
            ])
            .prop_map(str::to_owned),
            "[ -~]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_text(s in any::<String>(), method in "[ -~]{0,10}", uri in any::<String>(), now in any::<u64>()) {
            let a = auth();
            let _ = a.verify(&method, &uri, &AuthParams(&s), now);
        }

        #[test]
        fn arbitrary_fields(
            fields in prop::collection::vec((name(), value()), 0..12),
            real_nonce in any::<bool>(),
            now in prop_oneof![Just(T0), any::<u64>()],
            issued in prop_oneof![Just(T0), Just(0u64), Just(u64::MAX), any::<u64>()],
        ) {
            let a = auth();
            let mut text = fields
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            if real_nonce {
                text.push_str(&format!(", nonce=\"{}\"", nonce_of(&a, issued)));
            }
            let r = a.verify("REGISTER", URI, &AuthParams(&text), now);
            // Without the password nothing random gets in.
            prop_assert!(r.is_err());
            let _ = a.challenges(now, true);
        }
    }
}
