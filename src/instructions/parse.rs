//! Element tree to TwiML AST: names are case-sensitive, defaults per the reference, unknown
//! verbs/nouns/attributes become warnings, invalid values of known attributes are errors.

use super::Limits;
use super::ast::{
    Beep, ClientNoun, ConferenceNoun, Dial, DialNoun, DialRecord, DialTarget, Document, Enqueue,
    Gather, GatherInput, GatherNested, Method, NounCallbacks, NumberNoun, QueueNoun, Record,
    RecordTrim, RejectReason, SipNoun, SpeechTimeout, Stream, StreamTrack, Verb, Warning,
    WarningKind,
};
use super::error::InstructionError;
use super::tree::{self, Element};

/// Twilio voice verbs we recognise but do not execute: kept as [`Verb::Other`].
const OTHER_VERBS: &[&str] = &[
    "Leave",
    "Refer",
    "Pay",
    "Prompt",
    "Sms",
    "Message",
    "Echo",
    "Siprec",
    "Stream",
    "Transcription",
];

/// Parses a TwiML voice document. See the module docs for the error/warning policy.
pub fn parse(xml: &[u8], limits: &Limits) -> Result<Document, InstructionError> {
    if xml.len() > limits.max_bytes {
        return Err(InstructionError::TooLarge {
            size: xml.len(),
            max: limits.max_bytes,
        });
    }
    let root = tree::read(xml, limits)?;
    if root.name != "Response" {
        return Err(InstructionError::RootNotResponse {
            found: root.name,
            pos: root.pos,
        });
    }
    let mut warnings = Vec::new();
    Attrs::new(&root).finish(&mut warnings);
    no_text(&root, &mut warnings);
    let mut verbs = Vec::with_capacity(root.children.len());
    for child in &root.children {
        if let Some(verb) = verb(child, &mut warnings)? {
            verbs.push(verb);
        }
    }
    Ok(Document { verbs, warnings })
}

type R<T> = Result<T, InstructionError>;

fn verb(el: &Element, w: &mut Vec<Warning>) -> R<Option<Verb>> {
    let verb = match el.name.as_str() {
        "Say" => say(el, w)?,
        "Play" => play(el, w)?,
        "Pause" => pause(el, w)?,
        "Gather" => Verb::Gather(gather(el, w)?),
        "Record" => Verb::Record(record(el, w)?),
        "Dial" => Verb::Dial(dial(el, w)?),
        "Redirect" => {
            let mut a = Attrs::new(el);
            let method = a.method("method")?;
            a.finish(w);
            no_children(el, w);
            Verb::Redirect {
                url: el.text.clone(),
                method,
            }
        }
        "Enqueue" => {
            let mut a = Attrs::new(el);
            let action = a.string("action");
            let method = a.method("method")?;
            let wait_url = a.string("waitUrl");
            let wait_url_method = a.method("waitUrlMethod")?;
            a.extra(&["workflowSid", "maxQueueSize"]);
            a.finish(w);
            no_children(el, w);
            Verb::Enqueue(Enqueue {
                name: el.text.chars().take(64).collect(),
                action,
                method,
                wait_url,
                wait_url_method,
            })
        }
        "Hangup" => {
            Attrs::new(el).finish(w);
            no_children(el, w);
            no_text(el, w);
            Verb::Hangup
        }
        "Reject" => {
            let mut a = Attrs::new(el);
            let reason = a.parse("reason", RejectReason::Rejected, |v| match v {
                "rejected" => Some(RejectReason::Rejected),
                "busy" => Some(RejectReason::Busy),
                _ => None,
            })?;
            a.finish(w);
            no_children(el, w);
            no_text(el, w);
            Verb::Reject { reason }
        }
        "Connect" => {
            let mut a = Attrs::new(el);
            let action = a.string("action");
            let method = a.method("method")?;
            a.finish(w);
            no_text(el, w);
            let mut stream = None;
            for child in &el.children {
                match child.name.as_str() {
                    "Stream" if stream.is_none() => stream = Some(stream_noun(child, w)?),
                    // A second <Stream>, or <Room>, <ConversationRelay>, <VirtualAgent>.
                    _ => unexpected_child(el, child, w),
                }
            }
            match stream {
                Some(stream) => Verb::Connect(super::ast::Connect {
                    action,
                    method,
                    stream,
                }),
                // Nothing we can connect to: the verb is skipped (warned above).
                None => return Ok(None),
            }
        }
        "Start" => {
            Attrs::new(el).finish(w);
            no_text(el, w);
            let mut streams = Vec::new();
            for child in &el.children {
                match child.name.as_str() {
                    "Stream" => streams.push(stream_noun(child, w)?),
                    _ => unexpected_child(el, child, w),
                }
            }
            Verb::Start { streams }
        }
        "Stop" => {
            Attrs::new(el).finish(w);
            no_text(el, w);
            let mut stream_names = Vec::new();
            for child in &el.children {
                match child.name.as_str() {
                    "Stream" => {
                        let mut a = Attrs::new(child);
                        let name = a.string("name");
                        a.finish(w);
                        no_children(child, w);
                        match name {
                            Some(n) if !n.trim().is_empty() => stream_names.push(n),
                            _ => return Err(missing(child, "name")),
                        }
                    }
                    _ => unexpected_child(el, child, w),
                }
            }
            Verb::Stop { stream_names }
        }
        name if OTHER_VERBS.contains(&name) => Verb::Other {
            name: el.name.clone(),
            attributes: el.attrs.clone(),
            text: el.text.clone(),
        },
        _ => {
            w.push(Warning {
                kind: WarningKind::UnknownVerb {
                    name: el.name.clone(),
                },
                pos: el.pos,
            });
            return Ok(None);
        }
    };
    Ok(Some(verb))
}

