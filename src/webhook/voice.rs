//! Fetching call instructions the way Twilio does (reference/twiml-and-twilio-client.md
//! §1.3–1.5), so an application written for Twilio's voice webhooks runs unchanged:
//!
//! - the request carries Twilio's parameter names ([`call_params`]), form-encoded for POST
//!   or in the query for GET, signed with `X-Twilio-Signature` by [`WebhookClient`];
//! - any failure of the voice URL (HTTP status outside 2xx, connection failure, timeout,
//!   body cap, Content-Type that is not XML, a document that does not parse or has an
//!   invalid attribute) makes us request the fallback URL, if there is one, with the same
//!   parameters plus `ErrorCode` (the Twilio code of the failure) and `ErrorUrl` (the URL
//!   that failed); if that fails too, or there is none, the caller gets a
//!   [`FetchFailure`], plays the error prompt and hangs up;
//! - the document's URL after redirects is returned: relative `action`, `url` and
//!   `<Redirect>` URLs in it resolve against that URL ([`resolve_url`]).
//!
//! Each failure is logged (warn) with its code and the URL cut to scheme, host and port:
//! query strings often carry secrets.

use url::Url;

use super::client::WebhookClient;
use super::error::WebhookError;
use super::ssrf;
use crate::config::HttpMethod;
use crate::instructions::{self, Document, InstructionError, Limits, Method};

/// The `ApiVersion` parameter of every request.
pub const API_VERSION: &str = "2010-04-01";

/// Twilio 11100, "invalid URL format": a relative URL that cannot be resolved.
const INVALID_URL: u32 = 11100;

/// One request for instructions: where, how, and with which parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub url: String,
    pub method: Method,
    pub params: Vec<(String, String)>,
}

/// Instructions obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub document: Document,
    /// The URL the document came from, after redirects (for GET, without the call
    /// parameters we appended to its query): relative URLs in the document resolve
    /// against it, and it is the "current document URL" that `<Gather>`/`<Record>`
    /// without `action` request again.
    pub url: String,
    /// Whether the primary URL failed and this came from the fallback URL.
    pub from_fallback: bool,
}

/// No usable instructions: the caller plays the error prompt and ends the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} from {}: {why}", redact(url))]
pub struct FetchFailure {
    /// Twilio error code of the last failure (the fallback's when one was tried).
    pub code: u32,
    /// The URL of the last failed request; empty for inline instructions.
    pub url: String,
    pub why: String,
}

/// The instruction method for an application's configured HTTP method.
pub fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
    }
}

/// Request `primary`; on failure, request `fallback` (URL and method) with `ErrorCode`
/// and `ErrorUrl` added to the same parameters. See the module documentation.
pub async fn fetch_instructions(
    client: &WebhookClient,
    auth_token: &str,
    limits: &Limits,
    primary: &Fetch,
    fallback: Option<(&str, Method)>,
) -> Result<Fetched, FetchFailure> {
    let first = match attempt(client, auth_token, limits, primary).await {
        Ok((document, url)) => {
            return Ok(Fetched {
                document,
                url,
                from_fallback: false,
            });
        }
        Err(failure) => failure,
    };
    log_failure(&first, "voice URL failed");

    // An empty fallback URL (a cleared config field) is no fallback.
    let Some((fallback_url, fallback_method)) = fallback.filter(|(u, _)| !u.trim().is_empty())
    else {
        return Err(first);
    };
    let mut params = primary.params.clone();
    params.push(("ErrorCode".to_owned(), first.code.to_string()));
    params.push(("ErrorUrl".to_owned(), primary.url.clone()));
    let second = Fetch {
        url: fallback_url.to_owned(),
        method: fallback_method,
        params,
    };
    match attempt(client, auth_token, limits, &second).await {
        Ok((document, url)) => Ok(Fetched {
            document,
            url,
            from_fallback: true,
        }),
        Err(failure) => {
            log_failure(&failure, "fallback URL failed");
            Err(failure)
        }
    }
}

