//! The conference mixer's kernel: one [`Mixer`] per conference, run by the relay thread
//! that holds every participant's endpoint (`relay_conference.rs`), on the 20 ms media
//! clock.
//!
//! Each tick takes one frame (160 samples, 8 kHz linear) from every participant's
//! [`SampleFifo`] (filled as its RTP arrives, whatever its packet time, played out with one
//! frame of jitter in hand), sums what may be
//! heard, and gives each participant the sum minus its own contribution (the N−1 mix:
//! nobody hears themselves), saturated to 16 bits. Muted participants and silent frames
//! are left out of the sum; past [`TOP_K`] talkers only the loudest are mixed, so a large
//! room costs the same as a small one per listener. A sound for everyone (the join and
//! leave beep) is added to every output. A coach (TwiML `coach`) hears everyone but is
//! heard only by the participant it coaches: it is left out of the sum and added to that
//! one's frame. Speech detection with hysteresis reports who starts and stops talking
//! (`speaker` status callbacks).
//!
//! Pure: no I/O, no clock, and no allocation per tick (participants are allocated when
//! they join).

use std::sync::Arc;

use super::player::FRAME_SAMPLES;

/// At most this many talkers are mixed in one tick (the loudest).
pub const TOP_K: usize = 6;
/// A participant's queue holds at most this much audio (200 ms); a sender running fast
/// loses its oldest samples rather than delaying everyone.
const FIFO_SAMPLES: usize = 1600;
/// More than this in the queue (60 ms) at a tick: the oldest is dropped down to it, so the
/// mix's delay stays bounded when a sender's clock runs ahead.
const FIFO_TARGET: usize = 480;
/// A participant is mixed once this much has queued (40 ms), and again after the queue ran
/// dry: packets arriving a few ms either side of the tick would otherwise leave every
/// other frame empty (a choppy voice), so the queue keeps one frame of jitter in hand.
const PLAYOUT_SAMPLES: usize = 2 * FRAME_SAMPLES;
/// Mean absolute level of a frame that counts as speech (about −40 dBFS).
const SPEECH_LEVEL: u32 = 330;
/// Frames of speech before "speaking", of quiet before "stopped" (hysteresis).
const SPEECH_ON_FRAMES: u8 = 3;
const SPEECH_OFF_FRAMES: u8 = 25;

/// What a coach whose participant left coaches: no key (slots are small numbers), so it
/// is heard by nobody, as a whisper must never reach the others.
pub const NOBODY: usize = usize::MAX;

/// Samples waiting to be mixed, in arrival order.
pub struct SampleFifo {
    buf: Box<[i16; FIFO_SAMPLES]>,
    head: usize,
    len: usize,
}

impl Default for SampleFifo {
    fn default() -> Self {
        SampleFifo {
            buf: Box::new([0; FIFO_SAMPLES]),
            head: 0,
            len: 0,
        }
    }
}

impl SampleFifo {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `samples`, dropping the oldest when full.
    pub fn push(&mut self, samples: &[i16]) {
        // Only the newest FIFO_SAMPLES can stay.
        let samples = &samples[samples.len().saturating_sub(FIFO_SAMPLES)..];
        let overflow = (self.len + samples.len()).saturating_sub(FIFO_SAMPLES);
        self.head = (self.head + overflow) % FIFO_SAMPLES;
        self.len -= overflow;
        // Copy in at most two runs (the ring wraps once at most).
        let tail = (self.head + self.len) % FIFO_SAMPLES;
        let first = samples.len().min(FIFO_SAMPLES - tail);
        self.buf[tail..tail + first].copy_from_slice(&samples[..first]);
        self.buf[..samples.len() - first].copy_from_slice(&samples[first..]);
        self.len += samples.len();
    }

    /// Drops the oldest samples until at most `keep` are left.
    pub fn trim_to(&mut self, keep: usize) {
        if self.len > keep {
            let drop = self.len - keep;
            self.head = (self.head + drop) % FIFO_SAMPLES;
            self.len = keep;
        }
    }

