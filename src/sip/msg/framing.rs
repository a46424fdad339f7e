//! Stream framing for TCP (and later TLS): cuts a byte stream into messages by
//! Content-Length (RFC 3261 §18.3), which is mandatory on streams.
//!
//! A framing error is fatal for the connection: once the length of one message is unknown,
//! nothing after it can be found (RFC 4475 `ncl`, `mcl01`: close the stream).

use bytes::{Buf, BytesMut};

use super::error::{Cap, ParseError};
use super::limits::Limits;
use super::message::SipMessage;
use super::parse::{content_length, find_head_end, parse_head, skip_leading_crlf};
use super::span::Span;

/// What the framer produced.
#[derive(Debug)]
pub enum Frame {
    /// A complete message.
    Message(SipMessage),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1): answer with a single CRLF.
    KeepAlive,
}

/// Accumulates stream bytes and yields whole messages.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            limits,
        }
    }

    /// The buffer to read into (so socket reads land in place, without a copy).
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or an error after
    /// which the connection must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        // Leading line ends: a CRLFCRLF keep-alive ping (RFC 5626 §3.5.1), or stray CRLFs
        // before a message (RFC 3261 §7.5). Only line ends so far may be half a ping split
        // across reads, so they wait for more (keeping at most the last two bytes).
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.advance(4);
            return Ok(Some(Frame::KeepAlive));
        }
        let crlf = skip_leading_crlf(&self.buf);
        if crlf == self.buf.len() {
            self.buf.advance(crlf.saturating_sub(2));
            return Ok(None);
        }
        self.buf.advance(crlf);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let head_end = match find_head_end(&self.buf, &self.limits) {
            Ok(i) => i,
            Err(ParseError::Unterminated) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (start, headers) = parse_head(&self.buf[..head_end], &self.limits)?;
        // On a stream Content-Length is mandatory (RFC 3261 §18.3, §20.14).
        let body_len = content_length(&self.buf, &headers)?.ok_or(ParseError::Framing)?;
        let total = head_end + 4 + body_len;
        if total > self.limits.max_message_bytes {
            return Err(ParseError::TooLarge(Cap::Message));
        }
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let bytes = self.buf.split_to(total).freeze();
        Ok(Some(Frame::Message(SipMessage {
            buf: bytes,
            start,
            headers,
            body: Span::new(head_end + 4, total),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        format!(
            "MESSAGE sip:x SIP/2.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn splits_pipelined_and_partial() {
        let mut f = StreamFramer::new(Limits::default());
        let two = format!("{}{}", msg("hello"), msg("world!"));
        let (a, b) = two.as_bytes().split_at(40);
        f.push(a);
        assert!(f.next_frame().unwrap().is_none());
        f.push(b);
        let Some(Frame::Message(m1)) = f.next_frame().unwrap() else {
            panic!()
        };
        let Some(Frame::Message(m2)) = f.next_frame().unwrap() else {
            panic!()
        };
        assert_eq!(
            (&m1.body()[..], &m2.body()[..]),
            (&b"hello"[..], &b"world!"[..])
        );
        assert!(f.next_frame().unwrap().is_none());
    }

    #[test]
    fn split_ping_still_gets_a_pong_and_line_ends_never_recurse() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"\r\n");
        assert!(f.next_frame().unwrap().is_none(), "half a ping waits");
        f.push(b"\r\n");
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::KeepAlive)));
        f.push(&vec![b'\n'; 200_000]);
        assert!(f.next_frame().unwrap().is_none());
        assert!(f.buffer().len() <= 2, "a flood of line ends is not kept");
        f.push(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
    }

    #[test]
    fn keepalive_and_errors() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"\r\n\r\n");
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::KeepAlive)));
        f.push(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: -5\r\n\r\n");
        assert_eq!(f.next_frame().unwrap_err(), ParseError::Framing);
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"MESSAGE sip:x SIP/2.0\r\nTo: x\r\n\r\n");
        assert_eq!(
            f.next_frame().unwrap_err(),
            ParseError::Framing,
            "no Content-Length on a stream"
        );
        let mut f = StreamFramer::new(Limits::default());
        f.push(&vec![b'a'; 40_000]);
        assert_eq!(f.next_frame().unwrap_err(), ParseError::TooLarge(Cap::Head));
    }
}
