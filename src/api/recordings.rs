//! `Recordings.json`, `Recordings/{Sid}[.json|.wav|.mp3]` and
//! `Calls/{CallSid}/Recordings[.json|/{Sid}.json]`: Twilio's Recording resource over the
//! recordings registry.
//!
//! - `GET Recordings.json[?CallSid=&PageSize=&Page=]`: the account's recordings, newest
//!   first, in pages as `Calls.json`; `Calls/{CallSid}/Recordings.json` is the same list
//!   for one call (empty, not 404, for a call without recordings, as Twilio).
//! - `GET Recordings/{Sid}.json`: one recording; `DELETE` it: 204, both files gone.
//! - `GET Recordings/{Sid}` or `Recordings/{Sid}.wav`: the audio, `audio/x-wav` (what
//!   Twilio serves). Only WAV is stored: `.mp3` is a 404 saying so.
//!
//! Another account's recording, or an unknown one, is 404.
//!
//! The audio is read whole into memory (the handlers are synchronous, on the HTTP task)
//! and served with its `Content-Length`; no `Range` requests. That is fine for `<Record>`
//! (an hour of 8 kHz 16-bit mono is 57 MB), and files over `MAX_SERVED_BYTES` are refused
//! with a 500 (Twilio code 20500) rather than read: fetch those from the recordings
//! directory until the audio is streamed.

use std::io::Read as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{ApiState, Body, reply};
use crate::call::recordings::{RecordingInfo, recording_url};
use crate::time::rfc2822;

/// `PageSize` when none is given, and the most allowed (Twilio's values).
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
/// Largest audio file served over REST.
pub(super) const MAX_SERVED_BYTES: u64 = 64 << 20;

/// What every handler here needs.
pub(super) struct Ctx<'a> {
    pub account: &'a str,
    pub state: &'a ApiState,
}

/// Which representation of a recording a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `{Sid}.json`: the resource.
    Json,
    /// `{Sid}` or `{Sid}.wav`: the audio.
    Wav,
    /// `{Sid}.mp3`: not stored.
    Mp3,
}

impl Format {
    /// Splits `RE….json`, `RE….wav`, `RE….mp3` or a bare `RE…` into sid and format;
    /// `None` for another extension or an empty sid.
    pub(super) fn split(file: &str) -> Option<(&str, Format)> {
        let (sid, format) = match file.rsplit_once('.') {
            None => (file, Format::Wav),
            Some((sid, "json")) => (sid, Format::Json),
            Some((sid, "wav")) => (sid, Format::Wav),
            Some((sid, "mp3")) => (sid, Format::Mp3),
            Some(_) => return None,
        };
        (!sid.is_empty()).then_some((sid, format))
    }
}

/// A Twilio recording resource. Field order follows api.twilio.com.
#[derive(Serialize)]
struct RecordingDoc<'a> {
    account_sid: &'a str,
    api_version: &'static str,
    call_sid: &'a str,
    conference_sid: Option<&'a str>,
    date_created: String,
    date_updated: String,
    start_time: String,
    /// Seconds as a string, as Twilio.
    duration: String,
    sid: &'a str,
    price: Option<&'a str>,
    price_unit: &'static str,
    status: &'a str,
    channels: u32,
    source: &'a str,
    error_code: Option<u32>,
    uri: String,
    encryption_details: Option<&'a str>,
    subresource_uris: serde_json::Map<String, serde_json::Value>,
    /// The audio's absolute URL (the `RecordingUrl` of callbacks); `null` until the
    /// switch knows its own base URL.
    media_url: Option<String>,
}

#[derive(Serialize)]
struct Page<'a> {
    recordings: Vec<RecordingDoc<'a>>,
    end: usize,
    first_page_uri: String,
    next_page_uri: Option<String>,
    page: usize,
    page_size: usize,
    previous_page_uri: Option<String>,
    start: usize,
    uri: String,
}

fn recording_uri(account: &str, sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Recordings/{sid}.json")
}

fn doc<'a>(r: &'a RecordingInfo, base: Option<&str>) -> RecordingDoc<'a> {
    let created = rfc2822(r.date_created_ms / 1000);
    RecordingDoc {
        account_sid: &r.account_sid,
        api_version: "2010-04-01",
        call_sid: &r.call_sid,
        conference_sid: r.conference_sid.as_deref(),
        date_updated: created.clone(),
        date_created: created,
        start_time: rfc2822(r.start_time_ms / 1000),
        duration: r.duration_secs.to_string(),
        sid: &r.sid,
        price: None,
        price_unit: "USD",
        status: &r.status,
        channels: r.channels,
        source: &r.source,
        error_code: None,
        uri: recording_uri(&r.account_sid, &r.sid),
        encryption_details: None,
        subresource_uris: serde_json::Map::new(),
        media_url: base.map(|b| recording_url(b, &r.account_sid, &r.sid)),
    }
}

