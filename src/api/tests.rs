//! REST, metrics and health: most cases call `respond` directly; one test goes over a real
//! loopback listener to check the wire (headers, status line, connection handling).

use base64::Engine as _;
use http_body_util::BodyExt as _;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::*;
use crate::registrar::location::{AorKey, Binding, ContactUpdate, MemoryStore, RegisterRequest};
use crate::sip::peer::Transport;

const AC1: &str = "AC00000000000000000000000000000001";
const AC2: &str = "AC00000000000000000000000000000002";
const TOKEN1: &str = "token-one";
const SK1: &str = "SK00000000000000000000000000000001";
const NOW: u64 = 1_700_000_000;

fn state() -> ApiState {
    let toml = format!(
        "[[accounts]]\nsid = \"{AC1}\"\nauth_token = \"{TOKEN1}\"\n\
         [[accounts.api_keys]]\nsid = \"{SK1}\"\nsecret = \"key-secret\"\n\
         [[accounts]]\nsid = \"{AC2}\"\nauth_token = \"token-two\"\n"
    );
    let config = crate::config::parse("test.toml", &toml).expect("valid config");
    ApiState {
        live: Arc::new(Live::new("test.toml", config)),
        store: Arc::new(MemoryStore::new()),
        presence: Arc::new(Presence::new()),
        metrics: Arc::new(Metrics::new()),
    }
}

fn basic(user: &str, pass: &str) -> String {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {creds}")
}

fn get(state: &ApiState, path: &str, auth: Option<&str>) -> (StatusCode, hyper::HeaderMap, String) {
    let mut req = Request::builder().method(Method::GET).uri(path);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = respond(&req.body(()).unwrap(), state, NOW);
    let (parts, body) = resp.into_parts();
    let bytes = futures_body(body);
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes).unwrap(),
    )
}

