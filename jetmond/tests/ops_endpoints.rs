//! The ops endpoint of a real `jetmond run`: after known checks (two sites up, one refusing connections)
//! `/metrics` and the JSON API report exactly those, bad requests get 4xx JSON, and `/readyz` turns 503
//! with its reason when the store cannot be read.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use jetmon_testkit::http::TargetServer;
use support::daemon::{DaemonProcess, TempDir};
use support::http::{free_addr, get, request, wait_for_json};

/// Writes a config for `sites` with the ops endpoint on a free port. Rounds every 10 s spread their checks
/// over 8 s: three sites are checked within ~6 s, leaving ~4 s to read the counts of exactly one round.
/// Re-checks wait a minute, beyond the test.
fn config(dir: &Path, sites: &str) -> (std::path::PathBuf, SocketAddr) {
    std::fs::write(dir.join("sites.txt"), sites).unwrap();
    let ops = free_addr("127.0.0.1");
    let config = dir.join("jetmond.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
                "min_time_between_rounds_sec": 10, "time_between_checks_sec": 60, "check_timeout_sec": 3,
                "stats_update_interval_ms": 1000, "allow_networks": ["127.0.0.0/8"], "ops_listen": "{ops}"}}"#
        ),
    )
    .unwrap();
    (config, ops)
}

fn metric_line<'a>(metrics: &'a str, prefix: &str) -> Option<&'a str> {
    metrics.lines().find(|line| line.starts_with(prefix))
}

fn assert_metric(metrics: &str, series: &str, value: &str) {
    let line = metric_line(metrics, &format!("{series} "));
    assert_eq!(line, Some(format!("{series} {value}").as_str()), "in:\n{metrics}");
}

#[test]
fn metrics_and_api_report_the_known_checks() {
    let dir = TempDir::new("ops-metrics");
    let up1 = TargetServer::start("127.0.0.60:0".parse().unwrap(), None).unwrap();
    let up2 = TargetServer::start("127.0.0.61:0".parse().unwrap(), None).unwrap();
    let refused = free_addr("127.0.0.62");
    let (config, ops) = config(
        &dir.0,
        &format!(
            "1 {}\n2 {}\n3 http://{refused}/\n",
            up1.url("/status/200"),
            up2.url("/status/200")
        ),
    );
    let daemon = DaemonProcess::start(&config);

    let status = wait_for_json(ops, "/api/status", "three results", |s| {
        s["checks"]["up"].as_u64().unwrap_or(0) + s["checks"]["down"].as_u64().unwrap_or(0) >= 3
    });
    assert_eq!(status["checks"]["up"], 2, "{status}");
    assert_eq!(status["checks"]["down"], 1, "{status}");
    assert_eq!(status["rounds"], 1, "{status}");
    // A first failure only starts local re-checks: every site is still running.
    assert_eq!(status["sites"]["running"], 3, "{status}");
    assert_eq!(status["sites"]["tracked"], 3, "{status}");

    let metrics = get(ops, "/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &metrics.body;
    assert_metric(text, "jetmond_checks_total{verdict=\"up\"}", "2");
    assert_metric(text, "jetmond_checks_total{verdict=\"down\"}", "1");
    assert_metric(text, "jetmond_check_errors_total{class=\"refused\"}", "1");
    assert_metric(text, "jetmond_check_errors_total{class=\"timeout\"}", "0");
    assert_metric(text, "jetmond_check_rtt_seconds_count", "2");
    assert_metric(text, "jetmond_check_rtt_seconds_bucket{le=\"+Inf\"}", "2");
    assert_metric(text, "jetmond_check_phase_seconds_count{phase=\"ttfb\"}", "2");
    assert_metric(text, "jetmond_rounds_total", "1");
    assert_metric(text, "jetmond_sites{status=\"running\"}", "3");
    assert_metric(text, "jetmond_store_up", "1");
    assert_metric(text, "jetmond_ready", "1");
    assert_metric(text, "jetmond_notifications_total", "0");
    // The sites are IP literals: no DNS question was needed, so none can have timed out.
    assert_metric(text, "jetmond_dns_queries_total", "0");
    assert_metric(text, "jetmond_dns_timeouts_total", "0");
    for family in [
        "jetmond_checks_in_flight ",
        "jetmond_round_lag_seconds ",
        "jetmond_dns_cache_hits_total ",
        "jetmond_store_errors_total 0",
        "# TYPE jetmond_check_phase_seconds histogram",
    ] {
        assert!(metric_line(text, family).is_some(), "{family} missing in:\n{text}");
    }

    let site = get(ops, "/api/sites/1").json();
    assert_eq!(site["blog_id"], 1);
    assert_eq!(site["status"], "running");
    let results = site["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{site}");
    assert_eq!(results[0]["up"], true);
    assert_eq!(results[0]["code"], 200);
    assert!(results[0]["rtt_ms"].as_u64().is_some_and(|rtt| rtt >= 1), "{site}");
    let down = get(ops, "/api/sites/3").json();
    assert_eq!(down["results"][0]["up"], false, "{down}");
    assert_eq!(down["results"][0]["error"], "refused", "{down}");
    assert_eq!(down["results"][0]["code"], 0, "{down}");

    for (path, status) in [
        ("/api/sites/abc", 400),
        ("/api/sites/-1", 400),
        ("/api/sites/99999999999999999999999", 400),
        ("/api/sites/42", 404),
        ("/api/nothing", 404),
        ("/metrics/x", 404),
    ] {
        let answer = get(ops, path);
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        assert!(answer.json()["error"].is_string(), "{path}: {answer:?}");
    }
    let post = request(ops, "POST", "/metrics").unwrap();
    assert_eq!(post.status, 405, "{post:?}");
    assert!(post.json()["error"].is_string());

    assert_eq!(get(ops, "/healthz").status, 200);
    assert_eq!(get(ops, "/readyz").status, 200);
    let status_path = get(ops, "/get/status");
    assert_eq!((status_path.status, status_path.body.as_str()), (200, "OK"));
    let page = get(ops, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>jetmond status</title>"));
    assert!(daemon.terminate().success());
}

#[test]
fn readyz_fails_with_the_reason_when_the_store_is_unreadable() {
    let dir = TempDir::new("ops-readyz");
    let up = TargetServer::start("127.0.0.63:0".parse().unwrap(), None).unwrap();
    let (config, ops) = config(&dir.0, &format!("1 {}\n", up.url("/status/200")));
    let daemon = DaemonProcess::start(&config);
    wait_for_json(ops, "/api/status", "the first result", |s| s["checks"]["up"] == 1);
    assert_eq!(get(ops, "/readyz").status, 200);

    std::fs::remove_file(dir.0.join("sites.txt")).unwrap();
    daemon.signal("HUP"); // a new round now, which cannot read the sites file
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let answer = loop {
        let answer = get(ops, "/readyz");
        if answer.status != 200 || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(answer.status, 503, "{answer:?}");
    let reasons = answer.json()["reasons"].to_string();
    assert!(
        reasons.contains("store unreachable") && reasons.contains("sites.txt"),
        "{reasons}"
    );
    let metrics = get(ops, "/metrics").body;
    assert_metric(&metrics, "jetmond_store_up", "0");
    assert_metric(&metrics, "jetmond_ready", "0");
    assert!(daemon.terminate().success());
}
