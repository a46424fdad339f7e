//! [`RelayPort`]: the relay thread's side of one endpoint. The call holds the endpoint
//! through a [`super::Endpoint`] handle (which only names it and closes it when dropped);
//! the relay thread that owns it keeps everything else here: the two sockets, the latches,
//! the output stream towards the leg, and what the call asked of it (bridge, play, record).

use std::time::{Duration, Instant};

use mio::net::UdpSocket;

use super::command::{Carried, EndpointId, EventSink, RecordSpec, StreamParams};
use super::dtmf::TelephoneEventReceiver;
use super::latch::Latch;
use super::player::Player;
use super::ports::PortLease;
use super::rewriter::{PayloadAction, PayloadMap, SourceId, StreamRewriter};
use super::silence::SilenceDetector;
use super::webrtc::{SecureParams, WebRtcSession};

/// The SSRC the player's packets carry before the rewriter maps them onto the leg's
/// stream; it only has to differ from what a leg sends, which the SourceId already ensures.
pub const PLAYER_SSRC: u32 = 0x5357_4244;

/// The rewriter's name for the player as a source.
pub const PLAYER_SOURCE: SourceId = SourceId(u32::MAX);

/// The same two for a conference's mix.
pub const MIXER_SSRC: u32 = 0x5357_4d58;
pub const MIXER_SOURCE: SourceId = SourceId(u32::MAX - 1);

/// The SSRC of a bidirectional media stream's app audio before the rewriter maps it onto
/// the leg's stream (under [`PLAYER_SOURCE`]: the SSRC tells the two feeds apart).
pub const STREAM_SSRC: u32 = 0x5357_4d5a;

/// A recording in progress.
pub struct Recording {
    pub spec: Box<RecordSpec>,
    pub silence: SilenceDetector,
    pub started: Instant,
    /// When audio last arrived: a party that stops sending is silent too.
    pub last_audio: Instant,
}

/// One endpoint as its relay thread holds it, in a slot of that thread (see the module doc;
/// the public handle for the same endpoint is [`super::Endpoint`]).
pub struct RelayPort {
    pub id: EndpointId,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// Dropped with it: the UDP port pair goes back to the pool.
    pub _lease: PortLease,
    pub sink: EventSink,
    /// The call it belongs to (its endpoints share a media timeout).
    pub group: u64,
    pub params: Option<StreamParams>,
    pub rtp_latch: Option<Latch>,
    pub rtcp_latch: Option<Latch>,
    /// The slot of the bridged endpoint's relay port on this thread.
    pub peer: Option<usize>,
    /// Payload types from this leg to the peer's stream.
    pub to_peer: PayloadMap,
    /// Our stream towards this leg (whoever feeds it).
    pub out: StreamRewriter,
    /// The SSRC this leg last sent (what its RTCP reports name when relayed back).
    pub in_ssrc: u32,
    pub player: Option<Player>,
    pub player_map: PayloadMap,
    pub next_tick: Instant,
    pub recording: Option<Recording>,
    pub dtmf: TelephoneEventReceiver,
    pub last_rx: Instant,
    /// A browser leg's ICE/DTLS/SRTP (see `relay_secure.rs`); `None` on plain legs.
    pub secure: Option<Box<SecureLeg>>,
    /// The conference it is mixed into (on this thread), and the mix's own sequence and
    /// timestamp before the rewriter maps them onto the leg's stream.
    pub conference: Option<super::command::ConferenceId>,
    pub mix_seq: u16,
    pub mix_ts: u32,
    /// Whom its voice reaches in the conference (a coach's: one participant, kept by
    /// endpoint so it holds whichever thread the coached one's `Join` comes through).
    pub heard_by: super::command::HeardBy,
    /// Media streams tapping this leg's audio (`<Start><Stream>`, `<Connect><Stream>`).
    pub taps: Vec<super::stream_tap::StreamTap>,
    /// A bidirectional stream's app audio before the rewriter: its own sequence and
    /// timestamp (the timestamp runs on while the app is silent), and whether the last
    /// tick sent audio (the next talkspurt starts with the marker bit).
    pub stream_seq: u16,
    pub stream_ts: u32,
    pub stream_talking: bool,
}

impl std::fmt::Debug for RelayPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPort")
            .field("id", &self.id)
            .field("conference", &self.conference)
            .finish_non_exhaustive()
    }
}

