//! The `huddle` command line: `serve`, `check-config`, `device` (later), `--version`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use huddle::config::{self, ConfigStore};
use huddle::log::LogSettings;

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
    }
}

fn serve(path: Option<PathBuf>) -> ExitCode {
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
