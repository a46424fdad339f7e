//! Which hosts a webhook may reach (reference/sip-robustness-and-security.md §4, SSRF).
//!
//! A customer URL must not make the switch talk to itself, its LAN or a cloud metadata
//! service. Only `http` and `https` are fetched, and every address connected to must be
//! global, unless an `allow_private_networks` block contains it. Two places check:
//! - [`Guard::check_url`] for the URL itself: scheme, and an IP-literal host (literals never
//!   reach a resolver). It runs for the first URL and again for every redirect hop;
//! - [`GuardedResolver`], the client's DNS resolver, for host names: it drops every
//!   refused address from each answer, so a name that resolves (or re-resolves, DNS
//!   rebinding) to a private address is never connected to.
//!
//! Refused ranges: the reference list (0/8, 10/8, 100.64/10, 127/8, 169.254/16,
//! 172.16/12, 192.0.0/24, 192.168/16, 198.18/15, 224/4, 240/4, ::, ::1, fc00::/7,
//! fe80::/10, ff00::/8 and IPv4 embedded in ::ffff:0:0/96, 64:ff9b::/96, 2002::/16), plus a
//! few the list leaves out that reach the same places: the deprecated IPv4-compatible
//! ::/96 and site-local fec0::/10, local-use NAT64 64:ff9b:1::/48 (RFC 8215), and Teredo
//! 2001::/32 (a tunnel to an arbitrary IPv4 address). `std`'s `is_global` is unstable, so
//! the table is ours: `config::net::non_global_range`, shared with the SIP destination
//! policy and RTP latching.

use std::net::IpAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::config::Cidr;

/// Why `ip` is never fetched from (unless allow-listed), or `None` for a global address:
/// the table lives with the other network facts in `config::net`.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    crate::config::net::non_global_range(ip)
}

/// A target the SSRF rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused to fetch {target}: {reason}")]
pub struct Refused {
    /// The URL, host or address refused.
    pub target: String,
    pub reason: String,
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {source}")]
pub struct DnsFailure {
    pub host: String,
    #[source]
    pub source: std::io::Error,
}

/// The SSRF rules with their allow-list; cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    allow: Arc<[Cidr]>,
    /// The config key of `allow`, named in refusals so an operator knows what to change.
    setting: &'static str,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard::new(&[])
    }
}

impl Guard {
    /// Refuse private targets except inside `allow` (`WebhooksConfig::private_nets`).
    pub fn new(allow: &[Cidr]) -> Guard {
        Guard::for_setting(allow, "webhooks.allow_private_networks")
    }

    /// The same rules for another kind of destination (SIP calls:
    /// `calls.allow_private_networks`), whose allow-list is the config key `setting`.
    pub fn for_setting(allow: &[Cidr], setting: &'static str) -> Guard {
        Guard {
            allow: allow.into(),
            setting,
        }
    }

    /// Whether a connection to `ip` is permitted.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        match refused_range(ip) {
            None => Ok(()),
            Some(_) if self.allow.iter().any(|net| net.contains(ip)) => Ok(()),
            Some(why) => Err(Refused {
                target: ip.to_string(),
                reason: format!("{why} is not allowed ({})", self.setting),
            }),
        }
    }

    /// Whether `url` may be requested: `http`/`https` with a host, and an IP-literal host
    /// permitted. Host names pass here; [`GuardedResolver`] checks what they resolve to.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let refuse = |reason: &str| Refused {
            target: redacted(url),
            reason: reason.to_owned(),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("only http and https URLs are fetched"));
        }
        let ip = match url.host() {
            None => return Err(refuse("the URL has no host")),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        self.check_ip(ip).map_err(|r| Refused {
            target: redacted(url),
            reason: r.reason,
        })
    }
}

/// `url` as far as the host and port: what a log may show (no credentials, no query).
pub fn redacted(url: &Url) -> String {
    match url.host_str() {
        Some(host) => match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        },
        None => format!("{}:", url.scheme()),
    }
}

