//! `Calls.json` and `Calls/{CallSid}.json`: Twilio's Call resource over the call registry.
//!
//! - `GET Calls.json`: the account's live and recently finished calls, newest first,
//!   filtered by `To`, `From`, `ParentCallSid`, `Status`, in pages (`PageSize` [50, max
//!   1000], `Page`).
//! - `GET Calls/{Sid}.json`: one call; 404 when unknown, another account's, or finished so
//!   long ago the registry forgot it (the CDR file still has it).
//! - `POST Calls.json`: place an outbound call that runs `Url`, `Twiml` or an
//!   `ApplicationSid` once answered. Parameters are checked here, with Twilio's error
//!   codes, so the originator only sees well-formed requests; 201 with the call (status
//!   `queued`), or 503 when the switch cannot place calls.
//! - `POST Calls/{Sid}.json`: redirect a live call (`Url` + `Method`, or `Twiml`) or end it
//!   (`Status=completed` hangs up, `Status=canceled` ends it only while not answered). The
//!   command goes to the call's task; the answer is the record as it stands, so the effect
//!   shows in a later fetch, as with Twilio. A finished call gets 400 with 21220.
//!
//! The JSON keeps every field of Twilio's call resource, with `null` for what the switch
//! does not have (price, answered_by…), so Twilio helper libraries parse it unchanged.

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{ApiState, Body, reply};
use crate::call::registry::{CallFilter, SendError};
use crate::call::{CallCommand, CallInfo, CallStatus, OriginateError, OriginateRequest};
use crate::config::HttpMethod;
use crate::instructions::Method;

/// `PageSize` when none is given, and the most allowed (Twilio's values).
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
/// Inline `Twiml` limit, in characters (Twilio 32018).
const MAX_TWIML_CHARS: usize = 4000;
/// Ringing time: Twilio's default, and its cap (larger values are lowered to it).
const DEFAULT_TIMEOUT_SECS: u32 = 60;
const MAX_TIMEOUT_SECS: u32 = 600;
/// Longest answered call: Twilio's default of four hours, and its 24-hour cap.
const DEFAULT_TIME_LIMIT_SECS: u32 = 14_400;
const MAX_TIME_LIMIT_SECS: u32 = 86_400;
/// `To`/`From` longer than this are not addresses (a SIP URI fits comfortably).
const MAX_PARTY_CHARS: usize = 256;
/// `StatusCallbackEvent` values (Twilio's vocabulary).
const EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// What every handler here needs.
pub(super) struct Ctx<'a> {
    pub account: &'a str,
    pub state: &'a ApiState,
}

/// A Twilio call resource. Field order follows api.twilio.com.
#[derive(Serialize)]
struct CallDoc<'a> {
    sid: &'a str,
    date_created: String,
    date_updated: String,
    parent_call_sid: Option<&'a str>,
    account_sid: &'a str,
    to: &'a str,
    to_formatted: &'a str,
    from: &'a str,
    from_formatted: &'a str,
    phone_number_sid: Option<&'a str>,
    status: &'static str,
    start_time: Option<String>,
    end_time: Option<String>,
    /// Seconds as a string, as Twilio; `null` while the call is live.
    duration: Option<String>,
    price: Option<&'a str>,
    price_unit: &'static str,
    direction: &'static str,
    answered_by: Option<&'a str>,
    annotation: Option<&'a str>,
    api_version: &'static str,
    forwarded_from: Option<&'a str>,
    group_sid: Option<&'a str>,
    caller_name: Option<&'a str>,
    queue_time: &'static str,
    trunk_sid: Option<&'a str>,
    uri: String,
    subresource_uris: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Page<'a> {
    calls: Vec<CallDoc<'a>>,
    end: usize,
    first_page_uri: String,
    next_page_uri: Option<String>,
    page: usize,
    page_size: usize,
    previous_page_uri: Option<String>,
    start: usize,
    uri: String,
}

fn list_uri(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Calls.json")
}

fn call_uri(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json")
}

