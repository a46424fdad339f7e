//! Small network value types the config parses from strings: CIDR blocks and the RTP port
//! range. Hand-written on `std::net` so the config needs no extra crates.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

// ---------------------------------------------------------------------------------------
// Global and non-global addresses (the SSRF reference list, see webhook::ssrf)
// ---------------------------------------------------------------------------------------

/// Refused IPv4 blocks and why.
const V4_REFUSED: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "\"this\" network (0.0.0.0/8)"),
    (0x0a00_0000, 8, "private (10.0.0.0/8)"),
    (0x6440_0000, 10, "shared address space (100.64.0.0/10)"),
    (0x7f00_0000, 8, "loopback (127.0.0.0/8)"),
    (0xa9fe_0000, 16, "link-local (169.254.0.0/16)"),
    (0xac10_0000, 12, "private (172.16.0.0/12)"),
    (0xc000_0000, 24, "IETF protocol assignments (192.0.0.0/24)"),
    (0xc0a8_0000, 16, "private (192.168.0.0/16)"),
    (0xc612_0000, 15, "benchmarking (198.18.0.0/15)"),
    (0xe000_0000, 4, "multicast (224.0.0.0/4)"),
    (0xf000_0000, 4, "reserved (240.0.0.0/4)"),
];

/// Refused IPv6 blocks (after the embedded-IPv4 forms are handled) and why.
const V6_REFUSED: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified (::)"),
    (1, 128, "loopback (::1)"),
    (0xfc00 << 112, 7, "unique local (fc00::/7)"),
    (0xfe80 << 112, 10, "link-local (fe80::/10)"),
    (0xfec0 << 112, 10, "site-local (fec0::/10)"),
    (0xff00 << 112, 8, "multicast (ff00::/8)"),
    (0x2001_0000 << 96, 32, "Teredo (2001::/32)"),
];

fn in_v4(ip: u32, net: u32, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    ip & mask == net
}

fn in_v6(ip: u128, net: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    ip & mask == net
}

/// The IPv4 address an IPv6 address stands for, if it embeds one: IPv4-mapped
/// (::ffff:0:0/96), IPv4-compatible (::/96, but not :: and ::1), NAT64 (64:ff9b::/96 and
/// 64:ff9b:1::/48) and 6to4 (2002::/16, the address is bits 16..48).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let n = u128::from(ip);
    let low32 = Ipv4Addr::from(n as u32);
    if in_v6(n, 0xffff << 32, 96) {
        return Some(low32);
    }
    if in_v6(n, 0, 96) && n > 1 {
        return Some(low32);
    }
    if in_v6(n, 0x0064_ff9b << 96, 96) || in_v6(n, 0x0064_ff9b_0001 << 80, 48) {
        return Some(low32);
    }
    if in_v6(n, 0x2002 << 112, 16) {
        return Some(Ipv4Addr::from((n >> 80) as u32));
    }
    None
}

/// Why `ip` is not a global address (the block it is in), or `None` for a global one:
/// private, loopback, link-local, CGNAT, multicast, reserved and the IPv6 forms that
/// embed or tunnel to such an IPv4 address. Webhook URLs, SIP destinations and RTP
/// latching all ask this.
pub fn non_global_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            V4_REFUSED
                .iter()
                .find(|(net, prefix, _)| in_v4(n, *net, *prefix))
                .map(|(_, _, why)| *why)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return non_global_range(IpAddr::V4(v4));
            }
            let n = u128::from(v6);
            V6_REFUSED
                .iter()
                .find(|(net, prefix, _)| in_v6(n, *net, *prefix))
                .map(|(_, _, why)| *why)
        }
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
