//! REST, metrics and health: most cases call `respond` directly; one test goes over a real
//! loopback listener to check the wire (headers, status line, connection handling, request
//! bodies). Calls are created through a recording `Originator`: this is the REST layer's
//! test; the real originator is exercised black-box in `sip-tests/calls.rs`.

use base64::Engine as _;
use http_body_util::BodyExt as _;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::*;
use crate::call::recordings::{RecordingInfo, Recordings};
use crate::call::registry::CallRegistry;
use crate::call::{
    CallCommand, CallInfo, CallStatus, Direction, OriginateError, OriginateRequest, Originator,
};
use crate::instructions::Method as InstrMethod;
use crate::registrar::location::{AorKey, Binding, ContactUpdate, MemoryStore, RegisterRequest};
use crate::sip::peer::Transport;

const AC1: &str = "AC00000000000000000000000000000001";
const AC2: &str = "AC00000000000000000000000000000002";
const TOKEN1: &str = "token-one";
const SK1: &str = "SK00000000000000000000000000000001";
const NOW: u64 = 1_700_000_000;
const AP1: &str = "AP00000000000000000000000000000001";
const AP2: &str = "AP00000000000000000000000000000002";

fn state() -> ApiState {
    // Tests that add recordings use `state_with_recordings`; the rest share one directory
    // per process that stays empty.
    let dir = std::env::temp_dir().join(format!("switchboard-api-tests-{}", std::process::id()));
    state_in(&dir)
}

fn state_in(recordings_dir: &std::path::Path) -> ApiState {
    let toml = format!(
        "[[accounts]]\nsid = \"{AC1}\"\nauth_token = \"{TOKEN1}\"\n\
         [[accounts.api_keys]]\nsid = \"{SK1}\"\nsecret = \"key-secret\"\n\
         [[accounts]]\nsid = \"{AC2}\"\nauth_token = \"token-two\"\n\
         [[applications]]\nsid = \"{AP1}\"\naccount = \"{AC1}\"\n\
         voice_url = \"https://app.example.com/voice\"\nvoice_method = \"GET\"\n\
         status_callback = \"https://app.example.com/status\"\n\
         [[applications]]\nsid = \"{AP2}\"\naccount = \"{AC2}\"\ntwiml = \"<Response/>\"\n"
    );
    let config = crate::config::parse("test.toml", &toml).expect("valid config");
    ApiState {
        live: Arc::new(Live::new("test.toml", config)),
        store: Arc::new(MemoryStore::new()),
        presence: Arc::new(Presence::new()),
        metrics: Arc::new(Metrics::new()),
        calls: Arc::new(CallRegistry::new(100, None)),
        recordings: Recordings::open(recordings_dir).expect("recordings dir"),
        conferences: Default::default(),
        queues: Default::default(),
        media: None,
        originator: None,
        guard: Arc::new(crate::registrar::bans::AuthGuard::new(Default::default())),
        cluster: None,
    }
}

fn basic(user: &str, pass: &str) -> String {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {creds}")
}

fn get(state: &ApiState, path: &str, auth: Option<&str>) -> (StatusCode, hyper::HeaderMap, String) {
    send(state, Method::GET, path, auth, "")
}

fn post(
    state: &ApiState,
    path: &str,
    auth: &str,
    form: &str,
) -> (StatusCode, hyper::HeaderMap, String) {
    send(state, Method::POST, path, Some(auth), form)
}

fn send(
    state: &ApiState,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, hyper::HeaderMap, String) {
    let (status, headers, bytes) = send_bytes(state, method, path, auth, body);
    (status, headers, String::from_utf8(bytes).unwrap())
}

fn send_bytes(
    state: &ApiState,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, hyper::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req.body(Bytes::from(body.to_owned())).unwrap();
    let resp = respond(&req, state, NOW);
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, futures_body(body))
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
        edge: None,
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
    crate::registrar::location::ready(state.store.register(req)).expect("register");
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
        &format!("/2010-04-01/Accounts/{AC1}/Applications.json"),
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
        .body(Bytes::new())
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

// ---------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------

fn calls_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Calls.json")
}

fn call_path(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json")
}

fn sid(n: u64) -> String {
    format!("CA{n:032x}")
}

/// A call created at `NOW` + `n` seconds, ringing.
fn call(n: u64, account: &str) -> CallInfo {
    CallInfo {
        sid: sid(n),
        account_sid: account.into(),
        parent_call_sid: None,
        from: "+15550100001".into(),
        to: "client:alice".into(),
        direction: Direction::Inbound,
        status: CallStatus::Ringing,
        created_ms: (NOW + n) * 1000,
        answered_ms: None,
        ended_ms: None,
        trunk: Some("carrier".into()),
        sip_call_id: Some(format!("cid-{n}")),
        sip_response_code: None,
        application_sid: None,
    }
}

