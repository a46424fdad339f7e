//! Presence callbacks: every presence change of an identity whose account has a
//! `presence_callback` URL is POSTed there, signed with the account's auth token, with the
//! form parameters `AccountSid`, `Identity`, `Status` (`available` | `busy` | `offline`),
//! `Timestamp` (RFC 3339, UTC) and `ApiVersion` (`2010-04-01`).
//!
//! Presence never waits for a callback: this task only reads the broadcast
//! (`Presence::subscribe`). Each account gets its own worker and queue, so a slow customer
//! server delays only its own account's callbacks, and an account's callbacks arrive in
//! the order the changes happened. A full queue (a server far slower than its presence
//! churn) drops the change with a warning; failures are logged (warn) with their class and
//! Twilio code, never retried. If this task itself falls behind the broadcast, it logs how
//! many changes it skipped. The URL and token are read from the live config when the
//! change is received, so a reload applies to the next change.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::client::WebhookClient;
use crate::config::Live;
use crate::registrar::presence::{Presence, PresenceChange, PresenceLink, Reporter};

/// Changes one account may have waiting before new ones are dropped.
const QUEUE: usize = 256;

/// The `ApiVersion` parameter.
const API_VERSION: &str = "2010-04-01";

/// One callback to make.
struct Job {
    change: PresenceChange,
    url: String,
    auth_token: String,
}

/// Start delivering presence callbacks. The task ends (after the queued callbacks are
/// delivered) when `presence` is dropped.
///
/// In a cluster every node sees every change; only the node that caused it (or, for a
/// lapse, the first to claim it: [`PresenceLink::claim`]) makes the callback, so the
/// customer gets one per change.
pub fn spawn(presence: &Presence, live: Arc<Live>, client: Arc<WebhookClient>) -> JoinHandle<()> {
    let rx = presence.subscribe();
    tokio::spawn(run(rx, live, client, presence.link()))
}

async fn run(
    mut rx: tokio::sync::broadcast::Receiver<PresenceChange>,
    live: Arc<Live>,
    client: Arc<WebhookClient>,
    link: Option<Arc<dyn PresenceLink>>,
) {
    let mut queues: HashMap<Box<str>, mpsc::Sender<Job>> = HashMap::new();
    let mut workers = JoinSet::new();
    loop {
        match rx.recv().await {
            Ok(change) => {
                let Some(job) = job_for(&live, change) else {
                    continue;
                };
                let tx = queues.entry(job.change.account.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    workers.spawn(worker(rx, Arc::clone(&client), link.clone()));
                    tx
                });
                match tx.try_send(job) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(job)) => {
                        let c = &job.change;
                        tracing::warn!(
                            account = %c.account,
                            identity = %c.identity,
                            status = c.status.as_str(),
                            "presence callback queue full: change dropped"
                        );
                    }
                    // The worker is gone (it panicked): a new one takes the next change.
                    Err(mpsc::error::TrySendError::Closed(job)) => {
                        let c = &job.change;
                        queues.remove(&c.account);
                        tracing::warn!(
                            account = %c.account,
                            identity = %c.identity,
                            status = c.status.as_str(),
                            "presence callback worker gone: change dropped"
                        );
                    }
                }
            }
            Err(RecvError::Lagged(skipped)) => {
                tracing::warn!(
                    skipped,
                    "presence callbacks fell behind: {skipped} changes skipped"
                );
            }
            Err(RecvError::Closed) => break,
        }
    }
    // Let the workers drain what is queued.
    drop(queues);
    while workers.join_next().await.is_some() {}
}

/// The callback for `change`, if its account (in the config in force now) has one.
fn job_for(live: &Live, change: PresenceChange) -> Option<Job> {
    let config = live.current();
    let account = config.accounts.iter().find(|a| *a.sid == *change.account)?;
    let url = account.presence_callback.clone()?;
    Some(Job {
        url,
        auth_token: account.auth_token.clone(),
        change,
    })
}

async fn worker(
    mut rx: mpsc::Receiver<Job>,
    client: Arc<WebhookClient>,
    link: Option<Arc<dyn PresenceLink>>,
) {
    while let Some(job) = rx.recv().await {
        let c = &job.change;
        let ours = match (c.reporter, &link) {
            (Reporter::This, _) | (_, None) => true,
            (Reporter::Another, Some(_)) => false,
            (Reporter::Claim, Some(link)) => link.claim(c).await,
        };
        if !ours {
            // Another node of the cluster reports this change.
            continue;
        }
        match client
            .post_form(&job.url, &job.auth_token, &params(c))
            .await
        {
            Ok(_) => tracing::debug!(
                account = %c.account,
                identity = %c.identity,
                status = c.status.as_str(),
                "presence callback delivered"
            ),
            Err(e) => tracing::warn!(
                account = %c.account,
                identity = %c.identity,
                status = c.status.as_str(),
                class = e.class(),
                code = e.twilio_code(),
                error = %e,
                "presence callback failed"
            ),
        }
    }
}

