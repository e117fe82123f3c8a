//! Crash-safe meeting journals (PROTOCOL.md §4.3): `meetings/active/<sessionId>.jsonl`,
//! one [`JournalRecord`] per line, written by a single `journal-writer` thread,
//! plus the startup scan ([`scan_journals`]) and the resume rule ([`resume_candidate`]).
//!
//! Why a thread: connection threads must never block on disk, so they hand
//! records to [`JournalHandle`], which only does a non-blocking `try_send` on a
//! bounded channel. The writer owns every open file, writes each record as soon
//! as it arrives (buffered per batch, then handed to the OS, so a kill -9 loses
//! nothing already received) and fsyncs each dirty file within ~1 s of its first
//! unsynced write (so a power loss loses at most the last second).

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::atomic::sync_dir;
use super::model::{JournalRecord, Segment, valid_session_id};

/// Commands the channel holds before `try_send` reports [`JournalError::Full`].
pub const DEFAULT_CAPACITY: usize = 8192;
/// The contract's bound on unsynced data (§4.3).
pub const FSYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How often the writer wakes when idle; also the fsync delay when idle.
const TICK: Duration = Duration::from_millis(200);
/// A busy writer fsyncs a file once its oldest unsynced write is this old;
/// below [`FSYNC_INTERVAL`] to leave room for the batch in progress.
const SYNC_AFTER: Duration = Duration::from_millis(750);
/// Commands handled before buffers are pushed to the OS even if more are queued.
const MAX_BATCH: usize = 256;
/// How long `close` may wait for room when the channel is full: losing a close
/// would leak the file, or (delete) leave a journal that recovery finalizes again.
const CLOSE_WAIT: Duration = Duration::from_millis(500);
/// How long shutdown waits for room in the channel.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Why a journal command was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalError {
    /// The channel is full: the writer is behind (disk stalled). The record is lost.
    Full,
    /// The writer thread has stopped.
    Closed,
    /// The session id fails `valid_session_id` and cannot name a file.
    InvalidSessionId,
    /// `flush` did not complete in time.
    Timeout,
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JournalError::Full => "journal queue full",
            JournalError::Closed => "journal writer stopped",
            JournalError::InvalidSessionId => "invalid session id",
            JournalError::Timeout => "journal flush timed out",
        })
    }
}

impl std::error::Error for JournalError {}

enum Command {
    Open {
        session_id: String,
        start: JournalRecord,
    },
    Append {
        session_id: String,
        record: JournalRecord,
    },
    Close {
        session_id: String,
        delete: bool,
    },
    Flush {
        done: Sender<()>,
    },
    Shutdown,
}

