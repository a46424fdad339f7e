//! A relay thread: polls its endpoints' sockets, forwards RTP and RTCP between bridged
//! endpoints, paces players and media streams' app audio, feeds recorders and media
//! streams' taps, reports digits and media timeouts.
//!
//! The hot path (a readable RTP socket) takes a batch with `recvmmsg`, checks each packet's
//! source against the latch, rewrites its header in place for the other leg's stream
//! (and transcodes the payload in place when the laws differ), and sends the batch with
//! `sendmmsg` straight out of the receive buffers. Nothing on that path allocates: the
//! buffers, the poll events and the relay ports (each endpoint's state, [`RelayPort`]) all
//! exist before the first packet.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::command::{
    Carried, Command, EndpointId, EventKind, EventSink, HeardBy, MediaEvent, Opened, RecordEnd,
    StreamParams,
};
use super::dtmf::TelephoneEvent;
use super::g711;
use super::latch::{Latch, Packet, Verdict};
use super::mmsg::{RecvBatch, SendQueue};
use super::player::{FRAME_SAMPLES, Frame, Player};
use super::relay_port::{
    PLAYER_SOURCE, PLAYER_SSRC, Recording, RelayPort, STREAM_SSRC, forward_map,
};
use super::rewriter::{PayloadAction, PayloadMap, SourceId, StreamRewriter};
use super::rtp::{PacketKind, RtcpPacket, RtpPacket, classify_rfc5761, rewrite_rtcp_ssrcs_rfc3550};
use super::silence::SilenceDetector;
use super::stream_tap::{StreamTap, Track};
use super::webrtc::DtlsIdentity;

#[path = "relay_secure.rs"]
mod secure;

#[path = "relay_conference.rs"]
mod conference;

#[path = "relay_commands.rs"]
mod commands;

pub(crate) use conference::ThreadLink;

pub const WAKER: Token = Token(usize::MAX);

/// The relay thread's clock. The thread does real I/O and paces players, so it reads the
/// time itself; everything below it (rewriter, latch, player) takes `now` as an argument.
#[allow(
    clippy::disallowed_methods,
    reason = "the relay thread is an I/O driver, like shard.rs"
)]
fn clock() -> Instant {
    Instant::now()
}

/// The player's pacing.
const TICK: Duration = Duration::from_millis(20);

/// Media timeouts and recording limits are checked this often.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

/// A player that fell this far behind (a stalled thread) restarts its pacing instead of
/// bursting to catch up.
const MAX_LAG: Duration = Duration::from_millis(100);

/// Counters one thread keeps (Relaxed: they are statistics, read by /metrics).
#[derive(Debug, Default)]
pub struct RelayStats {
    pub relayed: AtomicU64,
    pub foreign: AtomicU64,
    pub malformed: AtomicU64,
    pub unroutable: AtomicU64,
    pub played: AtomicU64,
    pub rtcp_relayed: AtomicU64,
    pub endpoints: AtomicU64,
    /// Conference mixing: ticks run, ticks skipped (the thread fell more than `MAX_LAG`
    /// behind), participant-frames mixed, how late each tick started, and how long it took
    /// (reading, mixing and sending for every conference of the thread: the last
    /// conference's frames leave that much after the first's, at the same offset every
    /// tick while the load is steady).
    pub mix_ticks: AtomicU64,
    pub mix_ticks_skipped: AtomicU64,
    pub mix_frames: AtomicU64,
    pub mix_lateness: super::LatenessHistogram,
    pub mix_duration: super::LatenessHistogram,
}

