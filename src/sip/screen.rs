//! Request and response screening: what the switch, as a SIP element, refuses before any
//! transaction or application logic sees a message.
//!
//! The outcomes follow RFC 3261 §8.2 and the RFC 4475/5118 table in
//! `reference/sip-robustness-and-security.md` §1: 505 for another SIP version, 400 for a
//! missing, repeated or malformed essential header, 416 for an unknown Request-URI scheme,
//! 501 for an unknown method, 483 when Max-Forwards is exhausted, 420 for an unknown
//! required extension, 415 for a body we cannot read, 406 when the client accepts no body
//! we could send. Malformed responses are dropped (a response cannot be answered).

use super::method::Method;
use super::msg::typed::{Scheme, SipUri};
use super::msg::{HeaderName, SipMessage};

/// Methods the switch recognises (anything else gets 501, RFC 3261 §8.2.1).
pub const KNOWN_METHODS: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Options,
    Method::Register,
    Method::Prack,
    Method::Info,
    Method::Update,
    Method::Subscribe,
    Method::Notify,
    Method::Refer,
    Method::Message,
    Method::Publish,
];

/// Option tags the switch implements; a Require naming any other gets 420. Empty until an
/// extension is implemented for real: claiming one we do not honour would be a lie to the
/// client.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// Body types we read (415 otherwise, RFC 3261 §8.2.3).
pub const ACCEPTED_BODIES: &[&str] = &[
    "application/sdp",
    "multipart/mixed",
    "application/dtmf-relay",
];

/// Why a request is refused: the status, a reason phrase, and headers the response must
/// carry (Unsupported for 420, Accept for 415).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Refusal {
    /// Status code.
    pub code: u16,
    /// Reason phrase saying exactly what was wrong.
    pub reason: String,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// What a receiving element does with a request whose headers are all readable but whose
/// Max-Forwards is zero: requests the switch answers itself (OPTIONS, REGISTER) are answered
/// (RFC 4475 §3.3.11: "the target answers"); anything it would pass on is refused.
fn answered_locally(m: Method) -> bool {
    matches!(m, Method::Options | Method::Register)
}

