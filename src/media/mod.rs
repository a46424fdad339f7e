//! The media plane: audio that crosses the switch.
//!
//! Every call's audio is relayed through the switch so that it can play prompts, collect
//! digits, record and (later) mix conferences. Per DESIGN.md ("Layers") the media plane is
//! its own plane on its own threads: it speaks only `media::` commands (open, bridge, play,
//! record, mix, close) and never sees SIP types. The relay hot path forwards packets in
//! place with no heap allocation per packet.
//!
//! This module grows bottom-up. The pure building blocks come first, with no I/O and no
//! clock, so that they are testable on their own and usable from any thread:
//!
//! - [`g711`]: ITU-T G.711 μ-law (PCMU) and A-law (PCMA) codecs and the direct PCMU↔PCMA
//!   transcoding tables the relay uses when the two legs negotiated different laws.
//! - [`wav`]: a bounded RIFF/WAVE reader for `Play` prompts (PCM 16-bit at 8 or 16 kHz,
//!   μ-law, A-law) and a WAV writer for `Record` whose sizes are patched when it ends.
//! - [`dtmf`]: RFC 4733 telephone-event payloads (parse, build, a receiver-side
//!   de-duplicator, a sender) and SIP INFO `application/dtmf-relay` bodies.
//!
//! Beside them sit the RTP/RTCP packet views with the in-place header rewriter (`rtp`)
//! and the RTP port pool (`ports`). Still to come on top of all these: the relay threads
//! with latching and strict source, the player, the recorder and the command API that
//! `call/` drives.

pub mod command;
pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod latch;
pub mod mmsg;
pub mod player;
pub mod ports;
pub mod prompts;
pub mod recorder;
pub mod relay;
pub mod relay_port;
#[cfg(test)]
mod relay_tests;
pub mod rtp;
pub mod silence;
pub mod wav;

pub use command::{
    Carried, EndpointId, EventKind, EventSink, MediaEvent, PayloadTypes, PlayItem, RecordEnd,
    RecordSpec, StreamParams,
};
pub use engine::{Endpoint, MediaEngine, MediaStats, OpenError};
