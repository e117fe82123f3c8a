//! The ASR stage: an [`UtteranceSink`] that queues each utterance for a small
//! pool of ASR threads, so recognition never runs on a connection thread and
//! never stalls the audio workers' VAD.
//!
//! # Contract
//! - **Bounded**: at most [`QUEUE_PER_THREAD`] waiting utterances per thread;
//!   beyond that an utterance is refused (counted) and its device is told its
//!   turn is over, rather than waiting for minutes.
//! - **One session per utterance**, closed as soon as its text is out.
//! - **Backoff**: after consecutive failures the engine is left alone for a
//!   growing pause (1 s doubling to 30 s); utterances in that pause fail fast.
//! - **In order per device**: a connection's utterances always go to the same
//!   thread, so its texts come back in the order they were spoken; different
//!   devices are recognized in parallel.
//! - Results go back through the connection's inbox: [`ConnEvent::Transcript`]
//!   or [`ConnEvent::AsrFailed`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use super::engine::{AsrEngine, AsrError};
use super::stats::ASR_STATS;
use super::text;
use crate::audio::stats::mono_ns;
use crate::audio::utterance::{Utterance, UtteranceSink};
use crate::net::handle::{ConnEvent, Transcript};

pub const QUEUE_PER_THREAD: usize = 16;
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

struct Job {
    utterance: Utterance,
    /// When the segmenter cut the utterance: the start of the latency clock.
    cut_ns: u64,
}

/// Consecutive failures and the pause they earned.
#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

impl Backoff {
    fn blocked(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    fn failed(&mut self, now: Instant) -> Duration {
        self.failures += 1;
        let pause = BACKOFF_START
            .saturating_mul(1 << (self.failures - 1).min(5))
            .min(BACKOFF_MAX);
        self.until = Some(now + pause);
        pause
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
    }
}

pub struct AsrStage {
    /// One queue per thread; a connection's jobs always take the same one.
    queues: Vec<Sender<Job>>,
    engine_name: &'static str,
}

impl AsrStage {
    /// Starts `engine.concurrency()` threads named `asr-N`.
    pub fn start(engine: Arc<dyn AsrEngine>) -> std::io::Result<AsrStage> {
        let threads = engine.concurrency().max(1);
        let backoff = Arc::new(Mutex::new(Backoff::default()));
        let mut queues = Vec::with_capacity(threads);
        for index in 0..threads {
            let (jobs, queue): (Sender<Job>, Receiver<Job>) =
                crossbeam_channel::bounded(QUEUE_PER_THREAD);
            queues.push(jobs);
            let engine = Arc::clone(&engine);
            let backoff = Arc::clone(&backoff);
            std::thread::Builder::new()
                .name(format!("asr-{index}"))
                .spawn(move || {
                    // Ends when the stage (the only sender) is dropped.
                    for job in queue.iter() {
                        run_job(engine.as_ref(), &backoff, job);
                    }
                })?;
        }
        ::log::info!("ASR engine {} with {threads} threads", engine.name());
        Ok(AsrStage {
            queues,
            engine_name: engine.name(),
        })
    }
}

impl UtteranceSink for AsrStage {
    fn deliver(&self, utterance: Utterance) {
        if utterance.voiced_ms == 0 {
            // A push-to-talk press with no voice in it: nothing to recognize,
            // but the device still waits for its turn to end.
            utterance.reply.send(ConnEvent::Transcript(Transcript {
                text: String::new(),
                started_at_unix_ms: utterance.started_at_unix_ms,
            }));
            return;
        }
        let job = Job {
            utterance,
            cut_ns: mono_ns(),
        };
        let queue = &self.queues[(job.utterance.conn_id as usize) % self.queues.len()];
        match queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                ASR_STATS.refused.fetch_add(1, Relaxed);
                ::log::warn!(
                    "ASR {} queue full: utterance from {} dropped",
                    self.engine_name,
                    job.utterance.device_id
                );
                job.utterance.reply.send(ConnEvent::AsrFailed(
                    "recognition is overloaded".to_string(),
                ));
            }
        }
    }
}

fn run_job(engine: &dyn AsrEngine, backoff: &Mutex<Backoff>, job: Job) {
    let utterance = job.utterance;
    let now = Instant::now();
    if backoff.lock().blocked(now) {
        ASR_STATS.refused.fetch_add(1, Relaxed);
        utterance.reply.send(ConnEvent::AsrFailed(format!(
            "{} is backing off after failures",
            engine.name()
        )));
        return;
    }
    let deadline = now + engine.timeout();
    ASR_STATS.sessions_total.fetch_add(1, Relaxed);
    ASR_STATS.sessions_active.fetch_add(1, Relaxed);
    let result = engine.open().and_then(|mut session| {
        session.feed(&utterance.pcm)?;
        session.finish(deadline)
        // The session drops here: its upstream resources close with it.
    });
    ASR_STATS.sessions_active.fetch_sub(1, Relaxed);
    match result {
        Ok(raw) => {
            backoff.lock().succeeded();
            ASR_STATS.utterances.fetch_add(1, Relaxed);
            let latency_us = mono_ns().saturating_sub(job.cut_ns) / 1_000;
            ASR_STATS.latency.observe_us(latency_us);
            let cleaned = text::clean(&raw);
            ::log::info!(
                "ASR {} for {}: {} chars in {} ms after end of speech",
                engine.name(),
                utterance.device_id,
                cleaned.chars().count(),
                latency_us / 1_000
            );
            utterance.reply.send(ConnEvent::Transcript(Transcript {
                text: cleaned,
                started_at_unix_ms: utterance.started_at_unix_ms,
            }));
        }
        Err(error) => {
            ASR_STATS.errors.fetch_add(1, Relaxed);
            let pause = backoff.lock().failed(Instant::now());
            ::log::warn!(
                "ASR {} failed for {}: {error}; pausing the engine for {} ms",
                engine.name(),
                utterance.device_id,
                pause.as_millis()
            );
            utterance
                .reply
                .send(ConnEvent::AsrFailed(error.to_string()));
        }
    }
}

impl From<std::io::Error> for AsrError {
    fn from(e: std::io::Error) -> Self {
        AsrError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_and_resets() {
        let mut b = Backoff::default();
        let t = Instant::now();
        assert!(!b.blocked(t));
        assert_eq!(b.failed(t), Duration::from_secs(1));
        assert!(b.blocked(t + Duration::from_millis(999)));
        assert!(!b.blocked(t + Duration::from_secs(1)));
        assert_eq!(b.failed(t), Duration::from_secs(2));
        assert_eq!(b.failed(t), Duration::from_secs(4));
        for _ in 0..10 {
            b.failed(t);
        }
        assert_eq!(b.failed(t), BACKOFF_MAX);
        b.succeeded();
        assert!(!b.blocked(t));
    }
}
