//! Every verification outcome, with fixed times (no wall clock), real ES256/EdDSA/RS256 test
//! keys (`../testdata/`) and tokens minted by Twilio's own helper libraries
//! (`../testdata/twilio/`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::cache::Cache;
use super::*;
use crate::config::{self, Config};

const NOW: u64 = 1_800_000_000;
const AC1: &str = "AC00000000000000000000000000000001";
const AC2: &str = "AC00000000000000000000000000000002";
const SK1: &str = "SK00000000000000000000000000000001";
const SK2: &str = "SK00000000000000000000000000000002";
const AP1: &str = "AP00000000000000000000000000000001";
const AP2: &str = "AP00000000000000000000000000000002";
const AUTH1: &str = "demo-auth-token-change-me";
const SECRET1: &str = "demo-api-key-secret-change-me";
const SECRET2: &str = "other-api-key-secret";
const REALM: &str = "switchboard.test";
const ISS_PEM: &str = "https://idp-pem.example";
const ISS_JWKS: &str = "https://idp-jwks.example";
const ISS_RSA: &str = "https://idp-rsa.example";

const ES256_KEY: &str = include_str!("../testdata/es256.key.pem");
const ES256_PUB: &str = include_str!("../testdata/es256.pub.pem");
const ES256_B_KEY: &str = include_str!("../testdata/es256-b.key.pem");
const ED25519_KEY: &str = include_str!("../testdata/ed25519.key.pem");
const ED25519_PUB: &str = include_str!("../testdata/ed25519.pub.pem");
const RS256_KEY: &str = include_str!("../testdata/rs256.key.pem");
const RS256_PUB: &str = include_str!("../testdata/rs256.pub.pem");
const JWKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/registrar/testdata/jwks.json"
);

fn config_text() -> String {
    format!(
        r#"
[server]
realm = "{REALM}"

[[accounts]]
sid = "{AC1}"
auth_token = "{AUTH1}"
[[accounts.api_keys]]
sid = "{SK1}"
secret = "{SECRET1}"
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
sid = "{AC2}"
auth_token = "other-auth-token"
[[accounts.api_keys]]
sid = "{SK2}"
secret = "{SECRET2}"

[[applications]]
sid = "{AP1}"
account = "{AC1}"
twiml = "<Response/>"

[[applications]]
sid = "{AP2}"
account = "{AC2}"
twiml = "<Response/>"
"#
    )
}

fn config() -> Config {
    config::parse("test.toml", &config_text()).expect("test config")
}

fn verifier() -> TokenVerifier {
    TokenVerifier::new(&config()).expect("verifier")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
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
        &EncodingKey::from_ec_pem(key_pem.as_bytes()).unwrap(),
    )
}

fn eddsa(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    sign(
        &header,
        claims,
        &EncodingKey::from_ed_pem(ED25519_KEY.as_bytes()).unwrap(),
    )
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    sign(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(RS256_KEY.as_bytes()).unwrap(),
    )
}

/// A Twilio-shaped access token for account 1, signed with SK1 (HS256).
fn access_claims(identity: &str) -> Value {
    json!({
        "jti": format!("{SK1}-{NOW}"),
        "iss": SK1,
        "sub": AC1,
        "iat": NOW,
        "exp": NOW + 3600,
        "grants": {
            "identity": identity,
            "voice": {
                "incoming": { "allow": true },
                "outgoing": { "application_sid": AP1, "params": { "To": "+15550100001", "n": 7 } }
            }
        }
    })
}

fn access(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.cty = Some(ACCESS_TOKEN_CTY.to_owned());
    sign(
        &header,
        claims,
        &EncodingKey::from_secret(SECRET1.as_bytes()),
    )
}

fn issuer_claims(iss: &str, sub: &str) -> Value {
    json!({
        "iss": iss,
        "sub": sub,
        "exp": NOW + 600,
        "grants": { "voice": { "incoming": { "allow": true } } }
    })
}

fn err(v: &TokenVerifier, token: &str) -> TokenError {
    v.verify(token, NOW).expect_err("token should be refused")
}

// ---------------------------------------------------------------------------------------
// Shape of the token itself
// ---------------------------------------------------------------------------------------

#[test]
fn missing_or_not_three_parts_is_malformed() {
    let v = verifier();
    for token in ["", "abc", "a.b", "a.b.c.d", "..", "...."] {
        assert_eq!(err(&v, token), TokenError::Malformed, "{token:?}");
    }
    let good = access(&access_claims("alice"));
    assert_eq!(err(&v, &format!("{good}.x")), TokenError::Malformed);
}