    /// Fills `out` from the front; what is missing is silence. Returns how many samples
    /// were real.
    pub fn pop_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> usize {
        let n = self.len.min(FRAME_SAMPLES);
        let first = n.min(FIFO_SAMPLES - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        out[n..].fill(0);
        self.head = (self.head + n) % FIFO_SAMPLES;
        self.len -= n;
        n
    }
}

/// One participant as the mixer sees it. `key` is the caller's name for it (the relay
/// uses its slot).
struct Participant {
    key: usize,
    muted: bool,
    /// The key of the participant this one coaches: only that one hears it.
    coaching: Option<usize>,
    fifo: SampleFifo,
    frame: [i16; FRAME_SAMPLES],
    /// Audible this tick (not muted, not silent).
    audible: bool,
    /// In everyone's sum this tick (audible, not a coach, among the loudest).
    mixed: bool,
    /// Enough is queued to play out (see [`PLAYOUT_SAMPLES`]).
    playing: bool,
    level: u32,
    speaking: bool,
    /// Consecutive frames on the other side of the speech threshold.
    run: u8,
}

/// What a tick reports besides the audio: a participant started or stopped talking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerChange {
    pub key: usize,
    pub speaking: bool,
}

/// One conference's mixing state.
pub struct Mixer {
    participants: Vec<Participant>,
    /// A sound everyone hears (the beep), and how far it has played.
    announcement: Option<(Arc<[i16]>, usize)>,
    sum: Box<[i32; FRAME_SAMPLES]>,
    /// The last tick's whole mix (what a listener who says nothing hears): the
    /// conference's recording.
    mix: [i16; FRAME_SAMPLES],
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer {
            participants: Vec::with_capacity(8),
            announcement: None,
            sum: Box::new([0; FRAME_SAMPLES]),
            mix: [0; FRAME_SAMPLES],
        }
    }
}