/// Remembers what it was asked and answers with a queued call, or a set error.
#[derive(Default)]
struct Recording {
    requests: std::sync::Mutex<Vec<OriginateRequest>>,
    fail: Option<OriginateError>,
}

impl Originator for Recording {
    fn originate(&self, req: OriginateRequest) -> Result<CallInfo, OriginateError> {
        self.requests.lock().unwrap().push(req.clone());
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        Ok(CallInfo {
            sid: sid(0xabc),
            account_sid: req.account_sid,
            parent_call_sid: None,
            from: req.from,
            to: req.to,
            direction: Direction::OutboundApi,
            status: CallStatus::Queued,
            created_ms: NOW * 1000,
            answered_ms: None,
            ended_ms: None,
            trunk: None,
            sip_call_id: None,
            sip_response_code: None,
            application_sid: None,
        })
    }
}

fn with_originator(fail: Option<OriginateError>) -> (ApiState, Arc<Recording>) {
    let mut s = state();
    let rec = Arc::new(Recording {
        fail,
        ..Recording::default()
    });
    s.originator = Some(rec.clone());
    (s, rec)
}

#[test]
fn calls_need_auth_and_stay_in_their_account() {
    let s = state();
    s.calls.insert(call(1, AC1), None);
    s.calls.insert(call(2, AC2), None);
    let auth = basic(AC1, TOKEN1);
    for path in [calls_path(AC1), call_path(AC1, &sid(1))] {
        let (status, _, _) = get(&s, &path, None);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _, _) = post(&s, &path, &basic(AC1, "wrong"), "Status=completed");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _, _) = get(&s, &path, Some(&basic(SK1, "key-secret")));
        assert_eq!(status, StatusCode::OK, "API keys work too: {path}");
    }
    // Another account's path, and another account's call under our path: 404 alike.
    let (status, _, body) = get(&s, &calls_path(AC2), Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_twilio_error(&body, 20404, 404);
    let (status, _, body) = get(&s, &call_path(AC1, &sid(2)), Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_twilio_error(&body, 20404, 404);
    assert!(body.contains(&call_path(AC1, &sid(2))), "{body}");
    let (status, _, _) = post(&s, &call_path(AC1, &sid(2)), &auth, "Status=completed");
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Unknown sids and malformed paths.
    for path in [
        call_path(AC1, &sid(3)),
        call_path(AC1, "nonsense"),
        format!("/2010-04-01/Accounts/{AC1}/Calls/.json"),
        format!("/2010-04-01/Accounts/{AC1}/Calls/{}", sid(1)),
        format!(
            "/2010-04-01/Accounts/{AC1}/Calls/{}/Notifications.json",
            sid(1)
        ),
    ] {
        let (status, _, _) = get(&s, &path, Some(&auth));
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // Methods.
    for path in [calls_path(AC1), call_path(AC1, &sid(1))] {
        let (status, headers, body) = send(&s, Method::DELETE, &path, Some(&auth), "");
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(headers["allow"], "GET, HEAD, POST");
        assert_twilio_error(&body, 20004, 405);
    }
    let (status, _, _) = send(&s, Method::HEAD, &calls_path(AC1), Some(&auth), "");
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn call_json_shape() {
    let s = state();
    let mut c = call(1, AC1);
    c.parent_call_sid = Some(sid(9));
    c.direction = Direction::OutboundDial;
    s.calls.insert(c, None);
    let auth = basic(AC1, TOKEN1);
    let path = call_path(AC1, &sid(1));
    let (status, headers, body) = get(&s, &path, Some(&auth));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        json(&body),
        serde_json::json!({
            "sid": sid(1),
            "date_created": "Tue, 14 Nov 2023 22:13:21 +0000",
            "date_updated": "Tue, 14 Nov 2023 22:13:21 +0000",
            "parent_call_sid": sid(9),
            "account_sid": AC1,
            "to": "client:alice",
            "to_formatted": "client:alice",
            "from": "+15550100001",
            "from_formatted": "+15550100001",
            "phone_number_sid": null,
            "status": "ringing",
            "start_time": "Tue, 14 Nov 2023 22:13:21 +0000",
            "end_time": null,
            "duration": null,
            "price": null,
            "price_unit": "USD",
            "direction": "outbound-dial",
            "answered_by": null,
            "annotation": null,
            "api_version": "2010-04-01",
            "forwarded_from": null,
            "group_sid": null,
            "caller_name": null,
            "queue_time": "0",
            "trunk_sid": null,
            "uri": path,
            "subresource_uris": {},
        })
    );

    // Answered, then finished: start is the answer, duration counts from it.
    s.calls.update(&sid(1), |c| {
        c.status = CallStatus::InProgress;
        c.answered_ms = Some((NOW + 5) * 1000 + 250);
    });
    let v = json(&get(&s, &path, Some(&auth)).2);
    assert_eq!(v["status"], "in-progress");
    assert_eq!(v["start_time"], "Tue, 14 Nov 2023 22:13:25 +0000");
    assert_eq!(v["duration"], Value::Null);
    s.calls.finish(&sid(1), |c| {
        c.status = CallStatus::Completed;
        c.ended_ms = Some((NOW + 47) * 1000);
    });
    let v = json(&get(&s, &path, Some(&auth)).2);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["end_time"], "Tue, 14 Nov 2023 22:14:07 +0000");
    assert_eq!(v["date_updated"], "Tue, 14 Nov 2023 22:14:07 +0000");
    assert_eq!(v["duration"], "41");

    // Queued (not dialed yet): no start time. Unanswered and over: duration "0".
    let mut q = call(2, AC1);
    q.status = CallStatus::Queued;
    s.calls.insert(q, None);
    let v = json(&get(&s, &call_path(AC1, &sid(2)), Some(&auth)).2);
    assert_eq!(v["start_time"], Value::Null);
    s.calls.finish(&sid(2), |c| c.status = CallStatus::NoAnswer);
    let v = json(&get(&s, &call_path(AC1, &sid(2)), Some(&auth)).2);
    assert_eq!(v["status"], "no-answer");
    assert_eq!(v["duration"], "0");
}

#[test]
fn call_list_filters_and_pages() {
    let s = state();
    for n in 1..=6 {
        let mut c = call(n, AC1);
        if n % 2 == 0 {
            c.to = "+15550100002".into();
        }
        if n >= 5 {
            c.parent_call_sid = Some(sid(1));
            c.from = "client:bob".into();
        }
        s.calls.insert(c, None);
    }
    s.calls.insert(call(7, AC2), None);
    s.calls.finish(&sid(3), |c| c.status = CallStatus::Busy);
    let auth = basic(AC1, TOKEN1);
    let list = calls_path(AC1);
    let sids = |v: &Value| -> Vec<String> {
        v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["sid"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, _, body) = get(&s, &list, Some(&auth));
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert_eq!(sids(&v), (1..=6).rev().map(sid).collect::<Vec<_>>());
    assert_eq!(v["page"], 0);
    assert_eq!(v["page_size"], 50);
    assert_eq!(v["start"], 0);
    assert_eq!(v["end"], 5);
    assert_eq!(v["uri"], format!("{list}?PageSize=50&Page=0"));
    assert_eq!(v["first_page_uri"], format!("{list}?PageSize=50&Page=0"));
    assert_eq!(v["next_page_uri"], Value::Null);
    assert_eq!(v["previous_page_uri"], Value::Null);

    let q = |query: &str| json(&get(&s, &format!("{list}?{query}"), Some(&auth)).2);
    assert_eq!(sids(&q("To=%2B15550100002")), [sid(6), sid(4), sid(2)]);
    assert_eq!(sids(&q("From=client%3Abob")), [sid(6), sid(5)]);
    assert_eq!(
        sids(&q(&format!("ParentCallSid={}", sid(1)))),
        [sid(6), sid(5)]
    );
    assert_eq!(sids(&q("Status=busy")), [sid(3)]);
    assert_eq!(
        sids(&q("Status=ringing&To=client%3Aalice")),
        [sid(5), sid(1)]
    );
    assert!(sids(&q("To=nobody")).is_empty());

    // Paging keeps the filters in its links.
    let v = q("To=%2B15550100002&PageSize=2");
    assert_eq!(sids(&v), [sid(6), sid(4)]);
    assert_eq!(v["page_size"], 2);
    assert_eq!(
        v["next_page_uri"],
        format!("{list}?To=%2B15550100002&PageSize=2&Page=1")
    );
    let v = q("To=%2B15550100002&PageSize=2&Page=1");
    assert_eq!(sids(&v), [sid(2)]);
    assert_eq!(v["start"], 2);
    assert_eq!(v["end"], 2);
    assert_eq!(v["next_page_uri"], Value::Null);
    assert_eq!(
        v["previous_page_uri"],
        format!("{list}?To=%2B15550100002&PageSize=2&Page=0")
    );
    // PageSize is capped at 1000; junk falls back to 50.
    assert_eq!(q("PageSize=5000")["page_size"], 1000);
    assert_eq!(q("PageSize=lots")["page_size"], 50);

    let (status, _, body) = get(&s, &format!("{list}?Status=on-hold"), Some(&auth));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_twilio_error(&body, 21200, 400);
}

#[test]
fn create_call_passes_the_request_to_the_originator() {
    let (s, rec) = with_originator(None);
    let auth = basic(AC1, TOKEN1);
    let form = "To=client%3Aalice&From=%2B1+%28555%29+010-0001\
                &Url=https%3A%2F%2Fapp.example.com%2Fcall%3Fa%3D1&Method=get\
                &FallbackUrl=https%3A%2F%2Fapp.example.com%2Ffallback&FallbackMethod=GET\
                &StatusCallback=https%3A%2F%2Fapp.example.com%2Fstatus&StatusCallbackMethod=POST\
                &StatusCallbackEvent=initiated+ringing&StatusCallbackEvent=answered\
                &StatusCallbackEvent=completed&StatusCallbackEvent=ringing\
                &Timeout=900&TimeLimit=120&Record=false";
    let (status, _, body) = post(&s, &calls_path(AC1), &auth, form);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let v = json(&body);
    assert_eq!(v["sid"], sid(0xabc));
    assert_eq!(v["status"], "queued");
    assert_eq!(v["direction"], "outbound-api");
    assert_eq!(v["to"], "client:alice");
    assert_eq!(v["from"], "+15550100001");
    assert_eq!(v["start_time"], Value::Null);
    assert_eq!(v["uri"], call_path(AC1, &sid(0xabc)));
    let reqs = rec.requests.lock().unwrap();
    assert_eq!(
        reqs[..],
        [OriginateRequest {
            account_sid: AC1.into(),
            to: "client:alice".into(),
            from: "+15550100001".into(),
            url: Some("https://app.example.com/call?a=1".into()),
            method: InstrMethod::Get,
            twiml: None,
            fallback_url: Some("https://app.example.com/fallback".into()),
            fallback_method: InstrMethod::Get,
            status_callback: Some("https://app.example.com/status".into()),
            status_callback_method: InstrMethod::Post,
            status_callback_events: ["initiated", "ringing", "answered", "completed"]
                .map(String::from)
                .to_vec(),
            // Twilio lowers a Timeout above 600 to 600.
            timeout_secs: 600,
            time_limit_secs: 120,
        }]
    );
}

#[test]
fn create_call_defaults_twiml_and_application() {
    let (s, rec) = with_originator(None);
    let auth = basic(AC1, TOKEN1);
    let twiml = "<Response><Say>Hi</Say></Response>";
    let form = format!(
        "To=sip%3Abob%40example.com&From=client%3Asupport&Twiml={}",
        crate::percent::encode(twiml)
    );
    let (status, _, body) = post(&s, &calls_path(AC1), &auth, &form);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An ApplicationSid of the account brings its URLs and methods.
    let form = format!("To=%2B15550100009&From=%2B15550100001&ApplicationSid={AP1}");
    let (status, _, body) = post(&s, &calls_path(AC1), &auth, &form);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reqs = rec.requests.lock().unwrap();
    let r = &reqs[0];
    assert_eq!(r.to, "sip:bob@example.com");
    assert_eq!(r.from, "client:support");
    assert_eq!(r.twiml.as_deref(), Some(twiml));
    assert_eq!(r.url, None);
    assert_eq!(r.method, InstrMethod::Post);
    assert_eq!(r.status_callback_events, Vec::<String>::new());
    assert_eq!((r.timeout_secs, r.time_limit_secs), (60, 14_400));
    let r = &reqs[1];
    assert_eq!(r.url.as_deref(), Some("https://app.example.com/voice"));
    assert_eq!(r.method, InstrMethod::Get);
    assert_eq!(
        r.status_callback.as_deref(),
        Some("https://app.example.com/status")
    );
    assert_eq!(r.twiml, None);
}

#[test]
fn create_call_validation() {
    let (s, rec) = with_originator(None);
    let auth = basic(AC1, TOKEN1);
    let ok = "To=%2B15550100009&From=%2B15550100001";
    let url = "Url=https%3A%2F%2Fapp.example.com%2Fx";
    let long = "x".repeat(4001);
    for (form, code) in [
        (format!("From=%2B15550100001&{url}"), 21201),
        (format!("To=&From=%2B15550100001&{url}"), 21201),
        (format!("To=%2B15550100009&{url}"), 21213),
        (format!("To=alice&From=%2B15550100001&{url}"), 21211),
        (format!("To=client%3A&From=%2B15550100001&{url}"), 21211),
        (
            format!("To=%2B15550100009&From=nobody%20at%20all&{url}"),
            21212,
        ),
        (ok.to_owned(), 21205),
        (format!("{ok}&Url=ftp%3A%2F%2Fx%2Fy"), 21205),
        (format!("{ok}&Url=%2Frelative"), 21205),
        (format!("{ok}&{url}&Twiml=%3CResponse%2F%3E"), 21200),
        (format!("{ok}&{url}&ApplicationSid={AP1}"), 21200),
        (format!("{ok}&Twiml={long}"), 32018),
        (format!("{ok}&ApplicationSid={AP2}"), 21218),
        (format!("{ok}&ApplicationSid=AP123"), 21218),
        (format!("{ok}&{url}&Method=PUT"), 21200),
        (format!("{ok}&{url}&StatusCallbackMethod=DELETE"), 21200),
        (format!("{ok}&{url}&FallbackUrl=nope"), 21205),
        (format!("{ok}&{url}&StatusCallback=nope"), 21609),
        (
            format!("{ok}&{url}&StatusCallbackEvent=answered+hungup"),
            21200,
        ),
        (format!("{ok}&{url}&Timeout=0"), 21200),
        (format!("{ok}&{url}&Timeout=soon"), 21200),
        (format!("{ok}&{url}&TimeLimit=-5"), 21200),
    ] {
        let (status, _, body) = post(&s, &calls_path(AC1), &auth, &form);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}: {body}");
        assert_twilio_error(&body, code, 400);
    }
    // None of them reached the originator; exactly 4000 characters is fine.
    assert!(rec.requests.lock().unwrap().is_empty());
    let form = format!("{ok}&Twiml={}", "x".repeat(4000));
    let (status, _, _) = post(&s, &calls_path(AC1), &auth, &form);
    assert_eq!(status, StatusCode::CREATED);
}

#[test]
fn create_call_reports_originator_errors() {
    let auth = basic(AC1, TOKEN1);
    let form = "To=%2B15550100009&From=%2B15550100001&Twiml=%3CResponse%2F%3E";
    // No originator installed (the call service is not running): 503.
    let s = state();
    let (status, headers, body) = post(&s, &calls_path(AC1), &auth, form);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "5");
    assert_twilio_error(&body, 20503, 503);
    let (s, _) = with_originator(Some(OriginateError::Unavailable("too many calls".into())));
    let (status, _, body) = post(&s, &calls_path(AC1), &auth, form);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("too many calls"), "{body}");
    let (s, _) = with_originator(Some(OriginateError::Invalid {
        code: 21210,
        message: "no route to +15550100009".into(),
    }));
    let (status, _, body) = post(&s, &calls_path(AC1), &auth, form);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_twilio_error(&body, 21210, 400);
    assert!(body.contains("no route"), "{body}");
}

