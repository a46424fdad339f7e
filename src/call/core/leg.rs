//! One SIP leg of a call, as a back-to-back user agent sees it: the caller's INVITE that we
//! answer (UAS), or an INVITE we send to a callee (UAC), and the dialog each sets up.
//!
//! Plain data plus the requests and responses a leg writes; the call core decides when.
//! Nothing here does I/O.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use crate::registrar::location::AorKey;
use crate::sip::dialog::{Dialog, DialogState};
use crate::sip::msg::typed::{NameAddr, SipUri};
use crate::sip::msg::{HeaderName, ResponseBuilder, SipMessage};
use crate::sip::sdp::Direction;
use crate::sip::transaction::TransactionKey;
use crate::sip::{Method, Peer, Transport};

/// Whether we answer the leg's INVITE or sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uas,
    Uac,
}

/// Where a leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// INVITE sent or received, nothing but 100 yet.
    Trying,
    /// A 180/183 went by.
    Ringing,
    /// 2xx sent or received.
    Answered,
    /// Final non-2xx, CANCEL, or BYE: nothing more happens on it.
    Ended,
}

/// Digest credentials for a callee that challenges (a carrier trunk, a `<Sip>` noun).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Only challenges for this realm are answered (none: any realm).
    pub realm: Option<String>,
}

/// Our own address as written in Via and Contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// `host:port` (IPv6 in brackets).
    pub hostport: String,
}

/// The host part of `server.public_address` (`host`, `host:port`, a bare IPv6 address or
/// `[v6]:port`), without port or brackets: what SDP and REST URLs need of it.
pub fn public_host(public: &str) -> &str {
    let p = public.trim();
    if let Some(rest) = p.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match p.matches(':').count() {
        1 => p.split_once(':').map_or(p, |(h, _)| h),
        // No port, or a bare IPv6 address.
        _ => p,
    }
}

impl Local {
    pub fn new(public: Option<&str>, bound: SocketAddr) -> Local {
        let hostport = match public {
            Some(p) if p.contains(':') && !p.starts_with('[') && p.parse::<IpAddr>().is_ok() => {
                format!("[{p}]:{}", bound.port())
            }
            Some(p)
                if p.rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok()) =>
            {
                p.to_string()
            }
            Some(p) => format!("{p}:{}", bound.port()),
            None => bound.to_string(),
        };
        Local { hostport }
    }

    /// A Via value with a fresh branch (RFC 3581 rport asked for).
    pub fn via(&self, transport: Transport, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.via_name(),
            self.hostport
        )
    }

    /// Our Contact for a leg on `transport`.
    pub fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:switchboard@{}>", self.hostport),
            t => format!("<sip:switchboard@{};transport={}>", self.hostport, t.name()),
        }
    }
}

/// One leg.
#[derive(Debug)]
pub struct Leg {
    /// The CallSid of this leg (the call's own for the caller; a child's for a Dial leg).
    pub sid: String,
    pub role: Role,
    /// The INVITE: as received (UAS) or as last sent (UAC).
    pub invite: SipMessage,
    /// The INVITE's transaction: server (UAS) or client (UAC).
    pub invite_key: TransactionKey,
    /// Where requests inside the dialog go.
    pub peer: Peer,
    /// Our tag: the To tag we answer with (UAS), the From tag we sent (UAC).
    pub local_tag: String,
    pub dialog: Option<Dialog>,
    pub state: LegState,
    /// The final status of the INVITE.
    pub final_code: Option<u16>,
    pub answered_at: Option<Instant>,
    /// UAS: our 2xx, retransmitted over UDP until the ACK (RFC 3261 §13.3.1.4).
    pub unacked_2xx: Option<Unacked>,
    /// UAC: our ACK for the 2xx, sent again for each 2xx retransmission (§13.2.2.4).
    pub ack: Option<Bytes>,
    /// UAC: credentials for a challenge, and whether we answered one already.
    pub credentials: Option<Credentials>,
    pub auth_tried: bool,
    /// UAC: CANCEL sent (or due as soon as a provisional arrives, §9.1).
    pub cancel_sent: bool,
    pub cancel_wanted: bool,
    /// UAC: a client identity dialled: it shows busy while answered.
    pub client: Option<AorKey>,
    /// The leg's SDP session with us and its relay endpoint.
    pub media: Option<super::sdp::LegSdp>,
    /// Our re-INVITE refused with 491 (glare): when to try again, asking for what.
    pub reinvite_retry: Option<(Instant, Direction)>,
}

