//! What the call tests' user agents do over and over: register with a token, wait for a
//! request, answer one, and send ACK or BYE in the dialog the switch's 2xx set up. Written
//! by hand like the rest of the harness, so it never shares a bug with the switch.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Msg, Switch, Udp, request, switchboard};

/// The sample config's realm.
pub const REALM: &str = "switchboard.local";

/// A token for `identity` minted by `switchboard token` with the sample config, plus any
/// `extra` arguments (`--incoming`, `--outgoing AP…`, …).
pub fn token_with(identity: &str, extra: &[&str]) -> String {
    token_from(&super::default_config(), identity, extra)
}

/// `switchboard token -c config --identity identity extra…`: a token minted under another
/// config than the sample's.
pub fn token_from(config: &std::path::Path, identity: &str, extra: &[&str]) -> String {
    let out = switchboard()
        .args(["token", "-c"])
        .arg(config)
        .args(["--identity", identity])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A Twilio-shaped access token for `identity` with the incoming grant, HS256-signed
/// here with the sample config's API key, as a helper library would (for runs that need
/// hundreds: `token` starts a process per token).
pub fn mint(identity: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = r#"{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}"#;
    let claims = serde_json::json!({
        "jti": format!("SK00000000000000000000000000000001-{now}-{identity}"),
        "iss": "SK00000000000000000000000000000001",
        "sub": "AC00000000000000000000000000000001",
        "iat": now,
        "exp": now + 3600,
        "grants": {"identity": identity, "voice": {"incoming": {"allow": true}}},
    });
    let signing = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"demo-api-key-secret-change-me")
        .expect("any key length");
    mac.update(signing.as_bytes());
    format!("{signing}.{}", b64(&mac.finalize().into_bytes()))
}

/// A token that lets `identity` receive calls.
pub fn token(identity: &str) -> String {
    token_with(identity, &["--incoming"])
}

/// How long a REGISTER may take to be answered.
const REGISTER_WAIT: Duration = Duration::from_secs(5);

/// A REGISTER of `identity` with a bearer token, from `local` over `transport`.
pub fn bearer_register(identity: &str, local: SocketAddr, transport: &str) -> String {
    let to = format!("<sip:{identity}@{REALM}>");
    let from = format!("{to};tag={}", super::unique("f"));
    let auth = format!("Bearer {}", token(identity));
    request(
        "REGISTER",
        &format!("sip:{REALM}"),
        local,
        transport,
        &[("To", &to), ("From", &from), ("Authorization", &auth)],
        "",
    )
}

/// Registers `identity` from `ua` with a bearer token; returns once the switch said 200.
pub fn register(ua: &Udp, identity: &str) {
    let req = bearer_register(identity, ua.local_addr(), "UDP");
    ua.send(&req);
    let (resp, _) = ua
        .recv_final(&call_id_of(&req), REGISTER_WAIT)
        .expect("REGISTER answered");
    assert_eq!(resp.status(), Some(200), "{}", resp.text());
}

/// A carrier's INVITE from `ua` (as +15557654321) to `number` at the switch, offering `sdp`.
pub fn carrier_invite(sw: &Switch, ua: &Udp, number: &str, sdp: &str) -> String {
    let ruri = format!("sip:{number}@{}", sw.udp_addr());
    let from = format!(
        "<sip:+15557654321@{}>;tag={}",
        ua.local_addr().ip(),
        super::unique("f")
    );
    request(
        "INVITE",
        &ruri,
        ua.local_addr(),
        "UDP",
        &[("From", &from)],
        sdp,
    )
}

/// The Call-ID of a request we wrote.
pub fn call_id_of(req: &str) -> String {
    Msg::parse(req.as_bytes())
        .header("Call-ID")
        .expect("Call-ID")
        .to_string()
}

/// Waits for a request with this method, skipping anything else; panics after `within`.
pub fn expect_request(ua: &Udp, method: &str, within: Duration) -> Msg {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = ua
            .recv_msg(left)
            .unwrap_or_else(|| panic!("no {method} within {within:?}"));
        if m.method() == Some(method) {
            return m;
        }
    }
}

/// Whether no request with this method arrives within `within`.
pub fn no_request(ua: &Udp, method: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while let Some(m) = ua.recv_msg(deadline.saturating_duration_since(Instant::now())) {
        if m.method() == Some(method) {
            return false;
        }
    }
    true
}

/// A UA's response to a request it received: Via/From/To/Call-ID/CSeq copied, a To tag
/// if it had none, our Contact, and `sdp` as the body if given.
pub fn reply(
    req: &Msg,
    code: u16,
    reason: &str,
    to_tag: &str,
    contact: SocketAddr,
    sdp: Option<&str>,
) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    let to = req.header("To").unwrap();
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:ua@{contact}>\r\n",
        req.header("From").unwrap(),
        req.header("Call-ID").unwrap(),
        req.header("CSeq").unwrap(),
    ));
    let body = sdp.unwrap_or("");
    if sdp.is_some() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

/// An in-dialog request from the caller (ACK, BYE, a re-INVITE without body) in the dialog
/// of its `invite` and the switch's 2xx `ok`: Request-URI = the 2xx's Contact, its To.
pub fn in_dialog(method: &str, invite: &str, ok: &Msg, ua: &Udp, cseq: u32) -> String {
    let inv = Msg::parse(invite.as_bytes());
    let contact = ok.header("Contact").expect("Contact in 2xx");
    let target = contact.trim_start_matches('<').split('>').next().unwrap();
    format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        ua.local_addr(),
        super::branch(),
        inv.header("From").unwrap(),
        ok.header("To").unwrap(),
        inv.header("Call-ID").unwrap(),
    )
}

/// 200 OK from `ua` to a request in a dialog (its To already has a tag).
pub fn ok_to(req: &Msg, ua: &Udp) -> String {
    reply(req, 200, "OK", "", ua.local_addr(), None)
}

/// A carrier call to `number` offering `phone`'s PCMU and telephone-event, answered by the
/// switch (the application runs a verb that answers) and ACKed: (INVITE, the 2xx).
pub fn answered_call(
    sw: &Switch,
    carrier: &Udp,
    number: &str,
    phone: &super::rtp::RtpPhone,
) -> (String, Msg) {
    use super::rtp::Codec;
    let sdp = phone.offer(&[Codec::Pcmu, Codec::TelephoneEvent]);
    let invite = carrier_invite(sw, carrier, number, &sdp);
    carrier.send(&invite);
    let (ok, _) = carrier
        .recv_final(&call_id_of(&invite), Duration::from_secs(5))
        .expect("an answer");
    assert_eq!(
        ok.status(),
        Some(200),
        "{}",
        String::from_utf8_lossy(&ok.raw)
    );
    carrier.send(in_dialog("ACK", &invite, &ok, carrier, 1));
    (invite, ok)
}
