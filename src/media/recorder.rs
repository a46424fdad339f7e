//! `<Record>` to disk: one 8 kHz mono 16-bit PCM WAV file per recording, written as the
//! audio arrives.
//!
//! The file is `{recordings_dir}/{RecordingSid}.wav`. It starts with a provisional header
//! whose sizes are zero ([`recording_header`]`(0)`); samples are appended through a
//! `BufWriter`, so a steady stream of frames costs one `write` system call about every
//! half second and no allocation (the sample-to-bytes buffer is reused). [`Recorder::finish`]
//! patches the RIFF and `data` sizes in place and fsyncs; [`Recorder::discard`] removes the
//! file, for Twilio's rule that a recording in which nothing was heard is dropped.
//!
//! A recorder dropped without either (a relay thread unwinding, say) patches the sizes on
//! a best-effort basis. One cut short by a crash is left with zero sizes and at most the
//! `BufWriter`'s content missing; [`recover_dir`], run at start-up, repairs such files
//! from their length so that none of the audio on disk is lost.
//!
//! All calls block on file I/O (`finish` on fsync as well); the recorder is `Send`, so a
//! caller on a latency-sensitive thread can hand it to another thread to finish.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::wav::{
    MAX_RECORDING_DATA_BYTES, RECORDING_HEADER_LEN, RECORDING_SAMPLE_RATE, recording_header,
    recording_size_patches, recovered_data_bytes,
};

/// The file extension of recordings; [`recover_dir`] looks only at these.
pub const EXTENSION: &str = "wav";

/// Sample bytes per millisecond (8 kHz × 2 bytes).
const BYTES_PER_MS: u64 = RECORDING_SAMPLE_RATE as u64 * 2 / 1000;

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    /// Bytes of samples (the `data` chunk), two per sample.
    pub data_bytes: u32,
    /// Length of the audio, rounded down (`RecordingDuration` is this in whole seconds).
    pub duration_ms: u64,
}

/// A recording being written.
#[derive(Debug)]
pub struct Recorder {
    /// `None` once finished or discarded, so that `Drop` leaves it alone.
    out: Option<BufWriter<File>>,
    path: PathBuf,
    data_bytes: u32,
    /// Samples as little-endian bytes before they go to `out`; grows to the largest frame
    /// pushed, then is reused.
    bytes: Vec<u8>,
}

/// Whether `sid` is safe as a file name: ASCII letters and digits only (a Twilio SID is
/// two letters and 32 hex digits), so no path separator or `..` can get through.
fn valid_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.len() <= 64 && sid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Writes the final sizes for `data_bytes` into the header of `file`.
fn patch_sizes(file: &mut File, data_bytes: u32) -> io::Result<()> {
    for (offset, bytes) in recording_size_patches(data_bytes) {
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&bytes)?;
    }
    Ok(())
}

/// Moves samples `start..end` (clamped to the `data_bytes` written) to the front of the
/// data chunk and truncates the file after them; returns the new data size. Copies in
/// 64 KiB steps, front to back, which is safe since the destination never passes the source.
fn keep_samples(file: &mut File, data_bytes: u32, start: u64, end: u64) -> io::Result<u32> {
    let total = u64::from(data_bytes) / 2;
    let start = start.min(total);
    let end = end.clamp(start, total);
    let header = RECORDING_HEADER_LEN as u64;
    let keep = (end - start) * 2;
    if start > 0 {
        let mut buf = vec![0u8; 64 << 10];
        let mut done = 0;
        while done < keep {
            let n = (keep - done).min(buf.len() as u64) as usize;
            file.seek(SeekFrom::Start(header + start * 2 + done))?;
            file.read_exact(&mut buf[..n])?;
            file.seek(SeekFrom::Start(header + done))?;
            file.write_all(&buf[..n])?;
            done += n as u64;
        }
    }
    file.set_len(header + keep)?;
    // `keep` ≤ `data_bytes`, a u32.
    Ok(keep as u32)
}

