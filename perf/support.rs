//! What the perf tools (`huddle-loadgen`, `huddle-soak`,
//! `huddle-turn-latency`) share, included by each with
//! `#[path = "support.rs"] mod support;`:
//!
//! - the server under test: a release `huddle serve` child on a free loopback
//!   port with a throw-away config and data dir ([`ServerProcess`]);
//! - the audio a device streams: the espeak-ng fixtures, WAV reading, Opus
//!   packets framed once ([`opus_frames`]);
//! - a device's WebSocket connect and hello, and a plain HTTP GET;
//! - `/proc` figures: VmRSS and other status fields, CPU seconds of a process
//!   and of the whole machine ([`CpuSample`]), the load average;
//! - `perf/RESULTS.md`: the row or block of a run put into its tool's own
//!   section ([`Section`]), with the date and the command line.
//!
//! Measuring and reporting stay in the tools; this module only gathers the
//! plumbing so the three tools start servers, read `/proc` and write results
//! the same way.

// Each tool uses a different part of this module.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use huddle::audio::opus::{FRAME_MS, OpusEncoder, SAMPLE_RATE};
use huddle::protocol::framing::{FramingVersion, PacketKind, encode_into};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Bytes, HandshakeError, Message, WebSocket};

/// Server start, connect, handshake, hello and an HTTP reply each get this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- server

/// How to start the server under test.
pub struct ServerOptions<'a> {
    /// The `huddle` binary (relative paths are resolved before the start).
    pub bin: &'a Path,
    /// Names the temp dir (`<tool>-<pid>-<nanos>`), so a left-over dir tells whose it was.
    pub tool: &'a str,
    /// `[log] level`.
    pub log_level: &'a str,
    /// `[server] stats_interval_s`; `None` keeps the server's default.
    pub stats_interval_s: Option<u64>,
    /// TOML tables appended to the config (modules, `[audio]`, `[meeting]`…).
    pub extra_config: String,
    /// Extra environment of the child, e.g. `MALLOC_ARENA_MAX`.
    pub env: &'a [(String, String)],
    /// Where the child's stderr (its log) goes; default `stderr.log` in the temp dir.
    pub log: Option<PathBuf>,
}

impl<'a> ServerOptions<'a> {
    /// Log level `warn`, default stats interval, no extra config, env or log file.
    pub fn new(tool: &'a str, bin: &'a Path) -> ServerOptions<'a> {
        ServerOptions {
            bin,
            tool,
            log_level: "warn",
            stats_interval_s: None,
            extra_config: String::new(),
            env: &[],
            log: None,
        }
    }

    /// The config file: loopback, the given port, data under `dir/data`.
    fn config(&self, port: u16, dir: &Path) -> String {
        let stats = self
            .stats_interval_s
            .map_or(String::new(), |s| format!("stats_interval_s = {s}\n"));
        format!(
            "[server]\nip = \"127.0.0.1\"\nport = {port}\n{stats}\n\
             [storage]\ndata_dir = \"{}\"\n\n[log]\nlevel = \"{}\"\n{}",
            dir.join("data").display(),
            self.log_level,
            self.extra_config
        )
    }
}

/// A `huddle serve` child on a free loopback port, in its own temp dir;
/// dropping it kills the child and removes the dir (unless `keep`).
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    /// The temp dir: `huddle.toml`, `data/`, and `stderr.log` by default.
    pub dir: PathBuf,
    /// The child's stderr.
    pub log: PathBuf,
    /// Leave the temp dir behind (for a failed run to be looked at).
    pub keep: bool,
}

