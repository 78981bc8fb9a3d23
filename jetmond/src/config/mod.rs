//! jetmond's configuration: one JSON file, compatible with jetmon.js's `config/config.json`.
//!
//! # Naming scheme
//!
//! Every key's canonical name is lower-case snake_case (`num_of_checks`, `engine_threads`). The same
//! key written in upper case (`NUM_OF_CHECKS`) is accepted as an alias, which is exactly how jetmon.js
//! spelled its keys, so an old config file loads unchanged. Mixed case is not accepted. Writing one key
//! in both spellings is an error rather than a silent pick.
//!
//! Keys that only made sense for jetmon.js's forked Node workers (`NUM_WORKERS`, `NUM_TO_PROCESS`,
//! `DATASET_SIZE`, `WORKER_MAX_CHECKS`, `WORKER_MAX_MEM_MB`, and `DEBUG`) are accepted and ignored, with
//! a [`ConfigWarning`] each. Any other unknown key is an error. Keys starting with `//` are comments
//! and skipped (JSON has no comments; the sample file uses them to document every key).
//!
//! # Environment overrides
//!
//! `JETMON_<KEY>` (the upper-case key) overrides `<key>` of the file. Its value is read as JSON when it
//! parses (`JETMON_NUM_OF_CHECKS=5`, `JETMON_DATABASE='{"user":"jetmon"}'`) and as a plain string
//! otherwise (`JETMON_AUTH_TOKEN=s3cret`); a value that parses as JSON of the wrong type but fits as a
//! string is taken as the string, so `JETMON_AUTH_TOKEN=1234` works. A `JETMON_` variable that matches no
//! key gives a warning, not an error, because the daemon's own command line may read `JETMON_*`
//! variables of its own.
//!
//! # Relative paths
//!
//! `sites_file` and `state_file` are resolved against the config file's directory, so the daemon
//! behaves the same whatever its working directory (systemd starts it in `/`).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use veriflierd::config_file::{self, resolve_path, ConfigFile, Loaded};

pub use veriflierd::config_file::{ConfigError, ConfigWarning, KeyLocation};

use crate::status::{self, MachineConfig};
use crate::weather::WeatherKeys;

/// The highest bucket number the fleet uses (`bucket_no` runs over 0–511).
pub const MAX_BUCKET_NO: u16 = 511;
/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "JETMON_";

const SECONDS_PER_MINUTE: u64 = 60;
/// The legacy callback server's address: every interface, on the port jetmon.js's own server used.
const DEFAULT_LEGACY_CALLBACK_LISTEN: &str = "0.0.0.0:7800";

/// jetmon.js keys that configured its Node worker processes; one event loop per core replaces them.
const WORKER_KEYS: [&str; 5] = [
    "num_workers",
    "num_to_process",
    "dataset_size",
    "worker_max_checks",
    "worker_max_mem_mb",
];
const WORKER_KEY_NOTE: &str =
    "is a jetmon.js worker-process setting and is ignored: jetmond runs one event loop per core (see engine_threads, max_in_flight)";
/// jetmon.js's `DEBUG` switched on verbose logs; log levels now come from `RUST_LOG`.
const DEBUG_KEY: &str = "debug";
const DEBUG_KEY_NOTE: &str = "is ignored: set the log level with RUST_LOG (e.g. RUST_LOG=jetmond=debug)";