/// fsyncs a directory so that a file created in it survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Recorder {
    /// Creates `dir/{sid}.wav` (and `dir` if missing) with a provisional header. An
    /// existing file of that name is an error (`AlreadyExists`), never overwritten; a
    /// `sid` that is not alphanumeric is `InvalidInput`.
    pub fn create(dir: &Path, sid: &str) -> io::Result<Recorder> {
        if !valid_sid(sid) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("recording SID {sid:?} is not alphanumeric"),
            ));
        }
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{sid}.{EXTENSION}"));
        // Readable too: trimming moves the kept samples within the file.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut out = BufWriter::new(file);
        out.write_all(&recording_header(0))?;
        Ok(Recorder {
            out: Some(out),
            path,
            data_bytes: 0,
            bytes: Vec::new(),
        })
    }

    /// Where the recording is being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends samples. Past [`MAX_RECORDING_DATA_BYTES`] (over 74 hours, far beyond any
    /// `maxLength`) what does not fit is dropped and `FileTooLarge` returned.
    pub fn push(&mut self, pcm: &[i16]) -> io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        let room = ((MAX_RECORDING_DATA_BYTES - self.data_bytes) / 2) as usize;
        let take = pcm.len().min(room);
        let n = 2 * take;
        if self.bytes.len() < n {
            self.bytes.resize(n, 0);
        }
        for (dst, s) in self.bytes[..n].chunks_exact_mut(2).zip(&pcm[..take]) {
            dst.copy_from_slice(&s.to_le_bytes());
        }
        out.write_all(&self.bytes[..n])?;
        // n ≤ the room left, so this stays within the cap.
        self.data_bytes += n as u32;
        if take < pcm.len() {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "recording reached the largest size a WAV file can hold",
            ));
        }
        Ok(())
    }

    /// Bytes of samples written so far.
    pub fn data_bytes(&self) -> u32 {
        self.data_bytes
    }

    /// Length of the audio so far, rounded down.
    pub fn duration_ms(&self) -> u64 {
        u64::from(self.data_bytes) / BYTES_PER_MS
    }

    /// Flushes, patches the header's sizes and fsyncs the file and its directory: when
    /// this returns the recording is a valid WAV file that survives a crash.
    pub fn finish(self) -> io::Result<Finished> {
        self.finish_keeping(None)
    }

    /// [`Recorder::finish`] keeping only samples `start..end` (`<Record trim="trim-silence">`,
    /// Twilio's default: the silence before the caller speaks and after they stop goes).
    /// The kept samples move to the front of the data chunk and the file is cut after them.
    pub fn finish_trimmed(self, start: u64, end: u64) -> io::Result<Finished> {
        self.finish_keeping(Some((start, end)))
    }

    fn finish_keeping(mut self, keep: Option<(u64, u64)>) -> io::Result<Finished> {
        if let Some(out) = self.out.take() {
            let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            if let Some((start, end)) = keep {
                self.data_bytes = keep_samples(&mut file, self.data_bytes, start, end)?;
            }
            patch_sizes(&mut file, self.data_bytes)?;
            file.sync_all()?;
            if let Some(dir) = self.path.parent() {
                sync_dir(dir)?;
            }
        }
        Ok(Finished {
            path: self.path.clone(),
            data_bytes: self.data_bytes,
            duration_ms: self.duration_ms(),
        })
    }

    /// Removes the file without writing out what is buffered: the empty-recording rule.
    pub fn discard(mut self) -> io::Result<()> {
        if let Some(out) = self.out.take() {
            // `into_parts` hands the file back without flushing the buffer.
            drop(out.into_parts());
        }
        fs::remove_file(&self.path)
    }

    /// Test hook: what a crash leaves, the buffer written but the sizes never patched.
    #[cfg(test)]
    fn crash(mut self) {
        if let Some(mut out) = self.out.take() {
            out.flush().expect("flush");
        }
    }
}

impl Drop for Recorder {
    /// Best effort: a recorder dropped unfinished still leaves a valid file behind. Errors
    /// are ignored here; [`recover_dir`] repairs whatever this could not.
    fn drop(&mut self) {
        if let Some(out) = self.out.take()
            && let Ok(mut file) = out.into_inner()
        {
            let _ = patch_sizes(&mut file, self.data_bytes);
        }
    }
}

