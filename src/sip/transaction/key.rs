//! Transaction matching (RFC 3261 §17.1.3 for clients, §17.2.3 for servers).
//!
//! A key owns its fields packed into one string (one allocation per key), so it can live in
//! a map and in TU events independently of the message buffer it was derived from.
//!
//! Comparison follows RFC 3261 §7.3.1: Via parameter values and host names are
//! case-insensitive, so the branch and sent-by are stored lowercased; methods (§7.1) and
//! Call-IDs (§20.8) are case-sensitive and kept as written.

use std::fmt::{self, Write as _};

use crate::sip::method::Method;
use crate::sip::msg::SipMessage;
use crate::sip::msg::typed::Via;

/// Separates the packed fields; it cannot occur in any of them after parsing.
const SEP: char = '\u{1f}';

/// Identifies one transaction, on the client or the server side.
///
/// * RFC 3261 server keys (§17.2.3): the top Via branch (with the `z9hG4bK` magic cookie),
///   its sent-by, and the method, where ACK is folded into INVITE and CANCEL stays its own
///   method.
/// * RFC 2543 server keys (§17.2.3, last paragraphs), for requests without the magic
///   cookie: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via and method.
/// * Client keys (§17.1.3): the branch we put in the top Via and the CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    role: Role,
    scheme: Scheme,
    /// The fields joined by [`SEP`]; the method is always last.
    parts: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    /// Branch-based (RFC 3261).
    Branch,
    /// Field-based (RFC 2543).
    Legacy,
}

impl TransactionKey {
    /// The key of the server transaction a request belongs to (ACK maps to INVITE), or
    /// `None` when the headers it needs do not parse.
    pub fn server(request: &SipMessage) -> Option<TransactionKey> {
        let method = match request.method()? {
            Method::Ack => "INVITE",
            _ => request.method_str()?,
        };
        Self::server_as(request, method, None)
    }

    /// The key a request would have if its method were `method`, optionally with another
    /// To tag (for the RFC 2543 rules that match CANCEL and ACK to an INVITE).
    pub(crate) fn server_as(
        request: &SipMessage,
        method: &str,
        to_tag: Option<&str>,
    ) -> Option<TransactionKey> {
        let via = request.top_via().ok()?;
        let mut parts = String::with_capacity(96);
        let scheme = if let Some(branch) = via.rfc3261_branch() {
            parts.push_str(branch);
            parts.push(SEP);
            push_sent_by(&mut parts, &via);
            parts.make_ascii_lowercase();
            Scheme::Branch
        } else {
            let uri = request.request_uri()?;
            let to = request.to_header().ok()?;
            let to_tag = to_tag.or(to.tag()).unwrap_or("");
            let from = request.from_header().ok()?;
            let call_id = request.call_id().ok()?;
            let seq = request.cseq().ok()?.seq;
            let _ = write!(
                parts,
                "{uri}{SEP}{to_tag}{SEP}{}{SEP}{call_id}{SEP}{seq}{SEP}",
                from.tag().unwrap_or("")
            );
            push_legacy_via(&mut parts, &via);
            Scheme::Legacy
        };
        parts.push(SEP);
        parts.push_str(method);
        Some(TransactionKey {
            role: Role::Server,
            scheme,
            parts: parts.into_boxed_str(),
        })
    }

    /// The key of the client transaction a response belongs to: its top Via branch and
    /// CSeq method. `None` when either does not parse.
    pub fn client_for_response(response: &SipMessage) -> Option<TransactionKey> {
        let via = response.top_via().ok()?;
        let cseq = response.cseq().ok()?;
        Some(Self::client(via.branch()?, cseq.method_str))
    }

    /// The key of the client transaction a request of ours creates (its top Via branch and
    /// its method), or `None` when it has no branch.
    pub fn client_for_request(request: &SipMessage) -> Option<TransactionKey> {
        let via = request.top_via().ok()?;
        Some(Self::client(via.branch()?, request.method_str()?))
    }

    fn client(branch: &str, method: &str) -> TransactionKey {
        let mut parts = String::with_capacity(branch.len() + 1 + method.len());
        parts.push_str(branch);
        parts.make_ascii_lowercase();
        parts.push(SEP);
        parts.push_str(method);
        TransactionKey {
            role: Role::Client,
            scheme: Scheme::Branch,
            parts: parts.into_boxed_str(),
        }
    }

    /// Whether this is a client transaction's key.
    pub fn is_client(&self) -> bool {
        self.role == Role::Client
    }

    /// Whether the key uses RFC 3261 branch matching (as opposed to the RFC 2543 fallback).
    pub fn is_rfc3261(&self) -> bool {
        self.scheme == Scheme::Branch
    }

