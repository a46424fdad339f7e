//! Call detail records: one JSON line per finished call, appended to a file.
//!
//! CDRs are what billing and support read after the fact, so the file must never hold a
//! torn or interleaved record and must not lose records that were reported written:
//!
//! - The file is opened with `O_APPEND` and every record is one `write(2)` of the whole
//!   line, newline included. The kernel appends each such write atomically at the end of
//!   the file, so another process appending to the same file (an old switch still
//!   draining during a restart) cannot interleave with it, and a crash of this process
//!   leaves either the whole line or none of it.
//! - After each batch the file is `fdatasync`ed, so written records survive a power loss
//!   too. Batching the sync (one per drained batch rather than one per record) keeps a
//!   burst of hang-ups from costing one disk flush each.
//! - The writing happens on a dedicated thread fed by a channel: call tasks hand over the
//!   record and go on; they never wait for the disk. Dropping the writer drains the queue
//!   and syncs before it returns, so a clean shutdown or restart loses nothing. (A
//!   `SIGKILL` can still lose records queued but not yet written; there are at most a
//!   batch's worth, usually none.)
//! - Rotation by moving the file away (logrotate's default) is noticed before each batch
//!   and a fresh file is started at the configured path; `copytruncate` works as is
//!   because of `O_APPEND`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::Serialize;

use super::model::CallInfo;
use crate::time::rfc3339;

/// Records written between two syncs at most, so one sync is never held back for long
/// behind an endless stream.
const MAX_BATCH: usize = 1024;

/// CDRs name phone numbers: readable by the owner and its group, not the world.
const FILE_MODE: u32 = 0o640;

/// One CDR line. Field names are the stable contract with whoever reads the file.
#[derive(Debug, Serialize)]
pub struct CdrRecord<'a> {
    pub sid: &'a str,
    pub account_sid: &'a str,
    pub parent_call_sid: Option<&'a str>,
    pub direction: &'static str,
    pub from: &'a str,
    pub to: &'a str,
    pub status: &'static str,
    /// RFC 3339 with milliseconds, UTC.
    pub created: String,
    pub created_ms: u64,
    pub answered: Option<String>,
    pub answered_ms: Option<u64>,
    pub ended: Option<String>,
    pub ended_ms: Option<u64>,
    /// Seconds from answer to end (0 when never answered), as Twilio's `duration`.
    pub duration: u64,
    pub trunk: Option<&'a str>,
    pub sip_call_id: Option<&'a str>,
    pub sip_response_code: Option<u16>,
    pub application_sid: Option<&'a str>,
}

