//! `huddle-soak`: many badges reconnecting all day against one huddle server,
//! bounded in time and count, on loopback. Proves (or disproves) that nothing
//! leaks and nothing acknowledged is lost.
//!
//! # What it does
//! - Starts `huddle serve` itself (`--server-bin`, default
//!   `target/release/huddle`) on a free loopback port with a throw-away config
//!   and data dir (log level `info`, `meeting.api_rate_limit = 0` so the
//!   verifier's transcript reads are not throttled; everything else default:
//!   no LLM, so finalize takes the fallback summary; no ASR model in the temp
//!   dir, so audio only goes through VAD), as all perf tools do
//!   (`perf/support.rs`).
//! - Measures the baseline (threads, open fds, RSS) before any device
//!   connects, then runs `--devices` simulated devices (one thread each) for
//!   `--minutes`. Each device loops: connect (`Device-Id: soak:<i>`,
//!   `Protocol-Version: 3`), hello, then a session of 10–120 s in which it
//!   sends `ping`s every 5–15 s and, at random moments,
//!   - with p = 0.4 a meeting: `mode start meeting`, 2–6 snippets (one unique
//!     text each, 0.2–1.5 s apart; a text counts as acknowledged when its
//!     `{"type":"meeting","status":"ok","phase":"snippet"}` ack arrives), then
//!     `meeting finalize`, waiting for the finalize ack (its `sessionId` is
//!     handed to the verifier with the acknowledged texts);
//!   - with p = 0.5 one to three `workflow` `update`s of its own group (three
//!     fixed task ids per device, so the task store stays bounded), each
//!     waiting for its ack; until all three of its tasks have been
//!     acknowledged a device sends the missing ones in every session (a badge
//!     joins a board that exists, so the board is complete after the first
//!     sessions instead of whenever chance gets round to a third update);
//!   - with p = 0.3 2–6 s of Opus audio (`listen start auto`, 60 ms frames of
//!     the `--wav` fixture on a fixed schedule, `listen stop`);
//!
//!   then disconnects: 90 % a clean WebSocket close, 10 % an abrupt TCP reset,
//!   and reconnects after 0.5–3 s. The reset uses std only (socket2 is not in
//!   Cargo.lock): the device sends a `ping`, waits (with `peek`) until the
//!   server's bytes sit unread in the kernel receive queue, and drops the
//!   socket; Linux answers a close with unread data with an RST, not a FIN
//!   (counted as TCPAbortOnClose in /proc/net/netstat, whose delta is
//!   reported as a cross-check). When no byte arrives within 1 s it falls
//!   back to `shutdown(Both)` and a drop without close handshake (counted
//!   separately as "abrupt FIN").
//! - Every 10 s samples the server's VmRSS, thread count
//!   (`/proc/<pid>/status` Threads), open fds (entries of `/proc/<pid>/fd`),
//!   CPU and the `huddle_connections` gauge into `--csv`.
//! - A verifier thread reads `GET /meetings/{sessionId}/transcript?limit=500`
//!   for every finalized meeting soon after its finalize ack (the index keeps
//!   only the newest 100 meetings and retention deletes the rest, so checking
//!   only at the end would find most of them gone), retrying for up to 90 s
//!   while the summary job writes the file.
//! - At the end every device leaves with a clean close; the tool waits up to
//!   30 s for threads and fds to return to the baseline, finishes the
//!   verification, and scans the server's stderr (its only log) for "panic".
//!
//! # Warm-up
//! The warm-up mark is where the workload has reached its steady state, read
//! from the workload, never from the RSS: the first sample at which every
//! device has finished [`SETTLE_SESSIONS`] sessions (so the ages of the open
//! connections are spread as they will stay) and has had all three of its
//! tasks acknowledged (so the task board holds everything it ever will), and
//! at least 2 minutes in (10 % of a shorter run). A run whose workload has not
//! settled by half its length takes the half-way mark and says so. The RSS
//! change from the 2-minute mark is printed too, for comparison.
//!
//! # Pass criteria (exit status 1 on any FAIL)
//! 1. RSS: |end − warm-up| ≤ 5 % of warm-up, where warm-up = the median of the
//!    three samples from the warm-up mark and end = the median of the last three samples while the
//!    devices were still active (both under load, so they compare like with
//!    like; RSS after the devices left is reported too).
//! 2. Threads back to the baseline (≤ baseline) within 30 s after all devices left.
//! 3. Fds back to the baseline (≤ baseline + 2: the data dir and log may hold a
//!    couple more once used) within the same 30 s.
//! 4. Zero lost acknowledged segments: every acknowledged text is in its
//!    finalized meeting's transcript. A meeting that is never found counts as
//!    lost, unless it had already rotated out of the 100-meeting index before
//!    the verifier reached it (reported, and a FAIL of coverage).
//! 5. Zero panics in the server log.
//!
//! `--append FILE` adds a run block under `## Soak (perf/soak.rs)` (the section
//! is created once).

#[path = "support.rs"]
mod support;

use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use huddle::audio::opus::FRAME_MS;
use huddle::protocol::framing::FramingVersion;
use serde_json::{Value, json};
use support::{
    CONNECT_TIMEOUT, ProcStatus, Section, ServerOptions, ServerProcess, command_line, connect,
    cores, cpu_seconds, hello, http_get, is_timeout, load_average, sleep_until, utc_date,
};
use tungstenite::{Bytes, Message, WebSocket};

/// Stack of each device thread.
const DEVICE_STACK: usize = 256 * 1024;
/// Each awaited reply gets this long, as connect, handshake and hello do.
const TIMEOUT: Duration = CONNECT_TIMEOUT;
/// The close handshake gets this long (the server's own limit is 5 s).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(6);
/// How often a waiting device looks at its socket.
const POLL: Duration = Duration::from_millis(100);
/// Device starts are spread over this long, so the listen backlog never overflows.
const STAGGER: Duration = Duration::from_secs(10);
/// Sampling period of RSS, threads and fds.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// After all devices left, threads and fds get this long to return to the baseline.
const SETTLE: Duration = Duration::from_secs(30);
/// Open fds above the baseline still counted as "back".
const FD_TOLERANCE: i64 = 2;
/// A finalized meeting's transcript is polled this long before it counts as lost.
const VERIFY_FOR: Duration = Duration::from_secs(90);
/// Sessions every device finishes before the workload counts as settled:
/// sessions last 10–120 s, so after three the connections open at any moment
/// have the age mix they keep for the rest of the run.
const SETTLE_SESSIONS: u32 = 3;
/// Tasks each device keeps on the board (`soak-<i>-0..2`).
const TASKS_PER_DEVICE: u64 = 3;
/// How long the RSS at the end may differ from the RSS after warm-up.
const RSS_TOLERANCE_PCT: f64 = 5.0;
/// Error messages kept for the report.
const ERROR_SAMPLES: usize = 12;
/// Where `--append` puts the run's block.
const SECTION: Section = Section {
    heading: "## Soak (perf/soak.rs)",
    intro: SECTION_INTRO,
};

