//! How much disk recordings may take: a cap on the recordings directory
//! (`[media] recordings_max_bytes`) and a floor of free space on its filesystem
//! (`recordings_min_free_bytes`). A `<Record>` reserves the most it can write (its
//! `maxLength` of 8 kHz 16-bit audio) before it starts; a reservation that would pass the
//! cap or leave less free space than the floor is refused, and the verb is skipped with a
//! logged reason, rather than filling the disk that the CDRs, the logs and the switch
//! itself need. The reservation is given back when the recording ends; what it really
//! wrote counts from then on.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The two limits, from `[media]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Most bytes of recordings kept (stored plus being written); 0 = no cap.
    pub max_bytes: u64,
    /// Least free space left on the recordings' filesystem; 0 = no floor.
    pub min_free_bytes: u64,
}

/// Why a recording may not start.
#[derive(Debug, thiserror::Error)]
pub enum StorageRefusal {
    #[error(
        "recordings would take {would} bytes, past recordings_max_bytes ({max}): {used} stored, {reserved} being written, {want} asked"
    )]
    Cap {
        used: u64,
        reserved: u64,
        want: u64,
        would: u64,
        max: u64,
    },
    #[error(
        "{free} bytes free on the recordings filesystem, and {want} asked would leave less than recordings_min_free_bytes ({floor})"
    )]
    Disk { free: u64, want: u64, floor: u64 },
    #[error("free space of the recordings directory unknown: {0}")]
    Unknown(#[from] io::Error),
}

#[derive(Debug, Default)]
struct Usage {
    /// Bytes of the stored recordings.
    used: u64,
    /// Bytes reserved by recordings being written.
    reserved: u64,
}

/// The bytes recordings take. Share it as `Arc<StorageBudget>`.
#[derive(Debug, Default)]
pub struct StorageBudget {
    usage: Mutex<Usage>,
}

/// Room for one recording being written; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<StorageBudget>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut u = self.budget.usage();
        u.reserved = u.reserved.saturating_sub(self.bytes);
    }
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

impl StorageBudget {
    /// A budget with `used` bytes already stored.
    pub fn new(used: u64) -> Arc<StorageBudget> {
        Arc::new(StorageBudget {
            usage: Mutex::new(Usage { used, reserved: 0 }),
        })
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A recording of `bytes` was stored.
    pub fn stored(&self, bytes: u64) {
        self.usage().used += bytes;
    }

    /// A recording of `bytes` was deleted.
    pub fn removed(&self, bytes: u64) {
        let mut u = self.usage();
        u.used = u.used.saturating_sub(bytes);
    }

    /// Bytes stored and reserved now.
    pub fn in_use(&self) -> (u64, u64) {
        let u = self.usage();
        (u.used, u.reserved)
    }

    /// Reserves `want` bytes for a recording about to be written in `dir`, whose
    /// filesystem has `free` bytes free (`free_bytes`, passed in so tests can say).
    pub fn reserve(
        self: &Arc<Self>,
        want: u64,
        free: u64,
        limits: StorageLimits,
    ) -> Result<Reservation, StorageRefusal> {
        let mut u = self.usage();
        let would = u.used + u.reserved + want;
        if limits.max_bytes > 0 && would > limits.max_bytes {
            return Err(StorageRefusal::Cap {
                used: u.used,
                reserved: u.reserved,
                want,
                would,
                max: limits.max_bytes,
            });
        }
        // Other recordings' reservations are not yet on disk: they come off the free space.
        let free_after = free.saturating_sub(u.reserved).saturating_sub(want);
        if limits.min_free_bytes > 0 && free_after < limits.min_free_bytes {
            return Err(StorageRefusal::Disk {
                free,
                want,
                floor: limits.min_free_bytes,
            });
        }
        u.reserved += want;
        Ok(Reservation {
            budget: Arc::clone(self),
            bytes: want,
        })
    }
}

/// The most a `<Record>` of `max_length_secs` writes: 8 kHz 16-bit mono plus the header.
pub fn record_bytes(max_length_secs: u64) -> u64 {
    max_length_secs.saturating_mul(16_000) + 44
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    #[test]
    fn the_cap_counts_stored_and_reserved_bytes() {
        let b = StorageBudget::new(900);
        let limits = StorageLimits {
            max_bytes: 1000,
            min_free_bytes: 0,
        };
        let r = b.reserve(60, GB, limits).expect("960 fits");
        assert!(matches!(
            b.reserve(60, GB, limits),
            Err(StorageRefusal::Cap { would: 1020, .. })
        ));
        drop(r);
        assert_eq!(b.in_use(), (900, 0));
        b.stored(60);
        assert!(b.reserve(60, GB, limits).is_err());
        b.removed(500);
        assert!(b.reserve(60, GB, limits).is_ok());
    }

    #[test]
    fn the_floor_keeps_free_space() {
        let b = StorageBudget::new(0);
        let limits = StorageLimits {
            max_bytes: 0,
            min_free_bytes: 100,
        };
        let r = b.reserve(50, 200, limits).expect("150 left");
        // The first reservation is not on disk yet but will be.
        assert!(matches!(
            b.reserve(60, 200, limits),
            Err(StorageRefusal::Disk { .. })
        ));
        drop(r);
        assert!(b.reserve(60, 200, limits).is_ok());
    }

    #[test]
    fn free_space_of_a_real_directory() {
        let free = free_bytes(Path::new(".")).expect("statvfs");
        assert!(free > 0);
    }

    #[test]
    fn record_bytes_is_the_wav_size() {
        assert_eq!(record_bytes(1), 16_044);
        assert_eq!(record_bytes(3600), 57_600_044);
    }
}
