//! The webphone example's web app: what a customer's own site does for a browser softphone.
//! It serves the page (`index.html`, `phone.js` and the JsSIP bundle from this folder),
//! mints an access token for the identity the page asks for (HS256 with an API key, the
//! shape Twilio's helper libraries give: `AccessToken` + `VoiceGrant`), and passes on the
//! switch's presence of that identity (REST `Clients/{Identity}.json`, with the account's
//! credentials, which never reach the browser).
//!
//! ```text
//! bash examples/webphone/setup.sh          # npm: bundles JsSIP into examples/webphone/build/
//! cargo run --example webphone -- --ws-url wss://127.0.0.1:7443
//! # open http://127.0.0.1:3000/ (README: "A phone in the browser")
//! ```
//!
//! Options (defaults fit the sample config, `conf/switchboard.toml`):
//! - `--listen ADDR` (`127.0.0.1:3000`; port 0 picks one; the first stdout line says
//!   `listening http://ADDR`);
//! - `--ws-url URL`: the switch's SIP over (secure) WebSocket, as the page reaches it;
//! - `--realm`: the domain of the page's SIP URI (`[registrar] realm`);
//! - `--account`, `--api-key`, `--api-secret`: who signs the tokens;
//! - `--outgoing-app SID`: the application the page's calls run (an empty value: a token
//!   without the outgoing grant); `--ttl SECS`;
//! - `--api URL`, `--auth-token`: the switch's REST API and the account's auth token, for
//!   presence.
//!
//! A real site authenticates its user before minting a token for an identity; this one
//! mints for whoever asks, so keep it on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard::registrar::token::valid_identity;

#[derive(Parser, Debug)]
#[command(about = "The webphone example: serves the page, mints its tokens, shows presence")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The switch's SIP over WebSocket as the browser reaches it (`--wss` / `wss_listen`).
    #[arg(long, default_value = "wss://127.0.0.1:7443")]
    ws_url: String,
    #[arg(long, default_value = "switchboard.local")]
    realm: String,
    #[arg(long, default_value = "AC00000000000000000000000000000001")]
    account: String,
    #[arg(long, default_value = "SK00000000000000000000000000000001")]
    api_key: String,
    #[arg(long, default_value = "demo-api-key-secret-change-me")]
    api_secret: String,
    /// The application the page's outgoing calls run; empty: no outgoing grant.
    #[arg(long, default_value = "AP00000000000000000000000000000001")]
    outgoing_app: String,
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// The switch's REST API (`--http` / `http_listen`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    #[arg(long, default_value = "demo-auth-token-change-me")]
    auth_token: String,
    /// Where `index.html`, `phone.js` and `build/jssip.min.js` are.
    #[arg(long)]
    dir: Option<PathBuf>,
}

struct App {
    args: Args,
    dir: PathBuf,
    http: reqwest::Client,
    minted: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // reqwest is built with rustls but no crypto provider of its own (Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = args.dir.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/webphone"))
    });
    if !dir.join("build/jssip.min.js").exists() {
        eprintln!(
            "warning: {} is missing; run examples/webphone/setup.sh",
            dir.join("build/jssip.min.js").display()
        );
    }
    let app = Arc::new(App {
        dir,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?,
        minted: AtomicU64::new(0),
        args,
    });
    let listener = tokio::net::TcpListener::bind(app.args.listen).await?;
    println!("listening http://{}", listener.local_addr()?);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors and the like: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&app), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Reply, std::convert::Infallible> {
    if req.method() != Method::GET {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only"));
    }
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let identity = query
        .iter()
        .find(|(k, _)| k == "identity")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    Ok(match req.uri().path() {
        "/" | "/index.html" => file(&app, "index.html", "text/html; charset=utf-8").await,
        "/phone.js" => file(&app, "phone.js", "text/javascript").await,
        "/jssip.min.js" => file(&app, "build/jssip.min.js", "text/javascript").await,
        "/token" => token(&app, identity),
        "/presence" => presence(&app, identity).await,
        _ => text(StatusCode::NOT_FOUND, "not found"),
    })
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().unwrap());
    r.headers_mut()
        .insert(CACHE_CONTROL, "no-store".parse().unwrap());
    r
}

/// A file of the page, read on each request (edit and reload).
async fn file(app: &App, name: &str, content_type: &'static str) -> Reply {
    match tokio::fs::read(app.dir.join(name)).await {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE, content_type.parse().unwrap());
            r
        }
        Err(e) => text(
            StatusCode::NOT_FOUND,
            &format!("{name}: {e} (run examples/webphone/setup.sh for the JsSIP bundle)"),
        ),
    }
}

/// `GET /token?identity=NAME`: `{"identity","token","ws_url","realm","expires_in"}`.
#[allow(clippy::disallowed_methods)] // a token's iat and exp are wall-clock time by design
fn token(app: &App, identity: &str) -> Reply {
    if !valid_identity(identity) {
        return text(
            StatusCode::BAD_REQUEST,
            "identity: printable ASCII, no spaces, quotes, <, > or \\",
        );
    }
    let a = &app.args;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = app.minted.fetch_add(1, Ordering::Relaxed);
    // What twilio-node's AccessToken with a VoiceGrant signs.
    let mut voice = json!({ "incoming": { "allow": true } });
    if !a.outgoing_app.is_empty() {
        voice["outgoing"] = json!({ "application_sid": a.outgoing_app });
    }
    let claims = json!({
        "jti": format!("{}-{now}-{n}", a.api_key),
        "grants": { "identity": identity, "voice": voice },
        "iat": now,
        "exp": now + a.ttl,
        "iss": a.api_key,
        "sub": a.account,
    });
    let mut header = Header::new(Algorithm::HS256);
    header.cty = Some("twilio-fpa;v=1".to_owned());
    let key = EncodingKey::from_secret(a.api_secret.as_bytes());
    match jsonwebtoken::encode(&header, &claims, &key) {
        Ok(token) => json_reply(
            StatusCode::OK,
            &json!({
                "identity": identity,
                "token": token,
                "ws_url": a.ws_url,
                "realm": a.realm,
                "expires_in": a.ttl,
            }),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /presence?identity=NAME`: the switch's `Clients/{Identity}.json`, as it answered.
async fn presence(app: &App, identity: &str) -> Reply {
    if !valid_identity(identity) {
        return text(
            StatusCode::BAD_REQUEST,
            "identity: printable ASCII, no spaces, quotes, <, > or \\",
        );
    }
    let a = &app.args;
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Clients/{}.json",
        a.api.trim_end_matches('/'),
        a.account,
        identity
    );
    let answer = app
        .http
        .get(&url)
        .basic_auth(&a.account, Some(&a.auth_token))
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = r.bytes().await.map_err(|e| e.to_string());
            match body.and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
            {
                Ok(v) => json_reply(status, &v),
                Err(e) => text(StatusCode::BAD_GATEWAY, &format!("{url}: {e}")),
            }
        }
        Err(e) => text(StatusCode::BAD_GATEWAY, &format!("{url}: {e}")),
    }
}
