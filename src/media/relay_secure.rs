//! The relay thread's side of browser legs: a [`WebRtcSession`] between the leg's socket
//! and the plain-RTP relay.
//!
//! - Datagrams from the browser go into the session; what comes out is either a datagram
//!   for the browser (STUN answers, DTLS records), sent at once, or an unprotected RTP
//!   packet, which then takes the same path as a plain leg's packet (`on_rtp`: digits,
//!   recording, rewriting for the peer), and is sent to the peer, protected again if the
//!   peer is a browser too.
//! - RTP the relay forwards or plays to a browser leg goes into its session and leaves
//!   as SRTP.
//! - The sessions' timers (ICE consent, DTLS retransmits, RTCP reports) are run from the
//!   poll loop.
//!
//! Browser legs cost allocations per packet inside str0m; plain legs keep the relay's
//! no-allocation rule (`sip-tests/relay_alloc.rs`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::super::relay_port::{RelayPort, SecureLeg};
use super::super::webrtc::{Polled, SecureParams, WebRtcSession};
use super::{RelayThread, clock, on_rtp, pair_mut};

impl RelayThread {
    /// SDP made the endpoint a browser's. The same parameters again (a re-INVITE that
    /// changed nothing of the transport) keep the running session; new ones (an ICE
    /// restart, another certificate) start over.
    pub(super) fn set_secure(&mut self, slot: usize, params: SecureParams) {
        let Some(port) = self.slots[slot].as_mut() else {
            return;
        };
        if port.secure.as_ref().is_some_and(|l| l.params == params) {
            return;
        }
        port.secure = Some(Box::new(SecureLeg {
            params,
            session: None,
            wake: clock(),
        }));
        if !self.secure_slots.contains(&slot) {
            self.secure_slots.push(slot);
        }
    }

    /// Starts the session once the leg's payload types are known (its `Configure`).
    pub(super) fn start_secure(&mut self, slot: usize, now: Instant) {
        let Some(port) = self.slots[slot].as_mut() else {
            return;
        };
        let (Some(params), Some(leg)) = (port.params, port.secure.as_mut()) else {
            return;
        };
        if leg.session.is_some() {
            return;
        }
        match WebRtcSession::new(
            &self.identity,
            leg.params.clone(),
            params.send,
            params.receive,
            port.out.ssrc(),
            now,
        ) {
            Ok(session) => {
                leg.session = Some(session);
                leg.wake = now;
            }
            Err(e) => {
                tracing::warn!(error = %e, "browser leg cannot start; its media is dropped");
            }
        }
        self.drain_secure(slot, now, None);
    }

    /// Datagrams on a browser leg's port.
    pub(super) fn on_secure_readable(&mut self, slot: usize) {
        loop {
            let Some(port) = self.slots.get(slot).and_then(Option::as_ref) else {
                return;
            };
            let n = match self.recv.recv(std::os::fd::AsFd::as_fd(&port.rtp)) {
                Ok(0) => return,
                Ok(n) => n,
                Err(_) => return,
            };
            let now = clock();
            for i in 0..n {
                let src = {
                    let Some((buf, src)) = self.recv.packets().nth(i) else {
                        break;
                    };
                    let Some(port) = self.slots[slot].as_mut() else {
                        return;
                    };
                    let Some(session) = port.secure.as_mut().and_then(|l| l.session.as_mut())
                    else {
                        // Not started yet: the browser retransmits its checks.
                        continue;
                    };
                    session.receive(now, src, buf);
                    port.last_rx = now;
                    src
                };
                self.drain_secure(slot, now, Some(src));
            }
            if n < super::super::mmsg::BATCH {
                return;
            }
        }
    }

    /// Runs the sessions whose timers are due.
    pub(super) fn secure_timeouts(&mut self, now: Instant) {
        for i in 0..self.secure_slots.len() {
            let slot = self.secure_slots[i];
            let Some(leg) = self.slots[slot].as_mut().and_then(|p| p.secure.as_mut()) else {
                continue;
            };
            if leg.wake > now {
                continue;
            }
            if let Some(session) = leg.session.as_mut() {
                session.timeout(now);
            }
            self.drain_secure(slot, now, None);
        }
    }

    /// Takes everything the session of `slot` has to give: datagrams go out on its socket,
    /// RTP from the browser goes the way a plain leg's does. `src` is where the datagram
    /// that caused it came from.
    fn drain_secure(&mut self, slot: usize, now: Instant, src: Option<std::net::SocketAddr>) {
        let peer_slot = self.slots[slot].as_ref().and_then(|p| p.peer);
        let mut mixer = self.slots[slot]
            .as_ref()
            .and_then(|p| p.conference)
            .and_then(|c| self.conferences.get_mut(&c));
        let (port, mut peer) = pair_mut(&mut self.slots, slot, peer_slot);
        let Some(port) = port else { return };
        loop {
            let Some(leg) = port.secure.as_mut() else {
                return;
            };
            let Some(session) = leg.session.as_mut() else {
                leg.wake = now + std::time::Duration::from_secs(3600);
                return;
            };
            match session.poll(&mut self.scratch[..]) {
                Polled::Idle(t) => {
                    leg.wake = t;
                    if session.has_failed() {
                        // Nothing will pass again: the call ends the leg (BYE).
                        tracing::info!(endpoint = ?port.id, "browser leg's ICE or DTLS failed");
                        leg.session = None;
                        super::emit(&port.sink, port.id, super::EventKind::SecureFailed);
                    }
                    return;
                }
                Polled::Transmit { len, to } => {
                    let _ = port.rtp.send_to(&self.scratch[..len], to);
                }
                Polled::Rtp { len } => {
                    let from = src.unwrap_or(
                        port.params
                            .map_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |p| {
                                p.remote_rtp
                            }),
                    );
                    let Some((len, dest)) = on_rtp(
                        port,
                        peer.as_deref_mut(),
                        mixer.as_deref_mut().map(|m| (m, slot)),
                        &mut self.scratch[..len],
                        from,
                        now,
                        &mut self.pcm,
                        &self.stats,
                    ) else {
                        continue;
                    };
                    let Some(peer) = peer.as_deref_mut() else {
                        continue;
                    };
                    // The peer's own scratch would alias ours: copy the packet out first.
                    let mut packet = [0u8; 2048];
                    packet[..len].copy_from_slice(&self.scratch[..len]);
                    if peer.secure.is_some() {
                        send_to_browser(peer, &packet[..len], now, &mut self.scratch[..]);
                    } else {
                        let _ = peer.rtp.send_to(&packet[..len], dest);
                    }
                    self.stats.relayed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Sends a plain RTP packet (already rewritten for `port`'s stream) to a browser leg, and
/// the datagrams it turns into. Before the handshake is done there are no keys, and the
/// packet is dropped.
pub(super) fn send_to_browser(
    port: &mut RelayPort,
    packet: &[u8],
    now: Instant,
    scratch: &mut [u8],
) {
    let Some(session) = port.secure.as_mut().and_then(|l| l.session.as_mut()) else {
        return;
    };
    session.send_rtp(now, packet);
    loop {
        match session.poll(scratch) {
            Polled::Idle(t) => {
                if let Some(leg) = port.secure.as_mut() {
                    leg.wake = leg.wake.min(t);
                }
                return;
            }
            Polled::Transmit { len, to } => {
                let _ = port.rtp.send_to(&scratch[..len], to);
            }
            Polled::Rtp { .. } => {
                // Only input brings RTP out, and every input is drained right after it.
                tracing::debug!("browser RTP surfaced while sending; dropped");
            }
        }
    }
}
