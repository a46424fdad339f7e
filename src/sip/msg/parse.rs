//! The message parser: one pass over the head building a span index (httparse style).
//!
//! Structure only: start line, header lines (with folding, RFC 3261 §7.3.1), the blank line,
//! and Content-Length framing. Header grammars are checked later, by the typed views, so a
//! message whose unknown headers look odd (RFC 4475 `wsinv`) still parses.

use bytes::Bytes;
use std::sync::LazyLock;

use memchr::memmem;

use super::error::{Cap, ParseError};
use super::header_name::HeaderName;
use super::limits::Limits;
use super::message::{HeaderField, SipMessage, StartLine};
use super::span::Span;
use crate::sip::method::Method;

/// The searchers for line and head ends, built once: `memmem::find` builds one on every
/// call, and a message has one call per header line.
static CRLF: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\r\n"));
static CRLFCRLF: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));

/// A message that could not be accepted, with its head when the head itself was readable
/// (so the caller can still answer a request with 400, RFC 4475 §3.1.2.2).
#[derive(Debug)]
pub struct Rejected {
    /// Why.
    pub error: ParseError,
    /// The parsed head (empty body), when start line and headers were well formed.
    pub head: Option<SipMessage>,
}

impl Rejected {
    fn bare(error: ParseError) -> Self {
        Rejected { error, head: None }
    }
}

/// Parses one UDP datagram (RFC 3261 §18.3): the body is Content-Length bytes, or the rest
/// of the datagram when Content-Length is absent; extra trailing bytes are ignored
/// (RFC 4475 `dblreq`).
pub fn parse_datagram(buf: Bytes, limits: &Limits) -> Result<SipMessage, Rejected> {
    let buf = buf.slice(skip_leading_crlf(&buf)..);
    if buf.is_empty() {
        return Err(Rejected::bare(ParseError::Empty));
    }
    let head_end = match find_head_end(&buf, limits) {
        Ok(i) => i,
        // A datagram is the whole message (RFC 3261 §18.3): without the blank line it is
        // truncated, but its head may still be readable enough to answer 400.
        Err(ParseError::Unterminated) => {
            let end = buf.len() - usize::from(buf.ends_with(b"\r\n")) * 2;
            return Err(Rejected {
                error: ParseError::Unterminated,
                head: salvage_head(&buf, end, limits),
            });
        }
        Err(e) => return Err(Rejected::bare(e)),
    };
    let (start, headers) = match parse_head(&buf[..head_end], limits) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Err(Rejected {
                error: e,
                head: salvage_head(&buf, head_end, limits),
            });
        }
    };
    let body_start = head_end + 4;
    let available = buf.len() - body_start;
    let head_only = |b: &Bytes| SipMessage {
        buf: b.slice(..body_start),
        start,
        headers: headers.clone(),
        body: Span::new(body_start, body_start),
    };
    if buf.len() > limits.max_message_bytes {
        return Err(Rejected {
            error: ParseError::TooLarge(Cap::Message),
            head: Some(head_only(&buf)),
        });
    }
    let body_len = match content_length(&buf, &headers) {
        Ok(Some(n)) if n <= available => n,
        Ok(Some(_)) | Err(_) => {
            return Err(Rejected {
                error: ParseError::Framing,
                head: Some(head_only(&buf)),
            });
        }
        Ok(None) => available,
    };
    let end = body_start + body_len;
    Ok(SipMessage {
        buf: buf.slice(..end),
        start,
        headers,
        body: Span::new(body_start, end),
    })
}

