//! Integration tests of the connection and process lifecycle against the real
//! binary: the idle deadline and its warnings (PROTOCOL.md §3.8), admin
//! `update_config` and SIGHUP reloads (§3.7, §7), graceful shutdown on
//! SIGTERM/SIGINT, the command line (`check-config`, `serve`, `--version`,
//! `HUDDLE_CONFIG`, busy port; §1.1, §7) and the 1 MiB WebSocket message cap.
//!
//! The idle tests use the shortest legal deadline (30 s), so they take 40–65 s
//! each; timings are asserted to ± [`TOLERANCE_S`].

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Device, Received, SHORT, Server};
use serde_json::{Value, json};

/// Allowed deviation of an idle event from its due time.
const TOLERANCE_S: f64 = 1.5;

/// The shortest legal idle deadline: warning at 25 s, final warning at 30 s, close at 40 s.
const SHORT_IDLE: &str = "[idle]\nidle_timeout_s = 30\nidle_buffer_s = 0\nwarning_s = 5\n";

fn warning() -> Value {
    json!({"type":"system","event":"timeout_warning","secondsLeft":5})
}

fn final_warning() -> Value {
    json!({"type":"system","event":"timeout_warning","secondsLeft":10,"final":true})
}

fn is_stats(v: &Value) -> bool {
    v["type"] == "server" && v["event"] == "stats"
}

/// Next frame that is not a `stats` broadcast (those are counted in `stats`).
fn next_non_stats(device: &mut Device, timeout: Duration, stats: &mut u32) -> Received {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match device.next(left) {
            Received::Json(v) if is_stats(&v) => *stats += 1,
            other => return other,
        }
    }
}

/// Seconds since `start`, asserted to be `expected` ± [`TOLERANCE_S`].
fn assert_at(start: Instant, expected: f64, what: &str) {
    let t = start.elapsed().as_secs_f64();
    assert!(
        (t - expected).abs() <= TOLERANCE_S,
        "{what} at {t:.2} s, expected {expected} s ± {TOLERANCE_S}"
    );
}

/// Expects exactly `expected` as the next non-stats message, at `at` s after `start`.
fn expect_event_at(device: &mut Device, start: Instant, at: f64, expected: &Value) {
    let until = Duration::from_secs_f64(at + TOLERANCE_S + 0.5).saturating_sub(start.elapsed());
    let mut stats = 0;
    match next_non_stats(device, until, &mut stats) {
        Received::Json(v) => assert_eq!(&v, expected),
        other => panic!(
            "expected {expected} at {at} s, got {other:?} at {:.2} s",
            start.elapsed().as_secs_f64()
        ),
    }
    assert_at(start, at, &expected.to_string());
}

/// Asserts that nothing but `stats` arrives (and the connection stays open) until `until` s after `start`.
fn expect_quiet_until(device: &mut Device, start: Instant, until: f64) {
    let left = Duration::from_secs_f64(until).saturating_sub(start.elapsed());
    let mut stats = 0;
    match next_non_stats(device, left, &mut stats) {
        Received::Timeout => {}
        other => panic!(
            "expected silence until {until} s, got {other:?} at {:.2} s",
            start.elapsed().as_secs_f64()
        ),
    }
}

fn ping(device: &mut Device) {
    device.send_json(json!({"type":"ping"}));
    assert_eq!(device.recv(SHORT), json!({"type":"pong"}));
}

/// Arrival times of the next `n` stats broadcasts; any other message fails the test.
fn stats_times(device: &mut Device, n: usize, timeout: Duration) -> Vec<Instant> {
    let deadline = Instant::now() + timeout;
    let mut times = Vec::new();
    while times.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match device.next(left) {
            Received::Json(v) if is_stats(&v) => times.push(Instant::now()),
            other => panic!("waiting for stats #{}: got {other:?}", times.len() + 1),
        }
    }
    times
}

