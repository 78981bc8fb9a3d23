//! `jetmond`: the jetmon daemon and its tools. This file only parses arguments and hands over to a command.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jetmond::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "jetmond",
    version,
    about = "jetmon: large-scale uptime monitoring with HEAD checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check URLs once and print one JSON line per URL.
    Check(cmd::check::CheckArgs),
    /// Run the monitor: rounds over the sites, the status machine, notifications.
    Run(cmd::run::RunArgs),
    /// Validate a config file without running anything.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// The fleet of hosts sharing the buckets through leases.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// The WPCOM notification outbox: what waits for delivery, and the dead letters.
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Print the undelivered notifications (or, with --dead, the dead letters) as JSON lines.
    List(cmd::outbox::ListArgs),
    /// Put a dead letter (ID) or all of them (--all) back in the delivery queue.
    Replay(cmd::outbox::ReplayArgs),
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// Which host holds which buckets, and how fresh its heartbeat is.
    Status(cmd::run::ConfigFileArgs),
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create `jetpack_monitor_subscription` (and optional columns) where missing; safe to run again.
    Init(cmd::run::ConfigFileArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load and validate FILE (with JETMON_* overrides from the environment) and print the result.
    Check {
        /// The config file.
        file: std::path::PathBuf,
    },
}

fn exit<E: std::fmt::Display>(command: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jetmond {command}: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => {
            init_logging("warn", LogFormat::Human);
            exit("check", cmd::check::run(args).map(|_| ()))
        }
        // The daemon tells its story at info, in the format its config asks for.
        Command::Run(args) => exit("run", cmd::run::run(args, |format| init_logging("info", format))),
        Command::Fleet(FleetCommand::Status(args)) => {
            init_logging("warn", LogFormat::Human);
            exit("fleet status", cmd::run::fleet_status(args))
        }
        Command::Db(DbCommand::Init(args)) => {
            init_logging("warn", LogFormat::Human);
            exit("db init", cmd::run::db_init(args))
        }
        Command::Outbox(OutboxCommand::List(args)) => {
            init_logging("warn", LogFormat::Human);
            exit("outbox list", cmd::outbox::list(args))
        }
        Command::Outbox(OutboxCommand::Replay(args)) => {
            init_logging("warn", LogFormat::Human);
            exit("outbox replay", cmd::outbox::replay(args))
        }
        Command::Config(ConfigCommand::Check { file }) => {
            init_logging("warn", LogFormat::Human);
            exit(
                "config check",
                cmd::run::load_config(Some(&file)).map(|config| {
                    println!(
                        "{}: valid ({} mode)",
                        file.display(),
                        if config.database.is_some() {
                            "database"
                        } else {
                            "embedded"
                        }
                    );
                }),
            )
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level.
fn init_logging(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_level.into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}