/// A best-effort head for answering a broken request with 400: the header lines parsed
/// normally, and a start line taken as `METHOD <anything>` when it is not well formed
/// (RFC 4475 `ltgtruri`, `lwsruri` must get 400, which needs Via, From, To, Call-ID and CSeq
/// to copy). Responses are never salvaged: a broken response is dropped.
fn salvage_head(buf: &Bytes, head_end: usize, limits: &Limits) -> Option<SipMessage> {
    let head = &buf[..head_end];
    let first_eol = CRLF.find(head).unwrap_or(head.len());
    let line = &head[..first_eol];
    if line.starts_with(b"SIP/") || std::str::from_utf8(head).is_err() {
        return None;
    }
    let (start, headers) = match parse_head(head, limits) {
        Ok(parsed) => parsed,
        Err(ParseError::StartLine) => {
            let sp = memchr::memchr(b' ', line)?;
            let method = &line[..sp];
            if method.is_empty() || !method.iter().all(|&b| is_token_char(b)) {
                return None;
            }
            // Parse the header lines on their own by pretending the start line is valid.
            let headers = parse_headers_after(head, first_eol, limits).ok()?;
            let start = StartLine::Request {
                method: Method::from_bytes(method),
                method_span: Span::new(0, sp),
                uri: Span::new(sp + 1, first_eol),
                version: Span::new(first_eol, first_eol),
            };
            (start, headers)
        }
        Err(_) => return None,
    };
    let end = (head_end + 4).min(buf.len());
    Some(SipMessage {
        buf: buf.slice(..end),
        start,
        headers,
        body: Span::new(end, end),
    })
}

/// Number of CR/LF bytes before the start line. RFC 3261 §7.5: implementations SHOULD
/// ignore CRLFs before the start line (they are also RFC 5626 keep-alives).
pub(crate) fn skip_leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Index of the CRLFCRLF that ends the head, within the head size cap.
pub(crate) fn find_head_end(buf: &[u8], limits: &Limits) -> Result<usize, ParseError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes + 4)];
    match CRLFCRLF.find(window) {
        Some(i) => Ok(i),
        None if buf.len() > limits.max_head_bytes => Err(ParseError::TooLarge(Cap::Head)),
        None => Err(ParseError::Unterminated),
    }
}

/// The Content-Length value: `Ok(None)` when absent, `Err` when repeated (RFC 4475 `mcl01`),
/// negative or not a number (`ncl`). Leading zeros are fine (`l: 0150` is 150).
pub(crate) fn content_length(
    buf: &[u8],
    headers: &[HeaderField],
) -> Result<Option<usize>, ParseError> {
    let mut found = None;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        if found.is_some() {
            return Err(ParseError::Framing);
        }
        let v = trim_lws(h.value.of(buf));
        if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::Framing);
        }
        found = Some(v.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')));
    }
    Ok(found)
}

fn trim_lws(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if is_lws(*first) { v = rest } else { break }
    }
    while let [rest @ .., last] = v {
        if is_lws(*last) { v = rest } else { break }
    }
    v
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Parses the start line and header lines of `head` (which excludes the final CRLFCRLF).
pub(crate) fn parse_head(
    head: &[u8],
    limits: &Limits,
) -> Result<(StartLine, Vec<HeaderField>), ParseError> {
    // SIP text is UTF-8 (RFC 3261 §25.1); checking once here lets every view hand out &str.
    if std::str::from_utf8(head).is_err() {
        return Err(ParseError::HeaderSyntax);
    }
    let first_eol = CRLF.find(head).unwrap_or(head.len());
    if first_eol > limits.max_line_bytes {
        return Err(ParseError::TooLarge(Cap::Line));
    }
    let start = parse_start_line(&head[..first_eol])?;
    Ok((start, parse_headers_after(head, first_eol, limits)?))
}

