//! Finished recordings: what `GET Recordings.json` lists and serves, and what survives a
//! restart.
//!
//! Each recording is two files in the recordings directory: the audio, `{sid}.wav`, and
//! a JSON sidecar, `{sid}.json`, holding its record. The sidecar is what makes a WAV a
//! recording: `open` rebuilds the registry from sidecars alone, so a WAV without one (a
//! recording still being written, or cut off by a crash) is never listed.
//!
//! - `add` syncs the WAV, then writes the sidecar atomically (temporary file, `fsync`,
//!   `rename`, `fsync` of the directory): after a crash either the whole sidecar is there
//!   or none of it, and a sidecar never points at audio the disk does not have.
//! - `open` skips (with a warning) sidecars it cannot read or parse, whose sid is not the
//!   file name, or whose WAV is missing; it never fails for one bad recording.
//! - `delete` removes the sidecar first, then the WAV, so a crash in between leaves at
//!   worst an unlisted WAV, never a listed recording without audio.
//!
//! The record lives in memory behind a std lock taken briefly, never across an `.await`.
//! `add`, `delete` and `open` do blocking file I/O (`add` syncs the whole WAV): from async
//! code call them through `tokio::task::spawn_blocking`.
//!
//! Times are unix milliseconds, as in `CallInfo`; the REST API and callbacks show them in
//! RFC 2822, as Twilio does.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::recording_storage::{
    Reservation, StorageBudget, StorageLimits, StorageRefusal, free_bytes,
};

/// `source` of a recording made by the `<Record>` verb (Twilio's value).
pub const SOURCE_RECORD_VERB: &str = "RecordVerb";
/// `status` of a finished recording whose audio is available.
pub const STATUS_COMPLETED: &str = "completed";

/// Sidecars name callers' recordings: readable by the owner and its group, as CDRs.
const FILE_MODE: u32 = 0o640;
/// A sidecar is a few hundred bytes; anything far larger is not one of ours.
const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// One finished recording: Twilio's Recording resource, minus what the switch does not
/// have (price, encryption). Also the sidecar's format (without `path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// `RE` + 32 hex.
    pub sid: String,
    pub account_sid: String,
    /// The call that was recorded.
    pub call_sid: String,
    /// The WAV; always `{dir}/{sid}.wav` once added. Not stored in the sidecar.
    #[serde(skip)]
    pub path: PathBuf,
    /// Whole seconds of audio.
    pub duration_secs: u64,
    /// 1 (mono) for `<Record>`.
    pub channels: u32,
    /// How it was made: `RecordVerb` (later `DialVerb`, `OutboundAPI`…).
    pub source: String,
    /// `completed` for a recording with audio.
    pub status: String,
    /// When the recording resource was created (Twilio `date_created`).
    pub date_created_ms: u64,
    /// When recording started (Twilio `start_time`).
    pub start_time_ms: u64,
    /// A conference's recording (`record` on `<Conference>`): its sid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference_sid: Option<String>,
}

