//! The SSML inside `<Say>` (Twilio passes it to Amazon Polly or Google), read into
//! [`SpeechPart`]s in document order. What we honour:
//! - `<break time="500ms|2s">` or `strength` (none, x-weak, weak, medium, strong, x-strong;
//!   medium without either), capped at [`MAX_SPEECH_BREAK`];
//! - `<prosody rate>`: x-slow … x-fast or a percentage (20% to 200%); other prosody
//!   attributes (pitch, volume) are ignored;
//! - `<say-as interpret-as="digits|characters|spell-out">`: read one character at a time;
//!   other `interpret-as` values are read as text;
//! - `<sub alias>`: the alias is read instead of the content.
//!
//! Every other element (`<p>`, `<s>`, `<emphasis>`, `<lang>`, `<phoneme>`, `<w>`,
//! `<amazon:effect>`, …) is read as its text.

use std::time::Duration;

use super::ast::{MAX_SPEECH_BREAK, SpeechPart, SpeechRate};
use super::tree::Element;

/// The speech of a `<Say>` element.
pub(super) fn speech(el: &Element) -> Vec<SpeechPart> {
    let mut out = Vec::new();
    walk(el, None, &mut out);
    out
}

fn attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
}

/// The element's own content: its lead, then each child and its tail.
fn walk(el: &Element, rate: Option<SpeechRate>, out: &mut Vec<SpeechPart>) {
    push_text(&el.lead, rate, out);
    for child in &el.children {
        element(child, rate, out);
        push_text(&child.tail, rate, out);
    }
}

fn element(el: &Element, rate: Option<SpeechRate>, out: &mut Vec<SpeechPart>) {
    match el.name.as_str() {
        "break" => {
            let pause = attr(el, "time")
                .and_then(parse_time)
                .or_else(|| attr(el, "strength").and_then(strength))
                .unwrap_or(Duration::from_millis(500));
            if !pause.is_zero() {
                out.push(SpeechPart::Break(pause.min(MAX_SPEECH_BREAK)));
            }
        }
        "prosody" => {
            let inner = attr(el, "rate").and_then(parse_rate).or(rate);
            walk(el, inner, out);
        }
        "say-as" => match attr(el, "interpret-as") {
            Some("digits" | "characters" | "spell-out") => {
                let mut flat = String::new();
                collect(el, &mut flat);
                let spaced: Vec<String> = flat
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .map(String::from)
                    .collect();
                push_text(&spaced.join(" "), rate, out);
            }
            _ => walk(el, rate, out),
        },
        "sub" => match attr(el, "alias") {
            Some(alias) => push_text(alias, rate, out),
            None => walk(el, rate, out),
        },
        _ => walk(el, rate, out),
    }
}

/// All the character data under `el`, in order.
fn collect(el: &Element, out: &mut String) {
    out.push_str(&el.lead);
    for child in &el.children {
        collect(child, out);
        out.push_str(&child.tail);
    }
}

/// Appends words (whitespace collapsed), joining the previous piece when it has the same
/// rate.
fn push_text(raw: &str, rate: Option<SpeechRate>, out: &mut Vec<SpeechPart>) {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if words.is_empty() {
        return;
    }
    let words = words.join(" ");
    if let Some(SpeechPart::Text { text, rate: r }) = out.last_mut()
        && *r == rate
    {
        text.push(' ');
        text.push_str(&words);
        return;
    }
    out.push(SpeechPart::Text { text: words, rate });
}

/// `500ms`, `2s`, `1.5s` (SSML's time designation).
fn parse_time(v: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    let ms: f64 = num.trim().parse().ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| {
        Duration::from_millis((ms * scale).min(MAX_SPEECH_BREAK.as_millis() as f64) as u64)
    })
}

fn strength(v: &str) -> Option<Duration> {
    let ms = match v {
        "none" | "x-weak" => 0,
        "weak" => 250,
        "medium" => 500,
        "strong" => 1000,
        "x-strong" => 1500,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

fn parse_rate(v: &str) -> Option<SpeechRate> {
    Some(match v {
        "x-slow" => SpeechRate::XSlow,
        "slow" => SpeechRate::Slow,
        "medium" => SpeechRate::Medium,
        "fast" => SpeechRate::Fast,
        "x-fast" => SpeechRate::XFast,
        _ => {
            let pct: u16 = v.strip_suffix('%')?.trim().parse().ok()?;
            SpeechRate::Percent(pct.clamp(20, 200))
        }
    })
}
