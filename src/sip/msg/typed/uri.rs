//! SIP and SIPS URIs (RFC 3261 §19.1), borrowed from the message.

use super::host::Host;
use super::params::Params;

/// URI schemes the switch distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other absoluteURI scheme.
    Other,
}

impl Scheme {
    /// The scheme of an absolute URI (`None` if it has no `scheme:` prefix).
    pub fn of(uri: &str) -> Option<Scheme> {
        let i = uri.find(':')?;
        let s = &uri[..i];
        if s.is_empty() || !s.as_bytes()[0].is_ascii_alphabetic() {
            return None;
        }
        Some(if s.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if s.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if s.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        })
    }
}

/// `sip:user:password@host:port;uri-parameters?headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `Sip` or `Sips`.
    pub scheme: Scheme,
    /// The user part, still %-escaped (RFC 4475 `esc01` compares escaped and unescaped).
    pub user: Option<&'a str>,
    /// The password, if any (deprecated, but legal).
    pub password: Option<&'a str>,
    /// The host.
    pub host: Host<'a>,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params<'a>,
    /// The `?` headers part, without the `?`.
    pub headers: Option<&'a str>,
}

impl<'a> SipUri<'a> {
    /// Parses a sip/sips URI. Whitespace anywhere is an error (RFC 4475 `badaspec`).
    pub fn parse(s: &'a str) -> Option<SipUri<'a>> {
        let scheme = Scheme::of(s)?;
        if !matches!(scheme, Scheme::Sip | Scheme::Sips) {
            return None;
        }
        if s.bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"')
        {
            return None;
        }
        let rest = &s[s.find(':')? + 1..];
        // The userinfo ends at the last '@': a user part may hold ';' and '?' (RFC 3261
        // `user-unreserved`, RFC 4475 `semiuri`, `intmeth`), while parameters and headers
        // may not hold a raw '@'.
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.find(':') {
                Some(i) => (Some(&u[..i]), Some(&u[i + 1..])),
                None => (Some(u), None),
            },
            None => (None, None),
        };
        if user.is_some_and(str::is_empty) {
            return None;
        }
        let (hostpart, headers) = match hostpart.find('?') {
            Some(i) => (&hostpart[..i], Some(&hostpart[i + 1..])),
            None => (hostpart, None),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = Host::parse_hostport(hostport)?;
        Some(SipUri {
            scheme,
            user,
            password,
            host,
            port,
            params: Params(params),
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u =
            SipUri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?Subject=x").unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!((u.user, u.password), (Some("alice"), Some("pw")));
        assert_eq!(u.port, Some(5061));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers, Some("Subject=x"));
        let u = SipUri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, Host::Domain("example.com"));
        assert!(SipUri::parse("sip:user@2001:db8::10").is_none());
        assert!(SipUri::parse("sip:a b@example.com").is_none());
        assert!(SipUri::parse("tel:+1555").is_none());
    }
}
