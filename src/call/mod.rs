//! Calls: one task per call, a back-to-back user agent that owns its SIP legs and runs the
//! call's instructions.
//!
//! - `core`: the call's SIP behaviour as a sans-IO state machine (legs, UAS/UAC rules,
//!   bridging, 2xx retransmission, CANCEL, challenges, re-offers and glare), with `leg`
//!   (one leg's data and the requests it writes) and `sdp` (each leg's session with us).
//! - `driver`: the call task that feeds the core with messages, media events, commands and
//!   the time, and executes its outputs; the only clock reader here.
//! - `model`: the call record, commands and originate requests shared with the REST API.
//! - `registry`: live and recently finished calls, for REST and the CDR.
//! - `cdr`: one JSON line per finished call, appended and flushed.
//! - `hop`: calls between the nodes of a cluster (a client reached through its edge node).
//! - `router`: Call-ID → call task, consulted by the engine shards for every message.
//! - `service`: where calls start (a new INVITE through the dial plan, or REST).
//! - `interpret`: running the instructions; `dial`: the `<Dial>` verb; `verbs`: the media
//!   verbs (`Play`, `Pause`, `Gather`, `Record`).
//! - `audio`: what `<Play>` plays;
//!   `recordings`: finished recordings.

pub mod audio;
pub mod cdr;
pub mod conference;
pub mod conferences;
pub mod core;
pub mod dial;
pub mod driver;
pub mod fetch_budget;
pub mod hop;
pub mod interpret;
pub mod media_stream;
pub mod model;
pub mod queue;
pub mod queues;
pub mod recording_storage;
pub mod recordings;
pub mod registry;
pub mod router;
pub mod service;
pub mod speech;
pub mod stream_records;
pub mod streams;
pub mod tenant_limits;
pub mod verbs;

pub use model::{
    CallCommand, CallInfo, CallStatus, ConferenceCommand, Direction, OriginateError,
    OriginateRequest, Originator, QueueCommand, StreamCommand, new_call_sid,
};