#[test]
fn bad_base64_or_json_is_malformed() {
    let v = verifier();
    let claims = b64(&access_claims("alice"));
    let header = b64(&json!({"alg": "HS256", "typ": "JWT"}));
    let cases = [
        format!("!!!.{claims}.sig"),
        format!("{header}.***.sig"),
        // Padded base64 is not base64url-without-padding.
        format!("{header}=.{claims}.sig"),
        format!("{}.{claims}.sig", URL_SAFE_NO_PAD.encode("not json")),
        format!("{header}.{}.sig", URL_SAFE_NO_PAD.encode("{\"exp\":")),
        format!("{header}.{}.sig", b64(&json!([1, 2]))),
        format!("{}.{claims}.sig", b64(&json!({"typ": "JWT"}))),
        format!("{}.{claims}.sig", b64(&json!({"alg": 256}))),
    ];
    for token in &cases {
        assert_eq!(err(&v, token), TokenError::Malformed, "{token}");
    }
}

#[test]
fn oversized_token_is_malformed() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["pad"] = Value::from("x".repeat(peek::MAX_TOKEN_BYTES));
    assert_eq!(err(&v, &access(&claims)), TokenError::Malformed);
}

#[test]
fn crit_header_is_malformed() {
    let v = verifier();
    let header = json!({"alg": "HS256", "typ": "JWT", "crit": ["b64"], "b64": false});
    let message = format!("{}.{}", b64(&header), b64(&access_claims("alice")));
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET1.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(err(&v, &format!("{message}.{sig}")), TokenError::Malformed);
}

#[test]
fn missing_claims() {
    let v = verifier();
    let mut no_exp = access_claims("alice");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(err(&v, &access(&no_exp)), TokenError::MissingClaim("exp"));

    let mut no_iss = access_claims("alice");
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_eq!(err(&v, &access(&no_iss)), TokenError::MissingClaim("iss"));

    let mut no_sub = access_claims("alice");
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_eq!(err(&v, &access(&no_sub)), TokenError::MissingClaim("sub"));

    let no_scope = json!({"iss": AC1, "exp": NOW + 60});
    assert_eq!(
        err(&v, &hs(Algorithm::HS256, &no_scope, AUTH1)),
        TokenError::MissingClaim("scope")
    );
}

#[test]
fn string_exp_is_refused() {
    // CVE-2026-25537: a string `exp` must not count as "absent, so not checked".
    let v = verifier();
    for exp in [
        json!("2000000000"),
        json!(null),
        json!(-5),
        json!(true),
        json!([NOW]),
    ] {
        let mut claims = access_claims("alice");
        claims["exp"] = exp.clone();
        assert_eq!(
            err(&v, &access(&claims)),
            TokenError::Malformed,
            "exp {exp}"
        );
    }
    let mut claims = access_claims("alice");
    claims["nbf"] = json!("0");
    assert_eq!(err(&v, &access(&claims)), TokenError::Malformed);
}

#[test]
fn fractional_dates_are_numbers() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["exp"] = json!((NOW + 10) as f64 + 0.75);
    let grant = v.verify(&access(&claims), NOW).unwrap();
    assert_eq!(grant.expires_at, NOW + 10);
}

// ---------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------

#[test]
fn expired_beyond_leeway() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["exp"] = json!(NOW - LEEWAY_SECS - 1);
    assert_eq!(err(&v, &access(&claims)), TokenError::Expired);
}

#[test]
fn expired_within_leeway_is_accepted() {
    let v = verifier();
    for exp in [NOW - LEEWAY_SECS, NOW - 1, NOW] {
        let mut claims = access_claims("alice");
        claims["exp"] = json!(exp);
        let grant = v.verify(&access(&claims), NOW).expect("within leeway");
        assert_eq!(grant.expires_at, exp);
    }
}

#[test]
fn nbf_in_the_future() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["nbf"] = json!(NOW + LEEWAY_SECS + 1);
    assert_eq!(err(&v, &access(&claims)), TokenError::NotYetValid);

    claims["nbf"] = json!(NOW + LEEWAY_SECS);
    assert!(v.verify(&access(&claims), NOW).is_ok());
    claims["nbf"] = json!(NOW - 100);
    assert!(v.verify(&access(&claims), NOW).is_ok());
}

// ---------------------------------------------------------------------------------------
// Signatures and algorithms
// ---------------------------------------------------------------------------------------

#[test]
fn bad_signature() {
    let v = verifier();
    let claims = access_claims("alice");
    // Right shape, wrong secret.
    assert_eq!(
        err(&v, &hs(Algorithm::HS256, &claims, "not-the-secret")),
        TokenError::BadSignature
    );
    // A valid token whose claims were swapped for others (alice → mallory).
    let good = access(&claims);
    let forged_claims = b64(&access_claims("mallory"));
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = &forged_claims;
    assert_eq!(err(&v, &parts.join(".")), TokenError::BadSignature);
    // Empty signature.
    assert_eq!(
        err(&v, &format!("{}.{}.", parts[0], parts[1])),
        TokenError::BadSignature
    );
    // An issuer token signed with another EC key.
    let token = es256(ES256_B_KEY, None, &issuer_claims(ISS_PEM, "bob"));
    assert_eq!(err(&v, &token), TokenError::BadSignature);
    // A JWKS kid pointing at a key other than the one that signed.
    let token = es256(ES256_KEY, Some("ec-b"), &issuer_claims(ISS_JWKS, "bob"));
    assert_eq!(err(&v, &token), TokenError::BadSignature);
}

