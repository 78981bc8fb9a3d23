//! `jetmond`: the jetmon daemon and its tools. This file only parses arguments and hands over to a command.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("JETMON_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => match cmd::check::run(args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("jetmond check: {e}");
                ExitCode::from(2)
            }
        },
    }
}
