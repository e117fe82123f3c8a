//! The process-wide side of meeting mode: everything a connection thread may
//! not do itself. Journal writes go to the journal writer thread; finalize
//! runs on a bounded pool of summary workers (`meeting.threadpool_max_workers`)
//! that calls the LLM, writes the archive and hands the webhook its job;
//! suspended meetings wait here for their device, and are finalized by a
//! sweeper when their resume window passes. Results reach the device through
//! its connection inbox.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::summary::{SummaryInput, SummaryPath, SummaryProgress, summarize_with};
use crate::audio::stats::mono_ns;
use crate::config::Config;
use crate::llm::resolve::{LlmPurpose, LlmRegistry};
use crate::net::handle::{ConnEvent, ConnHandle};
use crate::store::journal::{JournalHandle, JournalWriter, RecoveredJournal, scan_journals};
use crate::store::meetings::MeetingStore;
use crate::store::model::{JournalRecord, MeetingMetrics, MeetingRecord, Segment};
use crate::timer::unix_ms;
use crate::webhook::delivery::{WebhookJob, WebhookSender};

/// Pending finalize jobs beyond the running ones.
const FINALIZE_QUEUE: usize = 256;
/// How often suspended meetings are checked against their resume window.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// One meeting to summarize and archive.
pub struct FinalizeRequest {
    pub session_id: String,
    pub device_id: String,
    pub started_at: u64,
    /// The finalize request time (or the last journal record when recovered).
    pub ended_at: u64,
    pub segments: Vec<Segment>,
    pub checkpoint_count: u64,
    /// The device to report to; `None` when it is gone (disconnected or recovered).
    pub reply: Option<ConnHandle>,
    /// Devices that get a `from`-marked copy of the summary (`[meeting.broadcast]`).
    pub copies: Vec<ConnHandle>,
    pub config: Arc<Config>,
    /// Crash recovery: the fallback summary, `recovered:true`.
    pub recovered: bool,
    /// When finalize was asked for, for `elapsedMs`.
    pub requested_ns: u64,
    /// A periodic checkpoint summary: sent and journaled, the meeting goes on
    /// (no archive, no webhook, no state change).
    pub checkpoint: bool,
}

impl FinalizeRequest {
    /// A meeting no device will hear about again (recovered, or suspended too long).
    fn from_journal(journal: RecoveredJournal, config: Arc<Config>, recovered: bool) -> Self {
        FinalizeRequest {
            ended_at: journal.last_record_ts,
            session_id: journal.session_id,
            device_id: journal.device_id,
            started_at: journal.started_at,
            segments: journal.segments,
            checkpoint_count: journal.checkpoint_count,
            reply: None,
            copies: Vec::new(),
            config,
            recovered,
            requested_ns: mono_ns(),
            checkpoint: false,
        }
    }
}

/// Meetings finalized, by path (`huddle_meetings_finalized_total{path}`).
pub static FINALIZED_LLM: AtomicU64 = AtomicU64::new(0);
pub static FINALIZED_FALLBACK: AtomicU64 = AtomicU64::new(0);
pub static FINALIZED_RECOVERED: AtomicU64 = AtomicU64::new(0);
pub static MEETINGS_ACTIVE: AtomicU64 = AtomicU64::new(0);

pub struct MeetingService {
    store: Option<Arc<MeetingStore>>,
    journal: Option<JournalHandle>,
    /// Keeps the writer thread alive for the life of the service.
    _journal_writer: Option<JournalWriter>,
    jobs: Sender<FinalizeRequest>,
    webhook: Arc<WebhookSender>,
    /// Meetings whose device went away (or that were found at startup), by
    /// session id, waiting for a resume or for their window to pass.
    suspended: Mutex<HashMap<String, RecoveredJournal>>,
}

impl MeetingService {
    /// The meeting archive, absent when `storage.data_dir` was unusable at
    /// startup. The HTTP API reads it on its connection threads.
    pub fn store(&self) -> Option<&Arc<MeetingStore>> {
        self.store.as_ref()
    }