impl ServerProcess {
    /// Starts the server and waits until it accepts connections.
    pub fn start(options: &ServerOptions) -> Result<ServerProcess, String> {
        // The child runs in its temp dir, so a relative binary path must be resolved here.
        let bin = options
            .bin
            .canonicalize()
            .map_err(|e| format!("server binary {}: {e}", options.bin.display()))?;
        let dir = std::env::temp_dir().join(format!(
            "{}-{}-{}",
            options.tool,
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = options
            .log
            .clone()
            .unwrap_or_else(|| dir.join("stderr.log"));
        let mut last_error = String::new();
        // A probed port can be taken before the server binds it; try a few.
        for _attempt in 0..3 {
            let port = free_port()?;
            let config_path = dir.join("huddle.toml");
            std::fs::write(&config_path, options.config(port, &dir))
                .map_err(|e| format!("{}: {e}", config_path.display()))?;
            match spawn_and_wait(&bin, &dir, &log, port, options.env) {
                Ok(child) => {
                    return Ok(ServerProcess {
                        child,
                        port,
                        dir,
                        log,
                        keep: false,
                    });
                }
                Err(e) => last_error = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `ws://127.0.0.1:<port>/xiaozhi/v1/`, where devices connect.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/xiaozhi/v1/", self.port)
    }

    /// `127.0.0.1:<port>`, the HTTP API (`/metrics`, `/meetings`).
    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's whole log (its stderr); empty when unreadable.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for an error message.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log_text();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A loopback port nobody listens on right now (the server may still lose it).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs the server and waits until its port accepts a connection, so the
/// measurement does not start while the server is still loading.
fn spawn_and_wait(
    bin: &Path,
    dir: &Path,
    log_path: &Path,
    port: u16,
    env: &[(String, String)],
) -> Result<Child, String> {
    let log =
        std::fs::File::create(log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(dir.join("huddle.toml"))
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
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

// ---------------------------------------------------------------- audio

/// `wav` when given, else the named fixture of `tests/fixtures/make_fixtures.sh`.
pub fn wav_or_fixture(wav: Option<&Path>, fixture_name: &str) -> Result<PathBuf, String> {
    match wav {
        Some(path) => Ok(path.to_path_buf()),
        None => fixture(fixture_name),
    }
}

/// Generates the speech fixtures into `target/fixtures` (the script's own
/// default; it rebuilds only what is missing or stale) and returns
/// `<name>.wav`.
pub fn fixture(name: &str) -> Result<PathBuf, String> {
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
    Ok(root.join(format!("target/fixtures/{name}.wav")))
}

/// The samples of a 16 kHz mono 16-bit WAV: the only format the server's
/// Opus encoder takes, so anything else is refused here with a clear message.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, String> {
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

/// The WAV as 60 ms Opus packets in `version` framing, encoded and framed
/// once up front so sending a frame costs the generator nothing but a clone.
pub fn opus_frames(wav: &Path, version: FramingVersion) -> Result<Vec<Bytes>, String> {
    let pcm = read_wav(wav)?;
    let packets = OpusEncoder::new()
        .and_then(|mut encoder| encoder.encode_all(&pcm))
        .map_err(|e| format!("opus encode: {e}"))?;
    if packets.is_empty() {
        return Err(format!("{} holds no audio", wav.display()));
    }
    Ok(packets
        .iter()
        .map(|packet| {
            let mut frame = Vec::with_capacity(packet.len() + 16);
            encode_into(version, PacketKind::Opus, packet, &mut frame);
            Bytes::from(frame)
        })
        .collect())
}

// ---------------------------------------------------------------- device

/// Opens a device's WebSocket (`Device-Id`, `Protocol-Version` headers) with
/// Nagle off and [`CONNECT_TIMEOUT`] on reads and writes; a caller that
/// polls switches to non-blocking itself.
pub fn connect(url: &str, device_id: &str, protocol: u8) -> Result<WebSocket<TcpStream>, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("bad url: {e}"))?;
    let header = |value: String| HeaderValue::from_str(&value).map_err(|e| e.to_string());
    request
        .headers_mut()
        .insert("device-id", header(device_id.to_string())?);
    request
        .headers_mut()
        .insert("protocol-version", header(protocol.to_string())?);
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

/// Sends the firmware's hello (`version` = the protocol version) and waits
/// for the server's; the socket must still be blocking.
pub fn hello(ws: &mut WebSocket<TcpStream>, protocol: u8) -> Result<(), String> {
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
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => continue,
            Err(e) => return Err(format!("waiting for hello: {e}")),
        }
    }
    Err("no hello reply within 10 s".into())
}

/// A read or write that found nothing to do: non-blocking `WouldBlock`, a
/// socket timeout, or EINTR (a read with a timeout ends with it when the
/// process is stopped and continued), not a failure.
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// One `read` that retries on EINTR instead of failing.
pub fn read_retrying(stream: &mut impl Read, chunk: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(chunk) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            read => return read,
        }
    }
}

/// Sleeps until `at` (at once when it has passed): `thread::sleep` is
/// precise to microseconds, unlike socket timeouts.
pub fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
}

// ---------------------------------------------------------------- HTTP

/// Plain HTTP/1.1 GET (no client crate needed for `/metrics` and
/// `/meetings`): `(status, body)`.
pub fn http_get(addr: &str, target: &str) -> Result<(u16, String), String> {
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
        let n = read_retrying(&mut stream, &mut chunk).map_err(failed)?;
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
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {target}: no status line"))?;
    Ok((status, body.to_string()))
}

/// True once the headers and `Content-Length` bytes of body have arrived,
/// so a reply is complete without waiting for the server to close.
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

/// `/proc/<pid>/status`, read once so several fields come from one moment.
pub struct ProcStatus {
    path: String,
    text: String,
}

impl ProcStatus {
    pub fn read(pid: u32) -> Result<ProcStatus, String> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        Ok(ProcStatus { path, text })
    }

