//! Audio for `<Play>` and `<Say>` (synthesised by `speech.rs`, cached here the same way):
//! `<Play>`'s is fetched from an http(s) URL (the webhook client's SSRF rules,
//! timeouts and redirect limit; unsigned, as it is a file, not a webhook) or read from
//! `[media] sounds_dir`, decoded once to 8 kHz PCM and kept in a byte-capped cache shared
//! by every call, so a prompt played to a thousand callers is fetched and decoded once.
//!
//! A local file is named by a relative path (inline TwiML has no base URL to resolve it
//! against): only plain path components, so a document cannot read outside `sounds_dir`.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::speech::{Speech, render_ssml};
use crate::instructions::SpeechPart;
use crate::media::wav::Wav;
use crate::webhook::WebhookClient;

/// Where a prompt comes from: a `<Play>` URL, or a `<Say>` (its SSML and voice).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AudioSource {
    Http(String),
    File(PathBuf),
    Speech { ssml: String, voice: String },
}

/// Why a `<Play>` has nothing to play (Twilio's error 13227-ish family is per cause;
/// the call layer logs this and moves on to the next verb, as Twilio does).
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("`{0}` is neither an http(s) URL nor a relative path under sounds_dir")]
    BadLocation(String),
    #[error("fetching the audio: {0}")]
    Fetch(#[from] crate::webhook::WebhookError),
    #[error("reading the audio file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the audio is not a WAV file we play: {0}")]
    Wav(#[from] crate::media::wav::WavError),
    #[error("text to speech: {0}")]
    Speech(#[from] super::speech::SpeechError),
}

impl AudioSource {
    /// Classifies a (resolved) `<Play>` URL.
    pub fn of(url: &str, sounds_dir: &Path) -> Result<AudioSource, AudioError> {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(AudioSource::Http(url.to_string()));
        }
        let rel = Path::new(url);
        let plain = !url.is_empty()
            && !url.contains(':')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(AudioError::BadLocation(url.to_string()));
        }
        Ok(AudioSource::File(sounds_dir.join(rel)))
    }
}

struct Entry {
    pcm: Arc<[i16]>,
    /// Last use, for eviction (a counter, not a clock).
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<AudioSource, Entry>,
    bytes: usize,
    tick: u64,
}

/// Decoded prompts, least recently used evicted first once `cap_bytes` is exceeded.
pub struct AudioCache {
    inner: Mutex<Inner>,
    cap_bytes: usize,
    max_file_bytes: usize,
    sounds_dir: PathBuf,
    speech: Speech,
}

impl std::fmt::Debug for AudioCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioCache")
            .field("cap_bytes", &self.cap_bytes)
            .field("sounds_dir", &self.sounds_dir)
            .finish_non_exhaustive()
    }
}

fn pcm_bytes(pcm: &[i16]) -> usize {
    std::mem::size_of_val(pcm)
}

impl AudioCache {
    pub fn new(cap_bytes: usize, max_file_bytes: usize, sounds_dir: PathBuf) -> AudioCache {
        AudioCache {
            inner: Mutex::new(Inner::default()),
            cap_bytes,
            max_file_bytes,
            sounds_dir,
            speech: Speech::default(),
        }
    }

    /// The audio at `url`, from the cache or loaded now.
    pub async fn load(
        &self,
        webhooks: &WebhookClient,
        url: &str,
    ) -> Result<Arc<[i16]>, AudioError> {
        let source = AudioSource::of(url, &self.sounds_dir)?;
        if let Some(pcm) = self.get(&source) {
            return Ok(pcm);
        }
        let bytes = match &source {
            AudioSource::Http(u) => webhooks.get_media(u, self.max_file_bytes).await?.body,
            AudioSource::Speech { .. } => return Err(AudioError::BadLocation(url.to_string())),
            AudioSource::File(p) => {
                let len = tokio::fs::metadata(p).await?.len();
                if len > self.max_file_bytes as u64 {
                    return Err(crate::media::wav::WavError::TooLarge {
                        len: len as usize,
                        max: self.max_file_bytes,
                    }
                    .into());
                }
                tokio::fs::read(p).await?.into()
            }
        };
        let pcm: Arc<[i16]> = Wav::parse(&bytes, self.max_file_bytes)?.to_pcm_8k().into();
        self.put(source, pcm.clone());
        Ok(pcm)
    }

