//! Real veriflierd servers, in-process, for the veriflier tests.

use std::time::Duration;

use jetmon_engine::EngineConfig;
use jetmon_testkit::tls::TestCa;
use veriflierd::config::{MonitorConfig, Token, VeriflierConfig};
use veriflierd::server::{start, RunningServer, StartOptions};
use veriflierd::tls::ClientTls;

/// The monitor's name (`host_name`) as the verifliers know it.
pub const MONITOR_NAME: &str = "monitor-1";
/// The monitor's token on the verifliers.
pub const MONITOR_TOKEN: &str = "monitor-secret";

/// A veriflier `name` on `ip` (a free port) with a certificate of `ca`, knowing the monitor (at
/// 127.0.0.1 unless `adjust` says otherwise), allowed to check loopback sites, resolving names by
/// `resolve`. `adjust` changes the config before the start.
pub fn start_veriflier(
    ca: &TestCa,
    ip: &str,
    name: &str,
    resolve: Vec<String>,
    adjust: impl FnOnce(&mut VeriflierConfig),
) -> RunningServer {
    let mut config = VeriflierConfig {
        veriflier_name: name.into(),
        auth_token: Token(format!("{name}-token")),
        listen_address: ip.parse().unwrap(),
        listen_port: 0,
        privatekey_file: "unused.key".into(),
        privatecert_file: "unused.crt".into(),
        monitors: vec![MonitorConfig {
            name: MONITOR_NAME.into(),
            host: "127.0.0.1".into(),
            auth_token: Token(MONITOR_TOKEN.into()),
        }],
        allow_networks: vec!["127.0.0.0/8".into()],
        resolve,
        check_timeout_sec: 3,
        ..VeriflierConfig::default()
    };
    adjust(&mut config);
    let mut engine = EngineConfig::default();
    engine.threads = 1;
    engine.dns.hosts_file = None;
    let options = StartOptions {
        base_engine: engine,
        server_tls: Some(ca.server_config(&[ip])),
        callback_tls: Some(ClientTls::from_pem(Some(ca.cert_pem().as_bytes()), None).expect("test CA parses")),
        shutdown_grace: Duration::from_secs(1),
    };
    start(config, options).expect("veriflier starts")
}

/// A `verifiers[]` entry of jetmond's config for the veriflier at `addr`.
pub fn verifier_entry(name: &str, addr: std::net::SocketAddr, token: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "host": addr.ip().to_string(), "port": addr.port(), "auth_token": token})
}

/// Waits for the first notification, checks that it says `blog_id` is DOWN and returns its `checks`.
pub fn first_down_checks(notes: &std::path::Path, blog_id: u64) -> Vec<serde_json::Value> {
    let what = format!("site {blog_id} confirmed DOWN");
    let n = super::daemon::wait_for_notifications(notes, &what, |n| !n.is_empty());
    assert_eq!(
        (n[0]["blog_id"].as_u64(), n[0]["status_id"].as_u64()),
        (Some(blog_id), Some(0)),
        "{n:?}"
    );
    n[0]["checks"].as_array().cloned().unwrap_or_default()
}

/// The hosts of the veriflier (type 2) entries of a notification's `checks`, sorted.
pub fn veriflier_hosts(checks: &[serde_json::Value]) -> Vec<&str> {
    let mut hosts: Vec<&str> = checks
        .iter()
        .filter(|c| c["type"] == 2)
        .filter_map(|c| c["host"].as_str())
        .collect();
    hosts.sort_unstable();
    hosts
}

/// Lets the daemon run `settle` longer, stops it (cleanly), checks that `up_blog_id` was never notified and
/// returns the daemon's log.
pub fn stop_with_site_quiet(
    daemon: super::daemon::DaemonProcess,
    config: &std::path::Path,
    notes: &std::path::Path,
    up_blog_id: u64,
    settle: Duration,
) -> String {
    std::thread::sleep(settle);
    assert!(daemon.terminate().success());
    let n = super::daemon::notifications(notes);
    assert!(
        n.iter().all(|x| x["blog_id"] != up_blog_id),
        "site {up_blog_id} is up for the verifliers: no DOWN: {n:?}"
    );
    super::daemon::daemon_log(config)
}

/// Writes `dir/jetmond.json` for a fast-deciding monitor (one-second rounds and re-checks, two local
/// failures, `sites.txt`, notifications to `notes.jsonl`, loopback allowed, named [`MONITOR_NAME`]) with
/// `keys` added or overriding, and returns its path.
pub fn write_monitor_config(dir: &std::path::Path, keys: serde_json::Value) -> std::path::PathBuf {
    let mut config = serde_json::json!({
        "sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
        "min_time_between_rounds_sec": 1, "time_between_checks_sec": 1, "num_of_checks": 2,
        "check_timeout_sec": 2, "host_name": MONITOR_NAME, "allow_networks": ["127.0.0.0/8"],
    });
    if let (Some(base), Some(keys)) = (config.as_object_mut(), keys.as_object()) {
        base.extend(keys.clone());
    }
    let path = dir.join("jetmond.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}
