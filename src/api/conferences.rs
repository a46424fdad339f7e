//! `Conferences.json`, `Conferences/{Sid}.json`, `Conferences/{Sid}/Participants.json` and
//! `Conferences/{Sid}/Participants/{CallSid}.json`, shaped as Twilio's resources:
//!
//! - conferences: list (filters `FriendlyName`, `Status`; `Page`, `PageSize`), fetch,
//!   update (`Status=completed` ends it, `AnnounceUrl` plays to everyone);
//! - participants: list, fetch, update (`Muted`, `Hold` with `HoldUrl`, `AnnounceUrl`),
//!   delete (kick: the call leaves, its `<Dial>` ends).
//!
//! - creating a participant (`POST …/Participants.json` with `To`, `From`, and the
//!   participant's `Muted`, `Beep`, `StartConferenceOnEnter`, `EndConferenceOnExit`,
//!   `Label`, `StatusCallback…`, `Timeout`): a call placed as `POST Calls.json` would,
//!   whose instructions are `<Dial><Conference>` into this conference (the path may name it
//!   by sid or by FriendlyName, as Twilio's does).
//!
//! The calls do the work (`call/conference.rs`): REST tells them through the call registry
//! and answers with the records as they stand.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{ApiState, Body, form, reply};
use crate::call::conferences::{Conference, ConferenceStatus, Participant};
use crate::call::{CallCommand, ConferenceCommand};
use crate::time::{rfc2822, unix_ms};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

pub(super) struct Ctx<'a> {
    pub account: &'a str,
    pub state: &'a ApiState,
}

fn conference_uri(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Conferences/{sid}.json")
}

fn participant_uri(account: &str, conf: &str, call: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Conferences/{conf}/Participants/{call}.json")
}

#[derive(Serialize)]
struct SubresourceUris {
    participants: String,
}

#[derive(Serialize)]
struct ConferenceDoc {
    sid: String,
    account_sid: String,
    friendly_name: String,
    status: &'static str,
    date_created: String,
    date_updated: String,
    api_version: &'static str,
    region: &'static str,
    reason_conference_ended: Option<&'static str>,
    uri: String,
    subresource_uris: SubresourceUris,
}

fn conference_doc(c: &Conference) -> ConferenceDoc {
    let st = c.state();
    ConferenceDoc {
        sid: c.sid.clone(),
        account_sid: c.account_sid.clone(),
        friendly_name: c.friendly_name.clone(),
        status: st.status.as_str(),
        date_created: rfc2822(c.created_ms / 1000),
        date_updated: rfc2822(st.updated_ms / 1000),
        api_version: "2010-04-01",
        region: "us1",
        reason_conference_ended: (st.status == ConferenceStatus::Completed)
            .then(|| st.end_reason.unwrap_or("last-participant-left")),
        uri: conference_uri(&c.account_sid, &c.sid),
        subresource_uris: SubresourceUris {
            participants: format!(
                "/2010-04-01/Accounts/{}/Conferences/{}/Participants.json",
                c.account_sid, c.sid
            ),
        },
    }
}

#[derive(Serialize)]
struct ParticipantDoc {
    account_sid: String,
    conference_sid: String,
    call_sid: String,
    label: Option<String>,
    muted: bool,
    hold: bool,
    coaching: bool,
    call_sid_to_coach: Option<String>,
    start_conference_on_enter: bool,
    end_conference_on_exit: bool,
    status: &'static str,
    date_created: String,
    date_updated: String,
    api_version: &'static str,
    uri: String,
}

