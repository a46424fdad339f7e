//! The messages of a Twilio media stream, both ways.
//!
//! To the app ([`Outgoing`]): `connected`, `start`, `media`, `dtmf`, `mark`, `stop`, as
//! Twilio's published schema has them. From the app ([`AppMessage`]): `media`, `mark`,
//! `clear`; anything else is a protocol error (Twilio's 31924) that the caller logs and
//! skips.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use crate::media::stream_tap::Track;

/// Who the stream belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIds {
    /// `MZ` + 32 hex.
    pub stream_sid: String,
    pub account_sid: String,
    pub call_sid: String,
}

/// Numbers the messages of one stream: `sequenceNumber` (from 1 at `start`, every later
/// message) and each track's `chunk` (from 1).
#[derive(Debug)]
pub struct Outgoing {
    ids: StreamIds,
    sequence: u64,
    chunks: [u64; 2],
    /// The stream sid as a JSON string (quoted, escaped), for `media`.
    sid_json: String,
}

impl Outgoing {
    pub fn new(ids: StreamIds) -> Self {
        Outgoing {
            sid_json: Value::String(ids.stream_sid.clone()).to_string(),
            ids,
            sequence: 0,
            chunks: [0; 2],
        }
    }

    pub fn ids(&self) -> &StreamIds {
        &self.ids
    }

    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    /// The first message, before `start`: no `streamSid`, no `sequenceNumber`.
    pub fn connected(&self) -> String {
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
    }

    /// `start`: the tracks sent and the `<Parameter>`s, in document order.
    pub fn start(&mut self, tracks: &[Track], parameters: &[(String, String)]) -> String {
        let custom: Map<String, Value> = parameters
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let tracks: Vec<&str> = tracks.iter().map(|t| t.as_str()).collect();
        json!({
            "event": "start",
            "sequenceNumber": self.next_sequence(),
            "start": {
                "streamSid": self.ids.stream_sid,
                "accountSid": self.ids.account_sid,
                "callSid": self.ids.call_sid,
                "tracks": tracks,
                "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": self.ids.stream_sid,
        })
        .to_string()
    }

    /// `media`: μ-law `payload` of `track`, `at_ms` after the stream started. Fifty a
    /// second per track, so written straight into one string (the same JSON, in the same
    /// key order, as the `json!` of the other messages; nothing here needs escaping but
    /// the sid, escaped by serde_json).
    pub fn media(&mut self, track: Track, at_ms: u64, payload: &[u8]) -> String {
        use std::fmt::Write as _;
        let chunk = &mut self.chunks[track as usize];
        *chunk += 1;
        let chunk = *chunk;
        let sequence = self.next_sequence();
        let mut s = String::with_capacity(200 + payload.len() * 4 / 3);
        let _ = write!(
            s,
            r#"{{"event":"media","media":{{"chunk":"{chunk}","payload":""#
        );
        STANDARD.encode_string(payload, &mut s);
        let _ = write!(
            s,
            r#"","timestamp":"{at_ms}","track":"{}"}},"sequenceNumber":"{sequence}","streamSid":{}}}"#,
            track.as_str(),
            self.sid_json
        );
        s
    }

    /// `dtmf`: a key the caller pressed (bidirectional streams only; its track is always
    /// `inbound_track`, unlike media's).
    pub fn dtmf(&mut self, digit: char) -> String {
        json!({
            "event": "dtmf",
            "streamSid": self.ids.stream_sid,
            "sequenceNumber": self.next_sequence(),
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
        })
        .to_string()
    }

    /// `mark`: the app's mark, echoed once the audio before it has played.
    pub fn mark(&mut self, name: &str) -> String {
        json!({
            "event": "mark",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.ids.stream_sid,
            "mark": {"name": name},
        })
        .to_string()
    }

    /// `stop`: the stream ended (`<Stop>`, REST, the app's close, or the call's end).
    pub fn stop(&mut self) -> String {
        json!({
            "event": "stop",
            "sequenceNumber": self.next_sequence(),
            "stop": {"accountSid": self.ids.account_sid, "callSid": self.ids.call_sid},
            "streamSid": self.ids.stream_sid,
        })
        .to_string()
    }
}

/// A message from the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMessage {
    /// Audio to play, decoded from base64 (any length).
    Media(Vec<u8>),
    /// Echo this name once the audio queued before it has played.
    Mark(String),
    /// Drop the queued audio; echo every pending mark.
    Clear,
}

/// Why an app message was not taken (Twilio's error 31924); logged and skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("not a JSON object with an event: {0}")]
    Malformed(String),
    #[error("unsupported event {0:?} (only media, mark and clear)")]
    UnsupportedEvent(String),
    #[error("media payload is not base64")]
    BadPayload,
    #[error("for stream {got}, not this one")]
    OtherStream { got: String },
}

#[derive(Deserialize)]
struct Raw {
    event: String,
    #[serde(rename = "streamSid")]
    stream_sid: Option<String>,
    media: Option<RawMedia>,
    mark: Option<RawMark>,
}

#[derive(Deserialize)]
struct RawMedia {
    payload: String,
}

#[derive(Deserialize)]
struct RawMark {
    name: String,
}

