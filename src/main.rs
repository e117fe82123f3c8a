//! The `huddle` command line: `serve`, `check-config`, `device`, `--version`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use huddle::config::{self, ConfigStore};
use huddle::device::{DeviceOptions, ListenMode};
use huddle::log::LogSettings;
use huddle::protocol::framing::FramingVersion;

#[derive(Parser)]
#[command(name = "huddle", version, about = "Server for xiaozhi voice badges")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Config file (default: huddle.toml in the working directory, if present).
        #[arg(long, env = "HUDDLE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print the effective config as TOML.
    CheckConfig {
        /// Config file (default: huddle.toml in the working directory, if present).
        path: Option<PathBuf>,
    },
    /// Simulate a badge: stream a WAV file to a server as Opus and print every
    /// JSON message it sends back. Exits 1 when the server breaks the contract.
    Device(DeviceArgs),
}

#[derive(clap::Args)]
struct DeviceArgs {
    /// Server WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8000/xiaozhi/v1/")]
    url: String,
    /// 16 kHz mono 16-bit WAV file to stream.
    #[arg(long)]
    wav: PathBuf,
    /// `mode` of `listen start`.
    #[arg(long, default_value = "auto")]
    mode: ListenMode,
    /// Binary framing version (Protocol-Version header and hello `version`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    protocol: u8,
    /// Device-Id header (default: a random locally administered MAC).
    #[arg(long)]
    device_id: Option<String>,
    /// Sent as `Authorization: Bearer <token>`.
    #[arg(long)]
    token: Option<String>,
    /// Send the packets as fast as possible instead of one per 60 ms.
    #[arg(long)]
    fast: bool,
    /// How long to keep reading after `listen stop` before closing.
    #[arg(long, default_value_t = 1500)]
    linger_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { path } => match config::load_startup(path.as_deref()) {
            Ok((config, _)) => {
                print!("{}", config.to_toml_string());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::from(2)
            }
        },
        Command::Serve { config: path } => serve(path),
        Command::Device(args) => device(args),
    }
}

fn device(args: DeviceArgs) -> ExitCode {
    let mut options = DeviceOptions::new(args.url, args.wav);
    options.mode = args.mode;
    // The parser allows only 1..=3.
    options.version = FramingVersion::from_number(i64::from(args.protocol)).unwrap_or_default();
    if let Some(id) = args.device_id {
        options.device_id = id;
    }
    options.token = args.token;
    options.fast = args.fast;
    options.linger = std::time::Duration::from_millis(args.linger_ms);
    match huddle::device::run(&options) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("device: {error}");
            ExitCode::from(1)
        }
    }
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    huddle::alloc::tune();
    let (config, file) = match config::load_startup(path.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let settings = LogSettings {
        level: config.log.level.to_filter(),
        max_message_length: config.log.max_message_length,
        file: config.log.file.as_ref().map(PathBuf::from),
        ..LogSettings::default()
    };
    let log = match huddle::log::install(&settings) {
        Ok(control) => Some(control),
        Err(error) => {
            eprintln!("logging unavailable: {error}");
            None
        }
    };
    let store = Arc::new(ConfigStore::new(config, file));
    match huddle::server::run(store, log.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            ::log::error!("{error}");
            eprintln!("{error}");
            if let Some(log) = &log {
                log.flush(std::time::Duration::from_secs(1));
            }
            ExitCode::from(1)
        }
    }
}