fn participant_doc(c: &Conference, p: &Participant) -> ParticipantDoc {
    ParticipantDoc {
        account_sid: c.account_sid.clone(),
        conference_sid: c.sid.clone(),
        call_sid: p.call_sid.clone(),
        label: p.label.clone(),
        muted: p.muted,
        hold: p.hold,
        coaching: p.coaching(),
        call_sid_to_coach: p.call_sid_to_coach.clone(),
        start_conference_on_enter: p.start_conference_on_enter,
        end_conference_on_exit: p.end_conference_on_exit,
        status: "connected",
        date_created: rfc2822(p.created_ms / 1000),
        date_updated: rfc2822(p.updated_ms / 1000),
        api_version: "2010-04-01",
        uri: participant_uri(&c.account_sid, &c.sid, &p.call_sid),
    }
}

/// `Coaching` with `CallSidToCoach`, as Twilio's Participant resource takes them:
/// `Some(Some(sid))` starts coaching that call, `Some(None)` stops.
fn coaching(form: &[(String, String)]) -> Result<Option<Option<String>>, String> {
    let to_coach = form::get(form, "CallSidToCoach").map(str::to_string);
    match (boolean(form, "Coaching")?, to_coach) {
        (Some(false), _) => Ok(Some(None)),
        (Some(true), None) => Err("Coaching=true needs CallSidToCoach".into()),
        (_, Some(sid)) if !sid.starts_with("CA") => {
            Err(format!("CallSidToCoach {sid:?} is not a CallSid"))
        }
        (_, Some(sid)) => Ok(Some(Some(sid))),
        (None, None) => Ok(None),
    }
}

/// A `true`/`false` parameter; `Err` says why it is neither.
fn boolean(form: &[(String, String)], name: &str) -> Result<Option<bool>, String> {
    match form::get(form, name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(format!("{name} must be true or false, not {v:?}")),
    }
}

fn find(ctx: &Ctx<'_>, sid: &str) -> Option<Arc<Conference>> {
    ctx.state.conferences.get(ctx.account, sid)
}

pub(super) fn list(ctx: &Ctx<'_>, query: Option<&str>) -> Response<Body> {
    let (mut name, mut status) = (None, None);
    let (mut page, mut page_size) = (0usize, DEFAULT_PAGE_SIZE);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "FriendlyName" if !v.is_empty() => name = Some(v.into_owned()),
            "Status" if !v.is_empty() => status = Some(v.into_owned()),
            "Page" => page = v.parse().unwrap_or(0),
            "PageSize" => {
                page_size = v
                    .parse()
                    .unwrap_or(DEFAULT_PAGE_SIZE)
                    .clamp(1, MAX_PAGE_SIZE);
            }
            _ => {}
        }
    }
    let all: Vec<ConferenceDoc> = ctx
        .state
        .conferences
        .list(ctx.account)
        .iter()
        .map(|c| conference_doc(c))
        .filter(|d| name.as_deref().is_none_or(|n| d.friendly_name == n))
        .filter(|d| status.as_deref().is_none_or(|s| d.status == s))
        .collect();
    let total = all.len();
    let start = page.saturating_mul(page_size).min(total);
    let end = (start + page_size).min(total);
    let base = format!("/2010-04-01/Accounts/{}/Conferences.json", ctx.account);
    let page_uri = |p: usize| format!("{base}?PageSize={page_size}&Page={p}");
    let conferences: Vec<&ConferenceDoc> = all[start..end].iter().collect();
    reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "conferences": conferences,
            "page": page,
            "page_size": page_size,
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "previous_page_uri": (page > 0).then(|| page_uri(page - 1)),
            "next_page_uri": (end < total).then(|| page_uri(page + 1)),
            "start": start,
            "end": end.saturating_sub(1),
        }),
    )
}

pub(super) fn fetch(ctx: &Ctx<'_>, sid: &str, path: &str) -> Response<Body> {
    match find(ctx, sid) {
        Some(c) => reply::json(StatusCode::OK, &conference_doc(&c)),
        None => reply::not_found(path),
    }
}

