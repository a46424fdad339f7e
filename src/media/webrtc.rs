//! A browser leg's transport: ICE-lite (RFC 8445 §2.5), DTLS-SRTP (RFC 5763/5764) and
//! rtcp-mux (RFC 5761), done by str0m (a sans-IO WebRTC stack) in its RTP mode.
//!
//! The relay keeps speaking plain RTP between its legs: a [`WebRtcSession`] sits between a
//! browser leg's socket and the relay. What arrives from the browser (STUN checks, DTLS
//! records, SRTP) goes in with [`WebRtcSession::receive`]; what the relay forwards to the
//! browser goes in as a plain RTP packet with [`WebRtcSession::send_rtp`]. Everything that
//! comes out is taken one item at a time with [`WebRtcSession::poll`], copied into a buffer
//! the caller owns: a datagram to put on the wire, or an unprotected RTP packet (header and
//! payload, no extensions) to treat like any RTP from a plain leg.
//!
//! Like the rest of the relay's building blocks there is no I/O and no clock here: the
//! relay thread passes `now` in and sends what comes out. Unlike the plain legs, str0m
//! allocates per packet (its payloads are `Arc<[u8]>`, its datagrams `Vec<u8>`); that cost
//! is confined to browser legs and measured in `benches/media/`.
//!
//! The SDP side (our ICE credentials, the certificate's fingerprint, the browser's) is the
//! call layer's: it writes and reads the descriptions and hands the result over as
//! [`SecureParams`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::DtlsCert;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::Protocol;
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

use super::command::PayloadTypes;
use super::rtp::RtpPacket;

/// The certificate every browser leg of this process presents in its DTLS handshake
/// (RFC 5763 §5: one self-signed certificate, authenticated by the fingerprint in SDP),
/// and the crypto that goes with it.
#[derive(Clone)]
pub struct DtlsIdentity {
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
    fingerprint: String,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// A new key pair and self-signed certificate (pure-Rust crypto, no aws-lc).
    pub fn generate() -> Result<DtlsIdentity, String> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| "cannot generate a DTLS certificate".to_string())?;
        let provider = Arc::new(provider);
        // The fingerprint as str0m computes it (what it checks against on the other side).
        let probe = RtcConfig::new()
            .set_crypto_provider(provider.clone())
            .set_dtls_cert(cert.clone())
            .build(now_for_probe());
        let mut probe = probe;
        let fingerprint = probe.direct_api().local_dtls_fingerprint().to_string();
        Ok(DtlsIdentity {
            provider,
            cert,
            fingerprint,
        })
    }

    /// `sha-256 AB:CD:...`, the value of our `a=fingerprint` (RFC 8122).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// str0m wants a start instant to build an `Rtc`; the probe above is dropped at once, so
/// any instant does. Passed in rather than read, like every other time here.
fn now_for_probe() -> Instant {
    #[allow(
        clippy::disallowed_methods,
        reason = "a throwaway Rtc built once at start-up only to read the fingerprint"
    )]
    Instant::now()
}

/// What SDP agreed for a browser leg's transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureParams {
    /// Our `a=ice-ufrag` / `a=ice-pwd` on this leg.
    pub local_ufrag: String,
    pub local_pwd: String,
    /// The browser's.
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// The browser's `a=fingerprint` (`sha-256 AB:CD:...`).
    pub remote_fingerprint: String,
    /// We take the DTLS client role: the browser said `a=setup:passive` (RFC 5763 §5).
    pub dtls_client: bool,
    /// The audio section's `a=mid`.
    pub mid: String,
    /// The `a=extmap` id of the `sdes:mid` header extension (RFC 8843), if agreed.
    pub mid_extension: Option<u8>,
    /// SSRCs the browser announced with `a=ssrc` (RFC 5576).
    pub remote_ssrcs: Vec<u32>,
    /// Our host candidate: the advertised address and the leg's port.
    pub candidate: SocketAddr,
}

