//! Runs coding insights off the connection thread (a bounded pool; the LLM
//! call can take seconds) and delivers them: to the origin, and copies to
//! others per `[meeting.broadcast]` (PROTOCOL.md §3.3 "Broadcast copies").

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use serde_json::{Value, json};

use super::insight::{build, digest};
use super::signals::{Signals, Stats};
use crate::config::Config;
use crate::llm::resolve::{LlmPurpose, LlmRegistry};
use crate::net::handle::{ConnEvent, ConnHandle};

const WORKERS: usize = 2;
const QUEUE: usize = 64;

/// One insight (or the final summary) to compute.
pub struct InsightJob {
    pub signals: Signals,
    pub stats: Stats,
    pub origin: ConnHandle,
    pub config: Arc<Config>,
    /// `insight` while logs come, `summary` after `stop`.
    pub event: &'static str,
    /// Broadcast copies, chosen when the job was queued.
    pub copies: Vec<ConnHandle>,
}

pub struct CodingService {
    jobs: Sender<InsightJob>,
}

impl CodingService {
    pub fn start() -> CodingService {
        let (jobs, queue) = crossbeam_channel::bounded::<InsightJob>(QUEUE);
        for index in 0..WORKERS {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("coding-{index}"))
                .spawn(move || {
                    for job in queue.iter() {
                        run(job);
                    }
                });
            if let Err(e) = spawned {
                ::log::error!("cannot start coding worker {index}: {e}");
            }
        }
        CodingService { jobs }
    }

    /// Queues an insight; a full queue skips it (the next log triggers another).
    pub fn submit(&self, job: InsightJob) {
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) =
            self.jobs.try_send(job)
        {
            ::log::warn!(
                "coding insight for {} skipped: workers busy",
                job.origin.device_id
            );
        }
    }
}

fn run(job: InsightJob) {
    let coding = &job.config.coding;
    let client = LlmRegistry::global().resolve(&job.config, LlmPurpose::Coding);
    let outcome = build(
        client.as_deref(),
        &job.signals,
        &job.stats,
        coding.insight_max_chars,
    );
    let mut message = json!({"type": "coding", "event": job.event});
    if let Some(phase) = &job.stats.last_phase {
        message["phase"] = Value::String(phase.clone());
    }
    if let (Some(object), Ok(Value::Object(fields))) = (
        message.as_object_mut(),
        serde_json::to_value(&outcome.insight),
    ) {
        object.extend(fields);
    }
    message["from"] = Value::String(job.origin.device_id.to_string());
    let text = message.to_string();
    let i = &outcome.insight;
    ::log::info!(
        "coding {} for {}: {} insights, {} risks, {} actions, {} next steps, llm={}, sha256={}, elapsedMs={}",
        job.event,
        job.origin.device_id,
        i.insights.len(),
        i.risks.len(),
        i.actions.len(),
        i.next_steps.len(),
        outcome.llm_used,
        digest(&text),
        outcome.elapsed_ms
    );
    let shared: Arc<str> = Arc::from(text);
    job.origin.send(ConnEvent::SendText(Arc::clone(&shared)));
    for target in &job.copies {
        // A failed send to one target never affects the others.
        target.send(ConnEvent::SendText(Arc::clone(&shared)));
    }
}
