//! The media plane: audio that crosses the switch.
//!
//! Every call's audio is relayed through the switch so that it can play prompts, collect
//! digits and record. As ../shared/DESIGN.md ("Layers") asks, the media plane runs on its
//! own threads and never sees SIP types: `call/` turns each leg's negotiated SDP into a
//! [`StreamParams`], drives endpoints with commands (open, configure, bridge, play, record,
//! close) and hears back through [`MediaEvent`]s. Conference mixing, which the design also
//! places here, is not built yet.
//!
//! What `call/` uses:
//!
//! - [`engine`]: [`MediaEngine`] starts the relay threads, binds each endpoint's port pair
//!   and sends commands to the thread that owns it; [`Endpoint`] is the call's handle for
//!   one endpoint and closes it when dropped.
//! - [`command`]: the commands and events and what they carry ([`StreamParams`],
//!   [`PlayItem`], [`RecordSpec`], [`MediaEvent`]).
//!
//! The relay threads:
//!
//! - [`relay`]: one `mio` poll loop per thread. It forwards RTP between bridged endpoints
//!   with the header rewritten for the other leg's stream and PCMU↔PCMA transcoded in
//!   place, relays RTCP with its SSRCs rewritten, paces players, feeds recorders, reports
//!   RFC 4733 digits and media timeouts. Nothing on the per-packet path allocates.
//! - [`relay_port`]: [`relay_port::RelayPort`], a relay thread's state for one endpoint.
//! - [`mmsg`]: batched `recvmmsg`/`sendmmsg` straight out of reused buffers; the crate's
//!   only `unsafe` code, with the invariants that make it sound in its module doc.
//! - [`latch`]: symmetric RTP (RFC 4961) with latching, then strict source.
//! - [`ports`]: the pool of RTP/RTCP port pairs; a lease returns its pair when dropped.
//! - [`recorder`]: `<Record>` to a WAV file written as the audio arrives, its sizes
//!   patched when it ends.
//!
//! Building blocks with no I/O and no clock (time is passed in), tested on their own:
//!
//! - [`rtp`]: RTP/RTCP packet views over the received buffer, RFC 5761 demultiplexing,
//!   and the per-output-stream rewriter of SSRC, sequence number and timestamp.
//! - [`g711`]: ITU-T G.711 μ-law (PCMU) and A-law (PCMA) codecs and the direct PCMU↔PCMA
//!   transcoding tables.
//! - [`dtmf`]: RFC 4733 telephone-event payloads (parse, build, a receiver-side
//!   de-duplicator, a sender) and SIP INFO `application/dtmf-relay` bodies.
//! - [`player`]: what `<Play>`, `<Pause>` and `<Play digits>` send, one 20 ms frame per
//!   tick.
//! - [`silence`]: silence detection for `<Record timeout>` and `trim-silence`.
//! - [`wav`]: a bounded RIFF/WAVE reader for `<Play>` files (PCM 16-bit at 8 or 16 kHz,
//!   μ-law, A-law), and the recording header with the size patches the recorder applies
//!   when it ends.
//! - [`prompts`]: audio the switch plays on its own account (the application-error prompt,
//!   the `<Record>` beep).

pub mod command;
pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod latch;
pub mod lateness;
pub mod mixer;
pub mod mmsg;
pub mod player;
pub mod ports;
pub mod prompts;
pub mod recorder;
pub mod relay;
pub mod relay_port;
#[cfg(test)]
mod relay_tests;
pub mod resample;
pub mod rewriter;
pub mod rtp;
pub mod silence;
pub mod stream_playout;
pub mod stream_tap;
pub mod wav;
pub mod webrtc;

pub use command::ConferenceId;
pub use command::{
    Carried, EndpointId, EventKind, EventSink, HeardBy, MediaEvent, PayloadTypes, PlayItem,
    RecordEnd, RecordSpec, StreamParams,
};
pub use engine::{Endpoint, MediaEngine, MediaStats, OpenError};
pub use lateness::{LatenessHistogram, LatenessSnapshot};
pub use webrtc::SecureParams;