/// A `Full` body is ready at once: poll it without a runtime.
fn futures_body(body: Body) -> Vec<u8> {
    let mut fut = std::pin::pin!(body.collect());
    let waker = std::task::Waker::noop();
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    {
        std::task::Poll::Ready(Ok(c)) => c.to_bytes().to_vec(),
        _ => panic!("a Full body is always ready"),
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn register(state: &ApiState, account: &str, identity: &str, contact: &str, expires_at: u64) {
    let key = AorKey::new(account, identity);
    let b = Binding {
        contact: contact.into(),
        expires_at,
        call_id: format!("cid-{contact}").into(),
        cseq: 1,
        instance: Some("\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"".into()),
        reg_id: Some(1),
        path: vec!["<sip:edge.example.com;lr>".into()].into_boxed_slice(),
        source: "198.51.100.7:40000".parse().unwrap(),
        transport: Transport::Tcp,
        conn: Some(3),
        user_agent: Some("Phone/1.0".into()),
        q: Some(0.5),
        registered_at: NOW - 60,
    };
    let req = RegisterRequest {
        key: key.clone(),
        call_id: b.call_id.clone(),
        cseq: 1,
        wildcard_remove: false,
        updates: vec![ContactUpdate::Add(b)],
        max_contacts: 10,
        now: NOW - 60,
    };
    state.store.register(req).expect("register");
    state.presence.sync(&key, state.store.as_ref(), NOW - 60);
}

fn client_path(account: &str, identity: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Clients/{identity}.json")
}

fn assert_twilio_error(body: &str, code: u64, status: u64) {
    let v = json(body);
    assert_eq!(v["code"], code, "{body}");
    assert_eq!(v["status"], status, "{body}");
    assert_eq!(
        v["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{body}"
    );
    assert!(v["message"].is_string(), "{body}");
}

#[test]
fn missing_or_wrong_credentials_get_401() {
    let s = state();
    let path = client_path(AC1, "alice");
    for auth in [
        None,
        Some(basic(AC1, "wrong")),
        Some(basic(AC1, "")),
        Some(basic(AC1, &format!("{TOKEN1}x"))),
        Some(basic(AC2, TOKEN1)),
        Some(basic("ACunknown", TOKEN1)),
        Some(format!("Bearer {TOKEN1}")),
        Some("Basic !!!not-base64".to_owned()),
        Some(basic(&format!("{AC1}{TOKEN1}"), "")),
    ] {
        let (status, headers, body) = get(&s, &path, auth.as_deref());
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            headers["www-authenticate"], "Basic realm=\"Switchboard\"",
            "{auth:?}"
        );
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            json(&body),
            json(
                r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#
            )
        );
    }
    // Unauthenticated requests to unknown API paths are 401 too: nothing is revealed.
    let (status, _, _) = get(&s, "/2010-04-01/Nope", None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn another_accounts_path_is_404() {
    let s = state();
    register(&s, AC2, "bob", "sip:bob@192.0.2.2", NOW + 600);
    let path = client_path(AC2, "bob");
    let (status, _, body) = get(&s, &path, Some(&basic(AC1, TOKEN1)));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_twilio_error(&body, 20404, 404);
    assert!(json(&body)["message"].as_str().unwrap().contains(&path));
    // Its owner sees it.
    let (status, _, body) = get(&s, &path, Some(&basic(AC2, "token-two")));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["status"], "available");
}

#[test]
fn unknown_identity_is_offline_not_404() {
    let s = state();
    let (status, headers, body) = get(&s, &client_path(AC1, "nobody"), Some(&basic(AC1, TOKEN1)));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        json(&body),
        serde_json::json!({
            "identity": "nobody",
            "account_sid": AC1,
            "status": "offline",
            "status_changed_at": null,
            "contacts": [],
            "uri": format!("/2010-04-01/Accounts/{AC1}/Clients/nobody.json"),
        })
    );
}

#[test]
fn api_key_authenticates_its_account() {
    let s = state();
    let (status, _, _) = get(&s, &client_path(AC1, "x"), Some(&basic(SK1, "key-secret")));
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&s, &client_path(AC2, "x"), Some(&basic(SK1, "key-secret")));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&s, &client_path(AC1, "x"), Some(&basic(SK1, TOKEN1)));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn client_json_shape() {
    let s = state();
    register(
        &s,
        AC1,
        "alice smith",
        "sip:alice@192.0.2.1:5060;transport=tcp",
        NOW + 300,
    );
    let auth = basic(AC1, TOKEN1);
    let (status, _, body) = get(&s, &client_path(AC1, "alice%20smith"), Some(&auth));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!({
            "identity": "alice smith",
            "account_sid": AC1,
            "status": "available",
            "status_changed_at": "2023-11-14T22:12:20Z",
            "contacts": [{
                "uri": "sip:alice@192.0.2.1:5060;transport=tcp",
                "transport": "tcp",
                "source": "198.51.100.7:40000",
                "expires": 300,
                "expires_at": "2023-11-14T22:18:20Z",
                "registered_at": "2023-11-14T22:12:20Z",
                "user_agent": "Phone/1.0",
                "instance": "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
                "reg_id": 1,
                "q": 0.5,
                "path": ["<sip:edge.example.com;lr>"],
            }],
            "uri": format!("/2010-04-01/Accounts/{AC1}/Clients/alice%20smith.json"),
        })
    );

    // Busy shows; an expired (unswept) binding shows offline with no contacts.
    s.presence
        .set_busy(&AorKey::new(AC1, "alice smith"), true, NOW);
    let (_, _, body) = get(&s, &client_path(AC1, "alice%20smith"), Some(&auth));
    assert_eq!(json(&body)["status"], "busy");
    register(&s, AC1, "carol", "sip:carol@192.0.2.3", NOW);
    let (_, _, body) = get(&s, &client_path(AC1, "carol"), Some(&auth));
    let v = json(&body);
    assert_eq!(v["status"], "offline");
    assert_eq!(v["contacts"], serde_json::json!([]));

    // A malformed escape is not a resource.
    let (status, _, _) = get(&s, &client_path(AC1, "bad%zz"), Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(
        &s,
        &format!("/2010-04-01/Accounts/{AC1}/Clients/.json"),
        Some(&auth),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(
        &s,
        &format!("/2010-04-01/Accounts/{AC1}/Calls.json"),
        Some(&auth),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn client_list_and_paging() {
    let s = state();
    let auth = basic(AC1, TOKEN1);
    let list = format!("/2010-04-01/Accounts/{AC1}/Clients.json");
    let (status, _, body) = get(&s, &list, Some(&auth));
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["clients"], serde_json::json!([]));
    assert_eq!(v["page"], 0);
    assert_eq!(v["page_size"], 50);
    assert_eq!(v["next_page_uri"], Value::Null);
    assert_eq!(v["uri"], format!("{}?PageSize=50&Page=0", list));

    register(&s, AC1, "bob", "sip:bob@192.0.2.2", NOW + 600);
    register(&s, AC1, "alice", "sip:alice@192.0.2.1", NOW + 600);
    register(&s, AC1, "dave", "sip:dave@192.0.2.4", NOW + 600);
    register(&s, AC2, "eve", "sip:eve@192.0.2.5", NOW + 600);
    // carol: seen before, offline now (recorded presence, no binding).
    let carol = AorKey::new(AC1, "carol");
    s.presence.on_bindings(&carol, 1, NOW - 100);
    s.presence.on_bindings(&carol, 0, NOW - 50);

    let (_, _, body) = get(&s, &list, Some(&auth));
    let v = json(&body);
    let names: Vec<&str> = v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["identity"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);
    assert_eq!(v["clients"][2]["status"], "offline");
    assert_eq!(v["clients"][2]["status_changed_at"], "2023-11-14T22:12:30Z");
    assert_eq!(v["clients"][0]["contacts"][0]["uri"], "sip:alice@192.0.2.1");

    let (_, _, body) = get(&s, &format!("{list}?PageSize=3&Page=0"), Some(&auth));
    let v = json(&body);
    assert_eq!(v["clients"].as_array().unwrap().len(), 3);
    assert_eq!(v["start"], 0);
    assert_eq!(v["end"], 2);
    assert_eq!(v["next_page_uri"], format!("{list}?PageSize=3&Page=1"));
    assert_eq!(v["previous_page_uri"], Value::Null);
    let (_, _, body) = get(&s, &format!("{list}?PageSize=3&Page=1"), Some(&auth));
    let v = json(&body);
    assert_eq!(v["clients"][0]["identity"], "dave");
    assert_eq!(v["next_page_uri"], Value::Null);
    assert_eq!(v["previous_page_uri"], format!("{list}?PageSize=3&Page=0"));
    assert_eq!(v["page_size"], 3);
}

#[test]
fn only_get_and_head() {
    let s = state();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/2010-04-01/Accounts/{AC1}/Clients.json"))
        .header("authorization", basic(AC1, TOKEN1))
        .body(())
        .unwrap();
    let resp = respond(&req, &s, NOW);
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
}

#[test]
fn metrics_render_with_store_and_presence_gauges() {
    let s = state();
    register(&s, AC1, "alice", "sip:alice@192.0.2.1", NOW + 600);
    s.metrics.message_received(Transport::Udp);
    s.metrics
        .register_outcome(crate::metrics::RegisterOutcomeLabel::Ok);
    let (status, headers, body) = get(&s, "/metrics", None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for line in [
        "sip_messages_received_total{transport=\"udp\"} 1",
        "sip_register_total{outcome=\"ok\"} 1",
        "registrar_bindings 1",
        "registrar_aors_available 1",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
}

async fn raw(addr: std::net::SocketAddr, req: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn over_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(serve(listener, Arc::new(state())));

    let ok = raw(
        addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("content-type: application/json"), "{ok}");
    assert!(ok.ends_with(r#"{"status":"ok"}"#), "{ok}");

    let nf = raw(
        addr,
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(nf.starts_with("HTTP/1.1 404 Not Found\r\n"), "{nf}");
    assert!(nf.contains(r#""status":404"#), "{nf}");

    let m = raw(
        addr,
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(m.starts_with("HTTP/1.1 405 "), "{m}");

    let path = client_path(AC1, "alice");
    let unauth = raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        unauth.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{unauth}"
    );
    assert!(
        unauth.contains("www-authenticate: Basic realm=\"Switchboard\"\r\n"),
        "{unauth}"
    );

    let authed = raw(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            basic(AC1, TOKEN1)
        ),
    )
    .await;
    assert!(authed.starts_with("HTTP/1.1 200 OK\r\n"), "{authed}");
    assert!(authed.contains(r#""status":"offline""#), "{authed}");

    let metrics = raw(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
    assert!(metrics.contains("\r\n\r\n# HELP "), "{metrics}");
    server.abort();
}