/// A required attribute that is absent (or empty).
fn missing(el: &Element, attribute: &str) -> InstructionError {
    InstructionError::InvalidAttribute {
        element: el.name.clone(),
        attribute: attribute.to_string(),
        value: String::new(),
        reason: "required",
        pos: el.pos,
    }
}

/// `<Stream>` of `<Connect>` or `<Start>`: `url` is required; `<Parameter>` children
/// become the `start` message's `customParameters`.
fn stream_noun(el: &Element, w: &mut Vec<Warning>) -> R<Stream> {
    let mut a = Attrs::new(el);
    let url = match a.string("url") {
        Some(u) if !u.trim().is_empty() => u.trim().to_string(),
        _ => return Err(missing(el, "url")),
    };
    let stream = Stream {
        url,
        name: a.string("name"),
        track: a.parse("track", StreamTrack::Inbound, |v| match v {
            "inbound_track" => Some(StreamTrack::Inbound),
            "outbound_track" => Some(StreamTrack::Outbound),
            "both_tracks" => Some(StreamTrack::Both),
            _ => None,
        })?,
        status_callback: a.string("statusCallback"),
        status_callback_method: a.method("statusCallbackMethod")?,
        parameters: parameters(el, w),
    };
    a.finish(w);
    no_text(el, w);
    Ok(stream)
}

/// `<Parameter name value>` children as pairs; any other child is warned about.
fn parameters(el: &Element, w: &mut Vec<Warning>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for child in &el.children {
        if child.name != "Parameter" {
            unexpected_child(el, child, w);
            continue;
        }
        out.push(parameter(child, w));
    }
    out
}

/// One `<Parameter name value>` (of `<Client>` or `<Stream>`).
fn parameter(el: &Element, w: &mut Vec<Warning>) -> (String, String) {
    let mut p = Attrs::new(el);
    let name = p.string("name").unwrap_or_default();
    let value = p.string("value").unwrap_or_default();
    p.finish(w);
    no_children(el, w);
    no_text(el, w);
    (name, value)
}

fn say(el: &Element, w: &mut Vec<Warning>) -> R<Verb> {
    let mut a = Attrs::new(el);
    let voice = a.string("voice");
    let language = a.string("language");
    let loop_count = a.u32("loop", 1)?;
    a.finish(w);
    // SSML children (<break>, <prosody>, ...) are allowed: `speech` keeps what we render,
    // `text` is the words flattened.
    let mut text = String::new();
    flatten_text(el, &mut text);
    Ok(Verb::Say {
        text,
        voice,
        language,
        loop_count,
        speech: super::ssml::speech(el),
    })
}

fn flatten_text(el: &Element, out: &mut String) {
    if !el.text.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&el.text);
    }
    for child in &el.children {
        flatten_text(child, out);
    }
}

