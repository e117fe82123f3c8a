//! `huddle-loadgen`: how many streaming badges one huddle server carries, and
//! what an idle connection costs.
//!
//! # What it does
//! - Starts `huddle serve` itself (`--server-bin`, default
//!   `target/release/huddle`) on a free loopback port with a throw-away config
//!   (`stats_interval_s = 60`, log level `warn`, `[audio] workers` from
//!   `--workers`), or uses a running server (`--url`, plus `--server-pid` for
//!   RSS and CPU figures).
//! - Encodes one 16 kHz mono WAV (`--wav`, default the `long_speech` fixture
//!   of `tests/fixtures/make_fixtures.sh`) to 60 ms Opus packets once, frames
//!   them once in the `--protocol` framing version, and has N simulated
//!   devices, one thread each, replay those frames in a loop.
//! - Every device connects (`Device-Id: lg:<index>`, `Protocol-Version`),
//!   says hello and waits for the reply, sends `listen start` (auto), and then
//!   streams one frame per 60 ms on an absolute schedule (no drift) for
//!   `--seconds`. Device starts are staggered over the first 60 ms so the
//!   sends spread out. Between sends each device drains what the server sends
//!   (stats broadcasts), so nothing piles up. With `--idle` the devices connect
//!   and say hello, then only drain.
//!
//! # What it measures
//! - From the server's `/metrics`, before and after the streaming window:
//!   frames processed (delta of `huddle_audio_frames_total`) per second,
//!   frames dropped (sum of `huddle_audio_frames_dropped_total`), latency from
//!   socket read to VAD decision: p50/p99 estimated from the histogram bucket
//!   deltas (bucket resolution: linear interpolation inside the bucket; a
//!   quantile beyond the last finite bound is reported as that bound) and the
//!   max from `huddle_audio_frame_latency_seconds_max` (since server start).
//! - From `/proc`: the server's RSS at the end, RSS per device ((end − before
//!   connecting) / N), the server's CPU over the window (utime + stime deltas
//!   ÷ wall time, as % of one core and of all cores), and the load
//!   generator's own CPU over the same window. Both share this machine, so the
//!   generator's share says how far the result is biased.
//! - The generator's own lateness: the largest delay of a send behind its
//!   schedule. A large value means the generator, not the server, fell behind.
//!
//! `--sweep 50,100,...` runs the streaming measurement for each N on a fresh
//! server, stops at the first N over the limits, and reports the largest N
//! with p99 ≤ `--p99-limit-ms` and no drops. `--append FILE` adds each result
//! as a Markdown row after the last row of the first table under
//! `## Load generator` (the section is created once).
//!
//! Exit status 1 when the server does not start, a device fails to connect or
//! a measurement cannot be read; with `--sweep`, also when no N passes.

#[path = "support.rs"]
mod support;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use huddle::audio::opus::FRAME_MS;
use huddle::protocol::framing::FramingVersion;
use support::{
    CONNECT_TIMEOUT, CpuSample, Section, ServerOptions, ServerProcess, command_cell, command_line,
    cores, cpu_seconds, http_get, is_timeout, load_average, rss_kib, sleep_until, utc_date,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Bytes, Message, WebSocket};

/// Stack of each device thread: a device needs little, and 1000 of them fit.
const DEVICE_STACK: usize = 128 * 1024;
/// How often a device waiting for the start looks at the start signal.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How often a device that has finished (or idles) looks at the stop flag;
/// longer, so 1000 idle devices cost the generator little CPU.
const STOP_POLL: Duration = Duration::from_millis(250);
/// After the last scheduled send, how long the server gets to process the backlog.
const SETTLE: Duration = Duration::from_secs(3);
/// A send this far behind its schedule counts as late.
const LATE: Duration = Duration::from_millis(5);
/// Where `--append` puts each row.
const SECTION: Section = Section {
    heading: "## Load generator",
    intro: SECTION_INTRO,
};

