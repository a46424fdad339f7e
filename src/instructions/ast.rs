//! Our own TwiML AST. Defaults follow reference/twiml-and-twilio-client.md section 1.2.
//! `loop_count == 0` means "repeat forever", as in Twilio.

use super::error::Position;

/// A parsed `<Response>`: the verbs in execution order plus non-fatal schema warnings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub verbs: Vec<Verb>,
    pub warnings: Vec<Warning>,
}

/// A non-fatal problem (Twilio 12200, "schema warning, call continues"); the item was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    pub pos: Position,
}

impl Warning {
    /// Twilio error code for every warning.
    pub const TWILIO_CODE: u16 = 12200;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// An element directly under `<Response>` that is not a Twilio voice verb.
    UnknownVerb { name: String },
    /// An attribute the element does not define.
    UnknownAttribute { element: String, attribute: String },
    /// A child element not allowed in this parent (e.g. `<Dial>` inside `<Gather>`).
    UnexpectedChild { parent: String, child: String },
    /// Character data where none is expected (e.g. directly in `<Response>`).
    UnexpectedText { element: String },
}

/// A piece of `<Say>`'s speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeechPart {
    /// Words (whitespace collapsed), at a speaking rate when `<prosody rate>` set one.
    Text {
        text: String,
        rate: Option<SpeechRate>,
    },
    /// `<break>`: this much silence (at most [`MAX_SPEECH_BREAK`]).
    Break(std::time::Duration),
}

/// The longest `<break>` (Twilio's and Polly's limit).
pub const MAX_SPEECH_BREAK: std::time::Duration = std::time::Duration::from_secs(10);

/// `<prosody rate>`: a named rate or a percentage of the normal rate (20 to 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechRate {
    XSlow,
    Slow,
    Medium,
    Fast,
    XFast,
    Percent(u16),
}

/// HTTP method for callbacks; POST everywhere by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    Get,
    #[default]
    Post,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Say {
        /// The words, SSML flattened (for logs and engines without SSML).
        text: String,
        voice: Option<String>,
        language: Option<String>,
        /// [1]; 0 = forever.
        loop_count: u32,
        /// The words in order with the SSML we honour (`<break>`, `<prosody rate>`,
        /// `<say-as interpret-as="digits">`, `<sub alias>`); other SSML is read as text.
        speech: Vec<SpeechPart>,
    },
    Play {
        url: String,
        /// [1]; 0 = forever.
        loop_count: u32,
        /// DTMF to send instead of audio (`w` = 0.5 s pause).
        digits: Option<String>,
    },
    Pause {
        /// Seconds [1].
        length: u32,
    },
    Gather(Gather),
    Record(Record),
    Dial(Dial),
    Redirect {
        url: String,
        method: Method,
    },
    Hangup,
    /// `<Enqueue>`: wait in a queue until an agent's `<Dial><Queue>` takes the caller.
    Enqueue(Enqueue),
    Reject {
        reason: RejectReason,
    },
    /// `<Connect><Stream>`: the call's audio to and from the app's WebSocket until it
    /// closes; then `action`, or the next verb.
    Connect(Connect),
    /// `<Start><Stream>`: forks of the call's audio to WebSockets; the next verb runs at
    /// once. Other `<Start>` nouns (`<Siprec>`, `<Transcription>`) are warned about.
    Start {
        streams: Vec<Stream>,
    },
    /// `<Stop><Stream name>`: ends the forks of those names.
    Stop {
        stream_names: Vec<String>,
    },
    /// A Twilio voice verb we recognise but do not execute (Leave, Pay, Refer, ...).
    /// Child elements are not kept.
    Other {
        name: String,
        attributes: Vec<(String, String)>,
        text: String,
    },
}

/// `<Connect>` with its `<Stream>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Requested when the stream ends; without it the next verb runs.
    pub action: Option<String>,
    pub method: Method,
    pub stream: Stream,
}

/// A `<Stream>` noun (of `<Connect>` or `<Start>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The app's WebSocket (`wss://`; no query string: parameters go in `parameters`).
    pub url: String,
    /// Names the stream for `<Stop>` and the REST API; the StreamSid when absent.
    pub name: Option<String>,
    /// Which audio goes to the app [`StreamTrack::Inbound`].
    pub track: StreamTrack,
    pub status_callback: Option<String>,
    pub status_callback_method: Method,
    /// `<Parameter name value>` children: the `start` message's `customParameters`.
    pub parameters: Vec<(String, String)>,
}