#[test]
fn modify_call_delivers_commands() {
    let s = state();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut live = call(1, AC1);
    live.status = CallStatus::InProgress;
    live.answered_ms = Some((NOW + 2) * 1000);
    s.calls.insert(live, Some(tx));
    let auth = basic(AC1, TOKEN1);
    let path = call_path(AC1, &sid(1));
    for (form, want) in [
        (
            "Url=https%3A%2F%2Fapp.example.com%2Fnext",
            CallCommand::Redirect {
                url: "https://app.example.com/next".into(),
                method: InstrMethod::Post,
            },
        ),
        (
            "Url=https%3A%2F%2Fapp.example.com%2Fnext&Method=GET",
            CallCommand::Redirect {
                url: "https://app.example.com/next".into(),
                method: InstrMethod::Get,
            },
        ),
        (
            "Twiml=%3CResponse%3E%3CHangup%2F%3E%3C%2FResponse%3E",
            CallCommand::Twiml("<Response><Hangup/></Response>".into()),
        ),
        ("Status=completed", CallCommand::Hangup),
        ("Status=canceled", CallCommand::Cancel),
        // Ending wins over new instructions.
        (
            "Status=completed&Url=https%3A%2F%2Fx.example.com%2F",
            CallCommand::Hangup,
        ),
    ] {
        let (status, _, body) = post(&s, &path, &auth, form);
        assert_eq!(status, StatusCode::OK, "{form}: {body}");
        let v = json(&body);
        assert_eq!(v["sid"], sid(1));
        assert_eq!(v["status"], "in-progress");
        assert_eq!(rx.try_recv().expect(form), want, "{form}");
    }
    // Nothing to change: the call as it is, and no command.
    let (status, _, _) = post(&s, &path, &auth, "");
    assert_eq!(status, StatusCode::OK);
    assert!(rx.try_recv().is_err());
    // Bad parameters: 400 and no command.
    for (form, code) in [
        ("Status=paused", 21200),
        ("Url=nope", 21205),
        (
            "Url=https%3A%2F%2Fa.example.com%2F&Twiml=%3CResponse%2F%3E",
            21200,
        ),
        ("Url=https%3A%2F%2Fa.example.com%2F&Method=PATCH", 21200),
    ] {
        let (status, _, body) = post(&s, &path, &auth, form);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}");
        assert_twilio_error(&body, code, 400);
    }
    assert!(rx.try_recv().is_err());

    // A <Dial> leg (no control handle) is modified through its parent.
    s.calls.insert(call(2, AC1), None);
    let (status, _, body) = post(&s, &call_path(AC1, &sid(2)), &auth, "Status=completed");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_twilio_error(&body, 21220, 400);

    // Finished: 21220, and the record is still there to fetch.
    s.calls
        .finish(&sid(1), |c| c.status = CallStatus::Completed);
    let (status, _, body) = post(&s, &path, &auth, "Status=completed");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_twilio_error(&body, 21220, 400);
    let (status, _, _) = get(&s, &path, Some(&auth));
    assert_eq!(status, StatusCode::OK);
    // Unknown: 404.
    let (status, _, _) = post(&s, &call_path(AC1, &sid(99)), &auth, "Status=completed");
    assert_eq!(status, StatusCode::NOT_FOUND);
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
    let mut state = state();
    state.originator = Some(Arc::new(Recording::default()));
    let server = tokio::spawn(serve(listener, Arc::new(state)));

    let ok = raw(
        addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("content-type: application/json"), "{ok}");
    assert!(ok.ends_with(r#"{"status":"ok","store":"up"}"#), "{ok}");

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

    // A form-encoded POST body reaches the handler.
    let form = "To=client%3Aalice&From=%2B15550100001&Twiml=%3CResponse%2F%3E";
    let created = raw(
        addr,
        &format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            calls_path(AC1),
            basic(AC1, TOKEN1),
            form.len()
        ),
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201 Created\r\n"), "{created}");
    assert!(created.contains(r#""to":"client:alice""#), "{created}");

    // A body over the cap is refused without reading it all.
    let too_big = raw(
        addr,
        &format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            calls_path(AC1),
            MAX_BODY_BYTES + 1
        ),
    )
    .await;
    assert!(too_big.starts_with("HTTP/1.1 413 "), "{too_big}");
    server.abort();
}

// ---------------------------------------------------------------------------------------
// Recordings
// ---------------------------------------------------------------------------------------

/// A state whose recordings live in a fresh directory (removed by the guard).
struct RecDir(std::path::PathBuf);

impl Drop for RecDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn state_with_recordings() -> (ApiState, RecDir) {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-api-recordings-{}-{:x}",
        std::process::id(),
        crate::ids::random_u64()
    ));
    let s = state_in(&dir);
    s.recordings.set_base_url("http://127.0.0.1:8080".into());
    (s, RecDir(dir))
}

