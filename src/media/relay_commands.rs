//! The relay thread's commands: what the calls ask of their endpoints (open, configure,
//! bridge, play, record, close, join a conference...), applied between two polls, before
//! the packets that arrived in the same wake-up.

use super::*;

impl RelayThread {
    /// Applies queued commands; `false` on shutdown.
    pub(super) fn drain_commands(&mut self) -> bool {
        self.wake_pending.store(false, Ordering::SeqCst);
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) => return false,
                Ok(cmd) => self.apply(cmd),
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn slot_of(&self, id: EndpointId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    fn apply(&mut self, cmd: Command) {
        if let Some(id) = cmd.endpoint()
            && !self.by_id.contains_key(&id)
            && let Some(&to) = self.forward.get(&id)
        {
            if matches!(cmd, Command::Close(_)) {
                self.forward.remove(&id);
            }
            self.send_to(to, cmd);
            return;
        }
        match cmd {
            Command::Open(o) => self.open(*o),
            Command::Configure(id, params) => {
                let Some(s) = self.slot_of(id) else { return };
                let Some(port) = self.slots[s].as_mut() else {
                    return;
                };
                let same_remote = port
                    .params
                    .is_some_and(|p| p.remote_rtp == params.remote_rtp);
                if !same_remote {
                    let host = params.signalling_host;
                    port.rtp_latch = Some(Latch::new(params.remote_rtp, host));
                    port.rtcp_latch = Some(Latch::new(params.remote_rtcp, host));
                    port.dtmf.reset();
                }
                port.params = Some(params);
                port.rebuild_player_map();
                self.rebuild_maps(s);
                self.start_secure(s, clock());
            }
            Command::Secure(id, params) => {
                if let Some(s) = self.slot_of(id) {
                    self.set_secure(s, *params);
                }
            }
            Command::Bridge(a, b) => {
                let (Some(sa), Some(sb)) = (self.slot_of(a), self.slot_of(b)) else {
                    tracing::warn!(?a, ?b, "bridge of endpoints on different threads or gone");
                    return;
                };
                self.unbridge(sa);
                self.unbridge(sb);
                if let Some(port) = self.slots[sa].as_mut() {
                    port.peer = Some(sb);
                }
                if let Some(port) = self.slots[sb].as_mut() {
                    port.peer = Some(sa);
                }
                self.rebuild_maps(sa);
            }
            Command::Unbridge(id) => {
                if let Some(s) = self.slot_of(id) {
                    self.unbridge(s);
                }
            }
            Command::Play { id, items, loops } => {
                let Some(s) = self.slot_of(id) else { return };
                let Some(port) = self.slots[s].as_mut() else {
                    return;
                };
                port.player = Some(Player::new(items, loops));
                port.next_tick = clock();
                if !self.playing.contains(&s) {
                    self.playing.push(s);
                }
            }
            Command::StopPlay(id) => {
                if let Some(port) = self.slot_of(id).and_then(|s| self.slots[s].as_mut()) {
                    port.player = None;
                }
            }
            Command::Record(id, spec) => {
                let Some(port) = self.slot_of(id).and_then(|s| self.slots[s].as_mut()) else {
                    return;
                };
                if port.recording.is_some() {
                    finish_recording(port, RecordEnd::Stopped);
                }
                let now = clock();
                port.recording = Some(Recording {
                    silence: SilenceDetector::new(spec.silence_timeout),
                    spec,
                    started: now,
                    last_audio: now,
                });
            }
            Command::StopRecord(id) => {
                if let Some(port) = self.slot_of(id).and_then(|s| self.slots[s].as_mut())
                    && port.recording.is_some()
                {
                    finish_recording(port, RecordEnd::Stopped);
                }
            }
            Command::Tap(id, spec) => {
                let Some(s) = self.slot_of(id) else { return };
                let now = clock();
                let grid = self.on_stream_grid(now);
                let Some(port) = self.slots[s].as_mut() else {
                    return;
                };
                port.taps.retain(|t| t.key != spec.key);
                let playout = spec.playout.is_some();
                port.taps.push(StreamTap::new(*spec, now));
                if playout {
                    port.next_tick = grid;
                    if !self.playing.contains(&s) {
                        self.playing.push(s);
                    }
                }
            }
            Command::Untap(id, key) => {
                if let Some(port) = self.slot_of(id).and_then(|s| self.slots[s].as_mut()) {
                    port.taps.retain(|t| t.key != key);
                }
            }
            Command::StreamOut(id, key, out) => {
                if let Some(port) = self.slot_of(id).and_then(|s| self.slots[s].as_mut())
                    && let Some(tap) = port.taps.iter_mut().find(|t| t.key == key)
                {
                    tap.play(out);
                }
            }
            Command::Close(id) => self.close(id),
            Command::Handoff(id, to) => self.handoff(id, to),
            Command::Adopt(port) => self.adopt(*port),
            Command::Join {
                id,
                conference,
                muted,
            } => self.join(id, conference, muted),
            Command::Leave(id) => self.leave(id),
            Command::Mute(id, muted) => self.mute(id, muted),
            Command::Coach(id, heard_by) => self.coach(id, heard_by),
            Command::Announce(conference, pcm) => {
                if let Some(m) = self.conferences.get_mut(&conference) {
                    m.announce(pcm);
                }
            }
            Command::RecordConference {
                conference,
                spec,
                sink,
            } => self.record_conference(conference, spec, sink),
            Command::Shutdown => {}
        }
    }

    fn open(&mut self, o: Opened) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut rtp = UdpSocket::from_std(o.rtp);
        let mut rtcp = UdpSocket::from_std(o.rtcp);
        let reg = self.poll.registry();
        if let Err(e) = reg
            .register(&mut rtp, Token(slot << 1), Interest::READABLE)
            .and_then(|()| reg.register(&mut rtcp, Token((slot << 1) | 1), Interest::READABLE))
        {
            tracing::error!(error = %e, "cannot poll an RTP socket; endpoint dropped");
            self.free.push(slot);
            return;
        }
        let now = clock();
        self.by_id.insert(o.id, slot);
        self.slots[slot] = Some(RelayPort {
            id: o.id,
            rtp,
            rtcp,
            _lease: o.lease,
            sink: o.sink,
            group: o.group,
            params: None,
            rtp_latch: None,
            rtcp_latch: None,
            peer: None,
            to_peer: PayloadMap::new(),
            out: StreamRewriter::new(o.ssrc, o.seq, o.ts, 8000),
            in_ssrc: 0,
            player: None,
            player_map: PayloadMap::new(),
            next_tick: now,
            recording: None,
            dtmf: Default::default(),
            last_rx: now,
            secure: None,
            conference: None,
            heard_by: HeardBy::All,
            mix_seq: o.seq,
            mix_ts: o.ts,
            taps: Vec::new(),
            stream_seq: o.seq,
            stream_ts: o.ts,
            stream_talking: false,
        });
        self.stats.endpoints.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&mut self, id: EndpointId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        self.unbridge(slot);
        self.leave_slot(slot);
        self.secure_slots.retain(|&s| s != slot);
        if let Some(mut port) = self.slots[slot].take() {
            if port.recording.is_some() {
                finish_recording(&mut port, RecordEnd::Stopped);
            }
            let reg = self.poll.registry();
            let _ = reg.deregister(&mut port.rtp);
            let _ = reg.deregister(&mut port.rtcp);
            self.stats.endpoints.fetch_sub(1, Ordering::Relaxed);
            // Sockets close and the lease returns the ports here.
        }
        self.free.push(slot);
    }

    pub(super) fn unbridge(&mut self, slot: usize) {
        let Some(peer) = self.slots[slot].as_mut().and_then(|e| e.peer.take()) else {
            return;
        };
        if let Some(p) = self.slots[peer].as_mut() {
            p.peer = None;
            p.to_peer = PayloadMap::new();
        }
        if let Some(e) = self.slots[slot].as_mut() {
            e.to_peer = PayloadMap::new();
        }
    }

    /// Recomputes the payload maps between `slot` and its peer, both ways.
    fn rebuild_maps(&mut self, slot: usize) {
        let peer = self.slots[slot].as_ref().and_then(|e| e.peer);
        let (port, peer) = pair_mut(&mut self.slots, slot, peer);
        let (Some(port), Some(peer)) = (port, peer) else {
            return;
        };
        let (Some(a), Some(b)) = (port.params, peer.params) else {
            port.to_peer = PayloadMap::new();
            peer.to_peer = PayloadMap::new();
            return;
        };
        port.to_peer = forward_map(&a, &b);
        peer.to_peer = forward_map(&b, &a);
    }
}
