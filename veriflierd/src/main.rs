//! `veriflierd`: loads the config, starts the server, stops gracefully on SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use veriflierd::config::VeriflierConfig;
use veriflierd::server::{self, StartOptions};

/// jetmon veriflier: confirms DOWN verdicts from an independent vantage point.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The config file (jetmon.js `veriflier.json` keys plus veriflierd's own).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Config file tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Loads FILE (with VERIFLIER_* overrides) and reports whether the server would accept it.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match (cli.command, cli.config) {
        (
            Some(Command::Config {
                action: ConfigAction::Check { file },
            }),
            _,
        ) => check_config(&file),
        (None, Some(file)) => run(&file),
        (None, None) => Err("give --config FILE (or `veriflierd config check FILE`)".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("veriflierd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: &std::path::Path) -> Result<VeriflierConfig, String> {
    let loaded = VeriflierConfig::load(file).map_err(|e| e.to_string())?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.config)
}

fn check_config(file: &std::path::Path) -> Result<(), String> {
    let config = load(file)?;
    // The certificate files are part of what the server needs; a config that names unreadable ones is not OK.
    server::server_tls_config(&config).map_err(|e| e.to_string())?;
    server::callback_tls_config(config.ca_file.as_deref()).map_err(|e| e.to_string())?;
    println!(
        "{}: OK (veriflier {:?}, {} monitor(s), listening on {})",
        file.display(),
        config.veriflier_name,
        config.monitors.len(),
        config.listen_addr()
    );
    Ok(())
}

fn run(file: &std::path::Path) -> Result<(), String> {
    let config = load(file)?;
    // Registered before the server starts so an early SIGTERM is not lost.
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let running = server::start(config, StartOptions::default()).map_err(|e| e.to_string())?;
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "stopping: letting requests in flight finish");
    }
    running.shutdown();
    tracing::info!("stopped");
    Ok(())
}
