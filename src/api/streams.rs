//! `Calls/{CallSid}/Streams.json` and `Calls/{CallSid}/Streams/{Sid}.json`: Twilio's Stream
//! resource (unidirectional media streams started and stopped over REST).
//!
//! - `POST Calls/{CallSid}/Streams.json`: fork the call's audio to `Url` (`ws://` or
//!   `wss://`), with `Name`, `Track` (`inbound_track` by default, `outbound_track`,
//!   `both_tracks`), `StatusCallback`, `StatusCallbackMethod` and `Parameter{N}.Name` /
//!   `Parameter{N}.Value` (N from 1 to 99) for the `start` message's `customParameters`.
//!   201 with the stream, status `in-progress`; it starts as the call's task takes the
//!   command (a fifth fork track is refused there and logged, as a `<Start>` would be).
//! - `POST Calls/{CallSid}/Streams/{Sid or Name}.json` with `Status=stopped`: 200 with the
//!   stream, status `stopped`; 404 for a stream the call does not have.

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::calls::{Ctx, Form, Invalid, invalid, method, not_sent, url};
use super::{Body, reply};
use crate::call::StreamCommand;
use crate::call::streams::{StreamRequest, new_stream_sid};
use crate::instructions::StreamTrack;

/// `Parameter{N}` pairs taken (Twilio: "up to 99").
const MAX_PARAMETERS: usize = 99;

/// A Twilio stream resource.
#[derive(Serialize)]
struct StreamDoc<'a> {
    sid: &'a str,
    account_sid: &'a str,
    call_sid: &'a str,
    name: Option<&'a str>,
    status: &'static str,
    date_updated: String,
    uri: String,
}

fn doc<'a>(
    account: &'a str,
    call: &'a str,
    sid: &'a str,
    name: Option<&'a str>,
    status: &'static str,
) -> StreamDoc<'a> {
    StreamDoc {
        sid,
        account_sid: account,
        call_sid: call,
        name,
        status,
        date_updated: crate::time::rfc2822(crate::time::unix_now()),
        uri: format!("/2010-04-01/Accounts/{account}/Calls/{call}/Streams/{sid}.json"),
    }
}

/// The request's stream, its parameters checked.
fn request(form: &Form) -> Result<StreamRequest, Invalid> {
    let Some(raw) = form.get("Url") else {
        return Err(invalid(
            20001,
            "Missing required parameter Url in the post body",
        ));
    };
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host_str().is_some() => {}
        _ => {
            return Err(invalid(
                21205,
                format!("Url `{raw}` is not a ws:// or wss:// URL"),
            ));
        }
    }
    let track = match form.get("Track") {
        None | Some("inbound_track") => StreamTrack::Inbound,
        Some("outbound_track") => StreamTrack::Outbound,
        Some("both_tracks") => StreamTrack::Both,
        Some(t) => {
            return Err(invalid(
                21200,
                format!("Track must be inbound_track, outbound_track or both_tracks, not `{t}`"),
            ));
        }
    };
    let mut parameters = Vec::new();
    for n in 1..=MAX_PARAMETERS {
        let name = form.get(&format!("Parameter{n}.Name"));
        let value = form.get(&format!("Parameter{n}.Value"));
        if let Some(name) = name {
            parameters.push((name.to_owned(), value.unwrap_or_default().to_owned()));
        }
    }
    Ok(StreamRequest {
        sid: new_stream_sid(),
        url: raw.to_owned(),
        name: form.get("Name").map(str::to_owned),
        track,
        status_callback: url(form, "StatusCallback", 21609)?,
        status_callback_method: method(form, "StatusCallbackMethod")?,
        parameters,
    })
}

/// `POST Calls/{CallSid}/Streams.json`
pub(super) fn create(ctx: &Ctx<'_>, call: &str, path: &str, body: &[u8]) -> Response<Body> {
    if ctx.state.calls.get(ctx.account, call).is_none() {
        return reply::not_found(path);
    }
    let req = match request(&Form::parse(body)) {
        Ok(r) => r,
        Err(bad) => return bad.response(),
    };
    if let Some(name) = &req.name
        && ctx.state.calls.streams.find(call, name).is_some()
    {
        return invalid(
            21220,
            format!("The call has a stream named `{name}` already"),
        )
        .response();
    }
    let (sid, name) = (req.sid.clone(), req.name.clone());
    let command = StreamCommand::Start(req);
    if let Err(e) = ctx.state.calls.send(ctx.account, call, command.into()) {
        return not_sent(e, path, ("stream", "stream"));
    }
    let d = doc(ctx.account, call, &sid, name.as_deref(), "in-progress");
    reply::json(StatusCode::CREATED, &d)
}

/// `POST Calls/{CallSid}/Streams/{Sid or Name}.json`
pub(super) fn update(
    ctx: &Ctx<'_>,
    call: &str,
    which: &str,
    path: &str,
    body: &[u8],
) -> Response<Body> {
    let Some(stream) = ctx
        .state
        .calls
        .get(ctx.account, call)
        .and_then(|_| ctx.state.calls.streams.find(call, which))
    else {
        return reply::not_found(path);
    };
    match Form::parse(body).get("Status") {
        Some("stopped") => {}
        other => {
            return invalid(
                21200,
                format!("Status must be stopped, not `{}`", other.unwrap_or("")),
            )
            .response();
        }
    }
    let command = StreamCommand::Stop(stream.sid.clone());
    if let Err(e) = ctx.state.calls.send(ctx.account, call, command.into()) {
        return not_sent(e, path, ("stream", "stream"));
    }
    let d = doc(
        ctx.account,
        call,
        &stream.sid,
        stream.name.as_deref(),
        "stopped",
    );
    reply::json(StatusCode::OK, &d)
}
