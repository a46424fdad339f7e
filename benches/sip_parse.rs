//! Parse plus typed Via/From/To/CSeq of a real INVITE with SDP and of a REGISTER: time and
//! heap allocations per message, ours against rsip 0.4 in the same run.
//!
//! `cargo bench --bench sip_parse` prints a summary table (median ns per message over 15
//! batches, allocations per message, ratio), then criterion's own estimates. Under
//! `cargo test` it runs one quick pass so the bench cannot rot.

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use criterion::Criterion;
use rsip::prelude::{HeadersExt, ToTypedHeader};
use switchboard::sip::msg::SipMessage;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(n, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An INVITE as a softphone sends it (Linphone-style), with SDP.
const INVITE: &str = "INVITE sip:+14155550100@switch.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK.Rt8dWQ3a1;rport\r\n\
Via: SIP/2.0/UDP 198.51.100.4:5060;branch=z9hG4bK776asdhds\r\n\
From: \"Alice Smith\" <sip:alice@switch.example.com>;tag=9fxced76sl\r\n\
To: <sip:+14155550100@switch.example.com>\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 20 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5062;transport=udp>;+sip.instance=\"<urn:uuid:3f1c2b1e-0f0e-4a6e-9c1b-6a1f0d2e9b11>\"\r\n\
Max-Forwards: 70\r\n\
User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n\
Supported: replaces, outbound, gruu\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 263\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=Talk\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 7078 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:7079 IN IP4 192.0.2.10\r\n";

/// A REGISTER with a bearer token (RFC 8898).
const REGISTER: &str = "REGISTER sip:switch.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK.a8Pq2;rport\r\n\
From: <sip:alice@switch.example.com>;tag=1928301774\r\n\
To: <sip:alice@switch.example.com>\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 314159 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5062;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:3f1c2b1e-0f0e-4a6e-9c1b-6a1f0d2e9b11>\";reg-id=1\r\n\
Max-Forwards: 70\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTSzEyMy0xNzAwMDAwMDAwIiwiaXNzIjoiU0sxMjMiLCJzdWIiOiJBQzEyMyIsImV4cCI6MTcwMDAwMzYwMCwiZ3JhbnRzIjp7ImlkZW50aXR5IjoiYWxpY2UifX0.c2lnbmF0dXJl\r\n\
User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\
\r\n";

/// Ours: parse from the datagram buffer (one copy into `Bytes`, as the UDP path does), then
/// the typed views a transaction layer and B2BUA read.
fn ours(raw: &[u8]) -> usize {
    let m = SipMessage::parse(Bytes::copy_from_slice(raw)).expect("valid");
    let via = m.top_via().expect("via");
    let from = m.from_header().expect("from");
    let to = m.to_header().expect("to");
    let cseq = m.cseq().expect("cseq");
    via.branch().map_or(0, str::len)
        + from.tag().map_or(0, str::len)
        + to.uri_text.len()
        + cseq.seq as usize
}

/// rsip 0.4: parse, then the same typed views.
fn theirs(raw: &[u8]) -> usize {
    let m = rsip::SipMessage::try_from(raw).expect("valid");
    let via = m.via_header().expect("via").typed().expect("typed via");
    let from = m.from_header().expect("from").typed().expect("typed from");
    let to = m.to_header().expect("to").typed().expect("typed to");
    let cseq = m.cseq_header().expect("cseq").typed().expect("typed cseq");
    via.branch().map_or(0, |b| b.to_string().len())
        + from.tag().map_or(0, |t| t.to_string().len())
        + to.uri.to_string().len()
        + cseq.seq as usize
}

fn allocs_per_call(f: fn(&[u8]) -> usize, raw: &[u8]) -> (usize, usize) {
    black_box(f(raw));
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    const N: usize = 100;
    for _ in 0..N {
        black_box(f(black_box(raw)));
    }
    (
        (ALLOCS.load(Ordering::Relaxed) - a0) / N,
        (BYTES.load(Ordering::Relaxed) - b0) / N,
    )
}

/// Median ns per call over `batches` batches of `per_batch` calls.
fn median_ns(f: fn(&[u8]) -> usize, raw: &[u8], batches: usize, per_batch: usize) -> f64 {
    let mut samples: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                black_box(f(black_box(raw)));
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (batches, per_batch) = if full { (15, 20_000) } else { (3, 200) };
    println!("message   parser        ns/msg  allocs/msg  bytes/msg");
    for (name, raw) in [
        ("INVITE", INVITE.as_bytes()),
        ("REGISTER", REGISTER.as_bytes()),
    ] {
        // Interleave the two parsers so machine noise hits both alike.
        let ours_ns = median_ns(ours, raw, batches, per_batch);
        let theirs_ns = median_ns(theirs, raw, batches, per_batch);
        let (oa, ob) = allocs_per_call(ours, raw);
        let (ta, tb) = allocs_per_call(theirs, raw);
        println!("{name:<9} switchboard {ours_ns:>8.0}  {oa:>10}  {ob:>9}");
        println!("{name:<9} rsip 0.4    {theirs_ns:>8.0}  {ta:>10}  {tb:>9}");
        println!(
            "{name:<9} speedup {:.1}x, allocations {oa} vs {ta}",
            theirs_ns / ours_ns
        );
    }
    if !full {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for (name, raw) in [
        ("invite", INVITE.as_bytes()),
        ("register", REGISTER.as_bytes()),
    ] {
        let mut g = c.benchmark_group(format!("parse_typed/{name}"));
        g.bench_function("switchboard", |b| b.iter(|| ours(black_box(raw))));
        g.bench_function("rsip-0.4", |b| b.iter(|| theirs(black_box(raw))));
        g.finish();
    }
    c.final_summary();
}