/// Instructions written inline in an application's config: parsed with the same limits
/// and the same failure codes as fetched ones, but with no fallback (there is no URL).
pub fn inline(twiml: &str, limits: &Limits) -> Result<Document, FetchFailure> {
    let document = instructions::parse(twiml.as_bytes(), limits)
        .map_err(|e| parse_failure(String::new(), &e))?;
    log_warnings(&document, "");
    Ok(document)
}

/// Resolves a URL from a document (`action`, `url`, `<Redirect>` body) against the URL
/// the document came from (RFC 3986 reference resolution; absolute URLs pass unchanged).
/// An empty reference is the document URL itself, which is Twilio's default `action`.
/// Failure is Twilio's 11100, invalid URL format.
pub fn resolve_url(base: &str, reference: &str) -> Result<String, FetchFailure> {
    let invalid = |why: String| FetchFailure {
        code: INVALID_URL,
        url: reference.to_owned(),
        why,
    };
    let base = Url::parse(base).map_err(|e| invalid(format!("document URL `{base}`: {e}")))?;
    base.join(reference.trim())
        .map(String::from)
        .map_err(|e| invalid(e.to_string()))
}

/// What identifies a call in every voice request.
#[derive(Debug, Clone, Copy)]
pub struct CallParamsInput<'a> {
    pub call_sid: &'a str,
    pub account_sid: &'a str,
    /// A phone number, SIP URI or `client:<identity>`.
    pub from: &'a str,
    pub to: &'a str,
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `failed`, `no-answer`,
    /// `canceled`.
    pub call_status: &'a str,
    /// `inbound`, `outbound-api` or `outbound-dial`.
    pub direction: &'a str,
    /// The call that created this one (a `<Dial>`ed leg).
    pub parent_call_sid: Option<&'a str>,
    pub application_sid: Option<&'a str>,
    /// Appended after the standard parameters, in order: `DialCallStatus`, `Digits`,
    /// `RecordingUrl`, custom client parameters and the like.
    pub extra: &'a [(String, String)],
}

/// Twilio's voice request parameters (§1.3): `CallSid`, `AccountSid`, `From`, `To`,
/// `CallStatus`, `ApiVersion`, `Direction`, the legacy aliases `Caller` (= From) and
/// `Called` (= To), `ParentCallSid` and `ApplicationSid` when known, then `extra`.
pub fn call_params(p: &CallParamsInput<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        ("CallSid", p.call_sid),
        ("AccountSid", p.account_sid),
        ("From", p.from),
        ("To", p.to),
        ("CallStatus", p.call_status),
        ("ApiVersion", API_VERSION),
        ("Direction", p.direction),
        ("Caller", p.from),
        ("Called", p.to),
    ]
    .into_iter()
    .chain(p.parent_call_sid.map(|s| ("ParentCallSid", s)))
    .chain(p.application_sid.map(|s| ("ApplicationSid", s)))
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    out.extend(p.extra.iter().cloned());
    out
}

/// One request: HTTP, Content-Type, then the document.
async fn attempt(
    client: &WebhookClient,
    auth_token: &str,
    limits: &Limits,
    fetch: &Fetch,
) -> Result<(Document, String), FetchFailure> {
    let sent = match fetch.method {
        Method::Post => {
            client
                .post_form(&fetch.url, auth_token, &fetch.params)
                .await
        }
        Method::Get => {
            client
                .get_query(&fetch.url, auth_token, &fetch.params)
                .await
        }
    };
    let http_failure = |e: WebhookError| FetchFailure {
        code: e.twilio_code(),
        url: fetch.url.clone(),
        why: describe(&e),
    };
    let response = sent.map_err(http_failure)?;
    response.require_twiml().map_err(http_failure)?;
    let document = instructions::parse(&response.body, limits)
        .map_err(|e| parse_failure(fetch.url.clone(), &e))?;
    let url = document_url(&response.url, fetch);
    log_warnings(&document, &url);
    Ok((document, url))
}