/// Repairs the recordings in `dir` left half-written by a crash: a `.wav` file with this
/// module's header whose sizes disagree with its length gets the sizes its length implies
/// ([`recovered_data_bytes`]); a trailing half sample is cut off. Returns the files
/// repaired. Files that are not recordings of ours, or too short to hold a header, are
/// left alone; a missing `dir` has nothing to repair.
///
/// Meant for start-up, before any recorder writes into `dir`.
pub fn recover_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut repaired = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if !entry.file_type()?.is_file()
            || path.extension().and_then(|e| e.to_str()) != Some(EXTENSION)
        {
            continue;
        }
        if recover_file(&path)? {
            repaired.push(path);
        }
    }
    repaired.sort();
    Ok(repaired)
}

/// Repairs one file if it needs it; true if it did.
fn recover_file(path: &Path) -> io::Result<bool> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    if len < RECORDING_HEADER_LEN as u64 {
        return Ok(false);
    }
    let mut header = [0u8; RECORDING_HEADER_LEN];
    file.read_exact(&mut header)?;
    // Ours if everything but the two size fields matches the header we write.
    let template = recording_header(0);
    let sizes_masked = |h: &[u8; RECORDING_HEADER_LEN]| {
        let mut h = *h;
        h[4..8].fill(0);
        h[40..44].fill(0);
        h
    };
    if sizes_masked(&header) != sizes_masked(&template) {
        return Ok(false);
    }
    let data_bytes = recovered_data_bytes(len);
    let mut want = [0u8; RECORDING_HEADER_LEN];
    want.copy_from_slice(&recording_header(data_bytes));
    let whole = RECORDING_HEADER_LEN as u64 + u64::from(data_bytes);
    // A length over the cap keeps its tail (the sizes cover the first 4 GiB); only a
    // trailing odd byte, half a sample cut by the crash, is removed.
    let half_sample = len > whole && len - whole == 1;
    if header == want && !half_sample {
        return Ok(false);
    }
    if half_sample {
        file.set_len(whole)?;
    }
    patch_sizes(&mut file, data_bytes)?;
    file.sync_all()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::wav::Wav;

    /// A fresh, empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "switchboard-recorder-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn samples(n: usize) -> Vec<i16> {
        (0..n).map(|i| ((i * 7919) % 65536) as u16 as i16).collect()
    }

    fn parse_file(path: &Path) -> Vec<i16> {
        let bytes = fs::read(path).expect("read");
        Wav::parse(&bytes, usize::MAX)
            .expect("a valid WAV")
            .to_pcm_8k()
    }

    #[test]
    fn writes_a_wav_that_reads_back() {
        let tmp = TempDir::new("roundtrip");
        // The directory does not exist yet: create makes it (nested too).
        let dir = tmp.0.join("nested");
        let sid = "RE0123456789abcdef0123456789abcdef";
        let mut r = Recorder::create(&dir, sid).expect("create");
        assert_eq!(r.path(), dir.join(format!("{sid}.wav")));
        let audio = samples(8000 + 37);
        // 20 ms frames, then an uneven tail.
        for frame in audio.chunks(160) {
            r.push(frame).expect("push");
        }
        r.push(&[]).expect("empty push");
        assert_eq!(r.duration_ms(), 1004);
        let done = r.finish().expect("finish");
        assert_eq!(
            done,
            Finished {
                path: dir.join(format!("{sid}.wav")),
                data_bytes: 2 * 8037,
                duration_ms: 1004,
            }
        );
        assert_eq!(parse_file(&done.path), audio);
        // Nothing to repair in a finished file.
        assert!(recover_dir(&dir).expect("recover").is_empty());
    }

    #[test]
    fn trimming_keeps_exactly_the_span_asked_for() {
        let tmp = TempDir::new("trim");
        // More than one 64 KiB copy step, starting at an odd sample.
        let audio = samples(80_000);
        for (start, end, want) in [
            (12_345u64, 70_001u64, 12_345..70_001),
            (0, 500, 0..500),
            (79_990, 1_000_000, 79_990..80_000),
            (90_000, 95_000, 80_000..80_000),
        ] {
            let sid = format!("RE{start}x{end}");
            let mut r = Recorder::create(&tmp.0, &sid).expect("create");
            for frame in audio.chunks(160) {
                r.push(frame).expect("push");
            }
            let done = r.finish_trimmed(start, end).expect("finish");
            assert_eq!(done.data_bytes as usize, 2 * want.len(), "{start}..{end}");
            assert_eq!(
                parse_file(&done.path),
                audio[want.clone()],
                "{start}..{end}"
            );
            assert_eq!(
                fs::metadata(&done.path).unwrap().len(),
                (RECORDING_HEADER_LEN + 2 * want.len()) as u64
            );
        }
    }

    #[test]
    fn push_reuses_its_buffer() {
        let tmp = TempDir::new("buffer");
        let mut r = Recorder::create(&tmp.0, "RE1").expect("create");
        r.push(&[1; 160]).expect("push");
        let (ptr, cap) = (r.bytes.as_ptr(), r.bytes.capacity());
        for _ in 0..100 {
            r.push(&[2; 160]).expect("push");
        }
        assert_eq!((r.bytes.as_ptr(), r.bytes.capacity()), (ptr, cap));
        r.finish().expect("finish");
    }

    #[test]
    fn bad_sids_and_existing_files_are_refused() {
        let tmp = TempDir::new("sids");
        for sid in ["", "../RE1", "RE1/x", "RE 1", "RE1.wav"] {
            let e = Recorder::create(&tmp.0, sid).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{sid:?}");
        }
        let first = Recorder::create(&tmp.0, "RE2").expect("create");
        let e = Recorder::create(&tmp.0, "RE2").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        first.finish().expect("finish");
    }

    #[test]
    fn discard_removes_the_file() {
        let tmp = TempDir::new("discard");
        let mut r = Recorder::create(&tmp.0, "RE3").expect("create");
        r.push(&[0; 160]).expect("push");
        let path = r.path().to_owned();
        assert!(path.exists());
        r.discard().expect("discard");
        assert!(!path.exists());
    }

    #[test]
    fn a_dropped_recorder_leaves_a_valid_file() {
        let tmp = TempDir::new("drop");
        let audio = samples(1000);
        let path = {
            let mut r = Recorder::create(&tmp.0, "RE4").expect("create");
            r.push(&audio).expect("push");
            r.path().to_owned()
        };
        assert_eq!(parse_file(&path), audio);
    }

    #[test]
    fn crash_recovery_repairs_half_written_files() {
        let tmp = TempDir::new("crash");
        let audio = samples(4000);
        let mut r = Recorder::create(&tmp.0, "RE5").expect("create");
        r.push(&audio).expect("push");
        let crashed = r.path().to_owned();
        r.crash();
        // Still the provisional header: zero sizes, so a reader sees no audio at all.
        let bytes = fs::read(&crashed).unwrap();
        assert_eq!(bytes.len(), 44 + 8000);
        assert_eq!(Wav::parse(&bytes, usize::MAX).unwrap().frames(), 0);

        // Another cut mid-sample: a trailing odd byte.
        let mut r = Recorder::create(&tmp.0, "RE6").expect("create");
        r.push(&audio[..10]).expect("push");
        let torn = r.path().to_owned();
        r.crash();
        OpenOptions::new()
            .append(true)
            .open(&torn)
            .unwrap()
            .write_all(&[0x7f])
            .unwrap();

        // A finished one, a header-only one, a stranger's WAV, a short file and a non-WAV
        // are all left alone.
        let mut fine = Recorder::create(&tmp.0, "RE7").expect("create");
        fine.push(&audio[..100]).unwrap();
        fine.finish().unwrap();
        Recorder::create(&tmp.0, "RE8").unwrap().crash();
        let mut stranger = recording_header(0);
        stranger[22] = 2; // stereo
        fs::write(tmp.0.join("other.wav"), stranger).unwrap();
        fs::write(tmp.0.join("short.wav"), b"RIFF").unwrap();
        fs::write(tmp.0.join("notes.txt"), [0u8; 100]).unwrap();

        let repaired = recover_dir(&tmp.0).expect("recover");
        assert_eq!(repaired, vec![crashed.clone(), torn.clone()]);
        assert_eq!(parse_file(&crashed), audio);
        assert_eq!(parse_file(&torn), &audio[..10]);
        assert_eq!(fs::metadata(&torn).unwrap().len(), 44 + 20);
        assert_eq!(fs::read(tmp.0.join("other.wav")).unwrap(), stranger);
        // Idempotent.
        assert!(recover_dir(&tmp.0).expect("again").is_empty());
        // A directory that does not exist has nothing to recover.
        assert!(recover_dir(&tmp.0.join("missing")).unwrap().is_empty());
    }
}
