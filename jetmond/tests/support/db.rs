//! A real MariaDB/MySQL for tests: the server URL, a database of its own per test, dropped at the end.
//!
//! The server comes from `JETMON_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). When the
//! variable is unset and the server cannot be reached, tests skip with a message; when it is set (CI), an
//! unreachable server fails the test.

use std::path::Path;
use std::process::Command;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use jetmond::store::mysql::MysqlStore;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

pub const URL_VARIABLE: &str = "JETMON_TEST_MYSQL_URL";
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// How long a test waits for the server to go away or come back after a shutdown or start.
pub const SERVER_STATE_TIMEOUT: Duration = Duration::from_secs(60);
pub const SERVER_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A store call against a stopped server must fail at least this fast (connection refused is immediate;
/// this leaves room for a slow CI machine, and is far below a hang).
pub const PROMPT_FAILURE: Duration = Duration::from_secs(10);
pub const TEST_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const ROWS_PER_INSERT: usize = 1_000;
pub const ALL_BUCKETS: std::ops::RangeInclusive<u16> = 0..=511;

/// The tests share one server and one of them stops it: that one holds the write lock, the others a read
/// lock, so none of them sees the server down unless it is the one that stopped it.
pub static SERVER: RwLock<()> = RwLock::new(());

pub fn shared_server() -> RwLockReadGuard<'static, ()> {
    SERVER.read().unwrap_or_else(PoisonError::into_inner)
}

/// The server URL and whether it was set explicitly (then unreachability is a failure, not a skip).
pub fn server_url() -> (String, bool) {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => (url, true),
        _ => (DEFAULT_URL.to_owned(), false),
    }
}

/// `url` with its credentials hidden, for messages.
pub fn redacted(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, host_and_path)) => format!("mysql://…@{host_and_path}"),
        None => url.to_owned(),
    }
}

/// `url` pointing at database `name` instead of its own, keeping its parameters.
pub fn url_with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority = head.find("://").map_or(0, |at| at + 3);
    let path = head[authority..].find('/').map_or(head.len(), |at| authority + at);
    format!("{}/{name}{query}", &head[..path])
}

pub fn connect(url: &str) -> Result<Conn, mysql::Error> {
    let opts = Opts::from_url(url)?;
    Conn::new(OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(TEST_CONNECT_TIMEOUT)))
}

pub fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what}: {error}"))
}

/// A database of its own for one test, dropped when the test ends (passing or not).
pub struct TestDb {
    pub server_url: String,
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// `None` when the server is unreachable and no URL was given: the test skips.
    pub fn create(test: &str) -> Option<TestDb> {
        let (server_url, explicit) = server_url();
        let mut admin = match connect(&server_url) {
            Ok(conn) => conn,
            Err(error) if explicit => panic!("MariaDB not reachable at {}: {error}", redacted(&server_url)),
            Err(error) => {
                println!("skipping: MariaDB not reachable at {}: {error}", redacted(&server_url));
                return None;
            }
        };
        let name = format!("jetmon_test_{test}_{}", std::process::id());
        ok(
            admin.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")),
            "dropping a leftover database",
        );
        ok(
            admin.query_drop(format!("CREATE DATABASE `{name}`")),
            "creating the test database",
        );
        let url = url_with_database(&server_url, &name);
        Some(TestDb { server_url, name, url })
    }

    pub fn store(
        &self,
        range: std::ops::RangeInclusive<u16>,
        batch: u32,
        intervals: bool,
        updates: bool,
    ) -> MysqlStore {
        ok(
            MysqlStore::from_url(&self.url, range, batch, intervals, updates),
            "opening the store",
        )
    }

    /// A store over a freshly initialised schema.
    pub fn initialised_store(
        &self,
        range: std::ops::RangeInclusive<u16>,
        batch: u32,
        intervals: bool,
        updates: bool,
    ) -> MysqlStore {
        let mut store = self.store(range, batch, intervals, updates);
        ok(store.init_schema(), "init_schema");
        store
    }