/// Waits for one stats broadcast (the timer cycle armed before a reload), then
/// asserts that the next `gaps` intervals are each `expected_s` ± 0.6 s.
fn assert_stats_period(device: &mut Device, expected_s: f64, gaps: usize, first_within: Duration) {
    // Drop what is already buffered, so the first stats read is a fresh arrival.
    loop {
        match device.next(Duration::from_millis(50)) {
            Received::Json(v) if is_stats(&v) => continue,
            Received::Timeout => break,
            other => panic!("expected only stats, got {other:?}"),
        }
    }
    stats_times(device, 1, first_within);
    let per_gap = Duration::from_secs_f64(expected_s + 2.0);
    let mut last = Instant::now();
    for i in 0..gaps {
        let at = stats_times(device, 1, per_gap)[0];
        let gap = at.duration_since(last).as_secs_f64();
        assert!(
            (gap - expected_s).abs() <= 0.6,
            "stats gap #{i} was {gap:.2} s, expected {expected_s} s"
        );
        last = at;
    }
}

// ---------------------------------------------------------------- idle (§3.8)

#[test]
fn idle_connection_is_warned_then_closed_and_counted() {
    let server = Server::start_with("stats_interval_s = 5", SHORT_IDLE);
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let start = Instant::now();
    ping(&mut device);

    let mut stats = 0;
    let first = next_non_stats(&mut device, Duration::from_secs(27), &mut stats);
    assert_at(start, 25.0, "first warning");
    match first {
        Received::Json(v) => assert_eq!(v, warning()),
        other => panic!("expected the first warning, got {other:?}"),
    }
    let second = next_non_stats(&mut device, Duration::from_secs(7), &mut stats);
    assert_at(start, 30.0, "final warning");
    match second {
        Received::Json(v) => assert_eq!(v, final_warning()),
        other => panic!("expected the final warning, got {other:?}"),
    }
    let closed = next_non_stats(&mut device, Duration::from_secs(12), &mut stats);
    assert_at(start, 40.0, "idle close");
    let _ = device.ws.flush();
    match closed {
        Received::Closed(Some((code, reason))) => {
            assert_eq!((code, reason.as_str()), (1000, "idle timeout"))
        }
        other => panic!("expected close 1000 \"idle timeout\", got {other:?}"),
    }
    // Stats flowed every 5 s all along and did not count as activity.
    assert!(stats >= 6, "only {stats} stats broadcasts in 40 s");

    assert!(server.wait_log("idle: closing", SHORT));
    let metrics = server.http("GET", "/metrics", &[], "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.trim() == "huddle_idle_closes_total 1"),
        "metrics lack `huddle_idle_closes_total 1`:\n{}",
        metrics.body
    );
}

/// Activity moves the deadline, and activity during the last-chance wait
/// cancels the close and starts a new idle period. (The reset ping is at 10 s
/// rather than 20 s to keep the test near 65 s.)
#[test]
fn text_messages_reset_the_idle_deadline_even_in_the_last_chance_wait() {
    let server = Server::start_with("stats_interval_s = 5", SHORT_IDLE);
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let start = Instant::now();
    ping(&mut device);

    expect_quiet_until(&mut device, start, 10.0);
    ping(&mut device);
    // Not at 25 s: the deadline is now 10 + 30 s.
    expect_event_at(&mut device, start, 35.0, &warning());
    expect_event_at(&mut device, start, 40.0, &final_warning());

    // Activity in the 10 s last-chance wait: no close at 50 s.
    let rescued = Instant::now();
    ping(&mut device);
    expect_quiet_until(&mut device, rescued, 12.0);
    // A new idle period began at the rescuing ping: its warning comes 25 s later.
    expect_event_at(&mut device, rescued, 25.0, &warning());
    device.send_json(json!({"type":"ping"}));
    assert_eq!(device.recv(SHORT), json!({"type":"pong"}));
    assert!(
        !server.log().contains("idle: closing"),
        "the rescued connection was closed"
    );
}