#[derive(Parser, Debug)]
#[command(
    name = "huddle-loadgen",
    about = "Simulated badges streaming Opus to huddle; reports throughput, drops, latency, RSS and CPU"
)]
struct Args {
    /// Simulated devices.
    #[arg(long, required_unless_present = "sweep")]
    devices: Option<usize>,
    /// Length of the streaming (or idle) window of each run, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/huddle")]
    server_bin: PathBuf,
    /// Use this running server instead of starting one (no RSS/CPU without --server-pid).
    #[arg(long)]
    url: Option<String>,
    /// Pid of the --url server, for RSS and CPU figures.
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
    /// 16 kHz mono 16-bit WAV to stream (default: the long_speech fixture, generated).
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Binary framing version (PROTOCOL.md §2).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    protocol: u8,
    /// Connect and say hello, then stream nothing (idle cost per connection).
    #[arg(long)]
    idle: bool,
    /// Append each result as a Markdown row to this file.
    #[arg(long)]
    append: Option<PathBuf>,
    /// `[audio] workers` of the started server (default: the server's own, one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Streaming runs for each device count, a fresh server each; reports the largest passing N.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["devices", "idle", "url"])]
    sweep: Option<Vec<usize>>,
    /// Latency limit of --sweep: p99 must not exceed it.
    #[arg(long, default_value_t = 20.0)]
    p99_limit_ms: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("huddle-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let frames = prepare_frames(args)?;
    println!(
        "load before start: {} | {} frames of {FRAME_MS} ms, protocol v{}",
        load_average(),
        frames.len(),
        args.protocol
    );
    let command = command_line();
    if let Some(counts) = &args.sweep {
        return sweep(args, counts, &frames, &command);
    }
    let devices = args.devices.ok_or("--devices is required")?;
    let target = Target::new(args)?;
    let measurement = measure(&target, args, devices, &frames)?;
    report(args, &measurement, &command)?;
    Ok(ExitCode::SUCCESS)
}

/// One streaming run per device count; stops at the first count over the limits.
fn sweep(
    args: &Args,
    counts: &[usize],
    frames: &Arc<Vec<Bytes>>,
    command: &str,
) -> Result<ExitCode, String> {
    let mut best = None;
    let mut failed = false;
    for &devices in counts {
        println!("--- sweep: {devices} devices");
        let outcome = Target::new(args).and_then(|target| measure(&target, args, devices, frames));
        match outcome {
            Ok(m) => {
                report(args, &m, &format!("{command} [sweep step {devices}]"))?;
                let p99_ok = m.p99_ms.is_some_and(|p| p <= args.p99_limit_ms);
                if p99_ok && m.dropped == 0 && m.failed_during_run == 0 {
                    best = Some(devices);
                } else {
                    println!("{devices} devices exceed the limits; sweep stops");
                    break;
                }
            }
            Err(e) => {
                eprintln!("huddle-loadgen: {devices} devices: {e}");
                failed = true;
                break;
            }
        }
    }
    match best {
        Some(n) => println!(
            "largest N with p99 <= {} ms and 0 drops: {n}",
            args.p99_limit_ms
        ),
        None => println!("no N met p99 <= {} ms and 0 drops", args.p99_limit_ms),
    }
    Ok(if failed || best.is_none() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ---------------------------------------------------------------- audio

/// The WAV encoded once and framed once: what every device replays.
fn prepare_frames(args: &Args) -> Result<Arc<Vec<Bytes>>, String> {
    let wav = support::wav_or_fixture(args.wav.as_deref(), "long_speech")?;
    let version = FramingVersion::from_number(i64::from(args.protocol))
        .ok_or_else(|| format!("no framing version {}", args.protocol))?;
    Ok(Arc::new(support::opus_frames(&wav, version)?))
}

// ---------------------------------------------------------------- server

/// Where the devices go and what is measured there.
struct Target {
    ws_url: String,
    /// `host:port` of the HTTP API.
    http_addr: String,
    /// The server process, when known: RSS and CPU come from its `/proc` entry.
    pid: Option<u32>,
    /// Killed when the target is dropped.
    _server: Option<ServerProcess>,
}

impl Target {
    fn new(args: &Args) -> Result<Target, String> {
        if let Some(url) = &args.url {
            let request = url
                .as_str()
                .into_client_request()
                .map_err(|e| format!("bad --url {url}: {e}"))?;
            let host = request.uri().host().ok_or("--url has no host")?;
            let port = request.uri().port_u16().unwrap_or(80);
            return Ok(Target {
                ws_url: url.clone(),
                http_addr: format!("{host}:{port}"),
                pid: args.server_pid,
                _server: None,
            });
        }
        let server = ServerProcess::start(&ServerOptions {
            stats_interval_s: Some(60),
            extra_config: args
                .workers
                .map_or(String::new(), |w| format!("\n[audio]\nworkers = {w}\n")),
            ..ServerOptions::new("huddle-loadgen", &args.server_bin)
        })?;
        Ok(Target {
            ws_url: server.ws_url(),
            http_addr: server.http_addr(),
            pid: Some(server.pid()),
            _server: Some(server),
        })
    }
}

// ---------------------------------------------------------------- metrics

/// The audio metrics at one moment.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    frames: u64,
    dropped: u64,
    /// `(upper bound in s, cumulative count)`, in exposition order; +Inf last.
    buckets: Vec<(f64, u64)>,
    max_s: f64,
}

impl Snapshot {
    fn fetch(http_addr: &str) -> Result<Snapshot, String> {
        match http_get(http_addr, "/metrics")? {
            (200, body) => Snapshot::parse(&body),
            (status, _) => Err(format!("GET /metrics answered {status}")),
        }
    }

    fn parse(text: &str) -> Result<Snapshot, String> {
        let mut snapshot = Snapshot::default();
        let mut saw_frames = false;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (name, labels) = key.split_once('{').unwrap_or((key, ""));
            match name {
                "huddle_audio_frames_total" => {
                    snapshot.frames = parse_count(line, value)?;
                    saw_frames = true;
                }
                "huddle_audio_frames_dropped_total" => {
                    snapshot.dropped += parse_count(line, value)?;
                }
                "huddle_audio_frame_latency_seconds_bucket" => {
                    let bound = parse_le(line, labels)?;
                    snapshot.buckets.push((bound, parse_count(line, value)?));
                }
                "huddle_audio_frame_latency_seconds_max" => {
                    snapshot.max_s = value
                        .parse()
                        .map_err(|_| format!("metrics: bad value in {line:?}"))?;
                }
                _ => {}
            }
        }
        if !saw_frames {
            return Err("metrics lack huddle_audio_frames_total".into());
        }
        if snapshot.buckets.last().is_none_or(|(le, _)| le.is_finite()) {
            return Err("metrics lack the latency histogram (+Inf bucket)".into());
        }
        Ok(snapshot)
    }
}

fn parse_count(line: &str, value: &str) -> Result<u64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| v.round() as u64)
        .ok_or_else(|| format!("metrics: bad count in {line:?}"))
}

