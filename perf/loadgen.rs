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
//! as a Markdown row under `## Load generator` (the section is created once).
//!
//! Exit status 1 when the server does not start, a device fails to connect or
//! a measurement cannot be read; with `--sweep`, also when no N passes.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use huddle::audio::opus::{FRAME_MS, OpusEncoder, SAMPLE_RATE};
use huddle::protocol::framing::{FramingVersion, PacketKind, encode_into};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Bytes, HandshakeError, Message, WebSocket};

/// Stack of each device thread: a device needs little, and 1000 of them fit.
const DEVICE_STACK: usize = 128 * 1024;
/// Connect, handshake and hello each get this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a device waiting for the start looks at the start signal.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How often a device that has finished (or idles) looks at the stop flag;
/// longer, so 1000 idle devices cost the generator little CPU.
const STOP_POLL: Duration = Duration::from_millis(250);
/// After the last scheduled send, how long the server gets to process the backlog.
const SETTLE: Duration = Duration::from_secs(3);
/// A send this far behind its schedule counts as late.
const LATE: Duration = Duration::from_millis(5);
const SECTION: &str = "## Load generator";

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
    let wav = match &args.wav {
        Some(path) => path.clone(),
        None => default_fixture()?,
    };
    let pcm = read_wav(&wav)?;
    let packets = OpusEncoder::new()
        .and_then(|mut encoder| encoder.encode_all(&pcm))
        .map_err(|e| format!("opus encode: {e}"))?;
    if packets.is_empty() {
        return Err(format!("{} holds no audio", wav.display()));
    }
    let version = FramingVersion::from_number(i64::from(args.protocol))
        .ok_or_else(|| format!("no framing version {}", args.protocol))?;
    let frames = packets
        .iter()
        .map(|packet| {
            let mut frame = Vec::with_capacity(packet.len() + 16);
            encode_into(version, PacketKind::Opus, packet, &mut frame);
            Bytes::from(frame)
        })
        .collect();
    Ok(Arc::new(frames))
}

/// Generates the speech fixtures into `target/fixtures` and returns `long_speech.wav`.
fn default_fixture() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .arg("tests/fixtures/make_fixtures.sh")
        .arg("target/fixtures")
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run make_fixtures.sh: {e}"))?;
    if !status.success() {
        return Err(format!("make_fixtures.sh failed ({status}); pass --wav"));
    }
    Ok(root.join("target/fixtures/long_speech.wav"))
}

fn read_wav(path: &Path) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.sample_rate != SAMPLE_RATE
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(format!(
            "{}: need 16 kHz mono 16-bit PCM, got {spec:?}",
            path.display()
        ));
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
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
        let server = ServerProcess::start(&args.server_bin, args.workers)?;
        Ok(Target {
            ws_url: format!("ws://127.0.0.1:{}/xiaozhi/v1/", server.port),
            http_addr: format!("127.0.0.1:{}", server.port),
            pid: Some(server.child.id()),
            _server: Some(server),
        })
    }
}