#[derive(Debug, Default)]
struct Stats {
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

/// The `journal-writer` thread. Dropping it (or [`JournalWriter::shutdown`])
/// fsyncs everything and joins the thread; handles still alive afterwards get
/// [`JournalError::Closed`].
pub struct JournalWriter {
    handle: JournalHandle,
    thread: Option<JoinHandle<()>>,
}

/// Cheap, cloneable, non-blocking sender to the writer thread.
#[derive(Clone)]
pub struct JournalHandle {
    tx: Sender<Command>,
    stats: Arc<Stats>,
}

impl fmt::Debug for JournalHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalHandle")
            .field("queued", &self.tx.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl JournalWriter {
    /// Starts the writer for `active_dir` (created if missing) with a channel of
    /// `capacity` commands (at least 1).
    pub fn start(active_dir: &Path, capacity: usize) -> io::Result<Self> {
        fs::create_dir_all(active_dir)?;
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let stats = Arc::new(Stats::default());
        let mut state = WriterState {
            dir: active_dir.to_path_buf(),
            files: HashMap::new(),
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || state.run(rx))?;
        Ok(JournalWriter {
            handle: JournalHandle { tx, stats },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> JournalHandle {
        self.handle.clone()
    }

    /// Fsyncs every open journal, closes them (keeping the files: a suspended
    /// meeting stays resumable across a restart) and joins the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // At shutdown waiting for the queue to drain is the point, but a writer
        // stuck on a dead disk must not hang the process forever.
        match self
            .handle
            .tx
            .send_timeout(Command::Shutdown, SHUTDOWN_WAIT)
        {
            Ok(()) => {
                if thread.join().is_err() {
                    ::log::error!("journal-writer panicked");
                }
            }
            Err(_) => {
                ::log::error!("journal-writer did not take the shutdown command; not waiting")
            }
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl JournalHandle {
    fn send(&self, cmd: Command) -> Result<(), JournalError> {
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Err(JournalError::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(JournalError::Closed),
        }
    }

    /// Starts (or, when the file exists, resumes) the journal of `session_id`.
    /// A new file gets the `start` line; a resumed one is appended to as is.
    pub fn open(
        &self,
        session_id: &str,
        device_id: &str,
        started_at: u64,
    ) -> Result<(), JournalError> {
        if !valid_session_id(session_id) {
            return Err(JournalError::InvalidSessionId);
        }
        self.send(Command::Open {
            session_id: session_id.to_owned(),
            start: JournalRecord::Start {
                session_id: session_id.to_owned(),
                device_id: device_id.to_owned(),
                started_at,
            },
        })
    }

    /// Queues one record. Never blocks; [`JournalError::Full`] means it is lost
    /// (count it and log it).
    pub fn append(&self, session_id: &str, record: JournalRecord) -> Result<(), JournalError> {
        if !valid_session_id(session_id) {
            return Err(JournalError::InvalidSessionId);
        }
        self.send(Command::Append {
            session_id: session_id.to_owned(),
            record,
        })
    }

    /// Closes the journal after syncing it; `delete` removes the file (once
    /// the meeting is durable in the store). Works for journals this writer
    /// never opened (e.g. recovered at startup). When the channel is full this
    /// waits up to 500 ms for room rather than losing the close.
    pub fn close(&self, session_id: &str, delete: bool) -> Result<(), JournalError> {
        if !valid_session_id(session_id) {
            return Err(JournalError::InvalidSessionId);
        }
        let cmd = Command::Close {
            session_id: session_id.to_owned(),
            delete,
        };
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(cmd)) => self.tx.send_timeout(cmd, CLOSE_WAIT).map_err(|e| {
                if e.is_timeout() {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    JournalError::Full
                } else {
                    JournalError::Closed
                }
            }),
            Err(TrySendError::Disconnected(_)) => Err(JournalError::Closed),
        }
    }

    /// Waits until everything queued before this call is written and fsynced.
    /// Blocks: for tests and shutdown, not for connection threads.
    pub fn flush(&self, timeout: Duration) -> Result<(), JournalError> {
        let deadline = Instant::now() + timeout;
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        self.tx
            .send_timeout(Command::Flush { done: done_tx }, timeout)
            .map_err(|e| {
                if e.is_timeout() {
                    JournalError::Timeout
                } else {
                    JournalError::Closed
                }
            })?;
        match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(JournalError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(JournalError::Closed),
        }
    }

    /// Commands refused because the channel was full, since start.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Write/fsync/open failures on the writer thread, since start (each is logged).
    pub fn write_errors(&self) -> u64 {
        self.stats.write_errors.load(Ordering::Relaxed)
    }

    /// Commands waiting in the channel.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

struct OpenJournal {
    writer: BufWriter<File>,
    /// When the oldest write not yet fsynced happened; `None` when clean.
    dirty_since: Option<Instant>,
}

struct WriterState {
    dir: PathBuf,
    files: HashMap<String, OpenJournal>,
    stats: Arc<Stats>,
}

impl WriterState {
    fn path(&self, session_id: &str) -> PathBuf {
        self.dir.join(format!("{session_id}.jsonl"))
    }

    fn error(&self, what: &str, session_id: &str, e: &io::Error) {
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        ::log::error!("journal: {what} {session_id}: {e}");
    }

    fn run(&mut self, rx: Receiver<Command>) {
        loop {
            let first = match rx.recv_timeout(TICK) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: nothing is coming, so sync everything now.
                    self.sync_dirty(true);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut next = Some(first);
            let mut handled = 0;
            while let Some(cmd) = next.take() {
                if !self.handle(cmd) {
                    self.sync_dirty(true);
                    return;
                }
                handled += 1;
                if handled < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            // Hand the batch to the OS (survives a process kill), then fsync what is due.
            self.flush_buffers();
            self.sync_dirty(false);
        }
        self.sync_dirty(true);
    }

    /// Returns false on shutdown.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Open { session_id, start } => self.open(session_id, &start),
            Command::Append { session_id, record } => self.append(&session_id, &record),
            Command::Close { session_id, delete } => self.close(&session_id, delete),
            Command::Flush { done } => {
                self.flush_buffers();
                self.sync_dirty(true);
                let _ = done.send(());
            }
            Command::Shutdown => {
                self.flush_buffers();
                self.sync_dirty(true);
                self.files.clear();
                return false;
            }
        }
        true
    }

    fn open(&mut self, session_id: String, start: &JournalRecord) {
        if self.files.contains_key(&session_id) {
            ::log::warn!("journal: {session_id} is already open");
            return;
        }
        let path = self.path(&session_id);
        match open_for_append(&path, start) {
            Ok((file, created)) => {
                if created && let Err(e) = sync_dir(&self.dir) {
                    self.error("cannot sync directory for", &session_id, &e);
                }
                self.files.insert(
                    session_id,
                    OpenJournal {
                        writer: BufWriter::new(file),
                        dirty_since: Some(Instant::now()),
                    },
                );
            }
            Err(e) => self.error("cannot open", &session_id, &e),
        }
    }

    fn append(&mut self, session_id: &str, record: &JournalRecord) {
        let Some(journal) = self.files.get_mut(session_id) else {
            ::log::warn!("journal: append to {session_id}, which is not open; record dropped");
            return;
        };
        let result = write_line(&mut journal.writer, record);
        journal.dirty_since.get_or_insert_with(Instant::now);
        if let Err(e) = result {
            self.error("cannot append to", session_id, &e);
        }
    }

    fn close(&mut self, session_id: &str, delete: bool) {
        if let Some(mut journal) = self.files.remove(session_id)
            && !delete
            && let Err(e) = journal
                .writer
                .flush()
                .and_then(|()| journal.writer.get_ref().sync_data())
        {
            self.error("cannot sync", session_id, &e);
        }
        if delete {
            match fs::remove_file(self.path(session_id)) {
                Ok(()) => {
                    // Make the removal durable: a journal resurrected by a power
                    // loss would be finalized a second time.
                    if let Err(e) = sync_dir(&self.dir) {
                        self.error("cannot sync directory for", session_id, &e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self.error("cannot delete", session_id, &e),
            }
        }
    }

    fn flush_buffers(&mut self) {
        let mut failed = Vec::new();
        for (sid, journal) in &mut self.files {
            if journal.dirty_since.is_some()
                && let Err(e) = journal.writer.flush()
            {
                failed.push((sid.clone(), e));
            }
        }
        for (sid, e) in failed {
            self.error("cannot write", &sid, &e);
        }
    }

    /// fsyncs dirty files: all of them when `all`, else those whose oldest
    /// unsynced write is at least [`SYNC_AFTER`] old.
    fn sync_dirty(&mut self, all: bool) {
        let mut failed = Vec::new();
        for (sid, journal) in &mut self.files {
            let Some(since) = journal.dirty_since else {
                continue;
            };
            if !all && since.elapsed() < SYNC_AFTER {
                continue;
            }
            match journal
                .writer
                .flush()
                .and_then(|()| journal.writer.get_ref().sync_data())
            {
                Ok(()) => journal.dirty_since = None,
                // Stays dirty: retried on the next pass.
                Err(e) => failed.push((sid.clone(), e)),
            }
        }
        for (sid, e) in failed {
            self.error("cannot fsync", &sid, &e);
        }
    }
}

fn write_line(w: &mut impl Write, record: &JournalRecord) -> io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// Opens `path` for appending. A new (or empty) file gets the start line; an
/// existing one is resumed, and if a crash left its last line torn (no final
/// newline) a newline is added first, so the fragment stays a line of its own
/// that recovery skips instead of swallowing the next record.
fn open_for_append(path: &Path, start: &JournalRecord) -> io::Result<(File, bool)> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        write_line(&mut file, start)?;
        return Ok((file, true));
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok((file, false))
}

// ---- recovery -------------------------------------------------------------

/// What a journal on disk says about its meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredJournal {
    /// From the file name (the name is what `close(.., delete)` removes).
    pub session_id: String,
    pub device_id: String,
    pub started_at: u64,
    pub segments: Vec<Segment>,
    pub checkpoint_count: u64,
    /// A `finalize` record is present.
    pub finalized: bool,
    /// `ts` of the last valid record (`startedAt` for a lone start line): the
    /// recovered meeting's `endedAt` and the start of its resume window.
    pub last_record_ts: u64,
    pub path: PathBuf,
}

impl RecoveredJournal {
    /// Whether a `mode start meeting` at `now_ms` may still resume it.
    pub fn within_window(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_record_ts) <= window_ms
    }

    /// When its resume window closes (ms since the epoch).
    pub fn window_end_ms(&self, window_ms: u64) -> u64 {
        self.last_record_ts.saturating_add(window_ms)
    }

    /// Startup rule (§4.3): finalized journals and expired windows are
    /// finalized at once; the others wait for their window.
    pub fn finalize_now(&self, now_ms: u64, window_ms: u64) -> bool {
        self.finalized || !self.within_window(now_ms, window_ms)
    }
}

/// Parses one journal. A torn or invalid last line is ignored (the crash
/// interrupted it); an invalid line elsewhere is skipped and logged. Fails with
/// `InvalidData` when no valid start line exists.
pub fn read_journal(path: &Path) -> io::Result<RecoveredJournal> {
    let bytes = fs::read(path)?;
    let name_sid = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| valid_session_id(s))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "journal name is not a session id",
            )
        })?
        .to_owned();

    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let mut start: Option<(String, String, u64)> = None;
    let mut segments = Vec::new();
    let mut checkpoint_count = 0;
    let mut finalized = false;
    let mut last_ts = None;
    for (i, line) in lines.iter().enumerate() {
        let record: JournalRecord = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) if i + 1 == lines.len() => {
                ::log::info!(
                    "journal: {} ends with a torn line ({e}); ignored",
                    path.display()
                );
                continue;
            }
            Err(e) => {
                ::log::warn!(
                    "journal: {} line {} is invalid ({e}); skipped",
                    path.display(),
                    i + 1
                );
                continue;
            }
        };
        match record {
            JournalRecord::Start {
                session_id,
                device_id,
                started_at,
            } => {
                if start.is_some() {
                    ::log::warn!(
                        "journal: {} has a second start line; ignored",
                        path.display()
                    );
                } else {
                    last_ts = last_ts.or(Some(started_at));
                    start = Some((session_id, device_id, started_at));
                }
            }
            JournalRecord::Segment(seg) => {
                last_ts = Some(seg.ts);
                segments.push(seg);
            }
            JournalRecord::Checkpoint { ts, .. } => {
                last_ts = Some(ts);
                checkpoint_count += 1;
            }
            JournalRecord::Finalize { ts } => {
                last_ts = Some(ts);
                finalized = true;
            }
        }
    }
    let Some((start_sid, device_id, started_at)) = start else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no valid start line",
        ));
    };
    if start_sid != name_sid {
        ::log::warn!(
            "journal: {} names session {start_sid:?}; using the file name",
            path.display()
        );
    }
    Ok(RecoveredJournal {
        session_id: name_sid,
        device_id,
        started_at,
        segments,
        checkpoint_count,
        finalized,
        last_record_ts: last_ts.unwrap_or(started_at),
        path: path.to_path_buf(),
    })
}