/// `Status=completed` ends the conference; `AnnounceUrl` plays to everyone in it.
pub(super) fn update(ctx: &Ctx<'_>, sid: &str, path: &str, body: &[u8]) -> Response<Body> {
    let Some(c) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    let form = form::parse(body);
    match form::get(&form, "Status") {
        None => {}
        Some("completed") => {
            crate::call::conference::end_conference(&ctx.state.conferences, &ctx.state.calls, &c);
        }
        Some(other) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                21218,
                format!("Status {other:?}: only completed is allowed"),
            );
        }
    }
    if let Some(url) = form::get(&form, "AnnounceUrl") {
        let everyone: Vec<String> = c
            .state()
            .participants
            .iter()
            .map(|p| p.call_sid.clone())
            .collect();
        for call in everyone {
            let _ = ctx.state.calls.send(
                ctx.account,
                &call,
                CallCommand::Conference(ConferenceCommand::Announce(url.to_string())),
            );
        }
    }
    reply::json(StatusCode::OK, &conference_doc(&c))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `POST …/Participants.json`: dials `To` into the conference (sid or FriendlyName).
pub(super) fn create_participant(ctx: &Ctx<'_>, conference: &str, body: &[u8]) -> Response<Body> {
    let name = match find(ctx, conference) {
        Some(c) => c.friendly_name.clone(),
        None if conference.starts_with("CF") => {
            return reply::not_found(&format!("Conferences/{conference}"));
        }
        None => match crate::percent::decode(conference) {
            Some(n) if !n.is_empty() => n.into_owned(),
            _ => return reply::not_found(&format!("Conferences/{conference}")),
        },
    };
    let form = form::parse(body);
    let mut attrs = String::new();
    for (param, attr) in [
        ("Muted", "muted"),
        ("Beep", "beep"),
        ("StartConferenceOnEnter", "startConferenceOnEnter"),
        ("EndConferenceOnExit", "endConferenceOnExit"),
        ("Label", "participantLabel"),
        ("ConferenceStatusCallback", "statusCallback"),
        ("ConferenceStatusCallbackEvent", "statusCallbackEvent"),
        ("WaitUrl", "waitUrl"),
        ("MaxParticipants", "maxParticipants"),
        ("CallSidToCoach", "coach"),
    ] {
        if let Some(v) = form::get(&form, param) {
            attrs.push_str(&format!(" {attr}=\"{}\"", xml_escape(v)));
        }
    }
    let twiml = format!(
        "<Response><Dial><Conference{attrs}>{}</Conference></Dial></Response>",
        xml_escape(&name)
    );
    // The call's own parameters pass through; the instructions are ours.
    let mut call_form: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "To" | "From"
                    | "StatusCallback"
                    | "StatusCallbackMethod"
                    | "StatusCallbackEvent"
                    | "Timeout"
                    | "TimeLimit"
            )
        })
        .cloned()
        .collect();
    call_form.push(("Twiml".into(), twiml));
    let calls_ctx = super::calls::Ctx {
        account: ctx.account,
        state: ctx.state,
    };
    let call = match super::calls::place(&calls_ctx, call_form) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let now_ms = unix_ms();
    let label = form::get(&form, "Label").map(str::to_string);
    let flag = |k: &str, default: bool| {
        form::get(&form, k).map_or(default, |v| v.eq_ignore_ascii_case("true"))
    };
    reply::json(
        StatusCode::CREATED,
        &serde_json::json!({
            "account_sid": ctx.account,
            "conference_sid": find(ctx, conference).map(|c| c.sid.clone()),
            "call_sid": call.sid,
            "label": label,
            "muted": flag("Muted", false),
            "hold": false,
            "coaching": form::get(&form, "CallSidToCoach").is_some(),
            "call_sid_to_coach": form::get(&form, "CallSidToCoach"),
            "start_conference_on_enter": flag("StartConferenceOnEnter", true),
            "end_conference_on_exit": flag("EndConferenceOnExit", false),
            "status": "queued",
            "date_created": rfc2822(now_ms / 1000),
            "date_updated": rfc2822(now_ms / 1000),
            "api_version": "2010-04-01",
        }),
    )
}

