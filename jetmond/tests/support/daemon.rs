//! Running `jetmond` as a real process, and reading what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after the test and the process.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("jetmond-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `jetmond run --config FILE`, killed on drop if still running.
pub struct DaemonProcess(Child);

impl DaemonProcess {
    /// Starts the daemon; its log goes to `jetmond.log` beside the config file.
    pub fn start(config: &Path) -> DaemonProcess {
        let log = std::fs::File::create(config.with_file_name("jetmond.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_jetmond"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("jetmond starts");
        DaemonProcess(child)
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let pid = self.0.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "jetmond did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon's log so far (see [`DaemonProcess::start`]).
pub fn daemon_log(config: &Path) -> String {
    std::fs::read_to_string(config.with_file_name("jetmond.log")).unwrap_or_default()
}

/// The notifications written so far (one JSON object per line).
pub fn notifications(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("notification is JSON"))
        .collect()
}

/// Waits (bounded, 30 s) until `cond` holds for the notifications file.
pub fn wait_for_notifications(
    path: &Path,
    what: &str,
    cond: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
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
