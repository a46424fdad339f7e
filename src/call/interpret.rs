//! Running a call's instructions (reference/twiml-and-twilio-client.md §1.1, §1.5): fetch
//! the document (signed, with the fallback URL on failure), execute its verbs top to bottom,
//! follow `Redirect` and a verb's `action` (the rest of the document is then unreachable),
//! and hang up at the end of the document. REST can replace the instructions or end the call
//! at any moment.
//!
//! Verbs executed here: `Redirect`, `Hangup`, `Reject`; `Dial` is in `dial`, and `Say`,
//! `Play`, `Pause`, `Gather` and `Record` in `verbs`.

use std::time::Duration;

use super::core::leg::{LegState, Role};
use super::dial::{Callee, DialResult, failure_status};
use super::driver::{Call, Ev, LegEv, LegRef, Stop, now};
use super::{CallCommand, CallStatus, OriginateRequest};
use crate::instructions::{self, Document, RejectReason, Verb};
use crate::time::unix_ms;
use crate::webhook::status_callback;
use crate::webhook::voice::{self, Fetch, FetchFailure};

/// Where the next document comes from.
#[derive(Debug, Clone)]
pub(super) enum Next {
    Fetch {
        url: String,
        method: instructions::Method,
        extra: Vec<(String, String)>,
    },
    Inline(String),
}

/// How the instructions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// End of document or `<Hangup>`.
    Hangup,
    Reject(RejectReason),
    /// The caller hung up (or the callee of a REST call).
    MainGone,
    /// No instructions could be had (fetch and fallback failed).
    AppError,
    /// REST `Status=canceled` before the answer.
    Canceled,
    /// The caller's INVITE was refused for its media (488, or 503 without ports).
    MediaRefused(u16),
}

impl Call {
    /// An inbound call: the INVITE is in `main` already.
    pub async fn run_inbound(mut self) {
        if self.core().main().is_none() {
            self.linger_and_leave().await;
            return;
        }
        // The caller's offer is answered (or refused) before anything runs: an offer we
        // cannot carry gets 488 and no ports are held for it.
        if let Err((code, reason)) = self.open_main_media() {
            self.answer_main(code, reason);
            return self.finish(Finish::MediaRefused(code)).await;
        }
        let first = self.initial_next();
        let finish = self.execute(first).await;
        self.finish(finish).await;
    }

    /// A REST-created call: ring the callee, then run the instructions once it answers.
    pub async fn run_outbound(mut self, req: OriginateRequest) {
        self.status_event("initiated");
        let callee = Callee::parse_to(&req.to);
        let targets = match self.targets(&callee).await {
            Ok(t) => t,
            Err(why) => {
                tracing::info!(call = %self.info.sid, ?why, "outbound call has nobody to ring");
                return self.end_unanswered(CallStatus::Failed, None).await;
            }
        };
        // One contact for a REST call (the first registered); forking is `<Dial>`'s.
        let Some(target) = targets.into_iter().next() else {
            return self.end_unanswered(CallStatus::Failed, None).await;
        };
        if self.start_leg(target, &req.from, 70, None).is_none() {
            return self.end_unanswered(CallStatus::Failed, None).await;
        }
        let call_id = self
            .core()
            .main()
            .and_then(|m| m.invite.call_id().ok().map(str::to_string));
        self.update_info(|i| {
            i.status = CallStatus::Ringing;
            i.sip_call_id = call_id;
        });
        let deadline = now() + Duration::from_secs(u64::from(req.timeout_secs.clamp(1, 600)));
        loop {
            match self.next(Some(deadline)).await {
                None => {
                    self.cancel_leg(LegRef::Main);
                    return self.end_unanswered(CallStatus::NoAnswer, Some(487)).await;
                }
                Some(Ev::Main(LegEv::Ringing { .. })) => self.status_event("ringing"),
                // The core read the callee's SDP answer (one it cannot use is a failure).
                Some(Ev::Main(LegEv::Answered)) => break,
                Some(Ev::Main(LegEv::Failed(code))) => {
                    let status = match failure_status(&[code]) {
                        "busy" => CallStatus::Busy,
                        "no-answer" => CallStatus::NoAnswer,
                        _ => CallStatus::Failed,
                    };
                    return self.end_unanswered(status, Some(code)).await;
                }
                Some(Ev::Main(LegEv::HungUp) | Ev::MainGone) => {
                    return self.end_unanswered(CallStatus::Canceled, None).await;
                }
                Some(Ev::Command(CallCommand::Cancel | CallCommand::Hangup)) => {
                    self.cancel_leg(LegRef::Main);
                    return self.end_unanswered(CallStatus::Canceled, Some(487)).await;
                }
                Some(_) => {}
            }
        }
        self.mark_answered();
        self.status_event("answered");
        let first = self.initial_next();
        let finish = self.execute(first).await;
        self.finish(finish).await;
    }

