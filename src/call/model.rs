//! What the rest of the switch knows about a call: its public record (the Twilio call
//! resource), the commands a live call accepts (REST modify), and a request to originate
//! one (REST create). The call task writes records; the registry and the API read them.

use std::fmt;

/// Twilio call status (twilio-oai `call_enum_status`; "initiated" only in callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
}

impl CallStatus {
    /// Every status, in declaration order (`status as usize` indexes it).
    pub const ALL: [CallStatus; 8] = [
        CallStatus::Queued,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::Failed,
        CallStatus::NoAnswer,
        CallStatus::Canceled,
    ];

    /// The wire spelling (`in-progress`, `no-answer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<CallStatus> {
        Some(match s {
            "queued" => CallStatus::Queued,
            "ringing" => CallStatus::Ringing,
            "in-progress" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" => CallStatus::NoAnswer,
            "canceled" => CallStatus::Canceled,
            _ => return None,
        })
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Twilio `Direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A carrier (or client) call into the switch.
    Inbound,
    /// Created through the REST API.
    OutboundApi,
    /// A `<Dial>` leg (child of another call).
    OutboundDial,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::OutboundApi => "outbound-api",
            Direction::OutboundDial => "outbound-dial",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public record of one call (one leg, in Twilio's model: a `<Dial>` child is a call
/// of its own with `parent_call_sid`). Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// `CA` + 32 hex.
    pub sid: String,
    pub account_sid: String,
    pub parent_call_sid: Option<String>,
    /// Twilio style: `+15550100001`, `client:alice`, or a SIP URI.
    pub from: String,
    pub to: String,
    pub direction: Direction,
    pub status: CallStatus,
    /// When the record was made.
    pub created_ms: u64,
    /// When the call was answered (Twilio's `start_time` for answered calls).
    pub answered_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    /// Trunk the call came in on or went out through.
    pub trunk: Option<String>,
    /// SIP Call-ID of this leg, for correlating with traces.
    pub sip_call_id: Option<String>,
    /// Final SIP status of the leg, when it had one (486, 487, 200...).
    pub sip_response_code: Option<u16>,
    /// Application that ran the call, if any.
    pub application_sid: Option<String>,
}

impl CallInfo {
    /// Seconds between answer and end (0 when never answered), as Twilio's `duration`.
    pub fn duration_secs(&self) -> u64 {
        match (self.answered_ms, self.ended_ms) {
            (Some(a), Some(e)) if e > a => (e - a) / 1000,
            _ => 0,
        }
    }
}

/// How a live call is told to change course (REST `POST Calls/{Sid}.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// Fetch new instructions from `url` and run them instead of the current ones.
    Redirect {
        url: String,
        method: crate::instructions::Method,
    },
    /// Run these instructions instead of the current ones.
    Twiml(String),
    /// `Status=completed`: hang up (an answered call) or end it however it stands.
    Hangup,
    /// `Status=canceled`: end the call only if it has not been answered yet.
    Cancel,
    /// For a call in a conference (REST on the conference, or the conference itself).
    Conference(ConferenceCommand),
    /// For a call in a queue or bridged out of one.
    Queue(QueueCommand),
    /// REST `Calls/{Sid}/Streams`: start or stop a media stream (the running verb goes on).
    Stream(StreamCommand),
}

impl From<StreamCommand> for CallCommand {
    fn from(c: StreamCommand) -> Self {
        CallCommand::Stream(c)
    }
}

/// What REST asks of a call's media streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamCommand {
    /// Fork the call's audio (`Streams.json`; REST starts unidirectional streams only).
    Start(super::streams::StreamRequest),
    /// Stop the stream with this sid or name.
    Stop(String),
}

/// What a call in `<Enqueue>` (or bridged out of a queue) is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCommand {
    /// An agent's `<Dial><Queue>` took the caller: play `url` to it, then join
    /// `conference` (the two-party bridge with the agent).
    Dequeued {
        conference: crate::media::ConferenceId,
        agent_sid: String,
        url: Option<String>,
        method: crate::instructions::Method,
    },
    /// REST dequeued the caller to other instructions.
    Redirect {
        url: String,
        method: crate::instructions::Method,
    },
    /// The other side of a queue bridge left.
    PartnerLeft,
}

/// What a call in `<Dial><Conference>` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConferenceCommand {
    /// The conference started: stop the wait music, start mixing.
    Started,
    /// The conference ended (endConferenceOnExit, REST): leave it; `<Dial>` ends.
    Ended,
    /// REST: mute or unmute, hold or resume (`hold_url`: what to play while held).
    Update {
        muted: Option<bool>,
        hold: Option<bool>,
        hold_url: Option<String>,
        announce_url: Option<String>,
        /// `Coaching`/`CallSidToCoach`: `Some(None)` stops coaching.
        coach: Option<Option<String>>,
    },
    /// REST `DELETE` of the participant: it leaves; `<Dial>` ends.
    Kick,
    /// REST `AnnounceUrl` on the conference: everyone hears it.
    Announce(String),
}

/// REST `POST Calls.json`: an outbound call that runs instructions once answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateRequest {
    pub account_sid: String,
    /// `client:alice`, an E.164 number, or a `sip:` URI.
    pub to: String,
    pub from: String,
    /// Where the instructions come from: exactly one of `url` and `twiml`.
    pub url: Option<String>,
    pub method: crate::instructions::Method,
    pub twiml: Option<String>,
    pub fallback_url: Option<String>,
    pub fallback_method: crate::instructions::Method,
    pub status_callback: Option<String>,
    pub status_callback_method: crate::instructions::Method,
    /// Events to report: `initiated`, `ringing`, `answered`, `completed` (default just
    /// `completed`).
    pub status_callback_events: Vec<String>,
    /// Seconds to let the callee ring [60, max 600].
    pub timeout_secs: u32,
    /// Seconds the call may last once answered [14400].
    pub time_limit_secs: u32,
}

/// Why a call could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    /// The request names something invalid (HTTP 400, Twilio code in `code`).
    #[error("{message}")]
    Invalid { code: u32, message: String },
    /// The switch cannot place calls right now (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// A `[limits]` limit of the account (HTTP 429 with Retry-After).
    #[error("{limit} reached")]
    Limited {
        /// The config key of the limit.
        limit: &'static str,
        retry_after: u32,
    },
}

/// Places outbound calls; installed by the server, used by the REST API.
pub trait Originator: Send + Sync {
    /// Starts the call and returns its record as first written (status `queued`).
    fn originate(&self, req: OriginateRequest) -> Result<CallInfo, OriginateError>;
}

/// A fresh call sid: `CA` + 32 lowercase hex digits.
pub fn new_call_sid() -> String {
    format!(
        "CA{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    )
}