#[derive(Parser, Debug)]
#[command(
    name = "huddle-soak",
    about = "Simulated badges reconnecting for a long time; checks RSS, threads, fds, acknowledged segments and panics"
)]
struct Args {
    /// Simulated devices.
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// Length of the load phase, in minutes (fractions allowed).
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/huddle")]
    server_bin: PathBuf,
    /// 16 kHz mono 16-bit WAV to stream (default: the long_speech fixture, generated).
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Seed of the devices' random choices (the run is random, not replayable: timing varies).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the 10 s samples to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Append the result as a Markdown block to this file.
    #[arg(long)]
    append: Option<PathBuf>,
    /// Keep the server's temp dir (config, data, stderr.log) even when everything passes.
    #[arg(long)]
    keep: bool,
    /// Extra environment for the server, `KEY=VALUE` (repeatable), e.g. `MALLOC_ARENA_MAX=2` to diagnose RSS.
    #[arg(long = "server-env", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .ok_or_else(|| format!("{text}: expected KEY=VALUE"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("huddle-soak: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- PRNG

/// xorshift64*: small, seedable, good enough for picking actions and delays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        // splitmix64 of (seed, stream), so neighbouring devices do not correlate.
        let mut z = seed
            .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

// ---------------------------------------------------------------- main flow

fn run(args: &Args) -> Result<bool, String> {
    if args.devices == 0 || args.minutes.is_nan() || args.minutes <= 0.0 {
        return Err("--devices and --minutes must be positive".into());
    }
    let frames = prepare_frames(args)?;
    let command = command_line();
    let load_window = Duration::from_secs_f64(args.minutes * 60.0);
    let min_warmup = Duration::from_secs(120).min(load_window.mul_f64(0.1));
    let latest_warmup = load_window.mul_f64(0.5);
    println!(
        "{} | {} devices for {:.1} min, warm-up mark once the workload settles (≥ {} s), {} frames of {FRAME_MS} ms audio, seed {}",
        load_average(),
        args.devices,
        args.minutes,
        min_warmup.as_secs(),
        frames.len(),
        args.seed
    );
    let mut server = ServerProcess::start(&ServerOptions {
        log_level: "info",
        // The verifier reads a transcript per finalized meeting.
        extra_config: "\n[meeting]\napi_rate_limit = 0\n".into(),
        env: &args.server_env,
        ..ServerOptions::new("huddle-soak", &args.server_bin)
    })?;
    let pid = server.pid();
    let http_addr = server.http_addr();
    let ws_url = server.ws_url();
    let aborts_before = tcp_abort_on_close();

    // Baseline: the idle server, a few seconds after start, before any device.
    std::thread::sleep(Duration::from_secs(3));
    let baseline = Sample::take(pid, Duration::ZERO, "baseline", 0)?;
    let baseline_fd_kinds = fd_kinds(pid);
    let baseline_thread_names = thread_names(pid);
    println!(
        "baseline: RSS {:.1} MiB, {} threads, {} fds ({})",
        mib(baseline.rss_kib),
        baseline.threads,
        baseline.fds,
        summarize(&baseline_fd_kinds)
    );

    let t0 = Instant::now();
    let shared = Arc::new(Shared::new(frames, ws_url, t0 + load_window));
    let (meetings_tx, meetings_rx) = mpsc::channel::<Finalized>();
    let verifier = Verifier::start(http_addr.clone(), meetings_rx);

    let mut handles = Vec::with_capacity(args.devices);
    for index in 0..args.devices {
        let device_shared = Arc::clone(&shared);
        let tx = meetings_tx.clone();
        let rng = Rng::new(args.seed, index as u64);
        let stagger = STAGGER.mul_f64(index as f64 / args.devices as f64);
        let spawned = std::thread::Builder::new()
            .name(format!("soak-{index}"))
            .stack_size(DEVICE_STACK)
            .spawn(move || device_main(index, &device_shared, &tx, rng, stagger));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                shared.stop.store(true, Relaxed);
                return Err(format!("cannot start device thread {index}: {e}"));
            }
        }
    }
    drop(meetings_tx);

    // Load phase: a sample every 10 s until the window ends.
    let mut csv = CsvWriter::open(args.csv.as_deref())?;
    csv.write(&baseline)?;
    let mut samples = vec![baseline.clone()];
    let mut rss_warm_regions = None;
    let mut warmup: Option<WarmUp> = None;
    let mut rss_end_regions = None;
    let mut tick = 1u32;
    loop {
        let due = t0 + SAMPLE_EVERY * tick;
        // A sample at the very end would catch the devices leaving.
        if due >= t0 + load_window {
            break;
        }
        sleep_until(due);
        let sample = Sample::take(pid, t0.elapsed(), "load", shared.connected.load(Relaxed))?
            .with_counters(&shared)
            .with_gauge(&http_addr);
        println!("{}", sample.line());
        rss_end_regions = smaps_breakdown(pid);
        if warmup.is_none() && sample.elapsed >= min_warmup {
            let settled = shared.devices_settled.load(Relaxed) >= args.devices as u64;
            if settled || sample.elapsed >= latest_warmup {
                warmup = Some(WarmUp {
                    at: sample.elapsed,
                    settled,
                });
                rss_warm_regions = rss_end_regions;
                println!(
                    "warm-up mark at {} s ({})",
                    sample.elapsed.as_secs(),
                    if settled {
                        "every device settled"
                    } else {
                        "half the run: the workload did not settle"
                    }
                );
            }
        }
        csv.write(&sample)?;
        samples.push(sample);
        tick += 1;
    }
    sleep_until(t0 + load_window);

    // Leave: every device finishes its current action and closes cleanly.
    println!("load window over; devices leave");
    let left_at = Instant::now();
    for handle in handles {
        if handle.join().is_err() {
            shared.error("device thread panicked".into());
        }
    }
    let leave_s = left_at.elapsed().as_secs_f64();
    println!("all devices left in {leave_s:.1} s");

    // The last meetings' checks (a few seconds at most), then no client
    // traffic at all (the verifier pauses) while threads and fds return.
    let all_left = Instant::now();
    let finalized = shared.meetings.load(Relaxed);
    while verifier.done.load(Relaxed) < finalized && all_left.elapsed() < SETTLE / 3 {
        std::thread::sleep(Duration::from_millis(50));
    }
    verifier.pause.store(true, Relaxed);
    verifier.wait_idle();
    let mut settled = Settled::default();
    let mut last = Sample::take(pid, t0.elapsed(), "left", 0)?;
    let rss_left = smaps_breakdown(pid);
    csv.write(&last)?;
    samples.push(last.clone());
    loop {
        if last.threads <= baseline.threads {
            settled.threads.get_or_insert(all_left.elapsed());
        }
        if last.fds <= baseline.fds + FD_TOLERANCE {
            settled.fds.get_or_insert(all_left.elapsed());
        }
        if settled.threads.is_some() && settled.fds.is_some() || all_left.elapsed() >= SETTLE {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        last = Sample::take(pid, t0.elapsed(), "settle", 0)?;
    }
    // Names and kinds before the gauge's HTTP request adds its own thread and fds.
    let end_fd_kinds = fd_kinds(pid);
    let end_thread_names = thread_names(pid);
    let end = last.clone().relabel("end").with_gauge(&http_addr);
    csv.write(&end)?;
    samples.push(end.clone());
    verifier.pause.store(false, Relaxed);
    println!(
        "after leaving: RSS {:.1} MiB, {} threads, {} fds ({}), connections gauge {}",
        mib(end.rss_kib),
        end.threads,
        end.fds,
        summarize(&end_fd_kinds),
        end.gauge.map_or("?".into(), |g| g.to_string())
    );

    let verification = verifier.finish();
    let log = server.log_text();
    let panics: Vec<&str> = log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("panic"))
        .collect();
    let log_levels = count_levels(&log);
    let aborts = aborts_before
        .zip(tcp_abort_on_close())
        .map(|(b, a)| a.saturating_sub(b));

    let load: Vec<&Sample> = samples.iter().filter(|s| s.phase == "load").collect();
    let rss_warm = warmup.and_then(|w| median3(load.iter().filter(|s| s.elapsed >= w.at).take(3)));
    let rss_two_minutes = median3(load.iter().filter(|s| s.elapsed >= min_warmup).take(3));
    let rss_end = median3(load.iter().rev().take(3));
    let peak_threads = samples.iter().map(|s| s.threads).max().unwrap_or_default();
    let peak_fds = samples.iter().map(|s| s.fds).max().unwrap_or_default();
    let cpu_s = end.cpu_s - baseline.cpu_s;

    let report = Report {
        devices: args.devices,
        minutes: args.minutes,
        warmup,
        min_warmup_s: min_warmup.as_secs(),
        rss_two_minutes,
        leave_s,
        counters: Counters::of(&shared),
        errors: shared
            .error_samples
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default(),
        aborts,
        verification,
        rss_warm,
        rss_end,
        rss_after_leave: end.rss_kib,
        baseline: baseline.clone(),
        end: end.clone(),
        peak_threads,
        peak_fds,
        settled,
        rss_regions: [
            ("warm-up", rss_warm_regions),
            ("end of load", rss_end_regions),
            ("after leave", rss_left),
        ],
        panics: panics.iter().map(|l| l.to_string()).collect(),
        log_levels,
        server_cpu_pct: cpu_s / (end.elapsed.as_secs_f64()).max(1.0) * 100.0,
        command,
    };
    let verdicts = report.verdicts();
    report.print(&verdicts);
    let passed = verdicts.iter().all(|v| v.pass);
    if !passed {
        println!(
            "thread names at baseline: {}\nthread names at end: {}\nfds at end: {}",
            summarize(&baseline_thread_names),
            summarize(&end_thread_names),
            summarize(&end_fd_kinds)
        );
        nudge_audio_workers(&shared.ws_url, pid, &baseline);
    }
    if let Some(path) = &args.append {
        SECTION.add_block(path, &report.markdown(&verdicts, args.csv.as_deref()))?;
        println!("appended to {}", path.display());
    }
    if !passed || args.keep {
        server.keep = true;
        println!(
            "server dir kept: {} (config, data/, stderr.log)",
            server.dir.display()
        );
    }
    Ok(passed)
}

