//! Hosts and `hostport` (RFC 3261 §25.1, with RFC 5118's IPv6 references).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host: a domain name, an IPv4 address, or a bracketed IPv6 reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A hostname, as written.
    Domain(&'a str),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses `host [":" port]`. `[2001:db8::10:5070]` is an address with no port (RFC 5118
    /// §4.3); `sip:2001:db8::10` without brackets is not a host (§4.2).
    pub fn parse_hostport(s: &'a str) -> Option<(Host<'a>, Option<u16>)> {
        if let Some(rest) = s.strip_prefix('[') {
            let close = rest.find(']')?;
            let host = Host::V6(parse_v6(&rest[..close])?);
            let after = &rest[close + 1..];
            return match after.strip_prefix(':') {
                Some(p) => Some((host, Some(parse_port(p)?))),
                None if after.is_empty() => Some((host, None)),
                None => None,
            };
        }
        let (h, port) = match s.find(':') {
            Some(i) => (&s[..i], Some(parse_port(&s[i + 1..])?)),
            None => (s, None),
        };
        Some((Host::parse(h)?, port))
    }

    /// Parses a host without port. IPv6 must be bracketed; a bare address is also accepted
    /// where a grammar allows it (RFC 5118 §4.5 `received=2001:db8::9:255`).
    pub fn parse(s: &'a str) -> Option<Host<'a>> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return parse_v6(inner).map(Host::V6);
        }
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s.parse().ok().map(Host::V4);
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !s.starts_with(['-', '.']);
        ok.then_some(Host::Domain(s))
    }

    /// The address, for IP hosts.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// IPv6 text, tolerating RFC 3261's ABNF bug that allowed `2001:db8:::192.0.2.1` (RFC 5118
/// §4.10 asks implementations to accept it): a third colon before an embedded IPv4 address
/// is dropped, in a stack buffer.
fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let i = s.find(":::")?;
    let mut buf = [0u8; 64];
    let fixed_len = s.len() - 1;
    if fixed_len > buf.len() {
        return None;
    }
    buf[..i + 2].copy_from_slice(&s.as_bytes()[..i + 2]);
    buf[i + 2..fixed_len].copy_from_slice(&s.as_bytes()[i + 3..]);
    std::str::from_utf8(&buf[..fixed_len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostports() {
        assert_eq!(
            Host::parse_hostport("a.example.com:5070"),
            Some((Host::Domain("a.example.com"), Some(5070)))
        );
        assert_eq!(
            Host::parse_hostport("[2001:db8::10:5070]"),
            Some((Host::V6("2001:db8::10:5070".parse().unwrap()), None))
        );
        assert_eq!(
            Host::parse_hostport("[2001:db8::10]:5070"),
            Some((Host::V6("2001:db8::10".parse().unwrap()), Some(5070)))
        );
        assert_eq!(Host::parse_hostport("2001:db8::10"), None);
        assert_eq!(Host::parse_hostport("192.0.2.1:99999"), None);
        assert_eq!(Host::parse_hostport("192.0.2.300"), None);
        assert!(Host::parse("[2001:db8:::192.0.2.1]").is_some());
    }
}
