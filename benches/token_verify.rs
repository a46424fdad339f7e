//! Bearer-token verification per REGISTER: a Twilio Access Token (HS256) and a third-party
//! issuer's ES256 token, each verified fresh (a token the verifier has not seen: a first
//! REGISTER) and again (a refresh with the same token).
//!
//! The figures decide what the verifier caches (`worth_caching` in
//! `src/registrar/token/mod.rs`): an entry holds memory for as long as its token lives, so
//! only tokens whose fresh check is expensive (public-key signatures) are kept. With that
//! rule, "again" is a cache hit for ES256 and a second full check for HS256.
//!
//! `cargo bench --bench token_verify` prints the table (median ns per verification over 15
//! batches of 2,000 distinct tokens). A fresh check cannot be repeated on one token (the
//! second time it is not fresh), so this walks distinct tokens with its own timer rather
//! than criterion's loop. Under `cargo test` it runs one quick pass so the bench cannot
//! rot.

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use switchboard::registrar::token::{TokenVerifier, mint_access_token};

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://idp.example";
const ES256_KEY: &str = include_str!("../src/registrar/testdata/es256.key.pem");
const ES256_PUB: &str = include_str!("../src/registrar/testdata/es256.pub.pem");

fn config() -> switchboard::config::Config {
    let text = format!(
        r#"
[server]
realm = "switchboard.bench"

[[accounts]]
sid = "AC00000000000000000000000000000001"
auth_token = "bench-auth-token"
[[accounts.api_keys]]
sid = "SK00000000000000000000000000000001"
secret = "bench-api-key-secret-0123456789"
[[accounts.issuers]]
iss = "{ISS}"
algorithms = ["ES256"]
public_key_pem = '''
{ES256_PUB}'''
"#
    );
    switchboard::config::parse("bench.toml", &text).expect("bench config")
}

/// `n` distinct Twilio Access Tokens (HS256), as `switchboard token` mints them.
fn hs256_tokens(cfg: &switchboard::config::Config, n: usize) -> Vec<String> {
    let account = &cfg.accounts[0];
    (0..n)
        .map(|i| {
            let identity = format!("user_{i:06}");
            mint_access_token(
                account,
                &account.api_keys[0],
                &identity,
                3600,
                true,
                None,
                NOW,
            )
            .expect("mint")
        })
        .collect()
}

/// `n` distinct ES256 tokens from the configured issuer.
fn es256_tokens(n: usize) -> Vec<String> {
    let key = EncodingKey::from_ec_pem(ES256_KEY.as_bytes()).expect("ES256 key");
    (0..n)
        .map(|i| {
            let claims = serde_json::json!({
                "iss": ISS,
                "sub": format!("user_{i:06}"),
                "exp": NOW + 3600,
                "grants": { "voice": { "incoming": { "allow": true } } }
            });
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).expect("sign")
        })
        .collect()
}

/// Median ns per verification over `batches` batches: each batch verifies every token of
/// `tokens` once with `verifier`.
fn median_ns(batches: usize, mut run: impl FnMut() -> usize) -> f64 {
    let mut per = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        let n = run();
        per.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}

fn verify_all(verifier: &TokenVerifier, tokens: &[String]) -> usize {
    for t in tokens {
        black_box(verifier.verify(black_box(t), NOW).expect("a valid token"));
    }
    tokens.len()
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let (n, batches) = if quick { (20, 3) } else { (2_000, 15) };
    let cfg = config();
    let hs = hs256_tokens(&cfg, n * batches);
    let es = es256_tokens(n * batches);

    let mut rows = Vec::new();
    for (name, tokens) in [("HS256 access token", &hs), ("ES256 issuer token", &es)] {
        // Fresh: each batch takes tokens no verifier has seen.
        let verifier = TokenVerifier::new(&cfg).expect("verifier");
        let mut chunks = tokens.chunks(n);
        let fresh = median_ns(batches, || verify_all(&verifier, chunks.next().unwrap()));
        // Again: the first chunk, verified already, every batch.
        let verifier = TokenVerifier::new(&cfg).expect("verifier");
        verify_all(&verifier, &tokens[..n]);
        let again = median_ns(batches, || verify_all(&verifier, &tokens[..n]));
        rows.push((name, fresh, again));
    }
    println!("token verification, median ns per token over {batches} batches of {n}:");
    println!("{:<22} {:>10} {:>10} {:>8}", "", "fresh", "again", "ratio");
    for (name, fresh, again) in &rows {
        println!(
            "{name:<22} {fresh:>10.0} {again:>10.0} {:>7.1}x",
            fresh / again
        );
    }
}
