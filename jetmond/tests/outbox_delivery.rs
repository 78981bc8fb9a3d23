//! The WPCOM outbox end to end in-process: `OutboxNotifier` over the file outbox, the real HTTPS client,
//! and a local HTTPS receiver on 127.0.0.x signed by a test CA.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use jetmon_testkit::tls::TestCa;
use jetmond::config::WpcomMode;
use jetmond::daemon::notify::Notifier;
use jetmond::outbox::{Backoff, DeliverySettings, FileOutbox, OutboxNotifier, WpcomClient, WpcomSettings};
use jetmond::status::{CheckEntry, CheckType, Notification, SiteStatus, UnixMillis};
use serde_json::{json, Value};
use support::daemon::TempDir;
use support::receiver::{Answer, Receiver};

const TOKEN: &str = "wpcom-s3cret";
const WAIT: Duration = Duration::from_secs(20);

fn note(blog_id: u64, status: SiteStatus, change_ms: u64) -> Notification {
    Notification {
        blog_id,
        monitor_url: format!("https://site-{blog_id}.example/path?q=1&r=2"),
        status_id: status,
        last_check: UnixMillis::from_millis(change_ms - 500),
        last_status_change: UnixMillis::from_millis(change_ms),
        checks: vec![
            CheckEntry {
                check_type: CheckType::Local,
                host: "jetmon-test".into(),
                status: SiteStatus::Down,
                rtt: 1234,
                code: 503,
            },
            CheckEntry {
                check_type: CheckType::Veriflier,
                host: "v1".into(),
                status: SiteStatus::Down,
                rtt: 20000,
                code: 998,
            },
        ],
    }
}

fn fast_settings(max_attempts: u32) -> DeliverySettings {
    DeliverySettings {
        concurrency: 4,
        max_attempts,
        max_age: Duration::from_secs(3600),
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(300)),
        stats_interval: Duration::from_secs(60),
    }
}

struct Setup {
    dir: TempDir,
    ca: TestCa,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        Setup {
            dir: TempDir::new(tag),
            ca: TestCa::new("outbox test CA"),
        }
    }

    fn outbox_file(&self) -> std::path::PathBuf {
        self.dir.0.join("outbox.jsonl")
    }

    fn notifier(&self, url: &str, mode: WpcomMode, client_cert: bool, settings: DeliverySettings) -> OutboxNotifier {
        let identity = client_cert.then(|| {
            let (cert, key) = self.ca.client_identity("jetmon-test");
            let (cert_path, key_path) = (self.dir.0.join("client.pem"), self.dir.0.join("client-key.pem"));
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            (cert_path, key_path)
        });
        let client = WpcomClient::new(WpcomSettings {
            url: url.to_string(),
            mode,
            ca_file: Some(self.ca.write_pem(&self.dir.0)),
            client_identity: identity,
            timeout: Duration::from_secs(1),
            auth_token: TOKEN.into(),
        })
        .unwrap();
        let store = FileOutbox::open(&self.outbox_file()).unwrap();
        OutboxNotifier::start(None, Box::new(store), Arc::new(client), settings).unwrap()
    }
}

fn addr(ip: &str) -> SocketAddr {
    format!("{ip}:0").parse().unwrap()
}

/// The payload the receiver must see for `n`: every field of the seed's wire, the token and an id.
fn assert_payload(payload: &Value, n: &Notification) {
    let id = payload["notification_id"].as_str().unwrap_or_default();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "notification_id {id:?}"
    );
    let expected = json!({
        "blog_id": n.blog_id,
        "monitor_url": n.monitor_url,
        "status_id": u8::from(n.status_id),
        "last_check": n.last_check.to_wpcom_datetime(),
        "last_status_change": n.last_status_change.to_wpcom_datetime(),
        "checks": [
            {"type": 1, "host": "jetmon-test", "status": 0, "rtt": 1234, "code": 503},
            {"type": 2, "host": "v1", "status": 0, "rtt": 20000, "code": 998},
        ],
        "token": TOKEN,
        "notification_id": id,
    });
    assert_eq!(payload, &expected);
}

