//! SDP (RFC 8866) and the offer/answer model (RFC 3264) for a B2BUA with a media relay.
//!
//! Every call's audio crosses the switch, so each leg negotiates its own session with us:
//! the caller's offer is answered with the relay's address and port, the callee is offered
//! the relay's address and another port, and the relay maps payload types (and G.711 laws)
//! between the two. This module does the SIP side of that and nothing else: it turns bodies
//! into typed descriptions, decides what to accept, writes our descriptions, and hands the
//! relay a [`NegotiatedMedia`] per leg. It is sans-IO like the rest of `sip`: addresses and
//! ports are inputs, never sockets.
//!
//! ```text
//!   caller's offer --parse--> SessionDescription --LocalSession::answer--> Answer
//!                                                    (488 if nothing fits)   |  description -> 200 OK body
//!                                                                            '- NegotiatedMedia (leg A)
//!   LocalSession::offer --> SessionDescription -> INVITE body
//!   callee's answer --parse--> read_answer(offer, answer) --> NegotiatedMedia (leg B)
//!   relay: PayloadMap::forward(pt, &other_leg) -> payload type to write, transcode or not
//! ```
//!
//! What we carry: PCMU and PCMA at 8 kHz and telephone-event/8000 (RFC 4733) over
//! RTP/AVP, with ptime, direction (hold, RFC 3264 §8.4) and RTCP ports (RFC 3605); and
//! the same audio over a browser's `UDP/TLS/RTP/SAVPF` (ICE-lite, DTLS-SRTP, rtcp-mux:
//! [`security`]) on legs that may be secure. Everything else in an offer (video, SDES
//! SRTP, other codecs) is declined stream by stream with port 0; an offer left with no
//! audio stream is refused with 488 ([`SdpError`]).

mod codec;
mod direction;
mod error;
mod local;
mod negotiated;
mod offer_answer;
mod parse;
mod security;
mod session;
mod write;

#[cfg(test)]
mod tests;

pub use codec::{Codec, Encoding, TELEPHONE_EVENT, is_telephone_event_8000, static_encoding};
pub use direction::Direction;
pub use error::{ParseError, ParseReason, SdpError};
pub use local::{Answer, LOCAL_SESSION_NAME, LocalSession};
pub use negotiated::{Forward, NegotiatedMedia, Payload, PayloadMap, PayloadTypes, Transcode};
pub use offer_answer::{
    OFFER_PTIME_MS, OFFER_TELEPHONE_EVENT_FMTP, OFFER_TELEPHONE_EVENT_PT, read_answer,
};
pub use parse::{MAX_SDP_BYTES, MAX_SDP_LINE_BYTES, MAX_SDP_LINES, MAX_SDP_MEDIA, parse};
pub use security::{
    LocalSecurity, MID_EXTENSION_URI, OFFER_MID, OFFER_MID_EXTENSION_ID, RemoteSecurity, Setup,
    answer_setup, remote_security,
};
pub use session::{
    AddressType, Attribute, Fmtp, MediaDescription, MediaKind, Origin, Protocol, Rtcp, RtpMap,
    SessionDescription, Timing,
};