/// A browser leg's transport on the relay thread: what SDP agreed, and the session,
/// started once the leg's stream parameters are known.
pub struct SecureLeg {
    pub params: SecureParams,
    pub session: Option<WebRtcSession>,
    /// When the session wants [`WebRtcSession::timeout`].
    pub wake: Instant,
}

impl RelayPort {
    /// Whether the bridged peer's packets may be sent to this leg now: it is configured,
    /// not on hold for receiving, and no prompt owns its stream.
    pub fn accepts_relay(&self) -> bool {
        self.player.is_none() && self.params.is_some_and(|p| p.sending)
    }

    /// The player's payload map: the leg's own numbers, unchanged.
    pub fn rebuild_player_map(&mut self) {
        let mut m = PayloadMap::new();
        if let Some(p) = self.params {
            let _ = m.insert(p.audio_pt(), p.audio_pt(), PayloadAction::Forward);
            if let Some(te) = p.send.telephone_event {
                let _ = m.insert(te, te, PayloadAction::TelephoneEvent);
            }
        }
        self.player_map = m;
    }

    /// Whether a stream's app audio is to be played to this leg (a bidirectional stream
    /// taps it).
    pub fn has_playout(&self) -> bool {
        self.taps.iter().any(|t| t.playout.is_some())
    }

    pub fn record_elapsed(&self, now: Instant) -> Option<Duration> {
        self.recording
            .as_ref()
            .map(|r| now.saturating_duration_since(r.started))
    }
}

/// Where each payload type `from` receives goes on `to`'s stream: the same codec if `to`
/// negotiated it, else `to`'s codec with the payload transcoded in place; telephone-events
/// only if `to` negotiated them.
pub fn forward_map(from: &StreamParams, to: &StreamParams) -> PayloadMap {
    let mut m = PayloadMap::new();
    for pt in [
        from.receive.pcmu,
        from.receive.pcma,
        from.receive.telephone_event,
    ]
    .into_iter()
    .flatten()
    {
        let (out_pt, action) = match from.receive.classify(pt) {
            Some(Carried::Audio(law)) => match to.send.of(law) {
                Some(out) => (out, PayloadAction::Forward),
                None => (
                    to.audio_pt(),
                    match law {
                        super::g711::G711Law::Pcmu => PayloadAction::PcmuToPcma,
                        super::g711::G711Law::Pcma => PayloadAction::PcmaToPcmu,
                    },
                ),
            },
            Some(Carried::TelephoneEvent) => match to.send.telephone_event {
                Some(out) => (out, PayloadAction::TelephoneEvent),
                None => continue,
            },
            None => continue,
        };
        let _ = m.insert(pt, out_pt, action);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::command::PayloadTypes;
    use crate::media::g711::G711Law;

    fn params(law: G711Law, pcmu: Option<u8>, pcma: Option<u8>, te: Option<u8>) -> StreamParams {
        let pts = PayloadTypes {
            pcmu,
            pcma,
            telephone_event: te,
        };
        StreamParams {
            remote_rtp: "127.0.0.1:4000".parse().unwrap(),
            remote_rtcp: "127.0.0.1:4001".parse().unwrap(),
            signalling_host: None,
            law,
            send: pts,
            receive: pts,
            sending: true,
            receiving: true,
        }
    }

    #[test]
    fn same_codec_forwards_and_maps_event_numbers() {
        let a = params(G711Law::Pcmu, Some(0), None, Some(101));
        let b = params(G711Law::Pcmu, Some(0), None, Some(96));
        let m = forward_map(&a, &b);
        assert_eq!(m.get(0).unwrap().action, PayloadAction::Forward);
        let te = m.get(101).unwrap();
        assert_eq!((te.out_pt, te.action), (96, PayloadAction::TelephoneEvent));
    }

    #[test]
    fn different_laws_transcode_and_missing_events_are_dropped() {
        let a = params(G711Law::Pcmu, Some(0), None, Some(101));
        let b = params(G711Law::Pcma, None, Some(8), None);
        let m = forward_map(&a, &b);
        let audio = m.get(0).unwrap();
        assert_eq!((audio.out_pt, audio.action), (8, PayloadAction::PcmuToPcma));
        assert!(m.get(101).is_none());
        let back = forward_map(&b, &a);
        assert_eq!(back.get(8).unwrap().action, PayloadAction::PcmaToPcmu);
    }
}
