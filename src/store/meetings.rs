//! Finalized meetings on disk (PROTOCOL.md §4.1, §4.2): the main file
//! `meetings/<sessionId>.json`, its shards `meetings/segments/<sessionId>_shard_<K>.json`,
//! `meetings/index.json`, retention and `meetings/metrics.log`; plus the reads
//! the HTTP API needs (§5.2: recent, detail, transcript pages).
//!
//! Every JSON file goes through [`write_atomic`], so a reader (the HTTP thread)
//! never sees a half-written file and needs no lock. Writers serialize on one
//! process-wide lock because a save is a read-modify-write of `index.json`
//! followed by retention, which deletes every main file the index does not name.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::atomic::{is_temp_name, remove_leftover_temps, write_atomic};
use super::model::{IndexEntry, MeetingMetrics, MeetingRecord, Segment, Summary, valid_session_id};

/// Segments per shard file.
pub const SHARD_SIZE: usize = 100;
/// More segments than this and the meeting is sharded.
pub const SHARD_THRESHOLD: usize = 100;
/// Segments the main file keeps in its preview when sharded.
pub const PREVIEW_SIZE: usize = 50;
/// Meetings `index.json` keeps; retention deletes the rest.
pub const INDEX_MAX: usize = 100;

const INDEX_FILE: &str = "index.json";
const METRICS_FILE: &str = "metrics.log";
const SHARD_INFIX: &str = "_shard_";

/// Process-wide rather than per store: two `MeetingStore`s opened on the same
/// directory (e.g. by two subsystems) must still not interleave their
/// index updates, or one save's retention would delete the other's main file
/// before it was indexed. Saves are rare (one per finalized meeting), so the
/// cost of also serializing stores on different directories is nil.
static SAVE_LOCK: Mutex<()> = Mutex::new(());

/// The meetings directory of one data directory. Cheap to share behind an `Arc`;
/// all methods take `&self` and block on disk I/O, so call them from worker
/// threads (summary jobs, HTTP), never from a connection's event loop.
#[derive(Debug)]
pub struct MeetingStore {
    root: PathBuf,
    segments_dir: PathBuf,
    active_dir: PathBuf,
}

/// A finalized meeting as read back from its main file, without the shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMeeting {
    pub session_id: String,
    pub device_id: String,
    pub started_at: u64,
    pub ended_at: u64,
    pub duration_ms: u64,
    pub summary: Summary,
    pub bullets_length: u64,
    pub source_segments: u64,
    pub metrics: MeetingMetrics,
    pub recovered: bool,
    /// All segments of the meeting, whichever layout holds them.
    pub segments_count: u64,
    /// Number of shard files (0 for the array layout).
    pub shard_count: u64,
    pub has_shards: bool,
    /// The segments the main file itself holds: all of them (array layout) or
    /// the first [`PREVIEW_SIZE`] (preview layout). The rest come from
    /// [`MeetingStore::transcript`].
    pub main_segments: Vec<Segment>,
}

impl StoredMeeting {
    /// The first `n` segments (detail's `transcriptPreview`; the API clamps
    /// `n` to 1–20, always within what the main file holds).
    pub fn preview(&self, n: usize) -> &[Segment] {
        &self.main_segments[..n.min(self.main_segments.len())]
    }
}

// ---- on-disk shapes -------------------------------------------------------