fn doc(c: &CallInfo) -> CallDoc<'_> {
    let secs = |ms: u64| crate::time::rfc2822(ms / 1000);
    // Twilio: `start_time` is empty until the call is dialed; an answered call starts when
    // answered (duration counts from there), an unanswered one when it was placed.
    let start = c
        .answered_ms
        .or_else(|| (c.status != CallStatus::Queued).then_some(c.created_ms));
    let updated = [Some(c.created_ms), c.answered_ms, c.ended_ms]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(c.created_ms);
    CallDoc {
        sid: &c.sid,
        date_created: secs(c.created_ms),
        date_updated: secs(updated),
        parent_call_sid: c.parent_call_sid.as_deref(),
        account_sid: &c.account_sid,
        to: &c.to,
        to_formatted: &c.to,
        from: &c.from,
        from_formatted: &c.from,
        phone_number_sid: None,
        status: c.status.as_str(),
        start_time: start.map(secs),
        end_time: c.ended_ms.map(secs),
        duration: c.status.is_final().then(|| c.duration_secs().to_string()),
        price: None,
        price_unit: "USD",
        direction: c.direction.as_str(),
        answered_by: None,
        annotation: None,
        api_version: "2010-04-01",
        forwarded_from: None,
        group_sid: None,
        caller_name: None,
        queue_time: "0",
        trunk_sid: None,
        uri: call_uri(&c.account_sid, &c.sid),
        subresource_uris: serde_json::Map::new(),
    }
}

/// A parameter problem: Twilio's error code and message, answered with 400. Kept small
/// (rather than a whole `Response`) while checks pass it up.
#[derive(Debug)]
pub(super) struct Invalid {
    code: u32,
    message: String,
}

impl Invalid {
    pub(super) fn response(self) -> Response<Body> {
        reply::error(StatusCode::BAD_REQUEST, self.code, self.message)
    }
}

pub(super) fn invalid(code: u32, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// `GET Calls/{Sid}.json`
pub(super) fn fetch(ctx: &Ctx<'_>, sid: &str, path: &str) -> Response<Body> {
    match ctx.state.calls.get(ctx.account, sid) {
        Some(c) => reply::json(StatusCode::OK, &doc(&c)),
        None => reply::not_found(path),
    }
}

/// `GET Calls.json[?To=&From=&ParentCallSid=&Status=&PageSize=&Page=]`
pub(super) fn list(ctx: &Ctx<'_>, query: Option<&str>) -> Response<Body> {
    let mut filter = CallFilter {
        page_size: DEFAULT_PAGE_SIZE,
        ..CallFilter::default()
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "To" => filter.to = Some(v.into_owned()),
            "From" => filter.from = Some(v.into_owned()),
            "ParentCallSid" => filter.parent_call_sid = Some(v.into_owned()),
            "Status" => match CallStatus::parse(&v) {
                Some(s) => filter.status = Some(s),
                None => {
                    return invalid(
                        21200,
                        format!(
                            "Status `{v}` is not one of queued, ringing, in-progress, \
                             completed, busy, failed, no-answer, canceled"
                        ),
                    )
                    .response();
                }
            },
            // Unparseable values fall back to the defaults, as in `Clients.json`.
            "Page" => filter.page = v.parse().unwrap_or(0),
            "PageSize" => {
                filter.page_size = v
                    .parse()
                    .unwrap_or(DEFAULT_PAGE_SIZE)
                    .clamp(1, MAX_PAGE_SIZE);
            }
            // Twilio's StartTime/EndTime filters and anything unknown are ignored.
            _ => {}
        }
    }
    let page = ctx.state.calls.list_page(ctx.account, &filter);

    // Page links repeat the filters so following them keeps the selection.
    let base = list_uri(ctx.account);
    let page_uri = |p: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("To", &filter.to),
            ("From", &filter.from),
            ("ParentCallSid", &filter.parent_call_sid),
        ] {
            if let Some(v) = value {
                q.append_pair(name, v);
            }
        }
        if let Some(s) = filter.status {
            q.append_pair("Status", s.as_str());
        }
        q.append_pair("PageSize", &filter.page_size.to_string());
        q.append_pair("Page", &p.to_string());
        format!("{base}?{}", q.finish())
    };
    let start = filter.page.saturating_mul(filter.page_size);
    let doc = Page {
        end: start.saturating_add(page.calls.len().saturating_sub(1)),
        first_page_uri: page_uri(0),
        next_page_uri: page.has_more.then(|| page_uri(filter.page + 1)),
        page: filter.page,
        page_size: filter.page_size,
        previous_page_uri: (filter.page > 0).then(|| page_uri(filter.page - 1)),
        start,
        uri: page_uri(filter.page),
        calls: page.calls.iter().map(doc).collect(),
    };
    reply::json(StatusCode::OK, &doc)
}