#[test]
fn alg_none_is_not_allowed() {
    let v = verifier();
    // {"alg":"none"}, claims, empty signature.
    let token = format!("eyJhbGciOiJub25lIn0.{}.", b64(&access_claims("alice")));
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&issuer_claims(ISS_PEM, "bob"))
    );
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
    // Unknown names too.
    let token = format!(
        "{}.{}.c2ln",
        b64(&json!({"alg": "HS1"})),
        b64(&access_claims("alice"))
    );
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
}

#[test]
fn hmac_issuer_token_is_not_allowed() {
    let v = verifier();
    let claims = issuer_claims(ISS_PEM, "bob");
    assert_eq!(
        err(&v, &hs(Algorithm::HS512, &claims, "whatever")),
        TokenError::AlgorithmNotAllowed
    );
}

#[test]
fn hs_rs_confusion_is_refused() {
    // The classic attack: HS256 "signed" with the issuer's public key PEM as HMAC secret.
    let v = verifier();
    let claims = issuer_claims(ISS_RSA, "bob");
    let token = hs(Algorithm::HS256, &claims, RS256_PUB);
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
    // Same with a kid naming the RSA key of a JWKS issuer.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".to_owned());
    let token = sign(
        &header,
        &issuer_claims(ISS_JWKS, "bob"),
        &EncodingKey::from_secret(RS256_PUB.as_bytes()),
    );
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
}

#[test]
fn asymmetric_token_against_hmac_key_is_not_allowed() {
    let v = verifier();
    // iss = an API key, but RS256: API keys take HS256/384/512 only.
    let token = rs256(None, &access_claims("alice"));
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
    // A capability token takes HS256 only.
    let claims =
        json!({"iss": AC1, "exp": NOW + 60, "scope": "scope:client:incoming?clientName=alice"});
    assert_eq!(
        err(&v, &hs(Algorithm::HS512, &claims, AUTH1)),
        TokenError::AlgorithmNotAllowed
    );
}

#[test]
fn issuer_algorithm_must_fit_config_and_key() {
    let v = verifier();
    // The PEM issuer allows ES256 only.
    let token = eddsa(None, &issuer_claims(ISS_PEM, "bob"));
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
    // kid rsa-1 is an RSA key: an ES256 token cannot use it.
    let token = es256(ES256_KEY, Some("rsa-1"), &issuer_claims(ISS_JWKS, "bob"));
    assert_eq!(err(&v, &token), TokenError::AlgorithmNotAllowed);
}

// ---------------------------------------------------------------------------------------
// Keys and accounts
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_kid_is_refused() {
    let v = verifier();
    let token = es256(
        ES256_B_KEY,
        Some("no-such-kid"),
        &issuer_claims(ISS_JWKS, "bob"),
    );
    assert_eq!(err(&v, &token), TokenError::UnknownKey);
    // Several keys and no kid: ambiguous, refused.
    let token = es256(ES256_B_KEY, None, &issuer_claims(ISS_JWKS, "bob"));
    assert_eq!(err(&v, &token), TokenError::UnknownKey);
}

#[test]
fn unknown_api_key_or_issuer() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["iss"] = json!("SK0000000000000000000000000000dead");
    assert_eq!(err(&v, &access(&claims)), TokenError::UnknownKey);
    let token = es256(
        ES256_KEY,
        None,
        &issuer_claims("https://stranger.example", "bob"),
    );
    assert_eq!(err(&v, &token), TokenError::UnknownKey);
}

#[test]
fn unknown_account() {
    let v = verifier();
    // A capability token from an account that is not configured.
    let claims = json!({
        "iss": "AC0000000000000000000000000000dead",
        "exp": NOW + 60,
        "scope": "scope:client:incoming?clientName=alice"
    });
    assert_eq!(
        err(&v, &hs(Algorithm::HS256, &claims, AUTH1)),
        TokenError::UnknownAccount
    );

    // Account 2's API key, claiming account 1.
    let mut claims = access_claims("alice");
    claims["iss"] = json!(SK2);
    let token = hs(Algorithm::HS256, &claims, SECRET2);
    assert_eq!(err(&v, &token), TokenError::UnknownAccount);

    // A sub naming no configured account.
    let mut claims = access_claims("alice");
    claims["sub"] = json!("AC0000000000000000000000000000dead");
    assert_eq!(err(&v, &access(&claims)), TokenError::UnknownAccount);
}

#[test]
fn audience_must_be_this_realm() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["aud"] = json!("https://other-service.example");
    assert_eq!(err(&v, &access(&claims)), TokenError::UnknownAccount);
    claims["aud"] = json!(["https://other-service.example", REALM]);
    assert!(v.verify(&access(&claims), NOW).is_ok());
    let mut claims = issuer_claims(ISS_PEM, "bob");
    claims["aud"] = json!(REALM);
    assert!(v.verify(&es256(ES256_KEY, None, &claims), NOW).is_ok());
    claims["aud"] = json!(7);
    assert_eq!(
        err(&v, &es256(ES256_KEY, None, &claims)),
        TokenError::Malformed
    );
}

