//! jetmond (a real process) confirming DOWN decisions with verifliers (real HTTPS servers on their own
//! loopback addresses, each with its own engine). One site is down for everyone and must be declared DOWN;
//! another is down only from the monitor's vantage point (its name resolves to a dead address for the
//! monitor and to a live one for the verifliers) and must not be. A hanging veriflier, one that does not
//! know our token and one with an untrusted certificate never hold the decision up.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::TestCa;
use support::daemon::{DaemonProcess, TempDir};
use support::verifliers::{
    first_down_checks, start_veriflier, stop_with_site_quiet, verifier_entry, veriflier_hosts, write_monitor_config,
    MONITOR_TOKEN,
};
use veriflierd::server::RunningServer;

fn veriflier(ca: &TestCa, ip: &str, name: &str, resolve: Vec<String>) -> RunningServer {
    start_veriflier(ca, ip, name, resolve, |_| {})
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
    let verifier = verifier_entry;
    let config = write_monitor_config(
        &dir.0,
        serde_json::json!({
            "timeout_for_requests_sec": 3, "resolve": [format!("siteb.test:{port_b}:127.0.0.56")],
            "veriflier_ca_file": ca_file, "PEER_OFFLINE_LIMIT": 2,
            "VERIFIERS": [
                verifier("v1", v1.local_addr(), MONITOR_TOKEN),
                verifier("v2", v2.local_addr(), MONITOR_TOKEN),
                verifier("v-hanging", hanging.local_addr().unwrap(), MONITOR_TOKEN),
                verifier("v-wrong-token", v1.local_addr(), "not-the-token"),
                verifier("v-untrusted", untrusted.local_addr(), MONITOR_TOKEN),
            ],
        }),
    );
    let notes = dir.0.join("notes.jsonl");
    let daemon = DaemonProcess::start(&config);

    let checks = first_down_checks(&notes, 1);
    let local = checks.iter().filter(|c| c["type"] == 1).count();
    let remote = veriflier_hosts(&checks);
    assert_eq!(local, 2, "{checks:?}");
    assert_eq!(
        remote,
        vec!["v1", "v2"],
        "every veriflier answer is a type-2 entry: {checks:?}"
    );
    assert!(checks.iter().filter(|c| c["type"] == 2).all(|c| c["status"] == 0));

    // Give site 2 time for its re-checks and a veriflier round trip: it must stay RUNNING.
    let log = stop_with_site_quiet(daemon, &config, &notes, 2, Duration::from_secs(6));
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