fn median3<'a>(samples: impl Iterator<Item = &'a &'a Sample>) -> Option<u64> {
    let mut values: Vec<u64> = samples.map(|s| s.rss_kib).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[values.len() / 2])
}

// ---------------------------------------------------------------- audio

/// The WAV encoded once to 60 ms Opus packets, framed in protocol v3.
fn prepare_frames(args: &Args) -> Result<Arc<Vec<Bytes>>, String> {
    let wav = support::wav_or_fixture(args.wav.as_deref(), "long_speech")?;
    Ok(Arc::new(support::opus_frames(&wav, FramingVersion::V3)?))
}

// ---------------------------------------------------------------- server

/// `huddle_connections` from `/metrics`.
fn connections_gauge(http_addr: &str) -> Option<i64> {
    let (status, body) = http_get(http_addr, "/metrics").ok()?;
    if status != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix("huddle_connections "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

// ---------------------------------------------------------------- /proc

/// One sample of the server process.
#[derive(Debug, Clone)]
struct Sample {
    elapsed: Duration,
    phase: &'static str,
    rss_kib: u64,
    rss_anon_kib: u64,
    rss_file_kib: u64,
    threads: i64,
    fds: i64,
    cpu_s: f64,
    /// Devices connected, as the generator counts them.
    connected: i64,
    /// `huddle_connections`, when read.
    gauge: Option<i64>,
    counters: Option<Counters>,
}

impl Sample {
    fn take(
        pid: u32,
        elapsed: Duration,
        phase: &'static str,
        connected: i64,
    ) -> Result<Sample, String> {
        let status = ProcStatus::read(pid)?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
            .count() as i64;
        Ok(Sample {
            elapsed,
            phase,
            rss_kib: status.field("VmRSS:")?,
            rss_anon_kib: status.field("RssAnon:")?,
            rss_file_kib: status.field("RssFile:")?,
            threads: status.field("Threads:")? as i64,
            fds,
            cpu_s: cpu_seconds(&pid.to_string())?,
            connected,
            gauge: None,
            counters: None,
        })
    }

    fn with_counters(mut self, shared: &Shared) -> Sample {
        self.counters = Some(Counters::of(shared));
        self
    }

    /// Reads the gauge after the /proc figures, so its HTTP thread is not counted.
    fn with_gauge(mut self, http_addr: &str) -> Sample {
        self.gauge = connections_gauge(http_addr);
        self
    }

    fn relabel(mut self, phase: &'static str) -> Sample {
        self.phase = phase;
        self
    }

    fn line(&self) -> String {
        let c = self.counters.clone().unwrap_or_default();
        format!(
            "t={:>5}s RSS {:>6.1} MiB threads {:>4} fds {:>4} connected {:>4} (server {}) | sessions {} clean {} abrupt {} meetings {} snippets {} errors {}",
            self.elapsed.as_secs(),
            mib(self.rss_kib),
            self.threads,
            self.fds,
            self.connected,
            self.gauge.map_or("?".into(), |g| g.to_string()),
            c.sessions,
            c.clean,
            c.abrupt_rst + c.abrupt_fin,
            c.meetings,
            c.snippets_acked,
            c.errors
        )
    }
}

/// When threads and fds were first back at the baseline after the devices left.
#[derive(Debug, Default, Clone, Copy)]
struct Settled {
    threads: Option<Duration>,
    fds: Option<Duration>,
}

/// Resident memory of the server by region kind, from `/proc/<pid>/smaps`.
#[derive(Debug, Default, Clone, Copy)]
struct Regions {
    /// `[heap]`: the main malloc arena.
    heap_kib: u64,
    /// Anonymous regions starting on a 64 MiB boundary: glibc's per-thread malloc arenas.
    arenas: u64,
    arenas_kib: u64,
    /// Other anonymous memory: thread stacks (also glibc's cache of exited
    /// threads' stacks), large allocations served by mmap.
    other_anon_kib: u64,
    /// Binary and libraries.
    file_kib: u64,
}

impl Regions {
    fn describe(&self) -> String {
        format!(
            "main heap {:.1}, {} thread arenas {:.1}, other anon (stacks, mmap) {:.1}, file {:.1} MiB",
            mib(self.heap_kib),
            self.arenas,
            mib(self.arenas_kib),
            mib(self.other_anon_kib),
            mib(self.file_kib)
        )
    }
}

fn smaps_breakdown(pid: u32) -> Option<Regions> {
    const ARENA_ALIGN: u64 = 64 << 20;
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut regions = Regions::default();
    // (start address, path) of the mapping whose fields are being read.
    let mut current: Option<(u64, String)> = None;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or_default();
        if let Some((start, _end)) = first.split_once('-')
            && let Ok(start) = u64::from_str_radix(start, 16)
        {
            // perms, offset, dev, inode, then the optional path.
            let path = parts.nth(4).unwrap_or_default().to_string();
            current = Some((start, path));
            continue;
        }
        if first != "Rss:" {
            continue;
        }
        let kib: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let Some((start, path)) = &current else {
            continue;
        };
        if path == "[heap]" {
            regions.heap_kib += kib;
        } else if path.starts_with('/') {
            regions.file_kib += kib;
        } else if path.is_empty() && start.is_multiple_of(ARENA_ALIGN) {
            regions.arenas += 1;
            regions.arenas_kib += kib;
        } else {
            regions.other_anon_kib += kib;
        }
    }
    Some(regions)
}

/// Open fds of `pid` by kind: `socket`, `anon_inode:[eventpoll]`, files by directory…
fn fd_kinds(pid: u32) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return kinds;
    };
    for entry in entries.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().to_string();
        // `socket:[123]` → `socket`; `anon_inode:[eventpoll]` and file paths stay whole.
        let kind = match target.split_once(":[") {
            Some((kind, _)) if kind != "anon_inode" => kind.to_string(),
            _ => target,
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Threads of `pid` by name, digits folded (`conn-17` → `conn-N`).
fn thread_names(pid: u32) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return names;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let mut folded = String::new();
        for c in comm.trim().chars() {
            if c.is_ascii_digit() {
                if !folded.ends_with('N') {
                    folded.push('N');
                }
            } else {
                folded.push(c);
            }
        }
        *names.entry(folded).or_insert(0) += 1;
    }
    names
}

fn summarize(map: &BTreeMap<String, usize>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `TcpExt: TCPAbortOnClose` of the whole machine: closes that sent an RST
/// because unread data was left.
fn tcp_abort_on_close() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let values = lines.next()?;
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let index = names
            .split_whitespace()
            .position(|n| n == "TCPAbortOnClose")?;
        return values.split_whitespace().nth(index)?.parse().ok();
    }
    None
}

