//! Which provisional responses a client transaction passes to its TU.
//!
//! Each distinct provisional goes up once: a retransmission of the same response is not
//! news. "Distinct" is the status code, the To tag (a forked INVITE yields one early dialog
//! per tag) and the RSeq (RFC 3262: each reliable provisional needs its own PRACK).

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::sip::msg::SipMessage;

/// How many fingerprints are remembered; a peer cycling through more than this only costs
/// it duplicate events, never our memory.
const MAX_REMEMBERED: usize = 16;

/// Fingerprints of the provisionals already passed up.
#[derive(Debug, Default)]
pub(crate) struct ProvisionalFilter {
    seen: Vec<u64>,
}

impl ProvisionalFilter {
    /// Records `response` and tells whether it is new.
    pub(crate) fn is_new(&mut self, response: &SipMessage) -> bool {
        let mut h = DefaultHasher::new();
        response.status().hash(&mut h);
        response.to_header().ok().and_then(|t| t.tag()).hash(&mut h);
        response
            .values_by_name("RSeq")
            .next()
            .map(str::trim)
            .hash(&mut h);
        let fingerprint = h.finish();
        if self.seen.contains(&fingerprint) {
            return false;
        }
        if self.seen.len() == MAX_REMEMBERED {
            self.seen.remove(0);
        }
        self.seen.push(fingerprint);
        true
    }
}
