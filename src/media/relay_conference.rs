//! The relay thread's side of conferences, and of moving endpoints between threads.
//!
//! A conference is mixed on one relay thread (encoded in its [`ConferenceId`]), so every
//! participant's endpoint moves there when it joins: the thread that holds it hands it off
//! (sockets, latches, its stream's rewriter, a browser leg's session: the port as it is)
//! and the new one adopts it. The call keeps addressing the endpoint's home thread, which
//! passes its commands on (a channel delivers one sender's messages in order, so they
//! arrive after the endpoint).
//!
//! A participant's RTP is decoded into the conference's [`Mixer`] instead of being relayed,
//! and read when the mixer ticks rather than as it arrives: its socket leaves the poll
//! while it is in the conference (a browser leg's stays, for ICE and DTLS). The mix only
//! takes audio at the tick anyway, and a thread woken for every packet of thousands of
//! participants spent more on the wake-ups (its own and its senders') than on mixing.
//! Every 20 ms the mixer gives each participant its N−1 mix, which goes out on the
//! participant's own stream (one SSRC and continuous sequence numbers across whatever fed
//! it before: prompts, a bridge, the wait music). A participant being played to (the wait
//! music, an announcement for it alone) hears the player, not the mix.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

use mio::{Interest, Token, Waker};

use super::super::command::{
    Command, ConferenceId, EndpointId, EventKind, EventSink, HeardBy, RecordEnd, RecordSpec,
};
use super::super::mixer::NOBODY;
use super::super::player::FRAME_SAMPLES;
use super::super::relay_port::Recording;
use super::super::relay_port::{MIXER_SOURCE, MIXER_SSRC, RelayPort};
use super::super::rtp::RtpPacket;
use super::super::silence::SilenceDetector;
use super::{MAX_LAG, RelayStats, RelayThread, TICK, emit, secure};

/// Another relay thread's command channel.
pub(crate) struct ThreadLink {
    pub(crate) commands: Sender<Command>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) wake_pending: Arc<AtomicBool>,
}

impl ThreadLink {
    /// Queues `cmd` and wakes the thread (see `MediaEngine::send`).
    pub(crate) fn send(&self, cmd: Command) {
        if self.commands.send(cmd).is_ok() && !self.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}

impl RelayThread {
    pub(super) fn send_to(&self, thread: usize, cmd: Command) {
        match self.links.get().and_then(|l| l.get(thread)) {
            Some(link) => link.send(cmd),
            None => tracing::error!(thread, "no relay thread to pass a command to"),
        }
    }

    fn my_thread(&self) -> Option<usize> {
        let links = self.links.get()?;
        links
            .iter()
            .position(|l| Arc::ptr_eq(&l.wake_pending, &self.wake_pending))
    }

    /// Gives the endpoint up to thread `to`.
    pub(super) fn handoff(&mut self, id: EndpointId, to: usize) {
        if self.my_thread() == Some(to) {
            return;
        }
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        self.unbridge(slot);
        self.leave_slot(slot);
        self.playing.retain(|&s| s != slot);
        self.secure_slots.retain(|&s| s != slot);
        let Some(mut port) = self.slots[slot].take() else {
            return;
        };
        self.free.push(slot);
        let reg = self.poll.registry();
        let _ = reg.deregister(&mut port.rtp);
        let _ = reg.deregister(&mut port.rtcp);
        self.stats.endpoints.fetch_sub(1, Ordering::Relaxed);
        self.forward.insert(id, to);
        self.send_to(to, Command::Adopt(Box::new(port)));
    }

