//! Symmetric RTP that survives NAT and resists hijack: which source a leg's packets are
//! taken from, and where ours go.
//!
//! A phone behind NAT sends from an address its SDP does not name, so the relay sends to
//! where a leg's packets come from (symmetric RTP, RFC 4961), learning it from them
//! ("latching"). Learning from anyone is what lets a scanner that sprays a relay's ports
//! steal a stream (RTP bleed, and the hijack of a caller who had not spoken yet). The rule,
//! in the spirit of rtpengine's heuristic endpoint learning and strict source:
//!
//! 1. Only real media latches: an RTP packet (version 2) with a payload type the leg
//!    negotiated, or an RTCP packet on the RTCP port. Anything else from a stranger is
//!    dropped and teaches nothing.
//! 2. Sources rank by how well they match the signalling: the exact SDP address and port
//!    (3); the SDP's IP with another port, or the IP the leg's SIP comes from (2: a NAT
//!    that rewrote the port, a phone that sends from another port, or a NAT whose phone
//!    put its private address in the SDP: its media leaves from the same public address
//!    as its SIP, the idea behind Kamailio's `fix_nated_sdp`); anything else (1). A better-ranked source always takes the latch from
//!    a worse one, at any time: an early sprayer keeps the stream only until the party
//!    speaks, and a sprayer cannot outrank the party unless it shares its IP.
//! 3. A rank-1 source latches only when the SDP address is not global (private, loopback:
//!    a party behind NAT whose public address we cannot know). When the SDP names a global
//!    address, a stranger's packets never latch, so before the party speaks our audio goes
//!    to the SDP address, never to a sprayer.
//! 4. Once latched, another source of the same or lower rank takes over only when the
//!    latched one has gone quiet (`QUIET`: a NAT rebinding, a phone that moved) and its
//!    packet continues the latched stream: the same SSRC and, for RTP, a sequence number
//!    just after the last one. A sprayer does not know them.
//! 5. A new SDP (re-INVITE) starts over, since the party may have moved.
//!
//! Sans-IO: the relay passes the clock and the packet's facts in.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::net::non_global_range;

/// How long the latched source must have been silent before a continuation of its stream
/// from elsewhere takes over: longer than ordinary jitter and packet loss, far shorter
/// than a NAT rebinding is noticed by a listener.
pub const QUIET: Duration = Duration::from_millis(500);

/// How far a continuing stream's sequence number may have advanced: 20 s of 20 ms packets.
const SEQ_WINDOW: u16 = 1000;

/// What the relay knows of a packet before judging its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// RTP version 2 with a payload type the leg negotiated.
    Rtp { ssrc: u32, seq: u16 },
    /// RTCP (version 2, a report type), with its sender's SSRC.
    Rtcp { ssrc: u32 },
    /// Anything else: STUN, garbage, a payload type nobody negotiated.
    Other,
}

impl Packet {
    fn ssrc(self) -> Option<u32> {
        match self {
            Packet::Rtp { ssrc, .. } | Packet::Rtcp { ssrc } => Some(ssrc),
            Packet::Other => None,
        }
    }
}

/// The source currently latched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    addr: SocketAddr,
    rank: u8,
    ssrc: Option<u32>,
    seq: Option<u16>,
    last: Instant,
}

/// The latch state of one socket (RTP and RTCP latch separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latch {
    /// Where the SDP says the party is.
    signalled: SocketAddr,
    /// The SDP address is global: strangers (rank 1) never latch.
    signalled_global: bool,
    /// The IP the leg's SIP comes from, when the call layer knows it (rank 2, rule 2).
    signalling_host: Option<IpAddr>,
    held: Option<Held>,
}

/// What to do with a packet from some source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched party (or it just latched): take it.
    Accept,
    /// From a third address: drop it, learn nothing.
    Foreign,
}

impl Latch {
    /// A latch for a party the SDP places at `signalled`, whose SIP comes from
    /// `signalling_host` (`None` when unknown).
    pub fn new(signalled: SocketAddr, signalling_host: Option<IpAddr>) -> Self {
        Latch {
            signalled,
            signalled_global: non_global_range(signalled.ip()).is_none(),
            signalling_host,
            held: None,
        }
    }

    /// A new SDP: send there until the party's first packet says otherwise.
    pub fn resignal(&mut self, signalled: SocketAddr, signalling_host: Option<IpAddr>) {
        *self = Latch::new(signalled, signalling_host);
    }

    fn rank(&self, source: SocketAddr) -> u8 {
        if source == self.signalled {
            3
        } else if same_host(source.ip(), self.signalled.ip())
            || self
                .signalling_host
                .is_some_and(|h| same_host(source.ip(), h))
        {
            2
        } else {
            1
        }
    }

