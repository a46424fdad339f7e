//! `cargo run --release --example binding_memory [count]`: registers `count` (100,000)
//! distinct AORs, one binding each with realistic field sizes, in a `MemoryStore`, and
//! prints the heap it grew by per binding; then the same for presence entries.
//!
//! A counting global allocator sees every allocation. "requested" is what the program
//! asked for; "with malloc overhead" estimates what glibc malloc really uses (an 8-byte
//! header, 16-byte granularity, 32-byte minimum chunk), the figure to compare with the
//! DESIGN.md target (under 1 KB per registration).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use switchboard::registrar::location::{
    AorKey, Binding, ContactUpdate, LocationStore, MemoryStore, RegisterRequest,
};
use switchboard::registrar::presence::Presence;
use switchboard::sip::peer::Transport;

struct Counting;

static REQUESTED: AtomicI64 = AtomicI64::new(0);
static CHUNKS: AtomicI64 = AtomicI64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn chunk(size: usize) -> i64 {
    (size.div_ceil(16) * 16 + 16).max(32) as i64 - 8
}

fn grew(size: usize, by: i64) {
    REQUESTED.fetch_add(size as i64 * by, Ordering::Relaxed);
    CHUNKS.fetch_add(chunk(size) * by, Ordering::Relaxed);
    LIVE.fetch_add(by, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters only
// observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size(), 1);
        // SAFETY: same layout, same contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grew(layout.size(), -1);
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(layout.size(), -1);
        grew(new_size, 1);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Clone, Copy)]
struct Snapshot {
    requested: i64,
    chunks: i64,
    live: i64,
}

fn snapshot() -> Snapshot {
    Snapshot {
        requested: REQUESTED.load(Ordering::Relaxed),
        chunks: CHUNKS.load(Ordering::Relaxed),
        live: LIVE.load(Ordering::Relaxed),
    }
}

fn report(what: &str, before: Snapshot, after: Snapshot, n: usize) {
    let per = |a: i64, b: i64| (a - b) as f64 / n as f64;
    println!(
        "{what}: {:.0} bytes requested, {:.0} bytes with malloc overhead, {:.1} allocations, per entry ({n} entries)",
        per(after.requested, before.requested),
        per(after.chunks, before.chunks),
        per(after.live, before.live),
    );
}

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("count"));
    let now = 1_700_000_000;
    let keys: Vec<AorKey> = (0..n)
        .map(|i| AorKey::new(ACCOUNT, format!("user_{i:06}")))
        .collect();
    println!(
        "size_of::<Binding>() = {} bytes, size_of::<AorKey>() = {} bytes",
        std::mem::size_of::<Binding>(),
        std::mem::size_of::<AorKey>()
    );

    let before = snapshot();
    let store = MemoryStore::new();
    for (i, key) in keys.iter().enumerate() {
        // ~60-byte contact, ~40-byte Call-ID, ~30-byte User-Agent, urn:uuid instance.
        let contact = format!(
            "sip:{}@198.51.{}.{}:{};transport=tcp;ob",
            key.identity,
            i % 256,
            (i / 256) % 256,
            10_000 + i % 50_000
        );
        let call_id = format!("{i:08x}-5e2b-4c1d-9a7f-2b6d8c0e4f1a@host");
        let b = Binding {
            contact: contact.into(),
            expires_at: now + 3600,
            call_id: call_id.clone().into(),
            cseq: 1,
            instance: Some(format!("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c9{i:06x}>").into()),
            reg_id: Some(1),
            path: Box::default(),
            source: format!("198.51.100.{}:{}", i % 256, 10_000 + i % 50_000)
                .parse()
                .expect("addr"),
            transport: Transport::Tcp,
            conn: Some(i as u64),
            user_agent: Some("Switchboard-Phone/2.4.1 (Linux)".into()),
            q: None,
            registered_at: now,
            edge: None,
        };
        let req = RegisterRequest {
            key: key.clone(),
            call_id: call_id.into(),
            cseq: 1,
            wildcard_remove: false,
            updates: vec![ContactUpdate::Add(b)],
            max_contacts: 10,
            now,
        };
        store.register_now(req).expect("register");
    }
    let after = snapshot();
    assert_eq!(store.binding_count(), n);
    report(
        "location store (AOR key + map slot + binding)",
        before,
        after,
        n,
    );

    let before = snapshot();
    let presence = Presence::new();
    for key in &keys {
        presence.on_bindings(key, 1, now);
    }
    let after = snapshot();
    report("presence (AOR key + map slot + status)", before, after, n);
    println!("(run with --release; the figure is the heap growth, not RSS)");
}
