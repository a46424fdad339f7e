//! The conference mixer's kernel per participant-frame: decode 20 ms of μ-law, queue it,
//! mix (N−1, the loudest 6 when more talk), encode each participant's frame, for a
//! 3-party and a 100-party conference (every participant talking: the worst case). What
//! the relay does around it (receive and send syscalls) is measured by the media bench.
//!
//! `cargo bench --bench mixer` prints ns per participant-frame (median of 15 batches) and
//! the participants one core could mix at that cost (a participant is 50 frames a second),
//! then criterion's estimates. Under `cargo test` it runs one quick pass.

// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use switchboard::media::g711::G711Law;
use switchboard::media::mixer::Mixer;

const FRAME: usize = 160;

/// A conference of `n` talkers, each with its own tone, as μ-law frames.
fn room(n: usize) -> (Mixer, Vec<[u8; FRAME]>) {
    let mut m = Mixer::default();
    let mut frames = Vec::new();
    for k in 0..n {
        m.add(k, false);
        let hz = 200.0 + 37.0 * k as f64;
        let mut f = [0u8; FRAME];
        for (i, b) in f.iter_mut().enumerate() {
            let s = (6000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16;
            *b = G711Law::Pcmu.encode(s);
        }
        frames.push(f);
    }
    (m, frames)
}

/// One 20 ms tick of the whole conference, as the relay thread does it.
fn tick(m: &mut Mixer, frames: &[[u8; FRAME]], pcm: &mut [i16; FRAME], out: &mut [u8; FRAME]) {
    for (k, f) in frames.iter().enumerate() {
        let n = G711Law::Pcmu.decode_slice(f, pcm);
        m.push(k, &pcm[..n]);
    }
    m.tick(
        |_, frame| {
            G711Law::Pcmu.encode_slice(frame, out);
            black_box(&out);
        },
        |_| {},
    );
}

fn ns_per_participant_frame(n: usize, ticks: usize) -> f64 {
    let (mut m, frames) = room(n);
    let (mut pcm, mut out) = ([0i16; FRAME], [0u8; FRAME]);
    let mut samples = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..ticks {
            tick(&mut m, &frames, &mut pcm, &mut out);
        }
        samples.push(t.elapsed().as_nanos() as f64 / (ticks * n) as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    // `--kernel` (benches/conference/run.py): the table alone, measured as long as a full run.
    let kernel = std::env::args().any(|a| a == "--kernel");
    let quick = kernel || !std::env::args().any(|a| a == "--bench");
    let ticks = if quick && !kernel { 20 } else { 2000 };
    println!("participants  ns/participant-frame  participants per core (50 frames/s)");
    for n in [3usize, 100] {
        let ns = ns_per_participant_frame(n, ticks);
        println!("{n:>12}  {ns:>20.0}  {:>10.0}", 1e9 / (ns * 50.0));
    }
    if quick {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for n in [3usize, 100] {
        let (mut m, frames) = room(n);
        let (mut pcm, mut out) = ([0i16; FRAME], [0u8; FRAME]);
        c.bench_function(&format!("mixer tick, {n} participants"), |b| {
            b.iter(|| tick(&mut m, &frames, &mut pcm, &mut out))
        });
    }
    c.final_summary();
}