    /// Judges a packet from `source` at `now` (see the module docs for the rule).
    pub fn on_packet(&mut self, source: SocketAddr, packet: Packet, now: Instant) -> Verdict {
        if let Some(h) = self.held.as_mut()
            && h.addr == source
        {
            // The party itself: whatever it sends is its own (RTCP muxed, STUN...).
            h.last = now;
            if let Some(ssrc) = packet.ssrc() {
                h.ssrc = Some(ssrc);
            }
            if let Packet::Rtp { seq, .. } = packet {
                h.seq = Some(seq);
            }
            return Verdict::Accept;
        }
        if packet == Packet::Other {
            return Verdict::Foreign;
        }
        let rank = self.rank(source);
        if rank == 1 && self.signalled_global {
            return Verdict::Foreign;
        }
        let take = match self.held {
            None => true,
            Some(h) if rank > h.rank => true,
            Some(h) => now.saturating_duration_since(h.last) >= QUIET && continues(&h, packet),
        };
        if !take {
            return Verdict::Foreign;
        }
        self.held = Some(Held {
            addr: source,
            rank,
            ssrc: packet.ssrc(),
            seq: match packet {
                Packet::Rtp { seq, .. } => Some(seq),
                _ => None,
            },
            last: now,
        });
        Verdict::Accept
    }

    /// Where to send to this party.
    pub fn destination(&self) -> SocketAddr {
        self.held.map_or(self.signalled, |h| h.addr)
    }

    pub fn is_latched(&self) -> bool {
        self.held.is_some()
    }
}