impl Mixer {
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.participants.iter().map(|p| p.key)
    }

    pub fn contains(&self, key: usize) -> bool {
        self.participants.iter().any(|p| p.key == key)
    }

    /// Adds a participant (again: only its mute changes).
    pub fn add(&mut self, key: usize, muted: bool) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.key == key) {
            p.muted = muted;
            return;
        }
        self.participants.push(Participant {
            key,
            muted,
            coaching: None,
            fifo: SampleFifo::default(),
            frame: [0; FRAME_SAMPLES],
            audible: false,
            mixed: false,
            playing: false,
            level: 0,
            speaking: false,
            run: 0,
        });
    }

    /// Takes the participant out; whoever coached it is heard by nobody until told again
    /// (its key may be reused by the next one to join).
    pub fn remove(&mut self, key: usize) {
        self.participants.retain(|p| p.key != key);
        for p in &mut self.participants {
            if p.coaching == Some(key) {
                p.coaching = Some(NOBODY);
            }
        }
    }

    /// `key` coaches `coached` (heard by it alone), or with `None` is heard by everyone
    /// again. A coached key not in the conference leaves `key` heard by nobody.
    pub fn set_coaching(&mut self, key: usize, coached: Option<usize>) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.key == key) {
            p.coaching = coached;
        }
    }

    pub fn has_coaches(&self) -> bool {
        self.participants.iter().any(|p| p.coaching.is_some())
    }

    /// Whether `key` is a coach (what `set_coaching` was last told).
    pub fn is_coach(&self, key: usize) -> bool {
        self.participants
            .iter()
            .any(|p| p.key == key && p.coaching.is_some())
    }

    pub fn set_muted(&mut self, key: usize, muted: bool) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.key == key) {
            p.muted = muted;
        }
    }

    /// Audio a participant sent (decoded, 8 kHz).
    pub fn push(&mut self, key: usize, samples: &[i16]) {
        if let Some(p) = self.participants.iter_mut().find(|p| p.key == key) {
            p.fifo.push(samples);
        }
    }

    /// The last tick's whole mix.
    pub fn mix(&self) -> &[i16; FRAME_SAMPLES] {
        &self.mix
    }

    /// Everyone hears `pcm` once (replaces one still playing).
    pub fn announce(&mut self, pcm: Arc<[i16]>) {
        self.announcement = Some((pcm, 0));
    }

    /// One 20 ms tick: `out(key, frame)` for every participant with what it hears, and
    /// `speaker(change)` for each change of who is talking.
    pub fn tick(
        &mut self,
        mut out: impl FnMut(usize, &[i16; FRAME_SAMPLES]),
        mut speaker: impl FnMut(SpeakerChange),
    ) {
        // Take one frame from everyone; measure it.
        for p in &mut self.participants {
            p.fifo.trim_to(FIFO_TARGET);
            if !p.playing && p.fifo.len() >= PLAYOUT_SAMPLES {
                p.playing = true;
            }
            let real = if p.playing {
                p.fifo.pop_frame(&mut p.frame)
            } else {
                p.frame.fill(0);
                0
            };
            if real < FRAME_SAMPLES {
                // Ran dry: wait for a frame of margin again.
                p.playing = false;
            }
            let sum: u32 = p.frame.iter().map(|s| u32::from(s.unsigned_abs())).sum();
            p.level = if real == 0 {
                0
            } else {
                sum / FRAME_SAMPLES as u32
            };
            p.audible = !p.muted && p.level > 0;
            p.mixed = p.audible && p.coaching.is_none();
            let talking = p.audible && p.level >= SPEECH_LEVEL;
            if talking == p.speaking {
                p.run = 0;
            } else {
                p.run = p.run.saturating_add(1);
                let needed = if talking {
                    SPEECH_ON_FRAMES
                } else {
                    SPEECH_OFF_FRAMES
                };
                if p.run >= needed {
                    p.speaking = talking;
                    p.run = 0;
                    speaker(SpeakerChange {
                        key: p.key,
                        speaking: talking,
                    });
                }
            }
        }
        // Past TOP_K talkers, only the loudest are mixed.
        let mut talkers = self.participants.iter().filter(|p| p.mixed).count();
        while talkers > TOP_K {
            if let Some(quietest) = self
                .participants
                .iter_mut()
                .filter(|p| p.mixed)
                .min_by_key(|p| p.level)
            {
                quietest.mixed = false;
            }
            talkers -= 1;
        }
        // The sum of everything audible, the announcement included.
        self.sum.fill(0);
        for p in self.participants.iter().filter(|p| p.mixed) {
            for (acc, &s) in self.sum.iter_mut().zip(&p.frame) {
                *acc += i32::from(s);
            }
        }
        if let Some((pcm, at)) = self.announcement.as_mut() {
            for (acc, &s) in self.sum.iter_mut().zip(pcm.iter().skip(*at)) {
                *acc += i32::from(s);
            }
            *at += FRAME_SAMPLES;
            if *at >= pcm.len() {
                self.announcement = None;
            }
        }
        // Everyone hears the sum without themselves; those not in it (silent, muted, not
        // among the loudest) all hear the same frame, computed once. A coached participant
        // hears its coaches on top.
        let saturate = |x: i32| x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        let mut common = [0i16; FRAME_SAMPLES];
        for (c, &x) in common.iter_mut().zip(self.sum.iter()) {
            *c = saturate(x);
        }
        self.mix = common;
        let whispering = self
            .participants
            .iter()
            .any(|p| p.audible && p.coaching.is_some());
        let mut frame = [0i32; FRAME_SAMPLES];
        let mut pcm = [0i16; FRAME_SAMPLES];
        for p in &self.participants {
            let coached = whispering
                && self
                    .participants
                    .iter()
                    .any(|c| c.audible && c.coaching == Some(p.key));
            if !p.mixed && !coached {
                out(p.key, &common);
                continue;
            }
            if !coached {
                for (o, (&x, &own)) in pcm.iter_mut().zip(self.sum.iter().zip(&p.frame)) {
                    *o = saturate(x - i32::from(own));
                }
                out(p.key, &pcm);
                continue;
            }
            frame.copy_from_slice(&self.sum[..]);
            if p.mixed {
                for (f, &s) in frame.iter_mut().zip(&p.frame) {
                    *f -= i32::from(s);
                }
            }
            for c in &self.participants {
                if c.audible && c.coaching == Some(p.key) {
                    for (f, &s) in frame.iter_mut().zip(&c.frame) {
                        *f += i32::from(s);
                    }
                }
            }
            for (o, &x) in pcm.iter_mut().zip(&frame) {
                *o = saturate(x);
            }
            out(p.key, &pcm);
        }
    }
}

#[cfg(test)]
#[path = "mixer_tests.rs"]
mod tests;