    /// The transaction's method (INVITE for an ACK's key).
    pub fn method(&self) -> &str {
        self.parts.rsplit(SEP).next().unwrap_or("")
    }

    /// The branch (lowercased) of a branch-matched key.
    pub fn branch(&self) -> Option<&str> {
        (self.scheme == Scheme::Branch).then(|| self.parts.split(SEP).next().unwrap_or(""))
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.is_client() { "client" } else { "server" };
        let scheme = if self.is_rfc3261() { "" } else { " rfc2543" };
        write!(f, "{role}{scheme}")?;
        for part in self.parts.split(SEP) {
            write!(f, " {part}")?;
        }
        Ok(())
    }
}

fn push_sent_by(out: &mut String, via: &Via<'_>) {
    let _ = write!(out, "{}", via.host);
    if let Some(port) = via.port {
        let _ = write!(out, ":{port}");
    }
}

/// The top Via as compared by RFC 2543 matching: transport, sent-by and the parameters a
/// retransmission repeats (`branch`, which RFC 2543 allowed without the cookie). `received`
/// and `rport` are ours to add hop by hop, so they are left out.
fn push_legacy_via(out: &mut String, via: &Via<'_>) {
    let start = out.len();
    let _ = write!(out, "{}/", via.transport);
    push_sent_by(out, via);
    if let Some(branch) = via.branch() {
        let _ = write!(out, ";branch={branch}");
    }
    out[start..].make_ascii_lowercase();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: &str, via: &str, cseq: &str, to: &str) -> SipMessage {
        let text = format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@example.com>;tag=f1\r\n\
             To: <sip:bob@example.com>{to}\r\nCall-ID: cid-1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.into_bytes()).expect("test message parses")
    }

    const VIA: &str = "SIP/2.0/UDP Host.Example.com:5060;branch=z9hG4bKAbC";

    #[test]
    fn rfc3261_ack_matches_invite_and_cancel_does_not() {
        let invite = TransactionKey::server(&msg("INVITE", VIA, "1 INVITE", "")).unwrap();
        let ack = TransactionKey::server(&msg("ACK", VIA, "1 ACK", ";tag=t")).unwrap();
        let cancel = TransactionKey::server(&msg("CANCEL", VIA, "1 CANCEL", "")).unwrap();
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.method(), "CANCEL");
        assert!(invite.is_rfc3261() && !invite.is_client());
        assert_eq!(invite.branch(), Some("z9hg4bkabc"));
        // Branch and host compare case-insensitively (§7.3.1); the port must match.
        let lower = "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKabc";
        assert_eq!(
            invite,
            TransactionKey::server(&msg("INVITE", lower, "1 INVITE", "")).unwrap()
        );
        let other_port = "SIP/2.0/UDP host.example.com:5070;branch=z9hG4bKabc";
        assert_ne!(
            invite,
            TransactionKey::server(&msg("INVITE", other_port, "1 INVITE", "")).unwrap()
        );
    }

    #[test]
    fn rfc2543_fallback_uses_fields() {
        let via = "SIP/2.0/UDP 192.0.2.4;branch=390skdjuw";
        let invite = TransactionKey::server(&msg("INVITE", via, "7 INVITE", "")).unwrap();
        assert!(!invite.is_rfc3261());
        assert_eq!(invite.branch(), None);
        assert_eq!(
            invite,
            TransactionKey::server(&msg("INVITE", via, "7 INVITE", "")).unwrap()
        );
        assert_ne!(
            invite,
            TransactionKey::server(&msg("INVITE", via, "8 INVITE", "")).unwrap()
        );
        // The ACK carries the To tag of our response, so it only matches with that tag.
        let ack = msg("ACK", via, "7 ACK", ";tag=ours");
        assert_ne!(invite, TransactionKey::server(&ack).unwrap());
        let invite_msg = msg("INVITE", via, "7 INVITE", "");
        assert_eq!(
            TransactionKey::server_as(&invite_msg, "INVITE", Some("ours")).unwrap(),
            TransactionKey::server(&ack).unwrap()
        );
    }

    #[test]
    fn client_keys_use_branch_and_cseq_method() {
        let req = msg("INVITE", VIA, "1 INVITE", "");
        let resp = SipMessage::parse(
            &b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKabc\r\nCSeq: 1 INVITE\r\n\
               Content-Length: 0\r\n\r\n"[..],
        )
        .unwrap();
        let key = TransactionKey::client_for_request(&req).unwrap();
        assert_eq!(key, TransactionKey::client_for_response(&resp).unwrap());
        assert!(key.is_client());
        assert_ne!(key, TransactionKey::server(&req).unwrap());
        assert_eq!(key.to_string(), "client z9hg4bkabc INVITE");
    }
}
