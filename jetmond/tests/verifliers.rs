//! jetmond (a real process) confirming DOWN decisions with verifliers (real HTTPS servers on their own
//! loopback addresses, each with its own engine). One site is down for everyone and must be declared DOWN;
//! another is down only from the monitor's vantage point (its name resolves to a dead address for the
//! monitor and to a live one for the verifliers) and must not be. A hanging veriflier, one that does not
//! know our token and one with an untrusted certificate never hold the decision up.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use jetmon_engine::EngineConfig;
use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::TestCa;
use support::daemon::{daemon_log, notifications, wait_for_notifications, DaemonProcess, TempDir};
use veriflierd::config::{MonitorConfig, Token, VeriflierConfig};
use veriflierd::server::{start, RunningServer, StartOptions};
use veriflierd::tls::ClientTls;

const MONITOR_NAME: &str = "monitor-1";
const MONITOR_TOKEN: &str = "monitor-secret";

fn veriflier(ca: &TestCa, ip: &str, name: &str, resolve: Vec<String>) -> RunningServer {
    let config = VeriflierConfig {
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

#[test]
fn quorum_confirms_real_outages_and_ignores_the_monitors_own_view() {
    let dir = TempDir::new("verifliers");
    let ca = TestCa::new("veriflier test CA");
    let ca_file = ca.write_pem(&dir.0);
    let other_ca = TestCa::new("someone else's CA");

    // Site B answers on 127.0.0.57 for the verifliers; for the monitor its name points at 127.0.0.56 where
    // nothing listens on that port.
    let live_b = TargetServer::start("127.0.0.57:0".parse().unwrap(), None).unwrap();
    let port_b = live_b.addr().port();
    let veriflier_view = vec![format!("siteb.test:{port_b}:127.0.0.57")];
    let v1 = veriflier(&ca, "127.0.0.51", "v1", veriflier_view.clone());
    let v2 = veriflier(&ca, "127.0.0.52", "v2", veriflier_view.clone());
    let untrusted = veriflier(&other_ca, "127.0.0.54", "v-untrusted", veriflier_view);
    let hanging = TcpListener::bind("127.0.0.53:0").unwrap(); // accepts (backlog), never answers
    let dead_a: SocketAddr = refused_addr("127.0.0.55".parse().unwrap());

    std::fs::write(
        dir.0.join("sites.txt"),
        format!("1 http://{dead_a}/\n2 http://siteb.test:{port_b}/status/200\n"),
    )
    .unwrap();
    let verifier = |name: &str, addr: SocketAddr, token: &str| serde_json::json!({"name": name, "host": addr.ip().to_string(), "port": addr.port(), "auth_token": token});
    let config = dir.0.join("jetmond.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
            "min_time_between_rounds_sec": 1, "time_between_checks_sec": 1, "num_of_checks": 2,
            "check_timeout_sec": 2, "timeout_for_requests_sec": 3, "host_name": MONITOR_NAME,
            "allow_networks": ["127.0.0.0/8"], "resolve": [format!("siteb.test:{port_b}:127.0.0.56")],
            "veriflier_ca_file": ca_file, "PEER_OFFLINE_LIMIT": 2,
            "VERIFIERS": [
                verifier("v1", v1.local_addr(), MONITOR_TOKEN),
                verifier("v2", v2.local_addr(), MONITOR_TOKEN),
                verifier("v-hanging", hanging.local_addr().unwrap(), MONITOR_TOKEN),
                verifier("v-wrong-token", v1.local_addr(), "not-the-token"),
                verifier("v-untrusted", untrusted.local_addr(), MONITOR_TOKEN),
            ],
        })
        .to_string(),
    )
    .unwrap();
    let notes = dir.0.join("notes.jsonl");
    let daemon = DaemonProcess::start(&config);

    let n = wait_for_notifications(&notes, "site 1 confirmed DOWN", |n| !n.is_empty());
    assert_eq!(
        (n[0]["blog_id"].as_u64(), n[0]["status_id"].as_u64()),
        (Some(1), Some(0)),
        "{n:?}"
    );
    let checks = n[0]["checks"].as_array().unwrap();
    let local = checks.iter().filter(|c| c["type"] == 1).count();
    let mut remote: Vec<&str> = checks
        .iter()
        .filter(|c| c["type"] == 2)
        .filter_map(|c| c["host"].as_str())
        .collect();
    remote.sort_unstable();
    assert_eq!(local, 2, "{checks:?}");
    assert_eq!(
        remote,
        vec!["v1", "v2"],
        "every veriflier answer is a type-2 entry: {checks:?}"
    );
    assert!(checks.iter().filter(|c| c["type"] == 2).all(|c| c["status"] == 0));

    // Give site 2 time for its re-checks and a veriflier round trip: it must stay RUNNING.
    std::thread::sleep(Duration::from_secs(6));
    assert!(daemon.terminate().success());
    let n = notifications(&notes);
    assert!(
        n.iter().all(|x| x["blog_id"] != 2),
        "site 2 is up for the verifliers: no DOWN: {n:?}"
    );
    let log = daemon_log(&config);
    for (name, why) in [
        ("v-hanging", "no complete answer within"),
        ("v-wrong-token", "unauthorized"),
        ("v-untrusted", "certificate"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(name) && l.to_lowercase().contains(why)),
            "the log says why {name} failed ({why}):\n{log}"
        );
    }
    // Two verifliers saw site 2 up; the rest failed: never enough offline answers for the quorum.
    assert!(
        log.lines()
            .any(|l| (l.contains("false alarm") || l.contains("inconclusive"))
                && l.contains("blog_id")
                && l.contains('2')),
        "site 2's verification ended without a DOWN decision:\n{log}"
    );
    drop(live_b);
}