fn count_levels(log: &str) -> BTreeMap<String, usize> {
    let mut levels = BTreeMap::new();
    for line in log.lines() {
        for level in ["ERROR", "WARN"] {
            if line.contains(level) {
                *levels.entry(level.to_string()).or_insert(0) += 1;
            }
        }
    }
    levels
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------- CSV

struct CsvWriter(Option<(PathBuf, std::fs::File)>);

impl CsvWriter {
    fn open(path: Option<&Path>) -> Result<CsvWriter, String> {
        let Some(path) = path else {
            return Ok(CsvWriter(None));
        };
        let mut file =
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(
            file,
            "elapsed_s,phase,rss_kib,rss_anon_kib,rss_file_kib,threads,fds,server_cpu_s,devices_connected,server_connections,sessions,disconnects_clean,disconnects_abrupt,meetings_finalized,snippets_acked,workflow_acks,audio_frames,device_errors"
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(CsvWriter(Some((path.to_path_buf(), file))))
    }

    fn write(&mut self, s: &Sample) -> Result<(), String> {
        let Some((path, file)) = &mut self.0 else {
            return Ok(());
        };
        let c = s.counters.clone();
        let counter =
            |f: fn(&Counters) -> u64| c.as_ref().map_or(String::new(), |c| f(c).to_string());
        writeln!(
            file,
            "{:.1},{},{},{},{},{},{},{:.2},{},{},{},{},{},{},{},{},{},{}",
            s.elapsed.as_secs_f64(),
            s.phase,
            s.rss_kib,
            s.rss_anon_kib,
            s.rss_file_kib,
            s.threads,
            s.fds,
            s.cpu_s,
            s.connected,
            s.gauge.map_or(String::new(), |g| g.to_string()),
            counter(|c| c.sessions),
            counter(|c| c.clean),
            counter(|c| c.abrupt_rst + c.abrupt_fin),
            counter(|c| c.meetings),
            counter(|c| c.snippets_acked),
            counter(|c| c.workflow_acks),
            counter(|c| c.audio_frames),
            counter(|c| c.errors),
        )
        .map_err(|e| format!("{}: {e}", path.display()))
    }
}

// ---------------------------------------------------------------- devices

/// Counters every device adds to.
struct Shared {
    frames: Arc<Vec<Bytes>>,
    ws_url: String,
    /// End of the load window: devices leave after their current action.
    run_end: Instant,
    stop: AtomicBool,
    connected: AtomicI64,
    sessions: AtomicU64,
    clean: AtomicU64,
    abrupt_rst: AtomicU64,
    abrupt_fin: AtomicU64,
    final_leaves: AtomicU64,
    meetings: AtomicU64,
    meetings_unfinished: AtomicU64,
    snippets_acked: AtomicU64,
    snippets_rejected: AtomicU64,
    workflow_acks: AtomicU64,
    workflow_errors: AtomicU64,
    /// Devices past [`SETTLE_SESSIONS`] sessions with all their tasks acknowledged.
    devices_settled: AtomicU64,
    audio_frames: AtomicU64,
    pings: AtomicU64,
    pongs: AtomicU64,
    received: AtomicU64,
    replaced: AtomicU64,
    server_closes: AtomicU64,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
}

impl Shared {
    fn new(frames: Arc<Vec<Bytes>>, ws_url: String, run_end: Instant) -> Shared {
        Shared {
            frames,
            ws_url,
            run_end,
            stop: AtomicBool::new(false),
            connected: AtomicI64::new(0),
            sessions: AtomicU64::new(0),
            clean: AtomicU64::new(0),
            abrupt_rst: AtomicU64::new(0),
            abrupt_fin: AtomicU64::new(0),
            final_leaves: AtomicU64::new(0),
            meetings: AtomicU64::new(0),
            meetings_unfinished: AtomicU64::new(0),
            snippets_acked: AtomicU64::new(0),
            snippets_rejected: AtomicU64::new(0),
            workflow_acks: AtomicU64::new(0),
            workflow_errors: AtomicU64::new(0),
            devices_settled: AtomicU64::new(0),
            audio_frames: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            pongs: AtomicU64::new(0),
            received: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            server_closes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_samples: Mutex::new(Vec::new()),
        }
    }

    fn error(&self, message: String) {
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut samples) = self.error_samples.lock()
            && samples.len() < ERROR_SAMPLES
        {
            samples.push(message);
        }
    }

    fn over(&self) -> bool {
        self.stop.load(Relaxed) || Instant::now() >= self.run_end
    }
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default)]
struct Counters {
    sessions: u64,
    clean: u64,
    abrupt_rst: u64,
    abrupt_fin: u64,
    final_leaves: u64,
    meetings: u64,
    meetings_unfinished: u64,
    snippets_acked: u64,
    snippets_rejected: u64,
    workflow_acks: u64,
    workflow_errors: u64,
    audio_frames: u64,
    pings: u64,
    pongs: u64,
    received: u64,
    replaced: u64,
    server_closes: u64,
    errors: u64,
}

impl Counters {
    fn of(s: &Shared) -> Counters {
        Counters {
            sessions: s.sessions.load(Relaxed),
            clean: s.clean.load(Relaxed),
            abrupt_rst: s.abrupt_rst.load(Relaxed),
            abrupt_fin: s.abrupt_fin.load(Relaxed),
            final_leaves: s.final_leaves.load(Relaxed),
            meetings: s.meetings.load(Relaxed),
            meetings_unfinished: s.meetings_unfinished.load(Relaxed),
            snippets_acked: s.snippets_acked.load(Relaxed),
            snippets_rejected: s.snippets_rejected.load(Relaxed),
            workflow_acks: s.workflow_acks.load(Relaxed),
            workflow_errors: s.workflow_errors.load(Relaxed),
            audio_frames: s.audio_frames.load(Relaxed),
            pings: s.pings.load(Relaxed),
            pongs: s.pongs.load(Relaxed),
            received: s.received.load(Relaxed),
            replaced: s.replaced.load(Relaxed),
            server_closes: s.server_closes.load(Relaxed),
            errors: s.errors.load(Relaxed),
        }
    }
}

/// A meeting whose finalize ack arrived, with the texts acknowledged in it.
#[derive(Debug)]
struct Finalized {
    session_id: String,
    device: usize,
    texts: Vec<String>,
    /// Wall clock when the finalize ack arrived (≈ the meeting's `endedAt`).
    acked_ms: u64,
}

/// What a session does at a moment of its life.
#[derive(Debug, Clone, Copy)]
enum Action {
    Meeting,
    Workflow,
    Audio,
}

/// One simulated device.
struct Device<'a> {
    index: usize,
    shared: &'a Shared,
    meetings: &'a mpsc::Sender<Finalized>,
    rng: Rng,
    /// Meetings started by this device (for unique texts).
    meeting_seq: u64,
    /// Workflow updates sent (task versions).
    workflow_seq: u64,
    /// Workflow updates acknowledged: task `seq % 3` exists once `seq` is.
    workflow_acked: u64,
    sessions_done: u32,
    /// Counted once in `Shared::devices_settled`.
    settled: bool,
    next_ping: Instant,
}

fn device_main(
    index: usize,
    shared: &Shared,
    meetings: &mpsc::Sender<Finalized>,
    rng: Rng,
    stagger: Duration,
) {
    std::thread::sleep(stagger);
    let mut device = Device {
        index,
        shared,
        meetings,
        rng,
        meeting_seq: 0,
        workflow_seq: 0,
        workflow_acked: 0,
        sessions_done: 0,
        settled: false,
        next_ping: Instant::now(),
    };
    while !shared.over() {
        if let Err(e) = device.session() {
            shared.error(format!("soak:{index}: {e}"));
        }
        device.sessions_done += 1;
        if !device.settled
            && device.sessions_done >= SETTLE_SESSIONS
            && device.workflow_acked >= TASKS_PER_DEVICE
        {
            device.settled = true;
            shared.devices_settled.fetch_add(1, Relaxed);
        }
        if shared.over() {
            break;
        }
        let pause = device.rng.millis(500, 3000);
        std::thread::sleep(pause.min(shared.run_end.saturating_duration_since(Instant::now())));
    }
}

