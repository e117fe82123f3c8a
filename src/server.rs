//! Wires the threads together (see ARCHITECTURE.md): binds the listeners
//! first, starts the timer wheel, the stats broadcast and the signal thread,
//! then runs the acceptor until shutdown and closes every connection with 1001.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use std::thread::JoinHandle;

use crate::asr::stage::AsrStage;
use crate::audio::utterance::{LogSink, UtteranceSink};
use crate::audio::worker::AudioWorkers;
use crate::config::{Config, ConfigStore};
use crate::context::ServerContext;
use crate::log::LogControl;
use crate::net::connection::Listener;
use crate::net::handle::ConnEvent;
use crate::net::registry::Registry;
use crate::net::{reactor, stats};
use crate::session::admin::announce_reload;
use crate::shutdown::Shutdown;
use crate::timer::{SystemClock, TimerService, TimerThread};

/// Timer wheel resolution; the contract asks for ≤ 100 ms.
const TICK_MS: u64 = 10;
/// How long shutdown waits for connections to finish their close handshake.
const DRAIN: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub enum ServerError {
    /// A listener could not be bound (exit status 1).
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    Io(std::io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            ServerError::Io(error) => write!(f, "server failed: {error}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// What an embedding (the binary, or a test) chooses about a server.
#[derive(Default)]
pub struct ServerOptions {
    /// Where finished utterances go; `None` = the ASR engine the config
    /// selects (or a log line when recognition is off). Tests pass a recorder.
    pub utterance_sink: Option<Arc<dyn UtteranceSink>>,
    /// The installed global logger, retuned by reloads.
    pub log: Option<LogControl>,
    /// Install SIGHUP/SIGTERM/SIGINT handling (the binary does; tests do not).
    pub handle_signals: bool,
    /// An already bound device listener (tests bind port 0); else `server.ip:port` is bound.
    pub device_listener: Option<std::net::TcpListener>,
}

/// A started server: its threads run until [`RunningServer::shutdown`] or a signal.
pub struct RunningServer {
    ctx: Arc<ServerContext>,
    device_addr: SocketAddr,
    acceptor: JoinHandle<std::io::Result<()>>,
    timer_thread: TimerThread,
    audio: AudioWorkers,
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(store: Arc<ConfigStore>, log: Option<LogControl>) -> Result<(), ServerError> {
    let options = ServerOptions {
        log,
        handle_signals: true,
        ..ServerOptions::default()
    };
    start(store, options)?.wait()
}

/// Binds, starts every thread and returns at once.
pub fn start(
    store: Arc<ConfigStore>,
    options: ServerOptions,
) -> Result<RunningServer, ServerError> {
    let config = store.current();
    let configured_addr = SocketAddr::new(config.server.ip, config.server.port);
    let device_listener = match options.device_listener {
        Some(listener) => listener
            .set_nonblocking(true)
            .map(|()| mio::net::TcpListener::from_std(listener))
            .map_err(ServerError::Io)?,
        None => reactor::bind(configured_addr).map_err(|error| ServerError::Bind {
            addr: configured_addr,
            error,
        })?,
    };
    let device_addr = device_listener.local_addr().map_err(ServerError::Io)?;
    let mut listeners = vec![(device_listener, Listener::Device)];
    if let Some(port) = config.server.http_port {
        let addr = SocketAddr::new(config.server.ip, port);
        let listener = reactor::bind(addr).map_err(|error| ServerError::Bind { addr, error })?;
        listeners.push((listener, Listener::ApiOnly));
    }

    let (timers, timer_thread) =
        TimerService::start(Arc::new(SystemClock::new()), TICK_MS).map_err(ServerError::Io)?;
    let sink = match options.utterance_sink {
        Some(sink) => sink,
        None => utterance_sink(&config).map_err(ServerError::Io)?,
    };
    let audio = AudioWorkers::start(config.audio.workers, config.audio.ring_kib * 1024, sink)
        .map_err(ServerError::Io)?;
    let meetings = crate::modes::meeting::service::MeetingService::start(&config);
    let registry = Arc::new(Registry::new());
    let workflow = crate::workflow::service::WorkflowService::start(
        &config.storage.data_dir,
        Arc::clone(&registry),
    );
    let ctx = Arc::new(ServerContext {
        workflow,
        coding: crate::modes::coding::service::CodingService::start(),
        assistant: crate::modes::chat::service::AssistantService::start(),
        meetings,
        device_url: device_url(&config),
        config: Arc::clone(&store),
        registry,
        timers,
        audio: audio.handle(),
        shutdown: Shutdown::new(),
        started: Instant::now(),
        host_load: Default::default(),
        log: options.log,
    });
    ctx.host_load.sample();
    stats::schedule_periodic(&ctx);
    ctx.meetings.schedule_sweeps(&ctx);
    if options.handle_signals {
        start_signal_thread(&ctx).map_err(ServerError::Io)?;
    }

    let addresses: Vec<String> = listeners
        .iter()
        .map(|(l, kind)| match l.local_addr() {
            Ok(a) => format!("{a} ({kind:?})"),
            Err(_) => format!("? ({kind:?})"),
        })
        .collect();
    ::log::info!(
        "listening on {}; devices connect to {}; {} audio workers",
        addresses.join(", "),
        ctx.device_url,
        audio.worker_count()
    );
    let acceptor_ctx = Arc::clone(&ctx);
    let acceptor = std::thread::Builder::new()
        .name("acceptor".to_string())
        .spawn(move || reactor::run(listeners, acceptor_ctx))
        .map_err(ServerError::Io)?;
    Ok(RunningServer {
        ctx,
        device_addr,
        acceptor,
        timer_thread,
        audio,
    })
}

impl RunningServer {
    pub fn device_addr(&self) -> SocketAddr {
        self.device_addr
    }

    pub fn context(&self) -> &Arc<ServerContext> {
        &self.ctx
    }

    /// Requests shutdown and waits for it.
    pub fn shutdown(self) -> Result<(), ServerError> {
        self.ctx.shutdown.request();
        self.wait()
    }

    /// Waits until shutdown is requested, then closes every connection with
    /// 1001 (waiting up to 3 s for them), stops the threads and flushes logs.
    pub fn wait(self) -> Result<(), ServerError> {
        let accepted = self
            .acceptor
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("acceptor thread panicked")));
        let ctx = self.ctx;
        ::log::info!(
            "shutting down: closing {} connections",
            ctx.registry.live_count()
        );
        ctx.registry.broadcast_live(|| ConnEvent::Shutdown);
        let drain_deadline = Instant::now() + DRAIN;
        while ctx.registry.live_count() > 0 && Instant::now() < drain_deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.audio.stop();
        self.timer_thread.stop();
        ::log::info!("stopped");
        if let Some(log) = &ctx.log {
            log.flush(Duration::from_secs(1));
        }
        accepted.map_err(ServerError::Io)
    }
}

/// The ASR stage for the configured engine; a log line per utterance when
/// recognition is off or its engine is missing (a warning, never a failed start).
fn utterance_sink(config: &Config) -> std::io::Result<Arc<dyn UtteranceSink>> {
    match crate::asr::resolve(config) {
        Ok(Some(engine)) => Ok(Arc::new(AsrStage::start(engine)?)),
        Ok(None) => {
            ::log::info!("speech recognition is off (selected_module.asr = \"none\")");
            Ok(Arc::new(LogSink))
        }
        Err(why) => {
            ::log::warn!("{why}");
            Ok(Arc::new(LogSink))
        }
    }
}

/// SIGHUP reloads the file; SIGTERM/SIGINT request shutdown.
fn start_signal_thread(ctx: &Arc<ServerContext>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
    let ctx = Arc::clone(ctx);
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => match ctx.config.reload_file() {
                        Ok(config) => {
                            ::log::info!("SIGHUP: config reloaded");
                            announce_reload(&ctx, config);
                        }
                        Err(error) => {
                            ::log::error!("SIGHUP: reload rejected, old config stays: {error}")
                        }
                    },
                    _ => {
                        ::log::info!("signal {signal}: shutting down");
                        ctx.shutdown.request();
                    }
                }
            }
        })?;
    Ok(())
}

/// `server.websocket`, else `ws://<advertise_ip or first non-loopback IPv4>:<port>/xiaozhi/v1/`.
pub fn device_url(config: &Config) -> String {
    if let Some(url) = &config.server.websocket {
        return url.clone();
    }
    let host = config
        .server
        .advertise_ip
        .clone()
        .or_else(|| first_non_loopback_ipv4().map(|ip| ip.to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    format!("ws://{host}:{}/xiaozhi/v1/", config.server.port)
}

/// Reads the kernel's local routes (Linux); `None` elsewhere or when only loopback exists.
fn first_non_loopback_ipv4() -> Option<Ipv4Addr> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let mut previous: Option<&str> = None;
    for line in trie.lines() {
        if line.contains("/32 host LOCAL")
            && let Some(IpAddr::V4(ip)) =
                previous.and_then(|p| p.trim().trim_start_matches("|-- ").trim().parse().ok())
            && !ip.is_loopback()
        {
            return Some(ip);
        }
        previous = Some(line);
    }
    None
}