/// A `huddle serve` child on a free loopback port, in its own temp dir.
struct ServerProcess {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ServerProcess {
    fn start(bin: &Path, workers: Option<usize>) -> Result<ServerProcess, String> {
        // The child runs in its temp dir, so a relative binary path must be resolved here.
        let bin = bin
            .canonicalize()
            .map_err(|e| format!("server binary {}: {e}", bin.display()))?;
        let dir = std::env::temp_dir().join(format!(
            "huddle-loadgen-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut last_error = String::new();
        // A probed port can be taken before the server binds it; try a few.
        for _attempt in 0..3 {
            let port = free_port()?;
            let config = server_config(port, workers, &dir);
            let config_path = dir.join("huddle.toml");
            std::fs::write(&config_path, config)
                .map_err(|e| format!("{}: {e}", config_path.display()))?;
            match spawn_and_wait(&bin, &dir, port) {
                Ok(child) => return Ok(ServerProcess { child, port, dir }),
                Err(e) => last_error = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn server_config(port: u16, workers: Option<usize>, dir: &Path) -> String {
    let mut config = format!(
        "[server]\nip = \"127.0.0.1\"\nport = {port}\nstats_interval_s = 60\n\n\
         [storage]\ndata_dir = \"{}\"\n\n[log]\nlevel = \"warn\"\n",
        dir.join("data").display()
    );
    if let Some(workers) = workers {
        config.push_str(&format!("\n[audio]\nworkers = {workers}\n"));
    }
    config
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs the server and waits until its port accepts a connection.
fn spawn_and_wait(bin: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let log_path = dir.join("stderr.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(dir.join("huddle.toml"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "server exited ({status}) before accepting; its log:\n{log}"
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("server did not accept on port {port} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
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
        let body = http_get(http_addr, "/metrics")?;
        Snapshot::parse(&body)
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

/// Plain HTTP/1.1 GET; the body of a 200 reply.
fn http_get(addr: &str, target: &str) -> Result<String, String> {
    let failed = |e: std::io::Error| format!("GET {target} from {addr}: {e}");
    let mut stream = TcpStream::connect(addr).map_err(failed)?;
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(failed)?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).map_err(failed)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if body_complete(&raw) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {target}: malformed reply"))?;
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("GET {target} answered {status_line:?}"));
    }
    Ok(body.to_string())
}

/// True once the headers and `Content-Length` bytes of body have arrived.
fn body_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .is_some_and(|length| raw.len() >= end + 4 + length)
}

// ---------------------------------------------------------------- /proc

/// CPU seconds (user + system, all threads) of `pid` ("self" for this process).
fn cpu_seconds(pid: &str) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name may hold spaces; fields are counted after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let ticks = |index: usize| -> Result<f64, String> {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("{path}: no field {}", index + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|ticks: &f64| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().take(3).collect();
            format!("loadavg {}", parts.join(" "))
        })
        .unwrap_or_else(|_| "loadavg unknown".into())
}

/// CPU counters at one moment.
struct CpuSample {
    at: Instant,
    server: Option<f64>,
    /// The server's audio worker threads (`audio-N`): `(name, CPU seconds)`.
    workers: Vec<(String, f64)>,
    client: f64,
    /// The whole machine: `(busy, steal)` CPU seconds over all cores.
    machine: (f64, f64),
}

impl CpuSample {
    fn take(pid: Option<u32>) -> Result<CpuSample, String> {
        Ok(CpuSample {
            at: Instant::now(),
            server: pid.map(|p| cpu_seconds(&p.to_string())).transpose()?,
            workers: pid.map_or_else(Vec::new, audio_worker_cpu),
            client: cpu_seconds("self")?,
            machine: machine_cpu()?,
        })
    }
}

/// Busy and stolen CPU seconds of the whole machine, from `/proc/stat`.
fn machine_cpu() -> Result<(f64, f64), String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if ticks.len() < 8 {
        return Err("/proc/stat: no cpu line".into());
    }
    let busy = ticks[..8].iter().sum::<f64>() - ticks[3] - ticks[4];
    Ok((busy / clock_ticks(), ticks[7] / clock_ticks()))
}

/// CPU seconds of each `audio-N` thread of `pid`; threads that vanish are skipped.
fn audio_worker_cpu(pid: u32) -> Vec<(String, f64)> {
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
fn worker_cpu_summary(before: &CpuSample, after: &CpuSample, wall: f64) -> String {
    let parts: Vec<String> = after
        .workers
        .iter()
        .filter_map(|(name, end)| {
            let (_, start) = before.workers.iter().find(|(n, _)| n == name)?;
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
    let connected = connect(spec).and_then(|mut ws| {
        hello(&mut ws, spec.protocol)?;
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

fn connect(spec: &DeviceSpec) -> Result<WebSocket<TcpStream>, String> {
    let mut request = spec
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad url: {e}"))?;
    let header = |value: String| HeaderValue::from_str(&value).map_err(|e| e.to_string());
    request
        .headers_mut()
        .insert("device-id", header(format!("lg:{}", spec.index))?);
    request
        .headers_mut()
        .insert("protocol-version", header(spec.protocol.to_string())?);
    let host = request.uri().host().unwrap_or("127.0.0.1");
    let port = request.uri().port_u16().unwrap_or(80);
    let address = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("cannot resolve {host}:{port}"))?;
    let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)
        .map_err(|e| format!("connect {address}: {e}"))?;
    let setup = |stream: &TcpStream| -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        stream.set_write_timeout(Some(CONNECT_TIMEOUT))
    };
    setup(&stream).map_err(|e| format!("socket options: {e}"))?;
    let (ws, _response) = tungstenite::client(request, stream).map_err(|e| match e {
        HandshakeError::Failure(e) => format!("handshake: {e}"),
        HandshakeError::Interrupted(_) => "handshake timed out".to_string(),
    })?;
    Ok(ws)
}

/// Sends the firmware's hello and waits for the server's.
fn hello(ws: &mut WebSocket<TcpStream>, protocol: u8) -> Result<(), String> {
    let hello = serde_json::json!({
        "type": "hello", "version": protocol, "transport": "websocket",
        "features": {"mcp": false},
        "audio_params": {"format": "opus", "sample_rate": SAMPLE_RATE, "channels": 1, "frame_duration": FRAME_MS}
    });
    ws.send(Message::text(hello.to_string()))
        .map_err(|e| format!("send hello: {e}"))?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let reply: serde_json::Value = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("server sent non-JSON text ({e})"))?;
                if reply["type"] == "hello" {
                    return Ok(());
                }
            }
            Ok(Message::Close(frame)) => return Err(format!("closed before hello: {frame:?}")),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => break,
            Err(e) => return Err(format!("waiting for hello: {e}")),
        }
    }
    Err("no hello reply within 10 s".into())
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
    let left = until.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
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
    let window = Duration::from_secs(args.seconds);
    sleep_until(t0 + window);
    if !args.idle {
        wait_for_devices(&shared, devices);
        wait_for_processing(&target.http_addr, &before, &shared);
    }
    let cpu_after = CpuSample::take(target.pid)?;
    let after = Snapshot::fetch(&target.http_addr)?;
    let rss_after = target.pid.map(rss_kib).transpose()?;
    shared.stop.store(true, Relaxed);
    let reports = join_devices(handles);

    let wall = (cpu_after.at - cpu_before.at).as_secs_f64();
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
        server_cpu_pct: cpu_before
            .server
            .zip(cpu_after.server)
            .map(|(b, a)| (a - b) / wall * 100.0),
        client_cpu_pct: (cpu_after.client - cpu_before.client) / wall * 100.0,
        other_cpu_pct: cpu_before.server.zip(cpu_after.server).map(|(b, a)| {
            let machine = cpu_after.machine.0 - cpu_before.machine.0;
            let ours = (a - b) + (cpu_after.client - cpu_before.client);
            (machine - ours).max(0.0) / wall * 100.0
        }),
        steal_pct: (cpu_after.machine.1 - cpu_before.machine.1) / wall * 100.0,
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
        worker_cpu: worker_cpu_summary(&cpu_before, &cpu_after, wall),
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

fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
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
        append_row(path, &row)?;
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
        format!("`{}`", command.replace('|', "\\|")),
    ];
    format!("| {} |", cells.join(" | "))
}

fn percent(value: Option<f64>) -> String {
    value.map_or("unknown".to_string(), |v| format!("{v:.1}%"))
}

/// Adds `row` to the table of the `## Load generator` section, creating the
/// section (with its header row) at the end of the file the first time.
fn append_row(path: &Path, row: &str) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match lines.iter().position(|l| l.starts_with(SECTION)) {
        Some(start) => {
            let end = lines[start + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map_or(lines.len(), |i| start + 1 + i);
            match lines[start..end].iter().rposition(|l| l.starts_with('|')) {
                Some(last) => lines.insert(start + last + 1, row.to_string()),
                None => {
                    let table = [TABLE_HEADER[0], TABLE_HEADER[1], row];
                    for (offset, line) in table.iter().enumerate() {
                        lines.insert(end + offset, line.to_string());
                    }
                }
            }
        }
        None => {
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            lines.extend(SECTION_INTRO.lines().map(str::to_string));
            lines.extend([TABLE_HEADER[0], TABLE_HEADER[1], row].map(str::to_string));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The command line as typed (arguments with spaces quoted).
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", arg.replace('\'', "'\\''"))
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Today's UTC date, `YYYY-MM-DD` (days-to-civil, proleptic Gregorian).
fn utc_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

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
    fn rows_go_into_the_section_table() {
        let path = std::env::temp_dir().join(format!("loadgen-{}.md", std::process::id()));
        std::fs::write(&path, "# Results\n\n## Other\n\n| a |\n").unwrap();
        append_row(&path, "| row 1 |").unwrap();
        std::fs::write(
            &path,
            std::fs::read_to_string(&path).unwrap() + "\n## Later\n\ntext\n",
        )
        .unwrap();
        append_row(&path, "| row 2 |").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.matches(SECTION).count(), 1, "{text}");
        let row1 = text.find("| row 1 |").unwrap();
        let row2 = text.find("| row 2 |").unwrap();
        assert!(
            row1 < row2 && row2 < text.find("## Later").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn utc_date_is_a_date() {
        let date = utc_date();
        assert_eq!(date.len(), 10, "{date}");
        assert!(date.starts_with("20"), "{date}");
    }
}