    /// Opens the store under `storage.data_dir`, starts the journal writer and
    /// the summary workers, and takes up the journals a crash left behind.
    /// An unusable data dir is a warning: meetings then run without an archive.
    pub fn start(config: &Config) -> Arc<MeetingService> {
        let data_dir = config.storage.data_dir.as_path();
        let store = match MeetingStore::open(data_dir) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                ::log::warn!(
                    "meeting storage under {} unusable ({e}); meetings are not archived",
                    data_dir.display()
                );
                None
            }
        };
        let writer =
            store
                .as_ref()
                .and_then(|s| match JournalWriter::start(s.active_dir(), 4096) {
                    Ok(writer) => Some(writer),
                    Err(e) => {
                        ::log::warn!(
                            "journal writer unavailable ({e}); meetings are not crash-safe"
                        );
                        None
                    }
                });
        let (jobs, queue) = crossbeam_channel::bounded(FINALIZE_QUEUE);
        let service = Arc::new(MeetingService {
            journal: writer.as_ref().map(JournalWriter::handle),
            _journal_writer: writer,
            store,
            jobs,
            webhook: Arc::new(WebhookSender::new(&config.meeting.webhook)),
            suspended: Mutex::new(HashMap::new()),
        });
        for index in 0..config.meeting.threadpool_max_workers.max(1) {
            let worker = Arc::clone(&service);
            let queue: Receiver<FinalizeRequest> = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("summary-{index}"))
                .spawn(move || {
                    for request in queue.iter() {
                        worker.run_finalize(request);
                    }
                });
            if let Err(e) = spawned {
                ::log::error!("cannot start summary worker {index}: {e}");
            }
        }
        service.recover(config, data_dir);
        service
    }

    /// Applies an accepted reload: the webhook target and headers may change.
    pub fn reconfigure(&self, config: &Config) {
        self.webhook.reconfigure(&config.meeting.webhook);
    }

    fn recover(self: &Arc<Self>, config: &Config, _data_dir: &Path) {
        let Some(store) = &self.store else { return };
        let window_ms = config.meeting.checkpoint_interval_min * 60_000;
        let now = unix_ms();
        for journal in scan_journals(store.active_dir()) {
            if journal.finalize_now(now, window_ms) {
                ::log::info!(
                    "recovering meeting {} of {}",
                    journal.session_id,
                    journal.device_id
                );
                self.finalize_recovered(journal, config);
            } else {
                ::log::info!(
                    "meeting {} of {} waits for its device to resume",
                    journal.session_id,
                    journal.device_id
                );
                self.suspended
                    .lock()
                    .insert(journal.session_id.clone(), journal);
            }
        }
    }

    fn finalize_recovered(&self, journal: RecoveredJournal, config: &Config) {
        self.finalize(FinalizeRequest::from_journal(
            journal,
            Arc::new(config.clone()),
            true,
        ));
    }

    /// Finalizes suspended meetings whose window has passed: the normal path
    /// (LLM summary), nothing sent to devices, archive and webhook as usual.
    /// Re-arms itself on the timer wheel.
    pub fn schedule_sweeps(self: &Arc<Self>, ctx: &Arc<crate::context::ServerContext>) {
        let weak_ctx = Arc::downgrade(ctx);
        ctx.timers.schedule_in(SWEEP_EVERY, move || {
            let Some(ctx) = weak_ctx.upgrade() else {
                return;
            };
            if ctx.shutdown.is_requested() {
                return;
            }
            let config = ctx.config.current();
            ctx.meetings.sweep(&config);
            ctx.meetings.schedule_sweeps(&ctx);
        });
    }

    fn sweep(&self, config: &Arc<Config>) {
        let window_ms = config.meeting.checkpoint_interval_min * 60_000;
        let now = unix_ms();
        let expired: Vec<RecoveredJournal> = {
            let mut suspended = self.suspended.lock();
            let ids: Vec<String> = suspended
                .values()
                .filter(|j| !j.within_window(now, window_ms))
                .map(|j| j.session_id.clone())
                .collect();
            ids.iter().filter_map(|id| suspended.remove(id)).collect()
        };
        for journal in expired {
            ::log::info!(
                "meeting {} was not resumed in time: finalizing",
                journal.session_id
            );
            self.finalize(FinalizeRequest::from_journal(
                journal,
                Arc::clone(config),
                false,
            ));
        }
    }

    /// A running meeting whose device disconnected: kept for a resume.
    pub fn suspend(
        &self,
        session_id: &str,
        device_id: &str,
        started_at: u64,
        segments: Vec<Segment>,
        checkpoint_count: u64,
    ) {
        MEETINGS_ACTIVE.fetch_sub(1, Relaxed);
        let last_record_ts = segments.last().map_or(started_at, |s| s.ts).max(unix_ms());
        self.suspended.lock().insert(
            session_id.to_string(),
            RecoveredJournal {
                session_id: session_id.to_string(),
                device_id: device_id.to_string(),
                started_at,
                segments,
                checkpoint_count,
                finalized: false,
                last_record_ts,
                path: Default::default(),
            },
        );
    }

    /// The newest suspended meeting of `device_id` still inside its window, taken out of waiting.
    pub fn take_resumable(
        &self,
        device_id: &str,
        now_ms: u64,
        window_ms: u64,
    ) -> Option<RecoveredJournal> {
        let mut suspended = self.suspended.lock();
        let id = suspended
            .values()
            .filter(|j| j.device_id == device_id && j.within_window(now_ms, window_ms))
            .max_by_key(|j| j.last_record_ts)
            .map(|j| j.session_id.clone())?;
        let journal = suspended.remove(&id);
        if journal.is_some() {
            MEETINGS_ACTIVE.fetch_add(1, Relaxed);
        }
        journal
    }

    pub fn journal_open(&self, session_id: &str, device_id: &str, started_at: u64) {
        MEETINGS_ACTIVE.fetch_add(1, Relaxed);
        if let Some(journal) = &self.journal
            && let Err(e) = journal.open(session_id, device_id, started_at)
        {
            ::log::error!("meeting {session_id}: journal not opened: {e}");
        }
    }

    /// Resuming appends to the existing journal.
    pub fn journal_reopen(&self, session_id: &str, device_id: &str, started_at: u64) {
        if let Some(journal) = &self.journal
            && let Err(e) = journal.open(session_id, device_id, started_at)
        {
            ::log::error!("meeting {session_id}: journal not reopened: {e}");
        }
    }

    pub fn journal_append(&self, session_id: &str, segment: &Segment) {
        if let Some(journal) = &self.journal
            && let Err(e) = journal.append(session_id, JournalRecord::Segment(segment.clone()))
        {
            ::log::error!("meeting {session_id}: segment not journaled: {e}");
        }
    }

    /// Queues a checkpoint summary of a running meeting and journals the mark.
    pub fn checkpoint(&self, request: FinalizeRequest) {
        if let Some(journal) = &self.journal {
            let _ = journal.append(
                &request.session_id,
                JournalRecord::Checkpoint {
                    ts: unix_ms(),
                    segments: request.segments.len() as u64,
                },
            );
        }
        if let Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) =
            self.jobs.try_send(request)
        {
            ::log::warn!(
                "meeting {}: checkpoint skipped, summary workers busy",
                r.session_id
            );
        }
    }

    /// Queues the summary job; never blocks the caller.
    pub fn finalize(&self, request: FinalizeRequest) {
        if let Some(journal) = &self.journal {
            let _ = journal.append(
                &request.session_id,
                JournalRecord::Finalize {
                    ts: request.ended_at,
                },
            );
        }
        if !request.recovered && request.reply.is_some() {
            MEETINGS_ACTIVE.fetch_sub(1, Relaxed);
        }
        match self.jobs.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) => {
                ::log::error!(
                    "meeting {}: summary queue full; the journal keeps it for recovery",
                    r.session_id
                );
            }
        }
    }

    /// The summary job: progress → summary → final transcript → archive →
    /// webhook → `MeetingFinalized` to the connection.
    fn run_finalize(&self, request: FinalizeRequest) {
        let reply = request.reply.clone();
        let send = |message: Value| {
            if let Some(handle) = &reply {
                handle.send(ConnEvent::SendText(Arc::from(message.to_string())));
            }
        };
        let elapsed = || mono_ns().saturating_sub(request.requested_ns) / 1_000_000;
        if !request.checkpoint {
            send(
                json!({"type": "meeting", "phase": "summary", "progress": "prepare", "elapsedMs": elapsed()}),
            );
        }
        let config = &request.config;
        let client = if request.recovered {
            None
        } else {
            LlmRegistry::global().resolve(config, LlmPurpose::Meeting)
        };
        let input = SummaryInput {
            segments: request.segments.clone(),
            started_at: request.started_at,
            ended_at: request.ended_at,
            min_duration_ms: config.meeting.min_duration_ms,
            checkpoint: request.checkpoint,
        };
        if request.checkpoint {
            let outcome = summarize_with(
                client.as_deref(),
                config,
                &input,
                Instant::now() + Duration::from_secs(60),
                &mut |_| {},
            );
            let mut message =
                json!({"type": "meeting", "phase": "summary", "sessionId": request.session_id});
            if let (Some(object), Ok(Value::Object(fields))) = (
                message.as_object_mut(),
                serde_json::to_value(&outcome.summary),
            ) {
                object.extend(fields);
            }
            message["bulletsLength"] = json!(outcome.summary.bullets.len());
            message["sourceSegments"] = json!(request.segments.len());
            message["checkpoint"] = json!(true);
            send(message);
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let outcome = summarize_with(
            client.as_deref(),
            config,
            &input,
            deadline,
            &mut |progress| match progress {
                SummaryProgress::LlmStart { max_tokens } => send(json!({
                    "type": "meeting", "phase": "summary", "progress": "llm_start",
                    "maxTokens": max_tokens, "elapsedMs": elapsed(),
                })),
                SummaryProgress::LlmDone { .. } => send(json!({
                    "type": "meeting", "phase": "summary", "progress": "llm_done", "elapsedMs": elapsed(),
                })),
            },
        );
        send(
            json!({"type": "meeting", "phase": "summary", "progress": "done", "elapsedMs": elapsed()}),
        );
        let summary = outcome.summary;
        let bullets_length = summary.bullets.len() as u64;
        let mut message =
            json!({"type": "meeting", "phase": "summary", "sessionId": request.session_id});
        if let (Some(object), Ok(Value::Object(fields))) =
            (message.as_object_mut(), serde_json::to_value(&summary))
        {
            object.extend(fields);
        }
        message["bulletsLength"] = json!(bullets_length);
        message["sourceSegments"] = json!(request.segments.len());
        message["checkpoint"] = json!(false);
        send(message.clone());
        crate::modes::broadcast::send_copies(&request.copies, &message, &request.device_id);
        let from = request
            .segments
            .len()
            .saturating_sub(super::state::FINAL_TRANSCRIPT_SEGMENTS);
        send(json!({
            "type": "meeting",
            "phase": "transcript",
            "sessionId": request.session_id,
            "segments": &request.segments[from..],
            "totalSegments": request.segments.len(),
            "final": true,
        }));

        let duration_ms = request
            .ended_at
            .saturating_sub(request.started_at)
            .max(config.meeting.min_duration_ms);
        let record = MeetingRecord {
            session_id: request.session_id.clone(),
            device_id: request.device_id.clone(),
            started_at: request.started_at,
            ended_at: request.ended_at,
            duration_ms,
            bullets_length,
            source_segments: request.segments.len() as u64,
            metrics: MeetingMetrics {
                segments_count: request.segments.len() as u64,
                checkpoint_count: request.checkpoint_count,
                llm_elapsed_ms: outcome.llm_elapsed_ms,
                empty_bullets: bullets_length == 0,
                bullets_length,
                industry: config.meeting.industry.clone(),
                scenario: config.meeting.scenario.clone(),
            },
            summary,
            segments: request.segments,
            recovered: request.recovered,
        };
        let counter = match (request.recovered, outcome.path) {
            (true, _) => &FINALIZED_RECOVERED,
            (false, SummaryPath::Llm) => &FINALIZED_LLM,
            (false, SummaryPath::Fallback) => &FINALIZED_FALLBACK,
        };
        counter.fetch_add(1, Relaxed);
        if let Some(store) = &self.store {
            match store.save(&record) {
                Ok(_) => {
                    // Durable in the archive: the journal has done its job.
                    if let Some(journal) = &self.journal {
                        let _ = journal.close(&record.session_id, true);
                    }
                }
                Err(e) => ::log::error!(
                    "meeting {}: archive write failed ({e}); journal kept",
                    record.session_id
                ),
            }
        }
        self.webhook.deliver(WebhookJob::for_record(&record));
        if let Some(handle) = &reply {
            handle.send(ConnEvent::MeetingFinalized(message));
        }
        ::log::info!(
            "meeting {} finalized ({} segments, {:?} summary, {} ms)",
            record.session_id,
            record.source_segments,
            outcome.path,
            elapsed()
        );
    }

    /// Metrics lines for `/metrics`.
    pub fn render_metrics(out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP huddle_meetings_active Meetings running now.\n# TYPE huddle_meetings_active gauge\nhuddle_meetings_active {}",
            MEETINGS_ACTIVE.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP huddle_meetings_finalized_total Meetings finalized, by summary path.\n# TYPE huddle_meetings_finalized_total counter"
        );
        for (path, counter) in [
            ("llm", &FINALIZED_LLM),
            ("fallback", &FINALIZED_FALLBACK),
            ("recovered", &FINALIZED_RECOVERED),
        ] {
            let _ = writeln!(
                out,
                "huddle_meetings_finalized_total{{path=\"{path}\"}} {}",
                counter.load(Relaxed)
            );
        }
    }
}
