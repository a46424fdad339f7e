//! The app's audio on a bidirectional stream, played 20 ms at a time.
//!
//! Twilio's rules, kept here: media "can be of any size" and is "buffered and played in the
//! order received"; a mark is echoed "when that media message's playback is complete", or
//! at once "if there is no audio buffered"; `clear` "empties all buffered audio and causes
//! any mark messages to be sent back". Marks sit in the queue between the audio they
//! separate, so an echo means what was queued before the mark has been handed out and
//! played (a frame handed out at one tick has played by the next).
//!
//! The queue is bounded (an app sending hours of audio at once must not take the memory):
//! past [`Playout::new`]'s limit, audio is dropped and counted.

use std::collections::VecDeque;

/// One frame: 20 ms of μ-law at 8 kHz.
pub const FRAME: usize = 160;

/// μ-law silence (the encoding of 0).
pub const SILENCE: u8 = 0xFF;

/// What the queue holds by default: a minute of audio.
pub const DEFAULT_MAX_BYTES: usize = 60 * 8000;

#[derive(Debug)]
enum Item {
    /// Audio not yet played, from `.1` on.
    Audio(Vec<u8>, usize),
    Mark(String),
}

/// The queue of one bidirectional stream.
#[derive(Debug)]
pub struct Playout {
    items: VecDeque<Item>,
    /// Audio bytes queued, not yet played.
    queued: usize,
    max_bytes: usize,
    /// Audio bytes dropped because the queue was full.
    dropped: u64,
}

impl Playout {
    /// An empty queue holding at most `max_bytes` of audio.
    pub fn new(max_bytes: usize) -> Self {
        Playout {
            items: VecDeque::new(),
            queued: 0,
            max_bytes,
            dropped: 0,
        }
    }

    /// Queues audio from the app; what does not fit under the limit is dropped (counted in
    /// [`Self::dropped`]).
    pub fn push_audio(&mut self, mut audio: Vec<u8>) {
        let room = self.max_bytes.saturating_sub(self.queued);
        if audio.len() > room {
            self.dropped += (audio.len() - room) as u64;
            audio.truncate(room);
        }
        if audio.is_empty() {
            return;
        }
        self.queued += audio.len();
        self.items.push_back(Item::Audio(audio, 0));
    }

    /// Queues a mark. With no audio queued ahead of it, it is due at once: returned (after
    /// any marks still waiting, in order) for the caller to echo.
    pub fn push_mark(&mut self, name: String) -> Vec<String> {
        self.items.push_back(Item::Mark(name));
        if self.queued == 0 {
            return self.take_marks();
        }
        Vec::new()
    }

    /// `clear`: drops the queued audio and returns every pending mark, in order.
    pub fn clear(&mut self) -> Vec<String> {
        self.queued = 0;
        self.take_marks()
    }

    fn take_marks(&mut self) -> Vec<String> {
        self.items
            .drain(..)
            .filter_map(|i| match i {
                Item::Mark(m) => Some(m),
                Item::Audio(..) => None,
            })
            .collect()
    }

    /// One tick (every 20 ms): the marks whose audio has now played (pushed to `marks`),
    /// then the next frame of audio into `frame`. A frame that ends at a mark or at the end
    /// of the queue is filled up with silence. False: no audio queued (the caller plays
    /// whatever else the call has).
    pub fn next_frame(&mut self, frame: &mut [u8; FRAME], marks: &mut Vec<String>) -> bool {
        while let Some(Item::Mark(_)) = self.items.front() {
            if let Some(Item::Mark(m)) = self.items.pop_front() {
                marks.push(m);
            }
        }
        let mut filled = 0;
        while filled < FRAME {
            let Some(Item::Audio(audio, at)) = self.items.front_mut() else {
                break;
            };
            let n = (audio.len() - *at).min(FRAME - filled);
            frame[filled..filled + n].copy_from_slice(&audio[*at..*at + n]);
            *at += n;
            filled += n;
            self.queued -= n;
            if *at == audio.len() {
                self.items.pop_front();
            }
        }
        if filled == 0 {
            return false;
        }
        frame[filled..].fill(SILENCE);
        true
    }

