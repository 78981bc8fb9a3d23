//! `jetmond run`: the daemon. Loads the config, starts the engine, the store and the notifier, installs
//! the signal handlers and hands over to the control loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jetmon_engine::{AddressPolicy, Engine, EngineConfig};
use jetmond::config::{Config, ConfigError, LoadedConfig, LogFormat, VeriflierMode};
use jetmond::daemon::legacy_callback::{LegacyCallbackServer, LegacyVeriflier};
use jetmond::daemon::verifliers::VeriflierPool;
use jetmond::daemon::{Daemon, DaemonSettings, Reloader, Signals};
use jetmond::fleet::{LeaseKeeper, LeaseStore};
use jetmond::status::StatusMachine;
use jetmond::store::mysql::MysqlStore;
use jetmond::store::{FileStore, SiteStore, StoreError};
use veriflierd::client::VeriflierClient;
use veriflierd::tls::ClientTls;

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
    /// The ops endpoint could not start.
    #[error(transparent)]
    Ops(#[from] jetmond::ops::OpsServerError),
    /// The server receiving legacy verifliers' results could not start.
    #[error("legacy callback server (legacy_callback_*): {0}")]
    LegacyCallback(#[from] veriflierd::server::ServeError),
    /// The notifier (journal, outbox, WPCOM client) could not start.
    #[error(transparent)]
    Outbox(#[from] jetmond::outbox::OutboxError),
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

/// The database store when `database` is set (with its lease keeper when `bucket_leases` is on), else the
/// embedded file store.
fn open_store(config: &Config) -> Result<(Box<dyn SiteStore>, Option<LeaseKeeper>), StoreError> {
    match &config.database {
        Some(db) => {
            let mut store = MysqlStore::connect(
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
                leases = config.bucket_leases,
                "database mode"
            );
            let keeper = if config.bucket_leases {
                let (pool, server) = store.pool();
                let leases = LeaseStore::new(
                    pool,
                    server,
                    config.resolved_host_name(),
                    config.bucket_range(),
                    Duration::from_secs(config.lease_ttl_sec),
                );
                let keeper = LeaseKeeper::start(leases, Duration::from_secs(config.lease_heartbeat_sec))?;
                store = store.with_leased_buckets(keeper.buckets());
                Some(keeper)
            } else {
                None
            };
            Ok((Box::new(store), keeper))
        }
        None => {
            tracing::info!(
                sites_file = %config.sites_file.display(),
                state_file = %config.state_file.display(),
                "embedded mode"
            );
            Ok((Box::new(FileStore::open(&config.sites_file, &config.state_file)?), None))
        }
    }
}

/// `jetmond fleet status`: the hosts sharing the buckets and what each holds.
pub fn fleet_status(args: ConfigFileArgs) -> Result<(), RunError> {
    let config = load_config(Some(&args.config))?;
    let Some(db) = &config.database else {
        return Err(RunError::Unsupported(
            "the config has no `database`: there is no fleet".to_string(),
        ));
    };
    let store = MysqlStore::connect(db, config.bucket_range(), config.batch_size, false, false)?;
    let (pool, server) = store.pool();
    let mut leases = LeaseStore::new(
        pool,
        server,
        config.resolved_host_name(),
        config.bucket_range(),
        Duration::from_secs(config.lease_ttl_sec),
    );
    let hosts = leases.status()?;
    let total: usize = hosts.iter().map(|h| h.buckets.len()).sum();
    println!(
        "{} host(s), {total} of {} bucket(s) leased",
        hosts.len(),
        config.bucket_range().len()
    );
    for h in hosts {
        println!(
            "{:<30} heartbeat {:>7.1} s ago  {:>4} bucket(s)  {}",
            h.host,
            h.heartbeat_age_sec,
            h.buckets.len(),
            jetmond::fleet::lease_store::ranges(&h.buckets)
        );
    }
    Ok(())
}

/// Options of commands that only need the config file (`db init`, `fleet status`).
#[derive(Debug, clap::Args)]
pub struct ConfigFileArgs {
    /// The JSON config file naming the database.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// `jetmond db init`: creates the table, index and optional columns if they are missing.
pub fn db_init(args: ConfigFileArgs) -> Result<(), RunError> {
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
    // Validated when the config was loaded; a value that no longer parses would have been refused there.
    engine.address_policy = AddressPolicy::public_only(config.allowed_networks().unwrap_or_default());
    engine.dns.overrides = config.resolve_overrides().unwrap_or_default();
    engine
}

/// The verifliers' pool and, when some veriflier is legacy, the server receiving their results.
type Verifliers = (VeriflierPool, Option<LegacyCallbackServer>);

/// Clients for the configured verifliers, each verifying the veriflier's certificate, and the legacy
/// callback server when needed; `None` without any veriflier.
fn verifliers(config: &Config, monitor_name: &str) -> Result<Option<Verifliers>, RunError> {
    if config.verifiers.is_empty() {
        return Ok(None);
    }
    let set = |p: &PathBuf| !p.as_os_str().is_empty();
    let identity = match (
        set(&config.veriflier_client_cert_file),
        set(&config.veriflier_client_key_file),
    ) {
        (true, true) => Some((
            config.veriflier_client_cert_file.as_path(),
            config.veriflier_client_key_file.as_path(),
        )),
        (false, false) => None,
        _ => {
            return Err(RunError::Unsupported(
                "veriflier_client_cert_file and veriflier_client_key_file must be set together".to_string(),
            ))
        }
    };
    let ca = set(&config.veriflier_ca_file).then_some(config.veriflier_ca_file.as_path());
    let tls = ClientTls::from_files(ca, identity).map_err(|e| RunError::Unsupported(e.to_string()))?;
    let timeout = Duration::from_secs(config.timeout_for_requests_sec);
    let mut clients = Vec::with_capacity(config.verifiers.len());
    for v in &config.verifiers {
        // An IPv6 literal needs brackets in a URL.
        let host = if v.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", v.host)
        } else {
            v.host.clone()
        };
        let client = VeriflierClient::new(
            v.name.clone(),
            &format!("https://{host}:{}", v.port),
            v.auth_token.clone(),
            tls.clone(),
            timeout,
        )
        .map_err(|e| RunError::Unsupported(format!("veriflier {:?}: {e}", v.name)))?
        .with_monitor_name(monitor_name);
        clients.push((client, v.mode));
    }
    tracing::info!(
        verifliers = ?config.verifiers.iter().map(|v| (v.name.as_str(), v.mode)).collect::<Vec<_>>(),
        quorum = config.peer_offline_limit,
        "verifliers confirm DOWN decisions"
    );
    let pool = VeriflierPool::start(clients);
    let callbacks = legacy_callback_server(config, &pool)?;
    Ok(Some((pool, callbacks)))
}

/// The HTTPS server legacy verifliers post their results to, feeding the pool's reply channel; `None`
/// when every veriflier speaks v1.
fn legacy_callback_server(config: &Config, pool: &VeriflierPool) -> Result<Option<LegacyCallbackServer>, RunError> {
    let legacy: Vec<LegacyVeriflier> = config
        .verifiers
        .iter()
        .filter(|v| v.mode == VeriflierMode::Legacy)
        .map(|v| LegacyVeriflier {
            name: v.name.clone(),
            auth_token: v.auth_token.clone(),
        })
        .collect();
    if legacy.is_empty() {
        return Ok(None);
    }
    // Validated when the config was loaded (an address; certificate and key set with a legacy veriflier).
    let addr = config.legacy_callback_address().map_err(RunError::Unsupported)?;
    let tls = veriflierd::https::server_tls(
        &config.legacy_callback_cert_file,
        &config.legacy_callback_key_file,
        None,
    )?;
    let server = LegacyCallbackServer::start(addr, tls, legacy, pool.reply_sender())?;
    Ok(Some(server))
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
        host_name: config.resolved_host_name(),
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
                "legacy_callback_*",
                (
                    &new.legacy_callback_listen,
                    &new.legacy_callback_cert_file,
                    &new.legacy_callback_key_file,
                ) != (
                    &running.legacy_callback_listen,
                    &running.legacy_callback_cert_file,
                    &running.legacy_callback_key_file,
                ),
            ),
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
    if config.verifiers.is_empty() {
        tracing::warn!("no verifliers configured: a site is declared DOWN on local re-checks alone");
    }
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
    // The keeper lives as long as the daemon runs; dropping it after the daemon stops gives the leases up.
    let (store, _lease_keeper) = open_store(&config)?;
    let notifier = jetmond::outbox::notifier_from_config(&config, &config.resolved_host_name())?;
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
    let verifliers = verifliers(&config, &settings.host_name)?;
    let batch_size = config.veriflier_batch_size as usize;
    // Validated when the config was loaded.
    let ops_address = config.ops_address().map_err(RunError::Unsupported)?;
    let weather = config.weather.guard(std::time::Instant::now());
    // Validated at load: empty (off) or an address.
    let (statsd_address, statsd_prefix) = (config.statsd_address.clone(), config.statsd_prefix.clone());
    let reloader = reloader(args.config.clone(), config, args.once);
    let mut daemon = Daemon::new(settings, engine, store, notifier, machine, signals)
        .with_reloader(reloader)
        .with_weather(weather);
    // Kept until the loop returns: dropping the server stops it.
    let _legacy_callbacks = match verifliers {
        Some((pool, callbacks)) => {
            daemon = daemon.with_verifliers(pool, batch_size);
            callbacks
        }
        None => None,
    };
    if let Ok(addr) = statsd_address.parse() {
        let statsd = jetmond::ops::statsd::Statsd::new(addr, &statsd_prefix).map_err(|source| RunError::Io {
            what: "statsd socket".to_string(),
            source,
        })?;
        daemon = daemon.with_statsd(statsd);
    }
    // Kept until the loop returns: dropping the server stops it.
    let _ops_server = match ops_address {
        Some(addr) => {
            let state = Arc::new(jetmond::ops::OpsState::new());
            let server = jetmond::ops::OpsServer::start(addr, Arc::clone(&state))?;
            daemon = daemon.with_ops(state);
            Some(server)
        }
        None => None,
    };
    daemon.run();
    Ok(())
}