/// Parses the header lines that follow the start line ending at `first_eol`.
fn parse_headers_after(
    head: &[u8],
    first_eol: usize,
    limits: &Limits,
) -> Result<Vec<HeaderField>, ParseError> {
    let mut headers: Vec<HeaderField> = Vec::with_capacity(24);
    let mut pos = first_eol + 2;
    while pos < head.len() {
        let eol = CRLF.find(&head[pos..]).map_or(head.len(), |i| pos + i);
        if eol - pos > limits.max_line_bytes {
            return Err(ParseError::TooLarge(Cap::Line));
        }
        let line = &head[pos..eol];
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // A fold continues the previous field's value.
            let prev = headers.last_mut().ok_or(ParseError::HeaderSyntax)?;
            let (s, e) = trimmed(line, pos);
            if s < e {
                if prev.value.is_empty() {
                    prev.value = Span::new(s, e);
                } else {
                    prev.value.end = e as u32;
                }
            }
        } else {
            if headers.len() == limits.max_header_count {
                return Err(ParseError::TooLarge(Cap::HeaderCount));
            }
            let colon = memchr::memchr(b':', line).ok_or(ParseError::HeaderSyntax)?;
            // HCOLON = *( SP / HTAB ) ":" SWS: whitespace may precede the colon.
            let name_end = line[..colon]
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(0, |i| i + 1);
            let name = &line[..name_end];
            if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
                return Err(ParseError::HeaderSyntax);
            }
            let (s, e) = trimmed(&line[colon + 1..], pos + colon + 1);
            headers.push(HeaderField {
                name: HeaderName::from_bytes(name),
                raw_name: Span::new(pos, pos + name_end),
                value: Span::new(s, e.max(s)),
            });
        }
        pos = eol + 2;
    }
    Ok(headers)
}

/// Absolute start and end of `line` without surrounding SP/HTAB; `base` is its offset.
fn trimmed(line: &[u8], base: usize) -> (usize, usize) {
    let s = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    let e = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(s, |i| i + 1);
    (base + s, base + e)
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, ParseError> {
    if line.starts_with(b"SIP/") {
        parse_status_line(line)
    } else {
        parse_request_line(line)
    }
}

/// `Method SP Request-URI SP SIP-Version`, single spaces only: RFC 4475 `lwsstart`, `trws`
/// and `lwsruri` are rejected here rather than guessed at.
fn parse_request_line(line: &[u8]) -> Result<StartLine, ParseError> {
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine)?;
    let rest = &line[sp1 + 1..];
    let sp2 = sp1 + 1 + memchr::memchr(b' ', rest).ok_or(ParseError::StartLine)?;
    let method = &line[..sp1];
    let uri = &line[sp1 + 1..sp2];
    let version = &line[sp2 + 1..];
    if method.is_empty() || !method.iter().all(|&b| is_token_char(b)) {
        return Err(ParseError::StartLine);
    }
    // A Request-URI is an absolute URI: scheme ":" ... with no whitespace (`ltgtruri` has
    // `<` where the scheme should start).
    let scheme_end = memchr::memchr(b':', uri).ok_or(ParseError::StartLine)?;
    let scheme = &uri[..scheme_end];
    if scheme.is_empty()
        || !scheme[0].is_ascii_alphabetic()
        || !scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        || uri
            .iter()
            .any(|&b| b <= b' ' || b == b'<' || b == b'>' || b == 0x7f)
    {
        return Err(ParseError::StartLine);
    }
    if !is_version(version) {
        return Err(ParseError::StartLine);
    }
    Ok(StartLine::Request {
        method: Method::from_bytes(method),
        method_span: Span::new(0, sp1),
        uri: Span::new(sp1 + 1, sp2),
        version: Span::new(sp2 + 1, line.len()),
    })
}

/// `SIP-Version SP Status-Code SP Reason-Phrase` where the code is exactly three digits
/// (RFC 4475 `bigcode` carries 4294967301 and must be dropped).
fn parse_status_line(line: &[u8]) -> Result<StartLine, ParseError> {
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine)?;
    let version = &line[..sp1];
    if !is_version(version) {
        return Err(ParseError::StartLine);
    }
    let rest = &line[sp1 + 1..];
    let code = rest.get(..3).ok_or(ParseError::StartLine)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(rest.get(3), None | Some(b' ')) {
        return Err(ParseError::StartLine);
    }
    let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&code) {
        return Err(ParseError::StartLine);
    }
    let reason_start = (sp1 + 5).min(line.len());
    Ok(StartLine::Response {
        version: Span::new(0, sp1),
        code,
        reason: Span::new(reason_start, line.len()),
    })
}

