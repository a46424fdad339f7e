//! The player: what `<Play>`, `<Pause>` and `<Play digits>` send, one 20 ms tick at a time.
//!
//! Pure and clock-free: the relay thread calls [`Player::tick`] on its 20 ms pacing and
//! turns each [`Frame`] into an RTP packet through the endpoint's stream rewriter, so the
//! far end sees one continuous stream whether the player or the bridged party feeds it.
//! The player numbers its own packets (sequence +1 per packet, timestamp +160 per audio
//! frame; a DTMF tone keeps its start timestamp in every packet, RFC 4733 §2.5.1.2); the
//! rewriter maps those onto the leg's stream.

use std::time::Duration;

use super::command::PlayItem;
use super::dtmf::{DtmfTone, TelephoneEventPacket, TonePackets};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// `w` in `digits`: half a second (Twilio's documented pause).
const DIGIT_WAIT: Duration = Duration::from_millis(500);

/// Silence between two digits, so the far end's detector sees separate key presses.
const INTER_DIGIT_FRAMES: u32 = 3;

/// One tick's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// 160 samples of audio were written to the caller's buffer; send them with this
    /// sequence number and timestamp.
    Audio { sequence: u16, timestamp: u32 },
    /// A telephone-event packet (its own numbering, see [`TelephoneEventPacket`]).
    Event(TelephoneEventPacket),
    /// Nothing more to play.
    Done,
}

#[derive(Debug, Clone)]
enum Position {
    /// At the start of item `index`.
    Start,
    Audio {
        offset: usize,
    },
    Silence {
        frames_left: u32,
    },
    Digits {
        /// Next char of the item's string to start.
        next: usize,
        tone: Option<TonePackets>,
        silence_left: u32,
    },
}

/// Plays a list of items, `loops` times (0: until stopped).
#[derive(Debug, Clone)]
pub struct Player {
    items: Vec<PlayItem>,
    loops: u32,
    played_loops: u32,
    index: usize,
    position: Position,
    sequence: u16,
    timestamp: u32,
}

impl Player {
    pub fn new(items: Vec<PlayItem>, loops: u32) -> Self {
        Player {
            items,
            loops,
            played_loops: 0,
            index: 0,
            position: Position::Start,
            sequence: 0,
            timestamp: 0,
        }
    }

    /// The next 20 ms. For [`Frame::Audio`], `pcm` holds the samples.
    pub fn tick(&mut self, pcm: &mut [i16; FRAME_SAMPLES]) -> Frame {
        // Bounded: each pass either produces a frame or moves to the next item. Wrapping
        // around twice within one tick means a whole loop produced nothing: the player ends.
        let mut wraps = 0;
        loop {
            if self.index >= self.items.len() {
                self.played_loops += 1;
                wraps += 1;
                let again = self.loops == 0 || self.played_loops < self.loops;
                if !again || self.items.is_empty() || wraps > 1 {
                    return Frame::Done;
                }
                self.index = 0;
                self.position = Position::Start;
            }
            if let Some(frame) = self.step(pcm) {
                return frame;
            }
            self.index += 1;
            self.position = Position::Start;
        }
    }

    /// Advances within the current item; `None` when it is finished.
    fn step(&mut self, pcm: &mut [i16; FRAME_SAMPLES]) -> Option<Frame> {
        if let Position::Start = self.position {
            self.position = match &self.items[self.index] {
                PlayItem::Audio(_) => Position::Audio { offset: 0 },
                PlayItem::Silence(d) => Position::Silence {
                    frames_left: frames_in(*d),
                },
                PlayItem::Digits(_) => Position::Digits {
                    next: 0,
                    tone: None,
                    silence_left: 0,
                },
            };
        }
        match (&mut self.position, &self.items[self.index]) {
            (Position::Audio { offset }, PlayItem::Audio(samples)) => {
                let rest = samples.get(*offset..).unwrap_or_default();
                if rest.is_empty() {
                    return None;
                }
                let n = rest.len().min(FRAME_SAMPLES);
                pcm[..n].copy_from_slice(&rest[..n]);
                pcm[n..].fill(0);
                *offset += n;
                Some(self.audio())
            }
            (Position::Silence { frames_left }, _) => {
                if *frames_left == 0 {
                    return None;
                }
                *frames_left -= 1;
                pcm.fill(0);
                Some(self.audio())
            }
            (
                Position::Digits {
                    next,
                    tone,
                    silence_left,
                },
                PlayItem::Digits(digits),
            ) => loop {
                if let Some(packets) = tone {
                    if let Some(p) = packets.next() {
                        self.sequence = p.sequence.wrapping_add(1);
                        return Some(Frame::Event(p));
                    }
                    *tone = None;
                    *silence_left = INTER_DIGIT_FRAMES;
                }
                if *silence_left > 0 {
                    *silence_left -= 1;
                    pcm.fill(0);
                    return Some(self.audio());
                }
                let c = digits[*next..].chars().next()?;
                *next += c.len_utf8();
                if c == 'w' || c == 'W' {
                    *silence_left = frames_in(DIGIT_WAIT);
                } else if let Ok(t) = DtmfTone::for_digit(c) {
                    // The tone starts where audio would have gone on; audio after it
                    // resumes where the tone's ticks leave the clock.
                    let (ts, _) = t.following_media(self.timestamp, self.sequence);
                    *tone = Some(t.packets(self.timestamp, self.sequence));
                    self.timestamp = ts;
                }
                // Anything else was refused when the verb was parsed; skip it here.
            },
            _ => None,
        }
    }

