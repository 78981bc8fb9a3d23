//! The internet-weather guard end to end, with a real link to take down. jetmond runs in a network
//! namespace of its own ("monitor"); the sites, the canary and a veriflier are served from a second one
//! ("targets"), joined by a veth pair with a private /30 that exists only inside the two namespaces (the
//! test creates and removes both; no traffic leaves the machine). A helper process (this test binary run
//! again inside the targets namespace) serves them.
//!
//! 1. Normal conditions: two dead sites are declared DOWN as usual (re-check, veriflier, notification).
//! 2. The monitor's link goes down: every check fails at once; the guard enters degraded mode, and no DOWN
//!    notification and no veriflier request follows while it lasts.
//! 3. The link comes back: the guard leaves degraded mode by itself.
//!
//! Needs root and `ip netns`; skipped with a message when they are not available, unless `CI` is set.

mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jetmon_engine::EngineConfig;
use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::TestCa;
use support::daemon::{daemon_log, notifications, wait_for_notifications, TempDir};
use veriflierd::config::{MonitorConfig, Token, VeriflierConfig};

const MONITOR_ADDR: &str = "10.213.77.1";
const TARGETS_ADDR: &str = "10.213.77.2";
const NET: &str = "10.213.77.0/30";
const MONITOR_NAME: &str = "monitor-1";
const MONITOR_TOKEN: &str = "monitor-secret";
/// Set in the helper process's environment: the directory to write its addresses and CA into.
const HELPER_ENV: &str = "JETMON_WEATHER_HELPER_DIR";
const UP_SITES: u64 = 30;
const DEAD_SITES: [u64; 2] = [101, 102];

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The two namespaces and the veth pair; removed on drop, whatever happened.
struct Namespaces {
    monitor: String,
    targets: String,
    monitor_link: String,
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let tag = std::process::id() % 100_000;
        let namespaces = Namespaces {
            monitor: format!("jw-mon-{tag}"),
            targets: format!("jw-tgt-{tag}"),
            monitor_link: format!("jwm{tag}"),
        };
        let target_link = format!("jwt{tag}");
        let (mon, tgt) = (namespaces.monitor.as_str(), namespaces.targets.as_str());
        ip(&["netns", "add", mon])?;
        ip(&["netns", "add", tgt])?;
        ip(&[
            "link",
            "add",
            &namespaces.monitor_link,
            "netns",
            mon,
            "type",
            "veth",
            "peer",
            "name",
            &target_link,
            "netns",
            tgt,
        ])?;
        ip(&[
            "-n",
            mon,
            "addr",
            "add",
            &format!("{MONITOR_ADDR}/30"),
            "dev",
            &namespaces.monitor_link,
        ])?;
        ip(&[
            "-n",
            tgt,
            "addr",
            "add",
            &format!("{TARGETS_ADDR}/30"),
            "dev",
            &target_link,
        ])?;
        for (ns, link) in [(mon, namespaces.monitor_link.as_str()), (tgt, target_link.as_str())] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", link, "up"])?;
        }
        Ok(namespaces)
    }

    fn set_monitor_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        let done = ip(&["-n", &self.monitor, "link", "set", &self.monitor_link, state]);
        assert!(done.is_ok(), "{done:?}");
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and with it the pair.
        let _ = ip(&["netns", "del", &self.monitor]);
        let _ = ip(&["netns", "del", &self.targets]);
    }
}

