//! Payload-type mapping and the per-output-stream header rewriter (the second half of what
//! the relay does to a packet after `rtp`'s views validated it).
//!
//! [`StreamRewriter`] owns the header of one *output* stream. What feeds a leg changes during
//! a call (a prompt, then the bridged party, then hold music, ...) and each feeder has its
//! own SSRC, sequence space and timestamp space. Passing those through would look to the far
//! end like a new stream or a huge jump and many jitter buffers glitch or reset on it, so the
//! rewriter presents a single continuous stream: one SSRC, sequence numbers that go on from
//! the last one sent, and timestamps that advance by the time that really passed
//! (RFC 3550 §5.1, RFC 7160 on clock continuity). [`PayloadMap`] maps payload types between
//! the legs' SDP (PCMU 0 in, PCMA 8 out when transcoding; telephone-event 101 in, 96 out).
//!
//! Pure: no I/O, no clock reads (time comes in as an argument), no allocation.

use std::fmt;
use std::time::{Duration, Instant};

use super::rtp::RtpPacket;
// ---------------------------------------------------------------------------------------
// Payload type mapping
// ---------------------------------------------------------------------------------------

/// What the relay does with a packet's payload after the rewriter mapped its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadAction {
    /// The payload goes out unchanged (same codec on both legs, comfort noise, ...).
    Forward,
    /// G.711 μ-law in, A-law out: the relay converts the payload in place (same length).
    PcmuToPcma,
    /// G.711 A-law in, μ-law out.
    PcmaToPcmu,
    /// RFC 4733 telephone-event: forwarded unchanged. Marked apart because its M bit means
    /// "a new event starts", so the rewriter must not set it on a source switch.
    TelephoneEvent,
}

/// Where one input payload type goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadMapping {
    /// The payload type the output leg negotiated for it.
    pub out_pt: u8,
    pub action: PayloadAction,
}

/// A payload type outside RTP's 7 bits was given to [`PayloadMap::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload type {0} is outside 0..=127")]
pub struct PayloadTypeOutOfRange(pub u8);

/// Payload types from one source leg to one output leg, built from the two SDP answers.
///
/// A flat table indexed by PT (a few hundred bytes, `Copy`): one array read per packet, no
/// hashing, no allocation. A payload type that is not in the map was not negotiated on both
/// sides and is dropped rather than forwarded to a peer that cannot decode it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PayloadMap {
    by_in_pt: [Option<PayloadMapping>; 128],
}

impl PayloadMap {
    /// A map that forwards nothing.
    pub const fn new() -> Self {
        PayloadMap {
            by_in_pt: [None; 128],
        }
    }

    /// Send input PT `in_pt` out as `out_pt`, doing `action` to the payload. Replaces an
    /// earlier mapping of `in_pt`.
    pub fn insert(
        &mut self,
        in_pt: u8,
        out_pt: u8,
        action: PayloadAction,
    ) -> Result<(), PayloadTypeOutOfRange> {
        for pt in [in_pt, out_pt] {
            if pt > 127 {
                return Err(PayloadTypeOutOfRange(pt));
            }
        }
        self.by_in_pt[usize::from(in_pt)] = Some(PayloadMapping { out_pt, action });
        Ok(())
    }

    /// Stop forwarding `in_pt`.
    pub fn remove(&mut self, in_pt: u8) {
        if let Some(slot) = self.by_in_pt.get_mut(usize::from(in_pt)) {
            *slot = None;
        }
    }

    /// Where `in_pt` goes, if anywhere.
    pub fn get(&self, in_pt: u8) -> Option<PayloadMapping> {
        self.by_in_pt.get(usize::from(in_pt)).copied().flatten()
    }
}

impl Default for PayloadMap {
    fn default() -> Self {
        PayloadMap::new()
    }
}

impl fmt::Debug for PayloadMap {
    /// Only the mapped entries, not 128 lines of `None`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.by_in_pt
                    .iter()
                    .enumerate()
                    .filter_map(|(pt, m)| m.map(|m| (pt, m))),
            )
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Stream rewriting
// ---------------------------------------------------------------------------------------

/// Which feeder a packet comes from, as the relay names it (a leg, a player, ...). Together
/// with the packet's SSRC it decides when the source of an output stream changed: a new
/// `SourceId`, or a new SSRC from the same one (a phone restarting its stream), is a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub u32);

/// Why [`StreamRewriter::rewrite`] refused a packet. The packet is left untouched: the
/// relay drops it and counts it by [`RewriteDrop::class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteDrop {
    /// The payload type is not mapped to the output leg (not negotiated on both sides).
    #[error("payload type {0} is not mapped to the output leg")]
    UnmappedPayloadType(u8),
    /// A late packet of the current source that is older than where it joined the output
    /// stream: its sequence number would repeat one the previous source already used.
    #[error("packet predates the current source's start in the output stream")]
    Stale,
    /// The source's sequence number jumped far away (more than [`MAX_DROPOUT_RFC3550`]
    /// ahead or [`MAX_MISORDER_RFC3550`] behind). Dropped on probation: if the next packet
    /// follows it, the source restarted its numbering and the stream is rebased as on a
    /// source switch (RFC 3550 Appendix A.1, `bad_seq`).
    #[error("sequence number jumped; on probation")]
    SequenceJump,
}