#[test]
fn original_mode_sends_every_field_by_get_with_the_client_certificate() {
    let setup = Setup::new("outbox-original");
    let tls = setup.ca.server_config_requiring_client_cert(&["127.0.0.61"]);
    let receiver = Receiver::start(addr("127.0.0.61"), tls);
    let mut notifier = setup.notifier(&receiver.url(), WpcomMode::Original, true, fast_settings(10));
    let n = note(42, SiteStatus::ConfirmedDown, 1_764_000_000_000);
    notifier.notify(&n).unwrap();

    let accepted = receiver.wait_accepted("the notification", WAIT, |a| !a.is_empty());
    assert_payload(&accepted[0], &n);
    let request = &receiver.received()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", "/jetmon/"));
    assert!(request.client_certificate, "the client certificate was presented");
    assert_eq!(
        accepted[0]["last_status_change"], "2025-11-24T16:00:00.000Z",
        "UTC with milliseconds"
    );
    wait_for(|| notifier.stats().pending == 0, "the outbox to empty");
    let stats = notifier.stats();
    assert_eq!((stats.queued, stats.delivered, stats.retries), (1, 1, 0));
}

#[test]
fn post_mode_sends_every_field_as_a_json_body() {
    let setup = Setup::new("outbox-post");
    let receiver = Receiver::start(addr("127.0.0.62"), setup.ca.server_config(&["127.0.0.62"]));
    let url = format!("{}/hooks/jetmon", receiver.url());
    let mut notifier = setup.notifier(&url, WpcomMode::Post, false, fast_settings(10));
    let n = note(7, SiteStatus::Running, 1_764_000_001_000);
    notifier.notify(&n).unwrap();

    let accepted = receiver.wait_accepted("the notification", WAIT, |a| !a.is_empty());
    assert_payload(&accepted[0], &n);
    let request = &receiver.received()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hooks/jetmon")
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert!(!request.client_certificate);
}