/// `"SIP" "/" 1*DIGIT "." 1*DIGIT` (case-insensitive name); the number is checked later
/// (an unknown version gets 505, not 400).
fn is_version(v: &[u8]) -> bool {
    let Some(num) = v.get(4..) else { return false };
    if !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let Some(dot) = memchr::memchr(b'.', num) else {
        return false;
    };
    let (major, minor) = (&num[..dot], &num[dot + 1..]);
    !major.is_empty()
        && !minor.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && minor.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SipMessage, Rejected> {
        parse_datagram(Bytes::copy_from_slice(s.as_bytes()), &Limits::default())
    }

    const OPTIONS: &str = "OPTIONS sip:sw.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
        To: <sip:sw.example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n\
        Call-ID: abc\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn request_line_and_headers() {
        let m = parse(OPTIONS).unwrap();
        assert_eq!(m.method(), Some(Method::Options));
        assert_eq!(m.request_uri(), Some("sip:sw.example.com"));
        assert_eq!(m.first(HeaderName::CallId), Some("abc"));
        assert_eq!(m.headers().len(), 7);
        assert_eq!(m.body_len(), 0);
    }

    #[test]
    fn folded_value_spans_lines() {
        let m = parse("OPTIONS sip:x SIP/2.0\r\nSubject: a\r\n  b\r\nTo :\r\n <sip:y>\r\n\r\n")
            .unwrap();
        assert_eq!(m.first(HeaderName::Subject), Some("a\r\n  b"));
        assert_eq!(m.first(HeaderName::To), Some("<sip:y>"));
    }

    #[test]
    fn content_length_frames_body_and_ignores_trailing() {
        let m = parse("MESSAGE sip:x SIP/2.0\r\nl: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(&m.body()[..], b"abc");
        assert_eq!(
            m.as_bytes().len(),
            "MESSAGE sip:x SIP/2.0\r\nl: 3\r\n\r\nabc".len()
        );
        let r = parse("MESSAGE sip:x SIP/2.0\r\nContent-Length: 9\r\n\r\nabc").unwrap_err();
        assert_eq!(r.error, ParseError::Framing);
        assert!(r.head.is_some(), "head kept so a 400 can be sent");
        assert_eq!(
            parse("MESSAGE sip:x SIP/2.0\r\nl: -1\r\n\r\n")
                .unwrap_err()
                .error,
            ParseError::Framing
        );
        assert_eq!(
            parse("MESSAGE sip:x SIP/2.0\r\nl: 0\r\nl: 0\r\n\r\n")
                .unwrap_err()
                .error,
            ParseError::Framing
        );
    }

    #[test]
    fn start_line_faults() {
        for bad in [
            "INVITE  sip:x SIP/2.0\r\n\r\n",
            "INVITE sip:x SIP/2.0 \r\n\r\n",
            "INVITE <sip:x> SIP/2.0\r\n\r\n",
            "INVITE sip:x; lr SIP/2.0\r\n\r\n",
            "SIP/2.0 4294967301 Big\r\n\r\n",
            "SIP/2.0 099 Low\r\n\r\n",
            "INVITE sip:x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad).unwrap_err().error,
                ParseError::StartLine,
                "{bad:?}"
            );
        }
        let m = parse("SIP/2.0 100 \r\n\r\n").unwrap();
        assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
    }

    #[test]
    fn caps_are_enforced() {
        let mut many = String::from("OPTIONS sip:x SIP/2.0\r\n");
        for i in 0..200 {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(
            parse(&many).unwrap_err().error,
            ParseError::TooLarge(Cap::HeaderCount)
        );
        let long = format!("OPTIONS sip:x SIP/2.0\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        assert_eq!(
            parse(&long).unwrap_err().error,
            ParseError::TooLarge(Cap::Line)
        );
        assert_eq!(
            parse("OPTIONS sip:x SIP/2.0\r\nX: y\r\n")
                .unwrap_err()
                .error,
            ParseError::Unterminated
        );
        assert_eq!(parse("\r\n\r\n").unwrap_err().error, ParseError::Empty);
    }
}
