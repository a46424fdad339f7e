//! Dialogs (RFC 3261 §12): the state two user agents share after an INVITE is answered,
//! and what a B2BUA leg needs to send requests inside it.
//!
//! ```text
//!   1xx with To tag           2xx
//!  ----------------> Early ----------> Confirmed ----BYE----> (gone)
//!                     |  3xx-6xx / timeout
//!                     +-----------------------> (gone)
//! ```
//!
//! A dialog is identified by Call-ID, local tag and remote tag ([`DialogId`]). It keeps the
//! route set (fixed when the dialog is created, §12.1), the remote target (refreshed by
//! target-refresh requests, §12.2), and the two CSeq counters. Sans-IO: plain data and
//! functions, no clock.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::method::Method;
use super::msg::typed::NameAddr;
use super::msg::{HeaderError, SipMessage};

/// Call-ID plus the two tags, seen from our side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (From tag as UAC, To tag as UAS).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The id a request received inside a dialog maps to (we are the UAS of that request,
    /// so our tag is its To tag). `None` if the request carries no To tag (not in a dialog).
    pub fn of_incoming_request(req: &SipMessage) -> Option<DialogId> {
        Some(DialogId {
            call_id: req.call_id().ok()?.to_string(),
            local_tag: req.to_header().ok()?.tag()?.to_string(),
            remote_tag: req.from_header().ok()?.tag()?.to_string(),
        })
    }
}

/// Early (after a 1xx with a To tag) or confirmed (after a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// A provisional response created it.
    Early,
    /// A 2xx created or confirmed it.
    Confirmed,
}

/// Why a message could not create or update a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header needed for dialog state is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The response that would create the dialog has no To tag.
    #[error("response has no To tag")]
    NoRemoteTag,
    /// The request that would create the dialog has no From tag.
    #[error("request has no From tag")]
    NoFromTag,
    /// No Contact to use as the remote target (§12.1.1 requires one).
    #[error("no Contact for the remote target")]
    NoContact,
    /// §12.2.2: a request with a CSeq below the remote sequence number gets 500.
    #[error("CSeq {got} is lower than {expected_above}")]
    OutOfOrder {
        /// The last remote CSeq seen.
        expected_above: u32,
        /// What arrived.
        got: u32,
    },
}

/// One side's view of a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Identity.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our URI (From as UAC, To as UAS), as a name-addr without tag.
    pub local_uri: String,
    /// The peer's URI, as a name-addr without tag.
    pub remote_uri: String,
    /// Where requests go: the peer's Contact URI.
    pub remote_target: String,
    /// Route set, in the order Route headers must be sent.
    pub route_set: Vec<String>,
    /// Our CSeq for the next request is `local_seq + 1`.
    pub local_seq: u32,
    /// The highest CSeq received from the peer, if any.
    pub remote_seq: Option<u32>,
    /// Whether the dialog was set up with a sips Request-URI over TLS (§12.1.1).
    pub secure: bool,
}

/// The Contact URI of a message (the part inside `<>`, or the addr-spec).
fn contact_uri(msg: &SipMessage) -> Result<String, DialogError> {
    let c = msg.contacts().next().ok_or(DialogError::NoContact)??;
    Ok(c.uri_text.to_string())
}

/// A name-addr without its tag parameter, as written in From/To.
fn without_tag(n: &NameAddr<'_>) -> String {
    let mut s = match n.display {
        Some(d) => format!("\"{d}\" <{}>", n.uri_text),
        None => format!("<{}>", n.uri_text),
    };
    for (name, value) in n
        .params
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("tag"))
    {
        let _ = match value {
            Some(v) => write!(s, ";{name}={v}"),
            None => write!(s, ";{name}"),
        };
    }
    s
}

/// Record-Route elements as name-addr strings, in header order.
fn record_route(msg: &SipMessage) -> Result<Vec<String>, DialogError> {
    msg.record_routes()
        .map(|r| {
            r.map(|n| format!("<{}>{}", n.uri_text, n.params.0))
                .map_err(DialogError::from)
        })
        .collect()
}