/// A process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The helper's side: serves the sites, the canary and a veriflier in the targets namespace, writes their
/// addresses and the CA to `dir`, and runs until its standard input closes. Does nothing in a normal test run.
#[test]
fn weather_targets_helper() {
    let Some(dir) = std::env::var_os(HELPER_ENV).map(PathBuf::from) else {
        return;
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let ca = TestCa::new("weather test CA");
    let ca_file = ca.write_pem(&dir);
    let sites = TargetServer::start(format!("{TARGETS_ADDR}:0").parse().unwrap(), None).unwrap();
    let dead = refused_addr(TARGETS_ADDR.parse().unwrap());
    let config = VeriflierConfig {
        veriflier_name: "v1".into(),
        auth_token: Token("v1-token".into()),
        listen_address: TARGETS_ADDR.parse().unwrap(),
        listen_port: 0,
        privatekey_file: "unused.key".into(),
        privatecert_file: "unused.crt".into(),
        monitors: vec![MonitorConfig {
            name: MONITOR_NAME.into(),
            host: MONITOR_ADDR.into(),
            auth_token: Token(MONITOR_TOKEN.into()),
        }],
        allow_networks: vec![NET.into()],
        check_timeout_sec: 2,
        ..VeriflierConfig::default()
    };
    let mut engine = EngineConfig::default();
    engine.threads = 1;
    engine.dns.hosts_file = None;
    let options = veriflierd::server::StartOptions {
        base_engine: engine,
        server_tls: Some(ca.server_config(&[TARGETS_ADDR])),
        callback_tls: None,
        shutdown_grace: Duration::from_secs(1),
    };
    let veriflier = veriflierd::server::start(config, options).unwrap();
    let ready = format!(
        "{}\n{}\n{}\n{}\n",
        sites.addr(),
        dead,
        veriflier.local_addr(),
        ca_file.display()
    );
    std::fs::write(dir.join("ready.tmp"), ready).unwrap();
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready")).unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(veriflier);
}

struct Targets {
    sites: SocketAddr,
    dead: SocketAddr,
    veriflier: SocketAddr,
    ca_file: PathBuf,
}

fn start_helper(namespaces: &Namespaces, dir: &Path) -> (Process, Targets) {
    let exe = std::env::current_exe().unwrap();
    let log = std::fs::File::create(dir.join("helper.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &namespaces.targets])
        .arg(exe)
        .args(["--exact", "weather_targets_helper", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let helper = Process(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("ready")) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the helper did not start: {}",
            std::fs::read_to_string(dir.join("helper.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = ready.lines().collect();
    let targets = Targets {
        sites: lines[0].parse().unwrap(),
        dead: lines[1].parse().unwrap(),
        veriflier: lines[2].parse().unwrap(),
        ca_file: PathBuf::from(lines[3]),
    };
    (helper, targets)
}

fn veriflier_batches(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("helper.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("batch checked"))
        .count()
}

/// The line without ANSI colour sequences (`ESC [ … m`), which the log may carry.
fn strip_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

fn wait_for_log(config: &Path, what: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = daemon_log(config);
        if log.contains(what) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn link_loss_holds_back_downs_and_real_outages_still_count() {
    if std::env::var_os(HELPER_ENV).is_some() {
        return; // This is the helper process.
    }
    let namespaces = match Namespaces::create() {
        Ok(namespaces) => namespaces,
        Err(problem) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "network namespaces are needed in CI: {problem}"
            );
            eprintln!("skipped: cannot create network namespaces here ({problem})");
            return;
        }
    };
    let dir = TempDir::new("weather-netns");
    let (_helper, targets) = start_helper(&namespaces, &dir.0);

    let mut sites = String::new();
    for id in 1..=UP_SITES {
        sites.push_str(&format!("{id} http://{}/status/200?site={id}\n", targets.sites));
    }
    for id in DEAD_SITES {
        sites.push_str(&format!("{id} http://{}/\n", targets.dead));
    }
    std::fs::write(dir.0.join("sites.txt"), sites).unwrap();
    let config = dir.0.join("jetmond.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
            "outbox_file": "outbox.jsonl",
            "min_time_between_rounds_sec": 1, "time_between_checks_sec": 4, "num_of_checks": 2,
            "check_timeout_sec": 2, "timeout_for_requests_sec": 5, "host_name": MONITOR_NAME,
            "allow_networks": [NET], "veriflier_ca_file": targets.ca_file, "peer_offline_limit": 1,
            "verifiers": [{"name": "v1", "host": targets.veriflier.ip().to_string(), "port": targets.veriflier.port(), "auth_token": MONITOR_TOKEN}],
            "weather_canaries": [format!("http://{}/status/200?canary", targets.sites)],
            "weather_canary_interval_sec": 1, "weather_canary_failures": 2,
            "weather_window_sec": 12, "weather_min_samples": 20, "weather_hold_sec": 3,
        })
        .to_string(),
    )
    .unwrap();
    let log_file = std::fs::File::create(dir.0.join("jetmond.log")).unwrap();
    let daemon = Process(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &namespaces.monitor,
                env!("CARGO_BIN_EXE_jetmond"),
                "run",
                "--config",
            ])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let notes = dir.0.join("notes.jsonl");

    // 1. Normal conditions: the two dead sites are declared DOWN, confirmed by the veriflier.
    let is_down =
        |n: &serde_json::Value, id: u64| n["blog_id"].as_u64() == Some(id) && n["status_id"].as_u64() == Some(0);
    wait_for_notifications(&notes, "both dead sites DOWN", |n| {
        DEAD_SITES.iter().all(|id| n.iter().any(|x| is_down(x, *id)))
    });
    assert!(
        veriflier_batches(&dir.0) >= 1,
        "the DOWNs were confirmed by the veriflier"
    );
    assert!(
        !daemon_log(&config).contains("entering degraded mode"),
        "a real outage of two sites is not weather"
    );

    // 2. The monitor loses its link: every site and the canary fail at once.
    let before_notes = notifications(&notes).len();
    let before_batches = veriflier_batches(&dir.0);
    namespaces.set_monitor_link(false);
    let log = wait_for_log(&config, "entering degraded mode", Duration::from_secs(15));
    let entered_at = log.len();
    // Longer than two re-check intervals: without the guard every site would be DOWN by now.
    std::thread::sleep(Duration::from_secs(10));
    let n = notifications(&notes);
    assert_eq!(
        n.len(),
        before_notes,
        "no notification while the link is down: {:?}",
        &n[before_notes..]
    );
    let during = daemon_log(&config)[entered_at..].to_string();
    assert!(
        !during.contains("veriflier request failed") && !during.contains("verifliers requested"),
        "no veriflier request while degraded:\n{during}"
    );
    assert_eq!(veriflier_batches(&dir.0), before_batches);

    // 3. The link comes back: the guard leaves by itself, and the sites stay up.
    namespaces.set_monitor_link(true);
    let log = wait_for_log(&config, "leaving degraded mode", Duration::from_secs(30));
    let left_line = log
        .lines()
        .find(|l| l.contains("leaving degraded mode"))
        .unwrap_or_default();
    let held_back: u64 = strip_colours(left_line)
        .split("held_back_total=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0);
    assert!(held_back > 0, "failures were held back: {left_line}");
    for line in log.lines().filter(|l| l.contains("degraded mode")) {
        eprintln!("{line}");
    }
    std::thread::sleep(Duration::from_secs(2));
    let n = notifications(&notes);
    assert!(
        n.iter().all(|x| x["blog_id"].as_u64().is_some_and(|id| id > UP_SITES)),
        "no site that was up got a notification: {n:?}"
    );
    drop(daemon);
}
