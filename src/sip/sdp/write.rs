//! [`SessionDescription`] back to bytes, in the RFC 8866 §5 line order with CRLF line ends.
//!
//! Only what the typed session holds is written, so a parsed description prints in a
//! canonical form (the lines we skip, such as `b=` and `i=`, are gone; RTP formats are
//! plain numbers). What we send is always built this way, never spliced from text.

use std::fmt::{self, Write};
use std::net::IpAddr;

use bytes::Bytes;

use super::session::{AddressType, MediaDescription, SessionDescription};

impl SessionDescription {
    /// The description as an `application/sdp` body.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} IN {} {}\r\n",
            or_dash(&o.username),
            o.session_id,
            o.session_version,
            o.address_type.as_str(),
            or_dash(&o.address)
        )?;
        // RFC 8866 §5.3: s= is mandatory and never empty; "-" stands for no name.
        write!(f, "s={}\r\n", or_dash(&self.session_name))?;
        if let Some(ip) = self.connection {
            connection(f, ip)?;
        }
        write!(f, "t={} {}\r\n", self.timing.start, self.timing.stop)?;
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_str())?;
        }
        for a in &self.attributes {
            attribute(f, &a.name, a.value.as_deref())?;
        }
        for m in &self.media {
            media(f, m)?;
        }
        Ok(())
    }
}

fn media(f: &mut fmt::Formatter<'_>, m: &MediaDescription) -> fmt::Result {
    write!(
        f,
        "m={} {} {}",
        m.kind.as_str(),
        m.port,
        m.protocol.as_str()
    )?;
    for format in &m.formats {
        write!(f, " {format}")?;
    }
    f.write_str("\r\n")?;
    if let Some(ip) = m.connection {
        connection(f, ip)?;
    }
    for r in &m.rtpmaps {
        write!(
            f,
            "a=rtpmap:{} {}/{}",
            r.payload_type, r.encoding, r.clock_rate
        )?;
        if let Some(ch) = r.channels {
            write!(f, "/{ch}")?;
        }
        f.write_str("\r\n")?;
    }
    for p in &m.fmtps {
        write!(f, "a=fmtp:{} {}\r\n", p.payload_type, p.parameters)?;
    }
    if let Some(ms) = m.ptime {
        write!(f, "a=ptime:{ms}\r\n")?;
    }
    if let Some(ms) = m.maxptime {
        write!(f, "a=maxptime:{ms}\r\n")?;
    }
    if let Some(rtcp) = m.rtcp {
        write!(f, "a=rtcp:{}", rtcp.port)?;
        if let Some(ip) = rtcp.address {
            write!(f, " IN {} {ip}", AddressType::of(ip).as_str())?;
        }
        f.write_str("\r\n")?;
    }
    if let Some(d) = m.direction {
        write!(f, "a={}\r\n", d.as_str())?;
    }
    for a in &m.attributes {
        attribute(f, &a.name, a.value.as_deref())?;
    }
    Ok(())
}

fn connection(f: &mut fmt::Formatter<'_>, ip: IpAddr) -> fmt::Result {
    write!(f, "c=IN {} {ip}\r\n", AddressType::of(ip).as_str())
}

fn attribute(f: &mut fmt::Formatter<'_>, name: &str, value: Option<&str>) -> fmt::Result {
    write!(f, "a={name}")?;
    if let Some(v) = value {
        f.write_char(':')?;
        f.write_str(v)?;
    }
    f.write_str("\r\n")
}

/// A field that must not be empty (a blank would shift every field after it).
fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