fn parse_le(line: &str, labels: &str) -> Result<f64, String> {
    let le = labels
        .split(',')
        .find_map(|label| label.trim().strip_prefix("le="))
        .map(|v| v.trim_end_matches('}').trim_matches('"'))
        .ok_or_else(|| format!("metrics: bucket without le in {line:?}"))?;
    if le == "+Inf" {
        return Ok(f64::INFINITY);
    }
    le.parse()
        .map_err(|_| format!("metrics: bad le in {line:?}"))
}

/// The `q` quantile (seconds) of the latencies observed between two
/// snapshots, at bucket resolution: linear interpolation inside the bucket
/// that holds it; in the +Inf bucket, the last finite bound. `None` without
/// observations.
fn quantile(before: &Snapshot, after: &Snapshot, q: f64) -> Option<f64> {
    if before.buckets.len() != after.buckets.len() && !before.buckets.is_empty() {
        return None;
    }
    let deltas: Vec<(f64, u64)> = after
        .buckets
        .iter()
        .enumerate()
        .map(|(i, (le, count))| {
            let earlier = before.buckets.get(i).map_or(0, |b| b.1);
            (*le, count.saturating_sub(earlier))
        })
        .collect();
    let total = deltas.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for (le, cumulative) in deltas {
        if cumulative as f64 >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = cumulative.saturating_sub(below) as f64;
            let fraction = if inside > 0.0 {
                (rank - below as f64) / inside
            } else {
                0.0
            };
            return Some(lower + (le - lower) * fraction);
        }
        (lower, below) = (le, cumulative);
    }
    None
}

