//! Call status callbacks (reference/twiml-and-twilio-client.md §1.3, "statusCallback"):
//! the application's `status_callback` and the `statusCallback` of `<Number>`, `<Client>`
//! and `<Sip>` nouns are told of call progress with the voice request parameters plus
//! `CallStatus`, `CallDuration` (once completed), `Timestamp`, `CallbackSource` and
//! `SequenceNumber`, as Twilio sends them, so existing receivers work unchanged.
//!
//! A callback only informs: the call never waits for it, and its failure changes nothing
//! but a log line. Hence fire and forget, one task per callback. A request that never
//! reached the server (connection refused, unreachable) is tried once more after a short
//! pause, as Twilio's default connection policy does; anything else is not repeated, since
//! the receiver may have acted on it already.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

use super::client::WebhookClient;
use super::error::WebhookError;
use super::ssrf;
use crate::instructions::Method;

/// The `CallbackSource` of call progress events.
pub const CALLBACK_SOURCE: &str = "call-progress-events";

/// The event sent when no events are configured (Twilio's default).
pub const DEFAULT_EVENT: &str = "completed";

/// Pause before the one retry of a connection failure.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The parameters [`progress_params`] sets; any in `base` are replaced.
const PROGRESS_NAMES: [&str; 5] = [
    "CallStatus",
    "CallDuration",
    "Timestamp",
    "CallbackSource",
    "SequenceNumber",
];

/// Send one status callback in the background: a POST form or a GET query, signed with
/// `auth_token`. Returns the task's handle, which callers may simply drop.
pub fn spawn_status_callback(
    client: Arc<WebhookClient>,
    auth_token: String,
    url: String,
    method: Method,
    params: Vec<(String, String)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut result = send(&client, &auth_token, &url, method, &params).await;
        if let Err(WebhookError::Connect(_)) = result {
            tokio::time::sleep(RETRY_DELAY).await;
            result = send(&client, &auth_token, &url, method, &params).await;
        }
        let status = params
            .iter()
            .find(|(k, _)| k == "CallStatus")
            .map_or("", |(_, v)| v.as_str());
        let shown =
            Url::parse(&url).map_or_else(|_| "(invalid URL)".to_owned(), |u| ssrf::redacted(&u));
        match result {
            Ok(_) => tracing::debug!(url = %shown, status, "status callback delivered"),
            Err(e) => tracing::warn!(
                url = %shown,
                status,
                class = e.class(),
                code = e.twilio_code(),
                error = %super::voice::describe(&e),
                "status callback failed"
            ),
        }
    })
}

async fn send(
    client: &WebhookClient,
    auth_token: &str,
    url: &str,
    method: Method,
    params: &[(String, String)],
) -> Result<(), WebhookError> {
    match method {
        Method::Post => client.post_form(url, auth_token, params).await,
        Method::Get => client.get_query(url, auth_token, params).await,
    }
    .map(drop)
}

/// `base` (the voice request parameters of the call) with the call progress parameters:
/// `CallStatus` = `status`, `CallDuration` (whole seconds, when given: on `completed`),
/// `Timestamp` (RFC 2822, as Twilio writes it), `CallbackSource` = `call-progress-events`
/// and `SequenceNumber` (0 for a call's first callback, counted per callback URL). Those
/// names already in `base` are replaced, not repeated.
pub fn progress_params(
    base: Vec<(String, String)>,
    status: &str,
    sequence: u32,
    duration_secs: Option<u64>,
    now_unix: u64,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = base
        .into_iter()
        .filter(|(k, _)| !PROGRESS_NAMES.contains(&k.as_str()))
        .collect();
    out.push(("CallStatus".to_owned(), status.to_owned()));
    if let Some(d) = duration_secs {
        out.push(("CallDuration".to_owned(), d.to_string()));
    }
    out.push(("Timestamp".to_owned(), crate::time::rfc2822(now_unix)));
    out.push(("CallbackSource".to_owned(), CALLBACK_SOURCE.to_owned()));
    out.push(("SequenceNumber".to_owned(), sequence.to_string()));
    out
}