/// A 2xx waiting for its ACK.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub bytes: Bytes,
    pub next: Instant,
    pub interval: std::time::Duration,
    pub give_up: Instant,
}

impl Leg {
    /// The caller's leg, from the INVITE we received.
    pub fn uas(sid: String, invite: SipMessage, key: TransactionKey, from: Peer) -> Leg {
        Leg {
            sid,
            role: Role::Uas,
            invite,
            invite_key: key,
            peer: from,
            local_tag: crate::ids::tag(),
            dialog: None,
            state: LegState::Trying,
            final_code: None,
            answered_at: None,
            unacked_2xx: None,
            ack: None,
            credentials: None,
            auth_tried: false,
            cancel_sent: false,
            cancel_wanted: false,
            client: None,
            media: None,
            reinvite_retry: None,
        }
    }

    /// A leg we call: `invite` as built by [`build_invite`] (its From tag is `local_tag`).
    pub fn uac(
        sid: String,
        invite: SipMessage,
        key: TransactionKey,
        peer: Peer,
        local_tag: String,
    ) -> Leg {
        Leg {
            role: Role::Uac,
            local_tag,
            ..Leg::uas(sid, invite, key, peer)
        }
    }

    /// Whether the leg can still be answered or cancelled.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, LegState::Trying | LegState::Ringing)
    }

    /// Whether a message belongs to this leg's dialog (by Call-ID and tags).
    pub fn owns_request(&self, req: &SipMessage) -> bool {
        let Ok(call_id) = req.call_id() else {
            return false;
        };
        if call_id != self.invite.call_id().unwrap_or_default() {
            return false;
        }
        // A request from the peer carries our tag as its To tag.
        req.to_header()
            .ok()
            .and_then(|t| t.tag().map(|t| t == self.local_tag))
            .unwrap_or(false)
    }

    /// A response to our (UAS) INVITE.
    pub fn response(
        &self,
        code: u16,
        reason: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Bytes)>,
        server: &str,
    ) -> Bytes {
        let mut b = ResponseBuilder::new(&self.invite, code)
            .received_from(self.peer.addr)
            .header("Server", server.to_string());
        if code > 100 {
            b = b.to_tag(&self.local_tag);
        }
        if !reason.is_empty() {
            b = b.reason(reason);
        }
        for (n, v) in headers {
            b = b.header(n, v.clone());
        }
        if let Some((ct, body)) = body {
            b = b.body(ct, body);
        }
        b.build()
    }
}

/// What an INVITE we originate says.
#[derive(Debug, Clone)]
pub struct InviteSpec<'a> {
    /// Request-URI.
    pub uri: &'a str,
    /// To header (name-addr).
    pub to: &'a str,
    /// From header without tag (name-addr).
    pub from: &'a str,
    pub from_tag: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub max_forwards: u8,
    /// Route headers, in order (a client's Path).
    pub routes: &'a [Box<str>],
    pub transport: Transport,
    pub body: Option<(&'a str, &'a [u8])>,
    pub authorization: Option<(&'static str, &'a str)>,
    pub server: &'a str,
}

