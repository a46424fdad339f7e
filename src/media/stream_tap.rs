//! Media streams on the relay thread (`<Connect><Stream>`, `<Start><Stream>`): the call's
//! audio taken off an endpoint for the stream's WebSocket task, and a bidirectional
//! stream's app audio played into the leg.
//!
//! A [`StreamTap`] on an endpoint collects what its leg sends (the inbound track) and what
//! is sent to it (the outbound track: the bridged peer's audio, a prompt, the app's own
//! audio), as μ-law, in whole 20 ms frames whatever the packet size, and hands each frame
//! to the stream's bounded queue with `try_send`. A full queue (a slow or stuck app)
//! costs a counted drop and never holds up the relay thread; nothing is allocated per
//! frame (a frame travels by value).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use super::g711::G711Law;
use super::stream_playout::{FRAME, Playout};

/// A track of the call's audio, as media messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// What the caller says.
    Inbound,
    /// What the caller hears.
    Outbound,
}

impl Track {
    pub const fn as_str(self) -> &'static str {
        match self {
            Track::Inbound => "inbound",
            Track::Outbound => "outbound",
        }
    }
}

/// What goes to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToApp {
    /// 20 ms of μ-law of `track`, `at_ms` after the stream started.
    Media {
        track: Track,
        at_ms: u64,
        payload: [u8; FRAME],
    },
    /// A key the caller pressed (sent on bidirectional streams only).
    Dtmf(char),
    /// The app's mark, now played (or cleared).
    Mark(String),
}

/// The bounded queue to one stream's WebSocket task, shared by the call and the relay
/// thread that taps the call's audio.
#[derive(Debug, Clone)]
pub struct AppQueue {
    tx: mpsc::Sender<ToApp>,
    dropped: Arc<AtomicU64>,
}