/// Screens a request. `Ok(())` means it may go to the transaction layer.
pub fn screen_request(req: &SipMessage) -> Result<(), Refusal> {
    let method = req.method().unwrap_or(Method::Other);
    if !req.version().eq_ignore_ascii_case("SIP/2.0") {
        return Err(Refusal::new(505, "Version Not Supported"));
    }
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        match req.count(name) {
            0 => {
                return Err(Refusal::new(
                    400,
                    format!("Missing {} Header", name.canonical()),
                ));
            }
            n if n > 1 && name.is_single() => {
                return Err(Refusal::new(
                    400,
                    format!("Repeated {} Header", name.canonical()),
                ));
            }
            _ => {}
        }
    }
    for name in [
        HeaderName::MaxForwards,
        HeaderName::ContentType,
        HeaderName::Expires,
    ] {
        if req.count(name) > 1 {
            return Err(Refusal::new(
                400,
                format!("Repeated {} Header", name.canonical()),
            ));
        }
    }
    let bad =
        |e: super::msg::HeaderError| Refusal::new(400, format!("Malformed {} Header", e.header));
    for via in req.vias() {
        via.map_err(bad)?;
    }
    req.from_header().map_err(bad)?;
    let to = req.to_header().map_err(bad)?;
    let cseq = req.cseq().map_err(bad)?;
    req.call_id().map_err(bad)?;
    let max_forwards = req.max_forwards().map_err(bad)?;
    req.expires().map_err(bad)?;
    for c in req.contacts() {
        c.map_err(bad)?;
    }
    for r in req.routes().chain(req.record_routes()) {
        r.map_err(bad)?;
    }

    let uri = req.request_uri().unwrap_or("");
    match Scheme::of(uri) {
        Some(Scheme::Sip | Scheme::Sips) => {
            let u = SipUri::parse(uri).ok_or_else(|| Refusal::new(400, "Malformed Request-URI"))?;
            // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 `escruri`).
            if u.headers.is_some() {
                return Err(Refusal::new(400, "Headers Not Allowed In Request-URI"));
            }
        }
        Some(Scheme::Tel) => {}
        _ => return Err(Refusal::new(416, "Unsupported URI Scheme")),
    }
    if !KNOWN_METHODS.contains(&method) {
        return Err(Refusal::new(501, "Not Implemented"));
    }
    if cseq.method != method
        || (method == Method::Other && Some(cseq.method_str) != req.method_str())
    {
        return Err(Refusal::new(400, "CSeq Method Does Not Match Request"));
    }
    if method == Method::Register && to.uri.sip().is_none() {
        return Err(Refusal::new(400, "To Must Be A SIP URI For REGISTER"));
    }
    if max_forwards == Some(0) && !answered_locally(method) {
        return Err(Refusal::new(483, "Too Many Hops"));
    }
    // RFC 3261 §8.2.2.3: Require is not checked for CANCEL and ACK.
    if !matches!(method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<&str> = req
            .option_tags(HeaderName::Require)
            .chain(req.option_tags(HeaderName::ProxyRequire))
            .filter(|t| {
                !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unsupported.is_empty() {
            return Err(
                Refusal::new(420, "Bad Extension").with("Unsupported", unsupported.join(", "))
            );
        }
    }
    if req.body_len() > 0 {
        let ct = req
            .first(HeaderName::ContentType)
            .map(media_type)
            .unwrap_or("");
        if !ACCEPTED_BODIES.iter().any(|a| a.eq_ignore_ascii_case(ct)) {
            return Err(Refusal::new(415, "Unsupported Media Type")
                .with("Accept", ACCEPTED_BODIES.join(", ")));
        }
    }
    if method == Method::Invite && !accepts_sdp(req) {
        return Err(Refusal::new(406, "Not Acceptable").with("Accept", "application/sdp".into()));
    }
    Ok(())
}

/// `type/subtype` of a Content-Type or Accept element, without parameters.
fn media_type(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

/// Whether the request's Accept (if any) allows an SDP answer (RFC 3261 §20.1: absent
/// Accept means application/sdp).
fn accepts_sdp(req: &SipMessage) -> bool {
    if req.count(HeaderName::Accept) == 0 {
        return true;
    }
    req.list(HeaderName::Accept).map(media_type).any(|t| {
        ["application/sdp", "application/*", "*/*"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(t))
    })
}

/// Screens a response; `false` means drop it silently (RFC 4475 `scalarlg`, `bigcode`).
pub fn screen_response(resp: &SipMessage) -> bool {
    resp.version().eq_ignore_ascii_case("SIP/2.0")
        && resp.vias().next().is_some()
        && resp.vias().all(|v| v.is_ok())
        && resp.from_header().is_ok()
        && resp.to_header().is_ok()
        && resp.cseq().is_ok()
        && resp.call_id().is_ok()
}

/// What the switch does with one received message.
#[derive(Debug)]
pub enum Verdict {
    /// Well formed: hand it to the transaction layer.
    Deliver(SipMessage),
    /// A request we refuse statelessly; `request` is what we could read of it.
    Refuse {
        /// The (possibly partial) request, for copying Via/From/To/Call-ID/CSeq.
        request: SipMessage,
        /// The answer.
        refusal: Refusal,
    },
    /// Nothing can or may be answered (a broken response, an ACK, unreadable bytes).
    Drop(&'static str),
}

/// Decides what to do with a parsed (or rejected) datagram or stream frame.
pub fn judge(parsed: Result<SipMessage, super::msg::Rejected>) -> Verdict {
    let msg = match parsed {
        Ok(m) => m,
        Err(rejected) => {
            return match rejected.head {
                // Without a Via a response cannot be routed or matched (RFC 3261 §8.2.6),
                // and answering unroutable junk would reflect traffic at spoofed sources.
                Some(head)
                    if head.is_request()
                        && head.method() != Some(Method::Ack)
                        && head.count(HeaderName::Via) > 0 =>
                {
                    let code = rejected.error.status();
                    let reason = match code {
                        413 => "Request Entity Too Large".to_string(),
                        _ => format!("Bad Request ({})", rejected.error),
                    };
                    Verdict::Refuse {
                        request: head,
                        refusal: Refusal::new(code, reason),
                    }
                }
                _ => Verdict::Drop(rejected.error.class()),
            };
        }
    };
    if !msg.is_request() {
        return if screen_response(&msg) {
            Verdict::Deliver(msg)
        } else {
            Verdict::Drop("bad_response")
        };
    }
    match screen_request(&msg) {
        Ok(()) => Verdict::Deliver(msg),
        Err(_) if msg.count(HeaderName::Via) == 0 => Verdict::Drop("no_via"),
        // An ACK is never answered (RFC 3261 §17.2.1 and §8.2): drop a bad one.
        Err(_) if msg.method() == Some(Method::Ack) => Verdict::Drop("bad_ack"),
        Err(refusal) => Verdict::Refuse {
            request: msg,
            refusal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str) -> SipMessage {
        let s = format!(
            "OPTIONS sip:sw.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             To: <sip:sw.example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: c1\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(s.into_bytes()).unwrap()
    }

    #[test]
    fn outcomes() {
        assert_eq!(screen_request(&req("")), Ok(()));
        let r = screen_request(&req("Require: foo, 100rel\r\n")).unwrap_err();
        assert_eq!((r.code, r.headers[0].1.as_str()), (420, "foo, 100rel"));
        assert_eq!(
            screen_request(&req("Call-ID: again\r\n")).unwrap_err().code,
            400
        );
        assert_eq!(
            screen_request(&req("Max-Forwards: 0\r\n"))
                .unwrap_err()
                .code,
            400,
            "repeated"
        );
        let m = SipMessage::parse(
            &b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nTo: <sip:b@x>\r\n\
               From: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 0\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!(screen_request(&m).unwrap_err().code, 483);
    }
}