/// Form parameters by name; a name may repeat (`StatusCallbackEvent`).
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first non-empty value of `name` (Twilio treats an empty parameter as absent).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET` or `POST`, any case (Twilio's only methods); `[POST]` when absent.
pub(super) fn method(form: &Form, name: &str) -> Result<Method, Invalid> {
    match form.get(name) {
        None => Ok(Method::Post),
        Some(m) if m.eq_ignore_ascii_case("POST") => Ok(Method::Post),
        Some(m) if m.eq_ignore_ascii_case("GET") => Ok(Method::Get),
        Some(m) => Err(invalid(
            21200,
            format!("{name} must be GET or POST, not `{m}`"),
        )),
    }
}

/// An absolute http(s) URL with a host, or the Twilio error `code`.
pub(super) fn url(form: &Form, name: &str, code: u32) -> Result<Option<String>, Invalid> {
    let Some(raw) = form.get(name) else {
        return Ok(None);
    };
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(Some(raw.to_owned()))
        }
        _ => Err(invalid(code, format!("{name} `{raw}` is not a valid URL"))),
    }
}

/// Seconds in `1..=max` (larger values are lowered to `max`, as Twilio does).
fn seconds(form: &Form, name: &str, default: u32, max: u32) -> Result<u32, Invalid> {
    match form.get(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.min(u64::from(max)) as u32),
            _ => Err(invalid(
                21200,
                format!("{name} must be a whole number of seconds from 1 to {max}, not `{v}`"),
            )),
        },
    }
}

/// Inline instructions, at most 4000 characters.
fn twiml(form: &Form) -> Result<Option<String>, Invalid> {
    match form.get("Twiml") {
        Some(t) if t.chars().count() > MAX_TWIML_CHARS => Err(invalid(
            32018,
            format!("Twiml size exceeded maximum allowed value of {MAX_TWIML_CHARS} characters"),
        )),
        t => Ok(t.map(str::to_owned)),
    }
}

/// A callee or caller: `client:<identity>`, a `sip:`/`sips:` URI, or a phone number
/// (formatting characters are dropped: `+1 (555) 010-0001` is `+15550100001`).
fn party(raw: &str) -> Option<String> {
    // Control characters are refused before trimming: a trailing CR LF is an injection
    // attempt (these strings reach SIP headers), not padding.
    if raw.chars().any(char::is_control) {
        return None;
    }
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().count() > MAX_PARTY_CHARS {
        return None;
    }
    if let Some(identity) = raw.strip_prefix("client:") {
        return (!identity.is_empty() && !identity.contains(char::is_whitespace))
            .then(|| raw.to_owned());
    }
    let lower = raw.get(..5).map(str::to_ascii_lowercase);
    if lower
        .as_deref()
        .is_some_and(|p| p.starts_with("sip:") || p == "sips:")
    {
        return (!raw.contains(char::is_whitespace) && raw.contains(':')).then(|| raw.to_owned());
    }
    let number: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = number.strip_prefix('+').unwrap_or(&number);
    let ok = (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(number)
}

/// `StatusCallbackEvent`, repeated or space-separated, in first-seen order.
fn events(form: &Form) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for e in form
        .all("StatusCallbackEvent")
        .flat_map(str::split_whitespace)
    {
        if !EVENTS.contains(&e) {
            return Err(invalid(
                21200,
                format!(
                    "StatusCallbackEvent `{e}` is not one of initiated, ringing, answered, completed"
                ),
            ));
        }
        if !out.iter().any(|x| x == e) {
            out.push(e.to_owned());
        }
    }
    Ok(out)
}

fn http_method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
    }
}

/// Parses and checks a create request; `Err` is the 400 to send.
fn originate_request(ctx: &Ctx<'_>, form: &Form) -> Result<OriginateRequest, Invalid> {
    let to = match form.get("To") {
        None => return Err(invalid(21201, "No 'To' number is specified")),
        Some(t) => party(t).ok_or_else(|| {
            invalid(
                21211,
                format!(
                    "Invalid 'To' Phone Number: `{t}` (use +E.164, client:<identity> or a sip: URI)"
                ),
            )
        })?,
    };
    let from = match form.get("From") {
        None => return Err(invalid(21213, "No 'From' number is specified")),
        Some(f) => party(f).ok_or_else(|| {
            invalid(
                21212,
                format!("Invalid 'From' Phone Number: `{f}` (use +E.164, client:<identity> or a sip: URI)"),
            )
        })?,
    };
    let mut req = OriginateRequest {
        account_sid: ctx.account.to_owned(),
        to,
        from,
        url: url(form, "Url", 21205)?,
        method: method(form, "Method")?,
        twiml: twiml(form)?,
        fallback_url: url(form, "FallbackUrl", 21205)?,
        fallback_method: method(form, "FallbackMethod")?,
        status_callback: url(form, "StatusCallback", 21609)?,
        status_callback_method: method(form, "StatusCallbackMethod")?,
        status_callback_events: events(form)?,
        timeout_secs: seconds(form, "Timeout", DEFAULT_TIMEOUT_SECS, MAX_TIMEOUT_SECS)?,
        time_limit_secs: seconds(
            form,
            "TimeLimit",
            DEFAULT_TIME_LIMIT_SECS,
            MAX_TIME_LIMIT_SECS,
        )?,
    };
    let app_sid = form.get("ApplicationSid");
    let sources = [req.url.is_some(), req.twiml.is_some(), app_sid.is_some()];
    match sources.iter().filter(|s| **s).count() {
        0 => {
            return Err(invalid(
                21205,
                "Either Url, Twiml or ApplicationSid must be specified",
            ));
        }
        1 => {}
        _ => {
            return Err(invalid(
                21200,
                "Give only one of Url, Twiml and ApplicationSid",
            ));
        }
    }
    if let Some(sid) = app_sid {
        // As Twilio: with an ApplicationSid the application's own URLs and methods are
        // used, and the request's Url/Method/Fallback/StatusCallback are not.
        let config = ctx.state.live.current();
        let Some(app) = config
            .applications
            .iter()
            .find(|a| a.sid == sid && a.account == ctx.account)
        else {
            return Err(invalid(21218, format!("Invalid ApplicationSid `{sid}`")));
        };
        req.url = app.voice_url.clone();
        req.method = http_method(app.voice_method);
        req.twiml = app.twiml.clone();
        req.fallback_url = app.voice_fallback_url.clone();
        req.fallback_method = http_method(app.voice_fallback_method);
        req.status_callback = app.status_callback.clone();
        req.status_callback_method = http_method(app.status_callback_method);
    }
    Ok(req)
}

/// `POST Calls.json`
pub(super) fn create(ctx: &Ctx<'_>, body: &[u8]) -> Response<Body> {
    match place(ctx, Form::parse(body).0) {
        Ok(call) => reply::json(StatusCode::CREATED, &doc(&call)),
        Err(refused) => *refused,
    }
}

/// Places a call from `Calls.json`'s parameters (also how a conference's participant is
/// created): the call's record, or the error response.
pub(super) fn place(
    ctx: &Ctx<'_>,
    form: Vec<(String, String)>,
) -> Result<CallInfo, Box<Response<Body>>> {
    let form = Form(form);
    let req = match originate_request(ctx, &form) {
        Ok(r) => r,
        Err(bad) => return Err(Box::new(bad.response())),
    };
    let placed = match &ctx.state.originator {
        // Draining (SIGTERM): this node takes no new calls.
        Some(_) if ctx.state.calls.draining(crate::time::unix_now()).is_some() => Err(
            OriginateError::Unavailable("this switch is draining; use another".into()),
        ),
        Some(o) => o.originate(req),
        None => Err(OriginateError::Unavailable(
            "outbound calls are not available on this switch".into(),
        )),
    };
    Err(Box::new(match placed {
        Ok(call) => return Ok(call),
        Err(OriginateError::Invalid { code, message }) => invalid(code, message).response(),
        Err(OriginateError::Limited { limit, retry_after }) => {
            // Twilio's 20429 "Too Many Requests".
            let mut resp = reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                20429,
                format!("Too Many Requests: the account's {limit} is reached"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
            resp
        }
        Err(OriginateError::Unavailable(why)) => {
            let mut resp = reply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                20503,
                format!("Service unavailable: {why}"),
            );
            // Typically the concurrency limit: worth retrying shortly.
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            resp
        }
    }))
}

/// The answer to a command a call could not take: 404 for a call we do not know, 400
/// with 21220 for one that ended or that its parent call runs. `verbs`: what the request
/// wanted, as "Cannot {0}" and "{1} the parent call" say it.
pub(super) fn not_sent(e: SendError, path: &str, verbs: (&str, &str)) -> Response<Body> {
    match e {
        SendError::Unknown => reply::not_found(path),
        SendError::Finished => invalid(
            21220,
            format!("Call is not in-progress. Cannot {}.", verbs.0),
        )
        .response(),
        SendError::NotControllable => invalid(
            21220,
            format!(
                "This call is a <Dial> leg run by its parent call: {} the parent call",
                verbs.1
            ),
        )
        .response(),
    }
}

/// `POST Calls/{Sid}.json`
pub(super) fn modify(ctx: &Ctx<'_>, sid: &str, path: &str, body: &[u8]) -> Response<Body> {
    let form = Form::parse(body);
    // 404 before any parameter check, so nothing is said about a call that is not ours.
    let Some(call) = ctx.state.calls.get(ctx.account, sid) else {
        return reply::not_found(path);
    };
    let command = match command(&form) {
        Ok(Some(c)) => c,
        // Nothing to change: the call as it is, as Twilio answers an empty update.
        Ok(None) => return reply::json(StatusCode::OK, &doc(&call)),
        Err(bad) => return bad.response(),
    };
    if let Err(e) = ctx.state.calls.send(ctx.account, sid, command) {
        return not_sent(e, path, ("redirect", "modify"));
    }
    // The call's task acts on the command shortly; this is the record as it stands now.
    let current = ctx.state.calls.get(ctx.account, sid).unwrap_or(call);
    reply::json(StatusCode::OK, &doc(&current))
}

/// The command a modify request asks for. `Status` wins over new instructions: a call
/// being ended has no use for them.
fn command(form: &Form) -> Result<Option<CallCommand>, Invalid> {
    match form.get("Status") {
        Some("completed") => return Ok(Some(CallCommand::Hangup)),
        Some("canceled") => return Ok(Some(CallCommand::Cancel)),
        Some(s) => {
            return Err(invalid(
                21200,
                format!("Status must be completed or canceled, not `{s}`"),
            ));
        }
        None => {}
    }
    let url = url(form, "Url", 21205)?;
    let method = method(form, "Method")?;
    let twiml = twiml(form)?;
    match (url, twiml) {
        (Some(_), Some(_)) => Err(invalid(21200, "Give either Url or Twiml, not both")),
        (Some(url), None) => Ok(Some(CallCommand::Redirect { url, method })),
        (None, Some(t)) => Ok(Some(CallCommand::Twiml(t))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties() {
        assert_eq!(party("+15550100001").as_deref(), Some("+15550100001"));
        assert_eq!(
            party(" +1 (555) 010-0001 ").as_deref(),
            Some("+15550100001")
        );
        assert_eq!(party("client:alice").as_deref(), Some("client:alice"));
        assert_eq!(
            party("sip:bob@example.com;transport=tcp").as_deref(),
            Some("sip:bob@example.com;transport=tcp")
        );
        assert_eq!(
            party("SIPS:bob@example.com").as_deref(),
            Some("SIPS:bob@example.com")
        );
        for bad in [
            "",
            "client:",
            "client:a b",
            "alice",
            "+1",
            "+1234567890123456",
            "12ab",
            "sip:a b",
            "+1555\r\n",
        ] {
            assert_eq!(party(bad), None, "{bad:?}");
        }
    }
}
