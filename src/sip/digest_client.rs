//! The UAC side of SIP Digest authentication: answering a 401 `WWW-Authenticate` or 407
//! `Proxy-Authenticate` challenge from a carrier trunk (RFC 3261 §22.2, RFC 2617 §3.2.2,
//! RFC 7616 §3.4, RFC 8760 for SHA-256 in SIP).
//!
//! Sans-IO like the rest of `sip`: the caller supplies the cnonce (random) and the nonce
//! count (`nc`, per nonce, starting at 1), so answers are reproducible in tests.
//!
//! Scope, and why:
//! - `MD5` and `SHA-256` only (absent `algorithm` means MD5, RFC 7616 §3.3). The `-sess`
//!   variants, `SHA-512-256` and unknown names get no answer: a wrong guess would only earn
//!   another challenge, and we would rather say plainly that we cannot answer.
//! - `qop=auth`, or no `qop` at all (RFC 2069 compatibility, still met on old gear). A
//!   challenge that offers only `auth-int` gets no answer: we do not hash bodies.
//! - The answer carries the realm of the challenge. Before answering, the caller checks it
//!   against the trunk's configured realm ([`challenge_realm`]): credentials must never be
//!   given to whoever asks (CVE-2021-41158, the FreeSWITCH digest leak).

use std::borrow::Cow;
use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::msg::typed::{AuthParams, Challenge, quote, unquote};

/// A digest algorithm we can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The challenge's `algorithm` parameter; absent means MD5 (RFC 7616 §3.3).
    fn parse(value: Option<&str>) -> Option<Algorithm> {
        match value {
            None => Some(Algorithm::Md5),
            Some(v) if v.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(v) if v.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// The token written back in the credentials.
    const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of `H(parts[0] ":" parts[1] ":" ...)`.
    fn hash(self, parts: &[&str]) -> String {
        fn run<D: sha2::Digest>(mut d: D, parts: &[&str]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            let raw = d.finalize();
            let mut hex = String::with_capacity(raw.len() * 2);
            for b in raw.iter() {
                // Writing to a String cannot fail.
                let _ = write!(hex, "{b:02x}");
            }
            hex
        }
        match self {
            Algorithm::Md5 => run(Md5::new(), parts),
            Algorithm::Sha256 => run(Sha256::new(), parts),
        }
    }
}

/// What a challenge asks for, read from its parameters (quoted-pair escapes undone).
struct Parsed<'a> {
    realm: Cow<'a, str>,
    nonce: Cow<'a, str>,
    opaque: Option<Cow<'a, str>>,
    algorithm: Algorithm,
    /// `true` for `qop=auth`, `false` when the challenge has no `qop` (RFC 2069).
    qop_auth: bool,
}

impl<'a> Parsed<'a> {
    fn read(challenge: &'a str) -> Option<Parsed<'a>> {
        let params = digest_params(challenge)?;
        let algorithm = Algorithm::parse(params.get("algorithm"))?;
        let qop_auth = match params.get("qop") {
            None => false,
            // A list such as "auth,auth-int" (RFC 2617 §3.2.1): answer with auth if offered.
            Some(list) => {
                if list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    true
                } else {
                    return None;
                }
            }
        };
        Some(Parsed {
            realm: unquote(params.get("realm")?),
            nonce: unquote(params.get("nonce")?),
            opaque: params.get("opaque").map(unquote),
            algorithm,
            qop_auth,
        })
    }
}

/// The parameters of a `Digest` challenge, or `None` for another scheme.
fn digest_params(challenge: &str) -> Option<AuthParams<'_>> {
    let c = Challenge::parse(challenge)?;
    c.scheme.eq_ignore_ascii_case("Digest").then_some(c.params)
}

/// The `realm` of a `Digest` challenge (quoted-pair escapes undone), so the caller can
/// compare it with the realm configured for the peer before answering; `None` if the
/// value is not a Digest challenge or names no realm.
pub fn challenge_realm(challenge: &str) -> Option<String> {
    let params = digest_params(challenge)?;
    Some(unquote(params.get("realm")?).into_owned())
}

/// Whether [`authorization`] can answer this challenge (a Digest challenge with realm and
/// nonce, an algorithm and a qop we support). A 401 may carry several challenges, SHA-256
/// first (RFC 8760 §2.4): answer the first one this accepts.
pub fn supported(challenge: &str) -> bool {
    Parsed::read(challenge).is_some()
}