fn play(el: &Element, w: &mut Vec<Warning>) -> R<Verb> {
    let mut a = Attrs::new(el);
    let loop_count = a.u32("loop", 1)?;
    let digits = a.string("digits");
    a.finish(w);
    no_children(el, w);
    Ok(Verb::Play {
        url: el.text.clone(),
        loop_count,
        digits,
    })
}

fn pause(el: &Element, w: &mut Vec<Warning>) -> R<Verb> {
    let mut a = Attrs::new(el);
    let length = a.u32("length", 1)?;
    a.finish(w);
    no_children(el, w);
    no_text(el, w);
    Ok(Verb::Pause { length })
}

fn gather(el: &Element, w: &mut Vec<Warning>) -> R<Gather> {
    let mut a = Attrs::new(el);
    let input = match a.get("input") {
        None => vec![GatherInput::Dtmf],
        Some(v) => {
            let mut input = Vec::new();
            for part in v.split_whitespace() {
                input.push(match part {
                    "dtmf" => GatherInput::Dtmf,
                    "speech" => GatherInput::Speech,
                    _ => return Err(a.invalid("input", v, "expected dtmf, speech or both")),
                });
            }
            if input.is_empty() {
                return Err(a.invalid("input", v, "expected dtmf, speech or both"));
            }
            input
        }
    };
    let speech_timeout = match a.get("speechTimeout") {
        None => None,
        Some("auto") => Some(SpeechTimeout::Auto),
        Some(v) => Some(SpeechTimeout::Seconds(v.parse().map_err(|_| {
            a.invalid("speechTimeout", v, "expected seconds or auto")
        })?)),
    };
    let num_digits = match a.get("numDigits") {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(a.invalid("numDigits", v, "expected a positive integer")),
        },
    };
    let gather = Gather {
        input,
        action: a.string("action"),
        method: a.method("method")?,
        timeout: a.u32("timeout", 5)?,
        finish_on_key: a.string("finishOnKey").unwrap_or_else(|| "#".into()),
        num_digits,
        speech_timeout,
        action_on_empty_result: a.bool("actionOnEmptyResult", false)?,
        language: a.string("language").unwrap_or_else(|| "en-US".into()),
        extra: a.extra(&[
            "hints",
            "partialResultCallback",
            "partialResultCallbackMethod",
            "speechModel",
            "enhanced",
            "profanityFilter",
            "bargeIn",
            "debug",
        ]),
        nested: {
            let mut nested = Vec::new();
            for child in &el.children {
                match child.name.as_str() {
                    "Say" => nested.push(GatherNested::Say(say(child, w)?)),
                    "Play" => nested.push(GatherNested::Play(play(child, w)?)),
                    "Pause" => nested.push(GatherNested::Pause(pause(child, w)?)),
                    _ => unexpected_child(el, child, w),
                }
            }
            nested
        },
    };
    a.finish(w);
    no_text(el, w);
    Ok(gather)
}

fn record(el: &Element, w: &mut Vec<Warning>) -> R<Record> {
    let mut a = Attrs::new(el);
    let record = Record {
        action: a.string("action"),
        method: a.method("method")?,
        timeout: a.u32("timeout", 5)?,
        finish_on_key: a
            .string("finishOnKey")
            .unwrap_or_else(|| "1234567890*#".into()),
        max_length: a.u32("maxLength", 3600)?,
        play_beep: a.bool("playBeep", true)?,
        trim: a.parse("trim", RecordTrim::TrimSilence, |v| match v {
            "trim-silence" => Some(RecordTrim::TrimSilence),
            "do-not-trim" => Some(RecordTrim::DoNotTrim),
            _ => None,
        })?,
        recording_status_callback: a.string("recordingStatusCallback"),
        recording_status_callback_method: a.method("recordingStatusCallbackMethod")?,
        recording_status_callback_event: a.events("recordingStatusCallbackEvent", &["completed"]),
        transcribe: a.bool("transcribe", false)?,
        transcribe_callback: a.string("transcribeCallback"),
    };
    a.finish(w);
    no_children(el, w);
    no_text(el, w);
    Ok(record)
}

