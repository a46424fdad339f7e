//! `<Say>`: text to speech with espeak-ng (Debian's `espeak-ng`), run as a subprocess per
//! new utterance. The parsed SSML ([`SpeechPart`]s) is written back as the SSML subset
//! espeak-ng reads (`-m`): text, `<break time>`, `<prosody rate>`. Its 22,050 Hz WAV is
//! resampled to 8 kHz once and cached with the `<Play>` prompts (`audio.rs`), keyed by the
//! SSML and the voice, so a greeting said to a thousand callers is synthesised once.
//!
//! Voices: Twilio's `voice` names (`man`, `woman`, `alice`, `Polly.*`, `Google.*`) cannot
//! be had here; the language picks an espeak-ng voice (`language`, default en-US: the exact
//! tag, else the same language in another region, else en-US) and `woman`/`alice` take its
//! female variant. An unknown voice or language falls back instead of failing, so the
//! caller always hears the words.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::sync::{OnceCell, Semaphore};

use crate::instructions::{SpeechPart, SpeechRate};
use crate::media::wav::{Wav, WavError};

/// Twilio reads at most 4,096 characters of a `<Say>`; so do we.
pub const MAX_SAY_CHARS: usize = 4096;
/// One utterance may take this long to synthesise (espeak-ng does minutes of speech in
/// about a second).
const SYNTH_TIMEOUT: Duration = Duration::from_secs(30);
/// espeak-ng processes at once: a burst of calls with new texts queues instead of forking
/// hundreds of processes.
const CONCURRENT: usize = 4;
/// The largest WAV espeak-ng may hand back (4,096 characters at x-slow is well below).
const MAX_WAV_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("cannot run {program} (apt-get install espeak-ng): {error}")]
    Missing {
        program: String,
        error: std::io::Error,
    },
    #[error("espeak-ng failed: {0}")]
    Failed(String),
    #[error("espeak-ng took longer than {0:?}")]
    Timeout(Duration),
    #[error("espeak-ng's output: {0}")]
    Wav(#[from] WavError),
    #[error("nothing to say")]
    Empty,
}

/// The text-to-speech engine: espeak-ng found on `PATH` (or at `program`).
pub struct Speech {
    program: PathBuf,
    voices: OnceCell<Arc<[String]>>,
    permits: Semaphore,
    files: AtomicU64,
}

impl std::fmt::Debug for Speech {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speech")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl Default for Speech {
    fn default() -> Self {
        Speech::new("espeak-ng")
    }
}

impl Speech {
    pub fn new(program: impl Into<PathBuf>) -> Speech {
        Speech {
            program: program.into(),
            voices: OnceCell::new(),
            permits: Semaphore::new(CONCURRENT),
            files: AtomicU64::new(0),
        }
    }

    /// The voice names espeak-ng has (its `--voices` list, read once; empty when it cannot
    /// be run, and then every voice falls back to `en-us`).
    async fn voices(&self) -> Arc<[String]> {
        self.voices
            .get_or_init(|| async {
                let out = tokio::process::Command::new(&self.program)
                    .arg("--voices")
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .await;
                let Ok(out) = out else {
                    return Arc::from(Vec::new());
                };
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().nth(1).map(str::to_ascii_lowercase))
                    .collect::<Vec<_>>()
                    .into()
            })
            .await
            .clone()
    }

    /// The espeak-ng voice for Twilio's `voice` and `language`.
    pub async fn voice_for(&self, voice: Option<&str>, language: Option<&str>) -> String {
        choose_voice(voice, language, &self.voices().await)
    }

    /// Speaks `ssml` (from [`render_ssml`]) with `voice`: 8 kHz samples.
    pub async fn synthesize(&self, ssml: &str, voice: &str) -> Result<Vec<i16>, SpeechError> {
        let _permit = self.permits.acquire().await.ok();
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("switchboard-say-{}-{n}.wav", std::process::id()));
        let result = tokio::time::timeout(SYNTH_TIMEOUT, self.run(ssml, voice, &path)).await;
        let bytes = match result {
            Ok(Ok(())) => tokio::fs::read(&path)
                .await
                .map_err(|e| SpeechError::Failed(format!("reading {}: {e}", path.display()))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SpeechError::Timeout(SYNTH_TIMEOUT)),
        };
        let _ = tokio::fs::remove_file(&path).await;
        let bytes = bytes?;
        Ok(Wav::parse(&bytes, MAX_WAV_BYTES)?.to_pcm_8k())
    }

    async fn run(
        &self,
        ssml: &str,
        voice: &str,
        path: &std::path::Path,
    ) -> Result<(), SpeechError> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(["-m", "-v", voice, "-w"])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| SpeechError::Missing {
                program: self.program.display().to_string(),
                error,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(ssml.as_bytes())
                .await
                .map_err(|e| SpeechError::Failed(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| SpeechError::Failed(e.to_string()))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(SpeechError::Failed(format!(
                "{}: {}",
                out.status,
                why.trim()
            )));
        }
        Ok(())
    }
}

