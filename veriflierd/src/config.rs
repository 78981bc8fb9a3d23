//! veriflierd's configuration: one JSON file in the shape of jetmon.js's `veriflier.json`, plus our keys.
//!
//! Keys are lower-case, as in the original. The original's thread and queue knobs (`thread_pool_max`,
//! `max_pending_conns`, `max_checkers`, `max_checks`, `debug`) are accepted and ignored with a warning,
//! because the engine's event loop replaces the thread pool. Any other unknown key is an error naming the key
//! and the file. Keys starting with `//` are comments.
//!
//! `VERIFLIER_<KEY>` (upper-case key) overrides `<key>`. Its value is read as JSON when it parses
//! (`VERIFLIER_BATCH_SIZE=100`, `VERIFLIER_ALLOW_NETWORKS='["10.0.0.0/8"]'`) and as a plain string
//! otherwise; a number-looking value for a string key (`VERIFLIER_AUTH_TOKEN=1234`) is taken as the string.
//!
//! Relative file paths are resolved against the config file's directory.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jetmon_engine::IpNet;

use crate::config_file::{self, resolve_path, ConfigFile, Loaded};
use crate::weather::WeatherKeys;
use serde::{Deserialize, Serialize};

pub use crate::config_file::{ConfigError, ConfigWarning, KeyLocation};

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "VERIFLIER_";
/// The original's veriflier port.
pub const DEFAULT_LISTEN_PORT: u16 = 7801;
/// The original's jetmon server port (where legacy callbacks go).
pub const DEFAULT_JETMON_SERVER_PORT: u16 = 7800;
/// The original's sample `net_comms_timeout`, in milliseconds.
pub const DEFAULT_NET_COMMS_TIMEOUT_MS: u64 = 30_000;
/// The original's `VERIFLIER_BATCH_SIZE`.
pub const DEFAULT_BATCH_SIZE: usize = 200;
/// The original's whole-check deadline, in seconds.
pub const DEFAULT_CHECK_TIMEOUT_SEC: u64 = 20;
/// Checks in flight at once on the veriflier's engine.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// A check longer than this is a configuration mistake, and would hold a monitor's request open for minutes.
const MAX_CHECK_TIMEOUT_SEC: u64 = 300;
/// Keys of the original's `veriflier.json` that tuned its Qt thread pool.
const IGNORED_KEYS: [&str; 5] = [
    "thread_pool_max",
    "max_pending_conns",
    "max_checkers",
    "max_checks",
    "debug",
];
const IGNORED_KEY_NOTE: &str = "is a jetmon.js thread-pool setting and is ignored (see max_in_flight)";

/// A token: compared in constant time by the server, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl Token {
    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A monitor host allowed to ask this veriflier (the original's `monitors[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Friendly name; the synchronous protocol's `monitor` field.
    pub name: String,
    /// Host name or address of the monitor: where legacy callbacks go.
    pub host: String,
    /// The token this monitor sends.
    pub auth_token: Token,
}

/// The whole configuration, every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VeriflierConfig {
    // --- the original's keys ---
    /// This veriflier's name, reported with every result.
    pub veriflier_name: String,
    /// This veriflier's own token, sent to monitors in legacy callbacks.
    pub auth_token: Token,
    /// TCP port of the HTTPS server.
    pub listen_port: u16,
    /// Port of the monitors' HTTPS servers for legacy callbacks.
    pub jetmon_server_port: u16,
    /// PEM private key of the server certificate.
    pub privatekey_file: PathBuf,
    /// PEM server certificate chain, leaf first.
    pub privatecert_file: PathBuf,
    /// Redirects followed per check.
    pub max_redirects: u8,
    /// Network timeout for talking to monitors (legacy callbacks), in milliseconds.
    pub net_comms_timeout: u64,
    /// The monitors allowed to ask.
    pub monitors: Vec<MonitorConfig>,
    // --- ours ---
    /// Address the HTTPS server binds.
    pub listen_address: IpAddr,
    /// When set, monitors must present a client certificate signed by a CA in this PEM file.
    pub client_ca_file: Option<PathBuf>,
    /// CA bundle (PEM) trusted for the monitors' callback servers; the web roots when unset.
    pub ca_file: Option<PathBuf>,
    /// Networks (CIDR) the checks may reach although they are not public (SSRF guard exceptions).
    pub allow_networks: Vec<String>,
    /// Fixed answers for names, curl style (`"HOST:PORT:ADDR"`, PORT `*` for any), used before DNS.
    pub resolve: Vec<String>,
    /// Whole-check deadline, in seconds.
    pub check_timeout_sec: u64,
    /// Checks in flight at once.
    pub max_in_flight: usize,
    /// Most checks in one request (the original's `VERIFLIER_BATCH_SIZE`).
    pub batch_size: usize,
    /// The internet-weather guard's `weather_*` keys (see `crate::weather`). A veriflier is asked about
    /// sites a monitor already found down, so a high failure ratio is its normal traffic: the failure-ratio
    /// rule is off by default (`weather_min_samples` 0), leaving the canary and resolver rules.
    #[serde(flatten)]
    pub weather: WeatherKeys,
}

