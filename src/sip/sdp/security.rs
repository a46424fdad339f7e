//! The transport a browser's media section asks for: `UDP/TLS/RTP/SAVPF` with ICE (RFC
//! 8839), a DTLS fingerprint and role (RFC 8122, RFC 5763), `a=rtcp-mux` (RFC 5761) and
//! `a=mid` (RFC 9143). WebRTC endpoints accept nothing less: plain `RTP/AVP` and SDES
//! keys are refused by browsers.
//!
//! We are an ICE-lite agent (RFC 8445 §2.5, `a=ice-lite`): we offer one host candidate (the
//! relay's advertised address and the leg's port), answer the browser's checks and never
//! check ourselves, so the browser's candidates are not needed. The DTLS role follows RFC
//! 5763 §5: our offers say `actpass` (the browser, answering, picks `active`), our answers
//! say `passive` unless the offer demanded otherwise.
//!
//! This module reads and writes those lines only; what they mean for media is the relay's
//! (`media::webrtc`).

use std::net::SocketAddr;

use super::session::{Attribute, MediaDescription, Protocol, SessionDescription};

/// The header extension carrying the `a=mid` in RTP (RFC 9143 §15).
pub const MID_EXTENSION_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The id we offer the mid extension under (what browsers use too).
pub const OFFER_MID_EXTENSION_ID: u8 = 4;

/// The `a=mid` of the audio section in our offers.
pub const OFFER_MID: &str = "0";

/// Our side of a secure leg: what our offers and answers carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSecurity {
    /// `a=ice-ufrag` / `a=ice-pwd` (RFC 8839 §5.4: 4+ and 22+ ice-chars).
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// `a=fingerprint`, as `sha-256 AB:CD:...`.
    pub fingerprint: String,
    /// The host candidate: advertised address and the leg's port.
    pub candidate: SocketAddr,
}

/// `a=setup` (RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The endpoint opens the connection: the DTLS client.
    Active,
    /// The endpoint waits for it: the DTLS server.
    Passive,
    /// Either, as the answerer decides (offers only).
    ActPass,
    /// Not now.
    HoldConn,
}

impl Setup {
    /// The attribute's value, case-insensitive.
    pub fn parse(value: &str) -> Option<Setup> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    /// The value as written.
    pub const fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// The browser's side of a secure leg, read from its offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSecurity {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// The SHA-256 `a=fingerprint`, normalised to `sha-256 AB:CD:...`.
    pub fingerprint: String,
    /// `a=setup` (absent: `actpass`).
    pub setup: Setup,
    /// The section's `a=mid`, if any.
    pub mid: Option<String>,
    /// The id the remote gives the mid header extension, if it listed it.
    pub mid_extension: Option<u8>,
    /// `a=ssrc` ids (RFC 5576), the streams the remote will send.
    pub ssrcs: Vec<u32>,
}

impl RemoteSecurity {
    /// Whether we take the DTLS client role against this remote.
    pub fn we_are_dtls_client(&self) -> bool {
        self.setup == Setup::Passive
    }
}

/// A media section's attribute (falling back to the session level, where RFC 8839 and
/// RFC 8122 allow ICE credentials and fingerprints too).
fn value<'a>(
    session: &'a SessionDescription,
    m: &'a MediaDescription,
    name: &str,
) -> Option<&'a str> {
    find(&m.attributes, name).or_else(|| find(&session.attributes, name))
}

fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .and_then(|a| a.value.as_deref())
        .map(str::trim)
}

fn has(attributes: &[Attribute], name: &str) -> bool {
    attributes.iter().any(|a| a.name.eq_ignore_ascii_case(name))
}