/// What [`WebRtcSession::poll`] put in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// A datagram of this length for `to`.
    Transmit { len: usize, to: SocketAddr },
    /// An unprotected RTP packet of this length from the browser.
    Rtp { len: usize },
    /// Nothing more until this instant (or new input).
    Idle(Instant),
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    #[error("bad a=fingerprint: {0}")]
    Fingerprint(String),
    #[error("bad host candidate {0}")]
    Candidate(SocketAddr),
    #[error("DTLS: {0}")]
    Dtls(String),
}

/// One browser leg's ICE, DTLS and SRTP state.
pub struct WebRtcSession {
    rtc: Rtc,
    params: SecureParams,
    tx: Ssrc,
    connected: bool,
    failed: bool,
    /// The latest `now` seen (what a failed session's far-off wake-up counts from).
    last: Instant,
    /// The extended sequence number of the last packet sent.
    sent_seq: Option<u64>,
}

impl std::fmt::Debug for WebRtcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSession")
            .field("params", &self.params)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl WebRtcSession {
    /// A session for a leg that receives `receive` and is sent `send` payload types, whose
    /// outgoing stream is `tx_ssrc`.
    pub fn new(
        identity: &DtlsIdentity,
        params: SecureParams,
        send: PayloadTypes,
        receive: PayloadTypes,
        tx_ssrc: u32,
        now: Instant,
    ) -> Result<WebRtcSession, SecureError> {
        let mut exts = ExtensionMap::empty();
        if let Some(id) = params.mid_extension {
            exts.set(id, Extension::RtpMid);
        }
        let mut config = RtcConfig::new()
            .set_crypto_provider(identity.provider.clone())
            .set_dtls_cert(identity.cert.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_extension_map(exts)
            .set_local_ice_credentials(IceCreds {
                ufrag: params.local_ufrag.clone(),
                pass: params.local_pwd.clone(),
            })
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false);
        // telephone-event on whatever numbers the two directions use (RFC 4733 §7.1.1):
        // str0m drops RTP whose payload type it has no parameters for.
        let mut events: Vec<u8> = [send.telephone_event, receive.telephone_event]
            .into_iter()
            .flatten()
            .collect();
        events.dedup();
        for pt in events {
            config.codec_config().add_config(
                Pt::from(pt),
                None,
                Codec::Tele,
                Frequency::EIGHT_KHZ,
                None,
                FormatParams::default(),
            );
        }
        let mut rtc = config.build(now);
        let candidate = Candidate::host(params.candidate, "udp")
            .map_err(|_| SecureError::Candidate(params.candidate))?;
        rtc.add_local_candidate(candidate);
        let fingerprint = params
            .remote_fingerprint
            .parse()
            .map_err(SecureError::Fingerprint)?;
        let mid = Mid::from(params.mid.as_str());
        let tx = Ssrc::from(tx_ssrc);
        {
            let mut api = rtc.direct_api();
            api.set_ice_controlling(false);
            api.set_remote_ice_credentials(IceCreds {
                ufrag: params.remote_ufrag.clone(),
                pass: params.remote_pwd.clone(),
            });
            api.set_remote_fingerprint(fingerprint);
            api.declare_media(mid, MediaKind::Audio);
            api.declare_stream_tx(tx, None, mid, None);
            for &ssrc in &params.remote_ssrcs {
                api.expect_stream_rx(Ssrc::from(ssrc), None, mid, None);
            }
            api.start_dtls(params.dtls_client)
                .map_err(|e| SecureError::Dtls(e.to_string()))?;
        }
        Ok(WebRtcSession {
            rtc,
            params,
            tx,
            connected: false,
            failed: false,
            last: now,
            sent_seq: None,
        })
    }

    /// What the session was made for: a new answer with the same values keeps it.
    pub fn params(&self) -> &SecureParams {
        &self.params
    }

    /// ICE and DTLS are up and SRTP keys derived.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// ICE failed or the browser closed DTLS: nothing will pass again.
    pub fn has_failed(&self) -> bool {
        self.failed || !self.rtc.is_alive()
    }

    /// A datagram from the browser (or anyone: STUN without our credentials, records
    /// outside the handshake and SRTP that does not authenticate are dropped by str0m).
    pub fn receive(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.last = self.last.max(now);
        let Ok(r) = str0m::net::Receive::new(Protocol::Udp, from, self.params.candidate, datagram)
        else {
            return;
        };
        if let Err(e) = self.rtc.handle_input(Input::Receive(now, r)) {
            tracing::debug!(error = %e, "browser leg input refused");
        }
    }

    /// Time passed.
    pub fn timeout(&mut self, now: Instant) {
        self.last = self.last.max(now);
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(error = %e, "browser leg timeout refused");
        }
    }

    /// Sends a plain RTP packet (12-byte header, no CSRC or extensions expected: it comes
    /// out of the relay's rewriter) to the browser, SRTP-protected. Dropped until the
    /// handshake is done: there are no keys before.
    pub fn send_rtp(&mut self, now: Instant, packet: &[u8]) {
        if !self.connected || packet.len() < 12 {
            return;
        }
        let Ok(pkt) = RtpPacket::new(packet) else {
            return;
        };
        self.last = self.last.max(now);
        // str0m wants the extended sequence number; the rewriter's output counts on from
        // its first packet, so extend it here (RFC 3550 A.1's way: the nearest value).
        let seq = extend_seq(self.sent_seq, pkt.sequence());
        self.sent_seq = Some(seq);
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx(&self.tx) else {
            return;
        };
        let write = RtpWrite::new(
            Pt::from(pkt.payload_type()),
            seq.into(),
            pkt.timestamp(),
            now,
            pkt.payload(),
        )
        .marker(pkt.marker());
        stream.write_rtp(write);
    }

    /// The next thing to do, written into `buf` (at least 1500 bytes). Call until it
    /// says [`Polled::Idle`].
    pub fn poll(&mut self, buf: &mut [u8]) -> Polled {
        loop {
            let out = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(error = %e, "browser leg failed");
                    self.failed = true;
                    return Polled::Idle(self.last + Duration::from_secs(3600));
                }
            };
            match out {
                Output::Timeout(t) => return Polled::Idle(t),
                Output::Transmit(t) => {
                    let len = t.contents.len();
                    if len > buf.len() {
                        continue;
                    }
                    buf[..len].copy_from_slice(&t.contents);
                    return Polled::Transmit {
                        len,
                        to: t.destination,
                    };
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => {
                    // ICE-lite only hears checks; a browser that stops checking is gone,
                    // which the relay's media timeout reports on its own.
                }
                Output::Event(Event::Closed) => self.failed = true,
                Output::Event(Event::RtpPacket(p)) => {
                    if p.header.ssrc == self.tx {
                        continue;
                    }
                    let payload = &p.payload[..];
                    let len = 12 + payload.len();
                    if len > buf.len() {
                        continue;
                    }
                    buf[0] = 0x80;
                    buf[1] = (u8::from(p.header.marker) << 7) | (*p.header.payload_type & 0x7f);
                    buf[2..4].copy_from_slice(&p.header.sequence_number.to_be_bytes());
                    buf[4..8].copy_from_slice(&p.header.timestamp.to_be_bytes());
                    buf[8..12].copy_from_slice(&(*p.header.ssrc).to_be_bytes());
                    buf[12..len].copy_from_slice(payload);
                    return Polled::Rtp { len };
                }
                Output::Event(_) => {}
            }
        }
    }

    /// The `a=mid` of the session's audio.
    pub fn mid(&self) -> &str {
        &self.params.mid
    }
}

/// `seq` extended to 64 bits next to `last` (the nearest candidate, so a wrap counts on).
fn extend_seq(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else {
        return u64::from(seq);
    };
    let base = last & !0xffff;
    [base.wrapping_sub(0x1_0000), base, base + 0x1_0000]
        .into_iter()
        .map(|b| b | u64::from(seq))
        .filter(|&c| c < (1 << 48))
        .min_by_key(|&c| c.abs_diff(last))
        .unwrap_or(u64::from(seq))
}

#[cfg(test)]
#[path = "webrtc_tests.rs"]
mod tests;