// ---------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------

#[test]
fn no_identity() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["grants"].as_object_mut().unwrap().remove("identity");
    assert_eq!(err(&v, &access(&claims)), TokenError::NoIdentity);
    let mut claims = access_claims("alice");
    claims.as_object_mut().unwrap().remove("grants");
    assert_eq!(err(&v, &access(&claims)), TokenError::NoIdentity);

    for bad in ["", "al ice", "alice\r\nVia: x", "<alice>", "a\"b", "ålice"] {
        assert_eq!(
            err(&v, &access(&access_claims(bad))),
            TokenError::NoIdentity,
            "{bad:?}"
        );
    }
    let long = "a".repeat(MAX_IDENTITY_BYTES + 1);
    assert_eq!(
        err(&v, &access(&access_claims(&long))),
        TokenError::NoIdentity
    );
    assert!(v.verify(&access(&access_claims(&long[1..])), NOW).is_ok());

    // Capability token granting only event streams.
    let claims = json!({"iss": AC1, "exp": NOW + 60, "scope": "scope:stream:subscribe?path=/2010-04-01/Events"});
    assert_eq!(
        err(&v, &hs(Algorithm::HS256, &claims, AUTH1)),
        TokenError::NoIdentity
    );

    // Issuer token without sub.
    let mut claims = issuer_claims(ISS_PEM, "bob");
    claims.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        err(&v, &es256(ES256_KEY, None, &claims)),
        TokenError::NoIdentity
    );
}

#[test]
fn contradictory_identities_are_malformed() {
    let v = verifier();
    let claims = json!({
        "iss": AC1,
        "exp": NOW + 60,
        "scope": format!("scope:client:incoming?clientName=alice scope:client:outgoing?appSid={AP1}&clientName=bob")
    });
    assert_eq!(
        err(&v, &hs(Algorithm::HS256, &claims, AUTH1)),
        TokenError::Malformed
    );
    let mut claims = issuer_claims(ISS_PEM, "bob");
    claims["grants"]["identity"] = json!("alice");
    assert_eq!(
        err(&v, &es256(ES256_KEY, None, &claims)),
        TokenError::Malformed
    );
}

// ---------------------------------------------------------------------------------------
// Accepted tokens, all three shapes
// ---------------------------------------------------------------------------------------

#[test]
fn access_token_incoming_and_outgoing() {
    let v = verifier();
    let grant = v.verify(&access(&access_claims("alice")), NOW).unwrap();
    assert_eq!(
        *grant,
        Grant {
            account_sid: AC1.to_owned(),
            identity: "alice".to_owned(),
            incoming: true,
            outgoing: Some(OutgoingGrant {
                application_sid: AP1.to_owned(),
                params: vec![
                    ("To".to_owned(), "+15550100001".to_owned()),
                    ("n".to_owned(), "7".to_owned()),
                ],
            }),
            expires_at: NOW + 3600,
            shape: TokenShape::AccessToken,
        }
    );
}

#[test]
fn access_token_without_voice_grant_is_not_incoming() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["grants"].as_object_mut().unwrap().remove("voice");
    let grant = v.verify(&access(&claims), NOW).unwrap();
    assert!(!grant.incoming);
    assert_eq!(grant.outgoing, None);

    let mut claims = access_claims("alice");
    claims["grants"]["voice"]["incoming"]["allow"] = json!(false);
    claims["grants"]["voice"]
        .as_object_mut()
        .unwrap()
        .remove("outgoing");
    let grant = v.verify(&access(&claims), NOW).unwrap();
    assert!(!grant.incoming);
    // "true" as a string is not true.
    claims["grants"]["voice"]["incoming"]["allow"] = json!("true");
    assert!(!v.verify(&access(&claims), NOW).unwrap().incoming);
}

#[test]
fn access_token_hs384_and_hs512() {
    let v = verifier();
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let mut header = Header::new(alg);
        header.cty = Some(ACCESS_TOKEN_CTY.to_owned());
        let token = sign(
            &header,
            &access_claims("alice"),
            &EncodingKey::from_secret(SECRET1.as_bytes()),
        );
        assert_eq!(v.verify(&token, NOW).unwrap().identity, "alice");
    }
}

#[test]
fn outgoing_grant_for_another_accounts_application_is_dropped() {
    let v = verifier();
    let mut claims = access_claims("alice");
    claims["grants"]["voice"]["outgoing"]["application_sid"] = json!(AP2);
    let grant = v.verify(&access(&claims), NOW).unwrap();
    assert!(grant.incoming);
    assert_eq!(grant.outgoing, None);
}

