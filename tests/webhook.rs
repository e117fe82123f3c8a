//! Webhook delivery (PROTOCOL.md §6) against a real HTTP receiver on loopback:
//! signature over the received bytes, headers, the delivery id kept across the
//! retry, the retry/fail accounting, timeouts and a receiver that is not there.
//!
//! Counters are process-wide in production. Tests run in parallel, so each
//! sender here gets its own leaked `WebhookCounters` and its numbers are
//! exact; only `real_policy_retries_after_two_to_five_seconds` uses the default
//! options (and so the global `COUNTERS`, which no other test here touches).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::http_receiver::{HttpReceiver, Recorded, Reply, dead_port};
use hmac::{Hmac, KeyInit, Mac};
use huddle::config::WebhookConfig;
use huddle::store::model::{MeetingMetrics, Summary};
use huddle::webhook::{
    COUNTERS, Enqueued, RetryPolicy, SenderOptions, WebhookCounters, WebhookJob, WebhookSender,
    webhook_body,
};
use sha2::Sha256;

const SECRET: &str = "s3cr3t";
/// Long enough for any test here, including a 5 s stall plus its retry.
const SETTLE: Duration = Duration::from_secs(20);

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        min: Duration::from_millis(50),
        max: Duration::from_millis(100),
    }
}

fn own_counters() -> &'static WebhookCounters {
    Box::leak(Box::new(WebhookCounters::new()))
}

