//! Silence detection for `<Record timeout="N">`: the recording ends after N seconds of
//! silence; `timeout="0"` disables it (reference/twiml-and-twilio-client.md, `<Record>`).
//!
//! Each pushed frame (normally 20 ms, 160 samples of 8 kHz PCM) is voiced or silent by its
//! mean energy against a fixed threshold of −40 dBFS RMS, i.e. an RMS of 1% of full scale
//! (≈ 328 on the 16-bit scale). Why that level: conversational speech on a phone line sits
//! around −20 to −30 dBFS, while line and background noise after G.711 is typically −50 to
//! −60 dBFS and digital silence decodes to 0 (μ-law) or ±8 (A-law), about −72 dBFS. −40
//! leaves some 10 dB of margin on both sides, which is the usual choice of simple energy
//! VADs.
//!
//! Voice is declared only after an *onset* of 60 ms of consecutive voiced audio, so that a
//! click, a pop or one loud packet neither counts as the caller speaking (which would keep
//! an otherwise empty recording, see [`SilenceDetector::heard_voice`]) nor restarts the
//! silence clock. There is no hangover in the usual VAD sense (holding "voiced" for a
//! while after the energy drops): a VAD needs it not to clip word endings out of what it
//! transmits, but nothing is clipped here; the detector only times silence, and a hangover
//! would merely add the same constant to every timeout.
//!
//! Silence is counted from the start of the recording as well as after speech, as Twilio
//! does: a caller who says nothing ends the recording after `timeout` seconds, and that
//! recording is then empty (no voice heard) and dropped by the caller of this module.
//!
//! Time is counted in samples, not frames, so frames of any length work; `push` does no
//! allocation.

use std::time::Duration;

/// Samples per second of the PCM this detector is fed.
const SAMPLE_RATE: u64 = 8000;

/// The voiced/silent threshold, −40 dBFS RMS, as a mean square: `(32768 · 10^(−40/20))²`
/// = 327.68² ≈ 107 374.
pub const THRESHOLD_MEAN_SQUARE: u64 = 107_374;

/// Consecutive voiced audio needed before it counts as voice: 60 ms (three 20 ms frames).
pub const ONSET_SAMPLES: u64 = 480;

/// Times silence on a stream of 8 kHz PCM for `<Record timeout>`.
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    /// `timeout` in samples; 0 disables ending on silence.
    timeout_samples: u64,
    /// Silence (or audio not yet confirmed as voice) since the last confirmed voice, or
    /// since the start.
    silent_samples: u64,
    /// Length of the current run of voiced frames.
    voiced_run: u64,
    heard_voice: bool,
    /// Samples pushed so far.
    samples: u64,
    /// Where the first confirmed voice began and where the last confirmed voice ended, in
    /// samples from the start: what `trim="trim-silence"` keeps.
    voiced_span: Option<(u64, u64)>,
}

impl SilenceDetector {
    /// A detector that reports `timeout` of silence; `Duration::ZERO` never does (Twilio's
    /// `timeout="0"`). Sub-millisecond parts are ignored.
    pub fn new(timeout: Duration) -> SilenceDetector {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        SilenceDetector {
            timeout_samples: millis.saturating_mul(SAMPLE_RATE / 1000),
            silent_samples: 0,
            voiced_run: 0,
            heard_voice: false,
            samples: 0,
            voiced_span: None,
        }
    }

    /// Whether one frame's energy is above the threshold (−40 dBFS RMS). An empty frame
    /// is silent.
    pub fn frame_is_voiced(frame: &[i16]) -> bool {
        // Σ s² ≤ 2³⁰ per sample: a u64 holds it for any frame that fits in memory.
        let energy: u64 = frame
            .iter()
            .map(|&s| {
                let s = i64::from(s);
                (s * s) as u64
            })
            .sum();
        !frame.is_empty() && energy > THRESHOLD_MEAN_SQUARE * frame.len() as u64
    }

    /// Feeds one frame; true once silence has lasted the timeout (and for every further
    /// silent frame), always false when the timeout is zero.
    pub fn push(&mut self, frame: &[i16]) -> bool {
        let len = frame.len() as u64;
        if Self::frame_is_voiced(frame) {
            self.voiced_run += len;
        } else {
            self.voiced_run = 0;
        }
        self.samples += len;
        if self.voiced_run >= ONSET_SAMPLES {
            self.heard_voice = true;
            self.silent_samples = 0;
            let run_start = self.samples - self.voiced_run;
            let first = self.voiced_span.map_or(run_start, |(first, _)| first);
            self.voiced_span = Some((first, self.samples));
        } else {
            // Silence, or voiced audio too short to be speech yet: if the run goes on to
            // the onset, the clock is reset then.
            self.silent_samples += len;
        }
        self.timed_out()
    }

    /// From the start of the first confirmed voice to the end of the last, in samples since
    /// the first frame pushed; `None` when no voice was heard.
    pub fn voiced_span(&self) -> Option<(u64, u64)> {
        self.voiced_span
    }

    /// Whether the silence so far has reached a (non-zero) timeout.
    pub fn timed_out(&self) -> bool {
        self.timeout_samples != 0 && self.silent_samples >= self.timeout_samples
    }

    /// Whether voice (at least [`ONSET_SAMPLES`] of voiced audio in a row) has been heard:
    /// Twilio drops a recording in which nobody spoke.
    pub fn heard_voice(&self) -> bool {
        self.heard_voice
    }