/// The base URL of a fetched document. For GET, `response_url` is the request URL with
/// the call parameters appended to its query (unless a redirect replaced it): those are
/// taken off again, or a later request of the "current document URL" would carry them
/// twice.
fn document_url(response_url: &str, fetch: &Fetch) -> String {
    if fetch.method == Method::Get && !fetch.params.is_empty() {
        let appended = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fetch.params)
            .finish();
        if let Some(rest) = response_url.strip_suffix(appended.as_str())
            && let Some(base) = rest.strip_suffix('?').or_else(|| rest.strip_suffix('&'))
        {
            return base.to_owned();
        }
    }
    response_url.to_owned()
}

fn parse_failure(url: String, e: &InstructionError) -> FetchFailure {
    FetchFailure {
        code: u32::from(e.twilio_code()),
        url,
        why: e.to_string(),
    }
}

fn log_failure(f: &FetchFailure, what: &str) {
    tracing::warn!(
        code = f.code,
        url = %redact(&f.url),
        why = %f.why,
        "{what}"
    );
}

/// Schema warnings (12200) do not stop the call; the author should still hear of them.
fn log_warnings(document: &Document, url: &str) {
    if let Some(first) = document.warnings.first() {
        tracing::info!(
            code = instructions::Warning::TWILIO_CODE,
            count = document.warnings.len(),
            url = %redact(url),
            first = ?first.kind,
            at = %first.pos,
            "call instructions have schema warnings; those items are skipped"
        );
    }
}

/// `e` for a log line, without the URL: reqwest writes the full request URL (query
/// included, where secrets often are) into its errors, so for those the innermost cause
/// is shown instead.
pub(crate) fn describe(e: &WebhookError) -> String {
    match e {
        WebhookError::Connect(r)
        | WebhookError::Timeout(r)
        | WebhookError::Protocol(r)
        | WebhookError::Client(r) => {
            let mut innermost: &(dyn std::error::Error + 'static) = r;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            if innermost.is::<reqwest::Error>() {
                e.class().to_owned()
            } else {
                format!("{}: {innermost}", e.class())
            }
        }
        WebhookError::InvalidUrl { why, .. } => format!("{}: {why}", e.class()),
        _ => format!("{}: {e}", e.class()),
    }
}