impl<'a> CdrRecord<'a> {
    pub fn of(info: &'a CallInfo) -> CdrRecord<'a> {
        CdrRecord {
            sid: &info.sid,
            account_sid: &info.account_sid,
            parent_call_sid: info.parent_call_sid.as_deref(),
            direction: info.direction.as_str(),
            from: &info.from,
            to: &info.to,
            status: info.status.as_str(),
            created: rfc3339_ms(info.created_ms),
            created_ms: info.created_ms,
            answered: info.answered_ms.map(rfc3339_ms),
            answered_ms: info.answered_ms,
            ended: info.ended_ms.map(rfc3339_ms),
            ended_ms: info.ended_ms,
            duration: info.duration_secs(),
            trunk: info.trunk.as_deref(),
            sip_call_id: info.sip_call_id.as_deref(),
            sip_response_code: info.sip_response_code,
            application_sid: info.application_sid.as_deref(),
        }
    }

    /// The record as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// `2023-11-14T22:13:20.123Z`: RFC 3339 keeping the millisecond the call record has.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = rfc3339(ms / 1000);
    let whole = secs.strip_suffix('Z').unwrap_or(&secs);
    format!("{whole}.{:03}Z", ms % 1000)
}

enum Msg {
    Record(Box<CallInfo>),
    /// Answered once everything queued before it is written and synced.
    Flush(mpsc::Sender<()>),
}

/// Appends CDRs to a file from its own thread. Cheap to call from async tasks: `write`
/// only queues.
#[derive(Debug)]
pub struct CdrWriter {
    path: PathBuf,
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl CdrWriter {
    /// Opens (creating if needed) `path` for appending and starts the writer thread. Fails
    /// now, at start, rather than at the first finished call, when the file cannot be
    /// opened (missing directory, permissions).
    pub fn open(path: &Path) -> io::Result<CdrWriter> {
        let file = open_append(path)?;
        let (tx, rx) = mpsc::channel();
        let path_buf = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || run(&path_buf, file, rx))?;
        Ok(CdrWriter {
            path: path.to_path_buf(),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues the record of a finished call.
    pub fn write(&self, info: CallInfo) {
        if let Some(tx) = &self.tx {
            // Fails only if the thread is gone (it panicked): nothing left to write with.
            let _ = tx.send(Msg::Record(Box::new(info)));
        }
    }

    /// Blocks until every record queued before this call is written and synced. For
    /// shutdown paths and tests; call tasks never need it.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if let Some(tx) = &self.tx
            && tx.send(Msg::Flush(ack_tx)).is_ok()
        {
            let _ = ack_rx.recv();
        }
    }
}

impl Drop for CdrWriter {
    /// Closing the channel lets the thread drain what is queued, sync, and end.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "CDR writer thread panicked");
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    if !existed {
        // A new file's directory entry is only durable once the directory is synced;
        // without it a power loss could lose the whole file with every synced record.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

/// The writer thread: one batch at a time, as much as is queued, then one sync.
fn run(path: &Path, mut file: File, rx: mpsc::Receiver<Msg>) {
    let mut acks = Vec::new();
    // `recv` fails once the writer is dropped and the queue is empty: the drain is done.
    while let Ok(first) = rx.recv() {
        reopen_if_rotated(path, &mut file);
        let mut next = Some(first);
        let mut written = 0usize;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(info) => {
                    append(path, &mut file, &CdrRecord::of(&info).to_line());
                    written += 1;
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            if written < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if written > 0
            && let Err(e) = file.sync_data()
        {
            tracing::error!(path = %path.display(), error = %e, "CDR fdatasync failed");
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// One `write` of the whole line: with `O_APPEND` that is one atomic append.
fn append(path: &Path, file: &mut File, line: &[u8]) {
    let result = loop {
        match file.write(line) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    match result {
        Ok(n) if n == line.len() => {}
        Ok(n) => {
            // A regular file takes a short write only when the disk fills up mid-line.
            // Finishing the line keeps the file parseable line by line (the record may
            // still be cut where the disk ran out).
            tracing::error!(path = %path.display(), wrote = n, of = line.len(), "short CDR write");
            if let Err(e) = file.write_all(&line[n..]) {
                tracing::error!(path = %path.display(), error = %e, "CDR write failed");
            }
        }
        Err(e) => tracing::error!(path = %path.display(), error = %e, "CDR write failed"),
    }
}

/// Starts a new file when `path` no longer names the open one (log rotation moved it).
fn reopen_if_rotated(path: &Path, file: &mut File) {
    let same = match (std::fs::metadata(path), file.metadata()) {
        (Ok(on_disk), Ok(open)) => on_disk.dev() == open.dev() && on_disk.ino() == open.ino(),
        _ => false,
    };
    if same {
        return;
    }
    match open_append(path) {
        Ok(f) => {
            tracing::info!(path = %path.display(), "CDR file was moved away; started a new one");
            *file = f;
        }
        // Keep writing to the old file: a record there beats a record lost.
        Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot reopen CDR file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::model::{CallStatus, Direction};
    use std::sync::Arc;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-cdr-{name}-{}-{:x}",
            std::process::id(),
            crate::ids::random_u64()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn info(n: u64) -> CallInfo {
        CallInfo {
            sid: format!("CA{n:032x}"),
            account_sid: "AC00000000000000000000000000000001".into(),
            parent_call_sid: n
                .is_multiple_of(2)
                .then(|| "CA0000000000000000000000000000ffff".into()),
            from: "+15550100001".into(),
            to: format!("client:alice-{n}"),
            direction: Direction::Inbound,
            status: CallStatus::Completed,
            created_ms: 1_700_000_000_000 + n,
            answered_ms: Some(1_700_000_001_500 + n),
            ended_ms: Some(1_700_000_011_600 + n),
            trunk: Some("carrier".into()),
            sip_call_id: Some(format!("cid-{n}@198.51.100.7")),
            sip_response_code: Some(200),
            application_sid: None,
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).expect("read CDR file");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "last line is whole"
        );
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    #[test]
    fn rfc3339_keeps_milliseconds() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(5), "1970-01-01T00:00:00.005Z");
    }

    #[test]
    fn records_are_whole_lines_with_every_field() {
        let dir = temp_dir("fields");
        let path = dir.join("cdr.jsonl");
        let w = CdrWriter::open(&path).expect("open");
        w.write(info(1));
        w.write(info(2));
        w.flush();
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            serde_json::json!({
                "sid": "CA00000000000000000000000000000001",
                "account_sid": "AC00000000000000000000000000000001",
                "parent_call_sid": null,
                "direction": "inbound",
                "from": "+15550100001",
                "to": "client:alice-1",
                "status": "completed",
                "created": "2023-11-14T22:13:20.001Z",
                "created_ms": 1_700_000_000_001u64,
                "answered": "2023-11-14T22:13:21.501Z",
                "answered_ms": 1_700_000_001_501u64,
                "ended": "2023-11-14T22:13:31.601Z",
                "ended_ms": 1_700_000_011_601u64,
                "duration": 10,
                "trunk": "carrier",
                "sip_call_id": "cid-1@198.51.100.7",
                "sip_response_code": 200,
                "application_sid": null,
            })
        );
        assert_eq!(
            got[1]["parent_call_sid"],
            "CA0000000000000000000000000000ffff"
        );

        // A restart appends to the same file; drop drains without an explicit flush.
        drop(w);
        let w = CdrWriter::open(&path).expect("reopen");
        for n in 3..=5 {
            w.write(info(n));
        }
        drop(w);
        let sids: Vec<_> = lines(&path)
            .iter()
            .map(|v| v["sid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            sids,
            (1..=5).map(|n| format!("CA{n:032x}")).collect::<Vec<_>>()
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn concurrent_finishes_and_two_writers_never_tear_lines() {
        let dir = temp_dir("concurrent");
        let path = dir.join("cdr.jsonl");
        // Two writers on one file stand for an old and a new process during a restart.
        let a = Arc::new(CdrWriter::open(&path).expect("open a"));
        let b = Arc::new(CdrWriter::open(&path).expect("open b"));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let w = if t % 2 == 0 { a.clone() } else { b.clone() };
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let mut c = info(t * 1000 + i);
                        // Long lines make a torn or interleaved write likely to show.
                        c.to = format!("sip:{}@example.com", "x".repeat(3000 + i as usize));
                        w.write(c);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer thread");
        }
        drop(a);
        drop(b);
        let got = lines(&path);
        assert_eq!(got.len(), 8 * 500);
        let unique: std::collections::HashSet<_> =
            got.iter().map(|v| v["sid"].as_str().unwrap()).collect();
        assert_eq!(unique.len(), 8 * 500);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rotation_starts_a_new_file() {
        let dir = temp_dir("rotate");
        let path = dir.join("cdr.jsonl");
        let w = CdrWriter::open(&path).expect("open");
        w.write(info(1));
        w.flush();
        std::fs::rename(&path, dir.join("cdr.jsonl.1")).expect("rotate");
        w.write(info(2));
        w.flush();
        assert_eq!(lines(&dir.join("cdr.jsonl.1")).len(), 1);
        let new = lines(&path);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0]["sid"], format!("CA{:032x}", 2));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn open_fails_for_a_missing_directory() {
        let err = CdrWriter::open(Path::new("/nonexistent-switchboard-dir/cdr.jsonl"))
            .expect_err("no such directory");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