/// The form parameters of one callback.
pub fn params(change: &PresenceChange) -> Vec<(String, String)> {
    vec![
        ("AccountSid".to_owned(), change.account.to_string()),
        ("Identity".to_owned(), change.identity.to_string()),
        ("Status".to_owned(), change.status.as_str().to_owned()),
        ("Timestamp".to_owned(), crate::time::rfc3339(change.at)),
        ("ApiVersion".to_owned(), API_VERSION.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Account, Cidr, Config, WebhooksConfig};
    use crate::registrar::location::AorKey;
    use crate::registrar::presence::PresenceStatus;
    use crate::webhook::sign::verify_twilio_signature;
    use crate::webhook::testserver::{Reply, TestServer};

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const AC_QUIET: &str = "AC1123456789abcdef0123456789abcdef";

    fn account(sid: &str, token: &str, callback: Option<String>) -> Account {
        Account {
            sid: sid.into(),
            auth_token: token.into(),
            friendly_name: None,
            presence_callback: callback,
            api_keys: Vec::new(),
            issuers: Vec::new(),
            max_calls: None,
            calls_per_second: None,
        }
    }

    /// A client allowed to reach the local test server.
    fn loopback_client() -> Arc<WebhookClient> {
        let hooks = WebhooksConfig {
            allow_private_networks: vec!["127.0.0.0/8".into()],
            private_nets: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..WebhooksConfig::default()
        };
        Arc::new(WebhookClient::new(&hooks).expect("client"))
    }

    #[tokio::test]
    async fn change_is_posted_signed() {
        let mut srv = TestServer::start(|_, _| Reply::status(204)).await;
        let url = srv.url("/presence?src=sb");
        let config = Config {
            accounts: vec![
                account(AC_QUIET, "quiet", None),
                account(AC, "tok", Some(url.clone())),
            ],
            ..Config::default()
        };
        let live = Arc::new(Live::new("unused.toml", config));
        let client = loopback_client();

        let presence = Presence::new();
        let task = spawn(&presence, live, client);
        // An account without a callback: nothing sent.
        presence.on_bindings(&AorKey::new(AC_QUIET, "zed"), 1, 10);
        presence.on_bindings(&AorKey::new(AC, "alice"), 1, 1_700_000_000);
        presence.on_bindings(&AorKey::new(AC, "alice"), 0, 1_700_000_060);

        for (status, at) in [
            (PresenceStatus::Available, "2023-11-14T22:13:20Z"),
            (PresenceStatus::Offline, "2023-11-14T22:14:20Z"),
        ] {
            let seen = srv.next().await;
            assert_eq!(seen.method, "POST");
            assert_eq!(seen.target, "/presence?src=sb");
            let form = seen.form();
            let expect: Vec<(String, String)> = [
                ("AccountSid", AC),
                ("Identity", "alice"),
                ("Status", status.as_str()),
                ("Timestamp", at),
                ("ApiVersion", "2010-04-01"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            assert_eq!(form, expect);
            let sig = seen.header("x-twilio-signature").expect("signed");
            assert!(verify_twilio_signature("tok", &url, &form, sig));
        }

        // Dropping presence closes the broadcast; the task ends.
        drop(presence);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("task ends")
            .expect("no panic");
        assert_eq!(srv.count(), 2);
    }

    #[tokio::test]
    async fn failures_do_not_stop_delivery() {
        // First callback fails (500), the next still goes out.
        let mut srv = TestServer::start(|_, i| {
            if i == 0 {
                Reply::status(500)
            } else {
                Reply::status(200)
            }
        })
        .await;
        let config = Config {
            accounts: vec![account(AC, "tok", Some(srv.url("/p")))],
            ..Config::default()
        };
        let live = Arc::new(Live::new("unused.toml", config));
        let client = loopback_client();
        let presence = Presence::new();
        let _task = spawn(&presence, live, client);
        presence.on_bindings(&AorKey::new(AC, "bob"), 1, 5);
        presence.on_bindings(&AorKey::new(AC, "bob"), 0, 6);
        let statuses: Vec<String> = [srv.next().await, srv.next().await]
            .iter()
            .map(|s| s.form().into_iter().find(|(k, _)| k == "Status").unwrap().1)
            .collect();
        assert_eq!(statuses, ["available", "offline"]);
    }
}
