//! Parse errors: small `Copy` values with a stable class for logs and metrics.
//!
//! No rejected bytes are kept in an error: a hostile message must not be able to make our
//! logs grow with it.

use std::fmt;

/// Why bytes could not be turned into a message (the structural layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The request line or status line does not follow RFC 3261 §7.1/§7.2.
    #[error("malformed start line")]
    StartLine,
    /// A header line has no colon, an empty or non-token name, or starts with a fold.
    #[error("malformed header line")]
    HeaderSyntax,
    /// The header section has no terminating blank line (a truncated message).
    #[error("header section not terminated")]
    Unterminated,
    /// Content-Length is missing (on a stream), repeated, not a number, or promises more
    /// bytes than arrived in a datagram.
    #[error("bad Content-Length framing")]
    Framing,
    /// A size cap from [`crate::sip::msg::Limits`] was exceeded.
    #[error("message exceeds {0} limit")]
    TooLarge(Cap),
    /// The bytes are empty (or only CRLF keep-alives).
    #[error("empty message")]
    Empty,
}

/// Which cap a message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Whole-message size.
    Message,
    /// Header section size.
    Head,
    /// One header line.
    Line,
    /// Number of header fields.
    HeaderCount,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cap::Message => "message size",
            Cap::Head => "header section size",
            Cap::Line => "line length",
            Cap::HeaderCount => "header count",
        })
    }
}

impl ParseError {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        match self {
            ParseError::StartLine => "start_line",
            ParseError::HeaderSyntax => "header_syntax",
            ParseError::Unterminated => "unterminated",
            ParseError::Framing => "framing",
            ParseError::TooLarge(_) => "too_large",
            ParseError::Empty => "empty",
        }
    }

    /// The status to answer with when the head was readable enough to build a response
    /// (RFC 3261 §21.4.1 400, or §21.4.12 413 for an oversized request).
    pub const fn status(self) -> u16 {
        match self {
            ParseError::TooLarge(Cap::Message) => 413,
            _ => 400,
        }
    }
}

/// Why a header value failed its typed grammar (the header layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {header} header")]
pub struct HeaderError {
    /// Canonical name of the header that failed.
    pub header: &'static str,
}

impl HeaderError {
    /// An error for the named header.
    pub const fn new(header: &'static str) -> Self {
        HeaderError { header }
    }
}
