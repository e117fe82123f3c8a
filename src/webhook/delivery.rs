//! The background webhook sender (PROTOCOL.md §6).
//!
//! [`WebhookSender::deliver`] only puts the job on a small bounded queue
//! (`try_send`), so finalize is never delayed: a full queue drops the job and
//! counts it as `fail`. Worker threads POST the exact body bytes; success is
//! any 2xx within 5 s, otherwise one retry after a random 2–5 s delay with the
//! same bytes and headers (including `X-Meeting-Delivery`). The outcome is
//! counted as `ok`, `retry_ok` or `fail` and logged with the body length and
//! the first 8 hex digits of SHA-256(body), never the body or the secret.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex, RwLock};

use super::payload::record_body;
use super::sign::{body_digest_prefix, signature};
use crate::config::WebhookConfig;
use crate::store::model::MeetingRecord;

/// Headers the sender sets itself; configured extra headers may not name them.
pub const PROTOCOL_HEADERS: [&str; 4] = [
    "content-type",
    "user-agent",
    "x-meeting-delivery",
    "x-meeting-signature",
];

const USER_AGENT: &str = concat!("huddle/", env!("CARGO_PKG_VERSION"));

/// Delivery outcomes. The sender bumps one of these per job it accepted or
/// dropped; nothing is counted while no URL is configured.
pub struct WebhookCounters {
    ok: AtomicU64,
    retry_ok: AtomicU64,
    fail: AtomicU64,
}

/// The process-wide counters `/metrics` shows. Senders count here unless
/// [`SenderOptions::counters`] names another instance (tests give each sender
/// its own, so parallel tests can assert exact numbers).
pub static COUNTERS: WebhookCounters = WebhookCounters::new();

/// Renders [`COUNTERS`] for `GET /metrics`.
pub fn render(out: &mut String) {
    COUNTERS.render(out);
}

impl WebhookCounters {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        WebhookCounters {
            ok: AtomicU64::new(0),
            retry_ok: AtomicU64::new(0),
            fail: AtomicU64::new(0),
        }
    }

    /// Delivered on the first attempt.
    pub fn ok(&self) -> u64 {
        self.ok.load(Relaxed)
    }

    /// Delivered on the retry.
    pub fn retry_ok(&self) -> u64 {
        self.retry_ok.load(Relaxed)
    }

    /// Both attempts failed, or the job never got onto the queue.
    pub fn fail(&self) -> u64 {
        self.fail.load(Relaxed)
    }

    /// `huddle_webhook_deliveries_total{result="ok|retry_ok|fail"}` as Prometheus text.
    pub fn render(&self, out: &mut String) {
        let name = "huddle_webhook_deliveries_total";
        let _ = writeln!(
            out,
            "# HELP {name} Webhook deliveries by outcome.\n# TYPE {name} counter"
        );
        for (result, value) in [
            ("ok", self.ok()),
            ("retry_ok", self.retry_ok()),
            ("fail", self.fail()),
        ] {
            let _ = writeln!(out, "{name}{{result=\"{result}\"}} {value}");
        }
    }
}

/// How long to wait before the single retry: uniformly random in `[min, max]`.
/// The randomness spreads retries of many meetings that failed together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// PROTOCOL.md §6: 2–5 s.
    pub const PROTOCOL: RetryPolicy = RetryPolicy {
        min: Duration::from_secs(2),
        max: Duration::from_secs(5),
    };

    /// One random delay in `[min, max]` (`min` when the range is empty or inverted).
    pub fn delay(&self) -> Duration {
        let span = self.max.saturating_sub(self.min).as_nanos();
        if span == 0 {
            return self.min;
        }
        // UUIDv4 bits come from the OS RNG; jitter needs nothing better, and
        // this spares a dependency on `rand`.
        let random = uuid::Uuid::new_v4().as_u128();
        let offset = random % (span + 1);
        self.min + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::PROTOCOL
    }
}