/// The whole configuration of `jetmond`, with every default filled in.
///
/// Field names are the canonical key names; see the [module docs](self) for spellings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    // --- jetmon.js keys (same meaning as in the original) ---
    /// Write `site_status` and `last_status_change` back to the database (jetmon.js: `DB_UPDATES_ENABLE`).
    pub db_updates_enable: bool,
    /// Lowest bucket this host monitors.
    pub bucket_no_min: u16,
    /// Highest bucket this host monitors (at most [`MAX_BUCKET_NO`]).
    pub bucket_no_max: u16,
    /// Buckets fetched from the database per query.
    pub batch_size: u32,
    /// Token sent to WPCOM with every notification.
    pub auth_token: String,
    /// Most sites per request to one veriflier.
    pub veriflier_batch_size: u32,
    /// Minutes between re-reads of settings kept in the database.
    pub db_config_updates_min: u64,
    /// Verifliers that must say offline before a site is declared DOWN.
    pub peer_offline_limit: u32,
    /// Failed local checks in all before the verifliers are asked.
    pub num_of_checks: u32,
    /// Minimum seconds between two local re-checks.
    pub time_between_checks_sec: u64,
    /// Milliseconds between two stats lines.
    pub stats_update_interval_ms: u64,
    /// Minutes a site stays DOWN before a failed check confirms it.
    pub time_between_notices_min: u64,
    /// Minimum seconds between the starts of two rounds.
    pub min_time_between_rounds_sec: u64,
    /// Seconds after which an unanswered veriflier request is dropped.
    pub timeout_for_requests_sec: u64,
    /// Use each site's own check interval (a column of the table), with one-minute rounds.
    pub use_variable_check_intervals: bool,
    /// The verifliers asked to confirm a site is down (jetmon.js spelled this key `VERIFIERS`). Empty:
    /// the local re-checks alone decide.
    pub verifiers: Vec<VeriflierConfig>,

    // --- jetmond's own keys ---
    /// Engine threads running checks; 0 means one per CPU core.
    pub engine_threads: usize,
    /// Most checks in flight at once, over all engine threads.
    pub max_in_flight: u32,
    /// Deadline of one whole check (connect, TLS, request, response), in seconds.
    pub check_timeout_sec: u64,
    /// Redirects followed per check.
    pub max_redirects: u8,
    /// The MySQL/MariaDB database holding `jetpack_monitor_subscription`. Absent: embedded mode, with
    /// sites from `sites_file` and statuses in `state_file`.
    pub database: Option<DatabaseConfig>,
    /// Embedded mode: the sites to check, one `url` or `blog_id url` per line.
    pub sites_file: PathBuf,
    /// Embedded mode: where statuses are kept across restarts.
    pub state_file: PathBuf,
    /// Log line format.
    pub log_format: LogFormat,
    /// The name this host gives itself in notifications' `checks` (`host`). Empty: the machine's host name.
    pub host_name: String,
    /// Embedded mode: status-change notifications are appended here as JSON lines (WPCOM delivery is
    /// configured separately).
    pub notifications_file: PathBuf,
    /// Start the built-in demo web server on this address (e.g. `127.0.0.1:8099`) so the example site
    /// list answers without internet access. Empty: no demo server.
    pub demo_target: String,
    /// Networks (CIDR) the checks may reach although they are not public. Everything else that is loopback,
    /// private, link-local or otherwise non-public is refused at connect time (SSRF guard: a site URL must
    /// not make the monitor probe its own network).
    pub allow_networks: Vec<String>,
    /// Fixed answers for names, curl style (`"HOST:PORT:ADDR"`, PORT `*` for any), used before DNS.
    pub resolve: Vec<String>,
    /// Share the bucket range with the other hosts of the fleet through expiring leases in the database,
    /// instead of owning `bucket_no_min..=bucket_no_max` alone. Needs `database`.
    pub bucket_leases: bool,
    /// A lease (and a host's heartbeat) lasts this long; a host that stops heartbeating loses its buckets
    /// to the others within about this time plus one heartbeat.
    pub lease_ttl_sec: u64,
    /// Seconds between heartbeats (each renews this host's leases and rebalances).
    pub lease_heartbeat_sec: u64,
    /// PEM file of the CA certificates that may sign the verifliers' certificates. Empty: the web PKI roots.
    pub veriflier_ca_file: PathBuf,
    /// Client certificate (PEM chain) presented to verifliers that ask for one. Empty: none.
    pub veriflier_client_cert_file: PathBuf,
    /// Private key (PEM) of `veriflier_client_cert_file`.
    pub veriflier_client_key_file: PathBuf,
    /// Where the HTTPS server that receives the results of `"mode": "legacy"` verifliers listens
    /// (`POST /put/host-status`; the verifliers' `jetmon_server_port` is its port). Only started when some
    /// veriflier is legacy.
    pub legacy_callback_listen: String,
    /// Certificate chain (PEM) of the legacy callback server; the verifliers verify it. Needed with a
    /// legacy veriflier.
    pub legacy_callback_cert_file: PathBuf,
    /// Private key (PEM) of `legacy_callback_cert_file`.
    pub legacy_callback_key_file: PathBuf,
    /// Address of the ops endpoint (`/metrics`, `/healthz`, `/readyz`, `/api/…`, the status page at `/`),
    /// e.g. `127.0.0.1:7802` (the original's status port). Plain HTTP without authentication: bind it to
    /// a private address. Empty: no endpoint.
    pub ops_listen: String,
    /// Send every stats line to this statsd server (`host:port`, UDP), as jetmon.js did. Empty: off.
    pub statsd_address: String,
    /// Prefix of the statsd metric names.
    pub statsd_prefix: String,

    // --- WPCOM delivery and its outbox (see `outbox`) ---
    /// Where notifications are delivered: an `https://` URL. Empty: nowhere, notifications are only
    /// written to `notifications_file`.
    pub wpcom_url: String,
    /// How notifications are delivered to `wpcom_url`.
    pub wpcom_mode: WpcomMode,
    /// PEM file of the CA certificates that may sign `wpcom_url`'s certificate. Empty: the Mozilla roots
    /// built in (webpki-roots).
    pub wpcom_ca_file: PathBuf,
    /// PEM file of the client certificate (chain) presented to `wpcom_url`. Empty: none. Needs
    /// `wpcom_client_key_file`.
    pub wpcom_client_cert_file: PathBuf,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub wpcom_client_key_file: PathBuf,
    /// Deadline of one delivery attempt (connect, TLS, request, response), in seconds.
    pub wpcom_timeout_sec: u64,
    /// Embedded mode: the durable outbox of undelivered notifications (an append-only JSON Lines log).
    /// With `database`, the outbox is the `jetmon_notification_outbox` table instead.
    pub outbox_file: PathBuf,
    /// Failed attempts after which a notification is dead-lettered (kept, not retried; see
    /// `jetmond outbox replay`).
    pub outbox_max_attempts: u32,
    /// Age in seconds after which a notification whose attempt failed is dead-lettered.
    pub outbox_max_age_sec: u64,
    /// Deliveries in flight at once (over all sites; one site never has two).
    pub outbox_concurrency: u32,
    /// Delay before the first retry, in milliseconds; it doubles per failure, with jitter.
    pub outbox_retry_initial_ms: u64,
    /// Longest delay between two attempts, in seconds.
    pub outbox_retry_max_sec: u64,

    /// The internet-weather guard's `weather_*` keys (see `weather`; the rule is in
    /// `veriflierd::weather::detector`).
    #[serde(flatten)]
    pub weather: WeatherKeys,
}