    fn audio(&mut self) -> Frame {
        let f = Frame::Audio {
            sequence: self.sequence,
            timestamp: self.timestamp,
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        f
    }
}

/// Whole 20 ms frames in `d`, rounding up so that a short pause still pauses.
fn frames_in(d: Duration) -> u32 {
    (d.as_millis().div_ceil(20)).min(u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run(mut p: Player, max: usize) -> Vec<(Frame, Vec<i16>)> {
        let mut out = Vec::new();
        let mut pcm = [0i16; FRAME_SAMPLES];
        for _ in 0..max {
            let f = p.tick(&mut pcm);
            out.push((f, pcm.to_vec()));
            if f == Frame::Done {
                break;
            }
        }
        out
    }

    #[test]
    fn audio_is_cut_into_frames_and_the_last_is_padded() {
        let samples: Arc<[i16]> = (0..400).map(|i| i as i16).collect::<Vec<_>>().into();
        let frames = run(Player::new(vec![PlayItem::Audio(samples)], 1), 10);
        assert_eq!(frames.len(), 4);
        assert_eq!(
            frames[0].0,
            Frame::Audio {
                sequence: 0,
                timestamp: 0
            }
        );
        assert_eq!(
            frames[2].0,
            Frame::Audio {
                sequence: 2,
                timestamp: 320
            }
        );
        assert_eq!(frames[1].1[0], 160);
        assert_eq!(frames[2].1[79], 399);
        assert_eq!(frames[2].1[80], 0);
        assert_eq!(frames[3].0, Frame::Done);
    }

    #[test]
    fn loops_repeat_and_zero_means_until_stopped() {
        let samples: Arc<[i16]> = vec![1i16; 160].into();
        let frames = run(Player::new(vec![PlayItem::Audio(samples.clone())], 3), 10);
        assert_eq!(frames.len(), 4);
        let frames = run(Player::new(vec![PlayItem::Audio(samples)], 0), 50);
        assert_eq!(frames.len(), 50);
        assert!(frames.iter().all(|(f, _)| *f != Frame::Done));
    }

    #[test]
    fn silence_lasts_its_duration_in_frames() {
        let frames = run(
            Player::new(vec![PlayItem::Silence(Duration::from_secs(1))], 1),
            100,
        );
        assert_eq!(frames.len(), 51);
        assert!(
            frames[..50]
                .iter()
                .all(|(_, pcm)| pcm.iter().all(|&s| s == 0))
        );
    }

    #[test]
    fn digits_are_telephone_events_with_one_timestamp_each() {
        let frames = run(Player::new(vec![PlayItem::Digits("1w2".into())], 1), 200);
        let events: Vec<TelephoneEventPacket> = frames
            .iter()
            .filter_map(|(f, _)| match f {
                Frame::Event(e) => Some(*e),
                _ => None,
            })
            .collect();
        let tone = DtmfTone::for_digit('1').unwrap();
        assert_eq!(events.len(), 2 * tone.packet_count());
        let first = &events[..tone.packet_count()];
        assert!(first.iter().all(|e| e.timestamp == first[0].timestamp));
        assert!(first[0].marker);
        let second = &events[tone.packet_count()..];
        assert!(
            second[0].timestamp > first[0].timestamp + 4000,
            "w waited 0.5 s"
        );
        // Sequence numbers never repeat across audio and events.
        let mut seqs: Vec<u16> = frames
            .iter()
            .filter_map(|(f, _)| match f {
                Frame::Event(e) => Some(e.sequence),
                Frame::Audio { sequence, .. } => Some(*sequence),
                Frame::Done => None,
            })
            .collect();
        let n = seqs.len();
        seqs.dedup();
        assert_eq!(seqs.len(), n);
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    }

    #[test]
    fn nothing_to_play_is_done_at_once() {
        assert_eq!(run(Player::new(vec![], 0), 5).len(), 1);
        let empty: Arc<[i16]> = Vec::new().into();
        assert_eq!(
            run(Player::new(vec![PlayItem::Audio(empty)], 0), 5).len(),
            1
        );
    }
}