fn config(url: String, secret: Option<&str>, headers: &[(&str, &str)]) -> WebhookConfig {
    WebhookConfig {
        url: Some(url),
        secret: secret.map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A sender with fast retries and its own counters.
fn sender(config: &WebhookConfig) -> (WebhookSender, &'static WebhookCounters) {
    let counters = own_counters();
    let sender = WebhookSender::with_options(
        config,
        SenderOptions {
            retry: fast_retry(),
            counters,
            ..SenderOptions::default()
        },
    );
    (sender, counters)
}

fn counts(c: &WebhookCounters) -> (u64, u64, u64) {
    (c.ok(), c.retry_ok(), c.fail())
}

fn job() -> WebhookJob {
    let summary = Summary {
        title: "登录改版周会".into(),
        duration: "00:42:10".into(),
        bullets: vec!["新登录页上线".into()],
        decisions: vec!["周五发布".into()],
        actions: vec!["小王:补测试".into()],
        risks: Vec::new(),
        next_steps: vec!["灰度".into()],
    };
    let metrics = MeetingMetrics {
        segments_count: 58,
        checkpoint_count: 4,
        llm_elapsed_ms: 2870,
        empty_bullets: false,
        bullets_length: 6,
        industry: Some("tech".into()),
        scenario: None,
    };
    let session = uuid::Uuid::new_v4().to_string();
    let body = webhook_body(&session, "94:a9:90:07:9d:88", &summary, &metrics, 2_530_000);
    WebhookJob::new(session, body)
}

/// What the receiver would compute: HMAC-SHA256 of the bytes it actually got.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn assert_same_delivery(a: &Recorded, b: &Recorded) {
    assert_eq!(a.body, b.body, "the retry sends the same bytes");
    for name in [
        "X-Meeting-Delivery",
        "X-Meeting-Signature",
        "Content-Type",
        "User-Agent",
    ] {
        assert_eq!(a.header(name), b.header(name), "{name} on the retry");
    }
}

#[test]
fn signed_delivery_with_all_headers() {
    let receiver = HttpReceiver::start(&[Reply::Status(204)]);
    let config = config(
        receiver.url("/hooks/meeting?tenant=acme"),
        Some(SECRET),
        &[("Authorization", "Bearer abc"), ("X-Tenant", "acme")],
    );
    let (sender, counters) = sender(&config);
    let job = job();
    let (id, body) = (job.delivery_id().to_string(), job.body().to_vec());
    assert_eq!(sender.deliver(job), Enqueued::Queued);
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (1, 0, 0), "any 2xx is success");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/meeting?tenant=acme");
    assert_eq!(r.body, body, "the exact serialized bytes arrive");
    let signature = r.header("X-Meeting-Signature").expect("signature header");
    assert_eq!(signature, expected_signature(SECRET, &r.body));
    assert_eq!(r.header_count("X-Meeting-Signature"), 1);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        r.header("User-Agent"),
        Some(concat!("huddle/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.header_count("User-Agent"), 1);
    let delivery = r.header("X-Meeting-Delivery").expect("delivery header");
    assert_eq!(delivery, id);
    let parsed = uuid::Uuid::parse_str(delivery).expect("delivery id is a UUID");
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(r.header("Authorization"), Some("Bearer abc"));
    assert_eq!(r.header("X-Tenant"), Some("acme"));
    assert_eq!(
        r.header("Content-Length").map(str::to_string),
        Some(r.body.len().to_string())
    );
}

#[test]
fn body_is_compact_json_in_protocol_order() {
    let receiver = HttpReceiver::start(&[]);
    let (sender, counters) = sender(&config(receiver.url("/"), None, &[]));
    sender.deliver(job());
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (1, 0, 0));
    let body = receiver.requests().remove(0).body;
    let text = std::str::from_utf8(&body).expect("UTF-8 body");
    assert!(
        !text.contains('\n') && !text.contains("\": ") && !text.contains(", \""),
        "compact: {text}"
    );
    assert!(text.starts_with("{\"sessionId\":\""), "{text}");
    // Top-level and summary fields in the order §6 shows.
    let order = [
        "\"sessionId\":",
        "\"deviceId\":",
        "\"summary\":{\"title\":",
        "\"duration\":",
        "\"bullets\":",
        "\"decisions\":",
        "\"actions\":",
        "\"risks\":",
        "\"nextSteps\":",
        "\"metrics\":{\"segmentsCount\":",
        "\"durationMs\":2530000}",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| text.find(key).unwrap_or_else(|| panic!("{key} in {text}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    let summary = value["summary"].as_object().expect("summary object");
    assert_eq!(summary.len(), 7, "all seven summary fields");
    assert_eq!(value["summary"]["risks"], serde_json::json!([]));
    assert_eq!(value["deviceId"], "94:a9:90:07:9d:88");
    assert_eq!(value["metrics"]["industry"], "tech");
}

#[test]
fn no_secret_means_no_signature_header() {
    let receiver = HttpReceiver::start(&[Reply::Status(200)]);
    let (sender, counters) = sender(&config(receiver.url("/"), None, &[]));
    sender.deliver(job());
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (1, 0, 0));
    let r = receiver.requests().remove(0);
    assert_eq!(r.header("X-Meeting-Signature"), None);
    assert!(r.header("X-Meeting-Delivery").is_some());
}

#[test]
fn error_then_success_is_retry_ok_with_same_bytes_and_id() {
    let receiver = HttpReceiver::start(&[Reply::Status(500), Reply::Status(200)]);
    let (sender, counters) = sender(&config(receiver.url("/"), Some(SECRET), &[]));
    let job = job();
    let id = job.delivery_id().to_string();
    sender.deliver(job);
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (0, 1, 0));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_same_delivery(&requests[0], &requests[1]);
    assert_eq!(requests[1].header("X-Meeting-Delivery"), Some(id.as_str()));
    assert_eq!(
        requests[1].header("X-Meeting-Signature"),
        Some(expected_signature(SECRET, &requests[1].body).as_str())
    );
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(50),
        "retry delay honored: {gap:?}"
    );
}

#[test]
fn two_failures_count_fail_and_nothing_more() {
    // A 3xx is not a 2xx: no redirect is followed.
    let receiver = HttpReceiver::start(&[Reply::Status(302), Reply::Status(503)]);
    let (sender, counters) = sender(&config(receiver.url("/"), Some(SECRET), &[]));
    sender.deliver(job());
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (0, 0, 1));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "exactly one retry");
    assert_same_delivery(&requests[0], &requests[1]);
}

#[test]
fn closed_connections_count_fail() {
    let receiver = HttpReceiver::start(&[Reply::Close, Reply::Close]);
    let (sender, counters) = sender(&config(receiver.url("/"), None, &[]));
    sender.deliver(job());
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (0, 0, 1));
    assert_eq!(receiver.requests().len(), 2);
}