/// How notifications are delivered to `wpcom_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WpcomMode {
    /// jetmon.js's wire: `GET {wpcom_url}/jetmon/?data=<url-encoded JSON>`, success is a 2xx with a JSON body.
    #[default]
    Original,
    /// `POST {wpcom_url}` with the JSON as the body (`Content-Type: application/json`).
    Post,
}

/// One veriflier, as jetmon.js configured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VeriflierConfig {
    /// The veriflier's name; its answers are matched by it, so it must be unique.
    pub name: String,
    /// Host name or address to reach it.
    pub host: String,
    /// Port of its HTTPS server. A numeric string is accepted too, as jetmon.js's templated config
    /// files wrote it.
    #[serde(deserialize_with = "port_from_number_or_string")]
    pub port: u16,
    /// Token this monitor sends to the veriflier. A legacy veriflier's callbacks must carry the same token
    /// (its own `auth_token`), as in jetmon.js setups where both sides shared one.
    pub auth_token: String,
    /// The protocol it speaks. Absent (as in every jetmon.js config): `v1`.
    #[serde(default)]
    pub mode: VeriflierMode,
}

/// How jetmond talks to one veriflier (`docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VeriflierMode {
    /// veriflierd's synchronous `POST /v1/check`: the answer carries the results.
    #[default]
    V1,
    /// jetmon.js's protocol, for the original Qt verifliers: `POST /get/host-status`, results posted back
    /// later to jetmond's `/put/host-status` (`legacy_callback_*` keys).
    Legacy,
}

/// Connection settings of the MySQL/MariaDB database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password (prefer `JETMON_DATABASE` in the environment over writing it in the file).
    pub password: String,
    /// Database (schema) name.
    pub name: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "jetmon".into(),
            password: String::new(),
            name: "jetmon".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal or journald.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A loaded, validated configuration and what the operator should be told about it.
pub type LoadedConfig = Loaded<Config>;

impl ConfigFile for Config {
    const ENV_PREFIX: &'static str = ENV_PREFIX;
    const UPPER_CASE_KEYS: bool = true;

    fn ignored_key_note(key: &str) -> Option<&'static str> {
        if WORKER_KEYS.contains(&key) {
            Some(WORKER_KEY_NOTE)
        } else if key == DEBUG_KEY {
            Some(DEBUG_KEY_NOTE)
        } else {
            None
        }
    }

    fn resolve_paths(&mut self, base_dir: &Path) {
        for file in [
            &mut self.sites_file,
            &mut self.state_file,
            &mut self.notifications_file,
            &mut self.outbox_file,
        ] {
            *file = resolve_path(base_dir, file);
        }
        for optional in [
            &mut self.wpcom_ca_file,
            &mut self.wpcom_client_cert_file,
            &mut self.wpcom_client_key_file,
            &mut self.veriflier_ca_file,
            &mut self.veriflier_client_cert_file,
            &mut self.veriflier_client_key_file,
            &mut self.legacy_callback_cert_file,
            &mut self.legacy_callback_key_file,
        ] {
            // Empty means "not set" and must stay empty rather than become the config directory.
            if !optional.as_os_str().is_empty() {
                *optional = resolve_path(base_dir, optional);
            }
        }
    }

    fn impossibility(&self) -> Option<(&'static str, String)> {
        Config::impossibility(self)
    }
}

