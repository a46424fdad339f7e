//! A small customer web app: serves TwiML to the switch, checks `X-Twilio-Signature` on
//! every request, and logs what it saw as one JSON line per request on stdout.
//!
//! With the sample config (`conf/switchboard.toml`, whose account auth token is
//! `demo-auth-token-change-me`, the default of `--auth-token`):
//!
//! ```text
//! cargo run --example customer_app -- --listen 127.0.0.1:3000
//! # in conf/switchboard.toml, [[applications]]: replace `twiml = …` with
//! #   voice_url = "http://127.0.0.1:3000/voice"
//! cargo run --release -- run -c conf/switchboard.toml
//! ```
//!
//! Options:
//! - `--listen ADDR` (default `127.0.0.1:3000`; port 0 picks a free port);
//! - `--auth-token TOKEN`: the account's auth token the switch signs with;
//! - `--script FILE`: what to answer, else the built-in demo (`/voice` dials client
//!   `alice` with `action="/dial-status"`, `/dial-status` hangs up). A script is TOML:
//!
//! ```toml
//! [[route]]
//! path = "/voice"            # exact path, the query is ignored
//! status = 200               # [200]
//! content_type = "text/xml"  # ["text/xml"]
//! body = "<Response><Dial><Client>bob</Client></Dial></Response>"
//! delay_ms = 0               # [0] wait this long before answering
//! after = 2                  # optional: from the 3rd signed hit on, answer `after_body`
//! after_body = "<Response><Hangup/></Response>"
//!
//! [[route]]
//! path = "/hello.wav"        # a media file: served from `file`, no signature needed
//! content_type = "audio/x-wav"   # (Twilio does not sign `<Play>` fetches)
//! file = "/srv/prompts/hello.wav"
//! ```
//!
//! Output (stdout, each line flushed): first `listening http://ADDR`, then for every request
//! `{"method":"POST","path":"/voice","query":"","params":{"CallSid":"CA…",…},
//! "signature_ok":true,"status":200,"t_ms":<unix ms>}`. `params` are the form fields of a
//! POST or the query fields of a GET (a name sent twice maps to an array). The signature is
//! checked over `http://{Host header}{path and query}` plus, for a POST, the form fields
//! (reference §1.4); a bad or missing one gets 403. An unknown path gets 404.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::webhook::sign::{HEADER, verify_twilio_signature};

/// Largest request body read; the switch's forms are a few hundred bytes.
const MAX_BODY: usize = 1 << 20;

#[derive(Parser)]
#[command(about = "A customer web app serving TwiML, for demos and black-box tests")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The account auth token requests must be signed with.
    #[arg(long, default_value = "demo-auth-token-change-me")]
    auth_token: String,
    /// TOML file of `[[route]]`s to serve instead of the built-in demo.
    #[arg(long)]
    script: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default)]
    route: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    path: String,
    #[serde(default = "default_status")]
    status: u16,
    #[serde(default = "default_content_type")]
    content_type: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    delay_ms: u64,
    /// After this many signed hits, answer `after_body` instead of `body`.
    after: Option<u64>,
    #[serde(default)]
    after_body: String,
    /// Serve this file's bytes instead of `body`, to anyone: media, not instructions.
    file: Option<std::path::PathBuf>,
    /// Signed hits so far.
    #[serde(skip)]
    hits: AtomicU64,
}

fn default_status() -> u16 {
    200
}

fn default_content_type() -> String {
    "text/xml".to_owned()
}

fn demo_route(path: &str, body: &str) -> Route {
    Route {
        path: path.to_owned(),
        status: default_status(),
        content_type: default_content_type(),
        body: body.to_owned(),
        delay_ms: 0,
        after: None,
        after_body: String::new(),
        file: None,
        hits: AtomicU64::new(0),
    }
}

fn demo_script() -> Script {
    Script {
        route: vec![
            demo_route(
                "/voice",
                r#"<Response><Dial action="/dial-status" timeout="20"><Client>alice</Client></Dial></Response>"#,
            ),
            demo_route("/dial-status", "<Response><Hangup/></Response>"),
        ],
    }
}

struct App {
    auth_token: String,
    script: Script,
}

/// Prints one line on stdout and flushes it, so a reader of the pipe sees it at once.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[allow(clippy::disallowed_methods)] // the log's timestamp is wall-clock time by design
fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The fields as a JSON object; a name given more than once maps to an array of values.
fn params_json(params: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in params {
        let value = Value::String(value.clone());
        match map.get_mut(name) {
            None => {
                map.insert(name.clone(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    map
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(ct) = content_type.parse() {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    resp
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let t_ms = unix_ms();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let signature = req
        .headers()
        .get(HEADER)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));

    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                String::new(),
            ));
        }
    };
    // A POST signs its form fields; a GET's fields are in the URL, which is signed as is.
    let form: Vec<(String, String)> = if method == Method::POST && is_form {
        form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    let logged = if method == Method::POST {
        params_json(&form)
    } else {
        params_json(
            &form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect::<Vec<_>>(),
        )
    };
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let url = format!("http://{host}{target}");
    let signature_ok = signature
        .as_deref()
        .is_some_and(|sig| verify_twilio_signature(&app.auth_token, &url, &form, sig));

    let route = app.script.route.iter().find(|r| r.path == path);
    if let Some(r) = route
        && let Some(file) = &r.file
    {
        let (code, response) = match std::fs::read(file) {
            Ok(bytes) => (200, reply(StatusCode::OK, &r.content_type, bytes)),
            Err(_) => (
                404,
                reply(StatusCode::NOT_FOUND, "text/plain", "no such file\n"),
            ),
        };
        let line = json!({
            "method": method.as_str(),
            "path": path,
            "query": query,
            "params": logged,
            "signature_ok": signature_ok,
            "status": code,
            "t_ms": t_ms,
        });
        emit(&line.to_string());
        return Ok(response);
    }
    let (status, delay, response) = match (signature_ok, route) {
        (false, _) => (
            403,
            0,
            reply(StatusCode::FORBIDDEN, "text/plain", "bad signature\n"),
        ),
        (true, None) => (
            404,
            0,
            reply(StatusCode::NOT_FOUND, "text/plain", "no such path\n"),
        ),
        (true, Some(r)) => {
            let hit = r.hits.fetch_add(1, Ordering::Relaxed);
            let body = match r.after {
                Some(n) if hit >= n => r.after_body.clone(),
                _ => r.body.clone(),
            };
            let code = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                code.as_u16(),
                r.delay_ms,
                reply(code, &r.content_type, body),
            )
        }
    };
    let line = json!({
        "method": method.as_str(),
        "path": path,
        "query": query,
        "params": logged,
        "signature_ok": signature_ok,
        "status": status,
        "t_ms": t_ms,
    });
    emit(&line.to_string());
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(response)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("customer_app: cannot start tokio: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("customer_app: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let script = match &args.script {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => demo_script(),
    };
    let app = Arc::new(App {
        auth_token: args.auth_token,
        script,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    emit(&format!("listening http://{local}"));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
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