impl Dialog {
    /// The UAS side (§12.1.1): created when we answer `request` with a 1xx/2xx carrying
    /// `local_tag`. The route set is the Record-Route list in order; the remote target is
    /// the request's Contact.
    pub fn uas(
        request: &SipMessage,
        local_tag: &str,
        state: DialogState,
    ) -> Result<Dialog, DialogError> {
        let from = request.from_header()?;
        let to = request.to_header()?;
        let cseq = request.cseq()?;
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?.to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: from.tag().ok_or(DialogError::NoFromTag)?.to_string(),
            },
            state,
            local_uri: without_tag(&to),
            remote_uri: without_tag(&from),
            remote_target: contact_uri(request)?,
            route_set: record_route(request)?,
            local_seq: 0,
            remote_seq: Some(cseq.seq),
            secure: request
                .request_uri()
                .is_some_and(|u| u.len() > 5 && u[..5].eq_ignore_ascii_case("sips:")),
        })
    }

    /// The UAC side (§12.1.2): created by a 1xx (with To tag) or 2xx `response` to our
    /// `request`. The route set is the response's Record-Route list reversed.
    pub fn uac(request: &SipMessage, response: &SipMessage) -> Result<Dialog, DialogError> {
        let from = request.from_header()?;
        let to = response.to_header()?;
        let mut route_set = record_route(response)?;
        route_set.reverse();
        let code = response.status().unwrap_or(0);
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?.to_string(),
                local_tag: from.tag().ok_or(DialogError::NoFromTag)?.to_string(),
                remote_tag: to.tag().ok_or(DialogError::NoRemoteTag)?.to_string(),
            },
            state: if (200..300).contains(&code) {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_uri: without_tag(&from),
            remote_uri: without_tag(&to),
            remote_target: contact_uri(response)?,
            route_set,
            local_seq: request.cseq()?.seq,
            remote_seq: None,
            secure: request
                .request_uri()
                .is_some_and(|u| u.len() > 5 && u[..5].eq_ignore_ascii_case("sips:")),
        })
    }

    /// A 2xx confirms an early dialog and refreshes the remote target (§12.1.2, §13.2.2.4).
    pub fn confirm(&mut self, response: &SipMessage) -> Result<(), DialogError> {
        self.state = DialogState::Confirmed;
        if let Ok(target) = contact_uri(response) {
            self.remote_target = target;
        }
        Ok(())
    }

    /// Checks and records a request received in this dialog (§12.2.2): a CSeq lower than
    /// the last one is out of order (answer 500); target-refresh requests (re-INVITE,
    /// UPDATE) with a Contact replace the remote target. ACK and CANCEL reuse the INVITE's
    /// CSeq and are not counted.
    pub fn on_request(&mut self, req: &SipMessage) -> Result<(), DialogError> {
        let method = req.method().unwrap_or(Method::Other);
        if matches!(method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let seq = req.cseq()?.seq;
        if let Some(last) = self.remote_seq
            && seq < last
        {
            return Err(DialogError::OutOfOrder {
                expected_above: last,
                got: seq,
            });
        }
        self.remote_seq = Some(seq);
        if matches!(method, Method::Invite | Method::Update)
            && let Ok(target) = contact_uri(req)
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// The Request-URI and Route headers for the next request (§12.2.1.1): with a loose
    /// first route (`;lr`) the Request-URI is the remote target and Route is the route set;
    /// with a strict first route (RFC 2543) the Request-URI is that route and the remote
    /// target goes last in Route.
    pub fn request_target(&self) -> (String, Vec<String>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let first_na = NameAddr::parse(first);
        let loose = first_na
            .as_ref()
            .is_some_and(|n| n.uri.sip().is_some_and(|u| u.params.has("lr")));
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        let uri = first_na.map_or_else(|| first.clone(), |n| n.uri_text.to_string());
        let mut routes: Vec<String> = self.route_set[1..].to_vec();
        routes.push(format!("<{}>", self.remote_target));
        (uri, routes)
    }

    /// Builds the next request in the dialog. `via` is our complete Via value (with a fresh
    /// branch). ACK and CANCEL reuse the current local sequence number (the INVITE's,
    /// §13.2.2.4, §9.1); every other method increments it first.
    pub fn build_request(
        &mut self,
        method: Method,
        via: &str,
        contact: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Bytes {
        let seq = if matches!(method, Method::Ack | Method::Cancel) {
            self.local_seq
        } else {
            self.local_seq += 1;
            self.local_seq
        };
        let name = method.as_str().unwrap_or("OPTIONS");
        let (ruri, routes) = self.request_target();
        let mut out = BytesMut::with_capacity(512 + body.map_or(0, |(_, b)| b.len()));
        let _ = write!(
            out,
            "{name} {ruri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
        );
        let _ = write!(
            out,
            "From: {};tag={}\r\n",
            self.local_uri, self.id.local_tag
        );
        let _ = write!(
            out,
            "To: {};tag={}\r\n",
            self.remote_uri, self.id.remote_tag
        );
        let _ = write!(
            out,
            "Call-ID: {}\r\nCSeq: {seq} {name}\r\n",
            self.id.call_id
        );
        for r in &routes {
            let _ = write!(out, "Route: {r}\r\n");
        }
        if let Some(c) = contact {
            let _ = write!(out, "Contact: {c}\r\n");
        }
        match body {
            Some((ct, b)) => {
                let _ = write!(
                    out,
                    "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                );
                out.put_slice(b);
            }
            None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> SipMessage {
        SipMessage::parse(s.replace('\n', "\r\n").into_bytes()).unwrap()
    }

    fn invite() -> SipMessage {
        msg("INVITE sip:bob@switch.example.com SIP/2.0\n\
             Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\n\
             Via: SIP/2.0/UDP alice-pc.example.com;branch=z9hG4bKa\n\
             Record-Route: <sip:p2.example.com;lr>\n\
             Record-Route: <sip:p1.example.com;lr>\n\
             From: \"Alice\" <sip:alice@example.com>;tag=a1\n\
             To: <sip:bob@switch.example.com>\n\
             Call-ID: c1@alice\nCSeq: 10 INVITE\n\
             Contact: <sip:alice@192.0.2.1:5060>\nContent-Length: 0\n\n")
    }

    #[test]
    fn uas_dialog_keeps_record_route_order() {
        let d = Dialog::uas(&invite(), "b1", DialogState::Confirmed).unwrap();
        assert_eq!(
            d.id,
            DialogId {
                call_id: "c1@alice".into(),
                local_tag: "b1".into(),
                remote_tag: "a1".into()
            }
        );
        assert_eq!(
            d.route_set,
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        assert_eq!(d.remote_target, "sip:alice@192.0.2.1:5060");
        assert_eq!(d.remote_seq, Some(10));
        assert_eq!(d.remote_uri, "\"Alice\" <sip:alice@example.com>");
        // A BYE from us goes to the remote target via the route set (loose routing).
        let mut d = d;
        let bye = SipMessage::parse(d.build_request(
            Method::Bye,
            "SIP/2.0/UDP sw;branch=z9hG4bKx",
            None,
            None,
        ))
        .unwrap();
        assert_eq!(bye.request_uri(), Some("sip:alice@192.0.2.1:5060"));
        assert_eq!(
            bye.values(crate::sip::HeaderName::Route)
                .collect::<Vec<_>>(),
            d.route_set
        );
        assert_eq!(bye.from_header().unwrap().tag(), Some("b1"));
        assert_eq!(bye.to_header().unwrap().tag(), Some("a1"));
        assert_eq!(bye.cseq().unwrap().seq, 1);
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_tracks_cseq() {
        let req = msg(
            "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP sw;branch=z9hG4bK1\n\
                       From: <sip:sw@example.com>;tag=s1\nTo: <sip:bob@example.com>\nCall-ID: c2\n\
                       CSeq: 5 INVITE\nContact: <sip:sw@192.0.2.9>\nContent-Length: 0\n\n",
        );
        let ok = msg("SIP/2.0 200 OK\nVia: SIP/2.0/UDP sw;branch=z9hG4bK1\n\
                      Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\n\
                      From: <sip:sw@example.com>;tag=s1\nTo: <sip:bob@example.com>;tag=b9\nCall-ID: c2\n\
                      CSeq: 5 INVITE\nContact: <sip:bob@192.0.2.4>\nContent-Length: 0\n\n");
        let mut d = Dialog::uac(&req, &ok).unwrap();
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(
            d.route_set,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!((d.local_seq, d.id.remote_tag.as_str()), (5, "b9"));
        let ack = SipMessage::parse(d.build_request(
            Method::Ack,
            "SIP/2.0/UDP sw;branch=z9hG4bK2",
            None,
            None,
        ))
        .unwrap();
        assert_eq!(ack.cseq().unwrap().seq, 5, "ACK reuses the INVITE's CSeq");
        let bye = SipMessage::parse(d.build_request(
            Method::Bye,
            "SIP/2.0/UDP sw;branch=z9hG4bK3",
            None,
            None,
        ))
        .unwrap();
        assert_eq!(bye.cseq().unwrap().seq, 6);
    }

    #[test]
    fn strict_route_puts_remote_target_last() {
        let mut d = Dialog::uas(&invite(), "b1", DialogState::Confirmed).unwrap();
        d.route_set = vec![
            "<sip:strict.example.com>".into(),
            "<sip:p1.example.com;lr>".into(),
        ];
        let (ruri, routes) = d.request_target();
        assert_eq!(ruri, "sip:strict.example.com");
        assert_eq!(
            routes,
            ["<sip:p1.example.com;lr>", "<sip:alice@192.0.2.1:5060>"]
        );
    }

    #[test]
    fn in_dialog_requests_are_ordered_and_refresh_the_target() {
        let mut d = Dialog::uas(&invite(), "b1", DialogState::Confirmed).unwrap();
        let reinvite = msg(
            "INVITE sip:bob@192.0.2.2 SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK9\n\
                            From: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@switch.example.com>;tag=b1\n\
                            Call-ID: c1@alice\nCSeq: 11 INVITE\nContact: <sip:alice@198.51.100.7>\nContent-Length: 0\n\n",
        );
        assert_eq!(DialogId::of_incoming_request(&reinvite), Some(d.id.clone()));
        d.on_request(&reinvite).unwrap();
        assert_eq!(
            (d.remote_seq, d.remote_target.as_str()),
            (Some(11), "sip:alice@198.51.100.7")
        );
        let stale = msg(
            "BYE sip:bob@192.0.2.2 SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK8\n\
                         From: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@switch.example.com>;tag=b1\n\
                         Call-ID: c1@alice\nCSeq: 3 BYE\nContent-Length: 0\n\n",
        );
        assert_eq!(
            d.on_request(&stale),
            Err(DialogError::OutOfOrder {
                expected_above: 11,
                got: 3
            })
        );
    }

    #[test]
    fn early_dialog_confirmed_by_2xx() {
        let req = invite();
        let ringing = msg(
            "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\n\
                           From: \"Alice\" <sip:alice@example.com>;tag=a1\nTo: <sip:bob@switch.example.com>;tag=e1\n\
                           Call-ID: c1@alice\nCSeq: 10 INVITE\nContact: <sip:bob@10.0.0.1>\nContent-Length: 0\n\n",
        );
        let mut d = Dialog::uac(&req, &ringing).unwrap();
        assert_eq!(d.state, DialogState::Early);
        let ok = msg(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\n\
                      From: \"Alice\" <sip:alice@example.com>;tag=a1\nTo: <sip:bob@switch.example.com>;tag=e1\n\
                      Call-ID: c1@alice\nCSeq: 10 INVITE\nContact: <sip:bob@10.0.0.2>\nContent-Length: 0\n\n",
        );
        d.confirm(&ok).unwrap();
        assert_eq!(
            (d.state, d.remote_target.as_str()),
            (DialogState::Confirmed, "sip:bob@10.0.0.2")
        );
        let no_tag = msg(
            "SIP/2.0 100 Trying\nVia: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\n\
                          From: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@switch.example.com>\n\
                          Call-ID: c1@alice\nCSeq: 10 INVITE\nContact: <sip:bob@10.0.0.1>\nContent-Length: 0\n\n",
        );
        assert_eq!(
            Dialog::uac(&req, &no_tag).unwrap_err(),
            DialogError::NoRemoteTag
        );
    }
}
