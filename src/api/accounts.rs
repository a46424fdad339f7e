//! Everything under `/2010-04-01/`: authenticate, check that the path's AccountSid is the
//! authenticated account, then dispatch to the resource.
//!
//! Order of checks, as Twilio: no or wrong credentials → 401 (whatever the path); another
//! account's path, or an unknown resource → 404; a known resource with a method it does
//! not take → 405.
//!
//! Recordings (`recordings`): `Recordings.json`, `Recordings/{Sid}[.json|.wav|.mp3]`, and
//! the same under `Calls/{CallSid}/`. Media streams (`streams`): `Calls/{CallSid}/Streams.json`
//! and `Calls/{CallSid}/Streams/{Sid}.json`.

use bytes::Bytes;
use hyper::{Method, Request, Response};

use super::recordings::{self, Format};
use super::{ApiState, Body, calls, clients, conferences, queues, reply, streams};

/// The API version prefix every REST path starts with.
pub(super) const PREFIX: &str = "/2010-04-01/";

pub(super) fn handle(req: &Request<Bytes>, state: &ApiState, now: u64) -> Response<Body> {
    let config = state.live.current();
    let Some(account) = super::auth::authenticate(req.headers(), &config) else {
        return reply::unauthorized();
    };
    let uri = req.uri();
    let path = uri.path();
    let Some(rest) = path
        .strip_prefix(PREFIX)
        .and_then(|p| p.strip_prefix("Accounts/"))
    else {
        return reply::not_found(path);
    };
    let (sid, resource) = rest.split_once('/').unwrap_or((rest, ""));
    if sid != account.sid {
        return reply::not_found(path);
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let route = match segments.as_slice() {
        ["Clients.json"] => Route::ClientList,
        ["Clients", file] => match file.strip_suffix(".json") {
            Some(identity) if !identity.is_empty() => Route::Client(identity),
            _ => return reply::not_found(path),
        },
        ["Calls.json"] => Route::CallList,
        // Call sids are `CA` + hex: nothing to percent-decode, and anything else is
        // simply a call that does not exist.
        ["Calls", file] => match file.strip_suffix(".json") {
            Some(sid) if !sid.is_empty() => Route::Call(sid),
            _ => return reply::not_found(path),
        },
        ["Conferences.json"] => Route::ConferenceList,
        // Conference and call sids are `CF`/`CA` + hex: nothing to decode.
        ["Conferences", file] => match file.strip_suffix(".json") {
            Some(sid) if !sid.is_empty() => Route::Conference(sid),
            _ => return reply::not_found(path),
        },
        ["Conferences", conf, "Participants.json"] if !conf.is_empty() => {
            Route::ParticipantList(conf)
        }
        ["Conferences", conf, "Participants", file] if !conf.is_empty() => {
            match file.strip_suffix(".json") {
                Some(call) if !call.is_empty() => Route::Participant(conf, call),
                _ => return reply::not_found(path),
            }
        }
        ["Queues.json"] => Route::QueueList,
        ["Queues", file] => match file.strip_suffix(".json") {
            Some(sid) if !sid.is_empty() => Route::Queue(sid),
            _ => return reply::not_found(path),
        },
        ["Queues", q, "Members.json"] if !q.is_empty() => Route::MemberList(q),
        ["Queues", q, "Members", file] if !q.is_empty() => match file.strip_suffix(".json") {
            Some(call) if !call.is_empty() => Route::Member(q, call),
            _ => return reply::not_found(path),
        },
        ["Recordings.json"] => Route::RecordingList(None),
        ["Calls", call, "Recordings.json"] if !call.is_empty() => Route::RecordingList(Some(call)),
        ["Calls", call, "Streams.json"] if !call.is_empty() => Route::StreamList(call),
        // Stream sids are `MZ` + hex; a name is taken as it appears in the path.
        ["Calls", call, "Streams", file] if !call.is_empty() => match file.strip_suffix(".json") {
            Some(which) if !which.is_empty() => Route::Stream(call, which),
            _ => return reply::not_found(path),
        },
        // Recording sids are `RE` + hex, like call sids: nothing to decode.
        ["Recordings", file] => match Format::split(file) {
            Some((sid, format)) => Route::Recording(None, sid, format),
            None => return reply::not_found(path),
        },
        ["Calls", call, "Recordings", file] if !call.is_empty() => match Format::split(file) {
            Some((sid, format)) => Route::Recording(Some(call), sid, format),
            None => return reply::not_found(path),
        },
        _ => return reply::not_found(path),
    };
    let method = req.method();
    let read = matches!(*method, Method::GET | Method::HEAD);
    let write = *method == Method::POST;
    let delete = *method == Method::DELETE;
    match route {
        Route::ClientList | Route::Client(_) if !read => {
            return reply::method_not_allowed("GET, HEAD");
        }
        Route::CallList | Route::Call(_) | Route::Conference(_) if !read && !write => {
            return reply::method_not_allowed("GET, HEAD, POST");
        }
        Route::Queue(_) | Route::Member(..) if !read && !write => {
            return reply::method_not_allowed("GET, HEAD, POST");
        }
        Route::ParticipantList(_) if !read && !write => {
            return reply::method_not_allowed("GET, HEAD, POST");
        }
        Route::ConferenceList | Route::QueueList | Route::MemberList(_) if !read => {
            return reply::method_not_allowed("GET, HEAD");
        }
        Route::Participant(..) if !read && !write && !delete => {
            return reply::method_not_allowed("GET, HEAD, POST, DELETE");
        }
        Route::Recording(_, _, Format::Json) if !read && !delete => {
            return reply::method_not_allowed("GET, HEAD, DELETE");
        }
        Route::Recording(_, _, Format::Json) => {}
        Route::RecordingList(_) | Route::Recording(..) if !read => {
            return reply::method_not_allowed("GET, HEAD");
        }
        Route::StreamList(_) | Route::Stream(..) if !write => {
            return reply::method_not_allowed("POST");
        }
        _ => {}
    }
    let ctx = clients::Ctx {
        account: &account.sid,
        state,
        now,
    };
    let calls_ctx = calls::Ctx {
        account: &account.sid,
        state,
    };
    let recordings_ctx = recordings::Ctx {
        account: &account.sid,
        state,
    };
    let conf_ctx = conferences::Ctx {
        account: &account.sid,
        state,
    };
    let queue_ctx = queues::Ctx {
        account: &account.sid,
        state,
    };
    match route {
        Route::ClientList => clients::list(&ctx, uri.query()),
        Route::Client(raw) => match crate::percent::decode(raw) {
            Some(identity) => clients::fetch(&ctx, &identity),
            None => reply::not_found(path),
        },
        Route::CallList if write => calls::create(&calls_ctx, req.body()),
        Route::CallList => calls::list(&calls_ctx, uri.query()),
        Route::Call(sid) if write => calls::modify(&calls_ctx, sid, path, req.body()),
        Route::Call(sid) => calls::fetch(&calls_ctx, sid, path),
        Route::ConferenceList => conferences::list(&conf_ctx, uri.query()),
        Route::Conference(sid) if write => conferences::update(&conf_ctx, sid, path, req.body()),
        Route::Conference(sid) => conferences::fetch(&conf_ctx, sid, path),
        Route::ParticipantList(sid) if write => {
            conferences::create_participant(&conf_ctx, sid, req.body())
        }
        Route::ParticipantList(sid) => conferences::participants(&conf_ctx, sid, path),
        Route::Participant(sid, call) if write => {
            conferences::update_participant(&conf_ctx, sid, call, path, req.body())
        }
        Route::Participant(sid, call) if delete => {
            conferences::delete_participant(&conf_ctx, sid, call, path)
        }
        Route::Participant(sid, call) => conferences::participant(&conf_ctx, sid, call, path),
        Route::QueueList => queues::list(&queue_ctx),
        Route::Queue(sid) if write => queues::update(&queue_ctx, sid, path, req.body()),
        Route::Queue(sid) => queues::fetch(&queue_ctx, sid, path),
        Route::MemberList(sid) => queues::members(&queue_ctx, sid, path),
        Route::Member(sid, call) if write => {
            queues::dequeue(&queue_ctx, sid, call, path, req.body())
        }
        Route::Member(sid, call) => queues::fetch_member(&queue_ctx, sid, call, path),
        Route::RecordingList(call) => recordings::list(&recordings_ctx, call, uri.query()),
        Route::StreamList(call) => streams::create(&calls_ctx, call, path, req.body()),
        Route::Stream(call, which) => streams::update(&calls_ctx, call, which, path, req.body()),
        Route::Recording(call, sid, _) if delete => {
            recordings::delete(&recordings_ctx, call, sid, path)
        }
        Route::Recording(call, sid, format) => {
            recordings::fetch(&recordings_ctx, call, sid, format, path)
        }
    }
}

enum Route<'p> {
    ClientList,
    /// The identity as it appears in the path, still percent-encoded.
    Client(&'p str),
    CallList,
    Call(&'p str),
    ConferenceList,
    Conference(&'p str),
    ParticipantList(&'p str),
    /// A conference's sid and a participant's call sid.
    Participant(&'p str, &'p str),
    QueueList,
    Queue(&'p str),
    MemberList(&'p str),
    /// A queue's sid and a member's call sid (or `Front`).
    Member(&'p str, &'p str),
    /// The account's recordings, or one call's.
    RecordingList(Option<&'p str>),
    /// One recording (under a call when the path names one), as JSON or audio.
    Recording(Option<&'p str>, &'p str, Format),
    /// A call's media streams (create), and one of them by sid or name (stop).
    StreamList(&'p str),
    Stream(&'p str, &'p str),
}