/// The espeak-ng voice for Twilio's `voice` and `language` among `available` (lowercase
/// names such as `en-us`, `fr-fr`, `de`).
pub fn choose_voice(voice: Option<&str>, language: Option<&str>, available: &[String]) -> String {
    let tag = language
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("en-US")
        .to_ascii_lowercase()
        .replace('_', "-");
    let primary = tag.split('-').next().unwrap_or("en").to_string();
    // Chinese: Twilio says zh-CN / cmn-CN (Mandarin), zh-HK / yue-HK (Cantonese).
    let primary = match (primary.as_str(), tag.as_str()) {
        ("zh", "zh-hk") | ("yue", _) => "yue".to_string(),
        ("zh" | "cmn", _) => "cmn".to_string(),
        _ => primary,
    };
    let has = |v: &str| available.iter().any(|a| a == v);
    let base = if has(&tag) {
        tag.clone()
    } else if has(&primary) {
        primary.clone()
    } else if let Some(regional) = available
        .iter()
        .find(|a| a.starts_with(&format!("{primary}-")))
        .filter(|_| primary != "en")
    {
        regional.clone()
    } else {
        "en-us".to_string()
    };
    let female = voice.is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        v == "woman" || v == "alice"
    });
    if female { format!("{base}+f3") } else { base }
}

/// The SSML espeak-ng reads for `parts`, at most [`MAX_SAY_CHARS`] characters of words.
pub fn render_ssml(parts: &[SpeechPart]) -> Result<String, SpeechError> {
    let mut out = String::from("<speak>");
    let mut budget = MAX_SAY_CHARS;
    let mut words = false;
    for part in parts {
        match part {
            SpeechPart::Text { text, rate } => {
                if budget == 0 {
                    break;
                }
                let text: String = text.chars().take(budget).collect();
                budget -= text.chars().count();
                words = true;
                let escaped = escape(&text);
                match rate {
                    Some(r) => {
                        out.push_str(&format!(
                            "<prosody rate=\"{}\">{escaped}</prosody>",
                            rate_value(*r)
                        ));
                    }
                    None => out.push_str(&escaped),
                }
                out.push(' ');
            }
            SpeechPart::Break(d) => {
                out.push_str(&format!("<break time=\"{}ms\"/>", d.as_millis()));
            }
        }
    }
    out.push_str("</speak>");
    if words {
        Ok(out)
    } else {
        Err(SpeechError::Empty)
    }
}

fn rate_value(r: SpeechRate) -> String {
    match r {
        SpeechRate::XSlow => "x-slow".into(),
        SpeechRate::Slow => "slow".into(),
        SpeechRate::Medium => "medium".into(),
        SpeechRate::Fast => "fast".into(),
        SpeechRate::XFast => "x-fast".into(),
        SpeechRate::Percent(p) => format!("{p}%"),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Control characters would end espeak-ng's SSML early.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voices() -> Vec<String> {
        [
            "de", "en-gb", "en-us", "es", "es-419", "fr-fr", "fr-be", "cmn", "yue", "pt-br",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn twilio_voices_and_languages_fall_back_to_what_espeak_has() {
        let v = voices();
        assert_eq!(choose_voice(None, None, &v), "en-us");
        assert_eq!(choose_voice(Some("alice"), None, &v), "en-us+f3");
        assert_eq!(choose_voice(Some("woman"), Some("en-GB"), &v), "en-gb+f3");
        assert_eq!(choose_voice(Some("man"), Some("fr-FR"), &v), "fr-fr");
        assert_eq!(
            choose_voice(Some("Polly.Joanna"), Some("en-US"), &v),
            "en-us"
        );
        assert_eq!(
            choose_voice(Some("Google.de-DE-Wavenet-A"), Some("de-DE"), &v),
            "de"
        );
        assert_eq!(choose_voice(None, Some("fr-CA"), &v), "fr-fr");
        assert_eq!(choose_voice(None, Some("pt_BR"), &v), "pt-br");
        assert_eq!(choose_voice(None, Some("zh-CN"), &v), "cmn");
        assert_eq!(choose_voice(None, Some("zh-HK"), &v), "yue");
        assert_eq!(choose_voice(None, Some("en-AU"), &v), "en-us");
        assert_eq!(choose_voice(None, Some("xx-YY"), &v), "en-us");
        assert_eq!(choose_voice(None, Some("en-US"), &[]), "en-us");
    }

    #[test]
    fn ssml_for_espeak_escapes_and_caps() {
        let parts = vec![
            SpeechPart::Text {
                text: "AT&T <3 \"quotes\"\u{7}".into(),
                rate: None,
            },
            SpeechPart::Break(Duration::from_millis(1500)),
            SpeechPart::Text {
                text: "slowly".into(),
                rate: Some(SpeechRate::Percent(50)),
            },
        ];
        assert_eq!(
            render_ssml(&parts).unwrap(),
            "<speak>AT&amp;T &lt;3 &quot;quotes&quot;  <break time=\"1500ms\"/>\
             <prosody rate=\"50%\">slowly</prosody> </speak>"
        );
        assert!(matches!(
            render_ssml(&[SpeechPart::Break(Duration::from_secs(1))]),
            Err(SpeechError::Empty)
        ));
        let long = vec![SpeechPart::Text {
            text: "a".repeat(10_000),
            rate: None,
        }];
        let ssml = render_ssml(&long).unwrap();
        assert_eq!(
            ssml,
            format!("<speak>{} </speak>", "a".repeat(MAX_SAY_CHARS))
        );
    }
}
