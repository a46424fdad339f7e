//! What `call/` tells the media plane, and what the media plane tells it back.
//!
//! The media plane never sees SIP types (DESIGN.md, "Layers"): the call layer turns each
//! leg's negotiated SDP into a [`StreamParams`] and drives the relay with [`Command`]s
//! through a [`super::MediaEngine`]; the relay answers with [`MediaEvent`]s on the channel
//! given when the endpoint was opened.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::g711::G711Law;
use super::ports::PortLease;
use super::recorder::Recorder;

/// One endpoint of the relay: a pair of UDP ports (RTP even, RTCP odd) facing one leg.
/// The thread that owns it is encoded in the id so commands go straight there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

impl EndpointId {
    pub(crate) fn new(thread: usize, serial: u64) -> Self {
        EndpointId((serial << 8) | (thread as u64 & 0xff))
    }

    pub(crate) fn thread(self) -> usize {
        (self.0 & 0xff) as usize
    }
}

/// Whom a conference participant's voice reaches. A coach (TwiML `coach`, REST
/// `CallSidToCoach`) is heard only by the participant it coaches; while that one is not in
/// the conference, by nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeardBy {
    #[default]
    All,
    Only(EndpointId),
    Nobody,
}

/// Payload type numbers one side uses for what the relay carries (RFC 3551 static 0/8 or
/// whatever the SDP mapped them to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadTypes {
    pub pcmu: Option<u8>,
    pub pcma: Option<u8>,
    pub telephone_event: Option<u8>,
}

impl PayloadTypes {
    /// The number for `law`, if this side has one.
    pub const fn of(&self, law: G711Law) -> Option<u8> {
        match law {
            G711Law::Pcmu => self.pcmu,
            G711Law::Pcma => self.pcma,
        }
    }

    /// What an incoming payload type carries.
    pub fn classify(&self, pt: u8) -> Option<Carried> {
        if self.pcmu == Some(pt) {
            Some(Carried::Audio(G711Law::Pcmu))
        } else if self.pcma == Some(pt) {
            Some(Carried::Audio(G711Law::Pcma))
        } else if self.telephone_event == Some(pt) {
            Some(Carried::TelephoneEvent)
        } else {
            None
        }
    }
}

/// What a payload type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    Audio(G711Law),
    TelephoneEvent,
}

/// One leg's negotiated stream, as the relay needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamParams {
    /// Where the SDP says the leg receives RTP, and RTCP. A latched source address
    /// overrides these (symmetric RTP), see [`super::latch`].
    pub remote_rtp: SocketAddr,
    pub remote_rtcp: SocketAddr,
    /// The IP this leg's SIP comes from, when known: behind NAT its media leaves from the
    /// same public address, which the latch trusts over a stranger's (latch.rs, rule 2).
    pub signalling_host: Option<IpAddr>,
    /// The law this leg was answered with: what the player and the recorder use, and what
    /// the relay transcodes to when the other leg sends the other law.
    pub law: G711Law,
    /// Numbers to write on what we send to this leg.
    pub send: PayloadTypes,
    /// Numbers this leg writes on what it sends to us.
    pub receive: PayloadTypes,
    /// The direction attributes: we may send to this leg / it may send to us (hold).
    pub sending: bool,
    pub receiving: bool,
}

impl StreamParams {
    /// The payload type of our audio towards this leg.
    pub fn audio_pt(&self) -> u8 {
        self.send.of(self.law).unwrap_or(match self.law {
            G711Law::Pcmu => 0,
            G711Law::Pcma => 8,
        })
    }
}

/// One thing a player plays, in order.
#[derive(Debug, Clone)]
pub enum PlayItem {
    /// 8 kHz 16-bit PCM (decoded once, shared by every call that plays it).
    Audio(Arc<[i16]>),
    /// Silence of this length (`<Pause>`, the `w` of `digits`).
    Silence(Duration),
    /// DTMF digits sent as RFC 4733 events (`0-9 * # A-D`; `w` waits 0.5 s).
    Digits(String),
}

/// `<Record>` on an endpoint: what it hears is written by `recorder`.
#[derive(Debug)]
pub struct RecordSpec {
    pub recorder: Recorder,
    /// `maxLength`.
    pub max_length: Duration,
    /// `timeout`: this much silence ends the recording (zero: never).
    pub silence_timeout: Duration,
    /// `finishOnKey`: any of these digits ends it.
    pub finish_on_key: String,
    /// `trim="trim-silence"`: keep only from the first voice heard to the last.
    pub trim_silence: bool,
}

/// An endpoint handed to its relay thread: the sockets and ports the engine bound for it
/// and the stream it starts.
#[derive(Debug)]
pub struct Opened {
    pub id: EndpointId,
    pub rtp: std::net::UdpSocket,
    pub rtcp: std::net::UdpSocket,
    pub lease: PortLease,
    pub sink: EventSink,
    pub group: u64,
    /// RFC 3550 §5.1: SSRC, first sequence number and timestamp of our stream to the leg.
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

/// A conference: one mixer, on the relay thread encoded in the id (its participants'
/// endpoints move there while they are in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConferenceId(pub u64);

impl ConferenceId {
    pub(crate) fn new(thread: usize, serial: u64) -> Self {
        ConferenceId((serial << 8) | (thread as u64 & 0xff))
    }

