//! `jetmond run` in embedded mode, as a real process: a site goes down and comes back, and the daemon
//! writes exactly the original's notification sequence, keeps its state across a restart, and stops
//! cleanly on SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jetmon_testkit::http::TargetServer;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Daemon(Child);

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_jetmond"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jetmond starts");
        Daemon(child)
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "jetmond did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn notifications(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (bounded) until `cond` holds for the notifications file.
fn wait_for(path: &Path, what: &str, cond: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = notifications(path);
        if cond(&n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; notifications so far: {n:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn site_down_then_up_notifies_in_order_and_state_survives_restart() {
    let dir = TempDir(std::env::temp_dir().join(format!("jetmond-run-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let bind: SocketAddr = "127.0.0.40:0".parse().unwrap();
    let server = TargetServer::start(bind, None).unwrap();
    let addr = server.addr();
    let steady = TargetServer::start("127.0.0.41:0".parse().unwrap(), None).unwrap();
    std::fs::write(
        dir.0.join("sites.txt"),
        format!(
            "# test sites\n10 http://{addr}/status/200\n11 {}\n",
            steady.url("/status/200")
        ),
    )
    .unwrap();
    let config = dir.0.join("jetmond.json");
    std::fs::write(
        &config,
        r#"{"sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
            "min_time_between_rounds_sec": 1, "time_between_checks_sec": 1, "num_of_checks": 2,
            "check_timeout_sec": 3, "stats_update_interval_ms": 1000, "host_name": "test-host"}"#,
    )
    .unwrap();
    let notes = dir.0.join("notes.jsonl");

    let daemon = Daemon::start(&config);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(notifications(&notes).is_empty(), "healthy sites change nothing");

    drop(server); // the site goes down: connections are refused
    let n = wait_for(&notes, "the DOWN notification", |n| !n.is_empty());
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0]["blog_id"].as_u64(), n[0]["status_id"].as_u64()),
        (Some(10), Some(0))
    );
    assert_eq!(
        n[0]["monitor_url"].as_str(),
        Some(format!("http://{addr}/status/200").as_str())
    );
    let checks = n[0]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "one entry per failed local check: {checks:?}");
    for c in checks {
        assert_eq!(
            (c["type"].as_u64(), c["host"].as_str(), c["status"].as_u64()),
            (Some(1), Some("test-host"), Some(0))
        );
    }
    for field in ["last_check", "last_status_change"] {
        assert!(
            n[0][field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field} is a UTC datetime"
        );
    }

    let _back = TargetServer::start(addr, None).unwrap(); // the site comes back on the same address
    let n = wait_for(&notes, "the RUNNING notification", |n| n.len() >= 2);
    assert_eq!(
        (n[1]["blog_id"].as_u64(), n[1]["status_id"].as_u64()),
        (Some(10), Some(1)),
        "{n:?}"
    );
    assert_eq!(n[1]["checks"].as_array().unwrap().len(), 1);

    assert!(daemon.terminate().success(), "SIGTERM exits 0");
    assert_eq!(
        notifications(&notes).len(),
        2,
        "exactly DOWN then RUNNING, nothing for the steady site"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["10"]["status"].as_u64(), Some(1), "{state}");

    // A restart reads the state: the site is RUNNING already, so staying up notifies nothing.
    let daemon = Daemon::start(&config);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(daemon.terminate().success());
    assert_eq!(notifications(&notes).len(), 2);
}

#[test]
fn bad_config_is_rejected_naming_key_and_file() {
    let dir = TempDir(std::env::temp_dir().join(format!("jetmond-badcfg-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let config = dir.0.join("bad.json");
    std::fs::write(&config, r#"{"NUM_OF_CHECKS": 0}"#).unwrap();
    for args in [vec!["run", "--config"], vec!["config", "check"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_jetmond"))
            .args(&args)
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("num_of_checks") && stderr.contains("bad.json"),
            "{args:?}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .args(["config", "check"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jetmond.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