/// Writes an INVITE (RFC 3261 §8.1.1) with a fresh branch.
pub fn build_invite(spec: &InviteSpec<'_>, local: &Local) -> SipMessage {
    let mut out = BytesMut::with_capacity(768 + spec.body.map_or(0, |(_, b)| b.len()));
    let branch = crate::ids::branch();
    let _ = write!(
        out,
        "INVITE {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: {}\r\n",
        spec.uri,
        local.via(spec.transport, &branch),
        spec.max_forwards
    );
    for r in spec.routes {
        let _ = write!(out, "Route: {r}\r\n");
    }
    let _ = write!(
        out,
        "From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\nContact: {}\r\n",
        spec.from,
        spec.from_tag,
        spec.to,
        spec.call_id,
        spec.cseq,
        local.contact(spec.transport)
    );
    if let Some((name, value)) = spec.authorization {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(
        out,
        "Allow: {}\r\nUser-Agent: {}\r\n",
        crate::sip::ALLOW,
        spec.server
    );
    match spec.body {
        Some((ct, body)) => {
            let _ = write!(
                out,
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            out.put_slice(body);
        }
        None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
    }
    // We wrote it from validated parts; a parse failure would be our bug.
    SipMessage::parse(out.freeze()).expect("an INVITE we wrote parses")
}

/// The INVITE again after a challenge (RFC 3261 §22.2): same Call-ID, From tag and body,
/// CSeq plus one, a fresh Via branch, and the credentials in `auth_header`.
pub fn reinvite_with(
    invite: &SipMessage,
    auth_header: &str,
    credentials: &str,
    local: &Local,
) -> SipMessage {
    let transport = invite
        .top_via()
        .ok()
        .and_then(|v| Transport::from_via_name(v.transport))
        .unwrap_or(Transport::Udp);
    let mut out = BytesMut::with_capacity(invite.as_bytes().len() + credentials.len() + 64);
    let _ = write!(
        out,
        "INVITE {} SIP/2.0\r\n",
        invite.request_uri().unwrap_or_default()
    );
    let seq = invite.cseq().map_or(1, |c| c.seq + 1);
    for h in invite.headers() {
        let name = invite.raw_name(h);
        let value = invite.value(h);
        match h.name {
            HeaderName::Via => {
                let _ = write!(
                    out,
                    "Via: {}\r\n",
                    local.via(transport, &crate::ids::branch())
                );
            }
            HeaderName::CSeq => {
                let _ = write!(out, "CSeq: {seq} INVITE\r\n");
            }
            HeaderName::ContentLength => {}
            _ if name.eq_ignore_ascii_case("Authorization")
                || name.eq_ignore_ascii_case("Proxy-Authorization") => {}
            _ => {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
    }
    let body = invite.body();
    let _ = write!(
        out,
        "{auth_header}: {credentials}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.put_slice(&body);
    SipMessage::parse(out.freeze()).expect("an INVITE we wrote parses")
}

/// The next request in a leg's dialog with a fresh Via.
pub fn in_dialog(
    dialog: &mut Dialog,
    method: Method,
    local: &Local,
    transport: Transport,
    body: Option<(&str, &[u8])>,
) -> SipMessage {
    let via = local.via(transport, &crate::ids::branch());
    let contact =
        matches!(method, Method::Invite | Method::Update).then(|| local.contact(transport));
    let bytes = dialog.build_request(method, &via, contact.as_deref(), body);
    SipMessage::parse(bytes).expect("a request we wrote parses")
}

/// Creates the UAS dialog for the caller's leg as we answer it.
pub fn uas_dialog(leg: &Leg, state: DialogState) -> Option<Dialog> {
    Dialog::uas(&leg.invite, &leg.local_tag, state).ok()
}

/// The body and Content-Type of a message, if it has a body.
pub fn body_of(msg: &SipMessage) -> Option<(String, Bytes)> {
    if msg.body_len() == 0 {
        return None;
    }
    let ct = msg
        .first(HeaderName::ContentType)
        .unwrap_or("application/sdp")
        .to_string();
    Some((ct, msg.body()))
}

/// Where to send requests for a SIP URI: its host if it is an IP literal (default port
/// 5060), for `sip:` over UDP. Host names are resolved by the caller.
pub fn uri_addr(uri: &str) -> Option<SocketAddr> {
    let u = SipUri::parse(uri)?;
    let ip = u.host.ip()?;
    Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
}

/// The host (and port) of a SIP URI, for resolution by name.
pub fn uri_hostport(uri: &str) -> Option<(String, u16)> {
    let u = SipUri::parse(uri)?;
    let host = match u.host.ip() {
        Some(ip) => ip.to_string(),
        None => u.host.to_string(),
    };
    Some((host, u.port.unwrap_or(5060)))
}

/// Escapes a user part for a SIP URI (RFC 3261 §25.1 `user`): unreserved and
/// user-unreserved characters stay (so `+15550100001` is written as is), the rest become
/// `%XX`.
pub fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The user part of a URI in a name-addr (`"Alice" <sip:+1555@x>` → `+1555`).
pub fn user_of(name_addr: &str) -> Option<String> {
    let n = NameAddr::parse(name_addr)?;
    let u = n.uri.sip()?;
    u.user
        .map(|u| crate::percent::decode(u).map_or_else(|| u.to_string(), |c| c.into_owned()))
}

/// The Twilio spelling of a caller or callee: `client:alice` for a client identity, the
/// number for telephone numbers, otherwise the SIP URI.
pub fn twilio_party(name_addr: &str) -> String {
    match NameAddr::parse(name_addr) {
        Some(n) => match n.uri.sip().and_then(|u| u.user) {
            Some(user) => {
                crate::percent::decode(user).map_or_else(|| user.to_string(), |c| c.into_owned())
            }
            None => n.uri_text.to_string(),
        },
        None => name_addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hostport() {
        let b: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(Local::new(None, b).hostport, "127.0.0.1:5060");
        assert_eq!(
            Local::new(Some("203.0.113.1"), b).hostport,
            "203.0.113.1:5060"
        );
        assert_eq!(
            Local::new(Some("sip.example.com:5070"), b).hostport,
            "sip.example.com:5070"
        );
        assert_eq!(
            Local::new(Some("2001:db8::1"), b).hostport,
            "[2001:db8::1]:5060"
        );
    }

    #[test]
    fn invite_has_what_8_1_1_asks() {
        let local = Local::new(None, "127.0.0.1:5060".parse().unwrap());
        let routes: Vec<Box<str>> = vec!["<sip:edge.example.com;lr>".into()];
        let inv = build_invite(
            &InviteSpec {
                uri: "sip:alice@10.0.0.2:5062",
                to: "<sip:alice@switchboard.local>",
                from: "<sip:+15550100002@127.0.0.1>",
                from_tag: "abc",
                call_id: "cid-1",
                cseq: 1,
                max_forwards: 69,
                routes: &routes,
                transport: Transport::Udp,
                body: Some(("application/sdp", b"v=0\r\n")),
                authorization: None,
                server: "Switchboard",
            },
            &local,
        );
        assert_eq!(inv.method(), Some(Method::Invite));
        assert_eq!(inv.max_forwards().unwrap(), Some(69));
        assert!(
            inv.top_via()
                .unwrap()
                .branch()
                .unwrap()
                .starts_with("z9hG4bK")
        );
        assert_eq!(inv.values(HeaderName::Route).count(), 1);
        assert_eq!(inv.body_len(), 5);
        assert_eq!(inv.from_header().unwrap().tag(), Some("abc"));
    }

    #[test]
    fn parties() {
        assert_eq!(twilio_party("<sip:+15550100001@10.0.0.1>"), "+15550100001");
        assert_eq!(escape_user("+1 555@x"), "+1%20555%40x");
        assert_eq!(twilio_party("\"A\" <sip:%2B1555@x>;tag=1"), "+1555");
        assert_eq!(
            uri_addr("sip:127.0.0.1:5080"),
            Some("127.0.0.1:5080".parse().unwrap())
        );
        assert_eq!(
            uri_addr("sip:bob@10.0.0.9"),
            Some("10.0.0.9:5060".parse().unwrap())
        );
        assert_eq!(uri_addr("sip:bob@example.com"), None);
    }
}