impl Default for VeriflierConfig {
    fn default() -> Self {
        VeriflierConfig {
            veriflier_name: String::new(),
            auth_token: Token::default(),
            listen_port: DEFAULT_LISTEN_PORT,
            jetmon_server_port: DEFAULT_JETMON_SERVER_PORT,
            privatekey_file: PathBuf::new(),
            privatecert_file: PathBuf::new(),
            max_redirects: jetmon_engine::DEFAULT_MAX_REDIRECTS,
            net_comms_timeout: DEFAULT_NET_COMMS_TIMEOUT_MS,
            monitors: Vec::new(),
            listen_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            client_ca_file: None,
            ca_file: None,
            allow_networks: Vec::new(),
            resolve: Vec::new(),
            check_timeout_sec: DEFAULT_CHECK_TIMEOUT_SEC,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            batch_size: DEFAULT_BATCH_SIZE,
            weather: WeatherKeys {
                min_samples: 0,
                ..WeatherKeys::default()
            },
        }
    }
}

impl VeriflierConfig {
    /// Loads `path` with overrides from the process environment.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        VeriflierConfig::load_with_env(path, std::env::vars())
    }

    /// Loads `path` with overrides from `env` (name, value pairs; only `VERIFLIER_*` are read).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedConfig, ConfigError> {
        config_file::load(path, env)
    }

    /// The address the server binds.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.listen_address, self.listen_port)
    }

    /// The whole-check deadline.
    pub fn check_timeout(&self) -> Duration {
        Duration::from_secs(self.check_timeout_sec)
    }

    /// The network timeout for legacy callbacks.
    pub fn net_comms_timeout(&self) -> Duration {
        Duration::from_millis(self.net_comms_timeout)
    }

    /// `resolve` parsed.
    pub fn resolve_overrides(
        &self,
    ) -> Result<Vec<jetmon_engine::ResolveOverride>, jetmon_engine::ResolveOverrideParseError> {
        self.resolve.iter().map(|r| r.parse()).collect()
    }

    /// `allow_networks` parsed. Entries were validated when the file was loaded; one that no longer parses
    /// (a config built by hand) is an error here too.
    pub fn allowed_networks(&self) -> Result<Vec<IpNet>, jetmon_engine::IpNetParseError> {
        self.allow_networks.iter().map(|n| n.parse()).collect()
    }

    /// The first key whose value cannot work, with the reason.
    pub fn impossibility(&self) -> Option<(&'static str, String)> {
        let blank = |s: &str| s.trim().is_empty();
        if blank(&self.veriflier_name) {
            return Some((
                "veriflier_name",
                "must be set: it names this veriflier in every result".into(),
            ));
        }
        if blank(&self.auth_token.0) {
            return Some((
                "auth_token",
                "must be set: monitors check it on legacy callbacks".into(),
            ));
        }
        if self.privatecert_file.as_os_str().is_empty() {
            return Some(("privatecert_file", "must be set: the server only speaks HTTPS".into()));
        }
        if self.privatekey_file.as_os_str().is_empty() {
            return Some(("privatekey_file", "must be set: the server only speaks HTTPS".into()));
        }
        if self.monitors.is_empty() {
            return Some((
                "monitors",
                "must list at least one monitor: nobody could ask otherwise".into(),
            ));
        }
        for (i, monitor) in self.monitors.iter().enumerate() {
            if blank(&monitor.name) || blank(&monitor.host) || blank(&monitor.auth_token.0) {
                return Some((
                    "monitors",
                    format!("monitors[{i}] needs a name, a host and an auth_token"),
                ));
            }
            let later = &self.monitors[i + 1..];
            if later.iter().any(|m| m.name == monitor.name) {
                return Some(("monitors", format!("monitor name {:?} is used twice", monitor.name)));
            }
            // A shared token would make the server unable to tell which monitor is asking.
            if later.iter().any(|m| m.auth_token == monitor.auth_token) {
                return Some((
                    "monitors",
                    format!("monitor {:?} shares its auth_token with another", monitor.name),
                ));
            }
        }
        if let Err(error) = self.allowed_networks() {
            return Some(("allow_networks", error.to_string()));
        }
        if let Err(error) = self.resolve_overrides() {
            return Some(("resolve", error.to_string()));
        }
        if self.check_timeout_sec == 0 || self.check_timeout_sec > MAX_CHECK_TIMEOUT_SEC {
            return Some((
                "check_timeout_sec",
                format!("must be between 1 and {MAX_CHECK_TIMEOUT_SEC}"),
            ));
        }
        if self.net_comms_timeout == 0 {
            return Some(("net_comms_timeout", "must be at least 1 (milliseconds)".into()));
        }
        if self.max_in_flight == 0 {
            return Some(("max_in_flight", "must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Some(("batch_size", "must be at least 1".into()));
        }
        if let Some(problem) = self.weather.impossibility() {
            return Some(problem);
        }
        None
    }
}

/// A loaded configuration and the things the operator should hear about it.
pub type LoadedConfig = Loaded<VeriflierConfig>;

impl ConfigFile for VeriflierConfig {
    const ENV_PREFIX: &'static str = ENV_PREFIX;
    const UPPER_CASE_KEYS: bool = false;

    fn ignored_key_note(key: &str) -> Option<&'static str> {
        IGNORED_KEYS.contains(&key).then_some(IGNORED_KEY_NOTE)
    }

    fn resolve_paths(&mut self, base_dir: &Path) {
        // Empty means "not set", refused by `impossibility`, and must not become the config directory.
        for required in [&mut self.privatekey_file, &mut self.privatecert_file] {
            if !required.as_os_str().is_empty() {
                *required = resolve_path(base_dir, required);
            }
        }
        for optional in [&mut self.client_ca_file, &mut self.ca_file].into_iter().flatten() {
            *optional = resolve_path(base_dir, optional);
        }
    }

    fn impossibility(&self) -> Option<(&'static str, String)> {
        VeriflierConfig::impossibility(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veriflierd-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("veriflier.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    const ORIGINAL: &str = r#"{
        "veriflier_name": "Veriflier 1", "auth_token": "vtoken",
        "thread_pool_max": 4, "max_pending_conns": 256, "max_redirects": 2, "max_checkers": 10,
        "max_checks": 1000, "net_comms_timeout": 30000, "debug": true,
        "listen_port": 7801, "jetmon_server_port": 7800,
        "privatekey_file": "./certs/veriflier.key", "privatecert_file": "./certs/veriflier.crt",
        "monitors": [{"name": "m1", "host": "jetmon1.example", "auth_token": "mtoken"}]
    }"#;

    #[test]
    fn original_veriflier_json_loads_with_warnings() {
        let path = write("original", ORIGINAL);
        let loaded = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap();
        assert_eq!(loaded.config.veriflier_name, "Veriflier 1");
        assert_eq!(loaded.config.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(loaded.warnings.len(), 5);
        assert!(loaded.config.privatekey_file.is_absolute());
    }

    #[test]
    fn env_overrides_win_and_keep_string_tokens() {
        let path = write("env", ORIGINAL);
        let env = vec![
            ("VERIFLIER_BATCH_SIZE".to_string(), "50".to_string()),
            ("VERIFLIER_AUTH_TOKEN".to_string(), "1234".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let config = VeriflierConfig::load_with_env(&path, env).unwrap().config;
        assert_eq!(config.batch_size, 50);
        assert_eq!(config.auth_token.0, "1234");
    }

    #[test]
    fn unknown_key_is_named() {
        let path = write("unknown", &ORIGINAL.replace("\"debug\"", "\"debugg\""));
        let err = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`debugg`"), "{err}");
    }

    #[test]
    fn wrong_type_and_impossible_values_are_named() {
        let path = write(
            "type",
            &ORIGINAL.replace("\"listen_port\": 7801", "\"listen_port\": \"x\""),
        );
        let err = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`listen_port`"), "{err}");
        let path = write(
            "nets",
            &ORIGINAL.replace("\"debug\": true", "\"allow_networks\": [\"10/x\"]"),
        );
        let err = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`allow_networks`"), "{err}");
        let env = vec![("VERIFLIER_BATCH_SIZE".to_string(), "0".to_string())];
        let err = VeriflierConfig::load_with_env(&write("zero", ORIGINAL), env).unwrap_err();
        assert!(err.to_string().contains("`batch_size`"), "{err}");
    }

    #[test]
    fn debug_output_hides_tokens() {
        let path = write("debug", ORIGINAL);
        let config = VeriflierConfig::load_with_env(&path, Vec::new()).unwrap().config;
        let text = format!("{config:?}");
        assert!(!text.contains("vtoken") && !text.contains("mtoken"), "{text}");
    }
}