fn dial(el: &Element, w: &mut Vec<Warning>) -> R<Dial> {
    let mut a = Attrs::new(el);
    let record = a.parse("record", DialRecord::DoNotRecord, |v| match v {
        "do-not-record" | "false" => Some(DialRecord::DoNotRecord),
        "record-from-answer" | "true" => Some(DialRecord::RecordFromAnswer),
        "record-from-ringing" => Some(DialRecord::RecordFromRinging),
        "record-from-answer-dual" => Some(DialRecord::RecordFromAnswerDual),
        "record-from-ringing-dual" => Some(DialRecord::RecordFromRingingDual),
        _ => None,
    })?;
    let target = if el.children.is_empty() {
        DialTarget::Number(el.text.clone())
    } else {
        no_text(el, w);
        let mut nouns = Vec::new();
        for child in &el.children {
            if let Some(noun) = dial_noun(el, child, w)? {
                nouns.push(noun);
            }
        }
        DialTarget::Nouns(nouns)
    };
    let dial = Dial {
        action: a.string("action"),
        method: a.method("method")?,
        timeout: a.u32("timeout", 30)?,
        caller_id: a.string("callerId"),
        time_limit: a.u32("timeLimit", 14400)?,
        answer_on_bridge: a.bool("answerOnBridge", false)?,
        hangup_on_star: a.bool("hangupOnStar", false)?,
        record,
        ring_tone: a.string("ringTone"),
        extra: a.extra(&[
            "trim",
            "recordingStatusCallback",
            "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent",
            "recordingTrack",
            "callReason",
            "referUrl",
            "referMethod",
            "sequential",
            "events",
        ]),
        target,
    };
    a.finish(w);
    Ok(dial)
}

fn dial_noun(parent: &Element, el: &Element, w: &mut Vec<Warning>) -> R<Option<DialNoun>> {
    let mut a = Attrs::new(el);
    let noun = match el.name.as_str() {
        "Number" => {
            let send_digits = a.string("sendDigits");
            let callbacks = a.callbacks(&["completed"])?;
            no_children(el, w);
            DialNoun::Number(NumberNoun {
                number: el.text.clone(),
                send_digits,
                callbacks,
                extra: a.extra(&[
                    "byoc",
                    "machineDetection",
                    "machineDetectionTimeout",
                    "amdStatusCallback",
                    "amdStatusCallbackMethod",
                ]),
            })
        }
        "Client" => {
            let callbacks = a.callbacks(&[])?;
            let mut identity = el.text.clone();
            let mut parameters = Vec::new();
            for child in &el.children {
                match child.name.as_str() {
                    "Identity" => {
                        Attrs::new(child).finish(w);
                        no_children(child, w);
                        identity = child.text.clone();
                    }
                    "Parameter" => parameters.push(parameter(child, w)),
                    _ => unexpected_child(el, child, w),
                }
            }
            DialNoun::Client(ClientNoun {
                identity,
                parameters,
                callbacks,
            })
        }
        "Sip" => {
            let username = a.string("username");
            let password = a.string("password");
            let callbacks = a.callbacks(&[])?;
            no_children(el, w);
            DialNoun::Sip(SipNoun {
                uri: el.text.clone(),
                username,
                password,
                callbacks,
            })
        }
        "Conference" => {
            no_children(el, w);
            DialNoun::Conference(ConferenceNoun {
                name: el.text.clone(),
                muted: a.bool("muted", false)?,
                beep: a.parse("beep", Beep::True, |v| match v {
                    "true" => Some(Beep::True),
                    "false" => Some(Beep::False),
                    "onEnter" => Some(Beep::OnEnter),
                    "onExit" => Some(Beep::OnExit),
                    _ => None,
                })?,
                start_conference_on_enter: a.bool("startConferenceOnEnter", true)?,
                end_conference_on_exit: a.bool("endConferenceOnExit", false)?,
                wait_url: a.string("waitUrl"),
                wait_method: a.method("waitMethod")?,
                max_participants: a.u32("maxParticipants", 250)?,
                extra: a.extra(&[
                    "record",
                    "trim",
                    "coach",
                    "statusCallback",
                    "statusCallbackEvent",
                    "statusCallbackMethod",
                    "recordingStatusCallback",
                    "recordingStatusCallbackMethod",
                    "recordingStatusCallbackEvent",
                    "eventCallbackUrl",
                    "jitterBufferSize",
                    "participantLabel",
                    "region",
                ]),
            })
        }
        "Queue" => {
            no_children(el, w);
            DialNoun::Queue(QueueNoun {
                name: el.text.clone(),
                url: a.string("url"),
                method: a.method("method")?,
            })
        }
        _ => {
            unexpected_child(parent, el, w);
            return Ok(None);
        }
    };
    a.finish(w);
    Ok(Some(noun))
}