#[test]
fn working_mode_multiplies_the_idle_deadline() {
    let server = Server::start_with(
        "stats_interval_s = 5",
        &format!("{SHORT_IDLE}mode_multiplier = 2\n"),
    );
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let start = Instant::now();
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    // The board came on registration < 1.5 s ago, so the start is debounced
    // to the ack (then listen start).
    assert_eq!(
        device.recv(SHORT),
        json!({"type":"mode","status":"ok","state":"start","mode":"working"})
    );
    // §3.2 also sends a listen start after the ack; tolerate it.
    let deadline = start + Duration::from_secs(57);
    let mut stats = 0;
    let first = loop {
        match next_non_stats(
            &mut device,
            deadline.saturating_duration_since(Instant::now()),
            &mut stats,
        ) {
            Received::Json(v) if v["type"] == "listen" => {
                assert_eq!(v, json!({"type":"listen","state":"start","mode":"manual"}))
            }
            other => break other,
        }
    };
    // Deadline 2 × 30 s: nothing at 25 s, the warning at 55 s.
    match first {
        Received::Json(v) => assert_eq!(v, warning()),
        other => panic!("expected the warning at 55 s, got {other:?}"),
    }
    assert_at(start, 55.0, "first warning in working mode");
    expect_event_at(&mut device, start, 60.0, &final_warning());
}

// ------------------------------------------------------ update_config (§3.7)

const ADMIN_SECRET: &str = "admin_secret = \"s3cr3t\"\nstats_interval_s = 5";

fn update_config(device: &mut Device, secret: &str, config: Value) -> Value {
    device.send_json(json!({
        "type": "server", "action": "update_config",
        "content": {"secret": secret, "config": config}
    }));
    device.recv(SHORT)
}

/// Asserts an admin error reply and returns its message.
fn assert_admin_error(reply: &Value, action: &str, code: &str) -> String {
    assert_eq!(reply["type"], "server", "{reply}");
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["code"], code, "{reply}");
    assert_eq!(reply["content"], json!({"action": action}), "{reply}");
    reply["message"].as_str().expect("message").to_string()
}

#[test]
fn update_config_accepts_validates_and_takes_effect() {
    let server = Server::start_with(ADMIN_SECRET, "");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);

    let ok = update_config(
        &mut device,
        "s3cr3t",
        json!({"meeting":{"transcript_push_interval_ms":8000}}),
    );
    assert_eq!(
        ok,
        json!({"type":"server","status":"success","message":"config updated","content":{"action":"update_config"}})
    );
    assert!(server.wait_log("config updated by admin message", SHORT));

    // Out of range, bundled with a valid change that must not apply either.
    let reply = update_config(
        &mut device,
        "s3cr3t",
        json!({"server":{"stats_interval_s":1},"meeting":{"transcript_push_interval_ms":20000}}),
    );
    let message = assert_admin_error(&reply, "update_config", "SCHEMA_INVALID");
    assert!(
        message.contains("meeting.transcript_push_interval_ms")
            && message.contains("20000")
            && message.contains("3000..=15000"),
        "{message}"
    );

    let reply = update_config(
        &mut device,
        "wrong",
        json!({"server":{"stats_interval_s":1}}),
    );
    assert_admin_error(&reply, "update_config", "UNAUTHORIZED");

    // A ⟲ key cannot change by reload.
    let reply = update_config(
        &mut device,
        "s3cr3t",
        json!({"server":{"stats_interval_s":1,"port":server.port + 1}}),
    );
    let message = assert_admin_error(&reply, "update_config", "SCHEMA_INVALID");
    assert!(message.contains("server.port"), "{message}");

    device.send_json(json!({"type":"server","action":"restart","content":{"secret":"s3cr3t"}}));
    assert_admin_error(&device.recv(SHORT), "restart", "UNSUPPORTED");

    device.send_json(json!({"type":"config_update","config":{}}));
    assert_eq!(
        device.recv(SHORT),
        json!({"type":"config_update","status":"ok","noop":true})
    );

    // None of the rejected updates applied: stats still come every 5 s.
    assert_stats_period(&mut device, 5.0, 1, Duration::from_secs(7));

    // An accepted one applies from the stats timer's next cycle.
    let ok = update_config(
        &mut device,
        "s3cr3t",
        json!({"server":{"stats_interval_s":1}}),
    );
    assert_eq!(ok["status"], "success", "{ok}");
    assert_stats_period(&mut device, 1.0, 4, Duration::from_secs(7));
}