impl AppQueue {
    /// A queue holding `capacity` items, and its receiving end.
    pub fn new(capacity: usize) -> (AppQueue, mpsc::Receiver<ToApp>) {
        let (tx, rx) = mpsc::channel(capacity);
        let queue = AppQueue {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (queue, rx)
    }

    /// Queues an item without waiting; false (and counted) when the queue is full or the
    /// task is gone.
    pub fn send(&self, item: ToApp) -> bool {
        if self.tx.try_send(item).is_ok() {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Items dropped because the queue was full (or its task gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What the call asks of a stream on an endpoint.
#[derive(Debug, Clone)]
pub struct TapSpec {
    /// The stream, among the endpoint's taps.
    pub key: u64,
    pub queue: AppQueue,
    pub inbound: bool,
    pub outbound: bool,
    /// Digits go to the app (bidirectional streams).
    pub dtmf: bool,
    /// Bidirectional: the app's audio is played into the leg, queued up to this many
    /// bytes (see [`Playout`]).
    pub playout: Option<usize>,
}

/// What a bidirectional stream's app sends, for the endpoint's playout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOut {
    Audio(Vec<u8>),
    Mark(String),
    Clear,
}

/// Part of a 20 ms frame.
#[derive(Debug)]
struct Partial {
    buf: [u8; FRAME],
    filled: usize,
}

impl Partial {
    const fn new() -> Self {
        Partial {
            buf: [0; FRAME],
            filled: 0,
        }
    }
}

/// One stream's tap on an endpoint, as the relay thread holds it.
#[derive(Debug)]
pub struct StreamTap {
    pub key: u64,
    queue: AppQueue,
    started: Instant,
    inbound: Option<Partial>,
    outbound: Option<Partial>,
    dtmf: bool,
    /// A bidirectional stream's app audio, and the marks due for echo (reused).
    pub playout: Option<Playout>,
    marks: Vec<String>,
}

impl StreamTap {
    pub fn new(spec: TapSpec, now: Instant) -> Self {
        StreamTap {
            key: spec.key,
            queue: spec.queue,
            started: now,
            inbound: spec.inbound.then(Partial::new),
            outbound: spec.outbound.then(Partial::new),
            dtmf: spec.dtmf,
            playout: spec.playout.map(Playout::new),
            marks: Vec::new(),
        }
    }

    pub fn wants(&self, track: Track) -> bool {
        match track {
            Track::Inbound => self.inbound.is_some(),
            Track::Outbound => self.outbound.is_some(),
        }
    }

    /// Audio of `track` in `law` (what the leg's packet carried): sent to the app in
    /// μ-law, a frame each time 20 ms have gathered.
    pub fn push(&mut self, track: Track, law: G711Law, mut audio: &[u8], now: Instant) {
        let partial = match track {
            Track::Inbound => self.inbound.as_mut(),
            Track::Outbound => self.outbound.as_mut(),
        };
        let Some(partial) = partial else { return };
        while !audio.is_empty() {
            let n = audio.len().min(FRAME - partial.filled);
            let dest = &mut partial.buf[partial.filled..partial.filled + n];
            dest.copy_from_slice(&audio[..n]);
            if law == G711Law::Pcma {
                super::g711::pcma_to_pcmu_in_place(dest);
            }
            partial.filled += n;
            audio = &audio[n..];
            if partial.filled == FRAME {
                partial.filled = 0;
                let at_ms = now.saturating_duration_since(self.started).as_millis() as u64;
                self.queue.send(ToApp::Media {
                    track,
                    at_ms,
                    payload: partial.buf,
                });
            }
        }
    }

    /// 8 kHz PCM of `track` (a prompt or a conference's mix), sent as μ-law.
    pub fn push_pcm(&mut self, track: Track, pcm: &[i16], now: Instant) {
        if !self.wants(track) {
            return;
        }
        let mut ulaw = [0u8; FRAME];
        for chunk in pcm.chunks(FRAME) {
            G711Law::Pcmu.encode_slice(chunk, &mut ulaw[..chunk.len()]);
            self.push(track, G711Law::Pcmu, &ulaw[..chunk.len()], now);
        }
    }

    /// A key the leg pressed.
    pub fn digit(&self, digit: char) {
        if self.dtmf {
            self.queue.send(ToApp::Dtmf(digit));
        }
    }

    /// What the app sent, into the playout (marks due now are echoed).
    pub fn play(&mut self, out: StreamOut) {
        let Some(playout) = self.playout.as_mut() else {
            return;
        };
        let due = match out {
            StreamOut::Audio(audio) => {
                playout.push_audio(audio);
                Vec::new()
            }
            StreamOut::Mark(name) => playout.push_mark(name),
            StreamOut::Clear => playout.clear(),
        };
        for name in due {
            self.queue.send(ToApp::Mark(name));
        }
    }

    /// One 20 ms tick of the playout: the next frame of the app's audio into `frame`
    /// (true), or nothing queued (false). Marks whose audio has played are echoed.
    pub fn next_frame(&mut self, frame: &mut [u8; FRAME]) -> bool {
        let Some(playout) = self.playout.as_mut() else {
            return false;
        };
        let audio = playout.next_frame(frame, &mut self.marks);
        for name in self.marks.drain(..) {
            self.queue.send(ToApp::Mark(name));
        }
        audio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(inbound: bool, outbound: bool, capacity: usize) -> (StreamTap, mpsc::Receiver<ToApp>) {
        let (queue, rx) = AppQueue::new(capacity);
        let spec = TapSpec {
            key: 1,
            queue,
            inbound,
            outbound,
            dtmf: true,
            playout: Some(16_000),
        };
        #[expect(clippy::disallowed_methods, reason = "a test's epoch")]
        let now = Instant::now();
        (StreamTap::new(spec, now), rx)
    }

    fn frames(rx: &mut mpsc::Receiver<ToApp>) -> Vec<ToApp> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn packets_of_any_size_become_whole_frames_in_order() {
        let (mut t, mut rx) = tap(true, false, 100);
        let now = t.started;
        // 30 ms packets: three make four and a half frames.
        let audio: Vec<u8> = (0..720u32).map(|i| (i % 251) as u8).collect();
        for p in audio.chunks(240) {
            t.push(Track::Inbound, G711Law::Pcmu, p, now);
        }
        t.push(Track::Outbound, G711Law::Pcmu, &audio, now);
        let got = frames(&mut rx);
        assert_eq!(got.len(), 4, "only whole frames, only the tapped track");
        for (i, f) in got.iter().enumerate() {
            let ToApp::Media { track, payload, .. } = f else {
                panic!("{f:?}")
            };
            assert_eq!(*track, Track::Inbound);
            assert_eq!(&payload[..], &audio[i * FRAME..(i + 1) * FRAME]);
        }
    }

    #[test]
    fn a_law_is_sent_as_mu_law() {
        let (mut t, mut rx) = tap(false, true, 10);
        let pcm: Vec<i16> = (0..FRAME as i16).map(|i| i * 97 - 8000).collect();
        let mut alaw = [0u8; FRAME];
        G711Law::Pcma.encode_slice(&pcm, &mut alaw);
        let mut expected = [0u8; FRAME];
        G711Law::Pcmu.encode_slice(&pcm, &mut expected);
        let now = t.started;
        t.push(Track::Outbound, G711Law::Pcma, &alaw, now);
        let [ToApp::Media { payload, .. }] = &frames(&mut rx)[..] else {
            panic!()
        };
        // Transcoding between the laws may move a code by one step, never more.
        for (got, want) in payload.iter().zip(expected) {
            let (g, w) = (G711Law::Pcmu.decode(*got), G711Law::Pcmu.decode(want));
            assert!((i32::from(g) - i32::from(w)).abs() <= 256, "{g} vs {w}");
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (mut t, _rx) = tap(true, false, 4);
        let now = t.started;
        for _ in 0..10 {
            t.push(Track::Inbound, G711Law::Pcmu, &[0x7f; FRAME], now);
        }
        assert_eq!(t.queue.dropped(), 6);
    }

    #[test]
    fn app_audio_plays_in_frames_and_marks_echo_after_it() {
        let (mut t, mut rx) = tap(true, false, 10);
        t.play(StreamOut::Audio(vec![1; 200]));
        t.play(StreamOut::Mark("m".into()));
        let mut frame = [0u8; FRAME];
        assert!(t.next_frame(&mut frame));
        assert_eq!(frame, [1; FRAME]);
        assert!(frames(&mut rx).is_empty(), "the mark waits for its audio");
        assert!(t.next_frame(&mut frame));
        assert_eq!(&frame[..40], &[1; 40]);
        assert!(!t.next_frame(&mut frame));
        assert_eq!(frames(&mut rx), [ToApp::Mark("m".into())]);
        t.play(StreamOut::Audio(vec![2; 500]));
        t.play(StreamOut::Mark("n".into()));
        t.play(StreamOut::Clear);
        assert_eq!(frames(&mut rx), [ToApp::Mark("n".into())]);
        assert!(!t.next_frame(&mut frame), "clear dropped the audio");
    }
}