impl RewriteDrop {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        match self {
            RewriteDrop::UnmappedPayloadType(_) => "unmapped_pt",
            RewriteDrop::Stale => "stale",
            RewriteDrop::SequenceJump => "seq_jump",
        }
    }
}

/// RFC 3550 Appendix A.1: a sequence number up to this far ahead is the same stream with
/// some loss.
pub const MAX_DROPOUT_RFC3550: u16 = 3000;

/// RFC 3550 Appendix A.1: a sequence number up to this far behind is a reordered (or
/// duplicated) packet of the same stream.
pub const MAX_MISORDER_RFC3550: u16 = 100;

/// `a` comes after `b` in RFC 1982 serial-number arithmetic on 16 bits (RFC 3550 sequence
/// numbers wrap, so "after" means "less than half the space ahead").
pub(crate) fn seq_after_rfc1982(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// The packet with the highest sequence number the rewriter has sent so far.
#[derive(Debug, Clone, Copy)]
struct Emitted {
    seq: u16,
    ts: u32,
    at: Instant,
    /// Audio (not a telephone-event): only audio-to-audio steps teach the frame length.
    audio: bool,
}

/// The source currently feeding the output, and how its numbers map onto the output's.
#[derive(Debug, Clone, Copy)]
struct Feed {
    source: SourceId,
    in_ssrc: u32,
    /// out = in + delta, wrapping.
    seq_delta: u16,
    ts_delta: u32,
    /// The last output sequence number before this source joined; late packets of this
    /// source that would not come after it are stale. Cleared once the stream is
    /// [`MAX_MISORDER_RFC3550`] past it: anything later than that is a jump, not late.
    floor: Option<u16>,
    /// After a [`RewriteDrop::SequenceJump`]: the input sequence number that would confirm
    /// the source restarted its numbering.
    restart_at: Option<u16>,
}

/// Keeps one output stream's SSRC, sequence number and timestamp continuous while what
/// feeds it changes, and maps payload types into the output leg's numbering.
///
/// Within one source the mapping is a fixed offset, so the source's own gaps (loss) and
/// reordering pass through to the far end unchanged, which is what its jitter buffer and
/// loss statistics need. On a source switch (see [`SourceId`]) the next packet gets
/// `last_seq + 1` and `last_ts + elapsed`, where `elapsed` is the time since the last
/// packet went out, in samples, but at least one frame (the timestamp step learned from
/// the audio sent so far): a switch inside a 20 ms frame must not produce timestamps that
/// overlap the previous packet's audio. The first packet after a switch gets the M bit
/// (RFC 3551 §4.1: the receiver may resynchronize its playout there), except a
/// telephone-event, whose M bit would announce a new digit.
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    ssrc: u32,
    clock_rate: u32,
    initial_seq: u16,
    initial_ts: u32,
    last: Option<Emitted>,
    feed: Option<Feed>,
    /// Learned timestamp step between consecutive audio packets (0 until seen).
    frame_samples: u32,
}

impl StreamRewriter {
    /// A rewriter for an output stream with SSRC `ssrc` whose first packet gets
    /// `initial_seq` and `initial_ts`. RFC 3550 §5.1 wants all three random; this module
    /// has no randomness of its own, so the caller draws them. `clock_rate` is the output's
    /// RTP clock in Hz (8000 for G.711 and its telephone-event).
    pub fn new(ssrc: u32, initial_seq: u16, initial_ts: u32, clock_rate: u32) -> Self {
        StreamRewriter {
            ssrc,
            clock_rate,
            initial_seq,
            initial_ts,
            last: None,
            feed: None,
            frame_samples: 0,
        }
    }

    /// The output SSRC (also what RTCP of this direction gets, see
    /// [`rewrite_rtcp_ssrcs_rfc3550`]).
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The highest sequence number sent, once a packet went out.
    pub fn last_sequence(&self) -> Option<u16> {
        self.last.map(|l| l.seq)
    }