/// §3.7 gives the exact wording of the range error of an `update_config` reply.
#[test]
fn update_config_range_error_has_the_contract_wording() {
    let server = Server::start_with(ADMIN_SECRET, "");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
    let reply = update_config(
        &mut device,
        "s3cr3t",
        json!({"meeting":{"transcript_push_interval_ms":20000}}),
    );
    assert_eq!(
        reply,
        json!({"type":"server","status":"error","code":"SCHEMA_INVALID",
               "message":"meeting.transcript_push_interval_ms: 20000 outside 3000..=15000",
               "content":{"action":"update_config"}})
    );
}

#[test]
fn admin_messages_fail_without_a_configured_secret() {
    for server_extra in ["", "admin_secret = \"\""] {
        let server = Server::start_with(server_extra, "");
        let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
        for secret in ["", "s3cr3t"] {
            let reply = update_config(
                &mut device,
                secret,
                json!({"meeting":{"transcript_push_interval_ms":8000}}),
            );
            assert_admin_error(&reply, "update_config", "UNAUTHORIZED");
        }
        // The connection stays usable after the refusals.
        ping(&mut device);
    }
}

// ------------------------------------------------------------- SIGHUP (§7)

/// The harness's config file with `from` replaced by `to` (which must occur once).
fn edited_config(server: &Server, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(&server.config_path).expect("read config");
    assert_eq!(text.matches(from).count(), 1, "{from:?} in:\n{text}");
    text.replace(from, to)
}

#[test]
fn sighup_reloads_the_file_and_rejects_invalid_or_restart_only_changes() {
    let server = Server::start_with("stats_interval_s = 5", "");
    let original = std::fs::read_to_string(&server.config_path).unwrap();
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    ping(&mut device);

    let fast = edited_config(&server, "stats_interval_s = 5", "stats_interval_s = 1");
    std::fs::write(&server.config_path, &fast).unwrap();
    server.signal("HUP");
    assert!(
        server.wait_log("SIGHUP: config reloaded", SHORT),
        "log:\n{}",
        server.log()
    );
    assert_stats_period(&mut device, 1.0, 3, Duration::from_secs(7));

    // Out of range: rejected, the reloaded config stays.
    std::fs::write(
        &server.config_path,
        format!("{fast}\n[meeting]\ntranscript_push_interval_ms = 20000\n"),
    )
    .unwrap();
    server.signal("HUP");
    assert!(
        server.wait_log("reload rejected", SHORT),
        "log:\n{}",
        server.log()
    );
    let rejected: Vec<String> = server
        .log()
        .lines()
        .filter(|l| l.contains("reload rejected"))
        .map(str::to_string)
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0].contains("meeting.transcript_push_interval_ms = 20000 outside 3000..=15000"),
        "{}",
        rejected[0]
    );
    ping(&mut device);
    assert_stats_period(&mut device, 1.0, 2, Duration::from_secs(3));

    // A ⟲ key: rejected too.
    let port_line = format!("port = {}", server.port);
    let moved = fast.replace(&port_line, &format!("port = {}", server.port + 1));
    assert_ne!(moved, fast);
    std::fs::write(&server.config_path, moved).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + SHORT;
    let second = loop {
        let lines: Vec<String> = server
            .log()
            .lines()
            .filter(|l| l.contains("reload rejected"))
            .map(str::to_string)
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second[1].contains("server.port"), "{}", second[1]);
    ping(&mut device);
    assert_stats_period(&mut device, 1.0, 2, Duration::from_secs(3));
    // The server still listens where it did.
    assert_eq!(server.http("GET", "/healthz", &[], "").status, 200);

    // Back to the original file: 5 s again.
    std::fs::write(&server.config_path, original).unwrap();
    server.signal("HUP");
    assert!(server.wait_log_count("SIGHUP: config reloaded", 2, SHORT));
    assert_stats_period(&mut device, 5.0, 1, Duration::from_secs(3));
}

