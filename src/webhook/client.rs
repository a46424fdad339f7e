//! The HTTP client every webhook goes through: signed, bounded in time and size, and
//! confined to the addresses `ssrf` permits (DESIGN.md "Webhooks", reference
//! sip-robustness-and-security.md §4, crates.md §5).
//!
//! - connect timeout `connect_timeout_ms`, whole exchange (body included) `timeout_ms`;
//! - no proxy (reqwest would otherwise honour `HTTP_PROXY` and friends);
//! - at most `max_redirects` hops, each target re-checked against the SSRF rules (IP
//!   literals there; host names in the resolver, which checks every connection);
//! - the body is streamed and refused beyond `max_body_bytes`;
//! - any final status outside 2xx is an error: 11200, or for a 3xx left unfollowed (no
//!   usable `Location`, or one the HTTP stack will not follow, such as `file:`) 11216, or
//!   11210 when its `Location` is a target the SSRF rules refuse;
//! - every webhook request carries `X-Twilio-Signature` (key: the account's auth token),
//!   and every request `User-Agent: Switchboard/<version>` (`get_media`, for `<Play>`
//!   audio, is the unsigned one).
//!
//! The URL signed is the one given, minus any `#fragment` (never sent; Twilio uses it for
//! connection overrides), exactly as written, as Twilio signs the URL "as configured".
//! TLS is rustls with the ring provider, installed once by [`install_crypto_provider`].

use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use url::Url;

use super::error::{TooManyRedirects, WebhookError};
use super::sign::{self, twilio_signature};
use super::ssrf::{Guard, GuardedResolver};
use crate::config::WebhooksConfig;

/// `User-Agent` of every webhook request.
pub const USER_AGENT: &str = concat!("Switchboard/", env!("CARGO_PKG_VERSION"));

const FORM: &str = "application/x-www-form-urlencoded";

/// Make ring the process's rustls provider, once. Idempotent and safe to call from `main`,
/// tests and here alike; if a provider is already installed it is kept (reqwest uses
/// whichever is installed, so a client never panics for a missing one).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A successful (2xx) response, body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// Where the body came from, after redirects: relative TwiML URLs resolve against it.
    pub url: String,
}

