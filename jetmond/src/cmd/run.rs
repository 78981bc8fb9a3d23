//! `jetmond run`: the daemon. Loads the config, starts the engine, the store and the notifier, installs
//! the signal handlers and hands over to the control loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jetmon_engine::{Engine, EngineConfig};
use jetmond::config::{Config, ConfigError, LoadedConfig, LogFormat};
use jetmond::daemon::notify::FileNotifier;
use jetmond::daemon::{Daemon, DaemonSettings, Reloader, Signals};
use jetmond::status::StatusMachine;
use jetmond::store::mysql::MysqlStore;
use jetmond::store::{FileStore, SiteStore, StoreError};

/// Round tick with `use_variable_check_intervals`, as in the original.
const VARIABLE_INTERVAL_TICK: Duration = Duration::from_secs(60);

/// Options of `jetmond run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The JSON config file (jetmon.js config files are accepted). Without one, the embedded defaults.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check every site once (one round, statuses and notifications as usual), then exit.
    #[arg(long)]
    pub once: bool,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting cannot work with this build.
    #[error("{0}")]
    Unsupported(String),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] jetmon_engine::EngineError),
    /// A file or signal handler could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// Loads the config named on the command line, or the embedded defaults, logging every warning.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    let Some(path) = path else {
        return Ok(Config::default_embedded());
    };
    let loaded = Config::load(path, std::env::vars())?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.config)
}

/// The database store when `database` is set, else the embedded file store.
fn open_store(config: &Config) -> Result<Box<dyn SiteStore>, StoreError> {
    match &config.database {
        Some(db) => {
            let store = MysqlStore::connect(
                db,
                config.bucket_range(),
                config.batch_size,
                config.use_variable_check_intervals,
                config.db_updates_enable,
            )?;
            tracing::info!(
                database = %format!("{}:{}/{}", db.host, db.port, db.name),
                buckets = ?config.bucket_range(),
                db_updates = config.db_updates_enable,
                "database mode"
            );
            Ok(Box::new(store))
        }
        None => {
            tracing::info!(
                sites_file = %config.sites_file.display(),
                state_file = %config.state_file.display(),
                "embedded mode"
            );
            Ok(Box::new(FileStore::open(&config.sites_file, &config.state_file)?))
        }
    }
}

