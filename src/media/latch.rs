//! Symmetric RTP with latching, then strict source.
//!
//! A phone behind NAT sends from an address its SDP does not name, so the relay sends to
//! where a leg's packets come from (symmetric RTP, RFC 4961), learning it from the first
//! packet ("latching"). Once latched, packets from any other address are neither forwarded
//! nor learned: that is what stops RTP bleed, where a scanner spraying a relay's ports
//! steals or listens in on a stream.
//!
//! One exception keeps an attacker who sprays before the real party speaks from owning
//! the stream: the address the SDP names is authoritative, so a packet from it always
//! takes the latch back (once; after that it is the latched address like any other).
//! A new SDP (re-INVITE) unlatches, since the party may have moved.

use std::net::SocketAddr;

/// The latch state of one socket (RTP and RTCP latch separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latch {
    /// Where the SDP says the party is.
    signalled: SocketAddr,
    latched: Option<SocketAddr>,
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
    pub const fn new(signalled: SocketAddr) -> Self {
        Latch {
            signalled,
            latched: None,
        }
    }

    /// A new SDP: send there until the party's first packet says otherwise.
    pub fn resignal(&mut self, signalled: SocketAddr) {
        *self = Latch::new(signalled);
    }

    /// Judges a packet from `source`, latching on the first one.
    pub fn on_packet(&mut self, source: SocketAddr) -> Verdict {
        match self.latched {
            Some(l) if l == source => Verdict::Accept,
            None => {
                self.latched = Some(source);
                Verdict::Accept
            }
            Some(_) if source == self.signalled => {
                self.latched = Some(source);
                Verdict::Accept
            }
            Some(_) => Verdict::Foreign,
        }
    }

    /// Where to send to this party.
    pub fn destination(&self) -> SocketAddr {
        self.latched.unwrap_or(self.signalled)
    }

    pub fn is_latched(&self) -> bool {
        self.latched.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latches_on_first_packet_then_drops_third_parties() {
        let mut l = Latch::new(a("10.0.0.1:4000"));
        assert_eq!(l.destination(), a("10.0.0.1:4000"));
        // Behind NAT: the real source differs from the SDP.
        assert_eq!(l.on_packet(a("198.51.100.7:31000")), Verdict::Accept);
        assert_eq!(l.destination(), a("198.51.100.7:31000"));
        assert_eq!(l.on_packet(a("203.0.113.9:5000")), Verdict::Foreign);
        assert_eq!(l.destination(), a("198.51.100.7:31000"));
        assert_eq!(l.on_packet(a("198.51.100.7:31000")), Verdict::Accept);
    }

    #[test]
    fn the_signalled_address_takes_the_latch_back_from_an_early_sprayer() {
        let mut l = Latch::new(a("10.0.0.1:4000"));
        assert_eq!(l.on_packet(a("203.0.113.9:5000")), Verdict::Accept);
        assert_eq!(l.on_packet(a("10.0.0.1:4000")), Verdict::Accept);
        assert_eq!(l.destination(), a("10.0.0.1:4000"));
        assert_eq!(l.on_packet(a("203.0.113.9:5000")), Verdict::Foreign);
    }

    #[test]
    fn a_new_sdp_unlatches() {
        let mut l = Latch::new(a("10.0.0.1:4000"));
        l.on_packet(a("10.0.0.1:4000"));
        l.resignal(a("10.0.0.2:4000"));
        assert!(!l.is_latched());
        assert_eq!(l.destination(), a("10.0.0.2:4000"));
        assert_eq!(l.on_packet(a("10.0.0.2:4000")), Verdict::Accept);
    }
}