// ---------------------------------------------------------------- /proc

/// CPU seconds of each `audio-N` thread of `pid` (none without a pid);
/// threads that vanish are skipped.
fn audio_worker_cpu(pid: Option<u32>) -> Vec<(String, f64)> {
    let Some(pid) = pid else {
        return Vec::new();
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut workers: Vec<(String, f64)> = tasks
        .filter_map(|task| {
            let tid = task.ok()?.file_name().into_string().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            let name = comm
                .trim()
                .strip_prefix("audio-")
                .map(|n| format!("audio-{n}"))?;
            Some((name, cpu_seconds(&format!("{pid}/task/{tid}")).ok()?))
        })
        .collect();
    workers.sort_by(|a, b| a.0.cmp(&b.0));
    workers
}

/// Per-worker CPU % of one core between two samples, e.g. `audio-0 45%, audio-1 47%`.
fn worker_cpu_summary(before: &[(String, f64)], after: &[(String, f64)], wall: f64) -> String {
    let parts: Vec<String> = after
        .iter()
        .filter_map(|(name, end)| {
            let (_, start) = before.iter().find(|(n, _)| n == name)?;
            Some(format!("{name} {:.0}%", (end - start) / wall * 100.0))
        })
        .collect();
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(", ")
    }
}

// ---------------------------------------------------------------- devices

/// State every device thread shares with the coordinator.
struct Shared {
    frames: Arc<Vec<Bytes>>,
    /// Set once: `Some(t0)` = stream from `t0`, `None` = abort.
    start: OnceLock<Option<Instant>>,
    stop: AtomicBool,
    done: AtomicUsize,
    sent: AtomicU64,
}

/// One simulated device's parameters.
struct DeviceSpec {
    index: usize,
    url: String,
    protocol: u8,
    /// Frames to send; 0 = idle.
    frames_to_send: u64,
    /// Offset of this device's schedule from the common start.
    stagger: Duration,
}

/// What one device saw.
#[derive(Debug, Default)]
struct DeviceReport {
    sent: u64,
    received: u64,
    max_lag: Duration,
    late: u64,
    /// Sends that found the socket buffer full (queued, not lost).
    send_blocked: u64,
    error: Option<String>,
}

