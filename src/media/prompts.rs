//! Audio the switch plays on its own account, as 8 kHz PCM shared by every call:
//!
//! - [`application_error`]: what Twilio plays ("an application error has occurred")
//!   before hanging up when a call's instructions cannot be fetched and there is no
//!   fallback that works. A spoken WAV built into the binary (how it was made:
//!   assets/prompts/README.md);
//! - [`beep`]: the tone `<Record playBeep="true">` plays before recording starts.
//!   Synthesised rather than shipped, since a tone is a few lines of arithmetic.
//!
//! Each is decoded (or generated) once, at first use, and handed out as a shared slice.

use std::f64::consts::PI;
use std::sync::{Arc, OnceLock};

use super::wav::{RECORDING_SAMPLE_RATE, Wav};

/// The error prompt as shipped: 8 kHz mono μ-law.
static APPLICATION_ERROR_WAV: &[u8] = include_bytes!("../../assets/prompts/application-error.wav");

/// Beep pitch. Twilio documents no frequency for its record beep; 1 kHz is the usual
/// "record after the tone" pitch and sits mid-band on a telephone line.
pub const BEEP_HZ: u32 = 1000;
/// Beep length: half a second.
pub const BEEP_MS: u32 = 500;
/// Beep level, peak: −10 dBFS (about 10 362), loud enough to be unmistakable, with
/// headroom so that G.711 and any downstream gain do not clip it.
const BEEP_PEAK: f64 = 10_362.0;
/// Linear fade in and out, so the tone starts and stops without a click.
const BEEP_RAMP_MS: u32 = 10;

/// "We are sorry, an application error has occurred. Goodbye.", about 4 s.
pub fn application_error() -> Arc<[i16]> {
    static PCM: OnceLock<Arc<[i16]>> = OnceLock::new();
    PCM.get_or_init(|| {
        // A build-time asset, checked by the tests below: failing here is a build bug.
        let wav = Wav::parse(APPLICATION_ERROR_WAV, APPLICATION_ERROR_WAV.len())
            .expect("the built-in application-error prompt is a valid WAV");
        wav.to_pcm_8k().into()
    })
    .clone()
}

/// The `<Record>` beep: [`BEEP_MS`] of [`BEEP_HZ`] at −10 dBFS with 10 ms fades.
pub fn beep() -> Arc<[i16]> {
    static PCM: OnceLock<Arc<[i16]>> = OnceLock::new();
    PCM.get_or_init(|| {
        let rate = f64::from(RECORDING_SAMPLE_RATE);
        let len = RECORDING_SAMPLE_RATE * BEEP_MS / 1000;
        let ramp = RECORDING_SAMPLE_RATE * BEEP_RAMP_MS / 1000;
        (0..len)
            .map(|i| {
                let edge = i.min(len - 1 - i);
                let gain = f64::from(edge.min(ramp)) / f64::from(ramp);
                let phase = 2.0 * PI * f64::from(BEEP_HZ) * f64::from(i) / rate;
                (BEEP_PEAK * gain * phase.sin()).round() as i16
            })
            .collect()
    })
    .clone()
}

/// What a conference's waiting participants hear without a `waitUrl`: a soft arpeggio
/// (C major, 400 ms notes with fades, at about −20 dBFS) and a rest, 4 s, made here so
/// the repository ships no recording it would need a licence for.
pub fn hold_music() -> Arc<[i16]> {
    static PCM: OnceLock<Arc<[i16]>> = OnceLock::new();
    PCM.get_or_init(|| {
        const NOTES_HZ: [f64; 8] = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 261.63, 196.0];
        const NOTE_MS: u32 = 400;
        const REST_MS: u32 = 800;
        let rate = f64::from(RECORDING_SAMPLE_RATE);
        let note_len = (RECORDING_SAMPLE_RATE * NOTE_MS / 1000) as usize;
        let ramp = (RECORDING_SAMPLE_RATE * 40 / 1000) as usize;
        let mut pcm = Vec::with_capacity(note_len * NOTES_HZ.len() + 8 * REST_MS as usize);
        for hz in NOTES_HZ {
            for i in 0..note_len {
                let edge = i.min(note_len - 1 - i).min(ramp);
                let gain = edge as f64 / ramp as f64;
                let phase = 2.0 * PI * hz * i as f64 / rate;
                // A little of the octave above makes it less of a test tone.
                let v = 0.8 * phase.sin() + 0.2 * (2.0 * phase).sin();
                pcm.push((3_300.0 * gain * v).round() as i16);
            }
        }
        pcm.resize(
            pcm.len() + (RECORDING_SAMPLE_RATE * REST_MS / 1000) as usize,
            0,
        );
        pcm.into()
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::G711Law;
    use crate::media::wav::WavEncoding;

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn application_error_decodes_and_is_speech_length() {
        let wav = Wav::parse(APPLICATION_ERROR_WAV, usize::MAX).expect("valid");
        assert_eq!(wav.format().encoding, WavEncoding::G711(G711Law::Pcmu));
        assert_eq!((wav.format().sample_rate, wav.format().channels), (8000, 1));
        let pcm = application_error();
        // About 4 s of speech: between 2 and 8 s, and not silence.
        assert!(
            (16_000..64_000).contains(&pcm.len()),
            "{} samples",
            pcm.len()
        );
        assert!(rms(&pcm) > 1000.0, "rms {}", rms(&pcm));
        // Decoded once: every call shares the same samples.
        assert!(Arc::ptr_eq(&pcm, &application_error()));
    }

    #[test]
    fn beep_is_a_half_second_tone() {
        let pcm = beep();
        assert_eq!(pcm.len(), 4000);
        assert!(Arc::ptr_eq(&pcm, &beep()));
        // Fades from and to silence.
        assert_eq!((pcm[0], pcm[pcm.len() - 1]), (0, 0));
        let peak = pcm.iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert!((10_000..=10_362).contains(&peak), "peak {peak}");
        // 1 kHz at 8 kHz: 8 samples per cycle, so 2 zero crossings every 8 samples.
        let middle = &pcm[800..3200];
        let crossings = middle
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((590..=610).contains(&crossings), "{crossings} crossings");
        assert!((rms(middle) - BEEP_PEAK / 2f64.sqrt()).abs() < 100.0);
    }
}