    fn initial_next(&self) -> Next {
        match (&self.app.url, &self.app.twiml) {
            (Some(url), _) => Next::Fetch {
                url: url.clone(),
                method: self.app.method,
                extra: self.app.initial_params.clone(),
            },
            (None, Some(xml)) => Next::Inline(xml.clone()),
            (None, None) => Next::Inline("<Response/>".into()),
        }
    }

    /// Twilio's voice request parameters for this call as it stands.
    pub(super) fn params(&self) -> Vec<(String, String)> {
        let i = &self.info;
        let status = if i.answered_ms.is_some() {
            "in-progress"
        } else if i.status.is_final() {
            i.status.as_str()
        } else {
            "ringing"
        };
        voice::call_params(&voice::CallParamsInput {
            call_sid: &i.sid,
            account_sid: &i.account_sid,
            from: &i.from,
            to: &i.to,
            call_status: status,
            direction: i.direction.as_str(),
            parent_call_sid: i.parent_call_sid.as_deref(),
            application_sid: self.app.application_sid.as_deref(),
            extra: &[],
        })
    }

    /// Fetches a document while still answering SIP; the caller leaving or REST stops it.
    async fn fetch(
        &mut self,
        url: &str,
        method: instructions::Method,
        extra: Vec<(String, String)>,
    ) -> Result<Result<(Document, String), FetchFailure>, Stop> {
        let mut params = self.params();
        params.extend(extra);
        let primary = Fetch {
            url: url.to_string(),
            method,
            params,
        };
        let client = self.svc.webhooks.clone();
        let token = self.auth_token.clone();
        let limits = self.svc.limits;
        let fallback = self
            .app
            .fallback_url
            .clone()
            .map(|u| (u, self.app.fallback_method));
        let fut = async move {
            voice::fetch_instructions(
                &client,
                &token,
                &limits,
                &primary,
                fallback.as_ref().map(|(u, m)| (u.as_str(), *m)),
            )
            .await
            .map(|f| (f.document, f.url))
        };
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Ok(r),
                ev = self.next(None) => match ev {
                    Some(Ev::MainGone) => return Err(Stop::MainGone),
                    Some(Ev::Command(c)) => return Err(Stop::Command(c)),
                    _ => {}
                },
            }
        }
    }

    /// Runs documents until the call is over.
    async fn execute(&mut self, mut next: Next) -> Finish {
        loop {
            let (doc, base) = match next {
                Next::Inline(xml) => match voice::inline(&xml, &self.svc.limits) {
                    Ok(doc) => (doc, None),
                    Err(f) => {
                        tracing::warn!(call = %self.info.sid, code = f.code, why = %f.why, "inline instructions do not parse");
                        return Finish::AppError;
                    }
                },
                Next::Fetch { .. } if let Err(over) = self.fetches.admit(now()) => {
                    // Twilio's 14106, "document retrieval limit reached".
                    tracing::warn!(call = %self.info.sid, code = 14106, why = %over, "instruction fetches stopped; ending the call");
                    return Finish::AppError;
                }
                Next::Fetch { url, method, extra } => match self.fetch(&url, method, extra).await {
                    Ok(Ok((doc, final_url))) => (doc, Some(final_url)),
                    Ok(Err(f)) => {
                        tracing::warn!(call = %self.info.sid, code = f.code, why = %f.why, "no instructions; ending the call");
                        return Finish::AppError;
                    }
                    Err(stop) => match self.on_stop(stop) {
                        Ok(n) => {
                            next = n;
                            continue;
                        }
                        Err(f) => return f,
                    },
                },
            };
            for w in &doc.warnings {
                tracing::info!(call = %self.info.sid, warning = ?w.kind, "instruction warning (12200); skipped");
            }
            match self.run_document(&doc, base.as_deref()).await {
                Ok(Some(n)) => next = n,
                Ok(None) => return Finish::Hangup,
                Err(stop) => match self.on_stop(stop) {
                    Ok(n) => next = n,
                    Err(f) => return f,
                },
            }
        }
    }

    /// What a stop means: new instructions, or the end.
    fn on_stop(&mut self, stop: Stop) -> Result<Next, Finish> {
        match stop {
            Stop::MainGone => Err(Finish::MainGone),
            Stop::Command(CallCommand::Redirect { url, method }) => Ok(Next::Fetch {
                url,
                method,
                extra: Vec::new(),
            }),
            Stop::Command(CallCommand::Twiml(xml)) => Ok(Next::Inline(xml)),
            Stop::Command(CallCommand::Hangup) => Err(Finish::Hangup),
            Stop::Command(
                c @ (CallCommand::Conference(_) | CallCommand::Queue(_) | CallCommand::Stream(_)),
            ) => {
                // The driver hands these to their verbs as `Ev::Conference`/`Ev::Queue`, and
                // takes stream commands itself: none ever stops a verb.
                tracing::warn!(call = %self.info.sid, command = ?c, "conference, queue or stream command as a stop");
                Err(Finish::Hangup)
            }
            Stop::Command(CallCommand::Cancel) => {
                if self.info.answered_ms.is_none() {
                    Err(Finish::Canceled)
                } else {
                    // Twilio: `canceled` only affects calls not yet answered.
                    Err(Finish::Hangup)
                }
            }
        }
    }

    /// Runs one document; `Some(next)` when a verb hands control elsewhere.
    async fn run_document(
        &mut self,
        doc: &Document,
        base: Option<&str>,
    ) -> Result<Option<Next>, Stop> {
        let resolve = |u: &str| match base {
            Some(b) => voice::resolve_url(b, u).unwrap_or_else(|_| u.to_string()),
            None => u.to_string(),
        };
        for verb in &doc.verbs {
            match verb {
                Verb::Hangup => return Ok(None),
                Verb::Reject { reason } => {
                    self.rejected = Some(*reason);
                    return Ok(None);
                }
                Verb::Pause { length } => {
                    self.pause(Duration::from_secs(u64::from(*length)), false)
                        .await?;
                }
                Verb::Play {
                    url,
                    loop_count,
                    digits,
                } => {
                    self.play(&resolve(url), *loop_count, digits.as_deref(), false)
                        .await?;
                }
                Verb::Gather(g) => {
                    // No action: the current document's URL (none for inline XML).
                    let action = g
                        .action
                        .as_deref()
                        .map(resolve)
                        .or(base.map(str::to_string));
                    if let Some(next) = self.gather(g, action).await? {
                        return Ok(Some(next));
                    }
                }
                Verb::Record(r) => {
                    let action = r
                        .action
                        .as_deref()
                        .map(resolve)
                        .or(base.map(str::to_string));
                    let callback = r.recording_status_callback.as_deref().map(resolve);
                    if let Some(next) = self.record(r, action, callback).await? {
                        return Ok(Some(next));
                    }
                }
                Verb::Redirect { url, method } => {
                    return Ok(Some(Next::Fetch {
                        url: resolve(url),
                        method: *method,
                        extra: Vec::new(),
                    }));
                }
                Verb::Dial(d) => {
                    let conference = match &d.target {
                        instructions::DialTarget::Nouns(nouns) => {
                            nouns.iter().find_map(|n| match n {
                                instructions::DialNoun::Conference(c) => Some(c),
                                _ => None,
                            })
                        }
                        _ => None,
                    };
                    let queue = match &d.target {
                        instructions::DialTarget::Nouns(nouns) => {
                            nouns.iter().find_map(|n| match n {
                                instructions::DialNoun::Queue(q) => Some(q),
                                _ => None,
                            })
                        }
                        _ => None,
                    };
                    let outcome = match (conference, queue) {
                        (Some(c), _) => self.conference(c, &resolve).await,
                        (None, Some(q)) => self.dial_queue(q, d.timeout, &resolve).await,
                        (None, None) => self.dial(d).await,
                    };
                    let (result, stop) = match outcome {
                        Ok(r) => (r, None),
                        Err((s, r)) => (r, Some(s)),
                    };
                    self.last_dial = Some(result.status);
                    let action = d.action.as_ref().map(|a| resolve(a));
                    if let Some(stop) = stop {
                        if let (Some(url), Stop::MainGone) = (&action, &stop) {
                            // Twilio still tells the action how the Dial ended; nobody is
                            // left to hear its answer.
                            self.notify_action(url.clone(), d.method, &result);
                        }
                        return Err(stop);
                    }
                    if let Some(url) = action {
                        return Ok(Some(Next::Fetch {
                            url,
                            method: d.method,
                            extra: result.params(),
                        }));
                    }
                }
                Verb::Say { .. } => {
                    self.say(verb, false).await?;
                }
                Verb::Enqueue(e) => {
                    if let Some(next) = self.enqueue(e, &resolve).await? {
                        return Ok(Some(next));
                    }
                }
                Verb::Other { name, .. } => {
                    tracing::warn!(call = %self.info.sid, verb = %name, "verb not supported; skipped");
                }
                Verb::Start { streams } => self.start_forks(streams, &resolve),
                Verb::Stop { stream_names } => {
                    for name in stream_names {
                        if !self.stop_stream(name) {
                            tracing::info!(call = %self.info.sid, stream = %name, "<Stop><Stream>: no such stream");
                        }
                    }
                }
                Verb::Connect(c) => {
                    if let Some(next) = self.connect_stream(c, &resolve).await? {
                        return Ok(Some(next));
                    }
                }
            }
            if self.main_gone() {
                return Err(Stop::MainGone);
            }
        }
        Ok(None)
    }

    pub(super) fn main_gone(&self) -> bool {
        self.core().main_gone()
    }

    /// Fire-and-forget `<Dial>` action request after the caller left.
    fn notify_action(&self, url: String, method: instructions::Method, r: &DialResult) {
        self.notify(url, method, r.params());
    }

    /// Answers the caller's INVITE if it is still pending, with our SDP answer (the relay's
    /// address and port), or our offer when the INVITE had none (the answer then comes in
    /// the ACK, RFC 3264 §4).
    pub(super) fn answer_now(&mut self) {
        let pending = self
            .core()
            .main()
            .is_some_and(|m| m.role == Role::Uas && m.is_pending());
        if !pending {
            return;
        }
        self.answer_main(200, "");
        self.mark_answered();
    }

    /// Sends a status callback for `event` if the call's app asked for it.
    pub fn status_event(&mut self, event: &str) {
        let Some(url) = self.app.status_callback.clone() else {
            return;
        };
        if !status_callback::wants(&self.app.status_callback_events, event) {
            return;
        }
        self.callback_seq += 1;
        let status = match event {
            "initiated" => "initiated",
            "ringing" => "ringing",
            "answered" => "in-progress",
            _ => self.info.status.as_str(),
        };
        let duration = (event == "completed").then(|| self.info.duration_secs());
        let params = status_callback::progress_params(
            self.params(),
            status,
            self.callback_seq - 1,
            duration,
            crate::time::unix_now(),
        );
        status_callback::spawn_status_callback(
            self.svc.webhooks.clone(),
            self.auth_token.clone(),
            url,
            self.app.status_callback_method,
            params,
        );
    }

    /// A call that never got answered (REST-created): record, report, clean up.
    async fn end_unanswered(mut self, status: CallStatus, code: Option<u16>) {
        self.update_info(|i| {
            i.status = status;
            i.sip_response_code = code;
        });
        self.close(status).await;
    }

    /// Ends every leg and the call.
    async fn finish(mut self, finish: Finish) {
        if finish == Finish::AppError {
            self.play_application_error().await;
        }
        let status = self.hang_up_all(finish);
        self.close(status).await;
    }

    /// Ends the main leg the way `finish` asks and every dial leg; returns the call status.
    fn hang_up_all(&mut self, finish: Finish) -> CallStatus {
        for i in 0..self.core().dial_count() {
            self.cancel_leg(LegRef::Dial(i));
        }
        let Some(main) = self.core().main() else {
            return CallStatus::Failed;
        };
        let answered = main.state == LegState::Answered;
        let pending = main.is_pending();
        let role = main.role;
        if answered {
            self.send_bye(LegRef::Main);
            return CallStatus::Completed;
        }
        if !pending {
            // Gone already: CANCEL before the answer, or a failure.
            return match (finish, self.info.answered_ms) {
                (_, Some(_)) => CallStatus::Completed,
                (Finish::MainGone, None) => CallStatus::Canceled,
                _ => CallStatus::Failed,
            };
        }
        if role == Role::Uac {
            self.cancel_leg(LegRef::Main);
            return CallStatus::Canceled;
        }
        // The caller's INVITE is still unanswered: its final answer says why.
        let (code, reason, status) = match finish {
            Finish::Reject(RejectReason::Busy) => (486, "Busy Here", CallStatus::Busy),
            Finish::Reject(RejectReason::Rejected) => (603, "Decline", CallStatus::NoAnswer),
            Finish::AppError => (500, "Application Error", CallStatus::Failed),
            Finish::MediaRefused(code) => (code, "", CallStatus::Failed),
            Finish::Canceled => (487, "", CallStatus::Canceled),
            Finish::MainGone => (487, "", CallStatus::Canceled),
            Finish::Hangup => match self.rejected.map(Finish::Reject).unwrap_or(Finish::Hangup) {
                Finish::Reject(RejectReason::Busy) => (486, "Busy Here", CallStatus::Busy),
                Finish::Reject(RejectReason::Rejected) => (603, "Decline", CallStatus::NoAnswer),
                _ => match self.last_dial {
                    Some("busy") => (486, "Busy Here", CallStatus::Busy),
                    Some("failed") => (503, "", CallStatus::Failed),
                    Some(_) => (480, "", CallStatus::NoAnswer),
                    None => (480, "", CallStatus::Completed),
                },
            },
        };
        self.answer_main(code, reason);
        status
    }

    /// Records the end, reports it, lets the last transactions finish, and leaves.
    async fn close(mut self, status: CallStatus) {
        self.stop_all_streams();
        self.close_all_media();
        let ended = unix_ms();
        let code = self.core().main().and_then(|m| m.final_code);
        self.info.status = status;
        self.info.ended_ms = Some(ended);
        if self.info.sip_response_code.is_none() {
            self.info.sip_response_code = code;
        }
        let info = self.info.clone();
        self.svc.registry.finish(&self.info.sid, move |i| *i = info);
        self.status_event("completed");
        // Absorb retransmissions and let our BYE/CANCEL/final response complete, bounded.
        self.linger_and_leave().await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::dial::failure_status;

    #[test]
    fn dial_call_status_vocabulary() {
        assert_eq!(failure_status(&[486]), "busy");
        assert_eq!(failure_status(&[480, 487]), "no-answer");
        assert_eq!(failure_status(&[]), "no-answer");
        assert_eq!(failure_status(&[503]), "failed");
        assert_eq!(failure_status(&[503, 603]), "busy");
    }
}