    /// Takes an endpoint another thread handed off.
    pub(super) fn adopt(&mut self, mut port: RelayPort) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let reg = self.poll.registry();
        if let Err(e) = reg
            .register(&mut port.rtp, Token(slot << 1), Interest::READABLE)
            .and_then(|()| reg.register(&mut port.rtcp, Token((slot << 1) | 1), Interest::READABLE))
        {
            tracing::error!(error = %e, "cannot poll a moved RTP socket; endpoint dropped");
            self.free.push(slot);
            return;
        }
        let id = port.id;
        self.forward.remove(&id);
        self.by_id.insert(id, slot);
        if port.player.is_some() {
            self.playing.push(slot);
        }
        if port.secure.is_some() {
            self.secure_slots.push(slot);
        }
        port.peer = None;
        self.slots[slot] = Some(port);
        self.stats.endpoints.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn join(&mut self, id: EndpointId, conference: ConferenceId, muted: bool) {
        let Some(slot) = self.by_id.get(&id).copied() else {
            tracing::warn!(?id, "join of an endpoint not on the conference's thread");
            return;
        };
        self.unbridge(slot);
        self.leave_slot(slot);
        let Some(port) = self.slots[slot].as_mut() else {
            return;
        };
        port.conference = Some(conference);
        if port.secure.is_none() {
            // Read at the tick from now on (see the module's comment).
            let _ = self.poll.registry().deregister(&mut port.rtp);
        }
        if self.conferences.is_empty() {
            self.next_mix = super::clock();
        }
        // (`leave_slot` above made it heard by all: a coach is named after it joins.)
        let mixer = self.conferences.entry(conference).or_default();
        mixer.add(slot, muted);
        if mixer.has_coaches() {
            // The one joining may be the one a coach waited for.
            self.resolve_coaching(conference);
        }
    }

    pub(super) fn coach(&mut self, id: EndpointId, heard_by: HeardBy) {
        let Some(&slot) = self.by_id.get(&id) else {
            return;
        };
        let Some(port) = self.slots[slot].as_mut() else {
            return;
        };
        port.heard_by = heard_by;
        if let Some(conference) = port.conference {
            self.resolve_coaching(conference);
        }
    }

    /// Tells the conference's mixer who coaches whom, by slot: run when a coach is named
    /// and when anyone joins (the one coached may be the one joining).
    fn resolve_coaching(&mut self, conference: ConferenceId) {
        let Some(mixer) = self.conferences.get_mut(&conference) else {
            return;
        };
        // Its participants are the slots it mixes.
        self.tick_slots.clear();
        self.tick_slots.extend(mixer.keys());
        for &slot in &self.tick_slots {
            let Some(port) = self.slots[slot].as_ref() else {
                continue;
            };
            let coached = match port.heard_by {
                HeardBy::All => None,
                HeardBy::Nobody => Some(NOBODY),
                HeardBy::Only(target) => Some(
                    self.by_id
                        .get(&target)
                        .copied()
                        .filter(|&t| mixer.contains(t))
                        .unwrap_or(NOBODY),
                ),
            };
            mixer.set_coaching(slot, coached);
        }
    }

    pub(super) fn leave(&mut self, id: EndpointId) {
        if let Some(&slot) = self.by_id.get(&id) {
            self.leave_slot(slot);
        }
    }

    /// Takes the slot's endpoint out of its conference (which ends with its last one).
    pub(super) fn leave_slot(&mut self, slot: usize) {
        // What it sent since the last tick was for the conference: take it in now, so it
        // is not relayed to whatever the endpoint is bridged with next.
        if self.slots[slot]
            .as_ref()
            .is_some_and(|p| p.conference.is_some() && p.secure.is_none())
        {
            self.on_rtp_readable(slot);
        }
        let Some(port) = self.slots[slot].as_mut() else {
            return;
        };
        port.heard_by = HeardBy::All;
        let Some(conference) = port.conference.take() else {
            return;
        };
        if port.secure.is_none()
            && let Err(e) =
                self.poll
                    .registry()
                    .register(&mut port.rtp, Token(slot << 1), Interest::READABLE)
        {
            tracing::error!(error = %e, "cannot poll an RTP socket leaving a conference");
        }
        if let Some(m) = self.conferences.get_mut(&conference) {
            m.remove(slot);
            if m.is_empty() {
                self.conferences.remove(&conference);
                if let Some((rec, sink)) = self.conference_recordings.remove(&conference) {
                    super::finish_recording_to(rec, RecordEnd::Stopped, sink, EndpointId(0));
                }
            }
        }
    }

    /// Starts recording the conference's mix (it is created if its first participant's
    /// `Join` is still on its way).
    pub(super) fn record_conference(
        &mut self,
        conference: ConferenceId,
        spec: Box<RecordSpec>,
        sink: EventSink,
    ) {
        if self.conferences.is_empty() {
            self.next_mix = super::clock();
        }
        self.conferences.entry(conference).or_default();
        let now = super::clock();
        let rec = Recording {
            silence: SilenceDetector::new(spec.silence_timeout),
            spec,
            started: now,
            last_audio: now,
        };
        if let Some((old, old_sink)) = self.conference_recordings.insert(conference, (rec, sink)) {
            super::finish_recording_to(old, RecordEnd::Stopped, old_sink, EndpointId(0));
        }
    }