    /// The number of a `Name:` line (`VmRSS:` in KiB, `Threads:` a count).
    pub fn field(&self, name: &str) -> Result<u64, String> {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{}: no {name}", self.path))
    }
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    ProcStatus::read(pid)?.field("VmRSS:")
}

/// CPU seconds (user + system, all threads) of `pid`: a number, `"self"`
/// for this process, or `<pid>/task/<tid>` for one thread.
pub fn cpu_seconds(pid: &str) -> Result<f64, String> {
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

/// Jiffies per second (`getconf CLK_TCK`, 100 when unknown), asked once.
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

/// Busy and stolen CPU seconds of the whole machine (all cores), from
/// `/proc/stat`: what else ran beside the server and the tool.
pub fn machine_cpu() -> Result<(f64, f64), String> {
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

/// `loadavg 0.12 0.34 0.56`, printed at a start so a loaded box shows.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().take(3).collect();
            format!("loadavg {}", parts.join(" "))
        })
        .unwrap_or_else(|_| "loadavg unknown".into())
}

/// CPU counters at one moment: the server (when its pid is known), this
/// process and the whole machine. Two samples give each one's share of a
/// window, and so how much of the machine others took.
pub struct CpuSample {
    pub at: Instant,
    pub server: Option<f64>,
    pub client: f64,
    pub machine_busy: f64,
    pub machine_steal: f64,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> Result<CpuSample, String> {
        let at = Instant::now();
        let server = server_pid
            .map(|p| cpu_seconds(&p.to_string()))
            .transpose()?;
        let client = cpu_seconds("self")?;
        let (machine_busy, machine_steal) = machine_cpu()?;
        Ok(CpuSample {
            at,
            server,
            client,
            machine_busy,
            machine_steal,
        })
    }

    /// Wall seconds since `before` (never 0, so a percentage stays finite).
    pub fn wall_since(&self, before: &CpuSample) -> f64 {
        (self.at - before.at).as_secs_f64().max(1e-9)
    }

    /// The server's CPU since `before`, % of one core.
    pub fn server_pct_since(&self, before: &CpuSample) -> Option<f64> {
        let used = self.server? - before.server?;
        Some(used / self.wall_since(before) * 100.0)
    }

    /// This process's CPU since `before`, % of one core.
    pub fn client_pct_since(&self, before: &CpuSample) -> f64 {
        (self.client - before.client) / self.wall_since(before) * 100.0
    }

    /// Busy CPU of everything but the server and this process (other
    /// processes, kernel, steal), % of one core; unknown without the server.
    pub fn other_pct_since(&self, before: &CpuSample) -> Option<f64> {
        let machine = self.machine_busy - before.machine_busy;
        let ours = (self.server? - before.server?) + (self.client - before.client);
        Some((machine - ours).max(0.0) / self.wall_since(before) * 100.0)
    }

    /// CPU time the hypervisor took from this VM since `before`, % of one core.
    pub fn steal_pct_since(&self, before: &CpuSample) -> f64 {
        (self.machine_steal - before.machine_steal) / self.wall_since(before) * 100.0
    }
}