impl Default for Config {
    /// The original's defaults for its keys; embedded mode (no database) for ours.
    fn default() -> Self {
        Config {
            db_updates_enable: false,
            bucket_no_min: 0,
            bucket_no_max: MAX_BUCKET_NO,
            batch_size: 32,
            auth_token: String::new(),
            veriflier_batch_size: 200,
            db_config_updates_min: 10,
            peer_offline_limit: status::DEFAULT_PEER_OFFLINE_LIMIT,
            num_of_checks: status::DEFAULT_NUM_OF_CHECKS,
            time_between_checks_sec: status::DEFAULT_TIME_BETWEEN_CHECKS.as_secs(),
            stats_update_interval_ms: 10_000,
            time_between_notices_min: status::DEFAULT_TIME_BETWEEN_NOTICES.as_secs() / SECONDS_PER_MINUTE,
            min_time_between_rounds_sec: 300,
            timeout_for_requests_sec: status::DEFAULT_TIMEOUT_FOR_REQUESTS.as_secs(),
            use_variable_check_intervals: false,
            verifiers: Vec::new(),
            engine_threads: 0,
            max_in_flight: 10_000,
            check_timeout_sec: 20,
            max_redirects: 2,
            database: None,
            sites_file: PathBuf::from("sites.txt"),
            state_file: PathBuf::from("jetmond-state.json"),
            log_format: LogFormat::Human,
            host_name: String::new(),
            notifications_file: PathBuf::from("jetmond-notifications.jsonl"),
            demo_target: String::new(),
            allow_networks: Vec::new(),
            resolve: Vec::new(),
            bucket_leases: false,
            lease_ttl_sec: 30,
            lease_heartbeat_sec: 10,
            veriflier_ca_file: PathBuf::new(),
            veriflier_client_cert_file: PathBuf::new(),
            veriflier_client_key_file: PathBuf::new(),
            legacy_callback_listen: DEFAULT_LEGACY_CALLBACK_LISTEN.to_string(),
            legacy_callback_cert_file: PathBuf::new(),
            legacy_callback_key_file: PathBuf::new(),
            ops_listen: String::new(),
            statsd_address: String::new(),
            statsd_prefix: "jetmon".to_string(),
            wpcom_url: String::new(),
            wpcom_mode: WpcomMode::Original,
            wpcom_ca_file: PathBuf::new(),
            wpcom_client_cert_file: PathBuf::new(),
            wpcom_client_key_file: PathBuf::new(),
            wpcom_timeout_sec: 10,
            outbox_file: PathBuf::from("jetmond-outbox.jsonl"),
            outbox_max_attempts: 20,
            outbox_max_age_sec: 86_400,
            outbox_concurrency: 8,
            outbox_retry_initial_ms: 1_000,
            outbox_retry_max_sec: 300,
            weather: WeatherKeys::default(),
        }
    }
}

impl Config {
    /// Reads, overrides and validates the config file at `path`. `env` is the process environment
    /// (`std::env::vars()`), passed in so tests need not touch the real one; only `JETMON_*` entries
    /// are looked at.
    pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<LoadedConfig, ConfigError> {
        config_file::load(path, env)
    }

    /// The configuration used without any file: every default, embedded mode, no verifliers (so the
    /// local re-checks alone decide), paths relative to the working directory.
    pub fn default_embedded() -> Config {
        Config::default()
    }

    /// The buckets this host monitors.
    pub fn bucket_range(&self) -> RangeInclusive<u16> {
        self.bucket_no_min..=self.bucket_no_max
    }

    /// This host's name: `host_name`, or the machine's host name when that is empty (`jetmon` if even that
    /// is unknown). Names the host in notifications' `checks` and owns its rows of the database outbox.
    pub fn resolved_host_name(&self) -> String {
        if !self.host_name.is_empty() {
            return self.host_name.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "jetmon".to_string())
    }

    /// The status machine's settings.
    pub fn machine_config(&self) -> MachineConfig {
        MachineConfig {
            num_of_checks: self.num_of_checks,
            time_between_checks: Duration::from_secs(self.time_between_checks_sec),
            verifliers: self.verifiers.iter().map(|veriflier| veriflier.name.clone()).collect(),
            peer_offline_limit: self.peer_offline_limit,
            timeout_for_requests: Duration::from_secs(self.timeout_for_requests_sec),
            time_between_notices: Duration::from_secs(self.time_between_notices_min.saturating_mul(SECONDS_PER_MINUTE)),
        }
    }