/// Tunables of a [`WebhookSender`]; [`Default`] is the protocol's behavior.
#[derive(Clone, Copy)]
pub struct SenderOptions {
    pub retry: RetryPolicy,
    /// Per attempt, connect to last response byte: PROTOCOL.md §6 says 5 s.
    pub attempt_timeout: Duration,
    /// Jobs waiting for a worker; beyond this `deliver` drops (and counts `fail`).
    pub queue_capacity: usize,
    /// Worker threads; each handles one delivery (both attempts) at a time.
    pub workers: usize,
    pub counters: &'static WebhookCounters,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            retry: RetryPolicy::PROTOCOL,
            attempt_timeout: Duration::from_secs(5),
            // Meetings end minutes apart; 32 covers a burst of many badges
            // ending together while the receiver is slow.
            queue_capacity: 32,
            // Two, so one stalled receiver (up to ~15 s per job) does not hold
            // every later delivery behind it alone.
            workers: 2,
            counters: &COUNTERS,
        }
    }
}

/// One delivery: the body bytes (serialized once) and the delivery id, both
/// fixed at creation so the retry repeats them exactly.
#[derive(Clone, Debug)]
pub struct WebhookJob {
    session_id: String,
    delivery_id: String,
    body: Vec<u8>,
}

impl WebhookJob {
    /// A job for `body` (see [`super::webhook_body`]) with a fresh UUIDv4 delivery id.
    pub fn new(session_id: impl Into<String>, body: Vec<u8>) -> Self {
        WebhookJob {
            session_id: session_id.into(),
            delivery_id: uuid::Uuid::new_v4().to_string(),
            body,
        }
    }

    /// The job of a finalized meeting.
    pub fn for_record(record: &MeetingRecord) -> Self {
        WebhookJob::new(record.session_id.clone(), record_body(record))
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// `X-Meeting-Delivery`.
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What [`WebhookSender::deliver`] did with a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// On the queue; the outcome will be counted and logged.
    Queued,
    /// No `meeting.webhook.url`: nothing sent, nothing counted.
    Disabled,
    /// Queue full (or no worker alive): dropped, counted as `fail`.
    Dropped,
}

/// Where deliveries go, as configured when the job was handed over.
struct Target {
    url: String,
    secret: Option<String>,
    headers: Vec<(String, String)>,
}

impl Target {
    fn from_config(config: &WebhookConfig) -> Option<Target> {
        let url = config.url.clone()?;
        let headers = config
            .headers
            .iter()
            .filter(|(name, _)| {
                // Config validation rejects these; skipping them here keeps a
                // bypassed validation from sending a second, conflicting value.
                let reserved = PROTOCOL_HEADERS
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name));
                if reserved {
                    ::log::warn!("webhook: ignoring extra header {name}: the protocol sets it");
                }
                !reserved
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Target {
            url,
            secret: config.secret.clone(),
            headers,
        })
    }

    /// `scheme://host[:port]` without userinfo, path or query, which may hold tokens.
    fn log_name(&self) -> &str {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        let end = self.url[after_scheme..]
            .find(['/', '?', '#'])
            .map_or(self.url.len(), |i| after_scheme + i);
        let authority = &self.url[after_scheme..end];
        match authority.rfind('@') {
            Some(at) => &authority[at + 1..],
            None => authority,
        }
    }
}

/// Jobs accepted but not finished, so shutdown and tests can wait for them.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock() += 1;
    }

    fn done(&self) {
        let mut count = self.count.lock();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.idle.notify_all();
        }
    }
}

/// The webhook sender: cheap to call from finalize, owns its worker threads.
/// Dropping it closes the queue; workers finish the jobs already queued and
/// exit (they are not joined, so dropping never blocks).
pub struct WebhookSender {
    target: RwLock<Option<Arc<Target>>>,
    queue: Sender<(WebhookJob, Arc<Target>)>,
    pending: Arc<Pending>,
    counters: &'static WebhookCounters,
}

impl WebhookSender {
    /// A sender with the protocol's timing, counting into [`COUNTERS`].
    pub fn new(config: &WebhookConfig) -> Self {
        WebhookSender::with_options(config, SenderOptions::default())
    }