pub(super) fn participants(ctx: &Ctx<'_>, sid: &str, path: &str) -> Response<Body> {
    let Some(c) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    let list: Vec<ParticipantDoc> = c
        .state()
        .participants
        .iter()
        .map(|p| participant_doc(&c, p))
        .collect();
    let uri = format!(
        "/2010-04-01/Accounts/{}/Conferences/{}/Participants.json",
        ctx.account, c.sid
    );
    reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "participants": list,
            "page": 0,
            "page_size": list.len().max(1),
            "uri": uri,
            "first_page_uri": uri,
            "previous_page_uri": null,
            "next_page_uri": null,
            "start": 0,
            "end": list.len().saturating_sub(1),
        }),
    )
}

fn participant_of(c: &Conference, call: &str) -> Option<Participant> {
    c.state()
        .participants
        .iter()
        .find(|p| p.call_sid == call)
        .cloned()
}

pub(super) fn participant(ctx: &Ctx<'_>, sid: &str, call: &str, path: &str) -> Response<Body> {
    let Some(c) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    match participant_of(&c, call) {
        Some(p) => reply::json(StatusCode::OK, &participant_doc(&c, &p)),
        None => reply::not_found(path),
    }
}

/// `Muted`, `Hold` (`HoldUrl`), `AnnounceUrl`: the participant's call applies them; the
/// answer shows the record with the change.
pub(super) fn update_participant(
    ctx: &Ctx<'_>,
    sid: &str,
    call: &str,
    path: &str,
    body: &[u8],
) -> Response<Body> {
    let Some(c) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    let Some(mut p) = participant_of(&c, call) else {
        return reply::not_found(path);
    };
    let form = form::parse(body);
    let (muted, hold) = match (boolean(&form, "Muted"), boolean(&form, "Hold")) {
        (Ok(m), Ok(h)) => (m, h),
        (Err(why), _) | (_, Err(why)) => {
            return reply::error(StatusCode::BAD_REQUEST, 21218, why);
        }
    };
    let hold_url = form::get(&form, "HoldUrl").map(str::to_string);
    let announce_url = form::get(&form, "AnnounceUrl").map(str::to_string);
    let coach = match coaching(&form) {
        Ok(c) => c,
        Err(why) => return reply::error(StatusCode::BAD_REQUEST, 21218, why),
    };
    let command = ConferenceCommand::Update {
        muted,
        hold,
        hold_url,
        announce_url: announce_url.clone(),
        coach: coach.clone(),
    };
    if ctx
        .state
        .calls
        .send(ctx.account, call, CallCommand::Conference(command))
        .is_err()
    {
        return reply::not_found(path);
    }
    if let Some(url) = announce_url {
        let _ = ctx.state.calls.send(
            ctx.account,
            call,
            CallCommand::Conference(ConferenceCommand::Announce(url)),
        );
    }
    // What the record will say once the call applied it.
    if let Some(m) = muted {
        p.muted = m;
    }
    if let Some(h) = hold {
        p.hold = h;
    }
    if let Some(c) = coach {
        p.call_sid_to_coach = c;
    }
    reply::json(StatusCode::OK, &participant_doc(&c, &p))
}

/// Kicks the participant: its call leaves the conference (204).
pub(super) fn delete_participant(
    ctx: &Ctx<'_>,
    sid: &str,
    call: &str,
    path: &str,
) -> Response<Body> {
    let Some(c) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    if participant_of(&c, call).is_none() {
        return reply::not_found(path);
    }
    if ctx
        .state
        .calls
        .send(
            ctx.account,
            call,
            CallCommand::Conference(ConferenceCommand::Kick),
        )
        .is_err()
    {
        return reply::not_found(path);
    }
    reply::with_type(
        StatusCode::NO_CONTENT,
        "application/json",
        bytes::Bytes::new(),
    )
}
