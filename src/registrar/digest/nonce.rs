//! Stateless nonces and the per-nonce `nc` table that stops replays.
//!
//! A nonce is `base64url(ts || random || tag)`: `ts` the issue time (Unix seconds, u64 big
//! endian), 8 random bytes, and `tag` the first 16 bytes of
//! HMAC-SHA256(secret, ts || random || realm). Checking one needs only the secret; state is
//! kept only for nonces that have carried valid credentials, to enforce a strictly growing
//! `nc` (RFC 7616 §3.4, the `nonce_count` check of Kamailio's auth module).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::DigestError;

/// How long a nonce may be used, in seconds.
pub(super) const NONCE_TTL_SECS: u64 = 300;
/// Most nonces remembered by the replay table.
pub(super) const REPLAY_CAP: usize = 100_000;
/// How often (seconds) the replay table drops expired nonces even when not full.
const SWEEP_EVERY_SECS: u64 = 60;

const ID_LEN: usize = 16;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = ID_LEN + TAG_LEN;
/// Base64url without padding of `RAW_LEN` bytes.
pub(super) const NONCE_CHARS: usize = (RAW_LEN * 8).div_ceil(6);

/// `ts || random`: identifies a nonce once its tag has been checked.
pub(super) type NonceId = [u8; ID_LEN];

/// Mints and opens nonces with a per-process secret, bound to one realm.
#[derive(Clone)]
pub(super) struct NonceKey {
    mac: Hmac<Sha256>,
    realm: Vec<u8>,
}

/// A nonce whose tag checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OpenNonce {
    pub id: NonceId,
    pub issued: u64,
}

impl NonceKey {
    pub(super) fn new(secret: &[u8; 32], realm: &str) -> NonceKey {
        NonceKey {
            // HMAC takes keys of any length; 32 bytes cannot fail.
            mac: <Hmac<Sha256> as Mac>::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
            realm: realm.as_bytes().to_vec(),
        }
    }

    fn keyed(&self, id: &NonceId) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(id);
        mac.update(&self.realm);
        mac
    }

    /// A fresh nonce issued at `now`.
    pub(super) fn mint(&self, now: u64) -> String {
        self.mint_with(now, crate::ids::random_u64())
    }

    pub(super) fn mint_with(&self, now: u64, random: u64) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..ID_LEN].copy_from_slice(&random.to_be_bytes());
        let id: NonceId = id_of(&raw);
        let tag = self.keyed(&id).finalize().into_bytes();
        raw[ID_LEN..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce's form and tag (constant time). A nonce we cannot read is
    /// `Malformed`; one with the right form but a wrong tag (forged, tampered, or minted by
    /// another process) is `BadCredentials`. Age is not checked here.
    pub(super) fn open(&self, nonce: &str) -> Result<OpenNonce, DigestError> {
        if nonce.len() != NONCE_CHARS {
            return Err(DigestError::Malformed);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(DigestError::Malformed),
        }
        let id = id_of(&raw);
        self.keyed(&id)
            .verify_truncated_left(&raw[ID_LEN..])
            .map_err(|_| DigestError::BadCredentials)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        Ok(OpenNonce {
            id,
            issued: u64::from_be_bytes(ts),
        })
    }
}

fn id_of(raw: &[u8; RAW_LEN]) -> NonceId {
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&raw[..ID_LEN]);
    id
}

/// Whether a nonce issued at `issued` may still be used at `now`. A nonce from the future
/// (the clock stepped back) by more than the lifetime is treated as expired too.
pub(super) fn is_fresh(issued: u64, now: u64) -> bool {
    now.abs_diff(issued) <= NONCE_TTL_SECS
}

/// Highest `nc` seen per nonce, for nonces that carried valid credentials.
pub(super) struct ReplayTable {
    seen: HashMap<NonceId, Seen>,
    /// Nonces issued at or before this time that are not in `seen` were evicted (or never
    /// recorded before an eviction): they are refused as stale, so an eviction can never
    /// reopen a replay.
    floor: Option<u64>,
    next_sweep: u64,
    pub(super) cap: usize,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    issued: u64,
    nc: u32,
}

impl ReplayTable {
    pub(super) fn new(cap: usize) -> ReplayTable {
        ReplayTable {
            seen: HashMap::new(),
            floor: None,
            next_sweep: 0,
            cap: cap.max(1),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Accepts `nc` for `nonce` if it is higher than any seen before and records it.
    pub(super) fn check_and_record(
        &mut self,
        nonce: OpenNonce,
        nc: u32,
        now: u64,
    ) -> Result<(), DigestError> {
        if let Some(seen) = self.seen.get_mut(&nonce.id) {
            if nc <= seen.nc {
                return Err(DigestError::Replay);
            }
            seen.nc = nc;
            return Ok(());
        }
        if self.floor.is_some_and(|floor| nonce.issued <= floor) {
            return Err(DigestError::Stale);
        }
        self.make_room(now);
        if self.floor.is_some_and(|floor| nonce.issued <= floor) {
            return Err(DigestError::Stale);
        }
        self.seen.insert(
            nonce.id,
            Seen {
                issued: nonce.issued,
                nc,
            },
        );
        Ok(())
    }

    fn make_room(&mut self, now: u64) {
        if now >= self.next_sweep || self.seen.len() >= self.cap {
            self.seen.retain(|_, s| is_fresh(s.issued, now));
            self.next_sweep = now.saturating_add(SWEEP_EVERY_SECS);
        }
        if self.seen.len() < self.cap {
            return;
        }
        // Still full of live nonces: forget the oldest eighth (at least) and refuse
        // anything issued up to then as stale, so the client fetches a new nonce.
        let mut issued: Vec<u64> = self.seen.values().map(|s| s.issued).collect();
        let k = issued.len() / 8;
        let (_, &mut cut, _) = issued.select_nth_unstable(k);
        self.seen.retain(|_, s| s.issued > cut);
        self.floor = Some(self.floor.map_or(cut, |f| f.max(cut)));
        tracing::warn!(
            remembered = self.seen.len(),
            cap = self.cap,
            "digest replay table full; older nonces now answered as stale"
        );
    }
}