pub struct RelayThread {
    poll: Poll,
    commands: Receiver<Command>,
    /// Cleared before draining `commands` (see `MediaEngine::send`).
    wake_pending: Arc<std::sync::atomic::AtomicBool>,
    slots: Vec<Option<RelayPort>>,
    free: Vec<usize>,
    by_id: HashMap<EndpointId, usize>,
    playing: Vec<usize>,
    recv: RecvBatch,
    send: SendQueue,
    pcm: Box<[i16; 2048]>,
    group_rx: HashMap<u64, Instant>,
    timeout: Duration,
    next_housekeeping: Instant,
    stats: Arc<RelayStats>,
    /// The certificate browser legs present.
    identity: DtlsIdentity,
    /// Slots of browser legs (whose sessions have timers).
    secure_slots: Vec<usize>,
    /// What a browser leg's session writes out (a datagram, or RTP it unprotected).
    scratch: Box<[u8; 2048]>,
    /// The conferences mixed on this thread, and when their next 20 ms tick is due.
    conferences: HashMap<super::command::ConferenceId, super::mixer::Mixer>,
    next_mix: Instant,
    /// Conferences being recorded, with where their `RecordDone` goes.
    conference_recordings: HashMap<super::command::ConferenceId, (Recording, EventSink)>,
    /// Who started or stopped talking in this tick (reused: no allocation per tick).
    speaker_changes: Vec<super::mixer::SpeakerChange>,
    /// The slots whose RTP a mixer tick reads (reused: no allocation per tick).
    tick_slots: Vec<usize>,
    /// Endpoints this thread handed off, and where to: their commands follow them.
    forward: HashMap<EndpointId, usize>,
    /// Every relay thread's command channel (set once all are started).
    links: Arc<std::sync::OnceLock<Vec<ThreadLink>>>,
    /// The thread's 20 ms grid for media streams' playouts: they all tick together, so a
    /// thousand streams wake the thread once per tick, not a thousand times.
    stream_grid: Instant,
}

impl RelayThread {
    pub(crate) fn new(
        poll: Poll,
        commands: Receiver<Command>,
        wake_pending: Arc<std::sync::atomic::AtomicBool>,
        timeout: Duration,
        stats: Arc<RelayStats>,
        identity: DtlsIdentity,
        links: Arc<std::sync::OnceLock<Vec<ThreadLink>>>,
    ) -> Self {
        RelayThread {
            poll,
            commands,
            wake_pending,
            slots: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            by_id: HashMap::with_capacity(1024),
            playing: Vec::with_capacity(256),
            recv: RecvBatch::new(),
            send: SendQueue::new(),
            pcm: Box::new([0; 2048]),
            group_rx: HashMap::with_capacity(1024),
            timeout,
            next_housekeeping: clock() + HOUSEKEEPING,
            stats,
            identity,
            secure_slots: Vec::new(),
            scratch: Box::new([0; 2048]),
            conferences: HashMap::new(),
            next_mix: clock(),
            speaker_changes: Vec::with_capacity(256),
            tick_slots: Vec::with_capacity(256),
            conference_recordings: HashMap::new(),
            forward: HashMap::new(),
            links,
            stream_grid: clock(),
        }
    }

    /// The first point of the thread's stream grid at or after `now`.
    pub(super) fn on_stream_grid(&self, now: Instant) -> Instant {
        let since = now.saturating_duration_since(self.stream_grid);
        let ticks = since.as_nanos().div_ceil(TICK.as_nanos());
        self.stream_grid + TICK * ticks as u32
    }

    pub fn waker(poll: &Poll) -> io::Result<Waker> {
        Waker::new(poll.registry(), WAKER)
    }