/// A fresh recording sid: `RE` + 32 lowercase hex digits.
pub fn new_recording_sid() -> String {
    format!(
        "RE{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    )
}

/// Whether `sid` has the shape of a recording sid (`RE` + 32 hex). Sids become file
/// names, so nothing else is accepted.
pub fn is_recording_sid(sid: &str) -> bool {
    sid.len() == 34
        && sid.starts_with("RE")
        && sid.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

/// Twilio's `RecordingUrl`: `{base}/2010-04-01/Accounts/{account}/Recordings/{sid}`, no
/// extension (the API serves WAV there; `.wav` appended names the same audio).
pub fn recording_url(base: &str, account: &str, sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{account}/Recordings/{sid}",
        base.trim_end_matches('/')
    )
}

/// The switch's REST base URL, `http://host:port`, from the address the HTTP API is bound
/// to. A wildcard bind (`0.0.0.0`, `[::]`) is no address to hand out: the host of
/// `server.public_address` stands in for it when set, else loopback.
pub fn api_base_url(bound: SocketAddr, public_address: Option<&str>) -> String {
    let port = bound.port();
    if !bound.ip().is_unspecified() {
        return format!("http://{bound}");
    }
    let host = match public_address.map(str::trim).filter(|h| !h.is_empty()) {
        None => {
            let ip = if bound.is_ipv6() {
                "[::1]"
            } else {
                "127.0.0.1"
            };
            return format!("http://{ip}:{port}");
        }
        Some(h) => h,
    };
    // `public_address` may carry the SIP port, not ours: keep the host.
    match super::core::leg::public_host(host) {
        v6 if v6.contains(':') => format!("http://[{v6}]:{port}"),
        host => format!("http://{host}:{port}"),
    }
}

/// Twilio's `recordingStatusCallback` parameters for a finished recording, in Twilio's
/// order: `AccountSid`, `CallSid`, `RecordingSid`, `RecordingUrl`, `RecordingStatus`,
/// `RecordingDuration`, `RecordingChannels`, `RecordingStartTime` (RFC 2822),
/// `RecordingSource`. (`ErrorCode` only accompanies `absent`/`failed` recordings, which
/// are never registered.)
pub fn status_callback_params(base: &str, info: &RecordingInfo) -> Vec<(String, String)> {
    [
        ("AccountSid", info.account_sid.clone()),
        ("CallSid", info.call_sid.clone()),
        ("RecordingSid", info.sid.clone()),
        (
            "RecordingUrl",
            recording_url(base, &info.account_sid, &info.sid),
        ),
        ("RecordingStatus", info.status.clone()),
        ("RecordingDuration", info.duration_secs.to_string()),
        ("RecordingChannels", info.channels.to_string()),
        (
            "RecordingStartTime",
            crate::time::rfc2822(info.start_time_ms / 1000),
        ),
        ("RecordingSource", info.source.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The finished recordings in one directory; share it as `Arc<Recordings>`.
#[derive(Debug)]
pub struct Recordings {
    dir: PathBuf,
    by_sid: RwLock<HashMap<String, RecordingInfo>>,
    /// Bytes the stored recordings take, and those being written.
    storage: Arc<StorageBudget>,
    /// The REST base URL (`api_base_url`), known once the HTTP API is bound.
    base_url: RwLock<Option<String>>,
}

impl Recordings {
    /// Opens `dir` (creating it if missing) and loads the recordings made before.
    pub fn open(dir: &Path) -> io::Result<Arc<Recordings>> {
        std::fs::create_dir_all(dir)?;
        let mut by_sid = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match load_sidecar(dir, &path) {
                Ok(info) => {
                    by_sid.insert(info.sid.clone(), info);
                }
                Err(why) => {
                    tracing::warn!(path = %path.display(), %why, "skipping recording sidecar");
                }
            }
        }
        tracing::debug!(dir = %dir.display(), count = by_sid.len(), "recordings loaded");
        let used = by_sid.values().map(|r| file_len(&r.path)).sum();
        Ok(Arc::new(Recordings {
            dir: dir.to_path_buf(),
            by_sid: RwLock::new(by_sid),
            storage: StorageBudget::new(used),
            base_url: RwLock::new(None),
        }))
    }

    /// The recordings directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reserves room for a recording of at most `want` bytes, or says why there is none
    /// (`[media] recordings_max_bytes`, `recordings_min_free_bytes`).
    pub fn reserve(&self, want: u64, limits: StorageLimits) -> Result<Reservation, StorageRefusal> {
        let free = if limits.min_free_bytes > 0 {
            free_bytes(&self.dir)?
        } else {
            u64::MAX
        };
        self.storage.reserve(want, free, limits)
    }

    /// Bytes stored and reserved now.
    pub fn bytes_in_use(&self) -> (u64, u64) {
        self.storage.in_use()
    }

    /// Where the WAV of recording `sid` belongs: `{dir}/{sid}.wav`.
    pub fn wav_path(&self, sid: &str) -> PathBuf {
        self.dir.join(format!("{sid}.wav"))
    }

    fn sidecar_path(&self, sid: &str) -> PathBuf {
        self.dir.join(format!("{sid}.json"))
    }

    /// A record for a `<Record>` verb starting now: fresh sid, `path` where the WAV
    /// belongs, mono, `RecordVerb`, `completed`, `date_created_ms` = `start_time_ms` =
    /// `start_ms`, duration 0. Write the audio to `path`, set `duration_secs`, then `add`.
    pub fn new_record_verb(&self, account: &str, call_sid: &str, start_ms: u64) -> RecordingInfo {
        let sid = new_recording_sid();
        RecordingInfo {
            path: self.wav_path(&sid),
            sid,
            account_sid: account.to_owned(),
            call_sid: call_sid.to_owned(),
            duration_secs: 0,
            channels: 1,
            source: SOURCE_RECORD_VERB.to_owned(),
            status: STATUS_COMPLETED.to_owned(),
            date_created_ms: start_ms,
            start_time_ms: start_ms,
            conference_sid: None,
        }
    }

    /// Registers a finished recording whose WAV is at `info.path`. The WAV is moved to
    /// `wav_path(sid)` if it is elsewhere (same filesystem), synced, and the sidecar
    /// written atomically; then the recording is listed. Returns the record as stored.
    /// Blocking I/O.
    pub fn add(&self, mut info: RecordingInfo) -> io::Result<RecordingInfo> {
        if !is_recording_sid(&info.sid) || info.account_sid.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a recording sid and account: {:?}", info.sid),
            ));
        }
        let wav = self.wav_path(&info.sid);
        if info.path != wav {
            std::fs::rename(&info.path, &wav)?;
            info.path = wav;
        }
        let wav = File::open(&info.path)?;
        wav.sync_all()?;
        let len = wav.metadata()?.len();
        let body = serde_json::to_vec_pretty(&info).map_err(io::Error::other)?;
        write_atomically(&self.dir, &self.sidecar_path(&info.sid), &body)?;
        if self
            .write_lock()
            .insert(info.sid.clone(), info.clone())
            .is_none()
        {
            self.storage.stored(len);
        }
        Ok(info)
    }

    /// The account's recordings, newest first; only the call's when `call_sid` is given.
    pub fn list(&self, account: &str, call_sid: Option<&str>) -> Vec<RecordingInfo> {
        let mut out: Vec<RecordingInfo> = self
            .read_lock()
            .values()
            .filter(|r| r.account_sid == account && call_sid.is_none_or(|c| r.call_sid == c))
            .cloned()
            .collect();
        out.sort_by(|a, b| (b.date_created_ms, &b.sid).cmp(&(a.date_created_ms, &a.sid)));
        out
    }

    /// One recording of the account (`None` for another account's).
    pub fn get(&self, account: &str, sid: &str) -> Option<RecordingInfo> {
        self.read_lock()
            .get(sid)
            .filter(|r| r.account_sid == account)
            .cloned()
    }

    /// Deletes one recording of the account, both files; `Ok(None)` when there is no such
    /// recording (or it is another account's). Blocking I/O.
    pub fn delete(&self, account: &str, sid: &str) -> io::Result<Option<RecordingInfo>> {
        let Some(info) = self.get(account, sid) else {
            return Ok(None);
        };
        // The sidecar first: once it is gone the recording cannot come back at a restart.
        remove_if_present(&self.sidecar_path(sid))?;
        // A concurrent delete of the same recording may have won: it answers, not us.
        let Some(info) = self.write_lock().remove(&info.sid) else {
            return Ok(None);
        };
        self.storage.removed(file_len(&info.path));
        if let Err(e) = remove_if_present(&info.path) {
            tracing::warn!(path = %info.path.display(), error = %e, "recording audio not removed");
        }
        Ok(Some(info))
    }

    /// Sets the REST base URL (`api_base_url` of the bound HTTP address) that
    /// `url` and `status_callback_params` use.
    pub fn set_base_url(&self, base: String) {
        *self.base_url.write().unwrap_or_else(|e| e.into_inner()) = Some(base);
    }

    /// The REST base URL, once the HTTP API is bound.
    pub fn base_url(&self) -> Option<String> {
        self.base_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `RecordingUrl` of `info` with the switch's base URL (a path alone before it is set).
    pub fn url(&self, info: &RecordingInfo) -> String {
        recording_url(
            self.base_url().as_deref().unwrap_or(""),
            &info.account_sid,
            &info.sid,
        )
    }

    /// `status_callback_params` with the switch's base URL.
    pub fn callback_params(&self, info: &RecordingInfo) -> Vec<(String, String)> {
        status_callback_params(self.base_url().as_deref().unwrap_or(""), info)
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, RecordingInfo>> {
        // A panic under the lock leaves a consistent map (every write is one insert or
        // remove), so a poisoned lock is still usable.
        self.by_sid.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, RecordingInfo>> {
        self.by_sid.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads and checks one sidecar; `Err` says why it is skipped.
fn load_sidecar(dir: &Path, path: &Path) -> Result<RecordingInfo, String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("file name is not UTF-8")?;
    if !is_recording_sid(stem) {
        return Err("file name is not a recording sid".into());
    }
    let mut body = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut body))
        .map_err(|e| e.to_string())?;
    if body.len() as u64 > MAX_SIDECAR_BYTES {
        return Err(format!("larger than {MAX_SIDECAR_BYTES} bytes"));
    }
    let mut info: RecordingInfo = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    if info.sid != stem {
        return Err(format!("sid {:?} is not the file name", info.sid));
    }
    if info.account_sid.is_empty() {
        return Err("no account_sid".into());
    }
    info.path = dir.join(format!("{stem}.wav"));
    if !info.path.is_file() {
        return Err(format!("audio {} is missing", info.path.display()));
    }
    Ok(info)
}

/// Replaces `path` with `body` so that a crash leaves the old file or the new one, never
/// a mix: write a temporary file in the same directory, sync it, rename it over `path`,
/// sync the directory.
fn write_atomically(dir: &Path, path: &Path, body: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("sidecar");
    // Hidden, unique per write, and not `*.json`: `open` never mistakes it for a sidecar.
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", crate::ids::random_u64()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The size of the file at `path`, 0 when it cannot be read.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC1: &str = "AC00000000000000000000000000000001";
    const AC2: &str = "AC00000000000000000000000000000002";
    const CA1: &str = "CA00000000000000000000000000000001";
    const CA2: &str = "CA00000000000000000000000000000002";

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "switchboard-recordings-{name}-{}-{:x}",
            std::process::id(),
            crate::ids::random_u64()
        ))
    }

    /// Records `bytes` as a `<Record>` of `call` at `start_ms` and adds it.
    fn record(
        r: &Recordings,
        account: &str,
        call: &str,
        start_ms: u64,
        bytes: &[u8],
    ) -> RecordingInfo {
        let mut info = r.new_record_verb(account, call, start_ms);
        std::fs::write(&info.path, bytes).unwrap();
        info.duration_secs = 7;
        r.add(info).unwrap()
    }

    #[test]
    fn sids() {
        let sid = new_recording_sid();
        assert!(is_recording_sid(&sid), "{sid}");
        assert_ne!(sid, new_recording_sid());
        for bad in [
            "",
            "RE",
            "CA00000000000000000000000000000001",
            "RE0000000000000000000000000000000g",
            "RE000000000000000000000000000000001",
            "RE/../../../../../../../../etc/pwd",
        ] {
            assert!(!is_recording_sid(bad), "{bad}");
        }
    }

    #[test]
    fn add_list_get_and_reload() {
        let dir = temp_dir("reload");
        let r = Recordings::open(&dir).unwrap();
        assert!(dir.is_dir(), "open creates the directory");
        let a = record(&r, AC1, CA1, 1_700_000_000_000, b"RIFF-a");
        let b = record(&r, AC1, CA2, 1_700_000_005_000, b"RIFF-b");
        let c = record(&r, AC2, CA1, 1_700_000_009_000, b"RIFF-c");
        assert_eq!(a.path, dir.join(format!("{}.wav", a.sid)));
        assert!(dir.join(format!("{}.json", a.sid)).is_file());

        let sids = |v: Vec<RecordingInfo>| v.into_iter().map(|r| r.sid).collect::<Vec<_>>();
        assert_eq!(sids(r.list(AC1, None)), [b.sid.clone(), a.sid.clone()]);
        assert_eq!(sids(r.list(AC1, Some(CA1))), std::slice::from_ref(&a.sid));
        assert_eq!(sids(r.list(AC2, None)), std::slice::from_ref(&c.sid));
        assert_eq!(r.get(AC1, &a.sid), Some(a.clone()));
        assert_eq!(r.get(AC2, &a.sid), None, "another account's");

        // A restart finds them all, as they were.
        drop(r);
        let r = Recordings::open(&dir).unwrap();
        assert_eq!(r.get(AC1, &a.sid), Some(a.clone()));
        assert_eq!(r.get(AC1, &b.sid), Some(b));
        assert_eq!(r.get(AC2, &c.sid), Some(c));
        assert_eq!(r.list(AC1, None).len(), 2);
        assert_eq!(std::fs::read(&a.path).unwrap(), b"RIFF-a");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn add_moves_audio_into_place() {
        let dir = temp_dir("move");
        let r = Recordings::open(&dir).unwrap();
        let mut info = r.new_record_verb(AC1, CA1, 1_000);
        let elsewhere = dir.join("in-progress.wav");
        std::fs::write(&elsewhere, b"RIFF").unwrap();
        info.path = elsewhere.clone();
        let stored = r.add(info).unwrap();
        assert_eq!(stored.path, r.wav_path(&stored.sid));
        assert!(!elsewhere.exists());
        assert_eq!(std::fs::read(&stored.path).unwrap(), b"RIFF");
        // Bad sids never become file names.
        let mut bad = r.new_record_verb(AC1, CA1, 1_000);
        bad.sid = "RE/../escape".into();
        assert_eq!(r.add(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn corrupt_sidecars_are_skipped() {
        let dir = temp_dir("corrupt");
        let r = Recordings::open(&dir).unwrap();
        let good = record(&r, AC1, CA1, 1_000, b"RIFF");
        let torn = record(&r, AC1, CA1, 2_000, b"RIFF");
        let orphan = record(&r, AC1, CA1, 3_000, b"RIFF");
        let renamed = record(&r, AC1, CA1, 4_000, b"RIFF");
        drop(r);
        let sidecar = |sid: &str| dir.join(format!("{sid}.json"));
        // Cut short mid-write, audio gone, sid not matching the name, junk names.
        let text = std::fs::read(sidecar(&torn.sid)).unwrap();
        std::fs::write(sidecar(&torn.sid), &text[..text.len() / 2]).unwrap();
        std::fs::remove_file(&orphan.path).unwrap();
        let other = new_recording_sid();
        std::fs::write(dir.join(format!("{other}.wav")), b"RIFF").unwrap();
        std::fs::rename(sidecar(&renamed.sid), sidecar(&other)).unwrap();
        std::fs::write(dir.join("notes.json"), b"{}").unwrap();
        std::fs::write(dir.join(format!(".{}.json.1.tmp", good.sid)), b"{").unwrap();

        let r = Recordings::open(&dir).unwrap();
        let listed: Vec<String> = r.list(AC1, None).into_iter().map(|i| i.sid).collect();
        assert_eq!(listed, [good.sid]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn delete_removes_both_files() {
        let dir = temp_dir("delete");
        let r = Recordings::open(&dir).unwrap();
        let a = record(&r, AC1, CA1, 1_000, b"RIFF");
        assert_eq!(r.delete(AC2, &a.sid).unwrap(), None, "another account's");
        assert!(a.path.exists());
        assert_eq!(r.delete(AC1, &a.sid).unwrap(), Some(a.clone()));
        assert!(!a.path.exists());
        assert!(!dir.join(format!("{}.json", a.sid)).exists());
        assert_eq!(r.get(AC1, &a.sid), None);
        assert_eq!(r.delete(AC1, &a.sid).unwrap(), None);
        drop(r);
        assert!(Recordings::open(&dir).unwrap().list(AC1, None).is_empty());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn callback_params_and_urls() {
        let info = RecordingInfo {
            sid: "RE0123456789abcdef0123456789abcdef".into(),
            account_sid: AC1.into(),
            call_sid: CA1.into(),
            path: PathBuf::new(),
            duration_secs: 12,
            channels: 1,
            source: SOURCE_RECORD_VERB.into(),
            status: STATUS_COMPLETED.into(),
            date_created_ms: 1_700_000_012_000,
            start_time_ms: 1_700_000_000_500,
            conference_sid: None,
        };
        let url = format!(
            "http://127.0.0.1:8080/2010-04-01/Accounts/{AC1}/Recordings/RE0123456789abcdef0123456789abcdef"
        );
        assert_eq!(recording_url("http://127.0.0.1:8080/", AC1, &info.sid), url);
        let params = status_callback_params("http://127.0.0.1:8080", &info);
        let expected = [
            ("AccountSid", AC1),
            ("CallSid", CA1),
            ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
            ("RecordingUrl", url.as_str()),
            ("RecordingStatus", "completed"),
            ("RecordingDuration", "12"),
            ("RecordingChannels", "1"),
            ("RecordingStartTime", "Tue, 14 Nov 2023 22:13:20 +0000"),
            ("RecordingSource", "RecordVerb"),
        ];
        let got: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn base_urls() {
        let b = |bound: &str, public: Option<&str>| api_base_url(bound.parse().unwrap(), public);
        assert_eq!(b("127.0.0.1:8080", None), "http://127.0.0.1:8080");
        assert_eq!(
            b("192.0.2.1:80", Some("pbx.example.com")),
            "http://192.0.2.1:80"
        );
        assert_eq!(b("[::1]:8080", None), "http://[::1]:8080");
        assert_eq!(b("0.0.0.0:8080", None), "http://127.0.0.1:8080");
        assert_eq!(b("[::]:8080", None), "http://[::1]:8080");
        assert_eq!(
            b("0.0.0.0:8080", Some("pbx.example.com:5060")),
            "http://pbx.example.com:8080"
        );
        assert_eq!(
            b("0.0.0.0:8080", Some("203.0.113.9")),
            "http://203.0.113.9:8080"
        );
        assert_eq!(
            b("[::]:8080", Some("[2001:db8::1]:5060")),
            "http://[2001:db8::1]:8080"
        );
        assert_eq!(
            b("[::]:8080", Some("2001:db8::1")),
            "http://[2001:db8::1]:8080"
        );
    }
}
