//! Random identifiers: tags, branches, Call-IDs.
//!
//! RFC 3261 §19.3 asks for at least 32 bits of randomness in tags; we use 64. The source is
//! std's randomly keyed SipHash over a counter, which is unpredictable without pulling in an
//! RNG crate. This reads OS randomness once per process, which is why it lives outside the
//! sans-IO `sip` module.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 64 unpredictable bits.
pub fn random_u64() -> u64 {
    KEYS.hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A From/To tag.
pub fn tag() -> String {
    format!("{:016x}", random_u64())
}

/// A Via branch with the RFC 3261 magic cookie.
pub fn branch() -> String {
    format!("z9hG4bK{:016x}", random_u64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct() {
        let a: std::collections::HashSet<String> = (0..1000).map(|_| super::tag()).collect();
        assert_eq!(a.len(), 1000);
        assert!(super::branch().starts_with("z9hG4bK"));
    }
}