impl Response {
    /// The media type (`text/xml` of `text/xml; charset=utf-8`), lowercased.
    pub fn media_type(&self) -> Option<String> {
        self.content_type.as_deref().map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Refuse a body that is not TwiML by its Content-Type (Twilio's 12300): TwiML comes
    /// as `text/xml`, `application/xml` or `text/html`.
    pub fn require_twiml(&self) -> Result<(), WebhookError> {
        match self.media_type().as_deref() {
            Some("text/xml" | "application/xml" | "text/html") => Ok(()),
            _ => Err(WebhookError::ContentType {
                content_type: self.content_type.clone(),
            }),
        }
    }
}

/// The webhook HTTP client; one per process (it pools connections), cheap to share.
pub struct WebhookClient {
    http: reqwest::Client,
    guard: Guard,
    max_body: usize,
    /// `[webhooks] timeout_ms`: also how long a media stream's socket may take to come up.
    timeout: Duration,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("guard", &self.guard)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// Build from `[webhooks]`. A config reload that changes `[webhooks]` needs a new
    /// client.
    pub fn new(cfg: &WebhooksConfig) -> Result<WebhookClient, WebhookError> {
        install_crypto_provider();
        let guard = Guard::new(&cfg.private_nets);
        let max = cfg.max_redirects;
        let hop_guard = guard.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the URLs already requested: the first one and each hop.
            if attempt.previous().len() > max as usize {
                return attempt.error(TooManyRedirects(max));
            }
            match hop_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .no_proxy()
            .redirect(redirects)
            .referer(false)
            .dns_resolver(Arc::new(GuardedResolver::new(guard.clone())))
            .user_agent(USER_AGENT)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookClient {
            http,
            guard,
            max_body: cfg.max_body_bytes,
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
    }

    /// The SSRF rules every request follows (media streams' sockets too).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// How long a media stream's WebSocket may take to connect, TLS and upgrade
    /// included: the webhook timeout.
    pub fn stream_connect_timeout(&self) -> Duration {
        self.timeout
    }

    /// POST `params` form-encoded to `url`, signed over `url` + the sorted params.
    pub async fn post_form(
        &self,
        url: &str,
        auth_token: &str,
        params: &[(String, String)],
    ) -> Result<Response, WebhookError> {
        let url = without_fragment(url);
        let target = self.target(url)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let request = self
            .http
            .post(target)
            .header(sign::HEADER, signature_header(auth_token, url, params))
            .header(CONTENT_TYPE, FORM)
            .body(body);
        self.send(request, self.max_body).await
    }

    /// GET `url` with `params` appended to its query, signed over that full URL (no body
    /// params), as Twilio does for GET webhooks. No Content-Type: there is no body.
    pub async fn get_query(
        &self,
        url: &str,
        auth_token: &str,
        params: &[(String, String)],
    ) -> Result<Response, WebhookError> {
        let full = with_query(without_fragment(url), params);
        let target = self.target(&full)?;
        let request = self
            .http
            .get(target)
            .header(sign::HEADER, signature_header(auth_token, &full, &[]));
        self.send(request, self.max_body).await
    }

    /// GET `url` unsigned, reading at most `max_body` bytes: audio for `<Play>`, a file on
    /// a media server rather than a webhook, and often far larger than a document. The same
    /// SSRF rules, timeouts and redirect limit apply.
    pub async fn get_media(&self, url: &str, max_body: usize) -> Result<Response, WebhookError> {
        let target = self.target(without_fragment(url))?;
        self.send(self.http.get(target), max_body).await
    }

    /// Parse and SSRF-check the first URL (redirect hops are checked by the policy).
    fn target(&self, url: &str) -> Result<Url, WebhookError> {
        let parsed = Url::parse(url).map_err(|e| WebhookError::InvalidUrl {
            url: url.to_owned(),
            why: e.to_string(),
        })?;
        self.guard.check_url(&parsed)?;
        Ok(parsed)
    }

    /// Why a 3xx came back as the final response.
    fn unfollowed_redirect(&self, resp: &reqwest::Response) -> WebhookError {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| resp.url().join(l).ok());
        if let Some(next) = location
            && let Err(refused) = self.guard.check_url(&next)
        {
            return WebhookError::Refused(refused);
        }
        WebhookError::InvalidRedirect {
            status: resp.status().as_u16(),
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        max_body: usize,
    ) -> Result<Response, WebhookError> {
        let mut resp = request.send().await.map_err(WebhookError::from_reqwest)?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(self.unfollowed_redirect(&resp));
        }
        if !status.is_success() {
            return Err(WebhookError::Status {
                status: status.as_u16(),
            });
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let url = resp.url().to_string();
        let too_large = WebhookError::BodyTooLarge { limit: max_body };
        if resp.content_length().is_some_and(|n| n > max_body as u64) {
            return Err(too_large);
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(WebhookError::from_reqwest)? {
            if body.len() + chunk.len() > max_body {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status: status.as_u16(),
            content_type,
            body: body.freeze(),
            url,
        })
    }
}

fn signature_header(auth_token: &str, url: &str, params: &[(String, String)]) -> HeaderValue {
    // Base64 is always a valid header value.
    HeaderValue::from_str(&twilio_signature(auth_token, url, params))
        .expect("Base64 is a valid header value")
}

fn without_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(u, _)| u)
}

/// `url` with `params` form-encoded onto its query.
fn with_query(url: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = match url.find('?') {
        None => "?",
        Some(_) if url.ends_with('?') || url.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{url}{sep}{encoded}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Cidr;
    use crate::webhook::sign::verify_twilio_signature;
    use crate::webhook::testserver::{Reply, TestServer};

    const TOKEN: &str = "secret-token";

    fn config(allow_loopback: bool) -> WebhooksConfig {
        let mut c = WebhooksConfig::default();
        if allow_loopback {
            c.allow_private_networks = vec!["127.0.0.0/8".into()];
            c.private_nets = vec![Cidr::parse("127.0.0.0/8").unwrap()];
        }
        c
    }

    fn client(c: &WebhooksConfig) -> WebhookClient {
        WebhookClient::new(c).expect("client")
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn query_building() {
        let p = params(&[("a", "1 2"), ("b", "&")]);
        assert_eq!(with_query("http://h/x", &p), "http://h/x?a=1+2&b=%26");
        assert_eq!(
            with_query("http://h/x?k=v", &p),
            "http://h/x?k=v&a=1+2&b=%26"
        );
        assert_eq!(with_query("http://h/x?", &p), "http://h/x?a=1+2&b=%26");
        assert_eq!(with_query("http://h/x?k=v", &[]), "http://h/x?k=v");
        assert_eq!(without_fragment("http://h/x?k=v#ct=500"), "http://h/x?k=v");
    }

    #[tokio::test]
    async fn post_is_signed_and_carries_the_form() {
        let mut srv = TestServer::start(|_, _| Reply::ok("text/xml", b"<Response/>")).await;
        let c = client(&config(true));
        let url = srv.url("/voice?x=1");
        let p = params(&[
            ("CallSid", "CA1"),
            ("From", "+15550001111"),
            ("To", "client:alice"),
        ]);
        let resp = c.post_form(&url, TOKEN, &p).await.expect("posted");
        assert_eq!(resp.status, 200);
        assert_eq!(&resp.body[..], b"<Response/>");
        assert_eq!(resp.media_type().as_deref(), Some("text/xml"));
        resp.require_twiml().expect("TwiML content type");

        let seen = srv.next().await;
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.target, "/voice?x=1");
        assert_eq!(seen.header("content-type"), Some(FORM));
        assert_eq!(seen.header("user-agent"), Some(USER_AGENT));
        assert_eq!(seen.form(), p);
        let sig = seen.header("x-twilio-signature").expect("signed");
        // A validator rebuilds the URL from what it received and checks the form params.
        let received_url = format!("http://{}{}", seen.header("host").unwrap(), seen.target);
        assert_eq!(received_url, url);
        assert!(verify_twilio_signature(
            TOKEN,
            &received_url,
            &seen.form(),
            sig
        ));
        assert!(!verify_twilio_signature(
            "other",
            &received_url,
            &seen.form(),
            sig
        ));
    }

    #[tokio::test]
    async fn get_signs_the_full_query_url() {
        let mut srv = TestServer::start(|_, _| Reply::ok("application/xml", b"<Response/>")).await;
        let c = client(&config(true));
        let p = params(&[("Digits", "12#"), ("CallSid", "CA2")]);
        c.get_query(&srv.url("/g?k=v#rt=100"), TOKEN, &p)
            .await
            .expect("fetched");
        let seen = srv.next().await;
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.header("content-type"), None);
        assert_eq!(
            seen.query(),
            params(&[("k", "v"), ("Digits", "12#"), ("CallSid", "CA2")])
        );
        let full = format!("http://{}{}", seen.header("host").unwrap(), seen.target);
        let sig = seen.header("x-twilio-signature").expect("signed");
        assert!(verify_twilio_signature(TOKEN, &full, &[], sig));
    }

    #[tokio::test]
    async fn body_over_the_cap_is_an_error() {
        let mut c = config(true);
        c.max_body_bytes = 100;
        let c = client(&c);
        // Announced by Content-Length.
        let big = TestServer::start(|_, _| Reply::ok("text/xml", &[b'x'; 101])).await;
        let e = c.post_form(&big.url("/"), TOKEN, &[]).await.unwrap_err();
        assert_eq!(
            (e.class(), e.twilio_code()),
            ("body_too_large", 11750),
            "{e}"
        );
        // Exactly the cap is fine.
        let exact = TestServer::start(|_, _| Reply::ok("text/xml", &[b'x'; 100])).await;
        let r = c
            .post_form(&exact.url("/"), TOKEN, &[])
            .await
            .expect("at the cap");
        assert_eq!(r.body.len(), 100);
        // Chunked, no length announced: caught while streaming.
        let chunked = TestServer::start(|_, _| {
            let mut raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for _ in 0..4 {
                raw.extend_from_slice(b"32\r\n");
                raw.extend_from_slice(&[b'y'; 50]);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            Reply::raw(raw)
        })
        .await;
        let e = c
            .post_form(&chunked.url("/"), TOKEN, &[])
            .await
            .unwrap_err();
        assert_eq!(e.class(), "body_too_large", "{e}");
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let mut c = config(true);
        c.timeout_ms = 200;
        let c = client(&c);
        let srv = TestServer::start(|_, _| {
            Reply::ok("text/xml", b"<Response/>").after(Duration::from_secs(30))
        })
        .await;
        let e = c.post_form(&srv.url("/"), TOKEN, &[]).await.unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("timeout", 11205), "{e}");
    }

    #[tokio::test]
    async fn redirects_are_limited() {
        let mut c = config(true);
        c.max_redirects = 2;
        let c = client(&c);
        // Endless: /r0 -> /r1 -> /r2 -> /r3 ...
        let srv = TestServer::start(|req, _| {
            let n: u32 = req.target.trim_start_matches("/r").parse().unwrap_or(0);
            Reply::redirect(&format!("/r{}", n + 1))
        })
        .await;
        let e = c.post_form(&srv.url("/r0"), TOKEN, &[]).await.unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("redirects", 11215), "{e}");
        // The first request and two hops; the third hop is never made.
        assert_eq!(srv.count(), 3);

        // Within the limit it is followed, and the response says where it ended.
        let short = TestServer::start(|req, _| match req.target.as_str() {
            "/a" => Reply::redirect("/b"),
            "/b" => Reply::redirect("/c"),
            _ => Reply::ok("text/xml", b"<Response/>"),
        })
        .await;
        let r = c
            .post_form(&short.url("/a"), TOKEN, &[])
            .await
            .expect("two hops");
        assert_eq!(r.url, short.url("/c"));
    }

    #[tokio::test]
    async fn redirect_to_a_refused_address_is_an_error() {
        let c = client(&config(true));
        for to in [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "file:///etc/passwd",
        ] {
            let target = to.to_owned();
            let srv = TestServer::start(move |_, _| Reply::redirect(&target)).await;
            let e = c.post_form(&srv.url("/"), TOKEN, &[]).await.unwrap_err();
            assert_eq!(
                (e.class(), e.twilio_code()),
                ("refused", 11210),
                "{to}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn private_targets_are_refused_unless_allowed() {
        let srv = TestServer::start(|_, _| Reply::ok("text/xml", b"<Response/>")).await;
        let c = client(&config(false));
        let e = c.post_form(&srv.url("/"), TOKEN, &[]).await.unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("refused", 11210), "{e}");
        assert!(e.to_string().contains("loopback"), "{e}");
        // A name that resolves to loopback is refused by the resolver (DNS rebinding).
        let by_name = format!("http://localhost:{}/", srv.addr.port());
        let e = c.get_query(&by_name, TOKEN, &[]).await.unwrap_err();
        assert_eq!(e.class(), "refused", "{e}");
        assert_eq!(srv.count(), 0, "nothing may reach the server");

        // With 127.0.0.0/8 allowed, the same name goes through the resolver and connects.
        let allowed = client(&config(true));
        allowed
            .get_query(&by_name, TOKEN, &[])
            .await
            .expect("allowed by name");
        assert_eq!(srv.count(), 1);
    }

    #[tokio::test]
    async fn other_failures_are_classified() {
        let c = client(&config(true));
        let e = c.post_form("not a url", TOKEN, &[]).await.unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("invalid_url", 11100), "{e}");
        let e = c
            .post_form("ftp://example.com/", TOKEN, &[])
            .await
            .unwrap_err();
        assert_eq!(e.class(), "refused", "{e}");

        // A 3xx that cannot be followed (no Location).
        let dead_end = TestServer::start(|_, _| Reply::status(302)).await;
        let e = c
            .post_form(&dead_end.url("/"), TOKEN, &[])
            .await
            .unwrap_err();
        assert_eq!(
            (e.class(), e.twilio_code()),
            ("invalid_redirect", 11216),
            "{e}"
        );

        let status = TestServer::start(|_, _| Reply::status(503)).await;
        let e = c.post_form(&status.url("/"), TOKEN, &[]).await.unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("status", 11200), "{e}");

        let garbage = TestServer::start(|_, _| Reply::raw("SSH-2.0-OpenSSH\r\n\r\n")).await;
        let e = c
            .post_form(&garbage.url("/"), TOKEN, &[])
            .await
            .unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("protocol", 11206), "{e}");

        // Nobody listening: bind a port, then free it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = c
            .post_form(&format!("http://127.0.0.1:{port}/"), TOKEN, &[])
            .await
            .unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("connect", 11205), "{e}");

        let e = c
            .post_form("http://no-such-host.invalid/", TOKEN, &[])
            .await
            .unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("dns", 11210), "{e}");

        let text = TestServer::start(|_, _| Reply::ok("application/json", b"{}")).await;
        let r = c
            .post_form(&text.url("/"), TOKEN, &[])
            .await
            .expect("fetched");
        let e = r.require_twiml().unwrap_err();
        assert_eq!((e.class(), e.twilio_code()), ("content_type", 12300), "{e}");
    }
}