    /// How long the current silence has lasted.
    pub fn silence(&self) -> Duration {
        Duration::from_millis(self.silent_samples * 1000 / SAMPLE_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 160;

    /// A 20 ms frame of a 440 Hz tone with the given peak amplitude.
    fn tone(amplitude: f64) -> [i16; FRAME] {
        let mut f = [0i16; FRAME];
        for (i, s) in f.iter_mut().enumerate() {
            *s =
                (amplitude * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16;
        }
        f
    }

    /// Peak amplitude of a sine whose RMS is `dbfs`.
    fn sine_peak(dbfs: f64) -> f64 {
        32768.0 * 10f64.powf(dbfs / 20.0) * std::f64::consts::SQRT_2
    }

    #[test]
    fn threshold_is_minus_40_dbfs() {
        let expected = (32768.0 * 10f64.powf(-40.0 / 20.0)).powi(2);
        assert!((THRESHOLD_MEAN_SQUARE as f64 - expected).abs() < 1.0);
        assert!(SilenceDetector::frame_is_voiced(&tone(sine_peak(-38.0))));
        assert!(SilenceDetector::frame_is_voiced(&tone(sine_peak(-20.0))));
        assert!(!SilenceDetector::frame_is_voiced(&tone(sine_peak(-42.0))));
        assert!(!SilenceDetector::frame_is_voiced(&[0; FRAME]));
        // A-law's idle pattern decodes to ±8.
        assert!(!SilenceDetector::frame_is_voiced(&[8; FRAME]));
        assert!(!SilenceDetector::frame_is_voiced(&[]));
        // Full scale does not overflow.
        assert!(SilenceDetector::frame_is_voiced(&[i16::MIN; FRAME]));
    }

    #[test]
    fn silence_from_the_start_times_out() {
        let mut d = SilenceDetector::new(Duration::from_secs(5));
        let quiet = [0i16; FRAME];
        // 5 s = 250 frames: the 250th ends it.
        for n in 1..250 {
            assert!(!d.push(&quiet), "frame {n}");
        }
        assert!(d.push(&quiet));
        assert!(d.push(&quiet), "stays timed out");
        assert!(!d.heard_voice());
        assert_eq!(d.silence(), Duration::from_millis(5020));
    }

    #[test]
    fn voice_resets_the_clock_and_is_remembered() {
        let mut d = SilenceDetector::new(Duration::from_secs(1));
        let quiet = [0i16; FRAME];
        let loud = tone(sine_peak(-20.0));
        for _ in 0..40 {
            assert!(!d.push(&quiet));
        }
        for _ in 0..3 {
            assert!(!d.push(&loud));
        }
        assert!(d.heard_voice());
        assert_eq!(d.silence(), Duration::ZERO);
        // A full second of silence again (50 frames) is needed after the voice.
        for n in 1..50 {
            assert!(!d.push(&quiet), "frame {n}");
        }
        assert!(d.push(&quiet));
        assert!(d.heard_voice());
    }

    #[test]
    fn clicks_are_not_voice() {
        let mut d = SilenceDetector::new(Duration::from_secs(1));
        let quiet = [0i16; FRAME];
        let loud = tone(sine_peak(-10.0));
        // Two loud frames at a time (40 ms) never reach the 60 ms onset.
        for _ in 0..10 {
            d.push(&loud);
            d.push(&loud);
            for _ in 0..3 {
                d.push(&quiet);
            }
        }
        assert!(!d.heard_voice());
        assert!(d.timed_out(), "clicks do not hold the recording open");
    }

    #[test]
    fn zero_timeout_never_ends() {
        let mut d = SilenceDetector::new(Duration::ZERO);
        for _ in 0..10_000 {
            assert!(!d.push(&[0; FRAME]));
        }
        assert!(!d.timed_out());
        for _ in 0..3 {
            d.push(&tone(sine_peak(-20.0)));
        }
        assert!(d.heard_voice(), "voice is still tracked");
    }

    #[test]
    fn odd_frame_lengths_count_by_samples() {
        let mut d = SilenceDetector::new(Duration::from_millis(100));
        // 800 samples = 100 ms, pushed in 7 uneven pieces.
        for len in [1, 99, 160, 240, 100, 100] {
            assert!(!d.push(&vec![0; len]));
        }
        assert!(d.push(&[0; 100]));
    }

    #[test]
    fn the_voiced_span_runs_from_the_first_onset_to_the_last_voice() {
        let mut d = SilenceDetector::new(Duration::ZERO);
        let silence = [0i16; 160];
        let voice = [3_000i16; 160];
        assert_eq!(d.voiced_span(), None);
        for _ in 0..5 {
            d.push(&silence);
        }
        // One loud frame is a click, not voice.
        d.push(&voice);
        d.push(&silence);
        assert_eq!(d.voiced_span(), None);
        for _ in 0..10 {
            d.push(&voice);
        }
        assert_eq!(d.voiced_span(), Some((7 * 160, 17 * 160)));
        for _ in 0..4 {
            d.push(&silence);
        }
        for _ in 0..3 {
            d.push(&voice);
        }
        for _ in 0..6 {
            d.push(&silence);
        }
        assert_eq!(d.voiced_span(), Some((7 * 160, 24 * 160)));
    }
}
