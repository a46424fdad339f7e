//! Requests the transaction layer writes itself: the ACK for a non-2xx final response
//! (RFC 3261 §17.1.1.3) and CANCEL (§9.1).
//!
//! Both copy their header values raw from the request being acknowledged or cancelled, so
//! whatever the far end will compare (From tag, Call-ID, Route, the Via branch) is
//! byte-identical.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use crate::sip::msg::{HeaderName, SipMessage};

/// Builds the ACK for a 300–699 response to an INVITE we sent (RFC 3261 §17.1.1.3): the
/// INVITE's Request-URI, Call-ID, From and CSeq number (method ACK), the To of the
/// response (with its tag), one Via equal to the INVITE's top Via, the INVITE's Route
/// headers, Max-Forwards 70 and no body.
///
/// `request` must be a request with a CSeq that parses (the transaction layer only builds
/// ACKs for requests it sent); a missing CSeq number is written as 0.
pub fn build_ack_for(request: &SipMessage, response: &SipMessage) -> Bytes {
    let to = response
        .first(HeaderName::To)
        .or_else(|| request.first(HeaderName::To));
    build_like(request, "ACK", to)
}

/// Builds a CANCEL for an INVITE we sent (RFC 3261 §9.1): the INVITE's Request-URI,
/// Call-ID, To, From, top Via (only), Route headers and CSeq number with method CANCEL,
/// Max-Forwards 70 and no body. Send it as a new client transaction; it matches the INVITE's
/// server transaction by branch, and its own by method.
pub fn build_cancel(invite: &SipMessage) -> Bytes {
    build_like(invite, "CANCEL", invite.first(HeaderName::To))
}

fn build_like(request: &SipMessage, method: &str, to: Option<&str>) -> Bytes {
    let uri = request.request_uri().unwrap_or("");
    let via = request.list(HeaderName::Via).next();
    let from = request.first(HeaderName::From);
    let call_id = request.first(HeaderName::CallId);
    let seq = request.cseq().map_or(0, |c| c.seq);
    let routes = request.values(HeaderName::Route);

    let mut out = BytesMut::with_capacity(request.as_bytes().len().min(1024) + 64);
    let _ = write!(out, "{method} {uri} SIP/2.0\r\n");
    if let Some(via) = via {
        let _ = write!(out, "Via: {via}\r\n");
    }
    for route in routes {
        let _ = write!(out, "Route: {route}\r\n");
    }
    if let Some(from) = from {
        let _ = write!(out, "From: {from}\r\n");
    }
    if let Some(to) = to {
        let _ = write!(out, "To: {to}\r\n");
    }
    if let Some(call_id) = call_id {
        let _ = write!(out, "Call-ID: {call_id}\r\n");
    }
    let _ = write!(
        out,
        "CSeq: {seq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::method::Method;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8, SIP/2.0/UDP p.example.com;branch=z9hG4bKp\r\n\
        Via: SIP/2.0/UDP q.example.com;branch=z9hG4bKq\r\n\
        Route: <sip:p1.example.com;lr>\r\n\
        Route: <sip:p2.example.com;lr>\r\n\
        Max-Forwards: 69\r\n\
        To: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    const BUSY: &[u8] = b"SIP/2.0 486 Busy Here\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
        To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn ack_for_non_2xx_follows_17_1_1_3() {
        let invite = SipMessage::parse(INVITE).unwrap();
        let busy = SipMessage::parse(BUSY).unwrap();
        let ack = SipMessage::parse(build_ack_for(&invite, &busy)).unwrap();
        assert_eq!(ack.method(), Some(Method::Ack));
        assert_eq!(ack.request_uri(), Some("sip:bob@biloxi.example.com"));
        let vias: Vec<_> = ack.list(HeaderName::Via).collect();
        assert_eq!(
            vias,
            ["SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8"]
        );
        let routes: Vec<_> = ack.values(HeaderName::Route).collect();
        assert_eq!(
            routes,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(ack.to_header().unwrap().tag(), Some("a6c85cf"));
        assert_eq!(ack.from_header().unwrap().tag(), Some("1928301774"));
        assert_eq!(ack.call_id().unwrap(), "a84b4c76e66710");
        let cseq = ack.cseq().unwrap();
        assert_eq!((cseq.seq, cseq.method), (314159, Method::Ack));
        assert_eq!(ack.max_forwards().unwrap(), Some(70));
        assert_eq!(ack.body_len(), 0);
        assert_eq!(ack.count(HeaderName::Contact), 0);
    }

    #[test]
    fn cancel_follows_9_1() {
        let invite = SipMessage::parse(INVITE).unwrap();
        let cancel = SipMessage::parse(build_cancel(&invite)).unwrap();
        assert_eq!(cancel.method(), Some(Method::Cancel));
        assert_eq!(cancel.request_uri(), invite.request_uri());
        assert_eq!(cancel.list(HeaderName::Via).count(), 1);
        assert_eq!(cancel.top_via().unwrap(), invite.top_via().unwrap());
        assert_eq!(cancel.values(HeaderName::Route).count(), 2);
        assert_eq!(cancel.first(HeaderName::To), invite.first(HeaderName::To));
        assert_eq!(
            cancel.first(HeaderName::From),
            invite.first(HeaderName::From)
        );
        let cseq = cancel.cseq().unwrap();
        assert_eq!((cseq.seq, cseq.method), (314159, Method::Cancel));
        assert_eq!(cancel.max_forwards().unwrap(), Some(70));
        assert_eq!(cancel.body_len(), 0);
    }
}
