//! `<Enqueue>` and `<Dial><Queue>` (reference/twiml-and-twilio-client.md): a caller waits
//! in the account's queue hearing its `waitUrl` (TwiML looped; hold music by default)
//! until an agent's `<Dial><Queue>` takes the front of the queue; the two are then bridged
//! through a two-party conference of the media plane (each call keeps its own endpoint,
//! wherever it is). `url` on `<Queue>` is played to the dequeued caller first.
//!
//! The caller's `<Enqueue action>` gets `QueueResult` (bridged, hangup, queue-full,
//! redirected, error), `QueueSid` and `QueueTime` (seconds waited). An agent who finds
//! the queue empty waits for a caller up to its `<Dial timeout>`.

use std::time::Duration;

use super::dial::DialResult;
use super::driver::{Call, Ev, LegRef, Stop, now};
use super::interpret::Next;
use super::model::{CallCommand, QueueCommand};
use crate::instructions::{Enqueue, Method, QueueNoun};
use crate::media::{ConferenceId, EventKind, PlayItem, prompts};
use crate::time::unix_ms;

/// How a bridged call ended from this side's point of view.
enum Bridged {
    /// The other side left: our document goes on.
    PartnerLeft,
    Stop(Stop),
}

impl Call {
    /// Runs `<Enqueue>`; `Some(next)` is its action (or REST's redirect).
    pub(super) async fn enqueue(
        &mut self,
        e: &Enqueue,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Option<Next>, Stop> {
        self.answer_now();
        let svc = self.svc.clone();
        let account = self.info.account_sid.clone();
        let sid = self.info.sid.clone();
        let since = now();
        let action = |result: &str, queue_sid: &str, waited: u64| {
            e.action.as_ref().map(|a| Next::Fetch {
                url: resolve(a),
                method: e.method,
                extra: vec![
                    ("QueueResult".into(), result.into()),
                    ("QueueSid".into(), queue_sid.into()),
                    ("QueueTime".into(), waited.to_string()),
                ],
            })
        };
        let queue = match svc.queues.enqueue(&account, e.name.trim(), &sid) {
            Ok((q, position)) => {
                tracing::info!(call = %sid, queue = %q.sid, position, "enqueued");
                q
            }
            Err((q, full)) => {
                tracing::info!(call = %sid, queue = %q.sid, "{full}");
                return Ok(action("queue-full", &q.sid, 0));
            }
        };
        let endpoint = self.main_endpoint();
        let items = match &e.wait_url {
            Some(url) if !url.trim().is_empty() => self
                .wait_items(url, e.wait_url_method, resolve)
                .await
                .unwrap_or_else(|| vec![PlayItem::Audio(prompts::hold_music())]),
            _ => vec![PlayItem::Audio(prompts::hold_music())],
        };
        if let Some(id) = endpoint {
            svc.media.play(id, items.clone(), 0);
        }
        let outcome = loop {
            match self.next(None).await {
                Some(Ev::Queue(QueueCommand::Dequeued {
                    conference,
                    agent_sid,
                    url,
                    method,
                })) => break Ok((conference, agent_sid, url, method)),
                Some(Ev::Queue(QueueCommand::Redirect { url, method })) => {
                    // REST dequeued it (already out of the queue): the action is told at
                    // once, as Twilio's is, and the call runs `url`.
                    if let Some(Next::Fetch {
                        url: action_url,
                        method: action_method,
                        extra,
                    }) = action("redirected", &queue.sid, since.elapsed().as_secs())
                    {
                        self.notify_fetch(action_url, action_method, extra);
                    }
                    break Err(Err(Stop::Command(CallCommand::Redirect { url, method })));
                }
                Some(Ev::Media(LegRef::Main, EventKind::PlayDone)) => {
                    if let Some(id) = endpoint {
                        svc.media.play(id, items.clone(), 0);
                    }
                }
                Some(Ev::MainGone) => {
                    queue.remove(&sid);
                    let waited = since.elapsed().as_secs();
                    if let Some(Next::Fetch { url, method, extra }) =
                        action("hangup", &queue.sid, waited)
                    {
                        self.notify_fetch(url, method, extra);
                    }
                    break Err(Err(Stop::MainGone));
                }
                Some(Ev::Command(c)) => {
                    queue.remove(&sid);
                    // REST gave the call other instructions: redirected out of the queue.
                    if matches!(c, CallCommand::Redirect { .. } | CallCommand::Twiml(_))
                        && let Some(Next::Fetch { url, method, extra }) =
                            action("redirected", &queue.sid, since.elapsed().as_secs())
                    {
                        self.notify_fetch(url, method, extra);
                    }
                    break Err(Err(Stop::Command(c)));
                }
                _ => {}
            }
        };
        if let Some(id) = endpoint {
            svc.media.stop_play(id);
        }
        let (conference, agent, url, method) = match outcome {
            Ok(d) => d,
            Err(r) => return r.map(|()| None),
        };
        let waited = since.elapsed().as_secs();
        // The agent took us off the queue already. `url` first, then the bridge.
        if let (Some(url), Some(id)) = (url, endpoint)
            && let Some(items) = self.wait_items(&url, method, resolve).await
        {
            svc.media.play(id, items, 1);
            loop {
                match self.next(Some(now() + Duration::from_secs(60))).await {
                    Some(Ev::Media(LegRef::Main, EventKind::PlayDone)) | None => break,
                    Some(Ev::MainGone) => {
                        tell_partner(self, &agent);
                        return Err(Stop::MainGone);
                    }
                    _ => {}
                }
            }
        }
        match self.bridge_through(conference, &agent).await {
            Bridged::PartnerLeft => Ok(action("bridged", &queue.sid, waited)),
            Bridged::Stop(stop) => {
                if let (Stop::MainGone, Some(Next::Fetch { url, method, extra })) =
                    (&stop, action("bridged", &queue.sid, waited))
                {
                    self.notify_fetch(url, method, extra);
                }
                Err(stop)
            }
        }
    }

    /// Runs `<Dial><Queue>`: takes the front caller of the queue (waiting for one up to
    /// `timeout` seconds) and talks with it.
    pub(super) async fn dial_queue(
        &mut self,
        noun: &QueueNoun,
        timeout: u32,
        resolve: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<DialResult, (Stop, DialResult)> {
        self.answer_now();
        let svc = self.svc.clone();
        let account = self.info.account_sid.clone();
        let mut result = DialResult {
            status: "no-answer",
            call_sid: None,
            duration: 0,
            extra: Vec::new(),
        };
        let queue = svc.queues.get_or_create(&account, noun.name.trim());
        result.extra.push(("QueueSid".into(), queue.sid.clone()));
        let deadline = now() + Duration::from_secs(u64::from(timeout.max(1)));
        let conference = svc.media.new_conference();
        let caller = loop {
            if let Some(m) = queue.pop_front() {
                let told = svc.registry.send(
                    &account,
                    &m.call_sid,
                    CallCommand::Queue(QueueCommand::Dequeued {
                        conference,
                        agent_sid: self.info.sid.clone(),
                        url: noun.url.as_ref().map(|u| resolve(u)),
                        method: noun.method,
                    }),
                );
                if told.is_ok() {
                    break m;
                }
                // That caller's call is gone meanwhile: the next one.
                continue;
            }
            if now() >= deadline {
                return Ok(result);
            }
            // Nobody waits: look again shortly (a queue rarely stays empty long for an
            // agent dialling it).
            match self.next(Some(now() + Duration::from_millis(250))).await {
                Some(Ev::MainGone) => return Err((Stop::MainGone, result)),
                Some(Ev::Command(c)) => return Err((Stop::Command(c), result)),
                _ => {}
            }
        };
        tracing::info!(call = %self.info.sid, caller = %caller.call_sid, queue = %queue.sid, "dequeued a caller");
        result.call_sid = Some(caller.call_sid.clone());
        result.extra.push((
            "QueueTime".into(),
            (unix_ms().saturating_sub(caller.enqueued_ms) / 1000).to_string(),
        ));
        let since = now();
        let bridged = self.bridge_through(conference, &caller.call_sid).await;
        result.status = "completed";
        result.duration = since.elapsed().as_secs();
        match bridged {
            Bridged::PartnerLeft => Ok(result),
            Bridged::Stop(stop) => Err((stop, result)),
        }
    }

    /// Joins the two-party `conference` with `partner`'s call until one side leaves; the
    /// side that leaves tells the other.
    async fn bridge_through(&mut self, conference: ConferenceId, partner: &str) -> Bridged {
        let svc = self.svc.clone();
        let Some(endpoint) = self.main_endpoint() else {
            tell_partner(self, partner);
            return Bridged::PartnerLeft;
        };
        svc.media.join(endpoint, conference, false);
        let end = loop {
            match self.next(None).await {
                Some(Ev::Queue(QueueCommand::PartnerLeft)) => break Bridged::PartnerLeft,
                Some(Ev::MainGone) => break Bridged::Stop(Stop::MainGone),
                Some(Ev::Command(c)) => break Bridged::Stop(Stop::Command(c)),
                _ => {}
            }
        };
        svc.media.leave(endpoint);
        if !matches!(end, Bridged::PartnerLeft) {
            tell_partner(self, partner);
        }
        end
    }

    /// Requests `url` in the background (an action nobody is left to hear).
    fn notify_fetch(&self, url: String, method: Method, extra: Vec<(String, String)>) {
        let mut params = self.params();
        params.extend(extra);
        crate::webhook::status_callback::spawn_status_callback(
            self.svc.webhooks.clone(),
            self.auth_token.clone(),
            url,
            method,
            params,
        );
    }
}

fn tell_partner(call: &Call, partner: &str) {
    let _ = call.svc.registry.send(
        &call.info.account_sid,
        partner,
        CallCommand::Queue(QueueCommand::PartnerLeft),
    );
}