    pub fn conn(&self) -> Conn {
        ok(connect(&self.url), "connecting to the test database")
    }

    /// Writes a jetmond config file at `path`: `keys` (a JSON object) plus a `database` key pointing at this
    /// database.
    pub fn write_config(&self, path: &Path, mut keys: serde_json::Value) {
        let opts = ok(Opts::from_url(&self.url), "parsing the test URL");
        keys["database"] = serde_json::json!({
            "host": opts.get_ip_or_hostname(), "port": opts.get_tcp_port(),
            "user": opts.get_user().unwrap_or(""), "password": opts.get_pass().unwrap_or(""), "name": self.name,
        });
        ok(std::fs::write(path, keys.to_string()), "writing the config file");
    }
}

/// Runs `jetmond db init --config <config>` and asserts that it succeeds.
pub fn jetmond_db_init(config: &Path) {
    let init = ok(
        Command::new(env!("CARGO_BIN_EXE_jetmond"))
            .args(["db", "init", "--config"])
            .arg(config)
            .output(),
        "running jetmond db init",
    );
    assert!(
        init.status.success(),
        "db init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A fresh connection: the test may have restarted the server under the one it used.
        match connect(&self.server_url).and_then(|mut admin| admin.query_drop(format!("DROP DATABASE `{}`", self.name)))
        {
            Ok(()) => {}
            Err(error) => eprintln!("could not drop test database {}: {error}", self.name),
        }
    }
}

/// The MariaDB server executable, as the machine's service setup starts it.
pub const MARIADBD: &str = "/usr/sbin/mariadbd";

/// Stops the local server and makes sure it runs again when dropped, even if the test fails midway.
pub struct StoppedServer {
    url: String,
    restarted: bool,
}

impl StoppedServer {
    pub fn stop(url: &str) -> StoppedServer {
        let status = Command::new("mariadb-admin")
            .args(["-h127.0.0.1", "-uroot", "shutdown"])
            .status();
        // Built before the asserts so a failed shutdown still restarts whatever half-stopped.
        let stopped = StoppedServer {
            url: url.to_owned(),
            restarted: false,
        };
        assert!(
            matches!(status, Ok(status) if status.success()),
            "mariadb-admin shutdown: {status:?}"
        );
        // The port closes before the process exits; until it has, `start --oknodo` would see it running
        // and start nothing.
        assert!(
            wait_for(|| connect(url).is_err() && !server_process_running()),
            "the server is still running {SERVER_STATE_TIMEOUT:?} after shutdown"
        );
        stopped
    }

    /// Starts the server and waits until it answers; true if it does within [`SERVER_STATE_TIMEOUT`].
    pub fn start_and_wait(&mut self) -> bool {
        self.restarted = true;
        // Started again whenever no process is found, in case a start raced with a late exit.
        wait_for(|| {
            if !server_process_running() {
                let started = Command::new("start-stop-daemon")
                    .args(["--start", "--oknodo", "--background", "--exec", MARIADBD])
                    .status();
                if !matches!(started, Ok(status) if status.success()) {
                    eprintln!("start-stop-daemon --start: {started:?}");
                }
            }
            connect(&self.url).is_ok()
        })
    }
}

impl Drop for StoppedServer {
    fn drop(&mut self) {
        if !self.restarted && !self.start_and_wait() {
            // No panic here: panicking again while a failed test unwinds would abort the whole run.
            eprintln!("MariaDB did not come back within {SERVER_STATE_TIMEOUT:?} after the restart test");
        }
    }
}

pub fn server_process_running() -> bool {
    // `--status` exits 0 when a process runs that executable.
    let status = Command::new("start-stop-daemon")
        .args(["--status", "--exec", MARIADBD])
        .status();
    matches!(status, Ok(status) if status.success())
}

/// Polls `condition` until it holds or [`SERVER_STATE_TIMEOUT`] passes.
pub fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + SERVER_STATE_TIMEOUT;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(SERVER_POLL_INTERVAL);
    }
}