/// The main file as written: [`MeetingRecord`]'s field order with `segments`
/// swapped for the layout chosen by [`MeetingStore::save`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MeetingFileOut<'a> {
    session_id: &'a str,
    device_id: &'a str,
    started_at: u64,
    ended_at: u64,
    duration_ms: u64,
    summary: &'a Summary,
    segments: SegmentsOut<'a>,
    bullets_length: u64,
    source_segments: u64,
    metrics: &'a MeetingMetrics,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    recovered: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SegmentsOut<'a> {
    Array(&'a [Segment]),
    Preview(PreviewOut<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreviewOut<'a> {
    preview: bool,
    total_count: u64,
    shard_count: u64,
    items: &'a [Segment],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShardOut<'a> {
    session_id: &'a str,
    shard: u64,
    offset: u64,
    items: &'a [Segment],
}

/// The main file as read: lenient on everything but identity and times, so a
/// file written by an older build still lists and opens.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeetingFileIn {
    session_id: String,
    device_id: String,
    started_at: u64,
    ended_at: u64,
    duration_ms: u64,
    #[serde(default)]
    summary: Summary,
    #[serde(default)]
    segments: SegmentsIn,
    #[serde(default)]
    bullets_length: u64,
    #[serde(default)]
    source_segments: u64,
    #[serde(default)]
    metrics: MeetingMetrics,
    #[serde(default)]
    recovered: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SegmentsIn {
    Array(Vec<Segment>),
    Preview(PreviewIn),
}

impl Default for SegmentsIn {
    fn default() -> Self {
        SegmentsIn::Array(Vec::new())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreviewIn {
    total_count: u64,
    shard_count: u64,
    #[serde(default)]
    items: Vec<Segment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShardIn {
    offset: u64,
    items: Vec<Segment>,
}

#[derive(Serialize, Deserialize, Default)]
struct IndexFile {
    #[serde(default)]
    items: Vec<IndexEntry>,
}

impl From<MeetingFileIn> for StoredMeeting {
    fn from(f: MeetingFileIn) -> Self {
        let (segments_count, shard_count, main_segments) = match f.segments {
            SegmentsIn::Array(items) => (items.len() as u64, 0, items),
            SegmentsIn::Preview(p) => (p.total_count, p.shard_count, p.items),
        };
        StoredMeeting {
            session_id: f.session_id,
            device_id: f.device_id,
            started_at: f.started_at,
            ended_at: f.ended_at,
            duration_ms: f.duration_ms,
            summary: f.summary,
            bullets_length: f.bullets_length,
            source_segments: f.source_segments,
            metrics: f.metrics,
            recovered: f.recovered,
            segments_count,
            shard_count,
            has_shards: shard_count > 0,
            main_segments,
        }
    }
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Session ids that may name a file: the contract's pattern, minus `index`,
/// which would alias `index.json`.
fn usable_session_id(id: &str) -> bool {
    valid_session_id(id) && id != "index"
}

fn check_session_id(id: &str) -> io::Result<()> {
    if usable_session_id(id) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid session id {id:?}"),
        ))
    }
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn to_json<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| io::Error::other(format!("serialize: {e}")))
}

fn sort_index(items: &mut [IndexEntry]) {
    // endedAt descending; ties broken so the order does not depend on save order.
    items.sort_by(|a, b| {
        b.ended_at
            .cmp(&a.ended_at)
            .then_with(|| b.started_at.cmp(&a.started_at))
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
}

/// `<sid>_shard_<K>.json` → (sid, K). `rsplit` so an id containing `_shard_` still parses.
fn parse_shard_name(name: &str) -> Option<(&str, u64)> {
    let stem = name.strip_suffix(".json")?;
    let (sid, k) = stem.rsplit_once(SHARD_INFIX)?;
    let k = k.parse().ok()?;
    usable_session_id(sid).then_some((sid, k))
}

impl MeetingStore {
    /// Opens (creating as needed) `<data_dir>/meetings` with `segments/` and
    /// `active/`, and deletes temp files left by writes a crash interrupted.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let root = data_dir.join("meetings");
        let segments_dir = root.join("segments");
        let active_dir = root.join("active");
        fs::create_dir_all(&segments_dir)?;
        fs::create_dir_all(&active_dir)?;
        remove_leftover_temps(&root)?;
        Ok(MeetingStore {
            root,
            segments_dir,
            active_dir,
        })
    }

    /// `<data_dir>/meetings`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<data_dir>/meetings/active`, where the journals live (see [`super::journal`]).
    pub fn active_dir(&self) -> &Path {
        &self.active_dir
    }

    fn main_path(&self, sid: &str) -> PathBuf {
        self.root.join(format!("{sid}.json"))
    }

    fn shard_path(&self, sid: &str, k: u64) -> PathBuf {
        self.segments_dir
            .join(format!("{sid}{SHARD_INFIX}{k}.json"))
    }

    /// Persists a finalized meeting (§4.2): shards first (so a main file in the
    /// preview layout never names shards that do not exist yet), then the main
    /// file, then `index.json`, then retention, then the metrics line. When this
    /// returns `Ok` the main file and index are durable and the caller may delete
    /// the journal. Retention and metrics-line failures are logged, not returned:
    /// the meeting itself is safe by then.
    pub fn save(&self, record: &MeetingRecord) -> io::Result<IndexEntry> {
        check_session_id(&record.session_id)?;
        let sid = record.session_id.as_str();
        let _guard = SAVE_LOCK.lock();

        let total = record.segments.len();
        let shard_count = if total > SHARD_THRESHOLD {
            total.div_ceil(SHARD_SIZE)
        } else {
            0
        };
        for (k, items) in record
            .segments
            .chunks(SHARD_SIZE)
            .enumerate()
            .take(shard_count)
        {
            let shard = ShardOut {
                session_id: sid,
                shard: k as u64,
                offset: (k * SHARD_SIZE) as u64,
                items,
            };
            write_atomic(&self.shard_path(sid, k as u64), &to_json(&shard)?)?;
        }
        let segments = if shard_count > 0 {
            SegmentsOut::Preview(PreviewOut {
                preview: true,
                total_count: total as u64,
                shard_count: shard_count as u64,
                items: &record.segments[..PREVIEW_SIZE.min(total)],
            })
        } else {
            SegmentsOut::Array(&record.segments)
        };
        let main = MeetingFileOut {
            session_id: sid,
            device_id: &record.device_id,
            started_at: record.started_at,
            ended_at: record.ended_at,
            duration_ms: record.duration_ms,
            summary: &record.summary,
            segments,
            bullets_length: record.bullets_length,
            source_segments: record.source_segments,
            metrics: &record.metrics,
            recovered: record.recovered,
        };
        write_atomic(&self.main_path(sid), &to_json(&main)?)?;

        let entry = IndexEntry {
            session_id: sid.to_owned(),
            device_id: record.device_id.clone(),
            title: record.summary.title.clone(),
            started_at: record.started_at,
            ended_at: record.ended_at,
            duration_ms: record.duration_ms,
            bullets_length: record.bullets_length,
            segments_count: total as u64,
            shard_count: shard_count as u64,
        };
        // An unreadable (not merely missing or corrupt) index fails the save: with
        // no reliable view of what is indexed, retention could delete meetings.
        let mut items = self.read_index()?;
        items.retain(|e| e.session_id != sid);
        items.push(entry.clone());
        sort_index(&mut items);
        items.truncate(INDEX_MAX);
        write_atomic(
            &self.root.join(INDEX_FILE),
            &to_json(&IndexFile {
                items: items.clone(),
            })?,
        )?;

        self.apply_retention(&items);

        let line = metrics_line(record);
        if let Err(e) = self.append_metrics_line(&line) {
            ::log::warn!("store: cannot append to {METRICS_FILE}: {e}");
        }
        Ok(entry)
    }

    fn append_metrics_line(&self, line: &str) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(METRICS_FILE))?;
        // One write of the whole line: O_APPEND makes it land contiguously even
        // if something else appends concurrently.
        file.write_all(format!("{line}\n").as_bytes())
    }

    /// Deletes main files and shards of sessions the index does not name, and
    /// shards beyond a kept session's current shard count (left by an earlier
    /// save of the same session with more segments). Never touches `index.json`,
    /// `metrics.log`, `active/`, temp files or names that are not ours.
    fn apply_retention(&self, kept: &[IndexEntry]) {
        let keep: HashMap<&str, u64> = kept
            .iter()
            .map(|e| (e.session_id.as_str(), e.shard_count))
            .collect();
        let remove = |path: &Path| match fs::remove_file(path) {
            Ok(()) => ::log::debug!("store: retention removed {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => ::log::warn!("store: retention cannot remove {}: {e}", path.display()),
        };
        for_each_file(&self.root, |name, path| {
            if is_temp_name(name) {
                return;
            }
            if let Some(sid) = name.strip_suffix(".json")
                && usable_session_id(sid)
                && !keep.contains_key(sid)
            {
                remove(path);
            }
        });
        for_each_file(&self.segments_dir, |name, path| {
            if is_temp_name(name) {
                return;
            }
            if let Some((sid, k)) = parse_shard_name(name) {
                match keep.get(sid) {
                    Some(&count) if k < count => {}
                    _ => remove(path),
                }
            }
        });
    }

    /// The index entries, `endedAt` descending. A missing or corrupt
    /// `index.json` is rebuilt from the main files (and rewritten by the next
    /// save), so a damaged index can never make retention wipe meetings.
    fn read_index(&self) -> io::Result<Vec<IndexEntry>> {
        let path = self.root.join(INDEX_FILE);
        match read_optional(&path)? {
            Some(bytes) => match serde_json::from_slice::<IndexFile>(&bytes) {
                Ok(index) => Ok(index.items),
                Err(e) => {
                    ::log::warn!(
                        "store: {} is corrupt ({e}); rebuilding from meeting files",
                        path.display()
                    );
                    Ok(self.rebuild_index())
                }
            },
            None => Ok(self.rebuild_index()),
        }
    }

    fn rebuild_index(&self) -> Vec<IndexEntry> {
        let mut items = Vec::new();
        for_each_file(&self.root, |name, path| {
            let Some(sid) = name.strip_suffix(".json") else {
                return;
            };
            if !usable_session_id(sid) {
                return;
            }
            let parsed = fs::read(path).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<MeetingFileIn>(&b).map_err(|e| e.to_string())
            });
            match parsed {
                Ok(f) => {
                    let m = StoredMeeting::from(f);
                    items.push(IndexEntry {
                        session_id: m.session_id,
                        device_id: m.device_id,
                        title: m.summary.title,
                        started_at: m.started_at,
                        ended_at: m.ended_at,
                        duration_ms: m.duration_ms,
                        bullets_length: m.bullets_length,
                        segments_count: m.segments_count,
                        shard_count: m.shard_count,
                    });
                }
                Err(e) => ::log::warn!("store: skipping unreadable {}: {e}", path.display()),
            }
        });
        sort_index(&mut items);
        items.truncate(INDEX_MAX);
        items
    }

    /// Finalized meetings, `endedAt` descending (`GET /meetings/recent`).
    ///
    /// - `limit` is clamped here to 1–100 (the API's rule), so callers may pass
    ///   the raw value.
    /// - `device_prefix` is normalized like every id (§1.3) and matches a prefix
    ///   of, or the whole, device id; `None` or empty matches all.
    /// - `from_ts`/`to_ts` bound `endedAt` inclusively (ms).
    pub fn recent(
        &self,
        limit: usize,
        device_prefix: Option<&str>,
        from_ts: Option<u64>,
        to_ts: Option<u64>,
    ) -> io::Result<Vec<IndexEntry>> {
        let limit = limit.clamp(1, INDEX_MAX);
        let prefix = device_prefix
            .map(crate::net::identity::normalize_id)
            .filter(|p| !p.is_empty());
        let mut items = self.read_index()?;
        sort_index(&mut items);
        Ok(items
            .into_iter()
            .filter(|e| prefix.as_deref().is_none_or(|p| e.device_id.starts_with(p)))
            .filter(|e| from_ts.is_none_or(|t| e.ended_at >= t))
            .filter(|e| to_ts.is_none_or(|t| e.ended_at <= t))
            .take(limit)
            .collect())
    }

    /// The meeting's main file, either layout. `Ok(None)` for an unknown id and
    /// for an id that fails [`valid_session_id`] (so it can never name a path
    /// outside the store). A file that exists but does not parse is `InvalidData`.
    pub fn load(&self, session_id: &str) -> io::Result<Option<StoredMeeting>> {
        if !usable_session_id(session_id) {
            return Ok(None);
        }
        let path = self.main_path(session_id);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let file: MeetingFileIn = serde_json::from_slice(&bytes)
            .map_err(|e| invalid_data(format!("{}: {e}", path.display())))?;
        Ok(Some(file.into()))
    }

    /// A page of the transcript (`GET /meetings/{id}/transcript`): the main
    /// file's array, or the shards in order for the preview layout. Returns the
    /// items and the meeting's total segment count; an `offset` past the end
    /// gives no items and the correct total. `limit` is not clamped here (the
    /// API clamps it to 1–500); 0 gives no items. `Ok(None)` as for [`Self::load`].
    /// A shard the main file promises but that is missing is `InvalidData`.
    pub fn transcript(
        &self,
        session_id: &str,
        offset: u64,
        limit: u64,
    ) -> io::Result<Option<(Vec<Segment>, u64)>> {
        let Some(meeting) = self.load(session_id)? else {
            return Ok(None);
        };
        let total = meeting.segments_count;
        if !meeting.has_shards {
            let items = meeting
                .main_segments
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .collect();
            return Ok(Some((items, total)));
        }
        let mut items = Vec::new();
        if offset >= total || limit == 0 {
            return Ok(Some((items, total)));
        }
        let wanted = limit.min(total - offset);
        let mut next = offset;
        let mut k = offset / SHARD_SIZE as u64;
        while (items.len() as u64) < wanted && k < meeting.shard_count {
            let path = self.shard_path(session_id, k);
            let bytes = read_optional(&path)?
                .ok_or_else(|| invalid_data(format!("{} is missing", path.display())))?;
            let shard: ShardIn = serde_json::from_slice(&bytes)
                .map_err(|e| invalid_data(format!("{}: {e}", path.display())))?;
            // Position by the shard's own offset, not by assuming 100 per shard.
            let skip = next.saturating_sub(shard.offset);
            for seg in shard
                .items
                .into_iter()
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            {
                if items.len() as u64 >= wanted {
                    break;
                }
                items.push(seg);
                next += 1;
            }
            k += 1;
        }
        Ok(Some((items, total)))
    }

    /// The whole meeting with every segment (shards merged back), e.g. for a
    /// webhook retry or an export. `Ok(None)` as for [`Self::load`].
    pub fn load_record(&self, session_id: &str) -> io::Result<Option<MeetingRecord>> {
        let Some(meeting) = self.load(session_id)? else {
            return Ok(None);
        };
        let segments = if meeting.has_shards {
            match self.transcript(session_id, 0, meeting.segments_count)? {
                Some((items, _)) => items,
                None => return Ok(None),
            }
        } else {
            meeting.main_segments
        };
        Ok(Some(MeetingRecord {
            session_id: meeting.session_id,
            device_id: meeting.device_id,
            started_at: meeting.started_at,
            ended_at: meeting.ended_at,
            duration_ms: meeting.duration_ms,
            summary: meeting.summary,
            segments,
            bullets_length: meeting.bullets_length,
            source_segments: meeting.source_segments,
            metrics: meeting.metrics,
            recovered: meeting.recovered,
        }))
    }

    /// Session ids with a main file on disk (for tests and diagnostics).
    pub fn stored_session_ids(&self) -> HashSet<String> {
        let mut ids = HashSet::new();
        for_each_file(&self.root, |name, _| {
            if let Some(sid) = name.strip_suffix(".json")
                && usable_session_id(sid)
            {
                ids.insert(sid.to_owned());
            }
        });
        ids
    }
}

/// Calls `f(name, path)` for each regular file directly in `dir`; listing
/// errors are logged (callers are best-effort scans).
fn for_each_file(dir: &Path, mut f: impl FnMut(&str, &Path)) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            ::log::warn!("store: cannot list {}: {e}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        f(name, &entry.path());
    }
}