/// The `Authorization` (answering a 401) or `Proxy-Authorization` (answering a 407)
/// header value for a request with this `method` and Request-URI `uri` (RFC 3261 §22.4:
/// the `uri` parameter is the Request-URI, written exactly as in the request line).
///
/// `cnonce` is the client nonce (random, chosen by the caller) and `nc` the number of
/// requests already answered with this nonce, plus one (RFC 7616 §3.4: starts at 1). Both
/// are left out of the answer when the challenge has no `qop`.
///
/// `None` when the challenge cannot be answered: not Digest, no realm or nonce, an
/// algorithm other than MD5/SHA-256, a `qop` list without `auth`, or, with `qop`, an empty
/// `cnonce` or `nc == 0`.
pub fn authorization(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let c = Parsed::read(challenge)?;
    let alg = c.algorithm;
    let ha1 = alg.hash(&[username, &c.realm, password]);
    let ha2 = alg.hash(&[method, uri]);
    let nc_text = format!("{nc:08x}");
    let response = if c.qop_auth {
        if cnonce.is_empty() || nc == 0 {
            return None;
        }
        // RFC 7616 §3.4.1: H(HA1:nonce:nc:cnonce:qop:HA2).
        alg.hash(&[&ha1, &c.nonce, &nc_text, cnonce, "auth", &ha2])
    } else {
        // RFC 2069 (RFC 2617 §3.2.2.1 without qop): H(HA1:nonce:HA2).
        alg.hash(&[&ha1, &c.nonce, &ha2])
    };

    let mut out = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm={}",
        quote(username),
        quote(&c.realm),
        quote(&c.nonce),
        quote(uri),
        alg.name(),
    );
    if c.qop_auth {
        // qop and nc are tokens, unquoted in credentials (RFC 2617 §3.2.2).
        let _ = write!(
            out,
            ", cnonce=\"{}\", qop=auth, nc={nc_text}",
            quote(cnonce)
        );
    }
    if let Some(opaque) = &c.opaque {
        // Returned unchanged (RFC 7616 §3.3), whatever it means to the server.
        let _ = write!(out, ", opaque=\"{}\"", quote(opaque));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, SipUser};
    use crate::registrar::digest::{DigestAuth, DigestError};
    use crate::sip::msg::typed::Credentials;

    /// The credential parameters of an answer.
    fn params(answer: &str) -> AuthParams<'_> {
        match Credentials::parse(answer) {
            Some(Credentials::Digest(p)) => p,
            other => panic!("not Digest credentials: {other:?}"),
        }
    }

    /// RFC 2617 §3.5: the Mufasa example (qop offered as a list, MD5 by default).
    #[test]
    fn rfc2617_example() {
        let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let answer = authorization(
            challenge,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
            1,
        )
        .expect("answerable");
        assert_eq!(
            answer,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, \
             cnonce=\"0a4f113b\", qop=auth, nc=00000001, \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        assert_eq!(
            challenge_realm(challenge).as_deref(),
            Some("testrealm@host.com")
        );
    }

    /// RFC 7616 §3.9.1: the same exchange with SHA-256, and with explicit MD5.
    #[test]
    fn rfc7616_examples() {
        let challenge = |alg: &str| {
            format!(
                "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n \
                 algorithm={alg},\r\n nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            )
        };
        let answer = |alg: &str| {
            authorization(
                &challenge(alg),
                "GET",
                "/dir/index.html",
                "Mufasa",
                "Circle of Life",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                1,
            )
            .expect("answerable")
        };
        let sha = answer("SHA-256");
        let p = params(&sha);
        assert_eq!(
            p.get("response"),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert_eq!(p.get("algorithm"), Some("SHA-256"));
        assert_eq!(p.get("qop"), Some("auth"));
        assert_eq!(p.get("nc"), Some("00000001"));
        assert_eq!(
            p.get("opaque"),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        let md5 = answer("MD5");
        assert_eq!(
            params(&md5).get("response"),
            Some("8ca523f5e9506fed4657c9700eebdbec")
        );
        assert_eq!(params(&md5).get("algorithm"), Some("MD5"));
    }

    /// No qop: the RFC 2069 response, and no cnonce/nc/qop in the answer. Expected value
    /// computed with python3 hashlib: md5(HA1:nonce:HA2).
    #[test]
    fn without_qop() {
        let answer = authorization(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "",
            0,
        )
        .expect("answerable");
        let p = params(&answer);
        assert_eq!(p.get("response"), Some("670fd8c2df070c60b045671b8b24ff02"));
        assert_eq!(p.get("qop"), None);
        assert_eq!(p.get("cnonce"), None);
        assert_eq!(p.get("nc"), None);
        assert_eq!(p.get("opaque"), None);
    }

    #[test]
    fn refused_challenges() {
        let base = "realm=\"r\", nonce=\"n\"";
        let ask = |c: &str| authorization(c, "INVITE", "sip:x@y", "u", "p", "c", 1);
        for alg in ["MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA1", ""] {
            let c = format!("Digest {base}, qop=\"auth\", algorithm={alg}");
            assert_eq!(ask(&c), None, "{alg}");
            assert!(!supported(&c), "{alg}");
        }
        assert_eq!(ask(&format!("Digest {base}, qop=\"auth-int\"")), None);
        assert_eq!(ask(&format!("Digest {base}, qop=\"auth-conf\"")), None);
        assert_eq!(ask("Digest realm=\"r\", qop=\"auth\""), None, "no nonce");
        assert_eq!(ask("Digest nonce=\"n\", qop=\"auth\""), None, "no realm");
        assert_eq!(ask(&format!("Bearer {base}")), None);
        assert_eq!(challenge_realm(&format!("Bearer {base}")), None);
        assert_eq!(ask(""), None);
        // With qop, a cnonce and a nonzero count are required.
        let c = format!("Digest {base}, qop=\"auth\"");
        assert!(supported(&c));
        assert_eq!(
            authorization(&c, "INVITE", "sip:x@y", "u", "p", "", 1),
            None
        );
        assert_eq!(
            authorization(&c, "INVITE", "sip:x@y", "u", "p", "c", 0),
            None
        );
        // Case of the scheme and algorithm does not matter.
        assert!(supported(&format!("digest {base}, algorithm=sha-256")));
    }

    #[test]
    fn escapes_round_trip() {
        // A realm with a quoted-pair: hashed unescaped, written escaped.
        let challenge = r#"Digest realm="a\"b", nonce="n", qop="auth""#;
        assert_eq!(challenge_realm(challenge).as_deref(), Some("a\"b"));
        let answer = authorization(challenge, "INVITE", "sip:x", "u\\v", "pw", "c", 0x1a)
            .expect("answerable");
        assert!(answer.contains(r#"realm="a\"b""#), "{answer}");
        assert!(answer.contains(r#"username="u\\v""#), "{answer}");
        assert!(answer.contains("nc=0000001a"), "{answer}");
        let ha1 = Algorithm::Md5.hash(&["u\\v", "a\"b", "pw"]);
        let ha2 = Algorithm::Md5.hash(&["INVITE", "sip:x"]);
        let expected = Algorithm::Md5.hash(&[&ha1, "n", "0000001a", "c", "auth", &ha2]);
        assert_eq!(params(&answer).get("response"), Some(expected.as_str()));
    }

    /// Our answers verify against our own registrar's Digest verifier, for both
    /// algorithms it offers.
    #[test]
    fn round_trip_with_the_registrar() {
        const REALM: &str = "switchboard.test";
        const URI: &str = "sip:switchboard.test";
        const NOW: u64 = 1_700_000_000;
        let mut cfg = Config::default();
        cfg.server.realm = REALM.to_owned();
        cfg.sip_users = vec![SipUser {
            username: "alice".to_owned(),
            password: Some("wonderland".to_owned()),
            ha1: None,
            identity: "alice".to_owned(),
            account: "AC00000000000000000000000000000001".to_owned(),
        }];
        let server = DigestAuth::new(&cfg, [7; 32]);
        assert_eq!(server.challenges(NOW, false).len(), 2);
        // One challenge (so one nonce, with its own count) per algorithm.
        for (sha256, md5) in [(true, false), (false, true)] {
            let challenges = server.challenges_for(NOW, false, sha256, md5);
            let [challenge] = challenges.as_slice() else {
                panic!("one challenge expected: {challenges:?}");
            };
            assert!(supported(challenge), "{challenge}");
            assert_eq!(challenge_realm(challenge).as_deref(), Some(REALM));
            for nc in 1..=2 {
                let answer = authorization(
                    challenge,
                    "REGISTER",
                    URI,
                    "alice",
                    "wonderland",
                    "0a4f113b",
                    nc,
                )
                .expect("answerable");
                let user = server
                    .verify("REGISTER", URI, &params(&answer), NOW + 1)
                    .unwrap_or_else(|e| panic!("{challenge}: {answer}: {e}"));
                assert_eq!(user.username, "alice");
            }
            let wrong = authorization(
                challenge,
                "REGISTER",
                URI,
                "alice",
                "looking-glass",
                "0a4f113b",
                3,
            )
            .expect("answerable");
            assert_eq!(
                server.verify("REGISTER", URI, &params(&wrong), NOW + 1),
                Err(DigestError::BadCredentials)
            );
        }
    }
}