/// `<Stream track>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamTrack {
    /// What the caller says (`inbound_track`, the default).
    #[default]
    Inbound,
    /// What the caller hears (`outbound_track`).
    Outbound,
    /// Both, as separate `inbound` and `outbound` media messages (`both_tracks`).
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    /// The queue's FriendlyName (at most 64 characters).
    pub name: String,
    /// Gets `QueueResult`, `QueueSid`, `QueueTime` when the caller leaves the queue.
    pub action: Option<String>,
    pub method: Method,
    /// TwiML (`Play`, `Say`, `Pause`) looped while the caller waits.
    pub wait_url: Option<String>,
    pub wait_url_method: Method,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RejectReason {
    #[default]
    Rejected,
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatherInput {
    Dtmf,
    Speech,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechTimeout {
    Auto,
    Seconds(u32),
}

/// Verbs that may nest inside `<Gather>`.
#[derive(Debug, Clone, PartialEq)]
pub enum GatherNested {
    Say(Verb),
    Play(Verb),
    Pause(Verb),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gather {
    /// [dtmf].
    pub input: Vec<GatherInput>,
    /// [None = current document URL].
    pub action: Option<String>,
    pub method: Method,
    /// Seconds [5].
    pub timeout: u32,
    /// ["#"]; empty = no finish key.
    pub finish_on_key: String,
    /// [None = unlimited].
    pub num_digits: Option<u32>,
    pub speech_timeout: Option<SpeechTimeout>,
    /// [false].
    pub action_on_empty_result: bool,
    /// ["en-US"].
    pub language: String,
    /// Recognised attributes kept verbatim (hints, speechModel, bargeIn, ...).
    pub extra: Vec<(String, String)>,
    pub nested: Vec<GatherNested>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordTrim {
    #[default]
    TrimSilence,
    DoNotTrim,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub action: Option<String>,
    pub method: Method,
    /// Seconds of silence [5].
    pub timeout: u32,
    /// ["1234567890*#"].
    pub finish_on_key: String,
    /// Seconds [3600].
    pub max_length: u32,
    /// [true].
    pub play_beep: bool,
    pub trim: RecordTrim,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: Method,
    /// [completed].
    pub recording_status_callback_event: Vec<String>,
    /// [false].
    pub transcribe: bool,
    pub transcribe_callback: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialRecord {
    #[default]
    DoNotRecord,
    RecordFromAnswer,
    RecordFromRinging,
    RecordFromAnswerDual,
    RecordFromRingingDual,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    pub action: Option<String>,
    pub method: Method,
    /// Seconds [30].
    pub timeout: u32,
    pub caller_id: Option<String>,
    /// Seconds [14400].
    pub time_limit: u32,
    /// [false].
    pub answer_on_bridge: bool,
    /// [false].
    pub hangup_on_star: bool,
    /// [do-not-record]; `true` = record-from-answer.
    pub record: DialRecord,
    pub ring_tone: Option<String>,
    /// Recognised attributes kept verbatim (trim, recordingStatusCallback, sequential, ...).
    pub extra: Vec<(String, String)>,
    pub target: DialTarget,
}

/// What `<Dial>` calls: its body text (a number) or its nouns.
#[derive(Debug, Clone, PartialEq)]
pub enum DialTarget {
    Number(String),
    Nouns(Vec<DialNoun>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DialNoun {
    Number(NumberNoun),
    Client(ClientNoun),
    Sip(SipNoun),
    Conference(ConferenceNoun),
    Queue(QueueNoun),
}

/// Attributes shared by Number, Client and Sip.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NounCallbacks {
    /// Whisper TwiML run on the callee before bridging.
    pub url: Option<String>,
    pub method: Method,
    pub status_callback: Option<String>,
    /// Number: [completed]; Client: [none]; Sip: [none].
    pub status_callback_event: Vec<String>,
    pub status_callback_method: Method,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberNoun {
    pub number: String,
    pub send_digits: Option<String>,
    pub callbacks: NounCallbacks,
    pub extra: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientNoun {
    /// Body text or the `<Identity>` child.
    pub identity: String,
    /// `<Parameter name value>` children.
    pub parameters: Vec<(String, String)>,
    pub callbacks: NounCallbacks,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SipNoun {
    pub uri: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub callbacks: NounCallbacks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Beep {
    #[default]
    True,
    False,
    OnEnter,
    OnExit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConferenceNoun {
    pub name: String,
    /// [false].
    pub muted: bool,
    pub beep: Beep,
    /// [true].
    pub start_conference_on_enter: bool,
    /// [false].
    pub end_conference_on_exit: bool,
    pub wait_url: Option<String>,
    pub wait_method: Method,
    /// [250].
    pub max_participants: u32,
    /// Recognised attributes kept verbatim (record, statusCallback, coach, ...).
    pub extra: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueNoun {
    pub name: String,
    pub url: Option<String>,
    pub method: Method,
}