/// SIGHUP re-reads the file and drops earlier `update_config` overrides.
#[test]
fn sighup_drops_update_config_overrides() {
    let server = Server::start_with(ADMIN_SECRET, "");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let ok = update_config(
        &mut device,
        "s3cr3t",
        json!({"server":{"stats_interval_s":1}}),
    );
    assert_eq!(ok["status"], "success", "{ok}");
    assert_stats_period(&mut device, 1.0, 2, Duration::from_secs(7));
    // The file is unchanged (5 s); the reload restores it.
    server.signal("HUP");
    assert!(server.wait_log("SIGHUP: config reloaded", SHORT));
    assert_stats_period(&mut device, 5.0, 1, Duration::from_secs(3));
}

// ------------------------------------------------------- graceful shutdown

#[test]
fn sigterm_and_sigint_close_every_device_with_1001_and_exit_0() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start("");
        let mut a = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
        let mut b = server.device("/supie/v1/", &[("Device-Id", "bb")]);
        ping(&mut a);
        ping(&mut b);
        let start = Instant::now();
        server.signal(signal);
        for device in [&mut a, &mut b] {
            let (code, _reason) = device.expect_close(SHORT);
            assert_eq!(code, 1001, "SIG{signal}");
        }
        let exit = server.wait_exit(Duration::from_secs(5));
        assert_eq!(
            exit,
            Some(0),
            "SIG{signal}: exit after {:?}; log:\n{}",
            start.elapsed(),
            server.log()
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            TcpStream::connect(("127.0.0.1", server.port)).is_err(),
            "SIG{signal}: still listening"
        );
    }
}

// --------------------------------------------------------- WebSocket limits

#[test]
fn a_message_over_one_mebibyte_is_closed_with_1009() {
    let server = Server::start("");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
    ping(&mut device);
    let big = format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(1024 * 1024 + 100 * 1024)
    );
    device.ws.get_mut().set_write_timeout(Some(SHORT)).unwrap();
    // The server may stop reading mid-message; the close frame is what counts.
    let _ = device.ws.send(tungstenite::Message::text(big));
    let (code, _reason) = device.expect_close(SHORT);
    assert_eq!(code, 1009, "log:\n{}", server.log());
}

// ------------------------------------------------------------ command line