fn spawn_device(
    spec: DeviceSpec,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Result<JoinHandle<DeviceReport>, String> {
    std::thread::Builder::new()
        .name(format!("lg-{}", spec.index))
        .stack_size(DEVICE_STACK)
        .spawn(move || device_main(&spec, &shared, ready))
        .map_err(|e| format!("cannot start device thread: {e}"))
}

fn device_main(
    spec: &DeviceSpec,
    shared: &Shared,
    ready: mpsc::Sender<Result<(), String>>,
) -> DeviceReport {
    let mut report = DeviceReport::default();
    let device_id = format!("lg:{}", spec.index);
    let connected = support::connect(&spec.url, &device_id, spec.protocol).and_then(|mut ws| {
        support::hello(&mut ws, spec.protocol)?;
        if spec.frames_to_send > 0 {
            let listen = r#"{"type":"listen","state":"start","mode":"auto"}"#;
            ws.send(Message::text(listen))
                .map_err(|e| format!("listen start: {e}"))?;
        }
        ws.get_mut()
            .set_nonblocking(true)
            .map_err(|e| format!("set non-blocking: {e}"))?;
        Ok(ws)
    });
    let mut ws = match connected {
        Ok(ws) => {
            let _ = ready.send(Ok(()));
            ws
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            report.error = Some(e);
            return report;
        }
    };
    drop(ready);
    let result = wait_for_start(&mut ws, shared, &mut report).and_then(|start| match start {
        Some(t0) => stream(&mut ws, spec, shared, t0 + spec.stagger, &mut report),
        None => Ok(()),
    });
    shared.done.fetch_add(1, Relaxed);
    // Stay connected until the coordinator has taken its final snapshot.
    let result = result.and_then(|()| {
        while !shared.stop.load(Relaxed) {
            drain_and_sleep(&mut ws, Instant::now() + STOP_POLL, &mut report)?;
        }
        Ok(())
    });
    report.error = result.err();
    let _ = ws.get_mut().set_nonblocking(false);
    let _ = ws.close(None);
    let _ = ws.flush();
    report
}

/// Drains incoming messages until the coordinator opens (or aborts) the run.
fn wait_for_start(
    ws: &mut WebSocket<TcpStream>,
    shared: &Shared,
    report: &mut DeviceReport,
) -> Result<Option<Instant>, String> {
    loop {
        if let Some(start) = shared.start.get() {
            return Ok(*start);
        }
        drain_and_sleep(ws, Instant::now() + IDLE_POLL, report)?;
    }
}

/// Sends frame k at `start + k × 60 ms`, draining incoming messages between sends.
fn stream(
    ws: &mut WebSocket<TcpStream>,
    spec: &DeviceSpec,
    shared: &Shared,
    start: Instant,
    report: &mut DeviceReport,
) -> Result<(), String> {
    let frames = &shared.frames;
    for k in 0..spec.frames_to_send {
        let due = start + Duration::from_millis(FRAME_MS * k);
        while Instant::now() < due {
            drain_and_sleep(ws, due, report)?;
        }
        let lag = due.elapsed();
        report.max_lag = report.max_lag.max(lag);
        report.late += u64::from(lag > LATE);
        let frame = frames[(k as usize) % frames.len()].clone();
        match ws.send(Message::Binary(frame)) {
            Ok(()) => {}
            // A full socket buffer: tungstenite keeps the frame and the next
            // read or send flushes it.
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => report.send_blocked += 1,
            Err(e) => return Err(format!("send frame {k}: {e}")),
        }
        report.sent += 1;
        shared.sent.fetch_add(1, Relaxed);
    }
    Ok(())
}

/// Reads every message already received, without waiting (the socket is
/// non-blocking once the device is connected). Waiting is done with
/// `thread::sleep`, which is precise to microseconds, unlike socket read
/// timeouts, which round up to the kernel tick (4–10 ms late).
fn drain(ws: &mut WebSocket<TcpStream>, report: &mut DeviceReport) -> Result<(), String> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                return Err(format!("server closed the connection: {frame:?}"));
            }
            Ok(_) => report.received += 1,
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Ok(()),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Drains, then sleeps until `until`.
fn drain_and_sleep(
    ws: &mut WebSocket<TcpStream>,
    until: Instant,
    report: &mut DeviceReport,
) -> Result<(), String> {
    drain(ws, report)?;
    sleep_until(until);
    Ok(())
}

// ---------------------------------------------------------------- one run

/// The result of one run.
#[derive(Debug)]
struct Measurement {
    devices: usize,
    seconds: u64,
    idle: bool,
    connect_s: f64,
    frames_sent: u64,
    processed: u64,
    dropped: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: f64,
    rss_kib: Option<u64>,
    rss_per_device_kib: Option<f64>,
    server_cpu_pct: Option<f64>,
    client_cpu_pct: f64,
    /// Everything else on the machine (other processes, kernel, steal), % of one core.
    other_cpu_pct: Option<f64>,
    /// CPU time the hypervisor took from this VM, % of one core.
    steal_pct: f64,
    max_lag_ms: f64,
    late_sends: u64,
    send_blocked: u64,
    received: u64,
    failed_during_run: usize,
    first_error: Option<String>,
    /// CPU % of one core of each audio worker thread.
    worker_cpu: String,
}