/// `GET Recordings.json` (`call_sid` = `None`) or `GET Calls/{CallSid}/Recordings.json`.
pub(super) fn list(ctx: &Ctx<'_>, call_sid: Option<&str>, query: Option<&str>) -> Response<Body> {
    let mut filter_call = call_sid.map(str::to_owned);
    let mut page = 0usize;
    let mut page_size = DEFAULT_PAGE_SIZE;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            // The path's call wins over a `CallSid` filter on the call's own list.
            "CallSid" if call_sid.is_none() && !v.is_empty() => {
                filter_call = Some(v.into_owned());
            }
            // Unparseable values fall back to the defaults, as in `Calls.json`.
            "Page" => page = v.parse().unwrap_or(0),
            "PageSize" => {
                page_size = v
                    .parse()
                    .unwrap_or(DEFAULT_PAGE_SIZE)
                    .clamp(1, MAX_PAGE_SIZE);
            }
            // Twilio's DateCreated filters and anything unknown are ignored.
            _ => {}
        }
    }
    let all = ctx
        .state
        .recordings
        .list(ctx.account, filter_call.as_deref());
    let start = page.saturating_mul(page_size);
    let items: &[RecordingInfo] = all.get(start..).unwrap_or(&[]);
    let has_more = items.len() > page_size;
    let items = &items[..items.len().min(page_size)];

    let base = match call_sid {
        Some(c) => format!(
            "/2010-04-01/Accounts/{}/Calls/{c}/Recordings.json",
            ctx.account
        ),
        None => format!("/2010-04-01/Accounts/{}/Recordings.json", ctx.account),
    };
    // Page links repeat the filter so following them keeps the selection.
    let page_uri = |p: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if call_sid.is_none()
            && let Some(c) = &filter_call
        {
            q.append_pair("CallSid", c);
        }
        q.append_pair("PageSize", &page_size.to_string());
        q.append_pair("Page", &p.to_string());
        format!("{base}?{}", q.finish())
    };
    let media_base = ctx.state.recordings.base_url();
    let body = Page {
        end: start.saturating_add(items.len().saturating_sub(1)),
        first_page_uri: page_uri(0),
        next_page_uri: has_more.then(|| page_uri(page + 1)),
        page,
        page_size,
        previous_page_uri: (page > 0).then(|| page_uri(page - 1)),
        start,
        uri: page_uri(page),
        recordings: items
            .iter()
            .map(|r| doc(r, media_base.as_deref()))
            .collect(),
    };
    reply::json(StatusCode::OK, &body)
}

/// The account's recording `sid`, also of `call_sid` when the path names a call.
fn find(ctx: &Ctx<'_>, call_sid: Option<&str>, sid: &str) -> Option<RecordingInfo> {
    ctx.state
        .recordings
        .get(ctx.account, sid)
        .filter(|r| call_sid.is_none_or(|c| r.call_sid == c))
}

/// `GET Recordings/{Sid}[.json|.wav|.mp3]` (and the same under `Calls/{CallSid}/`).
pub(super) fn fetch(
    ctx: &Ctx<'_>,
    call_sid: Option<&str>,
    sid: &str,
    format: Format,
    path: &str,
) -> Response<Body> {
    let Some(r) = find(ctx, call_sid, sid) else {
        return reply::not_found(path);
    };
    match format {
        Format::Json => {
            let base = ctx.state.recordings.base_url();
            reply::json(StatusCode::OK, &doc(&r, base.as_deref()))
        }
        Format::Mp3 => reply::error(
            StatusCode::NOT_FOUND,
            20404,
            format!(
                "The requested resource {path} was not found: recordings are stored as WAV \
                 only; fetch /2010-04-01/Accounts/{}/Recordings/{}.wav",
                r.account_sid, r.sid
            ),
        ),
        Format::Wav => audio(&r, path),
    }
}

/// The WAV bytes of `r`, at most `MAX_SERVED_BYTES`.
fn audio(r: &RecordingInfo, path: &str) -> Response<Body> {
    let read = std::fs::File::open(&r.path).and_then(|f| {
        let mut bytes = Vec::new();
        f.take(MAX_SERVED_BYTES + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    match read {
        Ok(bytes) if bytes.len() as u64 > MAX_SERVED_BYTES => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            format!(
                "Recording {} is larger than {} MiB, more than this switch serves over REST; \
                 fetch it from the recordings directory",
                r.sid,
                MAX_SERVED_BYTES >> 20
            ),
        ),
        Ok(bytes) => reply::with_type(StatusCode::OK, "audio/x-wav", Bytes::from(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(sid = %r.sid, path = %r.path.display(), "recording audio is missing");
            reply::not_found(path)
        }
        Err(e) => {
            tracing::error!(sid = %r.sid, path = %r.path.display(), error = %e, "reading recording audio failed");
            reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "Internal Server Error".into(),
            )
        }
    }
}

/// `DELETE Recordings/{Sid}.json`: 204 with no body.
pub(super) fn delete(
    ctx: &Ctx<'_>,
    call_sid: Option<&str>,
    sid: &str,
    path: &str,
) -> Response<Body> {
    if find(ctx, call_sid, sid).is_none() {
        return reply::not_found(path);
    }
    match ctx.state.recordings.delete(ctx.account, sid) {
        Ok(Some(_)) => {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Ok(None) => reply::not_found(path),
        Err(e) => {
            tracing::error!(%sid, error = %e, "deleting recording failed");
            reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "Internal Server Error".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let sid = "RE0123456789abcdef0123456789abcdef";
        assert_eq!(Format::split(sid), Some((sid, Format::Wav)));
        assert_eq!(
            Format::split(&format!("{sid}.json")),
            Some((sid, Format::Json))
        );
        assert_eq!(
            Format::split(&format!("{sid}.wav")),
            Some((sid, Format::Wav))
        );
        assert_eq!(
            Format::split(&format!("{sid}.mp3")),
            Some((sid, Format::Mp3))
        );
        for bad in ["", ".json", ".wav", "RE1.ogg", "RE1.json.gz"] {
            assert_eq!(Format::split(bad), None, "{bad}");
        }
    }
}