/// A finished `<Record>` of call `n` started at `NOW` + `at` seconds, with `audio`.
fn add_recording(s: &ApiState, account: &str, n: u64, at: u64, audio: &[u8]) -> RecordingInfo {
    let mut info = s
        .recordings
        .new_record_verb(account, &sid(n), (NOW + at) * 1000);
    std::fs::write(&info.path, audio).unwrap();
    info.duration_secs = 4;
    info.date_created_ms = (NOW + at + 4) * 1000;
    s.recordings.add(info).unwrap()
}

fn recordings_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Recordings.json")
}

fn recording_path(account: &str, sid: &str, ext: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Recordings/{sid}{ext}")
}

/// Bytes that are not UTF-8, so a mangled body shows.
fn wav_bytes(n: u8) -> Vec<u8> {
    let mut v = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
    v.extend((0..=255u8).map(|b| b ^ n));
    v
}

#[test]
fn recording_json_shape() {
    let (s, _dir) = state_with_recordings();
    let r = add_recording(&s, AC1, 1, 10, &wav_bytes(1));
    let auth = basic(AC1, TOKEN1);
    let (status, headers, body) = get(&s, &recording_path(AC1, &r.sid, ".json"), Some(&auth));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let expected = serde_json::json!({
        "account_sid": AC1,
        "api_version": "2010-04-01",
        "call_sid": sid(1),
        "conference_sid": null,
        "date_created": "Tue, 14 Nov 2023 22:13:34 +0000",
        "date_updated": "Tue, 14 Nov 2023 22:13:34 +0000",
        "start_time": "Tue, 14 Nov 2023 22:13:30 +0000",
        "duration": "4",
        "sid": r.sid,
        "price": null,
        "price_unit": "USD",
        "status": "completed",
        "channels": 1,
        "source": "RecordVerb",
        "error_code": null,
        "uri": format!("/2010-04-01/Accounts/{AC1}/Recordings/{}.json", r.sid),
        "encryption_details": null,
        "subresource_uris": {},
        "media_url": format!("http://127.0.0.1:8080/2010-04-01/Accounts/{AC1}/Recordings/{}", r.sid),
    });
    assert_eq!(json(&body), expected);
    // Under its call, the same document; under another call, nothing.
    let under_call = format!(
        "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings/{}.json",
        sid(1),
        r.sid
    );
    let (status, _, body) = get(&s, &under_call, Some(&auth));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body), expected);
    let wrong_call = format!(
        "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings/{}.json",
        sid(2),
        r.sid
    );
    let (status, _, _) = get(&s, &wrong_call, Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn recording_list_filters_and_pages() {
    let (s, _dir) = state_with_recordings();
    let a = add_recording(&s, AC1, 1, 10, b"a");
    let b = add_recording(&s, AC1, 2, 20, b"b");
    let c = add_recording(&s, AC1, 1, 30, b"c");
    add_recording(&s, AC2, 1, 40, b"other");
    let auth = basic(AC1, TOKEN1);
    let sids = |body: &str| -> Vec<String> {
        json(body)["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sid"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, _, body) = get(&s, &recordings_path(AC1), Some(&auth));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(sids(&body), [c.sid.clone(), b.sid.clone(), a.sid.clone()]);
    let v = json(&body);
    assert_eq!(v["page"], 0);
    assert_eq!(v["page_size"], 50);
    assert_eq!(v["start"], 0);
    assert_eq!(v["end"], 2);
    assert_eq!(v["next_page_uri"], Value::Null);
    assert_eq!(v["previous_page_uri"], Value::Null);
    assert_eq!(
        v["first_page_uri"],
        format!("/2010-04-01/Accounts/{AC1}/Recordings.json?PageSize=50&Page=0")
    );

    // CallSid filter, and the call's own list.
    let (_, _, body) = get(
        &s,
        &format!("{}?CallSid={}", recordings_path(AC1), sid(1)),
        Some(&auth),
    );
    assert_eq!(sids(&body), [c.sid.clone(), a.sid.clone()]);
    assert_eq!(
        json(&body)["uri"],
        format!(
            "/2010-04-01/Accounts/{AC1}/Recordings.json?CallSid={}&PageSize=50&Page=0",
            sid(1)
        )
    );
    let call_list = format!(
        "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings.json",
        sid(1)
    );
    let (status, _, body) = get(&s, &call_list, Some(&auth));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sids(&body), [c.sid.clone(), a.sid.clone()]);
    assert_eq!(
        json(&body)["uri"],
        format!("{call_list}?PageSize=50&Page=0")
    );
    // A call without recordings has an empty list, as Twilio.
    let (status, _, body) = get(
        &s,
        &format!(
            "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings.json",
            sid(9)
        ),
        Some(&auth),
    );
    assert_eq!(status, StatusCode::OK);
    assert!(sids(&body).is_empty());

    // Pages.
    let (_, _, body) = get(
        &s,
        &format!("{}?PageSize=2", recordings_path(AC1)),
        Some(&auth),
    );
    assert_eq!(sids(&body), [c.sid.clone(), b.sid.clone()]);
    let v = json(&body);
    let next = v["next_page_uri"].as_str().unwrap().to_owned();
    assert_eq!(
        next,
        format!("/2010-04-01/Accounts/{AC1}/Recordings.json?PageSize=2&Page=1")
    );
    let (_, _, body) = get(&s, &next, Some(&auth));
    assert_eq!(sids(&body), std::slice::from_ref(&a.sid));
    let v = json(&body);
    assert_eq!(v["start"], 2);
    assert_eq!(v["end"], 2);
    assert_eq!(v["next_page_uri"], Value::Null);
    assert!(v["previous_page_uri"].as_str().unwrap().ends_with("Page=0"));
}

#[test]
fn recording_audio_is_the_file() {
    let (s, _dir) = state_with_recordings();
    let audio = wav_bytes(7);
    let r = add_recording(&s, AC1, 1, 10, &audio);
    let auth = basic(AC1, TOKEN1);
    for ext in ["", ".wav"] {
        let path = recording_path(AC1, &r.sid, ext);
        let (status, headers, body) = send_bytes(&s, Method::GET, &path, Some(&auth), "");
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], "audio/x-wav", "{path}");
        assert_eq!(body, std::fs::read(&r.path).unwrap(), "{path}");
        assert_eq!(body, audio, "{path}");
    }
    let under_call = format!(
        "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings/{}.wav",
        sid(1),
        r.sid
    );
    let (status, _, body) = send_bytes(&s, Method::GET, &under_call, Some(&auth), "");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, audio);
    // Only WAV is stored.
    let (status, _, body) = get(&s, &recording_path(AC1, &r.sid, ".mp3"), Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_twilio_error(&body, 20404, 404);
    assert!(body.contains("WAV only"), "{body}");
    assert!(body.contains(&format!("{}.wav", r.sid)), "{body}");
    // Other extensions are no resource at all.
    let (status, _, _) = get(&s, &recording_path(AC1, &r.sid, ".ogg"), Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The audio gone from disk: 404, not a crash.
    std::fs::remove_file(&r.path).unwrap();
    let (status, _, body) = get(&s, &recording_path(AC1, &r.sid, ".wav"), Some(&auth));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_twilio_error(&body, 20404, 404);
}

#[test]
fn recordings_need_auth_and_stay_in_their_account() {
    let (s, _dir) = state_with_recordings();
    let mine = add_recording(&s, AC1, 1, 10, &wav_bytes(1));
    let theirs = add_recording(&s, AC2, 2, 10, &wav_bytes(2));
    let paths = [
        recordings_path(AC1),
        recording_path(AC1, &mine.sid, ".json"),
        recording_path(AC1, &mine.sid, ".wav"),
        recording_path(AC1, &mine.sid, ""),
        format!(
            "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings.json",
            sid(1)
        ),
    ];
    for path in &paths {
        for auth in [None, Some(basic(AC1, "wrong")), Some(basic(AC2, TOKEN1))] {
            let (status, headers, body) = send_bytes(&s, Method::GET, path, auth.as_deref(), "");
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            assert_eq!(headers["content-type"], "application/json");
            assert_twilio_error(std::str::from_utf8(&body).unwrap(), 20003, 401);
        }
        let (status, _, _) = send(&s, Method::DELETE, path, None, "");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // The API key authenticates its account.
    let (status, _, _) = get(&s, &recordings_path(AC1), Some(&basic(SK1, "key-secret")));
    assert_eq!(status, StatusCode::OK);

    let auth = basic(AC1, TOKEN1);
    // Another account's recording, through our path or theirs: 404, and it stays.
    for path in [
        recording_path(AC1, &theirs.sid, ".json"),
        recording_path(AC1, &theirs.sid, ".wav"),
        recording_path(AC2, &theirs.sid, ".json"),
        recording_path(AC2, &theirs.sid, ".wav"),
        recordings_path(AC2),
    ] {
        let (status, _, body) = get(&s, &path, Some(&auth));
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_twilio_error(&body, 20404, 404);
        // DELETE takes only the JSON resource; elsewhere it is 405 before any lookup,
        // except under an account that is not ours, which is 404 before anything.
        let (status, _, _) = send(&s, Method::DELETE, &path, Some(&auth), "");
        let expected =
            if path.contains(AC2) || path.ends_with(&format!("/Recordings/{}.json", theirs.sid)) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::METHOD_NOT_ALLOWED
            };
        assert_eq!(status, expected, "DELETE {path}");
    }
    assert!(theirs.path.exists());
    let (_, _, body) = get(&s, &recordings_path(AC1), Some(&auth));
    assert_eq!(json(&body)["recordings"].as_array().unwrap().len(), 1);
    // Unknown or malformed sids.
    for path in [
        recording_path(AC1, "RE00000000000000000000000000000000", ".json"),
        recording_path(AC1, "nonsense", ".json"),
        recording_path(AC1, "", ".json"),
        format!("/2010-04-01/Accounts/{AC1}/Recordings"),
        format!(
            "/2010-04-01/Accounts/{AC1}/Recordings/{}/Transcriptions.json",
            mine.sid
        ),
    ] {
        let (status, _, _) = get(&s, &path, Some(&auth));
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[test]
fn recording_methods() {
    let (s, _dir) = state_with_recordings();
    let r = add_recording(&s, AC1, 1, 10, b"RIFF");
    let auth = basic(AC1, TOKEN1);
    let cases = [
        (Method::POST, recordings_path(AC1), "GET, HEAD"),
        (
            Method::POST,
            format!(
                "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings.json",
                sid(1)
            ),
            "GET, HEAD",
        ),
        (Method::DELETE, recordings_path(AC1), "GET, HEAD"),
        (
            Method::POST,
            recording_path(AC1, &r.sid, ".json"),
            "GET, HEAD, DELETE",
        ),
        (
            Method::PUT,
            recording_path(AC1, &r.sid, ".json"),
            "GET, HEAD, DELETE",
        ),
        (
            Method::DELETE,
            recording_path(AC1, &r.sid, ".wav"),
            "GET, HEAD",
        ),
    ];
    for (method, path, allow) in cases {
        let (status, headers, body) = send(&s, method.clone(), &path, Some(&auth), "");
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(headers["allow"], allow, "{method} {path}");
        assert_twilio_error(&body, 20004, 405);
    }
    let (status, headers, _) = send_bytes(
        &s,
        Method::HEAD,
        &recording_path(AC1, &r.sid, ".wav"),
        Some(&auth),
        "",
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "audio/x-wav");
    assert!(r.path.exists(), "nothing was deleted");
}

#[test]
fn delete_recording() {
    let (s, dir) = state_with_recordings();
    let r = add_recording(&s, AC1, 1, 10, b"RIFF");
    let keep = add_recording(&s, AC1, 1, 20, b"RIFF");
    let auth = basic(AC1, TOKEN1);
    let path = recording_path(AC1, &r.sid, ".json");
    let (status, headers, body) = send(&s, Method::DELETE, &path, Some(&auth), "");
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty(), "{body}");
    assert!(headers.get("content-type").is_none());
    assert!(!r.path.exists());
    assert!(!dir.0.join(format!("{}.json", r.sid)).exists());
    for p in [path.clone(), recording_path(AC1, &r.sid, ".wav")] {
        let (status, _, _) = get(&s, &p, Some(&auth));
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    }
    let (status, _, _) = send(&s, Method::DELETE, &path, Some(&auth), "");
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Through the call's path too; the other recording stays, also after a restart.
    let (status, _, _) = send(
        &s,
        Method::DELETE,
        &format!(
            "/2010-04-01/Accounts/{AC1}/Calls/{}/Recordings/{}.json",
            sid(2),
            keep.sid
        ),
        Some(&auth),
        "",
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "not that call's recording");
    let reopened = Recordings::open(&dir.0).unwrap();
    assert_eq!(reopened.list(AC1, None), [keep]);
}