/// Whether two addresses are one host (an IPv4-mapped IPv6 address is its IPv4 one, as a
/// dual-stack socket reports an IPv4 peer).
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Whether `packet` continues the latched stream: its SSRC, and for RTP a sequence number
/// a little after the last one seen.
fn continues(h: &Held, packet: Packet) -> bool {
    if h.ssrc.is_none() || packet.ssrc() != h.ssrc {
        return false;
    }
    match (packet, h.seq) {
        (Packet::Rtp { seq, .. }, Some(last)) => {
            let ahead = seq.wrapping_sub(last);
            (1..=SEQ_WINDOW).contains(&ahead)
        }
        (Packet::Rtp { .. }, None) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the virtual clock's epoch; never compared to real time"
    )]
    fn t0() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn rtp(ssrc: u32, seq: u16) -> Packet {
        Packet::Rtp { ssrc, seq }
    }

    #[test]
    fn behind_nat_with_a_private_sdp_the_first_media_latches_then_strangers_are_dropped() {
        let t = t0();
        let mut l = Latch::new(a("10.0.0.1:4000"), None);
        assert_eq!(l.destination(), a("10.0.0.1:4000"));
        assert_eq!(
            l.on_packet(a("198.51.100.7:31000"), rtp(7, 1), t),
            Verdict::Accept
        );
        assert_eq!(l.destination(), a("198.51.100.7:31000"));
        assert_eq!(
            l.on_packet(a("203.0.113.9:5000"), rtp(9, 1), t + ms(20)),
            Verdict::Foreign
        );
        assert_eq!(l.destination(), a("198.51.100.7:31000"));
    }

    #[test]
    fn only_real_media_latches() {
        let t = t0();
        let mut l = Latch::new(a("10.0.0.1:4000"), None);
        assert_eq!(
            l.on_packet(a("203.0.113.9:5000"), Packet::Other, t),
            Verdict::Foreign
        );
        assert!(!l.is_latched());
    }

    #[test]
    fn the_party_behind_a_port_rewriting_nat_takes_the_stream_from_an_early_sprayer() {
        let t = t0();
        // SDP names the caller's public address; its NAT sends from another port.
        let mut l = Latch::new(a("127.0.0.1:4000"), None);
        assert_eq!(
            l.on_packet(a("127.0.0.2:6666"), rtp(66, 1), t),
            Verdict::Accept
        );
        assert_eq!(
            l.on_packet(a("127.0.0.1:31000"), rtp(7, 100), t + ms(2000)),
            Verdict::Accept
        );
        assert_eq!(l.destination(), a("127.0.0.1:31000"));
        // The sprayer goes on, in vain.
        assert_eq!(
            l.on_packet(a("127.0.0.2:6666"), rtp(66, 2), t + ms(2020)),
            Verdict::Foreign
        );
        // The exact SDP address outranks the NAT's port.
        assert_eq!(
            l.on_packet(a("127.0.0.1:4000"), rtp(7, 101), t + ms(2040)),
            Verdict::Accept
        );
        assert_eq!(
            l.on_packet(a("127.0.0.1:31000"), rtp(7, 102), t + ms(2060)),
            Verdict::Foreign
        );
    }

    #[test]
    fn with_a_global_sdp_address_a_stranger_never_latches() {
        let t = t0();
        let mut l = Latch::new(a("203.0.113.10:4000"), None);
        assert_eq!(
            l.on_packet(a("198.51.100.66:5000"), rtp(66, 1), t),
            Verdict::Foreign
        );
        assert_eq!(
            l.destination(),
            a("203.0.113.10:4000"),
            "no audio to the sprayer"
        );
        assert_eq!(
            l.on_packet(a("203.0.113.10:40000"), rtp(7, 1), t + ms(10)),
            Verdict::Accept
        );
    }

    #[test]
    fn a_quiet_source_is_succeeded_only_by_the_continuation_of_its_stream() {
        let t = t0();
        let mut l = Latch::new(a("10.0.0.1:4000"), None);
        l.on_packet(a("198.51.100.7:31000"), rtp(7, 500), t);
        // Not quiet yet: even the right SSRC from elsewhere is refused.
        assert_eq!(
            l.on_packet(a("198.51.100.7:31002"), rtp(7, 501), t + ms(100)),
            Verdict::Foreign
        );
        // Quiet: a stranger with another SSRC, or the same SSRC far off, is refused.
        let later = t + QUIET + ms(100);
        assert_eq!(
            l.on_packet(a("203.0.113.9:5000"), rtp(9, 501), later),
            Verdict::Foreign
        );
        assert_eq!(
            l.on_packet(a("203.0.113.9:5000"), rtp(7, 500 + 2000), later),
            Verdict::Foreign
        );
        assert_eq!(
            l.on_packet(a("203.0.113.9:5000"), rtp(7, 500), later),
            Verdict::Foreign
        );
        // The NAT rebound: the same stream continues from a new port.
        assert_eq!(
            l.on_packet(a("198.51.100.7:40000"), rtp(7, 530), later),
            Verdict::Accept
        );
        assert_eq!(l.destination(), a("198.51.100.7:40000"));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t = t0();
        let mut l = Latch::new(a("10.0.0.1:4000"), None);
        l.on_packet(a("198.51.100.7:31000"), rtp(7, 65_530), t);
        assert_eq!(
            l.on_packet(a("198.51.100.7:40000"), rtp(7, 10), t + QUIET),
            Verdict::Accept
        );
    }

    #[test]
    fn behind_nat_with_a_private_sdp_the_sip_host_takes_the_stream_from_an_early_sprayer() {
        let t = t0();
        // The phone's SDP names its private address; its SIP came from its NAT.
        let nat_ip = "198.51.100.7".parse().unwrap();
        let mut l = Latch::new(a("192.168.1.5:4000"), Some(nat_ip));
        let sprayer = a("203.0.113.9:5000");
        // Nothing says where the phone is yet: the first media latches.
        assert_eq!(l.on_packet(sprayer, rtp(66, 1), t), Verdict::Accept);
        assert_eq!(l.destination(), sprayer);
        // The phone speaks through its NAT (a port nobody announced): it outranks the
        // sprayer, which goes on in vain.
        let nat = a("198.51.100.7:31000");
        assert_eq!(l.on_packet(nat, rtp(7, 1), t + ms(20)), Verdict::Accept);
        assert_eq!(l.destination(), nat);
        for i in 0..10 {
            let now = t + ms(40 + 20 * i);
            assert_eq!(l.on_packet(sprayer, rtp(66, 2), now), Verdict::Foreign);
            assert_eq!(l.on_packet(nat, rtp(7, 2 + i as u16), now), Verdict::Accept);
        }
        // Without the SIP host the two are strangers alike, and the sprayer keeps it.
        let mut blind = Latch::new(a("192.168.1.5:4000"), None);
        blind.on_packet(sprayer, rtp(66, 1), t);
        assert_eq!(
            blind.on_packet(nat, rtp(7, 1), t + ms(20)),
            Verdict::Foreign
        );
        // An IPv4-mapped source is the same host.
        let mut mapped = Latch::new(a("192.168.1.5:4000"), Some(nat_ip));
        mapped.on_packet(sprayer, rtp(66, 1), t);
        let nat6 = a("[::ffff:198.51.100.7]:31000");
        assert_eq!(
            mapped.on_packet(nat6, rtp(7, 1), t + ms(20)),
            Verdict::Accept
        );
        assert_eq!(mapped.destination(), nat6);
    }

    #[test]
    fn a_new_sdp_unlatches() {
        let t = t0();
        let mut l = Latch::new(a("10.0.0.1:4000"), None);
        l.on_packet(a("10.0.0.1:4000"), rtp(1, 1), t);
        l.resignal(a("10.0.0.2:4000"), None);
        assert!(!l.is_latched());
        assert_eq!(l.destination(), a("10.0.0.2:4000"));
        assert_eq!(
            l.on_packet(a("10.0.0.2:4000"), rtp(1, 2), t),
            Verdict::Accept
        );
    }
}