/// Every readable journal in `active_dir`, newest last record first. Files
/// that are not `<sessionId>.jsonl` are ignored; corrupt journals (no valid
/// start line, unreadable) are logged and skipped but left on disk for a human.
/// A missing directory gives an empty list.
pub fn scan_journals(active_dir: &Path) -> Vec<RecoveredJournal> {
    let entries = match fs::read_dir(active_dir) {
        Ok(entries) => entries,
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                ::log::warn!("journal: cannot list {}: {e}", active_dir.display());
            }
            return Vec::new();
        }
    };
    let mut journals = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_journal = entry.file_type().is_ok_and(|t| t.is_file())
            && path.extension().is_some_and(|x| x == "jsonl")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(valid_session_id);
        if !is_journal {
            continue;
        }
        match read_journal(&path) {
            Ok(j) => journals.push(j),
            Err(e) => ::log::warn!("journal: {} is corrupt ({e}); skipped", path.display()),
        }
    }
    journals.sort_by(|a, b| {
        b.last_record_ts
            .cmp(&a.last_record_ts)
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    journals
}

/// The journal a `mode start meeting` from `device_id` at `now_ms` resumes:
/// the newest unfinalized one of that device whose last record is at most
/// `window_ms` old.
pub fn resume_candidate(
    journals: &[RecoveredJournal],
    device_id: &str,
    now_ms: u64,
    window_ms: u64,
) -> Option<RecoveredJournal> {
    journals
        .iter()
        .filter(|j| j.device_id == device_id && !j.finalized && j.within_window(now_ms, window_ms))
        .max_by(|a, b| {
            a.last_record_ts
                .cmp(&b.last_record_ts)
                .then_with(|| a.started_at.cmp(&b.started_at))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("huddle-journal-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn seg(ts: u64, text: &str) -> JournalRecord {
        JournalRecord::Segment(Segment {
            ts,
            text: text.into(),
            speaker_id: None,
            tag: None,
        })
    }

    const START: &str = r#"{"kind":"start","sessionId":"s1","deviceId":"d1","startedAt":100}"#;

    #[test]
    fn parses_records_and_ignores_a_torn_tail() {
        let dir = temp_dir();
        let path = dir.join("s1.jsonl");
        let body = format!(
            "{START}\n{}\n{{\"kind\":\"checkpoint\",\"ts\":300,\"segments\":1}}\n{{\"kind\":\"segm",
            serde_json::to_string(&seg(200, "a")).unwrap()
        );
        fs::write(&path, body).unwrap();
        let j = read_journal(&path).unwrap();
        assert_eq!(j.session_id, "s1");
        assert_eq!(j.device_id, "d1");
        assert_eq!(j.started_at, 100);
        assert_eq!(j.segments.len(), 1);
        assert_eq!(j.checkpoint_count, 1);
        assert_eq!(j.last_record_ts, 300);
        assert!(!j.finalized);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn skips_bad_middle_lines_and_requires_a_start() {
        let dir = temp_dir();
        let path = dir.join("s1.jsonl");
        fs::write(
            &path,
            format!("{START}\nnot json\n{{\"kind\":\"finalize\",\"ts\":9}}\n"),
        )
        .unwrap();
        let j = read_journal(&path).unwrap();
        assert!(j.finalized);
        assert_eq!(j.last_record_ts, 9);

        fs::write(dir.join("s2.jsonl"), "{\"kind\":\"finalize\",\"ts\":9}\n").unwrap();
        fs::write(dir.join("notes.txt"), "x").unwrap();
        let all = scan_journals(&dir);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].session_id, "s1");
        assert!(scan_journals(&dir.join("missing")).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lone_start_uses_started_at() {
        let dir = temp_dir();
        let path = dir.join("s1.jsonl");
        fs::write(&path, format!("{START}\n")).unwrap();
        assert_eq!(read_journal(&path).unwrap().last_record_ts, 100);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resuming_after_a_torn_line_keeps_the_next_record() {
        let dir = temp_dir();
        fs::write(dir.join("s1.jsonl"), format!("{START}\n{{\"kind\":\"seg")).unwrap();
        let writer = JournalWriter::start(&dir, 16).unwrap();
        let h = writer.handle();
        h.open("s1", "d1", 100).unwrap();
        h.append("s1", seg(500, "after")).unwrap();
        h.flush(Duration::from_secs(5)).unwrap();
        let j = read_journal(&dir.join("s1.jsonl")).unwrap();
        assert_eq!(j.segments.len(), 1);
        assert_eq!(j.segments[0].text, "after");
        assert_eq!(j.last_record_ts, 500);
        writer.shutdown();
        assert_eq!(h.append("s1", seg(1, "x")), Err(JournalError::Closed));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn full_channel_is_reported_not_blocking() {
        let dir = temp_dir();
        // Capacity 1 and a writer that cannot keep up with a tight loop.
        let writer = JournalWriter::start(&dir, 1).unwrap();
        let h = writer.handle();
        h.open("s1", "d1", 1).unwrap();
        let mut full = 0;
        for i in 0..10_000 {
            if h.append("s1", seg(i, "x")) == Err(JournalError::Full) {
                full += 1;
            }
        }
        assert!(full > 0);
        assert_eq!(h.dropped(), full);
        assert_eq!(
            h.append("../x", seg(1, "x")),
            Err(JournalError::InvalidSessionId)
        );
        drop(writer);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn window_rules() {
        let j = RecoveredJournal {
            session_id: "s".into(),
            device_id: "d".into(),
            started_at: 0,
            segments: vec![],
            checkpoint_count: 0,
            finalized: false,
            last_record_ts: 1000,
            path: PathBuf::new(),
        };
        assert!(j.within_window(1500, 500));
        assert!(!j.within_window(1501, 500));
        assert!(
            j.within_window(10, 500),
            "a record from the future is within the window"
        );
        assert!(j.finalize_now(2000, 500));
        assert_eq!(j.window_end_ms(500), 1500);
    }
}
