//! Twilio Media Streams (`<Connect><Stream>`, `<Start><Stream>`): the call's audio to the
//! customer's WebSocket server and, on a bidirectional stream, the app's audio back into
//! the call. Sans-IO: these modules build and read the messages and keep the app's audio
//! queue; the WebSocket client and the relay feed them bytes and frames, and read no clock
//! here (times are passed in).
//!
//! - [`messages`]: the JSON messages, field for field as Twilio publishes them (every
//!   number-like field a string but `sampleRate` and `channels`; `sequenceNumber` counts
//!   every message after `connected`; media `chunk` per track from 1; `timestamp` in ms
//!   since the stream started).
//! - [`playout`]: what the app sends on a bidirectional stream: audio queued and played
//!   20 ms at a time, marks echoed once the audio queued before them has played (at once
//!   when nothing is queued), `clear` dropping the audio and echoing every pending mark.
//!
//! The research behind the choices, with sources: `../shared/reference/` has the TwiML
//! side; Twilio's message schema is <https://www.twilio.com/docs/voice/media-streams/websocket-messages>.

pub mod messages;
pub mod playout;
pub mod task;