#[test]
fn capability_token_incoming_and_outgoing() {
    let v = verifier();
    let claims = json!({
        "iss": AC1,
        "exp": NOW + 600,
        "scope": format!(
            "scope:client:incoming?clientName=alice \
             scope:client:outgoing?appSid={AP1}&clientName=alice&appParams=To%3D%252B1555%26x%3Da%2520b \
             scope:stream:subscribe?path=/2010-04-01/Events"
        )
    });
    let grant = v
        .verify(&hs(Algorithm::HS256, &claims, AUTH1), NOW)
        .unwrap();
    assert_eq!(
        *grant,
        Grant {
            account_sid: AC1.to_owned(),
            identity: "alice".to_owned(),
            incoming: true,
            outgoing: Some(OutgoingGrant {
                application_sid: AP1.to_owned(),
                params: vec![
                    ("To".to_owned(), "+1555".to_owned()),
                    ("x".to_owned(), "a b".to_owned()),
                ],
            }),
            expires_at: NOW + 600,
            shape: TokenShape::Capability,
        }
    );
}

#[test]
fn capability_token_outgoing_only() {
    let v = verifier();
    let claims = json!({
        "iss": AC1,
        "exp": NOW + 600,
        "scope": format!("scope:client:outgoing?appSid={AP1}&clientName=carol")
    });
    let grant = v
        .verify(&hs(Algorithm::HS256, &claims, AUTH1), NOW)
        .unwrap();
    assert_eq!(grant.identity, "carol");
    assert!(!grant.incoming);
    assert_eq!(grant.outgoing.as_ref().unwrap().application_sid, AP1);
    assert!(grant.outgoing.as_ref().unwrap().params.is_empty());
}

#[test]
fn capability_signed_with_wrong_auth_token() {
    let v = verifier();
    let claims =
        json!({"iss": AC1, "exp": NOW + 60, "scope": "scope:client:incoming?clientName=alice"});
    assert_eq!(
        err(&v, &hs(Algorithm::HS256, &claims, "other-auth-token")),
        TokenError::BadSignature
    );
}

#[test]
fn issuer_pem_es256() {
    let v = verifier();
    let grant = v
        .verify(&es256(ES256_KEY, None, &issuer_claims(ISS_PEM, "bob")), NOW)
        .unwrap();
    assert_eq!(
        *grant,
        Grant {
            account_sid: AC1.to_owned(),
            identity: "bob".to_owned(),
            incoming: true,
            outgoing: None,
            expires_at: NOW + 600,
            shape: TokenShape::Issuer,
        }
    );
    // A kid on a PEM issuer's token is not used: the one key decides.
    let token = es256(ES256_KEY, Some("anything"), &issuer_claims(ISS_PEM, "bob"));
    assert!(v.verify(&token, NOW).is_ok());
}

#[test]
fn issuer_without_incoming_grant_is_not_incoming() {
    let v = verifier();
    let claims = json!({"iss": ISS_JWKS, "sub": "dave", "exp": NOW + 600});
    let grant = v.verify(&eddsa(Some("ed-1"), &claims), NOW).unwrap();
    assert_eq!(grant.identity, "dave");
    assert!(
        !grant.incoming,
        "issuer tokens need grants.voice.incoming.allow"
    );
    assert_eq!(grant.shape, TokenShape::Issuer);
}

#[test]
fn issuer_jwks_all_algorithms_with_outgoing() {
    let v = verifier();
    let mut claims = issuer_claims(ISS_JWKS, "google-oauth2|1234");
    claims["nbf"] = json!(NOW - 5);
    claims["grants"]["voice"]["outgoing"] =
        json!({"application_sid": AP1, "params": {"team": "blue"}});
    for token in [
        es256(ES256_B_KEY, Some("ec-b"), &claims),
        eddsa(Some("ed-1"), &claims),
        rs256(Some("rsa-1"), &claims),
    ] {
        let grant = v.verify(&token, NOW).unwrap();
        assert_eq!(grant.identity, "google-oauth2|1234");
        assert!(grant.incoming);
        assert_eq!(
            grant.outgoing,
            Some(OutgoingGrant {
                application_sid: AP1.to_owned(),
                params: vec![("team".to_owned(), "blue".to_owned())],
            })
        );
    }
}

#[test]
fn issuer_rsa_pem() {
    let v = verifier();
    let grant = v
        .verify(&rs256(None, &issuer_claims(ISS_RSA, "erin")), NOW)
        .unwrap();
    assert_eq!(grant.identity, "erin");
    assert!(grant.incoming);
}

// ---------------------------------------------------------------------------------------
// Tokens minted by Twilio's helper libraries (testdata/twilio/mint.sh)
// ---------------------------------------------------------------------------------------

/// The `iat` the fixtures were minted at (testdata/twilio/mint.js, mint.py).
const TWILIO_IAT: u64 = 1_767_225_600;
const TWILIO_TTL: u64 = 315_360_000;

fn fixture(text: &str) -> &str {
    text.trim()
}