    pub fn with_options(config: &WebhookConfig, options: SenderOptions) -> Self {
        let (queue, jobs) = crossbeam_channel::bounded(options.queue_capacity.max(1));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(options.attempt_timeout))
            // Any status is an answer to judge (2xx or not), not an error.
            .http_status_as_error(false)
            // A redirect would turn the POST into a GET without the signed
            // body; a 3xx is simply not a 2xx.
            .max_redirects(0)
            // Deliveries are minutes apart, so a pooled connection would
            // usually be stale by then and cost a needless 2–5 s retry.
            .max_idle_connections(0)
            .user_agent(USER_AGENT)
            .build()
            .into();
        let pending = Arc::new(Pending::default());
        let mut started = 0;
        for index in 0..options.workers.max(1) {
            let worker = Worker {
                jobs: jobs.clone(),
                agent: agent.clone(),
                retry: options.retry,
                timeout: options.attempt_timeout,
                counters: options.counters,
                pending: Arc::clone(&pending),
            };
            match std::thread::Builder::new()
                .name(format!("webhook-{index}"))
                .spawn(move || worker.run())
            {
                Ok(_) => started += 1,
                Err(e) => ::log::error!("webhook: cannot start worker thread: {e}"),
            }
        }
        if started == 0 {
            // `jobs` drops below, so every deliver() sees a closed queue and counts `fail`.
            ::log::error!("webhook: no worker thread; deliveries will fail");
        }
        WebhookSender {
            target: RwLock::new(Target::from_config(config).map(Arc::new)),
            queue,
            pending,
            counters: options.counters,
        }
    }

    /// Applies a reloaded `[meeting.webhook]`; jobs already queued keep the
    /// target they were handed over with.
    pub fn reconfigure(&self, config: &WebhookConfig) {
        *self.target.write() = Target::from_config(config).map(Arc::new);
    }

    /// Whether a URL is configured.
    pub fn enabled(&self) -> bool {
        self.target.read().is_some()
    }

    /// Hands a job to the workers without blocking.
    pub fn deliver(&self, job: WebhookJob) -> Enqueued {
        let Some(target) = self.target.read().clone() else {
            return Enqueued::Disabled;
        };
        let len = job.body.len();
        let digest = body_digest_prefix(&job.body);
        let delivery = job.delivery_id.clone();
        let session = job.session_id.clone();
        self.pending.add();
        match self.queue.try_send((job, target)) {
            Ok(()) => {
                ::log::debug!(
                    "webhook {delivery} for meeting {session}: queued ({len} bytes, sha256 {digest})"
                );
                Enqueued::Queued
            }
            Err(e) => {
                self.pending.done();
                self.counters.fail.fetch_add(1, Relaxed);
                let why = match e {
                    TrySendError::Full(_) => "queue full",
                    TrySendError::Disconnected(_) => "no worker running",
                };
                ::log::error!(
                    "webhook {delivery} for meeting {session}: dropped, {why} ({len} bytes, sha256 {digest})"
                );
                Enqueued::Dropped
            }
        }
    }

    /// Waits until every accepted job has finished (delivered or failed);
    /// false when `timeout` passed first.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.pending.count.lock();
        while *count > 0 {
            if self
                .pending
                .idle
                .wait_until(&mut count, deadline)
                .timed_out()
            {
                return *count == 0;
            }
        }
        true
    }
}

struct Worker {
    jobs: Receiver<(WebhookJob, Arc<Target>)>,
    agent: ureq::Agent,
    retry: RetryPolicy,
    /// Per attempt (only for the log line; the agent enforces it).
    timeout: Duration,
    counters: &'static WebhookCounters,
    pending: Arc<Pending>,
}

impl Worker {
    fn run(self) {
        // Ends when the sender is dropped and the queue is drained.
        for (job, target) in self.jobs.iter() {
            self.deliver(&job, &target);
            self.pending.done();
        }
    }

    fn deliver(&self, job: &WebhookJob, target: &Target) {
        // Computed once: the retry sends the same signature over the same bytes.
        let signature = target.secret.as_deref().map(|s| signature(s, &job.body));
        let len = job.body.len();
        let digest = body_digest_prefix(&job.body);
        let (id, session, host) = (&job.delivery_id, &job.session_id, target.log_name());
        let first = match self.attempt(job, target, signature.as_deref()) {
            Ok(status) => {
                self.counters.ok.fetch_add(1, Relaxed);
                ::log::info!(
                    "webhook {id} for meeting {session}: delivered to {host} (HTTP {status}, {len} bytes, sha256 {digest})"
                );
                return;
            }
            Err(why) => why,
        };
        let delay = self.retry.delay();
        ::log::warn!(
            "webhook {id} for meeting {session}: attempt 1 to {host} failed ({first}); retrying in {} ms ({len} bytes, sha256 {digest})",
            delay.as_millis()
        );
        std::thread::sleep(delay);
        match self.attempt(job, target, signature.as_deref()) {
            Ok(status) => {
                self.counters.retry_ok.fetch_add(1, Relaxed);
                ::log::info!(
                    "webhook {id} for meeting {session}: delivered to {host} on retry (HTTP {status}, {len} bytes, sha256 {digest})"
                );
            }
            Err(second) => {
                self.counters.fail.fetch_add(1, Relaxed);
                ::log::error!(
                    "webhook {id} for meeting {session}: delivery to {host} failed twice ({first}; then {second}); giving up ({len} bytes, sha256 {digest})"
                );
            }
        }
    }

