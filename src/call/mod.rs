//! Calls: one task (actor) per call, a back-to-back user agent that owns its SIP legs and
//! runs the call's instructions.
//!
//! - `model`: the call record, commands and originate requests shared with the REST API.
//! - `registry`: live and recently finished calls, for REST and the CDR.
//! - `cdr`: one JSON line per finished call, appended and flushed.
//! - `router`: Call-ID → call task, consulted by the engine shards for every message.
//! - `service`: where calls start (a new INVITE through the dial plan, or REST).
//! - `actor`: the call task's SIP side (its own transaction layer, legs, bridging).
//! - `leg`: one leg's data and the requests it writes.
//! - `interpret`: running the instructions; `dial`: the `<Dial>` verb; `verbs`: the media
//!   verbs (`Play`, `Pause`, `Gather`, `Record`).
//! - `media`: each leg's relay endpoint and SDP; `audio`: what `<Play>` plays;
//!   `recordings`: finished recordings.

pub mod actor;
pub mod audio;
pub mod cdr;
pub mod dial;
pub mod interpret;
pub mod leg;
pub mod media;
pub mod model;
pub mod recordings;
pub mod registry;
pub mod router;
pub mod service;
pub mod verbs;

pub use model::{
    CallCommand, CallInfo, CallStatus, Direction, OriginateError, OriginateRequest, Originator,
    new_call_sid,
};
