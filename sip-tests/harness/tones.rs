//! Tones and what a phone heard: a test sends a pure tone per phone and checks what each
//! phone received with a Goertzel filter (one frequency's power), so a mix, a hold or an
//! announcement is told apart by frequency rather than by timing.

use super::rtp::linear_to_ulaw;

/// The power of `hz` in `x` (8 kHz samples), normalised by the length: a tone of
/// amplitude A gives about A²/4 (a −12 dBFS tone ~1.3e7), whatever the length.
pub fn goertzel(x: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
}

/// Frame `i` (20 ms, μ-law) of a continuous `hz` tone at −12 dBFS.
pub fn tone(hz: f64, i: usize) -> Vec<u8> {
    (0..160)
        .map(|n| {
            let t = (i * 160 + n) as f64 / 8000.0;
            linear_to_ulaw((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// `ms` of an `hz` tone at −12 dBFS as 8 kHz linear samples (for a WAV to `<Play>`).
pub fn tone_samples(hz: f64, ms: u32) -> Vec<i16> {
    (0..8 * ms as usize)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// A tone counts as heard above this Goertzel power (a −12 dBFS tone gives ~1.3e7).
pub const PRESENT: f64 = 1e5;

/// `hz` is heard in `heard` (as [`assert_hears`] has it).
pub fn present(heard: &[i16], hz: f64) -> bool {
    goertzel(heard, hz) > PRESENT
}

/// `hz` is not heard in `heard` (as [`assert_not_hears`] has it).
pub fn absent(heard: &[i16], hz: f64) -> bool {
    goertzel(heard, hz) < PRESENT / 100.0
}

pub fn assert_hears(heard: &[i16], hz: f64, what: &str) {
    let p = goertzel(heard, hz);
    assert!(
        p > PRESENT,
        "{what}: {hz} Hz missing (power {p:.0}, {} samples)",
        heard.len()
    );
}

pub fn assert_not_hears(heard: &[i16], hz: f64, what: &str) {
    let p = goertzel(heard, hz);
    assert!(
        p < PRESENT / 100.0,
        "{what}: {hz} Hz present (power {p:.0})"
    );
}

/// Samples louder than `level` (hold music, a prompt: energy without a known frequency).
pub fn loud_samples(heard: &[i16], level: i16) -> usize {
    heard.iter().filter(|s| s.abs() > level).count()
}