/// The client's DNS resolver: the system resolver, with every refused address removed
/// from each answer. A name left with no address fails with [`Refused`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    pub fn new(guard: Guard) -> GuardedResolver {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| DnsFailure {
                    host: host.clone(),
                    source,
                })?;
            let mut kept = Vec::new();
            let mut first_refusal = None;
            for addr in found {
                match guard.check_ip(addr.ip()) {
                    Ok(()) => kept.push(addr),
                    Err(r) => {
                        first_refusal.get_or_insert(r);
                    }
                }
            }
            if kept.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match first_refusal {
                    Some(r) => Box::new(Refused {
                        target: host,
                        reason: format!("resolves to {}: {}", r.target, r.reason),
                    }),
                    None => Box::new(DnsFailure {
                        host,
                        source: std::io::Error::other("no addresses"),
                    }),
                };
                return Err(err);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn table() {
        let none = Guard::new(&[]);
        let refused = [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.168.1.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:0:4136:e378::1",
        ];
        for a in refused {
            assert!(none.check_ip(ip(a)).is_err(), "{a} must be refused");
        }
        let allowed = [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.2.1",
            "2606:4700:4700::1111",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for a in allowed {
            assert_eq!(none.check_ip(ip(a)), Ok(()), "{a} must be allowed");
        }
        assert_eq!(
            refused_range(ip("169.254.169.254")),
            Some("link-local (169.254.0.0/16)")
        );
        assert_eq!(
            refused_range(ip("::ffff:127.0.0.1")),
            Some("loopback (127.0.0.0/8)")
        );
    }

    #[test]
    fn urls() {
        let none = Guard::new(&[]);
        for u in [
            "http://127.0.0.1/",
            "http://10.0.0.7:8080/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "https://[fc00::1]/",
            // Other spellings of 127.0.0.1 that URL parsing normalizes.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "ftp://8.8.8.8/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            assert!(none.check_url(&url(u)).is_err(), "{u} must be refused");
        }
        for u in [
            "https://8.8.8.8/",
            "http://[2606:4700:4700::1111]:8080/",
            "https://example.com/",
        ] {
            assert_eq!(none.check_url(&url(u)), Ok(()), "{u} must pass");
        }
    }

    #[test]
    fn allow_list() {
        let lo = Guard::new(&[
            Cidr::parse("127.0.0.0/8").unwrap(),
            Cidr::parse("fd00::/8").unwrap(),
        ]);
        assert_eq!(lo.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(lo.check_url(&url("http://127.0.0.1:8080/")), Ok(()));
        // A v4-mapped address is what a dual-stack socket uses: matched as IPv4.
        assert_eq!(lo.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(lo.check_ip(ip("fd00::5")), Ok(()));
        // Only what is listed.
        assert!(lo.check_ip(ip("10.0.0.1")).is_err());
        assert!(lo.check_ip(ip("::1")).is_err());
        assert!(lo.check_ip(ip("fc00::1")).is_err());
        // Still http(s) only.
        assert!(lo.check_url(&url("ftp://127.0.0.1/")).is_err());
    }

    #[tokio::test]
    async fn resolver_drops_refused_addresses() {
        let none = GuardedResolver::new(Guard::new(&[]));
        let name: Name = "localhost".parse().expect("name");
        let err = match none.resolve(name).await {
            Ok(addrs) => panic!(
                "localhost must be refused, got {:?}",
                addrs.collect::<Vec<_>>()
            ),
            Err(e) => e,
        };
        assert!(err.is::<Refused>(), "{err}");

        let lo = GuardedResolver::new(Guard::new(&[
            Cidr::parse("127.0.0.0/8").unwrap(),
            Cidr::parse("::1/128").unwrap(),
        ]));
        let addrs: Vec<_> = lo
            .resolve("localhost".parse().expect("name"))
            .await
            .expect("allowed")
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));

        let bad = none
            .resolve("no-such-host.invalid".parse().expect("name"))
            .await
            .err()
            .expect("no such host");
        assert!(bad.is::<DnsFailure>(), "{bad}");
    }
}