/// Connects `devices`, runs the streaming (or idle) window, and measures it.
fn measure(
    target: &Target,
    args: &Args,
    devices: usize,
    frames: &Arc<Vec<Bytes>>,
) -> Result<Measurement, String> {
    let rss_before = target.pid.map(rss_kib).transpose()?;
    let frames_to_send = if args.idle {
        0
    } else {
        args.seconds * 1000 / FRAME_MS
    };
    let shared = Arc::new(Shared {
        frames: Arc::clone(frames),
        start: OnceLock::new(),
        stop: AtomicBool::new(false),
        done: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
    });
    let connect_started = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut handles = Vec::with_capacity(devices);
    for index in 0..devices {
        let spec = DeviceSpec {
            index,
            url: target.ws_url.clone(),
            protocol: args.protocol,
            frames_to_send,
            stagger: Duration::from_micros(FRAME_MS * 1000 * index as u64 / devices as u64),
        };
        match spawn_device(spec, Arc::clone(&shared), ready_tx.clone()) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                abort(&shared, handles);
                return Err(e);
            }
        }
    }
    drop(ready_tx);
    let failures = collect_ready(&ready_rx, devices);
    if !failures.is_empty() {
        abort(&shared, handles);
        return Err(format!(
            "{} of {devices} devices failed to connect; first: {}",
            failures.len(),
            failures[0]
        ));
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    println!("{devices} devices connected in {connect_s:.2} s");

    let before = Snapshot::fetch(&target.http_addr)?;
    let t0 = Instant::now() + Duration::from_millis(200);
    let _ = shared.start.set(Some(t0));
    sleep_until(t0);
    let cpu_before = CpuSample::take(target.pid)?;
    let workers_before = audio_worker_cpu(target.pid);
    let window = Duration::from_secs(args.seconds);
    sleep_until(t0 + window);
    if !args.idle {
        wait_for_devices(&shared, devices);
        wait_for_processing(&target.http_addr, &before, &shared);
    }
    let cpu_after = CpuSample::take(target.pid)?;
    let workers_after = audio_worker_cpu(target.pid);
    let after = Snapshot::fetch(&target.http_addr)?;
    let rss_after = target.pid.map(rss_kib).transpose()?;
    shared.stop.store(true, Relaxed);
    let reports = join_devices(handles);

    let failed: Vec<&String> = reports.iter().filter_map(|r| r.error.as_ref()).collect();
    let processed = after.frames.saturating_sub(before.frames);
    Ok(Measurement {
        devices,
        seconds: args.seconds,
        idle: args.idle,
        connect_s,
        frames_sent: reports.iter().map(|r| r.sent).sum(),
        processed,
        dropped: after.dropped.saturating_sub(before.dropped),
        // Interpolation can land above the largest latency seen; no quantile exceeds it.
        p50_ms: quantile(&before, &after, 0.50).map(|s| s.min(after.max_s) * 1e3),
        p99_ms: quantile(&before, &after, 0.99).map(|s| s.min(after.max_s) * 1e3),
        max_ms: after.max_s * 1e3,
        rss_kib: rss_after,
        rss_per_device_kib: rss_before
            .zip(rss_after)
            .map(|(b, a)| (a as f64 - b as f64) / devices as f64),
        server_cpu_pct: cpu_after.server_pct_since(&cpu_before),
        client_cpu_pct: cpu_after.client_pct_since(&cpu_before),
        other_cpu_pct: cpu_after.other_pct_since(&cpu_before),
        steal_pct: cpu_after.steal_pct_since(&cpu_before),
        max_lag_ms: reports
            .iter()
            .map(|r| r.max_lag)
            .max()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
        late_sends: reports.iter().map(|r| r.late).sum(),
        send_blocked: reports.iter().map(|r| r.send_blocked).sum(),
        received: reports.iter().map(|r| r.received).sum(),
        failed_during_run: failed.len(),
        first_error: failed.first().map(|e| e.to_string()),
        worker_cpu: worker_cpu_summary(
            &workers_before,
            &workers_after,
            cpu_after.wall_since(&cpu_before),
        ),
    })
}

/// Waits for every device's connect result; returns the failures.
fn collect_ready(ready: &mpsc::Receiver<Result<(), String>>, devices: usize) -> Vec<String> {
    // Each device gives up by itself after its connect, handshake and hello timeouts.
    let deadline = Instant::now() + CONNECT_TIMEOUT * 4;
    let mut failures = Vec::new();
    for _ in 0..devices {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => {
                failures.push("connect phase timed out".into());
                break;
            }
        }
    }
    failures
}

fn abort(shared: &Shared, handles: Vec<JoinHandle<DeviceReport>>) {
    let _ = shared.start.set(None);
    shared.stop.store(true, Relaxed);
    join_devices(handles);
}