    /// One POST; `Ok(status)` for a 2xx within the attempt timeout.
    fn attempt(
        &self,
        job: &WebhookJob,
        target: &Target,
        signature: Option<&str>,
    ) -> Result<u16, String> {
        let mut request = self
            .agent
            .post(&target.url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("User-Agent", USER_AGENT)
            .header("X-Meeting-Delivery", &job.delivery_id);
        if let Some(signature) = signature {
            request = request.header("X-Meeting-Signature", signature);
        }
        for (name, value) in &target.headers {
            request = request.header(name, value);
        }
        // The status line is the answer; the receiver's body is not read
        // (it is irrelevant, and reading it could only add delay).
        match request.send(&job.body[..]) {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    Ok(status)
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
            Err(ureq::Error::Timeout(_)) => {
                Err(format!("no answer within {} ms", self.timeout.as_millis()))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_stays_in_range() {
        let policy = RetryPolicy::PROTOCOL;
        for _ in 0..1000 {
            let d = policy.delay();
            assert!(d >= policy.min && d <= policy.max, "{d:?}");
        }
        let fixed = RetryPolicy {
            min: Duration::from_millis(7),
            max: Duration::from_millis(7),
        };
        assert_eq!(fixed.delay(), Duration::from_millis(7));
        let inverted = RetryPolicy {
            min: Duration::from_millis(9),
            max: Duration::from_millis(3),
        };
        assert_eq!(inverted.delay(), Duration::from_millis(9));
    }

    #[test]
    fn renders_the_three_results() {
        let counters = WebhookCounters::new();
        counters.ok.fetch_add(3, Relaxed);
        counters.fail.fetch_add(1, Relaxed);
        let mut out = String::new();
        counters.render(&mut out);
        assert!(out.contains("# TYPE huddle_webhook_deliveries_total counter\n"));
        assert!(out.contains("huddle_webhook_deliveries_total{result=\"ok\"} 3\n"));
        assert!(out.contains("huddle_webhook_deliveries_total{result=\"retry_ok\"} 0\n"));
        assert!(out.contains("huddle_webhook_deliveries_total{result=\"fail\"} 1\n"));
    }

    #[test]
    fn log_name_hides_credentials_path_and_query() {
        let target = |url: &str| Target {
            url: url.to_string(),
            secret: None,
            headers: Vec::new(),
        };
        assert_eq!(
            target("https://user:pw@hooks.example.com:8443/x?token=abc").log_name(),
            "hooks.example.com:8443"
        );
        assert_eq!(target("http://127.0.0.1:9/hook").log_name(), "127.0.0.1:9");
        assert_eq!(target("http://example.com").log_name(), "example.com");
    }

    #[test]
    fn unset_url_sends_and_counts_nothing() {
        static OWN: WebhookCounters = WebhookCounters::new();
        let sender = WebhookSender::with_options(
            &WebhookConfig::default(),
            SenderOptions {
                counters: &OWN,
                ..SenderOptions::default()
            },
        );
        assert!(!sender.enabled());
        assert_eq!(
            sender.deliver(WebhookJob::new("s", b"{}".to_vec())),
            Enqueued::Disabled
        );
        assert!(sender.wait_idle(Duration::from_millis(10)));
        assert_eq!((OWN.ok(), OWN.retry_ok(), OWN.fail()), (0, 0, 0));
    }

    #[test]
    fn reserved_extra_headers_are_skipped() {
        let mut config = WebhookConfig {
            url: Some("http://127.0.0.1:9/".into()),
            ..WebhookConfig::default()
        };
        config
            .headers
            .insert("x-meeting-signature".into(), "forged".into());
        config
            .headers
            .insert("Authorization".into(), "Bearer t".into());
        let target = Target::from_config(&config).unwrap();
        assert_eq!(
            target.headers,
            vec![("Authorization".to_string(), "Bearer t".to_string())]
        );
    }
}