fn unexpected_child(parent: &Element, child: &Element, w: &mut Vec<Warning>) {
    w.push(Warning {
        kind: WarningKind::UnexpectedChild {
            parent: parent.name.clone(),
            child: child.name.clone(),
        },
        pos: child.pos,
    });
}

fn no_children(el: &Element, w: &mut Vec<Warning>) {
    for child in &el.children {
        unexpected_child(el, child, w);
    }
}

fn no_text(el: &Element, w: &mut Vec<Warning>) {
    if !el.text.is_empty() {
        w.push(Warning {
            kind: WarningKind::UnexpectedText {
                element: el.name.clone(),
            },
            pos: el.pos,
        });
    }
}

/// Attribute access that remembers which attributes were consumed; the rest become warnings.
struct Attrs<'a> {
    el: &'a Element,
    used: Vec<bool>,
}

impl<'a> Attrs<'a> {
    fn new(el: &'a Element) -> Self {
        Self {
            el,
            used: vec![false; el.attrs.len()],
        }
    }

    fn get(&mut self, name: &str) -> Option<&'a str> {
        let i = self.el.attrs.iter().position(|(k, _)| k == name)?;
        self.used[i] = true;
        Some(self.el.attrs[i].1.as_str())
    }

    fn string(&mut self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    fn invalid(&self, attribute: &str, value: &str, reason: &'static str) -> InstructionError {
        InstructionError::InvalidAttribute {
            element: self.el.name.clone(),
            attribute: attribute.to_string(),
            value: value.to_string(),
            reason,
            pos: self.el.pos,
        }
    }

    fn parse<T>(&mut self, name: &str, default: T, f: impl Fn(&str) -> Option<T>) -> R<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => f(v.trim()).ok_or_else(|| self.invalid(name, v, "unsupported value")),
        }
    }

    fn u32(&mut self, name: &str, default: u32) -> R<u32> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.invalid(name, v, "expected a non-negative integer")),
        }
    }

    fn bool(&mut self, name: &str, default: bool) -> R<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(self.invalid(name, v, "expected true or false")),
            },
        }
    }

    fn method(&mut self, name: &str) -> R<Method> {
        match self.get(name) {
            None => Ok(Method::Post),
            Some(v) if v.trim().eq_ignore_ascii_case("POST") => Ok(Method::Post),
            Some(v) if v.trim().eq_ignore_ascii_case("GET") => Ok(Method::Get),
            Some(v) => Err(self.invalid(name, v, "expected GET or POST")),
        }
    }

    /// Space- or comma-separated event list.
    fn events(&mut self, name: &str, default: &[&str]) -> Vec<String> {
        match self.get(name) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(v) => v
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    fn callbacks(&mut self, default_events: &[&str]) -> R<NounCallbacks> {
        Ok(NounCallbacks {
            url: self.string("url"),
            method: self.method("method")?,
            status_callback: self.string("statusCallback"),
            status_callback_event: self.events("statusCallbackEvent", default_events),
            status_callback_method: self.method("statusCallbackMethod")?,
        })
    }

    /// Recognised attributes kept verbatim, in document order.
    fn extra(&mut self, names: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, (k, v)) in self.el.attrs.iter().enumerate() {
            if !self.used[i] && names.contains(&k.as_str()) {
                self.used[i] = true;
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    fn finish(self, w: &mut Vec<Warning>) {
        for (i, (k, _)) in self.el.attrs.iter().enumerate() {
            // xmlns declarations are not TwiML attributes but are harmless.
            if !self.used[i] && k != "xmlns" && !k.starts_with("xmlns:") {
                w.push(Warning {
                    kind: WarningKind::UnknownAttribute {
                        element: self.el.name.clone(),
                        attribute: k.clone(),
                    },
                    pos: self.el.pos,
                });
            }
        }
    }
}