fn twilio_outgoing(space_in_mode: &str) -> Option<OutgoingGrant> {
    Some(OutgoingGrant {
        application_sid: AP1.to_owned(),
        params: vec![
            ("To".to_owned(), "+15550100001".to_owned()),
            ("mode".to_owned(), space_in_mode.to_owned()),
        ],
    })
}

/// The fixtures were minted by Twilio's helper libraries with a 10-year TTL (so that they
/// verify at a fixed `now` forever); a config that allows such lifetimes reads them.
fn long_lived_verifier(text: &str) -> TokenVerifier {
    let text = format!("{text}\n[registrar]\nmax_token_lifetime_secs = {TWILIO_TTL}\n");
    TokenVerifier::new(&config::parse("t.toml", &text).unwrap()).unwrap()
}

#[test]
fn twilio_helper_access_tokens() {
    let v = long_lived_verifier(&config_text());
    for (lib, token) in [
        (
            "node",
            include_str!("../testdata/twilio/twilio-node-access-token.jwt"),
        ),
        (
            "python",
            include_str!("../testdata/twilio/twilio-python-access-token.jwt"),
        ),
    ] {
        let grant = v
            .verify(fixture(token), TWILIO_IAT + 60)
            .unwrap_or_else(|e| panic!("twilio-{lib}: {e}"));
        assert_eq!(
            *grant,
            Grant {
                account_sid: AC1.to_owned(),
                identity: "alice".to_owned(),
                incoming: true,
                outgoing: twilio_outgoing("demo call"),
                expires_at: TWILIO_IAT + TWILIO_TTL,
                shape: TokenShape::AccessToken,
            },
            "twilio-{lib}"
        );
    }
}

#[test]
fn twilio_helper_capability_tokens() {
    let v = long_lived_verifier(&config_text());
    for (lib, token) in [
        (
            "node",
            include_str!("../testdata/twilio/twilio-node-capability.jwt"),
        ),
        (
            "python",
            include_str!("../testdata/twilio/twilio-python-capability.jwt"),
        ),
    ] {
        let grant = v
            .verify(fixture(token), TWILIO_IAT + 60)
            .unwrap_or_else(|e| panic!("twilio-{lib}: {e}"));
        assert_eq!(
            *grant,
            Grant {
                account_sid: AC1.to_owned(),
                identity: "alice".to_owned(),
                incoming: true,
                outgoing: twilio_outgoing("demo call"),
                expires_at: TWILIO_IAT + TWILIO_TTL,
                shape: TokenShape::Capability,
            },
            "twilio-{lib}"
        );
    }
}

