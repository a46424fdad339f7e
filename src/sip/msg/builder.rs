//! Building messages: responses per RFC 3261 §8.2.6, requests for the transaction layer
//! (ACK for non-2xx, CANCEL), and a canonical printer.
//!
//! Output goes into one `BytesMut` sized up front, so building a response costs one
//! allocation.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::header_name::HeaderName;
use super::message::{SipMessage, StartLine};
use super::typed::Via;

/// The standard reason phrase for a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Trying",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Builds a response to a request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq are
/// copied from the request; a To tag is added to non-100 responses that lack one.
#[derive(Debug)]
pub struct ResponseBuilder<'r> {
    req: &'r SipMessage,
    code: u16,
    reason: Option<&'r str>,
    to_tag: Option<&'r str>,
    received: Option<SocketAddr>,
    headers: Vec<(&'r str, String)>,
    body: Option<(&'r str, Bytes)>,
}

impl<'r> ResponseBuilder<'r> {
    /// A response with `code` to `req`.
    pub fn new(req: &'r SipMessage, code: u16) -> Self {
        ResponseBuilder {
            req,
            code,
            reason: None,
            to_tag: None,
            received: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A reason phrase other than the standard one.
    pub fn reason(mut self, reason: &'r str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The To tag to add when the request's To has none (ignored for 100).
    pub fn to_tag(mut self, tag: &'r str) -> Self {
        self.to_tag = Some(tag);
        self
    }

    /// Where the request came from: fills `received` (RFC 3261 §18.2.1) and `rport`
    /// (RFC 3581 §4) in the copied top Via.
    pub fn received_from(mut self, source: SocketAddr) -> Self {
        self.received = Some(source);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'r str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets a body with its Content-Type.
    pub fn body(mut self, content_type: &'r str, body: Bytes) -> Self {
        self.body = Some((content_type, body));
        self
    }

    /// Serializes the response.
    pub fn build(self) -> Bytes {
        let req = self.req;
        let extra: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        let body_len = self.body.as_ref().map_or(0, |(_, b)| b.len());
        // Size the buffer from what is copied, not from the request: a server transaction
        // keeps this response for retransmission (Timer J, 32 s on UDP), and a buffer sized
        // from a REGISTER carrying a large token would pin that much memory per transaction.
        let copied: usize = req
            .headers()
            .iter()
            .filter(|h| {
                matches!(
                    h.name,
                    HeaderName::Via
                        | HeaderName::To
                        | HeaderName::From
                        | HeaderName::CallId
                        | HeaderName::CSeq
                )
            })
            .map(|h| h.value.len() + 16)
            .sum();
        // Start line, To tag, received/rport, Content-Type/Length lines.
        const SLACK: usize = 200;
        let mut out = BytesMut::with_capacity(copied + extra + body_len + SLACK);
        let reason = self.reason.unwrap_or_else(|| reason_phrase(self.code));
        let _ = write!(out, "SIP/2.0 {} {}\r\n", self.code, reason);
        let mut first_via = true;
        for h in req.headers() {
            let v = req.value(h);
            match h.name {
                HeaderName::Via => {
                    for (i, element) in super::typed::split_list(v).enumerate() {
                        put(&mut out, "Via", element);
                        if first_via && i == 0 {
                            out.truncate(out.len() - 2);
                            if let Some(src) = self.received {
                                put_received(&mut out, element, src);
                            }
                            out.put_slice(b"\r\n");
                        }
                    }
                    first_via = false;
                }
                HeaderName::To => {
                    put(&mut out, "To", v);
                    let has_tag = req.to_header().is_ok_and(|t| t.tag().is_some());
                    if let (Some(tag), false, false) = (self.to_tag, has_tag, self.code == 100) {
                        out.truncate(out.len() - 2);
                        let _ = write!(out, ";tag={tag}\r\n");
                    }
                }
                HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    put(&mut out, h.name.canonical(), v);
                }
                // RFC 3261 §8.2.6.1: a 100 Trying copies Timestamp.
                HeaderName::Timestamp if self.code == 100 => put(&mut out, "Timestamp", v),
                _ => {}
            }
        }
        for (n, v) in &self.headers {
            put(&mut out, n, v);
        }
        match &self.body {
            Some((ct, b)) => {
                put(&mut out, "Content-Type", ct);
                let _ = write!(out, "Content-Length: {}\r\n\r\n", b.len());
                out.put_slice(b);
            }
            None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
        }
        out.freeze()
    }
}

fn put(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends `;received=` when the sent-by host differs from the source address (RFC 3261
/// §18.2.1) or rport was requested, and fills an empty `rport` (RFC 3581 §4).
fn put_received(out: &mut BytesMut, element: &str, src: SocketAddr) {
    let Some(via) = Via::parse(element) else {
        return;
    };
    let wants_rport = via.rport() == Some(None);
    if wants_rport {
        // Rewrite the bare `rport` by dropping it from what we copied and appending a
        // filled one; parameter order carries no meaning.
        let bare = out.len() - element.len();
        let mut rebuilt = String::with_capacity(element.len() + 40);
        let base_end = element.find(';').unwrap_or(element.len());
        rebuilt.push_str(&element[..base_end]);
        for (n, v) in via.params.iter() {
            if n.eq_ignore_ascii_case("rport") || n.eq_ignore_ascii_case("received") {
                continue;
            }
            rebuilt.push(';');
            rebuilt.push_str(n);
            if let Some(v) = v {
                rebuilt.push('=');
                rebuilt.push_str(v);
            }
        }
        out.truncate(bare);
        out.put_slice(rebuilt.as_bytes());
        let _ = write!(out, ";received={};rport={}", src.ip(), src.port());
    } else if via.host.ip() != Some(src.ip()) && via.received().is_none() {
        let _ = write!(out, ";received={}", src.ip());
    }
}

impl SipMessage {
    /// Prints the message canonically: single-space start line, one `Name: value` line per
    /// field with folds collapsed to one space, canonical names for known headers, and a
    /// Content-Length that matches the body. Parsing the output yields the same message.
    pub fn to_canonical(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.as_bytes().len() + 32);
        match self.start_line() {
            StartLine::Request { .. } => {
                let _ = write!(
                    out,
                    "{} {} {}\r\n",
                    self.method_str().unwrap_or(""),
                    self.request_uri().unwrap_or(""),
                    self.version()
                );
            }
            StartLine::Response { code, .. } => {
                let _ = write!(
                    out,
                    "{} {} {}\r\n",
                    self.version(),
                    code,
                    self.reason().unwrap_or("")
                );
            }
        }
        for h in self.headers() {
            if h.name == HeaderName::ContentLength {
                continue;
            }
            let name = if h.name == HeaderName::Other {
                self.raw_name(h)
            } else {
                h.name.canonical()
            };
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            let mut in_fold = false;
            for &b in self.value(h).as_bytes() {
                if matches!(b, b'\r' | b'\n') {
                    in_fold = true;
                } else if in_fold && matches!(b, b' ' | b'\t') {
                    continue;
                } else {
                    if in_fold {
                        out.put_u8(b' ');
                        in_fold = false;
                    }
                    out.put_u8(b);
                }
            }
            out.put_slice(b"\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body_len());
        out.put_slice(&self.body());
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response a transaction keeps must not carry the request's size: a REGISTER
    /// with a 2 KB token gets a small 200.
    #[test]
    fn response_buffer_is_sized_from_what_it_copies() {
        let token = "x".repeat(2000);
        let req = SipMessage::parse(
            format!(
                "REGISTER sip:sw SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport\r\n\
                 From: <sip:a@sw>;tag=1\r\nTo: <sip:a@sw>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
                 Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
        .unwrap();
        let resp = ResponseBuilder::new(&req, 200)
            .to_tag("abc")
            .received_from("198.51.100.1:40000".parse().unwrap())
            .header("Contact", "<sip:a@192.0.2.1>;expires=3600")
            .build();
        let bytes = resp.clone();
        let parsed = SipMessage::parse(bytes).unwrap();
        assert_eq!(parsed.status(), Some(200));
        assert!(
            parsed
                .first(HeaderName::Via)
                .unwrap()
                .contains("received=198.51.100.1;rport=40000")
        );
        // The frozen Bytes owns a Vec of the buffer's capacity; converting back to a Vec
        // without copying shows that capacity.
        let capacity = Vec::from(resp).capacity();
        assert!(
            capacity < 600,
            "response buffer capacity {capacity} tracks the request size"
        );
    }
}