    /// Finds a value that type-checks but cannot work. Returns the canonical key to blame and why.
    fn impossibility(&self) -> Option<(&'static str, String)> {
        if self.bucket_no_max > MAX_BUCKET_NO {
            return Some((
                "bucket_no_max",
                format!("{} is beyond the last bucket, {MAX_BUCKET_NO}", self.bucket_no_max),
            ));
        }
        if self.bucket_no_min > self.bucket_no_max {
            return Some((
                "bucket_no_min",
                format!(
                    "{} is above bucket_no_max ({}): the range is empty",
                    self.bucket_no_min, self.bucket_no_max
                ),
            ));
        }
        let must_be_positive: [(&'static str, u64); 17] = [
            ("num_of_checks", self.num_of_checks.into()),
            ("batch_size", self.batch_size.into()),
            ("veriflier_batch_size", self.veriflier_batch_size.into()),
            ("max_in_flight", self.max_in_flight.into()),
            ("time_between_checks_sec", self.time_between_checks_sec),
            ("stats_update_interval_ms", self.stats_update_interval_ms),
            ("time_between_notices_min", self.time_between_notices_min),
            ("min_time_between_rounds_sec", self.min_time_between_rounds_sec),
            ("timeout_for_requests_sec", self.timeout_for_requests_sec),
            ("db_config_updates_min", self.db_config_updates_min),
            ("check_timeout_sec", self.check_timeout_sec),
            ("wpcom_timeout_sec", self.wpcom_timeout_sec),
            ("outbox_max_attempts", self.outbox_max_attempts.into()),
            ("outbox_max_age_sec", self.outbox_max_age_sec),
            ("outbox_concurrency", self.outbox_concurrency.into()),
            ("outbox_retry_initial_ms", self.outbox_retry_initial_ms),
            ("outbox_retry_max_sec", self.outbox_retry_max_sec),
        ];
        if let Some((key, _)) = must_be_positive.iter().find(|(_, value)| *value == 0) {
            return Some((key, "must be at least 1".into()));
        }
        if !self.verifiers.is_empty() {
            let configured = self.verifiers.len();
            let limit = self.peer_offline_limit as usize;
            if limit == 0 || limit > configured {
                return Some((
                    "peer_offline_limit",
                    format!(
                        "{limit} cannot be reached with {configured} verifier(s) configured: use 1 to {configured}"
                    ),
                ));
            }
        }
        if let Err(e) = self.ops_address() {
            return Some(("ops_listen", e));
        }
        if !self.statsd_address.is_empty() && self.statsd_address.parse::<std::net::SocketAddr>().is_err() {
            return Some((
                "statsd_address",
                format!("{:?} is not an IP:port address", self.statsd_address),
            ));
        }
        if let Some(problem) = self.weather.impossibility() {
            return Some(problem);
        }
        if let Some(problem) = self.wpcom_impossibility() {
            return Some(problem);
        }
        if let Some(problem) = self.legacy_callback_impossibility() {
            return Some(problem);
        }
        for (index, veriflier) in self.verifiers.iter().enumerate() {
            if veriflier.name.is_empty() {
                return Some(("verifiers", format!("entry {index} has an empty name")));
            }
            if self.verifiers[..index]
                .iter()
                .any(|earlier| earlier.name == veriflier.name)
            {
                // Answers are matched by name: two verifliers with one name would count as one.
                return Some(("verifiers", format!("the name {:?} is used twice", veriflier.name)));
            }
        }
        None
    }
}

impl Config {
    /// `allow_networks` parsed.
    pub fn allowed_networks(&self) -> Result<Vec<jetmon_engine::IpNet>, jetmon_engine::IpNetParseError> {
        self.allow_networks.iter().map(|n| n.parse()).collect()
    }

    /// `ops_listen` parsed: `None` when empty (no ops endpoint).
    pub fn ops_address(&self) -> Result<Option<std::net::SocketAddr>, String> {
        if self.ops_listen.is_empty() {
            return Ok(None);
        }
        self.ops_listen
            .parse()
            .map(Some)
            .map_err(|e| format!("{:?} is not an IP:port address: {e}", self.ops_listen))
    }

    /// `legacy_callback_listen` parsed.
    pub fn legacy_callback_address(&self) -> Result<std::net::SocketAddr, String> {
        self.legacy_callback_listen
            .parse()
            .map_err(|e| format!("{:?} is not an IP:port address: {e}", self.legacy_callback_listen))
    }

    /// Whether some veriflier speaks the legacy protocol, so the callback server must run.
    pub fn has_legacy_verifliers(&self) -> bool {
        self.verifiers.iter().any(|v| v.mode == VeriflierMode::Legacy)
    }

    fn legacy_callback_impossibility(&self) -> Option<(&'static str, String)> {
        if let Err(e) = self.legacy_callback_address() {
            return Some(("legacy_callback_listen", e));
        }
        if !self.has_legacy_verifliers() {
            return None;
        }
        for (key, file) in [
            ("legacy_callback_cert_file", &self.legacy_callback_cert_file),
            ("legacy_callback_key_file", &self.legacy_callback_key_file),
        ] {
            if file.as_os_str().is_empty() {
                // Verifliers post results over HTTPS only: without a certificate nothing can arrive.
                return Some((key, "is needed with a veriflier of \"mode\": \"legacy\"".into()));
            }
        }
        None
    }

    /// `resolve` parsed.
    pub fn resolve_overrides(
        &self,
    ) -> Result<Vec<jetmon_engine::ResolveOverride>, jetmon_engine::ResolveOverrideParseError> {
        self.resolve.iter().map(|r| r.parse()).collect()
    }

    fn wpcom_impossibility(&self) -> Option<(&'static str, String)> {
        if let Err(e) = self.allowed_networks() {
            return Some(("allow_networks", e.to_string()));
        }
        if let Err(e) = self.resolve_overrides() {
            return Some(("resolve", e.to_string()));
        }
        if self.bucket_leases {
            if self.database.is_none() {
                return Some(("bucket_leases", "needs `database`: the leases live in it".into()));
            }
            if self.lease_heartbeat_sec == 0 || self.lease_heartbeat_sec * 2 > self.lease_ttl_sec {
                return Some((
                    "lease_heartbeat_sec",
                    format!(
                        "must be at least 1 and at most half of lease_ttl_sec ({}), so one late heartbeat does not \
                         lose the leases",
                        self.lease_ttl_sec
                    ),
                ));
            }
        }
        if !self.wpcom_url.is_empty() {
            match url::Url::parse(&self.wpcom_url) {
                // The notification carries the auth token: it never travels in clear text.
                Ok(url) if url.scheme() == "https" && url.host().is_some() => {}
                Ok(_) => return Some(("wpcom_url", format!("{:?} is not an https:// URL", self.wpcom_url))),
                Err(error) => return Some(("wpcom_url", format!("{:?} is not a URL: {error}", self.wpcom_url))),
            }
        }
        let has_cert = !self.wpcom_client_cert_file.as_os_str().is_empty();
        let has_key = !self.wpcom_client_key_file.as_os_str().is_empty();
        match (has_cert, has_key) {
            (true, false) => Some(("wpcom_client_key_file", "is needed with wpcom_client_cert_file".into())),
            (false, true) => Some(("wpcom_client_cert_file", "is needed with wpcom_client_key_file".into())),
            _ => None,
        }
    }
}

fn port_from_number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Port::deserialize(deserializer)? {
        Port::Number(port) => Ok(port),
        Port::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("port {text:?} is not a number from 0 to 65535"))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A config file in its own temporary directory, removed on drop.
    struct TempConfig {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempConfig {
        fn new(contents: &str) -> TempConfig {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "jetmond-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let path = dir.join("jetmond.json");
            let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, contents));
            assert!(written.is_ok(), "cannot write {}: {written:?}", path.display());
            TempConfig { dir, path }
        }