fn join_devices(handles: Vec<JoinHandle<DeviceReport>>) -> Vec<DeviceReport> {
    handles
        .into_iter()
        .map(|handle| {
            handle.join().unwrap_or_else(|_| DeviceReport {
                error: Some("device thread panicked".into()),
                ..DeviceReport::default()
            })
        })
        .collect()
}

/// Until every device has sent its last frame (or a generous timeout).
fn wait_for_devices(shared: &Shared, devices: usize) {
    let deadline = Instant::now() + SETTLE * 3;
    while shared.done.load(Relaxed) < devices && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Until the server has processed or dropped every frame sent (or [`SETTLE`]).
fn wait_for_processing(http_addr: &str, before: &Snapshot, shared: &Shared) {
    let deadline = Instant::now() + SETTLE;
    let sent = shared.sent.load(Relaxed);
    while Instant::now() < deadline {
        let Ok(now) = Snapshot::fetch(http_addr) else {
            return;
        };
        let handled = (now.frames + now.dropped).saturating_sub(before.frames + before.dropped);
        if handled >= sent {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- output

/// Prints the result (and appends it with `--append`). Errors when devices failed.
fn report(args: &Args, m: &Measurement, command: &str) -> Result<(), String> {
    let cores = cores();
    let row = table_row(m, cores, command);
    println!("{}\n{}\n{row}", TABLE_HEADER[0], TABLE_HEADER[1]);
    println!(
        "connect {:.2} s; server CPU {} of one core, {} of all {cores}; loadgen CPU {:.1}% of one core, {:.1}% of all; \
         sends >5 ms late: {} (max lag {:.2} ms), sends into a full socket buffer: {}; messages received by devices: {}; \
         audio worker threads (of one core): {}; \
         rest of the machine {} of one core (steal {:.1}%)",
        m.connect_s,
        percent(m.server_cpu_pct),
        percent(m.server_cpu_pct.map(|p| p / cores as f64)),
        m.client_cpu_pct,
        m.client_cpu_pct / cores as f64,
        m.late_sends,
        m.max_lag_ms,
        m.send_blocked,
        m.received,
        m.worker_cpu,
        percent(m.other_cpu_pct),
        m.steal_pct,
    );
    if let Some(path) = &args.append {
        SECTION.add_row(path, TABLE_HEADER, &row)?;
        println!("appended to {}", path.display());
    }
    match &m.first_error {
        Some(e) => Err(format!(
            "{} of {} devices failed during the run; first: {e}",
            m.failed_during_run, m.devices
        )),
        None => Ok(()),
    }
}

const TABLE_HEADER: [&str; 2] = [
    "| date | machine | devices | s | mode | frames sent | processed/s | dropped | p50 ms | p99 ms | max ms | server RSS MiB | RSS/device KiB | server CPU % (1 core / all) | loadgen CPU % (1 core / all) | loadgen max send lag ms | other CPU % (1 core) | command |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
];

fn table_row(m: &Measurement, cores: usize, command: &str) -> String {
    let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    let split = |v: Option<f64>| {
        v.map_or("–".to_string(), |v| {
            format!("{v:.0} / {:.0}", v / cores as f64)
        })
    };
    let cells = [
        utc_date(),
        format!("{cores} cores"),
        m.devices.to_string(),
        m.seconds.to_string(),
        if m.idle { "idle" } else { "stream" }.to_string(),
        m.frames_sent.to_string(),
        format!("{:.0}", m.processed as f64 / m.seconds.max(1) as f64),
        m.dropped.to_string(),
        ms(m.p50_ms),
        ms(m.p99_ms),
        if m.idle && m.processed == 0 {
            "–".to_string()
        } else {
            format!("{:.2}", m.max_ms)
        },
        m.rss_kib
            .map_or("–".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
        m.rss_per_device_kib
            .map_or("–".to_string(), |k| format!("{k:.0}")),
        split(m.server_cpu_pct),
        split(Some(m.client_cpu_pct)),
        format!("{:.2}", m.max_lag_ms),
        m.other_cpu_pct
            .map_or("–".to_string(), |p| format!("{p:.0}")),
        command_cell(command),
    ];
    format!("| {} |", cells.join(" | "))
}

fn percent(value: Option<f64>) -> String {
    value.map_or("unknown".to_string(), |v| format!("{v:.1}%"))
}

const SECTION_INTRO: &str = "## Load generator (`perf/loadgen.rs`)

`cargo run --release --bin huddle-loadgen -- --devices N --seconds T [--idle] [--sweep …]`: N simulated badges in
one process (a thread each) against a freshly started release server on loopback, each replaying the
`long_speech` fixture as 60 ms Opus frames (protocol v3) on a fixed schedule, staggered over the first 60 ms.
Server and load generator share the machine. Latency is socket read → VAD decision from the server's histogram:
p50/p99 at bucket resolution (linear interpolation inside the bucket), max exact (since server start).
RSS/device = (RSS at end − RSS before connecting) / N. CPU % = (utime + stime) over the window ÷ wall time,
of one core / of all cores. \"loadgen max send lag\" = the latest any frame left the generator behind schedule.
\"other CPU\" = the rest of the machine over the window (/proc/stat busy − server − generator: other processes,
kernel threads, hypervisor steal); above a few % the row was measured on a shared box.
A command ending in \"[sweep step N]\" is one step of that `--sweep` run (a fresh server per step).

";

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(counts: &[u64]) -> Snapshot {
        let bounds = [0.001, 0.002, 0.005, f64::INFINITY];
        Snapshot {
            buckets: bounds.iter().copied().zip(counts.iter().copied()).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_of_the_deltas() {
        let before = snapshot(&[10, 10, 10, 10]);
        // 100 new observations: 50 ≤ 1 ms, 40 in (1, 2], 10 in (2, 5].
        let after = snapshot(&[60, 100, 110, 110]);
        let p50 = quantile(&before, &after, 0.5).unwrap();
        assert!((p50 - 0.001).abs() < 1e-9, "{p50}");
        let p90 = quantile(&before, &after, 0.9).unwrap();
        assert!((p90 - 0.002).abs() < 1e-9, "{p90}");
        let p95 = quantile(&before, &after, 0.95).unwrap();
        assert!((p95 - 0.0035).abs() < 1e-9, "{p95}");
        assert_eq!(quantile(&before, &before, 0.5), None);
    }

    #[test]
    fn metrics_text_parses_with_drops_summed() {
        let text = "# TYPE huddle_audio_frames_total counter\nhuddle_audio_frames_total 42\n\
            huddle_audio_frames_dropped_total{device=\"lg:1\"} 2\n\
            huddle_audio_frames_dropped_total{device=\"lg:2\"} 3\n\
            huddle_audio_frame_latency_seconds_bucket{le=\"0.0001\"} 1\n\
            huddle_audio_frame_latency_seconds_bucket{le=\"+Inf\"} 42\n\
            huddle_audio_frame_latency_seconds_max 0.004200\n";
        let s = Snapshot::parse(text).unwrap();
        assert_eq!((s.frames, s.dropped), (42, 5));
        assert_eq!(s.buckets, vec![(0.0001, 1), (f64::INFINITY, 42)]);
        assert!((s.max_s - 0.0042).abs() < 1e-12);
        assert!(Snapshot::parse("huddle_other 1\n").is_err());
    }

    #[test]
    fn rows_go_into_the_first_table_of_the_section_not_its_sub_sections() {
        // The shape of perf/RESULTS.md: the section's table, prose, then a
        // `###` sub-section (here with a table of its own) ending the file.
        let path = std::env::temp_dir().join(format!("loadgen-{}.md", std::process::id()));
        let text = format!(
            "# Results\n\n{} (`perf/loadgen.rs`)\n\nintro\n\n{}\n{}\n| old |\n\nRows of today.\n\n\
             ### What the load generator says\n\n| item | value |\n|---|---|\n| a | b |\n",
            SECTION.heading, TABLE_HEADER[0], TABLE_HEADER[1]
        );
        std::fs::write(&path, text).unwrap();
        SECTION.add_row(&path, TABLE_HEADER, "| new |").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            text.contains("| old |\n| new |\n\nRows of today."),
            "{text}"
        );
        assert!(text.ends_with("| a | b |\n"), "{text}");
    }
}