    pub(crate) fn thread(self) -> usize {
        (self.0 & 0xff) as usize
    }
}

/// Commands for one relay thread.
#[derive(Debug)]
pub(crate) enum Command {
    Open(Box<Opened>),
    Configure(EndpointId, StreamParams),
    /// The endpoint faces a browser: ICE-lite and DTLS-SRTP on its RTP port (sent before
    /// the `Configure` of the same exchange).
    Secure(EndpointId, Box<super::webrtc::SecureParams>),
    Bridge(EndpointId, EndpointId),
    Unbridge(EndpointId),
    Play {
        id: EndpointId,
        items: Vec<PlayItem>,
        /// 0 = until stopped.
        loops: u32,
    },
    StopPlay(EndpointId),
    Record(EndpointId, Box<RecordSpec>),
    StopRecord(EndpointId),
    /// A media stream taps the endpoint's audio (and, bidirectional, plays into it).
    Tap(EndpointId, Box<super::stream_tap::TapSpec>),
    /// The stream `key` ends on the endpoint.
    Untap(EndpointId, u64),
    /// What the app of the bidirectional stream `key` sent.
    StreamOut(EndpointId, u64, super::stream_tap::StreamOut),
    Close(EndpointId),
    /// Move the endpoint to another relay thread (to join a conference mixed there). The
    /// thread that gives it up forwards later commands for it.
    Handoff(EndpointId, usize),
    /// An endpoint another thread handed off.
    Adopt(Box<super::relay_port::RelayPort>),
    /// Mix the endpoint into a conference (on the conference's thread: send after a
    /// `Handoff` there). Its media is no longer relayed to a bridged peer.
    Join {
        id: EndpointId,
        conference: ConferenceId,
        muted: bool,
    },
    Leave(EndpointId),
    Mute(EndpointId, bool),
    /// Whom the endpoint's voice reaches in its conference (a coach's: one participant).
    Coach(EndpointId, HeardBy),
    /// Every participant hears this once (the join and leave beep).
    Announce(ConferenceId, std::sync::Arc<[i16]>),
    /// Record the conference's whole mix until it ends; `RecordDone` goes to `sink`.
    RecordConference {
        conference: ConferenceId,
        spec: Box<RecordSpec>,
        sink: EventSink,
    },
    Shutdown,
}

impl Command {
    /// The endpoint a command is for, if one: a thread that no longer holds it passes the
    /// command on to where it went.
    pub(crate) fn endpoint(&self) -> Option<EndpointId> {
        match self {
            Command::Configure(id, _)
            | Command::Secure(id, _)
            | Command::Bridge(id, _)
            | Command::Unbridge(id)
            | Command::Play { id, .. }
            | Command::StopPlay(id)
            | Command::Record(id, _)
            | Command::StopRecord(id)
            | Command::Tap(id, _)
            | Command::Untap(id, _)
            | Command::StreamOut(id, ..)
            | Command::Close(id)
            | Command::Handoff(id, _)
            | Command::Join { id, .. }
            | Command::Leave(id)
            | Command::Mute(id, _)
            | Command::Coach(id, _) => Some(*id),
            Command::Open(_)
            | Command::Adopt(_)
            | Command::Announce(..)
            | Command::RecordConference { .. }
            | Command::Shutdown => None,
        }
    }
}

/// Something the relay tells the call that owns an endpoint.
#[derive(Debug)]
pub struct MediaEvent {
    pub endpoint: EndpointId,
    pub kind: EventKind,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEnd {
    MaxLength,
    Silence,
    /// A `finishOnKey` digit (kept out of the recording).
    Key(char),
    /// The call layer stopped it (hangup, or the call moved on).
    Stopped,
}

#[derive(Debug)]
pub enum EventKind {
    /// A DTMF digit received as RFC 4733 telephone-events (once per key press).
    Digit(char),
    /// The player ran out of items (not sent when stopped).
    PlayDone,
    /// The recording ended; the file is finished (or removed when nothing was heard).
    RecordDone {
        end: RecordEnd,
        result: std::io::Result<super::recorder::Finished>,
        /// Whether any voice was heard (Twilio drops recordings with none).
        heard_voice: bool,
    },
    /// No RTP or RTCP arrived on any endpoint of this call for the configured time.
    MediaTimeout,
    /// In a conference: the participant started (`true`) or stopped talking.
    Speaking(bool),
    /// A browser leg's ICE or DTLS failed (a certificate that does not match the SDP's
    /// fingerprint, or the browser closed DTLS): nothing will pass on it again. Sent once.
    SecureFailed,
}

/// Where an endpoint's events go: the owning call's inbox.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<MediaEvent>;