    /// Audio bytes queued and not yet played.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Audio bytes dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs ticks until the queue is idle; each tick's frame (None: nothing played) and the
    /// marks echoed at it.
    fn play_out(p: &mut Playout) -> Vec<(Option<Vec<u8>>, Vec<String>)> {
        let mut ticks = Vec::new();
        loop {
            let (mut frame, mut marks) = ([0u8; FRAME], Vec::new());
            let played = p.next_frame(&mut frame, &mut marks);
            if !played && marks.is_empty() {
                return ticks;
            }
            ticks.push((played.then(|| frame.to_vec()), marks));
        }
    }

    #[test]
    fn audio_plays_in_order_in_frames_and_the_tail_is_padded_with_silence() {
        let mut p = Playout::new(DEFAULT_MAX_BYTES);
        // Any sizes: 100 + 300 bytes are 400, two full frames and 80 bytes.
        p.push_audio(vec![1; 100]);
        p.push_audio(vec![2; 300]);
        let ticks = play_out(&mut p);
        assert_eq!(ticks.len(), 3);
        let first = ticks[0].0.as_ref().unwrap();
        assert_eq!(&first[..100], &[1; 100][..]);
        assert_eq!(&first[100..], &[2; 60][..]);
        assert_eq!(ticks[1].0.as_ref().unwrap(), &vec![2; 160]);
        let last = ticks[2].0.as_ref().unwrap();
        assert_eq!(&last[..80], &[2; 80][..]);
        assert_eq!(&last[80..], &[SILENCE; 80][..]);
        assert_eq!(p.queued_bytes(), 0);
    }

    #[test]
    fn a_mark_is_echoed_the_tick_after_its_audio_has_been_played() {
        let mut p = Playout::new(DEFAULT_MAX_BYTES);
        p.push_audio(vec![1; 320]);
        assert!(
            p.push_mark("a".into()).is_empty(),
            "audio is queued ahead of it"
        );
        p.push_audio(vec![2; 100]);
        assert!(p.push_mark("b".into()).is_empty());
        let ticks = play_out(&mut p);
        // Two frames of the first audio; `a` echoed as the second audio starts (the frame
        // before it has played); `b` after that audio's one frame.
        let marks: Vec<_> = ticks.iter().map(|t| t.1.clone()).collect();
        assert_eq!(
            marks,
            [vec![], vec![], vec!["a".to_string()], vec!["b".to_string()]]
        );
        assert_eq!(&ticks[2].0.as_ref().unwrap()[..100], &[2; 100][..]);
        assert!(ticks[3].0.is_none());
        // A frame never carries audio from both sides of a mark.
        assert_eq!(&ticks[1].0.as_ref().unwrap()[..], &[1; 160][..]);
    }

    #[test]
    fn a_mark_with_nothing_queued_is_echoed_at_once() {
        let mut p = Playout::new(DEFAULT_MAX_BYTES);
        assert_eq!(p.push_mark("now".into()), ["now"]);
        assert!(play_out(&mut p).is_empty());
    }

    #[test]
    fn clear_drops_the_audio_and_echoes_every_pending_mark_in_order() {
        let mut p = Playout::new(DEFAULT_MAX_BYTES);
        p.push_audio(vec![1; 1600]);
        p.push_mark("one".into());
        p.push_audio(vec![2; 1600]);
        p.push_mark("two".into());
        let (mut frame, mut marks) = ([0u8; FRAME], Vec::new());
        assert!(p.next_frame(&mut frame, &mut marks));
        assert_eq!(p.clear(), ["one", "two"]);
        assert_eq!(p.queued_bytes(), 0);
        assert!(play_out(&mut p).is_empty());
        // And it plays again afterwards.
        p.push_audio(vec![3; 10]);
        assert_eq!(play_out(&mut p).len(), 1);
    }

    #[test]
    fn audio_past_the_limit_is_dropped_and_counted() {
        let mut p = Playout::new(1000);
        p.push_audio(vec![1; 700]);
        p.push_audio(vec![2; 700]);
        assert_eq!(p.queued_bytes(), 1000);
        assert_eq!(p.dropped(), 400);
        // Once played, there is room again.
        assert_eq!(play_out(&mut p).len(), 7);
        p.push_audio(vec![3; 700]);
        assert_eq!(p.queued_bytes(), 700);
    }
}