#[test]
fn dead_receiver_fails_and_deliver_returns_at_once() {
    let url = format!("http://127.0.0.1:{}/hook", dead_port());
    let (sender, counters) = sender(&config(url, Some(SECRET), &[]));
    let started = Instant::now();
    let outcome = sender.deliver(job());
    let took = started.elapsed();
    assert_eq!(outcome, Enqueued::Queued);
    assert!(took < Duration::from_millis(50), "deliver blocked {took:?}");
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (0, 0, 1));
}

#[test]
fn stalled_receiver_times_out_after_five_seconds_then_retry_succeeds() {
    let receiver = HttpReceiver::start(&[Reply::Stall, Reply::Status(200)]);
    let (sender, counters) = sender(&config(receiver.url("/"), Some(SECRET), &[]));
    let started = Instant::now();
    sender.deliver(job());
    assert!(sender.wait_idle(SETTLE));
    let took = started.elapsed();
    assert_eq!(counts(counters), (0, 1, 0));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_same_delivery(&requests[0], &requests[1]);
    // 5 s attempt timeout + 50–100 ms delay (+ slack for a loaded machine).
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(4900) && gap < Duration::from_secs(7),
        "{gap:?}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn real_policy_retries_after_two_to_five_seconds() {
    let receiver = HttpReceiver::start(&[Reply::Status(500), Reply::Status(200)]);
    // Default options: the protocol's 2–5 s policy and the global counters.
    let before = counts(&COUNTERS);
    let sender = WebhookSender::new(&config(receiver.url("/"), Some(SECRET), &[]));
    sender.deliver(job());
    assert!(sender.wait_idle(SETTLE));
    let after = counts(&COUNTERS);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (0, 1, 0)
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_same_delivery(&requests[0], &requests[1]);
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_secs(2) && gap <= Duration::from_millis(5500),
        "retry gap {gap:?} outside [2 s, 5 s + slack]"
    );

    let mut text = String::new();
    huddle::webhook::render(&mut text);
    for result in ["ok", "retry_ok", "fail"] {
        assert!(
            text.contains(&format!(
                "huddle_webhook_deliveries_total{{result=\"{result}\"}} "
            )),
            "{text}"
        );
    }
    assert!(text.contains(&format!(
        "huddle_webhook_deliveries_total{{result=\"retry_ok\"}} {}\n",
        after.1
    )));
}

#[test]
fn full_queue_drops_and_counts_fail_without_blocking() {
    let receiver = HttpReceiver::start(&[Reply::Status(500)]);
    let counters = own_counters();
    let sender = WebhookSender::with_options(
        &config(receiver.url("/"), None, &[]),
        SenderOptions {
            // The one worker sits in the retry delay while the queue fills.
            retry: RetryPolicy {
                min: Duration::from_millis(800),
                max: Duration::from_millis(800),
            },
            queue_capacity: 1,
            workers: 1,
            counters,
            ..SenderOptions::default()
        },
    );
    assert_eq!(sender.deliver(job()), Enqueued::Queued);
    // The worker has taken job 1 off the queue once its first attempt arrived.
    assert_eq!(receiver.wait_requests(1, SETTLE).len(), 1);
    let started = Instant::now();
    assert_eq!(sender.deliver(job()), Enqueued::Queued);
    assert_eq!(sender.deliver(job()), Enqueued::Dropped);
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(counters.fail(), 1, "the drop counts at once");
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (1, 1, 1));
    assert_eq!(receiver.requests().len(), 3);
}

#[test]
fn unset_or_removed_url_sends_nothing() {
    let receiver = HttpReceiver::start(&[]);
    let (sender, counters) = sender(&WebhookConfig::default());
    assert!(!sender.enabled());
    assert_eq!(sender.deliver(job()), Enqueued::Disabled);

    sender.reconfigure(&config(receiver.url("/"), None, &[]));
    assert!(sender.enabled());
    assert_eq!(sender.deliver(job()), Enqueued::Queued);
    assert!(sender.wait_idle(SETTLE));

    sender.reconfigure(&WebhookConfig::default());
    assert_eq!(sender.deliver(job()), Enqueued::Disabled);
    assert!(sender.wait_idle(SETTLE));
    assert_eq!(counts(counters), (1, 0, 0));
    assert_eq!(receiver.requests().len(), 1);
}