#[test]
fn receiver_down_for_a_while_then_up_gets_everything_in_order_per_site() {
    let setup = Setup::new("outbox-down-up");
    let tls = setup.ca.server_config(&["127.0.0.63"]);
    // Find a free port, then leave it closed: the receiver is down.
    let down = Receiver::start(addr("127.0.0.63"), Arc::clone(&tls));
    let address = down.addr;
    drop(down);
    let mut notifier = setup.notifier(
        &format!("https://{address}"),
        WpcomMode::Post,
        false,
        fast_settings(1000),
    );
    let mut sent = Vec::new();
    for round in 0..6u64 {
        for blog_id in [1u64, 2, 3, 4] {
            let status = if round % 2 == 0 {
                SiteStatus::Down
            } else {
                SiteStatus::Running
            };
            let n = note(blog_id, status, 1_764_000_000_000 + round * 1000 + blog_id);
            notifier.notify(&n).unwrap();
            sent.push(n);
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        notifier.stats().retries > 0,
        "attempts failed while the receiver was down"
    );
    assert_eq!(notifier.stats().delivered, 0);

    let receiver = Receiver::start(address, tls);
    let accepted = receiver.wait_accepted("all 24 notifications", WAIT, |a| unique_ids(a).len() == 24);
    let mut per_site: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for payload in &accepted {
        // First arrival of each notification, in arrival order.
        if seen.insert(payload["notification_id"].as_str().unwrap_or_default().to_string()) {
            let blog_id = payload["blog_id"].as_u64().unwrap_or_default();
            per_site
                .entry(blog_id)
                .or_default()
                .push(payload["last_status_change"].as_str().unwrap_or_default().to_string());
        }
    }
    for (blog_id, changes) in per_site {
        let expected: Vec<String> = sent
            .iter()
            .filter(|n| n.blog_id == blog_id)
            .map(|n| n.last_status_change.to_wpcom_datetime())
            .collect();
        assert_eq!(changes, expected, "site {blog_id} arrived out of order");
    }
    wait_for(|| notifier.stats().pending == 0, "the outbox to empty");
}

#[test]
fn answers_500_hangs_and_early_closes_are_retried_with_the_same_id() {
    let setup = Setup::new("outbox-retry");
    let receiver = Receiver::start(addr("127.0.0.64"), setup.ca.server_config(&["127.0.0.64"]));
    receiver.script([
        Answer::Status(500),
        Answer::Hang,
        Answer::Close,
        Answer::Accept(r#"{"success":false}"#),
        Answer::Accept("not json"),
    ]);
    let mut notifier = setup.notifier(&receiver.url(), WpcomMode::Original, false, fast_settings(10));
    let n = note(9, SiteStatus::Down, 1_764_000_002_000);
    notifier.notify(&n).unwrap();

    wait_for(|| notifier.stats().delivered == 1, "delivery after the failures");
    wait_for(
        || receiver.received().len() >= 6,
        "the receiver to record the last attempt",
    );
    let received = receiver.received();
    assert_eq!(received.len(), 6, "five failures, then success: {received:?}");
    let ids: HashSet<&str> = received
        .iter()
        .map(|r| r.payload["notification_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same notification_id");
    assert_eq!(notifier.stats().retries, 5);
    wait_for(|| notifier.stats().pending == 0, "the outbox to empty");
}

#[test]
fn dead_letter_after_max_attempts_is_listed_and_replayed_by_the_cli() {
    let setup = Setup::new("outbox-dead");
    let receiver = Receiver::start_with(
        addr("127.0.0.65"),
        setup.ca.server_config(&["127.0.0.65"]),
        Answer::Status(503),
    );
    let config = setup.dir.0.join("jetmond.json");
    std::fs::write(&config, json!({"outbox_file": setup.outbox_file()}).to_string()).unwrap();
    let mut notifier = setup.notifier(&receiver.url(), WpcomMode::Post, false, fast_settings(3));
    for blog_id in [5u64, 6] {
        notifier
            .notify(&note(blog_id, SiteStatus::Down, 1_764_000_003_000))
            .unwrap();
    }
    wait_for(|| notifier.stats().dead_lettered == 2, "two dead letters");
    wait_for(|| receiver.received().len() == 6, "three attempts each");
    assert_eq!(notifier.stats().pending, 0);

    let dead = cli(&config, &["list", "--dead"]);
    let listed: Vec<Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 2, "{dead}");
    assert!(listed.iter().all(|e| e["attempts"] == 3
        && e["dead"] == true
        && e["last_error"].as_str().is_some_and(|e| e.contains("503"))));
    assert_eq!(cli(&config, &["list"]).lines().count(), 0, "nothing pending");

    receiver.set_default(Answer::Accept(r#"{"success":true}"#));
    let replayed = cli(&config, &["replay", "--all"]);
    assert!(replayed.starts_with("2 dead letter(s)"), "{replayed}");
    // The running notifier picks replayed entries up at its next re-read of the outbox.
    let accepted = receiver.wait_accepted("the replayed notifications", Duration::from_secs(30), |a| a.len() == 2);
    let blogs: HashSet<u64> = accepted.iter().filter_map(|p| p["blog_id"].as_u64()).collect();
    assert_eq!(blogs, HashSet::from([5, 6]));
    wait_for(|| notifier.stats().pending == 0, "the outbox to empty");
    assert_eq!(cli(&config, &["list", "--dead"]).lines().count(), 0);
}

fn cli(config: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .arg("outbox")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "jetmond outbox {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn unique_ids(payloads: &[Value]) -> HashSet<String> {
    payloads
        .iter()
        .filter_map(|p| p["notification_id"].as_str().map(str::to_string))
        .collect()
}

fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