    /// Runs until [`Command::Shutdown`] or the engine is dropped.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = clock();
            let wait = self.next_deadline().saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media relay poll failed");
                return;
            }
            // Commands first: a Configure or Bridge queued before a packet that arrives in
            // the same wake-up must apply to it (else the call's first packet is dropped).
            if !self.drain_commands() {
                return;
            }
            for ev in events.iter() {
                let token = ev.token();
                if token == WAKER {
                    continue;
                }
                let (slot, rtcp) = (token.0 >> 1, token.0 & 1 == 1);
                if rtcp {
                    self.on_rtcp_readable(slot);
                } else {
                    self.on_rtp_readable(slot);
                }
            }
            let now = clock();
            self.tick_players(now);
            self.tick_conferences(now);
            self.secure_timeouts(now);
            if now >= self.next_housekeeping {
                self.housekeeping(now);
                self.next_housekeeping = now + HOUSEKEEPING;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = self.next_housekeeping;
        for &s in &self.playing {
            if let Some(port) = self.slots[s].as_ref() {
                d = d.min(port.next_tick);
            }
        }
        for &s in &self.secure_slots {
            if let Some(leg) = self.slots[s].as_ref().and_then(|p| p.secure.as_ref()) {
                d = d.min(leg.wake);
            }
        }
        if !self.conferences.is_empty() {
            d = d.min(self.next_mix);
        }
        d
    }

    // ----------------------------------------------------------------------------------
    // The hot path
    // ----------------------------------------------------------------------------------

    fn on_rtp_readable(&mut self, slot: usize) {
        if self
            .slots
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|p| p.secure.is_some())
        {
            return self.on_secure_readable(slot);
        }
        loop {
            let Some(port) = self.slots.get(slot).and_then(Option::as_ref) else {
                return;
            };
            let n = match self.recv.recv(port.rtp.as_fd()) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "rtp receive failed");
                    return;
                }
            };
            let now = clock();
            let peer_slot = port.peer;
            let mut mixer = port.conference.and_then(|c| self.conferences.get_mut(&c));
            let (port, mut peer) = pair_mut(&mut self.slots, slot, peer_slot);
            let Some(port) = port else { return };
            // Queued straight out of the receive buffers: they stay borrowed (and cannot
            // receive again) until the flush.
            let mut batch = self.send.batch();
            for (buf, src) in self.recv.packets() {
                if let Some((len, dest)) = on_rtp(
                    port,
                    peer.as_deref_mut(),
                    mixer.as_deref_mut().map(|m| (m, slot)),
                    buf,
                    src,
                    now,
                    &mut self.pcm,
                    &self.stats,
                ) {
                    match peer.as_deref_mut() {
                        Some(p) if p.secure.is_some() => {
                            secure::send_to_browser(p, &buf[..len], now, &mut self.scratch[..]);
                            self.stats.relayed.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => batch.push(&buf[..len], dest),
                    }
                }
            }
            if let Some(peer) = peer {
                let sent = batch.flush(peer.rtp.as_fd());
                self.stats.relayed.fetch_add(sent as u64, Ordering::Relaxed);
            }
            if n < super::mmsg::BATCH {
                return;
            }
        }
    }

    fn on_rtcp_readable(&mut self, slot: usize) {
        loop {
            let Some(port) = self.slots.get(slot).and_then(Option::as_ref) else {
                return;
            };
            let n = match self.recv.recv(port.rtcp.as_fd()) {
                Ok(0) => return,
                Ok(n) => n,
                Err(_) => return,
            };
            let now = clock();
            let peer_slot = port.peer;
            let (port, peer) = pair_mut(&mut self.slots, slot, peer_slot);
            let Some(port) = port else { return };
            let mut batch = self.send.batch();
            for (buf, src) in self.recv.packets() {
                let Some(latch) = port.rtcp_latch.as_mut() else {
                    continue;
                };
                if latch.on_packet(src, rtcp_facts(buf), now) == Verdict::Foreign {
                    self.stats.foreign.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                port.last_rx = now;
                // A browser leg's session writes its own reports (over SRTCP, muxed).
                let Some(peer) = peer.as_deref().filter(|p| p.secure.is_none()) else {
                    continue;
                };
                let (Some(peer_latch), true) = (peer.rtcp_latch.as_ref(), peer.accepts_relay())
                else {
                    continue;
                };
                // The reports name our stream to this leg; towards the peer they must name
                // what the peer itself sent.
                let ours = port.out.ssrc();
                let theirs = peer.in_ssrc;
                if rewrite_rtcp_ssrcs_rfc3550(buf, peer.out.ssrc(), |s| {
                    (s == ours).then_some(theirs)
                })
                .is_err()
                {
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                batch.push(buf, peer_latch.destination());
            }
            if let Some(peer) = peer.as_deref()
                && !batch.is_empty()
            {
                let sent = batch.flush(peer.rtcp.as_fd());
                self.stats
                    .rtcp_relayed
                    .fetch_add(sent as u64, Ordering::Relaxed);
            }
            if n < super::mmsg::BATCH {
                return;
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Players
    // ----------------------------------------------------------------------------------

    fn tick_players(&mut self, now: Instant) {
        let mut i = 0;
        let realigned = self.on_stream_grid(now);
        while i < self.playing.len() {
            let slot = self.playing[i];
            let done = match self.slots[slot].as_mut() {
                Some(port) if port.player.is_some() || port.has_playout() => {
                    if now.saturating_duration_since(port.next_tick) > MAX_LAG {
                        port.next_tick = if port.player.is_none() {
                            realigned
                        } else {
                            now
                        };
                    }
                    let mut done = false;
                    while port.next_tick <= now && !done {
                        port.next_tick += TICK;
                        // A prompt has the leg's stream; the app's audio waits meanwhile.
                        if port.player.is_some() {
                            done = play_one(port, now, &self.stats);
                        } else {
                            stream_one(port, now, &self.stats);
                        }
                    }
                    done
                }
                _ => {
                    // Stopped or closed: just forget it.
                    self.playing.swap_remove(i);
                    continue;
                }
            };
            if done {
                let mut keep = false;
                if let Some(port) = self.slots[slot].as_mut() {
                    port.player = None;
                    emit(&port.sink, port.id, EventKind::PlayDone);
                    keep = port.has_playout();
                }
                if keep {
                    i += 1;
                } else {
                    self.playing.swap_remove(i);
                }
            } else {
                i += 1;
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Timeouts
    // ----------------------------------------------------------------------------------

    fn housekeeping(&mut self, now: Instant) {
        self.group_rx.clear();
        for port in self.slots.iter().flatten() {
            let e = self.group_rx.entry(port.group).or_insert(port.last_rx);
            *e = (*e).max(port.last_rx);
        }
        for port in self.slots.iter_mut().flatten() {
            let last = self
                .group_rx
                .get(&port.group)
                .copied()
                .unwrap_or(port.last_rx);
            if now.saturating_duration_since(last) >= self.timeout {
                // Reported again after another full period if the call goes on (a call
                // still ringing may ignore it).
                port.last_rx = now;
                emit(&port.sink, port.id, EventKind::MediaTimeout);
            }
            let end = match &port.recording {
                Some(r) if now.saturating_duration_since(r.started) >= r.spec.max_length => {
                    Some(RecordEnd::MaxLength)
                }
                Some(r)
                    if !r.spec.silence_timeout.is_zero()
                        && now.saturating_duration_since(r.last_audio)
                            >= r.spec.silence_timeout =>
                {
                    Some(RecordEnd::Silence)
                }
                _ => None,
            };
            if let Some(end) = end {
                finish_recording(port, end);
            }
        }
        // Keep the pacing list and the group table from holding memory of a busy past.
        if self.group_rx.capacity() > 4 * self.group_rx.len().max(1024) {
            self.group_rx.shrink_to(1024);
        }
    }
}

/// What the latch needs to know of a datagram on an RTCP port: a report (SR, RR, SDES, BYE,
/// APP) with its sender's SSRC, or something else.
fn rtcp_facts(buf: &[u8]) -> Packet {
    match RtcpPacket::new(buf) {
        Ok(p) if (200..=204).contains(&p.packet_type()) => {
            p.ssrc().map_or(Packet::Other, |ssrc| Packet::Rtcp { ssrc })
        }
        _ => Packet::Other,
    }
}

/// Handles one RTP datagram from `port`'s leg; returns what to send to the peer (length and
/// destination) after rewriting `buf` in place.
#[allow(clippy::too_many_arguments)]
fn on_rtp(
    port: &mut RelayPort,
    peer: Option<&mut RelayPort>,
    mix: Option<(&mut super::mixer::Mixer, usize)>,
    buf: &mut [u8],
    src: std::net::SocketAddr,
    now: Instant,
    pcm: &mut [i16; 2048],
    stats: &RelayStats,
) -> Option<(usize, std::net::SocketAddr)> {
    let params: StreamParams = port.params?;
    let len = buf.len();
    // Classified and validated once: the latch judges the source by what the view says.
    let is_rtp = classify_rfc5761(buf) == PacketKind::Rtp;
    let parsed = if is_rtp {
        RtpPacket::new(&mut *buf).ok()
    } else {
        None
    };
    let facts = match &parsed {
        Some(p) if params.receive.classify(p.payload_type()).is_some() => Packet::Rtp {
            ssrc: p.ssrc(),
            seq: p.sequence(),
        },
        _ => Packet::Other,
    };
    let latch = port.rtp_latch.as_mut()?;
    // A browser leg's packets were authenticated by SRTP already; ICE chose the address.
    if port.secure.is_none() && latch.on_packet(src, facts, now) == Verdict::Foreign {
        stats.foreign.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    port.last_rx = now;
    if !is_rtp {
        // RTCP muxed on the RTP port, STUN...: not relayed on this port.
        return None;
    }
    let Some(mut pkt) = parsed else {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    port.in_ssrc = pkt.ssrc();
    match params.receive.classify(pkt.payload_type()) {
        Some(Carried::TelephoneEvent) => {
            if let Ok(ev) = TelephoneEvent::parse(pkt.payload())
                && let Some(d) = port.dtmf.on_packet(pkt.ssrc(), pkt.timestamp(), &ev)
            {
                on_digit(port, d.digit);
            }
        }
        Some(Carried::Audio(law)) => {
            for tap in &mut port.taps {
                tap.push(Track::Inbound, law, pkt.payload(), now);
            }
            if let Some((mixer, key)) = mix {
                let n = law.decode_slice(pkt.payload(), &mut pcm[..]);
                mixer.push(key, &pcm[..n]);
            }
            if let Some(rec) = port.recording.as_mut() {
                let n = law.decode_slice(pkt.payload(), &mut pcm[..]);
                let frame = &pcm[..n];
                rec.last_audio = now;
                // Twilio's `timeout`: this much silence in what arrives ends it too.
                let silent_too_long = rec.silence.push(frame);
                let failed = rec.spec.recorder.push(frame).is_err();
                if failed || silent_too_long {
                    finish_recording(port, RecordEnd::Silence);
                }
            }
        }
        None => {}
    }
    // A conference participant's audio went to the mixer above; nothing is relayed.
    if !params.receiving || port.conference.is_some() {
        return None;
    }
    let peer = peer?;
    if !peer.accepts_relay() {
        return None;
    }
    let source = SourceId(port.id.0 as u32);
    let mapping = match peer.out.rewrite(source, &port.to_peer, &mut pkt, now) {
        Ok(m) => m,
        Err(_) => {
            stats.unroutable.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    match mapping.action {
        PayloadAction::PcmuToPcma => g711::pcmu_to_pcma_in_place(pkt.payload_mut()),
        PayloadAction::PcmaToPcmu => g711::pcma_to_pcmu_in_place(pkt.payload_mut()),
        PayloadAction::Forward | PayloadAction::TelephoneEvent => {}
    }
    // What the peer's leg hears: its outbound track.
    if !peer.taps.is_empty()
        && mapping.action != PayloadAction::TelephoneEvent
        && let Some(Carried::Audio(law)) = peer.params.and_then(|p| p.send.classify(mapping.out_pt))
    {
        for tap in &mut peer.taps {
            tap.push(Track::Outbound, law, pkt.payload(), now);
        }
    }
    let dest = peer.rtp_latch.as_ref()?.destination();
    Some((len, dest))
}

fn on_digit(port: &mut RelayPort, digit: char) {
    emit(&port.sink, port.id, EventKind::Digit(digit));
    for tap in &port.taps {
        tap.digit(digit);
    }
    let finish = port
        .recording
        .as_ref()
        .is_some_and(|r| r.spec.finish_on_key.contains(digit));
    if finish {
        finish_recording(port, RecordEnd::Key(digit));
    }
}

/// Sends one player tick to `port`'s leg; `true` when the player is done.
fn play_one(port: &mut RelayPort, now: Instant, stats: &RelayStats) -> bool {
    let (Some(player), Some(params), Some(latch)) =
        (port.player.as_mut(), port.params, port.rtp_latch.as_ref())
    else {
        // Not configured yet: the player waits (its pacing goes on).
        return false;
    };
    let mut pcm = [0i16; FRAME_SAMPLES];
    let mut buf = [0u8; 12 + FRAME_SAMPLES];
    let len = match player.tick(&mut pcm) {
        Frame::Done => return true,
        Frame::Audio {
            sequence,
            timestamp,
        } => {
            write_header(
                &mut buf,
                false,
                params.audio_pt(),
                sequence,
                timestamp,
                PLAYER_SSRC,
            );
            params.law.encode_slice(&pcm, &mut buf[12..]);
            for tap in &mut port.taps {
                tap.push_pcm(Track::Outbound, &pcm, now);
            }
            12 + FRAME_SAMPLES
        }
        Frame::Event(e) => {
            let Some(te) = params.send.telephone_event else {
                return false;
            };
            write_header(&mut buf, e.marker, te, e.sequence, e.timestamp, PLAYER_SSRC);
            buf[12..16].copy_from_slice(&e.payload);
            16
        }
    };
    send_own(port, &mut buf[..len], latch.destination(), now, stats);
    false
}

/// Sends one tick of a bidirectional media stream's app audio to `port`'s leg: the next
/// 20 ms the app queued, or nothing while it is silent (its marks are echoed either way).
fn stream_one(port: &mut RelayPort, now: Instant, stats: &RelayStats) {
    let mut frame = [0u8; FRAME_SAMPLES];
    let Some(tap) = port.taps.iter_mut().find(|t| t.playout.is_some()) else {
        return;
    };
    let audio = tap.next_frame(&mut frame);
    // The timestamp counts the time that passed, talking or not (RFC 3550 §5.1).
    let ts = port.stream_ts;
    port.stream_ts = ts.wrapping_add(FRAME_SAMPLES as u32);
    let talkspurt = audio && !port.stream_talking;
    port.stream_talking = audio;
    if !audio {
        return;
    }
    for tap in &mut port.taps {
        tap.push(Track::Outbound, g711::G711Law::Pcmu, &frame, now);
    }
    let (Some(params), Some(latch)) = (port.params, port.rtp_latch.as_ref()) else {
        return;
    };
    let mut buf = [0u8; 12 + FRAME_SAMPLES];
    let seq = port.stream_seq;
    port.stream_seq = seq.wrapping_add(1);
    write_header(&mut buf, talkspurt, params.audio_pt(), seq, ts, STREAM_SSRC);
    buf[12..].copy_from_slice(&frame);
    if params.law == g711::G711Law::Pcma {
        g711::pcmu_to_pcma_in_place(&mut buf[12..]);
    }
    send_own(port, &mut buf, latch.destination(), now, stats);
}

/// Sends a packet the relay made itself (a prompt's, the app's audio) on `port`'s stream.
fn send_own(
    port: &mut RelayPort,
    packet: &mut [u8],
    dest: std::net::SocketAddr,
    now: Instant,
    stats: &RelayStats,
) {
    let Ok(mut pkt) = RtpPacket::new(packet) else {
        return;
    };
    let sending = port.params.is_some_and(|p| p.sending);
    if port
        .out
        .rewrite(PLAYER_SOURCE, &port.player_map, &mut pkt, now)
        .is_ok()
        && sending
    {
        if port.secure.is_some() {
            let mut scratch = [0u8; 2048];
            secure::send_to_browser(port, pkt.as_bytes(), now, &mut scratch);
        } else {
            let _ = port.rtp.send_to(pkt.as_bytes(), dest);
        }
        stats.played.fetch_add(1, Ordering::Relaxed);
    }
}

fn write_header(buf: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = (u8::from(marker) << 7) | (pt & 0x7f);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Ends `port`'s recording. Finishing syncs the file to disk, so it runs on its own thread
/// rather than stalling every call on this relay thread.
fn finish_recording(port: &mut RelayPort, end: RecordEnd) {
    let Some(rec) = port.recording.take() else {
        return;
    };
    finish_recording_to(rec, end, port.sink.clone(), port.id);
}

/// Finishes `rec` on a thread of its own and reports to `sink` as `id`'s.
fn finish_recording_to(rec: Recording, end: RecordEnd, sink: EventSink, id: EndpointId) {
    let heard_voice = rec.silence.heard_voice();
    let span = rec.silence.voiced_span().filter(|_| rec.spec.trim_silence);
    let spawned = std::thread::Builder::new()
        .name("media-recfinish".into())
        .spawn(move || {
            let result = match span {
                Some((start, end)) => rec.spec.recorder.finish_trimmed(start, end),
                None => rec.spec.recorder.finish(),
            };
            emit(
                &sink,
                id,
                EventKind::RecordDone {
                    end,
                    result,
                    heard_voice,
                },
            );
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a thread to finish a recording");
    }
}

fn emit(sink: &EventSink, endpoint: EndpointId, kind: EventKind) {
    // The call may be gone already; then nobody needs to know.
    let _ = sink.send(MediaEvent { endpoint, kind });
}

/// Mutable references to two different slots (the second optional).
fn pair_mut(
    slots: &mut [Option<RelayPort>],
    a: usize,
    b: Option<usize>,
) -> (Option<&mut RelayPort>, Option<&mut RelayPort>) {
    match b {
        Some(b) if b != a && b < slots.len() && a < slots.len() => {
            if a < b {
                let (lo, hi) = slots.split_at_mut(b);
                (lo[a].as_mut(), hi[0].as_mut())
            } else {
                let (lo, hi) = slots.split_at_mut(a);
                (hi[0].as_mut(), lo[b].as_mut())
            }
        }
        _ => (slots.get_mut(a).and_then(Option::as_mut), None),
    }
}