#[test]
fn twilio_helper_tokens_fail_with_another_secret() {
    let text = config_text()
        .replace(SECRET1, "rotated-api-key-secret")
        .replace(AUTH1, "rotated-auth-token");
    let v = long_lived_verifier(&text);
    for token in [
        include_str!("../testdata/twilio/twilio-node-access-token.jwt"),
        include_str!("../testdata/twilio/twilio-python-capability.jwt"),
    ] {
        assert_eq!(
            v.verify(fixture(token), TWILIO_IAT + 60),
            Err(TokenError::BadSignature)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Minting
// ---------------------------------------------------------------------------------------

#[test]
fn minted_token_round_trips() {
    let cfg = config();
    let v = TokenVerifier::new(&cfg).unwrap();
    let account = &cfg.accounts[0];
    let key = &account.api_keys[0];
    let token = mint_access_token(account, key, "alice", 3600, true, Some(AP1), NOW).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.cty.as_deref(), Some(ACCESS_TOKEN_CTY));
    assert_eq!(header.alg, Algorithm::HS256);
    let grant = v.verify(&token, NOW + 10).unwrap();
    assert_eq!(
        *grant,
        Grant {
            account_sid: AC1.to_owned(),
            identity: "alice".to_owned(),
            incoming: true,
            outgoing: Some(OutgoingGrant {
                application_sid: AP1.to_owned(),
                params: vec![],
            }),
            expires_at: NOW + 3600,
            shape: TokenShape::AccessToken,
        }
    );
    let token = mint_access_token(account, key, "bob", 60, false, None, NOW).unwrap();
    let grant = v.verify(&token, NOW).unwrap();
    assert!(!grant.incoming && grant.outgoing.is_none());
    assert_eq!(
        v.verify(&token, NOW + 60 + LEEWAY_SECS + 1),
        Err(TokenError::Expired)
    );
}

#[test]
fn mint_refuses_foreign_key_and_bad_identity() {
    let cfg = config();
    let (a1, a2) = (&cfg.accounts[0], &cfg.accounts[1]);
    assert_eq!(
        mint_access_token(a1, &a2.api_keys[0], "alice", 60, true, None, NOW),
        Err(TokenError::UnknownKey)
    );
    assert_eq!(
        mint_access_token(a1, &a1.api_keys[0], "al ice", 60, true, None, NOW),
        Err(TokenError::NoIdentity)
    );
    assert_eq!(
        mint_access_token(a1, &a1.api_keys[0], "alice", u64::MAX, true, None, NOW),
        Err(TokenError::Malformed)
    );
}

// ---------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------

#[test]
fn cache_returns_the_same_grant_until_expiry() {
    let v = verifier();
    let mut claims = issuer_claims(ISS_PEM, "bob");
    claims["exp"] = json!(NOW + 100);
    let token = es256(ES256_KEY, None, &claims);
    assert_eq!(v.cache_len(), 0);
    let first = v.verify(&token, NOW).unwrap();
    let second = v.verify(&token, NOW + 50).unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "second verification is a cache hit"
    );
    assert_eq!(v.cache_len(), 1);
    // Still inside the leeway.
    assert!(v.verify(&token, NOW + 100 + LEEWAY_SECS).is_ok());
    // Past it: refused, and the entry is gone.
    assert_eq!(
        v.verify(&token, NOW + 100 + LEEWAY_SECS + 1),
        Err(TokenError::Expired)
    );
    assert_eq!(v.cache_len(), 0);
    // Failures are not cached.
    let _ = v.verify(&es256(ES256_B_KEY, None, &claims), NOW);
    assert_eq!(v.cache_len(), 0);
}

#[test]
fn hmac_signed_tokens_are_checked_again_not_cached() {
    let v = verifier();
    let access_token = access(&access_claims("alice"));
    let capability = hs(
        Algorithm::HS256,
        &json!({"iss": AC1, "exp": NOW + 60, "scope": "scope:client:incoming?clientName=alice"}),
        AUTH1,
    );
    for token in [&access_token, &capability] {
        let first = v.verify(token, NOW).unwrap();
        let second = v.verify(token, NOW + 1).unwrap();
        assert_eq!(first, second, "the same grant both times");
        assert!(!Arc::ptr_eq(&first, &second), "verified twice");
    }
    assert_eq!(v.cache_len(), 0);
    // Still refused once expired, with nothing cached to say otherwise.
    assert_eq!(
        v.verify(&access_token, NOW + 2 * 86_400),
        Err(TokenError::Expired)
    );
}

#[test]
fn cache_keeps_nbf() {
    let v = verifier();
    let mut claims = issuer_claims(ISS_PEM, "bob");
    claims["nbf"] = json!(NOW);
    let token = es256(ES256_KEY, None, &claims);
    assert!(v.verify(&token, NOW).is_ok());
    assert_eq!(
        v.verify(&token, NOW - LEEWAY_SECS - 1),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn verifier_cache_is_bounded() {
    let v = TokenVerifier::with_cache_capacity(&config(), 16).unwrap();
    for i in 0..40 {
        let token = es256(
            ES256_KEY,
            None,
            &issuer_claims(ISS_PEM, &format!("user{i}")),
        );
        assert!(v.verify(&token, NOW).is_ok());
        assert!(v.cache_len() <= 16, "{} entries", v.cache_len());
    }
    assert!(v.cache_len() > 0, "issuer tokens are cached");
}

fn cached_grant(expires_at: u64) -> Arc<Grant> {
    Arc::new(Grant {
        account_sid: AC1.to_owned(),
        identity: "x".to_owned(),
        incoming: true,
        outgoing: None,
        expires_at,
        shape: TokenShape::AccessToken,
    })
}

/// A key landing in shard 0.
fn shard0_key(n: u8) -> cache::Key {
    let mut key = [n; 32];
    key[0] = 0;
    key
}

#[test]
fn full_cache_drops_expired_then_clears() {
    // 16 shards of one entry each.
    let cache = Cache::new(16);
    cache.insert(shard0_key(1), cached_grant(NOW - 1000), 0, NOW - 2000);
    assert_eq!(cache.len(), 1);
    // Shard full: the expired entry goes, the new one stays.
    cache.insert(shard0_key(2), cached_grant(NOW + 1000), 0, NOW);
    assert_eq!(cache.len(), 1);
    assert!(cache.get(&shard0_key(1), NOW).is_none());
    assert!(matches!(cache.get(&shard0_key(2), NOW), Some(Ok(_))));
    // Shard full of live entries: cleared.
    cache.insert(shard0_key(3), cached_grant(NOW + 1000), 0, NOW);
    assert_eq!(cache.len(), 1);
    assert!(cache.get(&shard0_key(2), NOW).is_none());
    assert!(matches!(cache.get(&shard0_key(3), NOW), Some(Ok(_))));
    // Replacing an existing key never evicts.
    cache.insert(shard0_key(3), cached_grant(NOW + 2000), 0, NOW);
    assert_eq!(cache.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Building the verifier
// ---------------------------------------------------------------------------------------

#[test]
fn verifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<TokenVerifier>();
    assert_send_sync::<Arc<Grant>>();
}

fn build_err(text: &str) -> String {
    match TokenVerifier::new(&config::parse("t.toml", text).expect("config parses")) {
        Ok(_) => panic!("verifier built"),
        Err(e) => e,
    }
}

fn one_issuer(issuer: &str) -> String {
    format!(
        "[[accounts]]\nsid = \"{AC1}\"\nauth_token = \"t\"\n[[accounts.issuers]]\niss = \"https://idp.example\"\n{issuer}"
    )
}

#[test]
fn verifier_errors_name_account_and_issuer() {
    let e = build_err(&one_issuer(
        "algorithms = [\"ES256\"]\njwks_file = \"/nonexistent/jwks.json\"\n",
    ));
    assert!(
        e.contains(AC1) && e.contains("https://idp.example") && e.contains("cannot read"),
        "{e}"
    );

    let e = build_err(&one_issuer(&format!(
        "algorithms = [\"ES256\"]\npublic_key_pem = '''\n{ES256_KEY}'''\n"
    )));
    assert!(e.contains("private key") && e.contains(AC1), "{e}");

    let e = build_err(&one_issuer(&format!(
        "algorithms = [\"ES256\"]\npublic_key_pem = '''\n{RS256_PUB}'''\n"
    )));
    assert!(e.contains("RSA key") && e.contains("ES256"), "{e}");

    let e = build_err(&one_issuer(
        "algorithms = [\"ES256\"]\npublic_key_pem = '''\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'''\n",
    ));
    assert!(e.contains("not an EC P-256"), "{e}");

    let e = build_err(&one_issuer(&format!(
        "algorithms = [\"RS256\"]\npublic_key_pem = '''\n{ED25519_PUB}'''\n"
    )));
    assert!(e.contains("Ed25519 key") && e.contains("RS256"), "{e}");
}

#[test]
fn jwks_without_usable_keys_is_an_error() {
    let dir = std::env::temp_dir().join(format!("switchboard-token-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("oct.json");
    std::fs::write(
        &path,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#,
    )
    .unwrap();
    let e = build_err(&one_issuer(&format!(
        "algorithms = [\"ES256\"]\njwks_file = \"{}\"\n",
        path.display()
    )));
    assert!(e.contains("no key usable"), "{e}");
    std::fs::write(&path, "not json").unwrap();
    let e = build_err(&one_issuer(&format!(
        "algorithms = [\"ES256\"]\njwks_file = \"{}\"\n",
        path.display()
    )));
    assert!(e.contains("not a JWKS document"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_iss_under_two_accounts_is_an_error() {
    let issuer = format!(
        "[[accounts.issuers]]\niss = \"https://idp.example\"\nalgorithms = [\"ES256\"]\npublic_key_pem = '''\n{ES256_PUB}'''\n"
    );
    let text = format!(
        "[[accounts]]\nsid = \"{AC1}\"\nauth_token = \"t\"\n{issuer}\n[[accounts]]\nsid = \"{AC2}\"\nauth_token = \"u\"\n{issuer}"
    );
    let e = build_err(&text);
    assert!(e.contains(AC1) && e.contains(AC2), "{e}");
}

#[test]
fn error_classes_are_stable() {
    assert_eq!(TokenError::MissingClaim("exp").class(), "missing_claim");
    assert_eq!(
        TokenError::AlgorithmNotAllowed.class(),
        "algorithm_not_allowed"
    );
    assert_eq!(
        TokenError::MissingClaim("exp").to_string(),
        "token lacks the `exp` claim"
    );
}

#[test]
fn a_token_living_longer_than_the_maximum_is_refused() {
    // The default maximum is Twilio's 24 h: the 10-year helper-library fixtures are refused.
    let v = verifier();
    let fixture_token = include_str!("../testdata/twilio/twilio-node-access-token.jwt");
    assert_eq!(
        v.verify(fixture(fixture_token), TWILIO_IAT + 60),
        Err(TokenError::LifetimeTooLong)
    );
    let with = |iat: Option<u64>, exp: u64| {
        let mut c = access_claims("alice");
        match iat {
            Some(t) => c["iat"] = json!(t),
            None => {
                c.as_object_mut().unwrap().remove("iat");
            }
        }
        c["exp"] = json!(exp);
        access(&c)
    };
    // A full day from issue is fine; a second more is not.
    assert!(v.verify(&with(Some(NOW), NOW + 86_400), NOW).is_ok());
    assert_eq!(
        v.verify(&with(Some(NOW), NOW + 86_401), NOW),
        Err(TokenError::LifetimeTooLong)
    );
    // Issued long ago with a long life, even if little of it is left.
    assert_eq!(
        v.verify(&with(Some(NOW - 2 * 86_400), NOW + 60), NOW),
        Err(TokenError::LifetimeTooLong)
    );
    // Without `iat`, measured from now: expiring in 2100 is refused.
    assert_eq!(
        v.verify(&with(None, 4_102_444_800), NOW),
        Err(TokenError::LifetimeTooLong)
    );
    assert!(v.verify(&with(None, NOW + 3_600), NOW).is_ok());
    // A non-numeric `iat` is malformed.
    let mut c = access_claims("alice");
    c["iat"] = json!("yesterday");
    assert_eq!(v.verify(&access(&c), NOW), Err(TokenError::Malformed));
}
