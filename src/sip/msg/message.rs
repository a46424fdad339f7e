//! A parsed SIP message: the original bytes plus an index of spans into them.
//!
//! Nothing is copied out at parse time. Typed views (Via, From, CSeq, ...) are parsed on
//! demand from the spans and borrow from the buffer, so a message that is only routed never
//! pays for headers nobody reads, and unknown headers are forwarded byte-exact.

use bytes::Bytes;

use super::header_name::HeaderName;
use super::span::Span;
use crate::sip::method::Method;

/// One header field line (after unfolding, a value may span several physical lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField {
    /// What the name means.
    pub name: HeaderName,
    /// The name as written (possibly compact or odd-cased).
    pub raw_name: Span,
    /// The value, without leading/trailing whitespace; may contain folded CRLF+WSP, which
    /// every typed parser treats as linear white space.
    pub value: Span,
}

/// Request-Line or Status-Line (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP-Version`.
    Request {
        /// Parsed method.
        method: Method,
        /// The method token as written.
        method_span: Span,
        /// The Request-URI.
        uri: Span,
        /// The version token (`SIP/2.0`).
        version: Span,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// The version token.
        version: Span,
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: Span,
    },
}

/// A SIP request or response backed by one shared buffer.
#[derive(Debug, Clone)]
pub struct SipMessage {
    pub(crate) buf: Bytes,
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<HeaderField>,
    pub(crate) body: Span,
}

impl SipMessage {
    /// The bytes this message was parsed from (exactly the message; trailing datagram
    /// bytes beyond Content-Length are not included).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request, or `None` for a response.
    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The method token as written, for requests.
    pub fn method_str(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { method_span, .. } => Some(self.str_of(method_span)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI text, for requests.
    pub fn request_uri(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.str_of(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The SIP version token of the start line.
    pub fn version(&self) -> &str {
        match self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                self.str_of(version)
            }
        }
    }

    /// The status code, for responses.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase, for responses.
    pub fn reason(&self) -> Option<&str> {
        match self.start {
            StartLine::Response { reason, .. } => Some(self.str_of(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[HeaderField] {
        &self.headers
    }

    /// The name of a header field as written.
    pub fn raw_name(&self, h: &HeaderField) -> &str {
        self.str_of(h.raw_name)
    }

    /// The value of a header field as written (folds included).
    pub fn value(&self, h: &HeaderField) -> &str {
        self.str_of(h.value)
    }

    /// Values of every field with this name, in order (one per header line; list values on
    /// one line are not split here, see [`SipMessage::list`]).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| self.str_of(h.value))
    }

    /// The first value of a header, if present.
    pub fn first(&self, name: HeaderName) -> Option<&str> {
        self.values(name).next()
    }

    /// Values of a header looked up by any spelling (for headers we do not model).
    pub fn values_by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.headers
            .iter()
            .filter(move |h| {
                if known == HeaderName::Other {
                    h.name == HeaderName::Other
                        && self.str_of(h.raw_name).eq_ignore_ascii_case(name)
                } else {
                    h.name == known
                }
            })
            .map(|h| self.str_of(h.value))
    }

    /// Every element of a list header (RFC 3261 §7.3.1: `Via: a, b` equals two Via lines),
    /// split at commas outside quotes and angle brackets.
    pub fn list(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.values(name)
            .flat_map(crate::sip::msg::typed::split_list)
    }

    /// How many fields carry this name.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    /// The body (exactly Content-Length bytes), zero-copy.
    pub fn body(&self) -> Bytes {
        self.buf
            .slice(self.body.start as usize..self.body.end as usize)
    }

    /// Body length in bytes.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    pub(crate) fn str_of(&self, span: Span) -> &str {
        // The parser checked that the head is valid UTF-8 before building spans into it.
        std::str::from_utf8(span.of(&self.buf)).unwrap_or("")
    }
}