/// A URL as far as its host and port, for logs.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => ssrf::redacted(&u),
        Err(_) if url.is_empty() => "(inline)".to_owned(),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Cidr, WebhooksConfig};
    use crate::instructions::Verb;
    use crate::webhook::sign::verify_twilio_signature;
    use crate::webhook::testserver::{Reply, TestServer};

    const TOKEN: &str = "12345";
    const SAY: &[u8] = b"<Response><Say>hello</Say></Response>";

    fn hooks() -> WebhooksConfig {
        WebhooksConfig {
            allow_private_networks: vec!["127.0.0.0/8".into()],
            private_nets: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..WebhooksConfig::default()
        }
    }

    fn client() -> WebhookClient {
        WebhookClient::new(&hooks()).expect("client")
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn call() -> Vec<(String, String)> {
        call_params(&CallParamsInput {
            call_sid: "CA0123456789abcdef0123456789abcdef",
            account_sid: "AC0123456789abcdef0123456789abcdef",
            from: "client:alice",
            to: "+15550001111",
            call_status: "ringing",
            direction: "inbound",
            parent_call_sid: None,
            application_sid: Some("AP0123456789abcdef0123456789abcdef"),
            extra: &[],
        })
    }

    fn post(url: String) -> Fetch {
        Fetch {
            url,
            method: Method::Post,
            params: call(),
        }
    }

    fn said(doc: &Document) -> &str {
        match doc.verbs.first() {
            Some(Verb::Say { text, .. }) => text,
            other => panic!("expected <Say>, got {other:?}"),
        }
    }

    /// A server whose `/primary` answers `primary` and `/fallback` a `<Say>fallback</Say>`.
    async fn with_fallback(primary: impl Fn() -> Reply + Send + Sync + 'static) -> TestServer {
        TestServer::start(move |req, _| {
            if req.target.starts_with("/fallback") {
                Reply::ok("text/xml", b"<Response><Say>fallback</Say></Response>")
            } else {
                primary()
            }
        })
        .await
    }

    #[test]
    fn params_use_twilio_names() {
        let extra = pairs(&[("DialCallStatus", "busy")]);
        let p = call_params(&CallParamsInput {
            call_sid: "CA1",
            account_sid: "AC1",
            from: "+1",
            to: "client:bob",
            call_status: "in-progress",
            direction: "outbound-dial",
            parent_call_sid: Some("CA0"),
            application_sid: None,
            extra: &extra,
        });
        assert_eq!(
            p,
            pairs(&[
                ("CallSid", "CA1"),
                ("AccountSid", "AC1"),
                ("From", "+1"),
                ("To", "client:bob"),
                ("CallStatus", "in-progress"),
                ("ApiVersion", "2010-04-01"),
                ("Direction", "outbound-dial"),
                ("Caller", "+1"),
                ("Called", "client:bob"),
                ("ParentCallSid", "CA0"),
                ("DialCallStatus", "busy"),
            ])
        );
        assert!(call().iter().any(|(k, _)| k == "ApplicationSid"));
        assert!(!call().iter().any(|(k, _)| k == "ParentCallSid"));
        assert_eq!(method(HttpMethod::Get), Method::Get);
        assert_eq!(method(HttpMethod::Post), Method::Post);
    }

    #[tokio::test]
    async fn post_carries_a_signed_form() {
        let mut srv = TestServer::start(|_, _| Reply::ok("text/xml; charset=utf-8", SAY)).await;
        let url = srv.url("/voice?app=1");
        let got = fetch_instructions(
            &client(),
            TOKEN,
            &Limits::default(),
            &post(url.clone()),
            None,
        )
        .await
        .expect("fetched");
        assert_eq!(said(&got.document), "hello");
        assert_eq!(got.url, url);
        assert!(!got.from_fallback);

        let seen = srv.next().await;
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.form(), call());
        // What a Twilio validator does: the URL as configured, the form as received.
        let sig = seen.header("x-twilio-signature").expect("signed");
        assert!(verify_twilio_signature(TOKEN, &url, &seen.form(), sig));
        assert!(!verify_twilio_signature("other", &url, &seen.form(), sig));
    }

    #[tokio::test]
    async fn get_carries_the_query() {
        let mut srv = TestServer::start(|_, _| Reply::ok("application/xml", SAY)).await;
        let url = srv.url("/voice?app=1");
        let fetch = Fetch {
            url: url.clone(),
            method: Method::Get,
            params: call(),
        };
        let got = fetch_instructions(&client(), TOKEN, &Limits::default(), &fetch, None)
            .await
            .expect("fetched");
        // The document URL is the configured one, not the one with our parameters.
        assert_eq!(got.url, url);

        let seen = srv.next().await;
        assert_eq!(seen.method, "GET");
        assert!(seen.body.is_empty());
        let mut expect = pairs(&[("app", "1")]);
        expect.extend(call());
        assert_eq!(seen.query(), expect);
        let full = format!("http://{}{}", seen.header("host").unwrap(), seen.target);
        let sig = seen.header("x-twilio-signature").expect("signed");
        assert!(verify_twilio_signature(TOKEN, &full, &[], sig));
    }

    #[test]
    fn document_url_drops_only_our_parameters() {
        let fetch = |url: &str| Fetch {
            url: url.to_owned(),
            method: Method::Get,
            params: pairs(&[("CallSid", "CA1"), ("From", "+1 2")]),
        };
        let ours = "CallSid=CA1&From=%2B1+2";
        for (configured, received, base) in [
            ("http://h/v", format!("http://h/v?{ours}"), "http://h/v"),
            (
                "http://h/v?a=1",
                format!("http://h/v?a=1&{ours}"),
                "http://h/v?a=1",
            ),
            ("http://h/v?", format!("http://h/v?{ours}"), "http://h/v"),
            (
                "http://h/v?a=1&",
                format!("http://h/v?a=1&{ours}"),
                "http://h/v?a=1",
            ),
            // Redirected elsewhere: the parameters are gone already.
            ("http://h/v", "http://h/other".to_owned(), "http://h/other"),
        ] {
            assert_eq!(
                document_url(&received, &fetch(configured)),
                base,
                "{configured}"
            );
        }
        let mut p = fetch("http://h/v");
        p.method = Method::Post;
        assert_eq!(
            document_url(&format!("http://h/v?{ours}"), &p),
            format!("http://h/v?{ours}")
        );
    }

    #[tokio::test]
    async fn http_error_goes_to_the_fallback_with_error_code_and_url() {
        let mut srv = with_fallback(|| Reply::status(500)).await;
        let primary = post(srv.url("/primary?k=v"));
        let fallback_url = srv.url("/fallback");
        let got = fetch_instructions(
            &client(),
            TOKEN,
            &Limits::default(),
            &primary,
            Some((&fallback_url, Method::Post)),
        )
        .await
        .expect("fallback used");
        assert!(got.from_fallback);
        assert_eq!(said(&got.document), "fallback");
        assert_eq!(got.url, fallback_url);

        assert_eq!(srv.next().await.target, "/primary?k=v");
        let seen = srv.next().await;
        assert_eq!(seen.target, "/fallback");
        let mut expect = call();
        expect.extend(pairs(&[("ErrorCode", "11200"), ("ErrorUrl", &primary.url)]));
        assert_eq!(seen.form(), expect);
        let sig = seen.header("x-twilio-signature").expect("signed");
        assert!(verify_twilio_signature(TOKEN, &fallback_url, &expect, sig));
    }

    #[tokio::test]
    async fn timeout_goes_to_the_fallback_as_11205() {
        let c = WebhookClient::new(&WebhooksConfig {
            timeout_ms: 300,
            ..hooks()
        })
        .expect("client");
        let mut srv =
            with_fallback(|| Reply::ok("text/xml", SAY).after(Duration::from_secs(30))).await;
        let fallback_url = srv.url("/fallback");
        let got = fetch_instructions(
            &c,
            TOKEN,
            &Limits::default(),
            &post(srv.url("/primary")),
            Some((&fallback_url, Method::Get)),
        )
        .await
        .expect("fallback used");
        assert!(got.from_fallback);
        let _primary = srv.next().await;
        let seen = srv.next().await;
        assert_eq!(seen.method, "GET");
        let q = seen.query();
        assert!(
            q.contains(&("ErrorCode".to_owned(), "11205".to_owned())),
            "{q:?}"
        );
        assert!(
            q.contains(&("ErrorUrl".to_owned(), srv.url("/primary"))),
            "{q:?}"
        );
        // The fallback's document URL is the configured one.
        assert_eq!(got.url, fallback_url);
    }

    #[tokio::test]
    async fn bad_documents_go_to_the_fallback() {
        for (body, content_type, code) in [
            (
                &b"<Response><Say>unclosed</Response>"[..],
                "text/xml",
                "12100",
            ),
            (b"<Reply/>", "text/xml", "12102"),
            (
                b"<Response><Pause length=\"soon\"/></Response>",
                "text/xml",
                "12200",
            ),
            (b"{\"say\":\"hi\"}", "application/json", "12300"),
        ] {
            let body = body.to_vec();
            let mut srv = with_fallback(move || Reply::ok(content_type, &body)).await;
            let fallback_url = srv.url("/fallback");
            let got = fetch_instructions(
                &client(),
                TOKEN,
                &Limits::default(),
                &post(srv.url("/primary")),
                Some((&fallback_url, Method::Post)),
            )
            .await
            .unwrap_or_else(|f| panic!("{code}: {f}"));
            assert!(got.from_fallback, "{code}");
            let _primary = srv.next().await;
            let form = srv.next().await.form();
            assert!(
                form.contains(&("ErrorCode".to_owned(), code.to_owned())),
                "{code}: {form:?}"
            );
        }
    }

    #[tokio::test]
    async fn both_failing_is_a_fetch_failure() {
        let srv = TestServer::start(|req, _| {
            if req.target.starts_with("/fallback") {
                Reply::ok("text/xml", b"not xml at all")
            } else {
                Reply::status(404)
            }
        })
        .await;
        let fallback_url = srv.url("/fallback");
        let f = fetch_instructions(
            &client(),
            TOKEN,
            &Limits::default(),
            &post(srv.url("/primary")),
            Some((&fallback_url, Method::Post)),
        )
        .await
        .expect_err("both failed");
        // The failure that ended it: the fallback's.
        assert_eq!(
            (f.code, f.url.as_str()),
            (12100, fallback_url.as_str()),
            "{f}"
        );
        assert_eq!(srv.count(), 2);
        // Display shows no path or query.
        assert!(!f.to_string().contains("/fallback"), "{f}");
    }

    #[tokio::test]
    async fn no_fallback_is_a_fetch_failure() {
        let srv = TestServer::start(|_, _| Reply::status(503)).await;
        let primary = post(srv.url("/primary"));
        for fallback in [None, Some(("", Method::Post))] {
            let f = fetch_instructions(&client(), TOKEN, &Limits::default(), &primary, fallback)
                .await
                .expect_err("failed");
            assert_eq!(
                (f.code, f.url.as_str()),
                (11200, primary.url.as_str()),
                "{f}"
            );
        }
        assert_eq!(
            srv.count(),
            2,
            "one request per attempt, none to an empty fallback"
        );
    }

    #[tokio::test]
    async fn redirect_is_followed_and_relative_urls_use_the_final_url() {
        let srv = TestServer::start(|req, _| match req.target.as_str() {
            "/start" => Reply::redirect("/app/v2/voice?step=1"),
            _ => Reply::ok(
                "text/xml",
                b"<Response><Redirect>next?step=2</Redirect></Response>",
            ),
        })
        .await;
        let got = fetch_instructions(
            &client(),
            TOKEN,
            &Limits::default(),
            &post(srv.url("/start")),
            None,
        )
        .await
        .expect("fetched");
        assert_eq!(got.url, srv.url("/app/v2/voice?step=1"));
        let Some(Verb::Redirect { url, .. }) = got.document.verbs.first() else {
            panic!("expected <Redirect>: {:?}", got.document.verbs);
        };
        assert_eq!(
            resolve_url(&got.url, url).expect("resolves"),
            srv.url("/app/v2/next?step=2")
        );
    }

    #[tokio::test]
    async fn failure_descriptions_leave_the_url_out() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/secret-path?token=s3cr3t");
        let f = fetch_instructions(&client(), TOKEN, &Limits::default(), &post(url), None)
            .await
            .expect_err("nobody listening");
        assert_eq!(f.code, 11205, "{f:?}");
        assert!(f.why.starts_with("connect"), "{}", f.why);
        assert!(
            !f.why.contains("s3cr3t") && !f.why.contains("secret-path"),
            "{}",
            f.why
        );
        assert!(!f.to_string().contains("s3cr3t"), "{f}");
    }

    #[test]
    fn relative_urls() {
        let base = "https://example.com/app/voice.xml?x=1";
        for (reference, resolved) in [
            ("gather", "https://example.com/app/gather"),
            (" /root ", "https://example.com/root"),
            ("../up", "https://example.com/up"),
            ("?y=2", "https://example.com/app/voice.xml?y=2"),
            ("", "https://example.com/app/voice.xml?x=1"),
            ("//other.example/p", "https://other.example/p"),
            ("http://abs.example/a", "http://abs.example/a"),
        ] {
            assert_eq!(
                resolve_url(base, reference).as_deref(),
                Ok(resolved),
                "{reference}"
            );
        }
        assert_eq!(
            resolve_url(base, "http://[bad").map_err(|f| f.code),
            Err(11100)
        );
        assert_eq!(resolve_url("", "next").map_err(|f| f.code), Err(11100));
    }

    #[test]
    fn inline_instructions() {
        let doc = inline("<Response><Say>hi</Say></Response>", &Limits::default()).expect("ok");
        assert_eq!(said(&doc), "hi");
        let f = inline("<Response>", &Limits::default()).expect_err("malformed");
        assert_eq!((f.code, f.url.as_str()), (12100, ""));
        let f = inline("<Say>hi</Say>", &Limits::default()).expect_err("root");
        assert_eq!(f.code, 12102);
    }
}