// ---------------------------------------------------------------- RESULTS.md

/// A tool's own `##` section of a results file: where its rows or blocks go.
pub struct Section {
    /// The start of the heading line, e.g. `## Load generator`; the heading
    /// may go on (`(perf/loadgen.rs)`, a date) and still match.
    pub heading: &'static str,
    /// Heading and prose written when the file has no such section yet.
    pub intro: &'static str,
}

impl Section {
    /// Adds `row` after the last row of the section's first table: the
    /// section runs to the next heading of any level, so prose after the
    /// table, a `###` sub-section's table and later sections are left alone.
    /// Without a table there the table (`header` and row) goes at the end of
    /// the section; without the section, the section goes at the end of the file.
    pub fn add_row(&self, path: &Path, header: [&str; 2], row: &str) -> Result<(), String> {
        let mut lines = read_lines(path)?;
        match self.find(&lines) {
            Some(start) => {
                let end = section_end(&lines, start, |l| l.starts_with('#'));
                match lines[start..end].iter().position(|l| l.starts_with('|')) {
                    Some(first) => {
                        let table_end = lines[start + first..end]
                            .iter()
                            .position(|l| !l.starts_with('|'))
                            .map_or(end, |i| start + first + i);
                        lines.insert(table_end, row.to_string());
                    }
                    None => {
                        let table = if lines[end - 1].is_empty() {
                            [header[0], header[1], row, ""]
                        } else {
                            ["", header[0], header[1], row]
                        };
                        lines.splice(end..end, table.map(str::to_string));
                    }
                }
            }
            None => self.create(&mut lines, &[header[0], header[1], row]),
        }
        write_lines(path, &lines)
    }

    /// Adds `block` (a `###` sub-section of its own) at the end of the
    /// section, which runs to the next `##` heading; creates the section at
    /// the end of the file the first time.
    pub fn add_block(&self, path: &Path, block: &str) -> Result<(), String> {
        let mut lines = read_lines(path)?;
        let block: Vec<&str> = block.lines().collect();
        match self.find(&lines) {
            Some(start) => {
                let end = section_end(&lines, start, |l| l.starts_with("## "));
                let mut insert: Vec<String> = Vec::new();
                if lines[..end].last().is_some_and(|l| !l.is_empty()) {
                    insert.push(String::new());
                }
                insert.extend(block.iter().map(|l| l.to_string()));
                if end < lines.len() {
                    insert.push(String::new());
                }
                lines.splice(end..end, insert);
            }
            None => self.create(&mut lines, &block),
        }
        write_lines(path, &lines)
    }

    /// The index of the section's heading line.
    fn find(&self, lines: &[String]) -> Option<usize> {
        lines.iter().position(|l| l.starts_with(self.heading))
    }

    /// Appends the intro and `content` at the end of the file, after a blank line.
    fn create(&self, lines: &mut Vec<String>, content: &[&str]) {
        if lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(String::new());
        }
        lines.extend(self.intro.lines().map(str::to_string));
        lines.extend(content.iter().map(|l| l.to_string()));
    }
}

/// The index of the first line after `start` that `ends` the section, or the
/// end of the file.
fn section_end(lines: &[String], start: usize, ends: impl Fn(&str) -> bool) -> usize {
    lines[start + 1..]
        .iter()
        .position(|l| ends(l))
        .map_or(lines.len(), |i| start + 1 + i)
}

