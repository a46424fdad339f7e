//! The SIP message layer: a zero-copy parser over `bytes::Bytes`, typed views on demand,
//! stream framing, and builders.

mod builder;
mod error;
mod framing;
mod header_name;
mod limits;
mod message;
mod parse;
mod span;
pub mod typed;
mod views;

pub use builder::{ResponseBuilder, reason_phrase};
pub use error::{Cap, HeaderError, ParseError};
pub use framing::{Frame, StreamFramer};
pub use header_name::HeaderName;
pub use limits::{Limits, MAX_HEAD_BYTES, MAX_HEADER_COUNT, MAX_LINE_BYTES, MAX_MESSAGE_BYTES};
pub use message::{HeaderField, SipMessage, StartLine};
pub use parse::{Rejected, parse_datagram};
pub use span::Span;

impl SipMessage {
    /// Parses a complete message held in `bytes` (a UDP datagram, or a test vector).
    pub fn parse(bytes: impl Into<bytes::Bytes>) -> Result<SipMessage, Rejected> {
        parse_datagram(bytes.into(), &Limits::default())
    }
}