/// Options of `jetmond db init`.
#[derive(Debug, clap::Args)]
pub struct DbInitArgs {
    /// The JSON config file naming the database.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// `jetmond db init`: creates the table, index and optional columns if they are missing.
pub fn db_init(args: DbInitArgs) -> Result<(), RunError> {
    let config = load_config(Some(&args.config))?;
    let Some(db) = &config.database else {
        return Err(RunError::Unsupported(
            "the config has no `database`: nothing to initialise".to_string(),
        ));
    };
    let mut store = MysqlStore::connect(db, config.bucket_range(), config.batch_size, false, false)?;
    store.init_schema()?;
    println!("schema of {}:{}/{} is up to date", db.host, db.port, db.name);
    Ok(())
}

fn engine_config(config: &Config) -> EngineConfig {
    let mut engine = EngineConfig::default();
    engine.threads = config.engine_threads;
    engine.max_in_flight = config.max_in_flight as usize;
    engine.check_timeout = Duration::from_secs(config.check_timeout_sec);
    engine.connect_timeout = engine.connect_timeout.min(engine.check_timeout);
    engine.tls_timeout = engine.tls_timeout.min(engine.check_timeout);
    engine.max_redirects = config.max_redirects;
    engine
}

fn daemon_settings(config: &Config, once: bool) -> DaemonSettings {
    let configured_interval = Duration::from_secs(config.min_time_between_rounds_sec);
    DaemonSettings {
        // The original ticks every minute with variable intervals and picks the sites that are due.
        round_interval: if config.use_variable_check_intervals {
            VARIABLE_INTERVAL_TICK.min(configured_interval)
        } else {
            configured_interval
        },
        variable_intervals: config.use_variable_check_intervals.then_some(configured_interval),
        once,
        host_name: if config.host_name.is_empty() {
            machine_host_name()
        } else {
            config.host_name.clone()
        },
        stats_interval: Duration::from_millis(config.stats_update_interval_ms),
        drain_timeout: Duration::from_secs(config.check_timeout_sec),
    }
}

/// SIGHUP re-reads the file (and the environment). Settings of the loop and the status machine apply at
/// once; those that shape the engine, the store or the notifier need a restart and are reported.
fn reloader(path: Option<PathBuf>, running: Config, once: bool) -> Reloader {
    Box::new(move || {
        let Some(path) = &path else {
            return Err("running on the embedded defaults: there is no file to re-read".to_string());
        };
        let loaded = Config::load(path, std::env::vars()).map_err(|e| e.to_string())?;
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let new = loaded.config;
        let needs_restart = [
            ("engine_threads", new.engine_threads != running.engine_threads),
            ("max_in_flight", new.max_in_flight != running.max_in_flight),
            ("check_timeout_sec", new.check_timeout_sec != running.check_timeout_sec),
            ("max_redirects", new.max_redirects != running.max_redirects),
            ("database", new.database != running.database),
            ("sites_file", new.sites_file != running.sites_file),
            ("state_file", new.state_file != running.state_file),
            (
                "notifications_file",
                new.notifications_file != running.notifications_file,
            ),
            ("verifiers", new.verifiers != running.verifiers),
            (
                "bucket_no_min/bucket_no_max",
                new.bucket_range() != running.bucket_range(),
            ),
        ];
        for (key, changed) in needs_restart {
            if changed {
                tracing::warn!(key, "changed in the config file; it takes effect at the next restart");
            }
        }
        Ok((daemon_settings(&new, once), new.machine_config()))
    })
}

fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "jetmon".to_string())
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(args: RunArgs, init_logging: impl FnOnce(LogFormat)) -> Result<(), RunError> {
    let loaded = match args.config.as_deref() {
        Some(path) => Config::load(path, std::env::vars())?,
        None => LoadedConfig {
            config: Config::default_embedded(),
            warnings: Vec::new(),
        },
    };
    init_logging(loaded.config.log_format);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let config = loaded.config;
    if !config.verifiers.is_empty() {
        return Err(RunError::Unsupported(
            "`verifiers` is set, but this build has no veriflier client yet: remove the verifiers to decide on \
             local re-checks alone"
                .to_string(),
        ));
    }
    tracing::warn!("no verifliers configured: a site is declared DOWN on local re-checks alone");
    if !config.demo_target.is_empty() {
        let addr = config.demo_target.parse().map_err(|e| {
            RunError::Unsupported(format!("demo_target {:?} is not an address: {e}", config.demo_target))
        })?;
        let bound = jetmond::demo::start(addr).map_err(|source| RunError::Io {
            what: format!("demo target on {addr}"),
            source,
        })?;
        tracing::info!(%bound, "demo target listening");
    }
    let store = open_store(&config)?;
    let notifier = FileNotifier::open(&config.notifications_file).map_err(|source| RunError::Io {
        what: format!("notifications file {}", config.notifications_file.display()),
        source,
    })?;
    let signals = Arc::new(Signals::default());
    for (signal, flag) in [
        (signal_hook::consts::SIGTERM, &signals.stop),
        (signal_hook::consts::SIGINT, &signals.stop),
        (signal_hook::consts::SIGHUP, &signals.reload),
    ] {
        signal_hook::flag::register(signal, Arc::clone(flag)).map_err(|source| RunError::Io {
            what: "signal handler".to_string(),
            source,
        })?;
    }
    let engine = Engine::start(engine_config(&config))?;
    let settings = daemon_settings(&config, args.once);
    let machine = StatusMachine::new(config.machine_config());
    let reloader = reloader(args.config.clone(), config, args.once);
    Daemon::new(settings, engine, store, Box::new(notifier), machine, signals)
        .with_reloader(reloader)
        .run();
    Ok(())
}