/// The §4.2 metrics line (without the newline), stamped with `endedAt`:
/// `2025-08-18T02:42:00Z [Meeting Metrics] sessionId=…, segmentsCount=58, …,
/// industry=tech, scenario=standup`. A missing industry/scenario prints empty.
pub fn metrics_line(record: &MeetingRecord) -> String {
    let m = &record.metrics;
    format!(
        "{} [Meeting Metrics] sessionId={}, segmentsCount={}, checkpointCount={}, llmElapsedMs={}, emptyBullets={}, bulletsLength={}, industry={}, scenario={}",
        rfc3339_utc_seconds(record.ended_at),
        record.session_id,
        m.segments_count,
        m.checkpoint_count,
        m.llm_elapsed_ms,
        m.empty_bullets,
        m.bullets_length,
        one_line(m.industry.as_deref()),
        one_line(m.scenario.as_deref()),
    )
}

/// Configured free text must not split the one-line-per-meeting log.
fn one_line(value: Option<&str>) -> String {
    value
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of ms since the epoch, in UTC. No date crate needed:
/// the date is Howard Hinnant's civil-from-days.
pub fn rfc3339_utc_seconds(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("huddle-meetings-{}", uuid::Uuid::new_v4()))
    }

    fn record(sid: &str, ended_at: u64, n: usize) -> MeetingRecord {
        MeetingRecord {
            session_id: sid.into(),
            device_id: "94:a9:90:07:9d:88".into(),
            started_at: ended_at.saturating_sub(60_000),
            ended_at,
            duration_ms: 60_000,
            summary: Summary {
                title: format!("t-{sid}"),
                ..Summary::default()
            },
            segments: (0..n)
                .map(|i| Segment {
                    ts: i as u64,
                    text: format!("s{i}"),
                    speaker_id: None,
                    tag: None,
                })
                .collect(),
            bullets_length: 0,
            source_segments: n as u64,
            metrics: MeetingMetrics::default(),
            recovered: false,
        }
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(rfc3339_utc_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc_seconds(1_755_484_920_000),
            "2025-08-18T02:42:00Z"
        );
        assert_eq!(rfc3339_utc_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_utc_seconds(1_735_689_599_999),
            "2024-12-31T23:59:59Z"
        );
    }

    #[test]
    fn metrics_line_format() {
        let mut r = record("abc", 1_755_484_920_000, 0);
        r.metrics = MeetingMetrics {
            segments_count: 58,
            checkpoint_count: 4,
            llm_elapsed_ms: 2870,
            empty_bullets: false,
            bullets_length: 5,
            industry: Some("tech".into()),
            scenario: Some("standup".into()),
        };
        assert_eq!(
            metrics_line(&r),
            "2025-08-18T02:42:00Z [Meeting Metrics] sessionId=abc, segmentsCount=58, checkpointCount=4, llmElapsedMs=2870, emptyBullets=false, bulletsLength=5, industry=tech, scenario=standup"
        );
        r.metrics.industry = None;
        r.metrics.scenario = None;
        assert!(metrics_line(&r).ends_with("bulletsLength=5, industry=, scenario="));
        r.metrics.industry = Some("a\nb".into());
        assert!(metrics_line(&r).ends_with("industry=a b, scenario="));
    }

    #[test]
    fn shard_names() {
        assert_eq!(parse_shard_name("abc_shard_2.json"), Some(("abc", 2)));
        assert_eq!(
            parse_shard_name("a_shard_0_shard_1.json"),
            Some(("a_shard_0", 1))
        );
        assert_eq!(parse_shard_name("abc_shard_x.json"), None);
        assert_eq!(parse_shard_name("abc_shard_1.json.tmp-1"), None);
    }

    #[test]
    fn boundary_of_100_segments_stays_an_array() {
        let dir = temp_dir();
        let store = MeetingStore::open(&dir).unwrap();
        let e = store.save(&record("s100", 1000, 100)).unwrap();
        assert_eq!(e.shard_count, 0);
        let e = store.save(&record("s101", 2000, 101)).unwrap();
        assert_eq!(e.shard_count, 2);
        let (items, total) = store.transcript("s101", 100, 10).unwrap().unwrap();
        assert_eq!((items.len(), total), (1, 101));
        assert_eq!(items[0].text, "s100");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resave_with_fewer_segments_drops_stale_shards() {
        let dir = temp_dir();
        let store = MeetingStore::open(&dir).unwrap();
        store.save(&record("re", 1000, 350)).unwrap();
        assert!(store.shard_path("re", 3).exists());
        store.save(&record("re", 1000, 150)).unwrap();
        assert!(store.shard_path("re", 1).exists());
        assert!(!store.shard_path("re", 2).exists());
        assert!(!store.shard_path("re", 3).exists());
        assert_eq!(store.recent(100, None, None, None).unwrap().len(), 1);
        let full = store.load_record("re").unwrap().unwrap();
        assert_eq!(full, record("re", 1000, 150));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_index_is_rebuilt_not_trusted() {
        let dir = temp_dir();
        let store = MeetingStore::open(&dir).unwrap();
        store.save(&record("a", 1000, 1)).unwrap();
        store.save(&record("b", 2000, 1)).unwrap();
        fs::write(store.root().join(INDEX_FILE), b"{\"items\":[").unwrap();
        let ids: Vec<_> = store
            .recent(10, None, None, None)
            .unwrap()
            .into_iter()
            .map(|e| e.session_id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        store.save(&record("c", 3000, 1)).unwrap();
        assert_eq!(store.stored_session_ids().len(), 3);
        assert_eq!(store.recent(10, None, None, None).unwrap().len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn index_alias_is_refused() {
        let dir = temp_dir();
        let store = MeetingStore::open(&dir).unwrap();
        assert!(store.save(&record("index", 1, 1)).is_err());
        assert!(store.load("index").unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