/// Reads a text frame from the app on the stream `stream_sid`. A message naming another
/// stream is refused (one stream per socket); one without `streamSid` is taken.
pub fn parse_app_message(text: &str, stream_sid: &str) -> Result<AppMessage, AppError> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| AppError::Malformed(e.to_string()))?;
    if let Some(got) = raw.stream_sid
        && got != stream_sid
    {
        return Err(AppError::OtherStream { got });
    }
    match raw.event.as_str() {
        "media" => {
            let media = raw
                .media
                .ok_or_else(|| AppError::Malformed("media without a media object".into()))?;
            STANDARD
                .decode(media.payload.as_bytes())
                .map(AppMessage::Media)
                .map_err(|_| AppError::BadPayload)
        }
        "mark" => raw
            .mark
            .map(|m| AppMessage::Mark(m.name))
            .ok_or_else(|| AppError::Malformed("mark without a mark object".into())),
        "clear" => Ok(AppMessage::Clear),
        other => Err(AppError::UnsupportedEvent(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MZ: &str = "MZ00000000000000000000000000000001";

    fn outgoing() -> Outgoing {
        Outgoing::new(StreamIds {
            stream_sid: MZ.into(),
            account_sid: "AC00000000000000000000000000000001".into(),
            call_sid: "CA00000000000000000000000000000001".into(),
        })
    }

    #[test]
    fn media_is_written_as_serde_json_would_write_it() {
        let mut o = outgoing();
        o.start(&[Track::Inbound, Track::Outbound], &[]);
        let payload: Vec<u8> = (0..160u8).collect();
        o.media(Track::Inbound, 0, &payload);
        let got = o.media(Track::Outbound, 1234, &payload);
        let want = json!({
            "event": "media",
            "sequenceNumber": "3",
            "media": {
                "track": "outbound",
                "chunk": "1",
                "timestamp": "1234",
                "payload": STANDARD.encode(&payload),
            },
            "streamSid": MZ,
        })
        .to_string();
        assert_eq!(got, want);
    }

    fn value(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    /// The messages as Twilio's websocket-messages page shows them, field for field.
    #[test]
    fn messages_to_the_app_follow_the_published_schema() {
        let mut out = outgoing();
        assert_eq!(
            value(&out.connected()),
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        );
        let start = value(&out.start(
            &[Track::Inbound, Track::Outbound],
            &[
                ("FirstName".into(), "Jane".into()),
                ("x".into(), String::new()),
            ],
        ));
        assert_eq!(
            start,
            json!({"event": "start", "sequenceNumber": "1",
                "start": {"accountSid": "AC00000000000000000000000000000001", "streamSid": MZ,
                    "callSid": "CA00000000000000000000000000000001",
                    "tracks": ["inbound", "outbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {"FirstName": "Jane", "x": ""}},
                "streamSid": MZ})
        );
        let media = value(&out.media(Track::Outbound, 5, &[0xff, 0x7f, 0x00]));
        assert_eq!(
            media,
            json!({"event": "media", "sequenceNumber": "2",
                "media": {"track": "outbound", "chunk": "1", "timestamp": "5", "payload": "/38A"},
                "streamSid": MZ})
        );
        // Chunks count per track; the sequence counts every message.
        let inbound = value(&out.media(Track::Inbound, 25, &[0xff; 160]));
        assert_eq!(inbound["sequenceNumber"], "3");
        assert_eq!(inbound["media"]["chunk"], "1");
        assert_eq!(inbound["media"]["payload"].as_str().unwrap().len(), 216);
        assert_eq!(
            value(&out.media(Track::Inbound, 45, &[0xff; 160]))["media"]["chunk"],
            "2"
        );
        assert_eq!(
            value(&out.dtmf('#')),
            json!({"event": "dtmf", "streamSid": MZ, "sequenceNumber": "5",
                "dtmf": {"track": "inbound_track", "digit": "#"}})
        );
        assert_eq!(
            value(&out.mark("greeting done")),
            json!({"event": "mark", "sequenceNumber": "6", "streamSid": MZ,
                "mark": {"name": "greeting done"}})
        );
        assert_eq!(
            value(&out.stop()),
            json!({"event": "stop", "sequenceNumber": "7",
                "stop": {"accountSid": "AC00000000000000000000000000000001",
                    "callSid": "CA00000000000000000000000000000001"},
                "streamSid": MZ})
        );
    }

    #[test]
    fn app_messages_are_read_and_bad_ones_refused_with_a_reason() {
        let media =
            format!(r#"{{"event":"media","streamSid":"{MZ}","media":{{"payload":"/38A"}}}}"#);
        assert_eq!(
            parse_app_message(&media, MZ),
            Ok(AppMessage::Media(vec![0xff, 0x7f, 0x00]))
        );
        let mark = format!(r#"{{"event":"mark","streamSid":"{MZ}","mark":{{"name":"m1"}}}}"#);
        assert_eq!(
            parse_app_message(&mark, MZ),
            Ok(AppMessage::Mark("m1".into()))
        );
        assert_eq!(
            parse_app_message(r#"{"event":"clear"}"#, MZ),
            Ok(AppMessage::Clear)
        );
        // Unknown fields (a track or chunk some apps send along) are ignored.
        let extra =
            r#"{"event":"media","media":{"payload":"AA==","track":"outbound","chunk":"3"}}"#;
        assert_eq!(parse_app_message(extra, MZ), Ok(AppMessage::Media(vec![0])));
        assert!(matches!(
            parse_app_message("not json", MZ),
            Err(AppError::Malformed(_))
        ));
        assert!(matches!(
            parse_app_message(r#"{"event":"media"}"#, MZ),
            Err(AppError::Malformed(_))
        ));
        assert_eq!(
            parse_app_message(r#"{"event":"media","media":{"payload":"***"}}"#, MZ),
            Err(AppError::BadPayload)
        );
        assert_eq!(
            parse_app_message(r#"{"event":"dtmf","dtmf":{"digit":"1"}}"#, MZ),
            Err(AppError::UnsupportedEvent("dtmf".into()))
        );
        assert_eq!(
            parse_app_message(r#"{"event":"clear","streamSid":"MZother"}"#, MZ),
            Err(AppError::OtherStream {
                got: "MZother".into()
            })
        );
    }
}
