//! Small network value types the config parses from strings: CIDR blocks and the RTP port
//! range. Hand-written on `std::net` so the config needs no extra crates.

use std::fmt;
use std::net::IpAddr;

/// An IPv4 or IPv6 network such as `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address, with host bits cleared.
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse `ADDR/PREFIX`. A bare address is refused: in an allow-list, writing
    /// `10.0.0.1` when `10.0.0.0/8` was meant is a mistake we would rather point out.
    /// Host bits set after the prefix (`10.1.2.3/8`) are refused for the same reason.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!("`{s}` is not a CIDR block (expected ADDR/PREFIX, e.g. 10.0.0.0/8)")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}`: `{addr}` is not an IPv4 or IPv6 address"))?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        // Only plain decimal digits: `u8::from_str` would also take a leading `+`.
        let prefix: u8 = if !prefix.is_empty()
            && prefix.len() <= 3
            && prefix.bytes().all(|b| b.is_ascii_digit())
        {
            prefix
                .parse()
                .map_err(|_| format!("`{s}`: bad prefix length"))?
        } else {
            return Err(format!("`{s}`: prefix length must be a number 0..={max}"));
        };
        if prefix > max {
            return Err(format!("`{s}`: prefix length must be 0..={max}"));
        }
        let cidr = Cidr { addr, prefix };
        if cidr.network() != addr {
            return Err(format!(
                "`{s}` has host bits set after /{prefix} (did you mean `{}/{prefix}`?)",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The address with host bits cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(self.prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(self.prefix)).into()),
        }
    }

    /// Whether `ip` lies in this block. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a
    /// dual-stack socket reports for IPv4 peers) are matched against IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    // checked_shl: a shift by 32 would overflow for /0.
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The RTP port range, inclusive. RTP takes the even port and RTCP the odd one after it
/// (RFC 3550 §11), so the range starts even and ends odd and holds whole pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// Parse `FIRST-LAST`, e.g. `20000-29999`.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let bad = || format!("`{s}` is not a port range (expected EVEN-ODD, e.g. 20000-29999)");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let port = |p: &str| -> Option<u16> {
            let p = p.trim();
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let (first, last) = (port(a).ok_or_else(bad)?, port(b).ok_or_else(bad)?);
        if first == 0 {
            return Err(format!("`{s}`: port 0 cannot be used for RTP"));
        }
        if first % 2 != 0 {
            return Err(format!(
                "`{s}`: the first port must be even (RTP uses even ports)"
            ));
        }
        if last % 2 != 1 {
            return Err(format!(
                "`{s}`: the last port must be odd (RTCP uses the odd port after each RTP port)"
            ));
        }
        if last < first {
            return Err(format!("`{s}`: the first port is above the last"));
        }
        Ok(PortRange { first, last })
    }

    /// How many RTP/RTCP pairs the range holds.
    pub fn pairs(&self) -> usize {
        // In an EVEN-ODD range last - first is odd, so this is (last - first + 1) / 2.
        // Saturating: a hand-built range with first > last gives 1 rather than a panic.
        usize::from(self.last.saturating_sub(self.first)) / 2 + 1
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            first: 20000,
            last: 29999,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains(ip("127.1.2.3")));
        assert!(c.contains(ip("::ffff:127.0.0.1")));
        assert!(!c.contains(ip("128.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let host = Cidr::parse("10.0.0.1/32").unwrap();
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
    }

    #[test]
    fn cidr_rejects() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.1/8",
            "::/129",
            "x/8",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_range() {
        let r = PortRange::parse("20000-29999").unwrap();
        assert_eq!((r.first, r.last, r.pairs()), (20000, 29999, 5000));
        assert_eq!(PortRange::parse("10000-10001").unwrap().pairs(), 1);
        for bad in [
            "20001-29999",
            "20000-29998",
            "30000-29999",
            "0-1",
            "a-b",
            "20000",
            "20000-70001",
            "-1-3",
        ] {
            assert!(PortRange::parse(bad).is_err(), "{bad}");
        }
    }
}