    pub(super) fn mute(&mut self, id: EndpointId, muted: bool) {
        let Some(&slot) = self.by_id.get(&id) else {
            return;
        };
        let Some(conference) = self.slots[slot].as_ref().and_then(|p| p.conference) else {
            return;
        };
        if let Some(m) = self.conferences.get_mut(&conference) {
            m.set_muted(slot, muted);
        }
    }

    /// Runs every conference's 20 ms ticks that are due.
    pub(super) fn tick_conferences(&mut self, now: Instant) {
        if self.conferences.is_empty() {
            return;
        }
        let behind = now.saturating_duration_since(self.next_mix);
        if behind > MAX_LAG {
            let skipped = behind.as_micros() / TICK.as_micros();
            self.stats
                .mix_ticks_skipped
                .fetch_add(skipped as u64, Ordering::Relaxed);
            self.next_mix = now;
        }
        while self.next_mix <= now {
            let due = self.next_mix;
            self.next_mix += TICK;
            let started = super::clock();
            self.stats
                .mix_lateness
                .record(started.saturating_duration_since(due));
            // What every participant sent since the last tick.
            self.tick_slots.clear();
            for mixer in self.conferences.values() {
                self.tick_slots.extend(mixer.keys());
            }
            for i in 0..self.tick_slots.len() {
                let slot = self.tick_slots[i];
                if self.slots[slot]
                    .as_ref()
                    .is_some_and(|p| p.secure.is_none())
                {
                    self.on_rtp_readable(slot);
                }
            }
            let (slots, stats, changes) = (&mut self.slots, &self.stats, &mut self.speaker_changes);
            let mut frames = 0;
            for (id, mixer) in self.conferences.iter_mut() {
                frames += mixer.len() as u64;
                mixer.tick(
                    |slot, frame| {
                        if let Some(port) = slots.get_mut(slot).and_then(Option::as_mut) {
                            send_mix(port, frame, now, stats);
                        }
                    },
                    |change| changes.push(change),
                );
                if let Some((rec, _)) = self.conference_recordings.get_mut(id) {
                    rec.silence.push(mixer.mix());
                    if rec.spec.recorder.push(mixer.mix()).is_err() {
                        tracing::warn!(conference = ?id, "conference recording failed to write");
                    }
                }
            }
            self.stats.mix_frames.fetch_add(frames, Ordering::Relaxed);
            self.stats
                .mix_duration
                .record(super::clock().saturating_duration_since(started));
            self.stats.mix_ticks.fetch_add(1, Ordering::Relaxed);
            for change in self.speaker_changes.drain(..) {
                if let Some(port) = self.slots.get(change.key).and_then(Option::as_ref) {
                    emit(&port.sink, port.id, EventKind::Speaking(change.speaking));
                }
            }
        }
    }
}

/// Sends one frame of the mix to a participant, on its own stream.
fn send_mix(port: &mut RelayPort, frame: &[i16; FRAME_SAMPLES], now: Instant, stats: &RelayStats) {
    // The player (wait music, an announcement to this participant) owns the stream.
    if port.player.is_some() {
        return;
    }
    let (Some(params), Some(latch)) = (port.params, port.rtp_latch.as_ref()) else {
        return;
    };
    if !params.sending {
        return;
    }
    let dest = latch.destination();
    let mut buf = [0u8; 12 + FRAME_SAMPLES];
    super::write_header(
        &mut buf,
        false,
        params.audio_pt(),
        port.mix_seq,
        port.mix_ts,
        MIXER_SSRC,
    );
    port.mix_seq = port.mix_seq.wrapping_add(1);
    port.mix_ts = port.mix_ts.wrapping_add(FRAME_SAMPLES as u32);
    params.law.encode_slice(frame, &mut buf[12..]);
    for tap in &mut port.taps {
        tap.push_pcm(super::Track::Outbound, frame, now);
    }
    let Ok(mut pkt) = RtpPacket::new(&mut buf[..]) else {
        return;
    };
    if port
        .out
        .rewrite(MIXER_SOURCE, &port.player_map, &mut pkt, now)
        .is_err()
    {
        return;
    }
    if port.secure.is_some() {
        let mut scratch = [0u8; 2048];
        secure::send_to_browser(port, pkt.as_bytes(), now, &mut scratch);
    } else {
        let _ = port.rtp.send_to(pkt.as_bytes(), dest);
    }
    stats.played.fetch_add(1, Ordering::Relaxed);
}