/// Decrements the connected count however a session ends.
struct Connected<'a>(&'a AtomicI64);

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Device<'_> {
    /// Connect, hello, the planned actions with pings in between, disconnect.
    fn session(&mut self) -> Result<(), String> {
        let mut ws = connect(&self.shared.ws_url, &format!("soak:{}", self.index), 3)?;
        hello(&mut ws, 3)?;
        ws.get_mut()
            .set_nonblocking(true)
            .map_err(|e| format!("set non-blocking: {e}"))?;
        self.shared.connected.fetch_add(1, Relaxed);
        let _connected = Connected(&self.shared.connected);
        self.shared.sessions.fetch_add(1, Relaxed);

        let start = Instant::now();
        let length = self.rng.millis(10_000, 120_000);
        let end = (start + length).min(self.shared.run_end);
        self.next_ping = start + self.rng.millis(1_000, 5_000);
        let mut plan: Vec<(Duration, Action)> = Vec::new();
        let at = |rng: &mut Rng| length.mul_f64((rng.next() % 1000) as f64 / 1000.0 * 0.8);
        if self.rng.chance(0.4) {
            plan.push((at(&mut self.rng), Action::Meeting));
        }
        let board_missing = TASKS_PER_DEVICE.saturating_sub(self.workflow_acked);
        if board_missing > 0 {
            for _ in 0..board_missing {
                plan.push((at(&mut self.rng), Action::Workflow));
            }
        } else if self.rng.chance(0.5) {
            for _ in 0..self.rng.range(1, 3) {
                plan.push((at(&mut self.rng), Action::Workflow));
            }
        }
        if self.rng.chance(0.3) {
            plan.push((at(&mut self.rng), Action::Audio));
        }
        plan.sort_by_key(|(offset, _)| *offset);

        for (offset, action) in plan {
            if start + offset >= end {
                break;
            }
            self.idle_until(&mut ws, start + offset)?;
            match action {
                Action::Meeting => self.meeting(&mut ws)?,
                Action::Workflow => self.workflow(&mut ws)?,
                Action::Audio => self.audio(&mut ws)?,
            }
        }
        self.idle_until(&mut ws, end)?;

        if self.shared.over() {
            clean_close(&mut ws)?;
            self.shared.final_leaves.fetch_add(1, Relaxed);
        } else if self.rng.chance(0.1) {
            if abrupt_reset(ws)? {
                self.shared.abrupt_rst.fetch_add(1, Relaxed);
            } else {
                self.shared.abrupt_fin.fetch_add(1, Relaxed);
            }
        } else {
            clean_close(&mut ws)?;
            self.shared.clean.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Drains what the server sends and pings when due, until `until`.
    fn idle_until(&mut self, ws: &mut WebSocket<TcpStream>, until: Instant) -> Result<(), String> {
        loop {
            self.drain(ws)?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if now >= self.next_ping {
                self.send(ws, json!({"type": "ping"}).to_string())?;
                self.shared.pings.fetch_add(1, Relaxed);
                self.next_ping = now + self.rng.millis(5_000, 15_000);
            }
            std::thread::sleep(POLL.min(until - now));
        }
    }

    fn send(&self, ws: &mut WebSocket<TcpStream>, text: String) -> Result<(), String> {
        match ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            // A full socket buffer: tungstenite keeps the frame; the next read or send flushes it.
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => Ok(()),
            Err(e) => Err(format!("send: {e}")),
        }
    }

    /// Reads every message already received, without waiting.
    fn drain(&self, ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
        while let Some(message) = self.read_one(ws)? {
            self.note(&message);
        }
        Ok(())
    }

    /// One message if one is there; `Err` when the server closed.
    fn read_one(&self, ws: &mut WebSocket<TcpStream>) -> Result<Option<Value>, String> {
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    self.shared.received.fetch_add(1, Relaxed);
                    let value: Value = serde_json::from_str(text.as_str())
                        .map_err(|e| format!("server sent non-JSON text ({e}): {text}"))?;
                    return Ok(Some(value));
                }
                Ok(Message::Close(frame)) => {
                    self.shared.server_closes.fetch_add(1, Relaxed);
                    return Err(format!("server closed the connection: {frame:?}"));
                }
                Ok(_) => {
                    self.shared.received.fetch_add(1, Relaxed);
                }
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => return Ok(None),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Background messages: pongs and replacements are counted, the rest ignored.
    fn note(&self, message: &Value) {
        match message["type"].as_str() {
            Some("pong") => {
                self.shared.pongs.fetch_add(1, Relaxed);
            }
            Some("system") if message["event"] == "replaced" => {
                self.shared.replaced.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }

    /// Waits for the first message `wanted` accepts, noting the others.
    fn wait_for(
        &self,
        ws: &mut WebSocket<TcpStream>,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.read_one(ws)? {
                Some(message) if wanted(&message) => return Ok(message),
                Some(message) => self.note(&message),
                None => {
                    if Instant::now() >= deadline {
                        return Err(format!("no {what} within {} s", TIMEOUT.as_secs()));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// `mode start meeting`, a few snippets, `finalize`; the meeting goes to the verifier.
    fn meeting(&mut self, ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
        self.meeting_seq += 1;
        let seq = self.meeting_seq;
        self.send(
            ws,
            json!({"type": "mode", "state": "start", "mode": "meeting"}).to_string(),
        )?;
        let ack = self.wait_for(ws, "mode start ack", |m| {
            m["type"] == "mode" && m["mode"] == "meeting" && m.get("status").is_some()
        })?;
        if ack["status"] != "ok" {
            return Err(format!("mode start meeting refused: {ack}"));
        }
        let session_id = ack["sessionId"]
            .as_str()
            .ok_or_else(|| format!("mode start ack without sessionId: {ack}"))?
            .to_string();
        // The meeting now runs: if anything below fails, its acknowledged texts
        // never reach the verifier, so count it.
        let unfinished = &self.shared.meetings_unfinished;
        unfinished.fetch_add(1, Relaxed);
        let mut texts = Vec::new();
        for j in 0..self.rng.range(2, 6) {
            let pause = Instant::now() + self.rng.millis(200, 1_500);
            self.idle_until(ws, pause)?;
            let text = format!(
                "soak device {} meeting {seq} snippet {j} {:08x}",
                self.index,
                self.rng.next() as u32
            );
            self.send(
                ws,
                json!({"type": "meeting", "phase": "snippet", "items": [{"tag": "t", "text": text}]})
                    .to_string(),
            )?;
            let reply = self.wait_for(ws, "snippet ack", |m| {
                m["type"] == "meeting"
                    && (m["phase"] == "snippet" && m["status"] == "ok" || m["status"] == "error")
            })?;
            if reply["status"] == "ok" {
                texts.push(text);
                self.shared.snippets_acked.fetch_add(1, Relaxed);
            } else {
                self.shared.snippets_rejected.fetch_add(1, Relaxed);
                self.shared
                    .error(format!("soak:{}: snippet refused: {reply}", self.index));
            }
        }
        self.send(
            ws,
            json!({"type": "meeting", "phase": "finalize"}).to_string(),
        )?;
        let ack = self.wait_for(ws, "finalize ack", |m| {
            m["type"] == "meeting" && (m["phase"] == "finalize" || m["status"] == "error")
        })?;
        let acked_ms = unix_ms();
        let finalized_id = ack["sessionId"]
            .as_str()
            .ok_or_else(|| format!("finalize refused: {ack}"))?;
        if finalized_id != session_id {
            return Err(format!(
                "finalize ack names {finalized_id}, mode ack named {session_id}"
            ));
        }
        unfinished.fetch_sub(1, Relaxed);
        self.shared.meetings.fetch_add(1, Relaxed);
        let _ = self.meetings.send(Finalized {
            session_id,
            device: self.index,
            texts,
            acked_ms,
        });
        Ok(())
    }

    /// A `workflow update` of one of this device's three tasks, in its own group.
    fn workflow(&mut self, ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
        self.workflow_seq += 1;
        let seq = self.workflow_seq;
        let task = json!({
            "id": format!("soak-{}-{}", self.index, seq % TASKS_PER_DEVICE),
            "title": format!("soak task {} version {seq}", self.index),
            "priority": seq % 4,
            "status": if seq.is_multiple_of(5) { "done" } else { "open" },
        });
        self.send(
            ws,
            json!({"type": "workflow", "event": "update", "tasks": [task]}).to_string(),
        )?;
        let reply = self.wait_for(ws, "workflow ack", |m| {
            m["type"] == "workflow" && m.get("status").is_some()
        })?;
        if reply["status"] == "ok" {
            self.shared.workflow_acks.fetch_add(1, Relaxed);
            self.workflow_acked += 1;
        } else {
            self.shared.workflow_errors.fetch_add(1, Relaxed);
            self.shared
                .error(format!("soak:{}: workflow refused: {reply}", self.index));
        }
        Ok(())
    }

    /// `listen start auto`, 2–6 s of Opus frames on a 60 ms schedule, `listen stop`.
    fn audio(&mut self, ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
        let frames = Arc::clone(&self.shared.frames);
        let count = self.rng.range(2_000, 6_000) / FRAME_MS;
        let first = self.rng.range(0, frames.len() as u64 - 1) as usize;
        self.send(
            ws,
            json!({"type": "listen", "state": "start", "mode": "auto"}).to_string(),
        )?;
        let start = Instant::now();
        for k in 0..count {
            let due = start + Duration::from_millis(FRAME_MS * k);
            while Instant::now() < due {
                self.drain(ws)?;
                sleep_until(due.min(Instant::now() + Duration::from_millis(20)));
            }
            let frame = frames[(first + k as usize) % frames.len()].clone();
            match ws.send(Message::Binary(frame)) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(e) => return Err(format!("send audio frame {k}: {e}")),
            }
            self.shared.audio_frames.fetch_add(1, Relaxed);
        }
        self.send(ws, json!({"type": "listen", "state": "stop"}).to_string())
    }
}

/// The WebSocket close handshake: our close frame, then read until the server's.
fn clean_close(ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
    match ws.close(None) {
        Ok(()) => {}
        Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
        Err(e) => return Err(format!("close: {e}")),
    }
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    return Err("close handshake not answered within 6 s".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("close handshake: {e}")),
        }
    }
}

/// Drops the socket with unread bytes in its kernel receive queue, which makes
/// Linux send an RST. True when that happened; false when no byte came within
/// 1 s and the fallback (shutdown, then drop without close handshake) was used.
fn abrupt_reset(mut ws: WebSocket<TcpStream>) -> Result<bool, String> {
    // The pong the server owes makes sure a byte is on its way.
    match ws.send(Message::text(json!({"type": "ping"}).to_string())) {
        Ok(()) => {}
        Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
        Err(e) => return Err(format!("send before reset: {e}")),
    }
    let stream = ws.get_mut();
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut byte = [0u8; 1];
    loop {
        match stream.peek(&mut byte) {
            Ok(n) if n > 0 => {
                drop(ws);
                return Ok(true);
            }
            Ok(_) => break,
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("peek before reset: {e}")),
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = ws.get_mut().shutdown(Shutdown::Both);
    drop(ws);
    Ok(false)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Diagnostic after a failed settle: a few short connections that each open
/// an audio stream (`listen start` plus one frame), which wakes every audio
/// worker; then the fds and threads again. A drop means the excess was held
/// by audio streams that nobody had woken their worker to close.
fn nudge_audio_workers(ws_url: &str, pid: u32, baseline: &Sample) {
    let before = Sample::take(pid, Duration::ZERO, "nudge", 0);
    for k in 0..4 {
        // Not a soak device's id, so no soak device is replaced.
        let Ok(mut ws) = connect(ws_url, &format!("nudge:{k}"), 3) else {
            println!("nudge: connection {k} failed");
            return;
        };
        let _ = hello(&mut ws, 3);
        let _ = ws.send(Message::text(
            json!({"type": "listen", "state": "start", "mode": "auto"}).to_string(),
        ));
        std::thread::sleep(Duration::from_millis(200));
        let _ = clean_close(&mut ws);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = Sample::take(pid, Duration::ZERO, "nudge", 0);
    if let (Ok(before), Ok(after)) = (before, after) {
        println!(
            "diagnostic: after 4 short connections that each opened an audio stream (waking the audio workers): \
             fds {} -> {} (baseline {}), threads {} -> {} (baseline {}); eventfds now {}",
            before.fds,
            after.fds,
            baseline.fds,
            before.threads,
            after.threads,
            baseline.threads,
            fd_kinds(pid)
                .get("anon_inode:[eventfd]")
                .copied()
                .unwrap_or_default()
        );
    }
}

// ---------------------------------------------------------------- verifier

/// What the verifier found.
#[derive(Debug, Default, Clone)]
struct Verification {
    meetings: u64,
    verified: u64,
    texts_checked: u64,
    /// Acknowledged texts missing from a transcript that was found.
    lost_texts: u64,
    /// Meetings never found (404 until the end of their window), with their
    /// acknowledged texts (all counted as lost).
    not_found: u64,
    not_found_texts: u64,
    /// Meetings gone because 100 newer ones were indexed before the check.
    rotated: u64,
    /// Largest delay from finalize ack to a complete transcript.
    max_delay_ms: u64,
    attempts: u64,
    examples: Vec<String>,
}

/// One meeting still to check; ordered by its next attempt (earliest first).
struct Pending {
    next: Instant,
    give_up: Instant,
    meeting: Finalized,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.next == other.next
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.next.cmp(&self.next)
    }
}

struct Verifier {
    pause: Arc<AtomicBool>,
    /// Meetings judged so far (verified, lost, not found or rotated out).
    done: Arc<AtomicU64>,
    /// True while no request is in flight and the verifier honours `pause`.
    idle: Arc<AtomicBool>,
    handle: JoinHandle<Verification>,
}

impl Verifier {
    fn start(http_addr: String, incoming: mpsc::Receiver<Finalized>) -> Verifier {
        let pause = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (p, i, d) = (Arc::clone(&pause), Arc::clone(&idle), Arc::clone(&done));
        let handle = std::thread::Builder::new()
            .name("soak-verifier".into())
            .spawn(move || verify_loop(&http_addr, &incoming, &p, &i, &d))
            .expect("verifier thread");
        Verifier {
            pause,
            done,
            idle,
            handle,
        }
    }

    fn wait_idle(&self) {
        while !self.idle.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(self) -> Verification {
        self.handle.join().unwrap_or_else(|_| Verification {
            examples: vec!["verifier thread panicked".into()],
            ..Verification::default()
        })
    }
}

fn verify_loop(
    http_addr: &str,
    incoming: &mpsc::Receiver<Finalized>,
    pause: &AtomicBool,
    idle: &AtomicBool,
    done: &AtomicU64,
) -> Verification {
    let mut result = Verification::default();
    let mut queue: BinaryHeap<Pending> = BinaryHeap::new();
    let mut senders_gone = false;
    loop {
        if pause.load(Relaxed) {
            idle.store(true, Relaxed);
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        idle.store(false, Relaxed);
        loop {
            match incoming.try_recv() {
                Ok(meeting) => {
                    result.meetings += 1;
                    let now = Instant::now();
                    queue.push(Pending {
                        next: now + Duration::from_millis(300),
                        give_up: now + VERIFY_FOR,
                        meeting,
                    });
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    senders_gone = true;
                    break;
                }
            }
        }
        let due = queue.peek().is_some_and(|p| p.next <= Instant::now());
        if !due {
            if senders_gone && queue.is_empty() {
                idle.store(true, Relaxed);
                return result;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let Some(mut pending) = queue.pop() else {
            continue;
        };
        result.attempts += 1;
        let outcome = check(http_addr, &pending.meeting);
        let now = Instant::now();
        let judged = matches!(outcome, Check::Complete) || now >= pending.give_up;
        match outcome {
            Check::Complete => {
                result.verified += 1;
                result.texts_checked += pending.meeting.texts.len() as u64;
                let delay = unix_ms().saturating_sub(pending.meeting.acked_ms);
                result.max_delay_ms = result.max_delay_ms.max(delay);
            }
            Check::Missing(missing) if now >= pending.give_up => {
                result.verified += 1;
                result.texts_checked += pending.meeting.texts.len() as u64;
                result.lost_texts += missing.len() as u64;
                if result.examples.len() < ERROR_SAMPLES {
                    result.examples.push(format!(
                        "meeting {} of soak:{}: {} of {} acknowledged texts missing, e.g. {:?}",
                        pending.meeting.session_id,
                        pending.meeting.device,
                        missing.len(),
                        pending.meeting.texts.len(),
                        missing[0]
                    ));
                }
            }
            Check::NotFound | Check::Failed(_) if now >= pending.give_up => {
                if rotated_out(http_addr, pending.meeting.acked_ms) {
                    result.rotated += 1;
                } else {
                    result.not_found += 1;
                    result.not_found_texts += pending.meeting.texts.len() as u64;
                    if result.examples.len() < ERROR_SAMPLES {
                        result.examples.push(format!(
                            "meeting {} of soak:{} ({} acknowledged texts) not found: {:?}",
                            pending.meeting.session_id,
                            pending.meeting.device,
                            pending.meeting.texts.len(),
                            outcome.describe()
                        ));
                    }
                }
            }
            _ => {
                pending.next = now + Duration::from_secs(1);
                queue.push(pending);
            }
        }
        if judged {
            done.fetch_add(1, Relaxed);
        }
    }
}

#[derive(Debug)]
enum Check {
    Complete,
    Missing(Vec<String>),
    NotFound,
    Failed(String),
}

impl Check {
    fn describe(&self) -> String {
        match self {
            Check::Complete => "complete".into(),
            Check::Missing(missing) => format!("{} texts missing", missing.len()),
            Check::NotFound => "404 until the end of its window".into(),
            Check::Failed(e) => e.clone(),
        }
    }
}

fn check(http_addr: &str, meeting: &Finalized) -> Check {
    let target = format!("/meetings/{}/transcript?limit=500", meeting.session_id);
    let (status, body) = match http_get(http_addr, &target) {
        Ok(reply) => reply,
        Err(e) => return Check::Failed(e),
    };
    match status {
        200 => {}
        404 => return Check::NotFound,
        other => return Check::Failed(format!("GET {target}: {other} {body}")),
    }
    let Ok(reply) = serde_json::from_str::<Value>(&body) else {
        return Check::Failed(format!("GET {target}: not JSON"));
    };
    let stored: HashSet<&str> = reply["data"]["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["text"].as_str()).collect())
        .unwrap_or_default();
    let missing: Vec<String> = meeting
        .texts
        .iter()
        .filter(|t| !stored.contains(t.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        Check::Complete
    } else {
        Check::Missing(missing)
    }
}

/// True when the index is full and every meeting in it ended after `acked_ms`:
/// the meeting was retired by retention, not lost.
fn rotated_out(http_addr: &str, acked_ms: u64) -> bool {
    let Ok((200, body)) = http_get(http_addr, "/meetings/recent?limit=100") else {
        return false;
    };
    let Ok(reply) = serde_json::from_str::<Value>(&body) else {
        return false;
    };
    let Some(items) = reply["data"].as_array() else {
        return false;
    };
    items.len() >= 100
        && items
            .iter()
            .filter_map(|i| i["endedAt"].as_u64())
            .min()
            .is_some_and(|oldest| oldest > acked_ms)
}

// ---------------------------------------------------------------- report

struct Report {
    devices: usize,
    minutes: f64,
    /// `None`: the run ended before its warm-up mark.
    warmup: Option<WarmUp>,
    /// The earliest mark (2 minutes), whose RSS is reported for comparison.
    min_warmup_s: u64,
    rss_two_minutes: Option<u64>,
    leave_s: f64,
    counters: Counters,
    errors: Vec<String>,
    aborts: Option<u64>,
    verification: Verification,
    rss_warm: Option<u64>,
    rss_end: Option<u64>,
    rss_after_leave: u64,
    baseline: Sample,
    end: Sample,
    peak_threads: i64,
    peak_fds: i64,
    settled: Settled,
    /// Where the RSS sat at the warm-up mark, at the end of the load and after the devices left.
    rss_regions: [(&'static str, Option<Regions>); 3],
    panics: Vec<String>,
    log_levels: BTreeMap<String, usize>,
    server_cpu_pct: f64,
    command: String,
}

/// Where the warm-up ended and why.
#[derive(Clone, Copy)]
struct WarmUp {
    at: Duration,
    /// Every device settled (else the half-run fallback was taken).
    settled: bool,
}

struct Verdict {
    name: &'static str,
    pass: bool,
    detail: String,
}

impl Report {
    /// "612 s (every device settled)", or why the mark is elsewhere.
    fn warmup_text(&self) -> String {
        match self.warmup {
            Some(w) if w.settled => format!("{} s (every device settled)", w.at.as_secs()),
            Some(w) => format!(
                "{} s (half the run; the workload never settled)",
                w.at.as_secs()
            ),
            None => "no mark (run too short)".into(),
        }
    }

    fn verdicts(&self) -> Vec<Verdict> {
        let rss = match (self.rss_warm, self.rss_end) {
            (Some(warm), Some(end)) => {
                let change = (end as f64 - warm as f64) / warm as f64 * 100.0;
                Verdict {
                    name: "RSS end within 5 % of warm-up",
                    pass: change.abs() <= RSS_TOLERANCE_PCT,
                    detail: format!(
                        "warm-up {:.1} MiB at {}, end {:.1} MiB ({change:+.1} %); from the {} s mark {}",
                        mib(warm),
                        self.warmup_text(),
                        mib(end),
                        self.min_warmup_s,
                        self.rss_two_minutes.map_or("?".into(), |two| format!(
                            "{:.1} MiB ({:+.1} %)",
                            mib(two),
                            (end as f64 - two as f64) / two as f64 * 100.0
                        ))
                    ),
                }
            }
            _ => Verdict {
                name: "RSS end within 5 % of warm-up",
                pass: false,
                detail: "too few samples after the warm-up mark (run at least 40 s)".into(),
            },
        };
        let settle = |at: Option<Duration>| {
            at.map_or("not back within 30 s".to_string(), |d| {
                format!("back {:.0} s after the last device left", d.as_secs_f64())
            })
        };
        let threads = Verdict {
            name: "threads back to baseline",
            pass: self.end.threads <= self.baseline.threads,
            detail: format!(
                "baseline {}, peak {}, end {} ({})",
                self.baseline.threads,
                self.peak_threads,
                self.end.threads,
                settle(self.settled.threads)
            ),
        };
        let fds = Verdict {
            name: "fds back to baseline (+2)",
            pass: self.end.fds <= self.baseline.fds + FD_TOLERANCE,
            detail: format!(
                "baseline {}, peak {}, end {} ({})",
                self.baseline.fds,
                self.peak_fds,
                self.end.fds,
                settle(self.settled.fds)
            ),
        };
        let v = &self.verification;
        let lost = v.lost_texts + v.not_found_texts;
        let unchecked = self.counters.meetings.saturating_sub(v.meetings);
        let segments = Verdict {
            name: "zero lost acknowledged segments",
            pass: lost == 0
                && v.not_found == 0
                && v.rotated == 0
                && unchecked == 0
                && self.counters.meetings_unfinished == 0,
            detail: format!(
                "{} meetings finalized, {} verified ({} acknowledged texts checked), {lost} texts lost, \
                 {} meetings not found, {} rotated out before checked, {} finalized without check, \
                 {} meetings left unfinished by a device error; slowest complete transcript {:.1} s after the finalize ack",
                self.counters.meetings,
                v.verified,
                v.texts_checked,
                v.not_found,
                v.rotated,
                unchecked,
                self.counters.meetings_unfinished,
                v.max_delay_ms as f64 / 1000.0
            ),
        };
        let panics = Verdict {
            name: "zero panics in the server log",
            pass: self.panics.is_empty(),
            detail: match self.panics.first() {
                None => "0 lines mention \"panic\"".into(),
                Some(first) => format!("{} lines, first: {first}", self.panics.len()),
            },
        };
        vec![rss, threads, fds, segments, panics]
    }

    fn disconnects(&self) -> String {
        let c = &self.counters;
        format!(
            "{} sessions; between sessions {} clean closes, {} abrupt (RST {}, FIN fallback {}); {} final leaves{}",
            c.sessions,
            c.clean,
            c.abrupt_rst + c.abrupt_fin,
            c.abrupt_rst,
            c.abrupt_fin,
            c.final_leaves,
            self.aborts
                .map_or(String::new(), |a| format!("; machine TCPAbortOnClose +{a}"))
        )
    }

    fn traffic(&self) -> String {
        let c = &self.counters;
        format!(
            "{} snippets acknowledged ({} refused), {} workflow updates acknowledged ({} refused), \
             {} audio frames, {} pings / {} pongs, {} messages received, {} replaced, {} closes by the server",
            c.snippets_acked,
            c.snippets_rejected,
            c.workflow_acks,
            c.workflow_errors,
            c.audio_frames,
            c.pings,
            c.pongs,
            c.received,
            c.replaced,
            c.server_closes
        )
    }

    fn device_errors(&self) -> String {
        match self.errors.first() {
            None => "0".into(),
            Some(first) => format!("{} (first: {first})", self.counters.errors),
        }
    }

    fn print(&self, verdicts: &[Verdict]) {
        println!("--- soak result");
        println!("{}", self.disconnects());
        println!("{}", self.traffic());
        println!(
            "meetings finalized {}, device errors {}",
            self.counters.meetings,
            self.device_errors()
        );
        for e in self.errors.iter().skip(1) {
            println!("  device error: {e}");
        }
        for e in &self.verification.examples {
            println!("  verification: {e}");
        }
        println!(
            "RSS after the devices left {:.1} MiB; server CPU {:.1} % of one core; all devices left in {:.1} s; \
             server log lines with ERROR {} / WARN {}",
            mib(self.rss_after_leave),
            self.server_cpu_pct,
            self.leave_s,
            self.log_levels.get("ERROR").unwrap_or(&0),
            self.log_levels.get("WARN").unwrap_or(&0)
        );
        for (when, regions) in &self.rss_regions {
            if let Some(regions) = regions {
                println!("RSS ({when}): {}", regions.describe());
            }
        }
        for v in verdicts {
            println!(
                "{} {}: {}",
                if v.pass { "PASS" } else { "FAIL" },
                v.name,
                v.detail
            );
        }
    }

    fn markdown(&self, verdicts: &[Verdict], csv: Option<&Path>) -> String {
        let cores = cores();
        let mut out = format!(
            "### {}, {} cores: {} devices × {} min\n\n`{}`\n\n| item | value |\n|---|---|\n",
            utc_date(),
            cores,
            self.devices,
            self.minutes,
            self.command.replace('|', "\\|")
        );
        let mut row = |k: &str, v: String| {
            out.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
        };
        row("machine", format!("{cores} cores (nproc)"));
        row(
            "duration",
            format!(
                "{} min of load (warm-up mark {}), then all devices left ({:.1} s) and the server settled",
                self.minutes,
                self.warmup_text(),
                self.leave_s
            ),
        );
        row("devices", self.devices.to_string());
        row("reconnects", self.disconnects());
        row("meetings finalized", self.counters.meetings.to_string());
        row(
            "snippets acknowledged",
            format!(
                "{} ({} verified in transcripts)",
                self.counters.snippets_acked, self.verification.texts_checked
            ),
        );
        row("other traffic", self.traffic());
        row("device errors", self.device_errors());
        row(
            "RSS warm-up / end / after leave",
            format!(
                "{} / {} / {:.1} MiB (baseline {:.1} MiB)",
                self.rss_warm
                    .map_or("?".into(), |k| format!("{:.1}", mib(k))),
                self.rss_end
                    .map_or("?".into(), |k| format!("{:.1}", mib(k))),
                mib(self.rss_after_leave),
                mib(self.baseline.rss_kib)
            ),
        );
        let regions: Vec<String> = self
            .rss_regions
            .iter()
            .filter_map(|(when, r)| r.map(|r| format!("{when}: {}", r.describe())))
            .collect();
        row("RSS by region (smaps)", regions.join("; "));
        row(
            "threads baseline / peak / end",
            format!(
                "{} / {} / {}",
                self.baseline.threads, self.peak_threads, self.end.threads
            ),
        );
        row(
            "fds baseline / peak / end",
            format!(
                "{} / {} / {}",
                self.baseline.fds, self.peak_fds, self.end.fds
            ),
        );
        row(
            "server CPU",
            format!("{:.1} % of one core on average", self.server_cpu_pct),
        );
        if let Some(csv) = csv {
            row("samples", format!("`{}` (every 10 s)", csv.display()));
        }
        for v in verdicts {
            row(
                &format!("verdict: {}", v.name),
                format!("**{}**: {}", if v.pass { "PASS" } else { "FAIL" }, v.detail),
            );
        }
        out
    }
}

const SECTION_INTRO: &str = "## Soak (perf/soak.rs)

`cargo run --release --bin huddle-soak -- [--devices 200] [--minutes 30] --csv FILE --append perf/RESULTS.md`:
N simulated badges (a thread each, `Device-Id: soak:<i>`, protocol v3) against a freshly started release server
on loopback (throw-away config and data dir; log level info; `meeting.api_rate_limit = 0` for the verifier; no
LLM, so summaries take the fallback path). Each device loops: connect, hello, a 10–120 s session (pings every
5–15 s; p = 0.4 a meeting of 2–6 snippets then finalize; p = 0.5 one to three workflow updates of its own
group, or its missing ones until its three tasks exist; p = 0.3 2–6 s of Opus audio), then a disconnect (90 % clean close, 10 % TCP RST: the socket is closed
with unread bytes in its receive queue) and a 0.5–3 s pause. Every 10 s the server's VmRSS, thread count and
open fds are sampled. A verifier reads each finalized meeting's transcript soon after its finalize ack.
Criteria: RSS at the end (median of the last 3 samples under load) within 5 % of the RSS after warm-up (median
of the 3 samples from the warm-up mark: the first sample, at least 2 minutes in, at which every device has
finished 3 sessions and had its 3 tasks acknowledged; the change from the 2-minute mark is reported too); threads ≤ baseline and fds ≤ baseline + 2
within 30 s after all devices left; every acknowledged snippet text in its meeting's transcript; no line with
\"panic\" in the server's log (its stderr). Server and generator share the machine.

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_in_range() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        let mut c = Rng::new(7, 4);
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        for _ in 0..1000 {
            let v = a.range(10, 120);
            assert!((10..=120).contains(&v), "{v}");
        }
        let hits = (0..10_000).filter(|_| a.chance(0.1)).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }

    #[test]
    fn netstat_counter_is_read() {
        // Present on every Linux with /proc; the value only has to parse.
        if std::path::Path::new("/proc/net/netstat").exists() {
            assert!(tcp_abort_on_close().is_some());
        }
    }
}
