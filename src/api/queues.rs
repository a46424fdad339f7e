//! `Queues.json`, `Queues/{Sid}.json` (fetch; update `MaxSize`),
//! `Queues/{Sid}/Members.json` and `Queues/{Sid}/Members/{CallSid|Front}.json` (fetch;
//! `POST Url=…` dequeues the member to those instructions), shaped as Twilio's.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{ApiState, Body, form, reply};
use crate::call::queues::{Member, Queue};
use crate::call::{CallCommand, QueueCommand};
use crate::instructions::Method;
use crate::time::{rfc2822, unix_ms};

pub(super) struct Ctx<'a> {
    pub account: &'a str,
    pub state: &'a ApiState,
}

#[derive(Serialize)]
struct QueueDoc {
    sid: String,
    account_sid: String,
    friendly_name: String,
    current_size: usize,
    max_size: u32,
    average_wait_time: u64,
    date_created: String,
    date_updated: String,
    uri: String,
}

fn queue_doc(q: &Queue) -> QueueDoc {
    let st = q.state();
    QueueDoc {
        sid: q.sid.clone(),
        account_sid: q.account_sid.clone(),
        friendly_name: q.friendly_name.clone(),
        current_size: st.members.len(),
        max_size: st.max_size,
        average_wait_time: st.average_wait_secs(),
        date_created: rfc2822(q.created_ms / 1000),
        date_updated: rfc2822(q.created_ms / 1000),
        uri: format!(
            "/2010-04-01/Accounts/{}/Queues/{}.json",
            q.account_sid, q.sid
        ),
    }
}

#[derive(Serialize)]
struct MemberDoc {
    call_sid: String,
    queue_sid: String,
    date_enqueued: String,
    position: usize,
    wait_time: u64,
    uri: String,
}

fn member_doc(q: &Queue, m: &Member, position: usize) -> MemberDoc {
    MemberDoc {
        call_sid: m.call_sid.clone(),
        queue_sid: q.sid.clone(),
        date_enqueued: rfc2822(m.enqueued_ms / 1000),
        position,
        wait_time: unix_ms().saturating_sub(m.enqueued_ms) / 1000,
        uri: format!(
            "/2010-04-01/Accounts/{}/Queues/{}/Members/{}.json",
            q.account_sid, q.sid, m.call_sid
        ),
    }
}

fn find(ctx: &Ctx<'_>, sid: &str) -> Option<Arc<Queue>> {
    ctx.state.queues.get(ctx.account, sid)
}

pub(super) fn list(ctx: &Ctx<'_>) -> Response<Body> {
    let queues: Vec<QueueDoc> = ctx
        .state
        .queues
        .list(ctx.account)
        .iter()
        .map(|q| queue_doc(q))
        .collect();
    let uri = format!("/2010-04-01/Accounts/{}/Queues.json", ctx.account);
    reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "queues": queues, "page": 0, "page_size": queues.len().max(1), "uri": uri,
            "first_page_uri": uri, "previous_page_uri": null, "next_page_uri": null,
            "start": 0, "end": queues.len().saturating_sub(1),
        }),
    )
}

pub(super) fn fetch(ctx: &Ctx<'_>, sid: &str, path: &str) -> Response<Body> {
    match find(ctx, sid) {
        Some(q) => reply::json(StatusCode::OK, &queue_doc(&q)),
        None => reply::not_found(path),
    }
}

/// `MaxSize` (1 to 5000).
pub(super) fn update(ctx: &Ctx<'_>, sid: &str, path: &str, body: &[u8]) -> Response<Body> {
    let Some(q) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    let form = form::parse(body);
    if let Some(v) = form::get(&form, "MaxSize") {
        match v.parse::<u32>() {
            Ok(n) if (1..=crate::call::queues::MAX_MAX_SIZE).contains(&n) => {
                ctx.state.queues.set_max_size(&q, n)
            }
            _ => {
                return reply::error(
                    StatusCode::BAD_REQUEST,
                    21218,
                    format!("MaxSize must be 1 to 5000, not {v:?}"),
                );
            }
        }
    }
    reply::json(StatusCode::OK, &queue_doc(&q))
}

pub(super) fn members(ctx: &Ctx<'_>, sid: &str, path: &str) -> Response<Body> {
    let Some(q) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    let members: Vec<MemberDoc> = q
        .state()
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| member_doc(&q, m, i + 1))
        .collect();
    let uri = format!(
        "/2010-04-01/Accounts/{}/Queues/{}/Members.json",
        ctx.account, q.sid
    );
    reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "queue_members": members, "page": 0, "page_size": members.len().max(1),
            "uri": uri, "first_page_uri": uri, "previous_page_uri": null,
            "next_page_uri": null, "start": 0, "end": members.len().saturating_sub(1),
        }),
    )
}

/// The member `call` (or `Front`) with its position.
fn member(q: &Queue, call: &str) -> Option<(Member, usize)> {
    let st = q.state();
    let i = if call == "Front" {
        (!st.members.is_empty()).then_some(0)?
    } else {
        st.members.iter().position(|m| m.call_sid == call)?
    };
    Some((st.members[i].clone(), i + 1))
}

pub(super) fn fetch_member(ctx: &Ctx<'_>, sid: &str, call: &str, path: &str) -> Response<Body> {
    let Some(q) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    match member(&q, call) {
        Some((m, pos)) => reply::json(StatusCode::OK, &member_doc(&q, &m, pos)),
        None => reply::not_found(path),
    }
}

/// `Url` (required) and `Method`: the member leaves the queue and runs those instructions.
pub(super) fn dequeue(
    ctx: &Ctx<'_>,
    sid: &str,
    call: &str,
    path: &str,
    body: &[u8],
) -> Response<Body> {
    let Some(q) = find(ctx, sid) else {
        return reply::not_found(path);
    };
    let form = form::parse(body);
    let Some(url) = form::get(&form, "Url") else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            20001,
            "Url is required to dequeue a member".into(),
        );
    };
    let method = match form::get(&form, "Method") {
        Some(m) if m.eq_ignore_ascii_case("GET") => Method::Get,
        _ => Method::Post,
    };
    let Some((m, pos)) = member(&q, call) else {
        return reply::not_found(path);
    };
    if q.remove(&m.call_sid).is_none() {
        return reply::not_found(path);
    }
    let command = CallCommand::Queue(QueueCommand::Redirect {
        url: url.to_string(),
        method,
    });
    if ctx
        .state
        .calls
        .send(ctx.account, &m.call_sid, command)
        .is_err()
    {
        return reply::not_found(path);
    }
    reply::json(StatusCode::OK, &member_doc(&q, &m, pos))
}
