//! Sample-rate conversion to the 8 kHz the relay plays: for WAV prompts recorded at other
//! rates (22.05, 44.1, 48 kHz) and for speech (espeak-ng speaks at 22,050 Hz). rubato's FFT
//! resampler band-limits before it decimates, so nothing above 4 kHz folds back into the
//! telephone band. Runs once per prompt (the result is cached), never per packet.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// The relay's rate.
pub const TELEPHONE_RATE: u32 = 8000;

/// `input` (mono, `rate` Hz) at 8 kHz. Empty input or a rate of 0 gives nothing.
pub fn to_8k(input: &[i16], rate: u32) -> Vec<i16> {
    if rate == TELEPHONE_RATE {
        return input.to_vec();
    }
    if input.is_empty() || rate == 0 {
        return Vec::new();
    }
    let samples: Vec<f32> = input.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let resampled = Fft::<f32>::new(
        rate as usize,
        TELEPHONE_RATE as usize,
        1024,
        1,
        FixedSync::Both,
    )
    .ok()
    .and_then(|mut r| {
        let adapter = InterleavedSlice::new(&samples[..], 1, samples.len()).ok()?;
        r.process_all(&adapter, samples.len(), None).ok()
    });
    let Some(out) = resampled else {
        return Vec::new();
    };
    out.take_data()
        .into_iter()
        .map(|x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, secs: f64) -> Vec<i16> {
        (0..(f64::from(rate) * secs) as usize)
            .map(|n| {
                (12_000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// Energy of `x` at `hz` (8 kHz), by correlation with a sine and a cosine.
    fn power_at(x: &[i16], hz: f64) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for (n, &v) in x.iter().enumerate() {
            let w = 2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0;
            s += f64::from(v) * w.sin();
            c += f64::from(v) * w.cos();
        }
        (s * s + c * c) / (x.len() as f64).powi(2)
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_length() {
        for rate in [22_050, 44_100, 48_000, 11_025] {
            let out = to_8k(&sine(rate, 1000.0, 1.0), rate);
            assert!(
                (7_990..=8_010).contains(&out.len()),
                "{rate} Hz: {} samples for one second",
                out.len()
            );
            let mid = &out[1000..7000];
            assert!(
                power_at(mid, 1000.0) > 100.0 * power_at(mid, 1500.0),
                "{rate} Hz: the tone moved"
            );
            let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!((11_000..=13_000).contains(&peak), "{rate} Hz: peak {peak}");
        }
    }

    /// 6 kHz cannot be carried at 8 kHz: it is filtered, not folded to 2 kHz.
    #[test]
    fn nothing_above_4khz_folds_back() {
        let out = to_8k(&sine(22_050, 6000.0, 1.0), 22_050);
        let mid = &out[1000..7000];
        let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(peak < 200, "6 kHz came through as {peak}");
    }

    #[test]
    fn the_telephone_rate_and_nothing_pass_unchanged() {
        let x = sine(8000, 440.0, 0.1);
        assert_eq!(to_8k(&x, 8000), x);
        assert!(to_8k(&[], 22_050).is_empty());
        assert!(to_8k(&x, 0).is_empty());
    }
}