/// A scratch directory for the command-line tests.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "huddle-cli-test-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A valid config on loopback with its data under the scratch dir.
    fn config(&self, port: u16, extra: &str) -> String {
        format!(
            "[server]\nip = \"127.0.0.1\"\nport = {port}\n\n[storage]\ndata_dir = \"{}\"\n\n{extra}\n",
            self.dir.join("data").display()
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn huddle_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_huddle"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("HUDDLE_CONFIG")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to completion (killing it after `timeout`), output captured in files.
fn run(mut command: Command, dir: &Path, timeout: Duration) -> Run {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let out_path = dir.join(format!("stdout-{id}"));
    let err_path = dir.join(format!("stderr-{id}"));
    let mut child = command
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn huddle");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "huddle did not exit within {timeout:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    }
}

fn huddle(dir: &Path, args: &[&str]) -> Run {
    run(huddle_command(dir, args), dir, Duration::from_secs(10))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn check_config_prints_the_effective_config_as_toml() {
    let scratch = Scratch::new();
    let path = scratch.write("valid.toml", &scratch.config(8123, ""));
    let out = huddle(&scratch.dir, &["check-config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("transcript_push_interval_ms = 5000"),
        "{}",
        out.stdout
    );
    let table: toml::Table = toml::from_str(&out.stdout).expect("stdout is TOML");
    assert_eq!(table["server"]["port"].as_integer(), Some(8123));
    assert_eq!(table["server"]["ip"].as_str(), Some("127.0.0.1"));
    assert_eq!(
        table["meeting"]["transcript_push_interval_ms"].as_integer(),
        Some(5000)
    );
    assert_eq!(table["idle"]["idle_timeout_s"].as_integer(), Some(600));

    // The printed config is itself a valid config with the same meaning.
    let printed = scratch.write("printed.toml", &out.stdout);
    let again = huddle(&scratch.dir, &["check-config", printed.to_str().unwrap()]);
    assert_eq!(again.code, Some(0), "stderr: {}", again.stderr);
    assert_eq!(again.stdout, out.stdout);

    // Without a path and without ./huddle.toml: the defaults.
    let defaults = huddle(&scratch.dir, &["check-config"]);
    assert_eq!(defaults.code, Some(0), "stderr: {}", defaults.stderr);
    let table: toml::Table = toml::from_str(&defaults.stdout).expect("stdout is TOML");
    assert_eq!(table["server"]["port"].as_integer(), Some(8000));
    assert_eq!(table["server"]["ip"].as_str(), Some("0.0.0.0"));
}

#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    let scratch = Scratch::new();
    let cases = [
        (
            "[meeting]\ntranscript_interval = 1\n",
            "config: unknown key meeting.transcript_interval",
        ),
        (
            "[meeting]\ntranscript_push_interval_ms = 20000\n",
            "config: meeting.transcript_push_interval_ms = 20000 outside 3000..=15000",
        ),
        (
            "[idle]\nidle_timeout_s = 29\n",
            "config: idle.idle_timeout_s = 29 outside 30..=86400",
        ),
    ];
    for (i, (extra, expected)) in cases.into_iter().enumerate() {
        let path = scratch.write(&format!("bad{i}.toml"), &scratch.config(8123, extra));
        let out = huddle(&scratch.dir, &["check-config", path.to_str().unwrap()]);
        assert_eq!(out.code, Some(2), "{extra}");
        assert_eq!(out.stderr.trim_end(), expected);
        assert_eq!(out.stdout, "");
    }
    // A named file must exist.
    let missing = scratch.dir.join("missing.toml");
    let out = huddle(&scratch.dir, &["check-config", missing.to_str().unwrap()]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
}

#[test]
fn version_flag_prints_name_and_version() {
    let scratch = Scratch::new();
    let out = huddle(&scratch.dir, &["--version"]);
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "huddle 0.1.0\n");
}

#[test]
fn serve_with_a_bad_or_missing_config_exits_2() {
    let scratch = Scratch::new();
    let path = scratch.write(
        "bad.toml",
        &scratch.config(free_port(), "[meeting]\ntranscript_interval = 1\n"),
    );
    let out = huddle(&scratch.dir, &["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("config: unknown key meeting.transcript_interval"),
        "{}",
        out.stderr
    );

    let missing = scratch.dir.join("missing.toml");
    let out = huddle(
        &scratch.dir,
        &["serve", "--config", missing.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
}

#[test]
fn serve_on_a_busy_port_exits_1_naming_the_address() {
    let scratch = Scratch::new();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let path = scratch.write("busy.toml", &scratch.config(port, ""));
    let out = huddle(&scratch.dir, &["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    drop(busy);
}

#[test]
fn serve_honours_huddle_config() {
    let scratch = Scratch::new();
    let port = free_port();
    let path = scratch.write("env.toml", &scratch.config(port, ""));
    let stderr = std::fs::File::create(scratch.dir.join("serve.log")).unwrap();
    let mut child = huddle_command(&scratch.dir, &["serve"])
        .env("HUDDLE_CONFIG", &path)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn huddle");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut up = false;
    while Instant::now() < deadline && !up {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "huddle exited with {status}; stderr:\n{}",
                std::fs::read_to_string(scratch.dir.join("serve.log")).unwrap_or_default()
            );
        }
        up = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if !up {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let reply = up.then(|| common::http_request(port, "GET", "/healthz", &[], ""));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "nothing listens on the HUDDLE_CONFIG port {port}");
    assert_eq!(reply.map(|r| r.status), Some(200));
}