/// The file's lines; none when it does not exist yet.
fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `lines` back, newline-terminated.
fn write_lines(path: &Path, lines: &[String]) -> Result<(), String> {
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// A Markdown table cell holding the command in backticks (`|` escaped).
pub fn command_cell(command: &str) -> String {
    format!("`{}`", command.replace('|', "\\|"))
}

/// The command line as typed (arguments with spaces quoted), so a result
/// row says how to reproduce it.
pub fn command_line() -> String {
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

/// Cores this process may use: the machine column of a result.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Today's UTC date, `YYYY-MM-DD` (days-to-civil, proleptic Gregorian; no
/// date crate needed).
pub fn utc_date() -> String {
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

    const SECTION: Section = Section {
        heading: "## Tool",
        intro: "## Tool (perf/tool.rs)\n\nintro\n\n",
    };
    const HEADER: [&str; 2] = ["| h |", "|---|"];

    /// A fresh file in the temp dir holding `text`; `name` keeps parallel tests apart.
    fn file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("support-{name}-{}.md", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn take(path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let _ = std::fs::remove_file(path);
        text
    }

    #[test]
    fn rows_go_into_the_first_table_of_the_section_only() {
        let path = file(
            "first-table",
            "# Results\n\n## Tool (x)\n\nintro\n\n| h |\n|---|\n| old |\n\nprose\n\n\
             ### Another run\n\n| item | value |\n|---|---|\n| a | b |\n\n## Later\n\n| z |\n",
        );
        SECTION.add_row(&path, HEADER, "| new |").unwrap();
        let text = take(&path);
        assert!(text.contains("| old |\n| new |\n\nprose"), "{text}");
        assert_eq!(text.matches("| new |").count(), 1, "{text}");
    }

    #[test]
    fn a_row_never_lands_in_a_later_sub_section_or_the_end_of_the_file() {
        // The last section of the file, with a `###` table after its own table.
        let path = file(
            "sub-section",
            "## Tool\n\n| h |\n|---|\n| old |\n\n### Bound\n\n| k | v |\n|---|---|\n| a | b |\n",
        );
        SECTION.add_row(&path, HEADER, "| new |").unwrap();
        let text = take(&path);
        assert!(text.contains("| old |\n| new |\n\n### Bound"), "{text}");
        assert!(text.ends_with("| a | b |\n"), "{text}");
    }

    #[test]
    fn the_section_and_its_table_are_created_once() {
        let path = file("created", "# Results\n\n## Other\n\n| a |\n");
        SECTION.add_row(&path, HEADER, "| row 1 |").unwrap();
        let grown = std::fs::read_to_string(&path).unwrap() + "\n## Later\n\ntext\n";
        std::fs::write(&path, grown).unwrap();
        SECTION.add_row(&path, HEADER, "| row 2 |").unwrap();
        let text = take(&path);
        assert_eq!(text.matches(SECTION.heading).count(), 1, "{text}");
        assert_eq!(text.matches("| h |").count(), 1, "{text}");
        let row1 = text.find("| row 1 |").unwrap();
        let row2 = text.find("| row 2 |").unwrap();
        assert!(
            row1 < row2 && row2 < text.find("## Later").unwrap(),
            "{text}"
        );
        assert!(text.find("| a |").unwrap() < text.find(SECTION.heading).unwrap());
    }

    #[test]
    fn a_section_without_a_table_gets_one() {
        let path = file("no-table", "## Tool\n\nprose\n\n## Later\n");
        SECTION.add_row(&path, HEADER, "| row |").unwrap();
        let text = take(&path);
        assert!(
            text.contains("prose\n\n| h |\n|---|\n| row |\n\n## Later"),
            "{text}"
        );
    }

    #[test]
    fn blocks_go_to_the_end_of_the_section() {
        let path = file("blocks", "# Results\n\n## Other\n\ntext\n");
        SECTION.add_block(&path, "### run 1\n\n| a |\n").unwrap();
        let grown = std::fs::read_to_string(&path).unwrap() + "\n## Later\n\ntext\n";
        std::fs::write(&path, grown).unwrap();
        SECTION.add_block(&path, "### run 2\n").unwrap();
        let text = take(&path);
        assert_eq!(text.matches(SECTION.heading).count(), 1, "{text}");
        let run1 = text.find("### run 1").unwrap();
        let run2 = text.find("### run 2").unwrap();
        assert!(
            run1 < run2 && run2 < text.find("## Later").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn utc_date_is_a_date() {
        let date = utc_date();
        assert_eq!(date.len(), 10, "{date}");
        assert!(date.starts_with("20"), "{date}");
    }

    #[test]
    fn status_fields_parse() {
        let status = ProcStatus::read(std::process::id()).unwrap();
        assert!(status.field("VmRSS:").unwrap() > 0);
        assert!(status.field("Threads:").unwrap() >= 1);
        assert!(status.field("NoSuchField:").is_err());
    }
}