/// What a `UDP/TLS/RTP/SAVPF` section says of its transport; `None` when it lacks what a
/// DTLS-SRTP leg cannot do without (ICE credentials, a SHA-256 fingerprint, rtcp-mux).
pub fn remote_security(
    session: &SessionDescription,
    m: &MediaDescription,
) -> Option<RemoteSecurity> {
    if m.protocol != Protocol::UdpTlsRtpSavpf || !has(&m.attributes, "rtcp-mux") {
        return None;
    }
    let ufrag = value(session, m, "ice-ufrag")?.to_string();
    let pwd = value(session, m, "ice-pwd")?.to_string();
    // Several fingerprints may be listed (RFC 8122 §5); SHA-256 is the one every browser
    // sends and the one our stack checks.
    let fingerprint = m
        .attributes
        .iter()
        .chain(&session.attributes)
        .filter(|a| a.name.eq_ignore_ascii_case("fingerprint"))
        .filter_map(|a| a.value.as_deref())
        .map(str::trim)
        .find(|v| {
            v.split_once(' ')
                .is_some_and(|(h, _)| h.eq_ignore_ascii_case("sha-256"))
        })?;
    let (hash, hex) = fingerprint.split_once(' ')?;
    let fingerprint = format!("{} {}", hash.to_ascii_lowercase(), hex.trim());
    if ufrag.is_empty() || pwd.is_empty() {
        return None;
    }
    let setup = value(session, m, "setup")
        .and_then(Setup::parse)
        .unwrap_or(Setup::ActPass);
    let mid = find(&m.attributes, "mid").map(str::to_string);
    let mid_extension = m
        .attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("extmap"))
        .filter_map(|a| a.value.as_deref())
        .find_map(|v| {
            let mut parts = v.split_whitespace();
            let id = parts.next()?.split('/').next()?.parse::<u8>().ok()?;
            (parts.next()? == MID_EXTENSION_URI && (1..=14).contains(&id)).then_some(id)
        });
    let mut ssrcs: Vec<u32> = m
        .attributes
        .iter()
        .filter(|a| a.name.eq_ignore_ascii_case("ssrc"))
        .filter_map(|a| a.value.as_deref())
        .filter_map(|v| v.split_whitespace().next()?.parse::<u32>().ok())
        .collect();
    ssrcs.dedup();
    Some(RemoteSecurity {
        ufrag,
        pwd,
        fingerprint,
        setup,
        mid,
        mid_extension,
        ssrcs,
    })
}

fn push(m: &mut MediaDescription, name: &str, value: Option<String>) {
    m.attributes.push(Attribute {
        name: name.to_string(),
        value,
    });
}

/// Turns our audio section into a secure one: ICE, DTLS, rtcp-mux, mid; `setup` is our
/// role, `mid_extension` the id of the mid header extension if we use it.
pub(crate) fn secure_media(
    m: &mut MediaDescription,
    local: &LocalSecurity,
    setup: Setup,
    mid: &str,
    mid_extension: Option<u8>,
) {
    m.protocol = Protocol::UdpTlsRtpSavpf;
    // rtcp-mux: RTCP shares the RTP port, so no separate a=rtcp (RFC 5761 §5.1.3).
    m.rtcp = None;
    push(m, "mid", Some(mid.to_string()));
    push(m, "ice-ufrag", Some(local.ufrag.clone()));
    push(m, "ice-pwd", Some(local.pwd.clone()));
    push(m, "fingerprint", Some(local.fingerprint.clone()));
    push(m, "setup", Some(setup.as_str().to_string()));
    if let Some(id) = mid_extension {
        push(m, "extmap", Some(format!("{id} {MID_EXTENSION_URI}")));
    }
    push(m, "rtcp-mux", None);
    // RFC 8839 §5.1: foundation, component 1 (RTP), transport, priority, address, port.
    // Priority per RFC 8445 §5.1.2.1 for a host candidate: (126 << 24) | (65535 << 8) | 255.
    push(
        m,
        "candidate",
        Some(format!(
            "1 1 udp 2130706431 {} {} typ host",
            local.candidate.ip(),
            local.candidate.port()
        )),
    );
    push(m, "end-of-candidates", None);
}

/// The session-level line of an ICE-lite agent.
pub(crate) fn ice_lite() -> Attribute {
    Attribute {
        name: "ice-lite".to_string(),
        value: None,
    }
}

/// Our role in answer to the offerer's `setup` (RFC 5763 §5): passive unless the offer
/// leaves us only the active role.
pub fn answer_setup(offered: Setup) -> Setup {
    match offered {
        Setup::Passive => Setup::Active,
        _ => Setup::Passive,
    }
}