    /// The timestamp of that packet.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last.map(|l| l.ts)
    }

    /// Treat the next packet as a source switch even if it comes from the current source
    /// and SSRC (e.g. the relay knows the sender restarted after a re-INVITE).
    pub fn reset_source(&mut self) {
        self.feed = None;
    }

    /// Rewrite `pkt` in place for the output stream: SSRC, sequence number, timestamp,
    /// payload type, and the M bit on a source switch. `source` names the feeder it came
    /// from, `map` is that feeder's payload map towards this output, and `now` is when the
    /// relay handles the packet (a monotonic time passed in; this reads no clock). The
    /// rewriter remembers when it last sent, so a switch's elapsed time is `now` minus that.
    ///
    /// On success returns the mapping used, so the relay knows whether to transcode the
    /// payload. On `Err` the packet is untouched (and the output stream is unchanged; only
    /// a [`RewriteDrop::SequenceJump`] notes the jump for its probation).
    pub fn rewrite<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        source: SourceId,
        map: &PayloadMap,
        pkt: &mut RtpPacket<B>,
        now: Instant,
    ) -> Result<PayloadMapping, RewriteDrop> {
        let in_pt = pkt.payload_type();
        let mapping = map
            .get(in_pt)
            .ok_or(RewriteDrop::UnmappedPayloadType(in_pt))?;
        let (in_seq, in_ts, in_ssrc) = (pkt.sequence(), pkt.timestamp(), pkt.ssrc());
        let audio = mapping.action != PayloadAction::TelephoneEvent;

        // Keep the current mapping, or decide to rebase (a switch or a confirmed restart).
        let current = self
            .feed
            .filter(|f| f.source == source && f.in_ssrc == in_ssrc)
            .zip(self.last);
        let kept = match current {
            None => None,
            Some((feed, last)) => {
                let out_seq = in_seq.wrapping_add(feed.seq_delta);
                let ahead = out_seq.wrapping_sub(last.seq);
                let behind = last.seq.wrapping_sub(out_seq);
                if (1..MAX_DROPOUT_RFC3550).contains(&ahead) {
                    Some(feed)
                } else if behind < MAX_MISORDER_RFC3550 {
                    if feed
                        .floor
                        .is_some_and(|floor| !seq_after_rfc1982(out_seq, floor))
                    {
                        return Err(RewriteDrop::Stale);
                    }
                    Some(feed)
                } else if feed.restart_at == Some(in_seq) {
                    None
                } else {
                    self.feed = Some(Feed {
                        restart_at: Some(in_seq.wrapping_add(1)),
                        ..feed
                    });
                    return Err(RewriteDrop::SequenceJump);
                }
            }
        };
        let switched = kept.is_none();
        let mut feed = kept.unwrap_or_else(|| {
            // RFC 3550 §5.1: the sequence number goes on by one; the timestamp by the time
            // that passed, so the far end's playout clock stays true.
            let (out_seq, out_ts) = match self.last {
                None => (self.initial_seq, self.initial_ts),
                Some(last) => (
                    last.seq.wrapping_add(1),
                    last.ts.wrapping_add(self.switch_advance(now, last.at)),
                ),
            };
            Feed {
                source,
                in_ssrc,
                seq_delta: out_seq.wrapping_sub(in_seq),
                ts_delta: out_ts.wrapping_sub(in_ts),
                floor: self.last.map(|l| l.seq),
                restart_at: None,
            }
        });

        let out_seq = in_seq.wrapping_add(feed.seq_delta);
        let out_ts = in_ts.wrapping_add(feed.ts_delta);
        pkt.set_ssrc(self.ssrc);
        pkt.set_sequence(out_seq);
        pkt.set_timestamp(out_ts);
        pkt.set_payload_type(mapping.out_pt);
        if switched && audio {
            pkt.set_marker(true);
        }

        // Move the high-water mark; a late packet of the source leaves it where it is.
        let advances = self
            .last
            .is_none_or(|last| seq_after_rfc1982(out_seq, last.seq));
        if advances {
            if let Some(last) = self.last {
                let step = out_ts.wrapping_sub(last.ts);
                let in_order = out_seq == last.seq.wrapping_add(1);
                // A step over 200 ms is a silence gap, not a frame length: no telephony
                // codec packs frames that long.
                if !switched
                    && in_order
                    && audio
                    && last.audio
                    && (1..=self.clock_rate / 5).contains(&step)
                {
                    self.frame_samples = step;
                }
            }
            if feed
                .floor
                .is_some_and(|floor| out_seq.wrapping_sub(floor) >= MAX_MISORDER_RFC3550)
            {
                feed.floor = None;
            }
            self.last = Some(Emitted {
                seq: out_seq,
                ts: out_ts,
                at: now,
                audio,
            });
        }
        self.feed = Some(feed);
        Ok(mapping)
    }

    /// How far the timestamp moves on a source switch: the elapsed time in samples, at
    /// least one frame, and at least 1 so that it always moves forward.
    fn switch_advance(&self, now: Instant, last_at: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(last_at);
        samples_in(elapsed, self.clock_rate)
            .max(self.frame_samples)
            .max(1)
    }
}

/// `elapsed` in samples of a `clock_rate` Hz clock, modulo 2^32 like RTP timestamps.
pub(crate) fn samples_in(elapsed: Duration, clock_rate: u32) -> u32 {
    let samples = elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
    // Truncation is the RTP timestamp's own modulo-2^32 arithmetic (and 2^32 samples at
    // 8 kHz is six days of silence).
    (samples & u128::from(u32::MAX)) as u32
}