        fn load(&self, env: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
            Config::load(&self.path, env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(name)
    }

    fn error_text(result: Result<LoadedConfig, ConfigError>) -> String {
        match result {
            Ok(loaded) => panic!("expected an error, got {loaded:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn config_reference_lists_every_key() {
        let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
        let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        let keys: Vec<&String> = defaults.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert!(!keys.is_empty());
        let missing: Vec<&&String> = keys.iter().filter(|k| !doc.contains(&format!("| `{k}`"))).collect();
        assert!(missing.is_empty(), "docs/config.md lacks rows for {missing:?}");
    }

    #[test]
    fn jetmond_sample_documents_exactly_the_defaults() {
        let path = sample("jetmond.sample.json");
        let loaded = Config::load(&path, Vec::new());
        let mut expected = Config::default_embedded();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        expected.sites_file = dir.join("sites.txt");
        expected.state_file = dir.join("jetmond-state.json");
        expected.notifications_file = dir.join("jetmond-notifications.jsonl");
        expected.outbox_file = dir.join("jetmond-outbox.jsonl");
        assert_eq!(
            loaded.ok(),
            Some(LoadedConfig {
                config: expected,
                warnings: vec![]
            })
        );
    }

    #[test]
    fn jetmond_sample_lists_every_key() {
        let text = std::fs::read_to_string(sample("jetmond.sample.json")).unwrap_or_default();
        let sample: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        for key in config_file::known_keys::<Config>() {
            assert!(sample.contains_key(&key), "jetmond.sample.json lacks `{key}`");
        }
    }

    #[test]
    fn original_config_loads_with_worker_keys_ignored_loudly() {
        let loaded = Config::load(&sample("jetmon-original.sample.json"), Vec::new());
        let Ok(LoadedConfig { config, warnings }) = loaded else {
            panic!("original sample rejected: {loaded:?}");
        };
        assert_eq!(config.auth_token, "change-me");
        assert_eq!(config.bucket_range(), 0..=511);
        assert_eq!(config.peer_offline_limit, 1);
        assert_eq!(
            config.verifiers,
            vec![VeriflierConfig {
                name: "Veriflier 1".into(),
                host: "veriflier".into(),
                port: 7801,
                auth_token: "change-me-too".into(),
                mode: VeriflierMode::V1,
            }]
        );
        let mut ignored: Vec<&str> = warnings.iter().map(|warning| warning.at.key.as_str()).collect();
        ignored.sort_unstable();
        assert_eq!(
            ignored,
            [
                "dataset_size",
                "debug",
                "num_to_process",
                "num_workers",
                "worker_max_checks",
                "worker_max_mem_mb"
            ]
        );
        assert!(warnings
            .iter()
            .all(|warning| warning.to_string().contains("jetmon-original.sample.json")));
    }

    #[test]
    fn machine_config_carries_the_status_settings() {
        let config = Config {
            time_between_notices_min: 2,
            verifiers: vec![VeriflierConfig {
                name: "v1".into(),
                host: "h".into(),
                port: 1,
                auth_token: "t".into(),
                mode: VeriflierMode::V1,
            }],
            ..Config::default()
        };
        let machine = config.machine_config();
        assert_eq!(machine.time_between_notices, Duration::from_secs(120));
        assert_eq!(machine.verifliers, vec!["v1".to_owned()]);
        assert_eq!(machine.num_of_checks, 3);
    }

    #[test]
    fn unknown_key_rejected_naming_it_and_the_file() {
        let file = TempConfig::new(r#"{"NUM_OF_CHECK": 3}"#);
        let message = error_text(file.load(&[]));
        assert!(message.contains("`NUM_OF_CHECK`"), "{message}");
        assert!(message.contains(&file.path.display().to_string()), "{message}");
    }

    #[test]
    fn mixed_case_key_is_unknown() {
        let file = TempConfig::new(r#"{"Num_Of_Checks": 3}"#);
        assert!(matches!(file.load(&[]), Err(ConfigError::UnknownKey { key, .. }) if key == "Num_Of_Checks"));
    }

    #[test]
    fn both_spellings_of_one_key_rejected() {
        let file = TempConfig::new(r#"{"num_of_checks": 3, "NUM_OF_CHECKS": 4}"#);
        assert!(matches!(file.load(&[]), Err(ConfigError::DuplicateKey { key, .. }) if key == "num_of_checks"));
    }

    #[test]
    fn wrong_type_rejected_naming_key_and_file() {
        let file = TempConfig::new(r#"{"TIME_BETWEEN_CHECKS_SEC": "thirty"}"#);
        let result = file.load(&[]);
        let message = error_text(result);
        assert!(message.contains("`time_between_checks_sec`"), "{message}");
        assert!(message.contains(&file.path.display().to_string()), "{message}");
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn negative_interval_rejected_as_wrong_type() {
        let file = TempConfig::new(r#"{"timeout_for_requests_sec": -5}"#);
        assert!(error_text(file.load(&[])).contains("`timeout_for_requests_sec`"));
    }

    #[test]
    fn zero_interval_rejected() {
        let file = TempConfig::new(r#"{"MIN_TIME_BETWEEN_ROUNDS_SEC": 0}"#);
        let message = error_text(file.load(&[]));
        assert!(
            message.contains("`min_time_between_rounds_sec`") && message.contains("at least 1"),
            "{message}"
        );
    }

    #[test]
    fn zero_num_of_checks_rejected() {
        let file = TempConfig::new(r#"{"NUM_OF_CHECKS": 0}"#);
        assert!(matches!(file.load(&[]), Err(ConfigError::ImpossibleValue { at, .. }) if at.key == "num_of_checks"));
    }

    #[test]
    fn impossible_bucket_range_rejected() {
        let file = TempConfig::new(r#"{"BUCKET_NO_MIN": 300, "BUCKET_NO_MAX": 200}"#);
        let message = error_text(file.load(&[]));
        assert!(
            message.contains("`bucket_no_min`") && message.contains("empty"),
            "{message}"
        );
        assert!(message.contains(&file.path.display().to_string()), "{message}");
    }

    #[test]
    fn bucket_beyond_511_rejected() {
        let file = TempConfig::new(r#"{"bucket_no_max": 512}"#);
        assert!(matches!(file.load(&[]), Err(ConfigError::ImpossibleValue { at, .. }) if at.key == "bucket_no_max"));
    }

    #[test]
    fn peer_offline_limit_above_veriflier_count_rejected() {
        let file = TempConfig::new(
            r#"{"PEER_OFFLINE_LIMIT": 3, "VERIFIERS": [{"name": "v1", "host": "h", "port": 7801, "auth_token": "t"}]}"#,
        );
        let message = error_text(file.load(&[]));
        assert!(
            message.contains("`peer_offline_limit`") && message.contains("1 verifier"),
            "{message}"
        );
    }

    #[test]
    fn peer_offline_limit_is_free_without_verifliers() {
        let file = TempConfig::new(r#"{"PEER_OFFLINE_LIMIT": 3, "VERIFIERS": []}"#);
        assert!(file.load(&[]).is_ok());
    }

    #[test]
    fn duplicate_veriflier_names_rejected() {
        let file = TempConfig::new(
            r#"{"peer_offline_limit": 1, "verifiers": [
                {"name": "v1", "host": "a", "port": 1, "auth_token": "t"},
                {"name": "v1", "host": "b", "port": 2, "auth_token": "t"}]}"#,
        );
        assert!(matches!(file.load(&[]), Err(ConfigError::ImpossibleValue { at, .. }) if at.key == "verifiers"));
    }

    #[test]
    fn unknown_field_inside_a_veriflier_rejected_naming_the_key() {
        let file = TempConfig::new(
            r#"{"peer_offline_limit": 1, "verifiers": [{"name": "v1", "host": "a", "port": 1, "auth_token": "t", "tls": true}]}"#,
        );
        let message = error_text(file.load(&[]));
        assert!(message.contains("`verifiers`") && message.contains("tls"), "{message}");
    }

    #[test]
    fn non_numeric_port_placeholder_rejected() {
        let file = TempConfig::new(
            r#"{"peer_offline_limit": 1, "verifiers": [{"name": "v1", "host": "a", "port": "<VERIFLIER_PORT>", "auth_token": "t"}]}"#,
        );
        assert!(error_text(file.load(&[])).contains("`verifiers`"));
    }

    #[test]
    fn env_override_wins() {
        let file = TempConfig::new(r#"{"NUM_OF_CHECKS": 3, "auth_token": "from-file"}"#);
        let loaded = file.load(&[
            ("JETMON_NUM_OF_CHECKS", "5"),
            ("JETMON_AUTH_TOKEN", "from-env"),
            ("JETMON_LOG_FORMAT", "json"),
            ("PATH", "/usr/bin"),
        ]);
        let config = loaded.map(|loaded| loaded.config);
        assert!(
            matches!(&config, Ok(c) if c.num_of_checks == 5 && c.auth_token == "from-env" && c.log_format == LogFormat::Json)
        );
    }

    #[test]
    fn env_override_of_string_key_with_numeric_text_stays_a_string() {
        let file = TempConfig::new("{}");
        let config = file
            .load(&[("JETMON_AUTH_TOKEN", "1234")])
            .map(|loaded| loaded.config.auth_token);
        assert_eq!(config.ok().as_deref(), Some("1234"));
    }

    #[test]
    fn env_override_sets_a_nested_database() {
        let file = TempConfig::new("{}");
        let loaded = file.load(&[("JETMON_DATABASE", r#"{"host": "db.internal", "password": "pw"}"#)]);
        let database = loaded.ok().and_then(|loaded| loaded.config.database);
        assert_eq!(
            database,
            Some(DatabaseConfig {
                host: "db.internal".into(),
                password: "pw".into(),
                ..DatabaseConfig::default()
            })
        );
    }

    #[test]
    fn env_override_with_bad_value_names_the_variable() {
        let file = TempConfig::new("{}");
        let message = error_text(file.load(&[("JETMON_NUM_OF_CHECKS", "many")]));
        assert!(message.contains("JETMON_NUM_OF_CHECKS"), "{message}");
        assert!(message.contains(&file.path.display().to_string()), "{message}");
    }

    #[test]
    fn env_override_with_impossible_value_names_the_variable() {
        let file = TempConfig::new(r#"{"BUCKET_NO_MAX": 100}"#);
        let message = error_text(file.load(&[("JETMON_BUCKET_NO_MIN", "200")]));
        assert!(message.contains("JETMON_BUCKET_NO_MIN"), "{message}");
    }

    #[test]
    fn unknown_env_variable_is_a_warning() {
        let file = TempConfig::new("{}");
        let warnings = file
            .load(&[("JETMON_CONFIG", "/etc/jetmond.json")])
            .map(|loaded| loaded.warnings);
        assert!(
            matches!(warnings.as_deref(), Ok([warning]) if warning.at.variable.as_deref() == Some("JETMON_CONFIG"))
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let file = TempConfig::new(r#"{"sites_file": "my-sites.txt", "state_file": "/var/lib/jetmond/state.json"}"#);
        let config = file.load(&[]).map(|loaded| loaded.config);
        assert!(matches!(&config, Ok(c) if c.sites_file == file.dir.join("my-sites.txt")
            && c.state_file == Path::new("/var/lib/jetmond/state.json")));
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let path = std::env::temp_dir().join("jetmond-config-test-does-not-exist.json");
        let message = error_text(Config::load(&path, Vec::new()));
        assert!(message.contains("jetmond-config-test-does-not-exist.json"), "{message}");
    }

    #[test]
    fn invalid_json_rejected_naming_the_file() {
        let file = TempConfig::new(r#"{"NUM_OF_CHECKS": 3,"#);
        assert!(matches!(file.load(&[]), Err(ConfigError::Syntax { path, .. }) if path == file.path));
    }

    #[test]
    fn ops_listen_must_be_an_address() {
        let file = TempConfig::new(r#"{"ops_listen": "localhost"}"#);
        assert!(matches!(file.load(&[]), Err(ConfigError::ImpossibleValue { at, .. }) if at.key == "ops_listen"));
        let file = TempConfig::new(r#"{"ops_listen": "127.0.0.1:7802"}"#);
        let address = file
            .load(&[])
            .ok()
            .and_then(|loaded| loaded.config.ops_address().ok().flatten());
        assert_eq!(address, Some(std::net::SocketAddr::from(([127, 0, 0, 1], 7802))));
    }

    #[test]
    fn legacy_verifliers_need_a_callback_certificate() {
        let file = TempConfig::new(
            r#"{"peer_offline_limit": 1, "verifiers": [{"name": "v1", "host": "a", "port": 1, "auth_token": "t", "mode": "legacy"}]}"#,
        );
        assert!(
            matches!(file.load(&[]), Err(ConfigError::ImpossibleValue { at, .. }) if at.key == "legacy_callback_cert_file")
        );
        let file = TempConfig::new(
            r#"{"peer_offline_limit": 1, "legacy_callback_cert_file": "c.pem", "legacy_callback_key_file": "k.pem",
                "VERIFIERS": [{"name": "v1", "host": "a", "port": 1, "auth_token": "t", "mode": "legacy"}]}"#,
        );
        let config = file.load(&[]).map(|loaded| loaded.config);
        assert!(
            matches!(&config, Ok(c) if c.has_legacy_verifliers() && c.legacy_callback_cert_file == file.dir.join("c.pem")),
            "{config:?}"
        );
    }

    #[test]
    fn unknown_veriflier_mode_rejected() {
        let file = TempConfig::new(
            r#"{"peer_offline_limit": 1, "verifiers": [{"name": "v1", "host": "a", "port": 1, "auth_token": "t", "mode": "qt"}]}"#,
        );
        assert!(error_text(file.load(&[])).contains("`verifiers`"));
    }

    #[test]
    fn top_level_array_rejected() {
        let file = TempConfig::new("[]");
        assert!(matches!(file.load(&[]), Err(ConfigError::NotAnObject { .. })));
    }
}
