//! Twilio Media Streams (`<Connect><Stream>`, `<Start><Stream>`): the call's audio to the
//! customer's WebSocket server and, on a bidirectional stream, the app's audio back into
//! the call. `messages` is sans-IO (it builds and reads the JSON; times are passed in);
//! `task` is the I/O around it.
//!
//! - [`messages`]: the JSON messages, field for field as Twilio publishes them (every
//!   number-like field a string but `sampleRate` and `channels`; `sequenceNumber` counts
//!   every message after `connected`; media `chunk` per track from 1; `timestamp` in ms
//!   since the stream started).
//! - [`task`]: the WebSocket to the app, run as a task of its own.
//!
//! The relay side is in the media plane: `media::stream_tap` (the call's frames and DTMF,
//! taken off the relay thread into the stream's bounded queue) and `media::stream_playout`
//! (what the app sends on a bidirectional stream: audio queued and played 20 ms at a time,
//! marks echoed once the audio queued before them has played, `clear`).
//!
//! The research behind the choices, with sources: `../shared/reference/` has the TwiML
//! side; Twilio's message schema is <https://www.twilio.com/docs/voice/media-streams/websocket-messages>.

pub mod messages;
pub mod task;
