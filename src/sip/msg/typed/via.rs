//! The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 rport).

use super::host::Host;
use super::params::Params;
use super::scanner::Scanner;

/// The RFC 3261 magic cookie that marks a branch as globally unique (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One via-parm: `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name (`SIP`).
    pub protocol: &'a str,
    /// Protocol version (`2.0`).
    pub version: &'a str,
    /// Transport (`UDP`, `TCP`, `TLS`, `WS`, ... unknown ones are legal, RFC 4475 `transports`).
    pub transport: &'a str,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port.
    pub port: Option<u16>,
    /// via-params.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one via-parm (one element of a Via list).
    pub fn parse(s: &'a str) -> Option<Via<'a>> {
        let mut sc = Scanner::new(s);
        let protocol = sc.token()?;
        if !sc.eat(b'/') {
            return None;
        }
        let version = sc.token()?;
        if !sc.eat(b'/') {
            return None;
        }
        let transport = sc.token()?;
        sc.skip_lws();
        let sent_by = sc.until_any(b";");
        let (host, port) = Host::parse_hostport(sent_by)?;
        let params = Params(sc.rest());
        if !params.validate() {
            return None;
        }
        Some(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// The branch, if it carries the RFC 3261 magic cookie with something after it.
    /// RFC 4475 `badbranch` has a bare `z9hG4bK`, which we treat as no RFC 3261 branch.
    pub fn rfc3261_branch(&self) -> Option<&'a str> {
        self.branch()
            .filter(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// RFC 3581: `Some(None)` when the client asked for rport, `Some(Some(p))` once filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// Whether the transport is a reliable one (everything but UDP, for our purposes).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_via() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!((v.protocol, v.version, v.transport), ("SIP", "2.0", "UDP"));
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert_eq!(v.rfc3261_branch(), None);
        let v = Via::parse(
            "SIP/2.0/TCP [2001:db8::9:1]:5070;branch=z9hG4bKx;rport;received=2001:db8::9:255",
        )
        .unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("2001:db8::9:255"));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_none());
        assert!(Via::parse("SIP/2.0 192.0.2.15").is_none());
    }
}