/// Whether a callback configured for `events` (`statusCallbackEvent`: `initiated`,
/// `ringing`, `answered`, `completed`; items may also be space-separated lists, as the
/// TwiML attribute is written) wants `event`. No events means `completed` only.
pub fn wants(events: &[String], event: &str) -> bool {
    let mut listed = events.iter().flat_map(|e| e.split_whitespace()).peekable();
    if listed.peek().is_none() {
        return event.eq_ignore_ascii_case(DEFAULT_EVENT);
    }
    listed.any(|e| e.eq_ignore_ascii_case(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cidr, WebhooksConfig};
    use crate::webhook::sign::verify_twilio_signature;
    use crate::webhook::testserver::{Reply, TestServer};

    fn client() -> Arc<WebhookClient> {
        let hooks = WebhooksConfig {
            allow_private_networks: vec!["127.0.0.0/8".into()],
            private_nets: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..WebhooksConfig::default()
        };
        Arc::new(WebhookClient::new(&hooks).expect("client"))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    async fn finished(task: JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("callback task ends")
            .expect("no panic");
    }

    #[test]
    fn progress_parameters() {
        let base = pairs(&[("CallSid", "CA1"), ("CallStatus", "ringing"), ("To", "+1")]);
        let p = progress_params(base.clone(), "completed", 3, Some(42), 1_700_000_000);
        assert_eq!(
            p,
            pairs(&[
                ("CallSid", "CA1"),
                ("To", "+1"),
                ("CallStatus", "completed"),
                ("CallDuration", "42"),
                ("Timestamp", "Tue, 14 Nov 2023 22:13:20 +0000"),
                ("CallbackSource", "call-progress-events"),
                ("SequenceNumber", "3"),
            ])
        );
        let p = progress_params(base, "ringing", 0, None, 0);
        assert!(!p.iter().any(|(k, _)| k == "CallDuration"));
        assert_eq!(p.iter().filter(|(k, _)| k == "CallStatus").count(), 1);
    }

    #[test]
    fn wanted_events() {
        let none: Vec<String> = Vec::new();
        assert!(wants(&none, "completed"));
        assert!(!wants(&none, "ringing"));
        let some = vec!["initiated".to_owned(), "ringing answered".to_owned()];
        assert!(wants(&some, "ringing"));
        assert!(wants(&some, "answered"));
        assert!(wants(&some, "Initiated"));
        assert!(!wants(&some, "completed"));
        assert!(wants(&[" ".to_owned()], "completed"), "blank is none");
    }

    #[tokio::test]
    async fn post_and_get_are_sent_signed() {
        let mut srv = TestServer::start(|_, _| Reply::status(200)).await;
        let params = progress_params(
            pairs(&[("CallSid", "CA1"), ("AccountSid", "AC1")]),
            "completed",
            1,
            Some(7),
            1_700_000_000,
        );

        let url = srv.url("/status?leg=a");
        let task = spawn_status_callback(
            client(),
            "tok".to_owned(),
            url.clone(),
            Method::Post,
            params.clone(),
        );
        finished(task).await;
        let seen = srv.next().await;
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.form(), params);
        let sig = seen.header("x-twilio-signature").expect("signed");
        assert!(verify_twilio_signature("tok", &url, &params, sig));

        let task = spawn_status_callback(
            client(),
            "tok".to_owned(),
            srv.url("/status"),
            Method::Get,
            params.clone(),
        );
        finished(task).await;
        let seen = srv.next().await;
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.query(), params);
    }

    #[tokio::test]
    async fn failures_are_not_repeated() {
        let srv = TestServer::start(|_, _| Reply::status(500)).await;
        let task = spawn_status_callback(
            client(),
            "tok".to_owned(),
            srv.url("/status"),
            Method::Post,
            pairs(&[("CallStatus", "completed")]),
        );
        finished(task).await;
        assert_eq!(srv.count(), 1, "a 500 reached the application: no retry");

        // Nobody listening: one retry, then the task gives up.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let task = spawn_status_callback(
            client(),
            "tok".to_owned(),
            format!("http://127.0.0.1:{port}/status"),
            Method::Post,
            Vec::new(),
        );
        finished(task).await;
    }

    #[tokio::test]
    async fn connection_failure_is_retried_once() {
        // Bind a port, free it, and start listening on it only after the first attempt
        // has been refused: the retry one second later gets through.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let task = spawn_status_callback(
            client(),
            "tok".to_owned(),
            format!("http://{addr}/status"),
            Method::Post,
            pairs(&[("CallStatus", "ringing")]),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        assert!(accepted.is_ok(), "the retry connected");
        drop(accepted);
        finished(task).await;
    }
}