    /// `<Say>`'s speech in `voice`/`language`, from the cache or synthesised now.
    pub async fn speak(
        &self,
        parts: &[SpeechPart],
        voice: Option<&str>,
        language: Option<&str>,
    ) -> Result<Arc<[i16]>, AudioError> {
        let ssml = render_ssml(parts)?;
        let voice = self.speech.voice_for(voice, language).await;
        let source = AudioSource::Speech {
            ssml: ssml.clone(),
            voice: voice.clone(),
        };
        if let Some(pcm) = self.get(&source) {
            return Ok(pcm);
        }
        let pcm: Arc<[i16]> = self.speech.synthesize(&ssml, &voice).await?.into();
        self.put(source, pcm.clone());
        Ok(pcm)
    }

    fn get(&self, source: &AudioSource) -> Option<Arc<[i16]>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        inner.entries.get_mut(source).map(|e| {
            e.used = tick;
            e.pcm.clone()
        })
    }

    fn put(&self, source: AudioSource, pcm: Arc<[i16]>) {
        let size = pcm_bytes(&pcm);
        if size > self.cap_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let used = inner.tick;
        if let Some(old) = inner.entries.insert(source, Entry { pcm, used }) {
            inner.bytes -= pcm_bytes(&old.pcm);
        }
        inner.bytes += size;
        // Eviction scans: the cache holds prompts, a few hundred entries at most.
        while inner.bytes > self.cap_bytes {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= pcm_bytes(&e.pcm);
            }
        }
    }

    /// Bytes of decoded audio held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_and_plain_relative_paths() {
        let dir = Path::new("/srv/sounds");
        assert_eq!(
            AudioSource::of("https://x.test/a.wav", dir).unwrap(),
            AudioSource::Http("https://x.test/a.wav".into())
        );
        assert_eq!(
            AudioSource::of("HTTP://x.test/a.wav", dir).unwrap(),
            AudioSource::Http("HTTP://x.test/a.wav".into())
        );
        assert_eq!(
            AudioSource::of("prompts/hello.wav", dir).unwrap(),
            AudioSource::File("/srv/sounds/prompts/hello.wav".into())
        );
        for bad in [
            "",
            "/etc/passwd",
            "../secret.wav",
            "a/../../b.wav",
            "file:///etc/passwd",
            "ftp://x/a.wav",
            "./a.wav",
        ] {
            assert!(AudioSource::of(bad, dir).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn files_are_decoded_once_and_the_cache_evicts_the_least_recently_used() {
        let dir = std::env::temp_dir().join(format!("audio-{}", crate::ids::random_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let a: Vec<i16> = (0..800).map(|i| (i * 7) as i16).collect();
        let b: Vec<i16> = vec![100; 800];
        std::fs::write(dir.join("a.wav"), crate::media::wav::write_recording(&a)).unwrap();
        std::fs::write(dir.join("b.wav"), crate::media::wav::write_recording(&b)).unwrap();
        // Room for one 800-sample prompt (1,600 bytes), not two.
        let cache = AudioCache::new(2_000, 1 << 20, dir.clone());
        let client = WebhookClient::new(&Default::default()).unwrap();
        let got = cache.load(&client, "a.wav").await.unwrap();
        assert_eq!(&got[..], &a[..]);
        assert_eq!(cache.bytes(), 1_600);
        // Cached: the file can go and it still plays.
        std::fs::remove_file(dir.join("a.wav")).unwrap();
        assert_eq!(&cache.load(&client, "a.wav").await.unwrap()[..], &a[..]);
        // Loading b evicts a.
        assert_eq!(&cache.load(&client, "b.wav").await.unwrap()[..], &b[..]);
        assert_eq!(cache.bytes(), 1_600);
        assert!(matches!(
            cache.load(&client, "a.wav").await,
            Err(AudioError::Io(_))
        ));
        // Not a WAV: an error, not a panic.
        std::fs::write(dir.join("c.wav"), b"hello").unwrap();
        assert!(matches!(
            cache.load(&client, "c.wav").await,
            Err(AudioError::Wav(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
