//! jetmond (a real process) confirming a DOWN decision with a jetmon.js-compatible ("legacy") veriflier and
//! a v1 one, quorum 2. The legacy one is a real veriflierd speaking the original protocol: it acknowledges
//! `POST /get/host-status` at once and posts the results later to jetmond's `/put/host-status` over
//! verified TLS. Forged and malformed callbacks are refused and change nothing.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::TestCa;
use support::daemon::{DaemonProcess, TempDir};
use support::verifliers::{
    first_down_checks, start_veriflier, stop_with_site_quiet, verifier_entry, veriflier_hosts, write_monitor_config,
    MONITOR_TOKEN,
};
use veriflierd::tls::ClientTls;

const CALLBACK_IP: &str = "127.0.0.61";

/// `POST https://{addr}/put/host-status` with `body`, trusting `ca`: the status and the body.
fn post_callback(ca: &TestCa, addr: SocketAddr, body: &str) -> (u16, String) {
    let tls = ClientTls::from_pem(Some(ca.cert_pem().as_bytes()), None).unwrap();
    let agent = ureq::Agent::config_builder()
        .tls_config(tls.ureq_config())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut response = agent
        .post(format!("https://{addr}/put/host-status"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn legacy_and_v1_verifliers_confirm_an_outage_together() {
    let dir = TempDir::new("legacy-verifliers");
    let ca = TestCa::new("legacy veriflier test CA");
    let ca_file = ca.write_pem(&dir.0);
    let (cert, key) = ca.server_identity(&[CALLBACK_IP]);
    std::fs::write(dir.0.join("callback.crt"), cert).unwrap();
    std::fs::write(dir.0.join("callback.key"), key).unwrap();
    let callback_addr = refused_addr(CALLBACK_IP.parse().unwrap());

    let live = TargetServer::start("127.0.0.66:0".parse().unwrap(), None).unwrap();
    let dead: SocketAddr = refused_addr("127.0.0.65".parse().unwrap());
    let v1 = start_veriflier(&ca, "127.0.0.63", "v1", Vec::new(), |_| {});
    // The original protocol carries one token per veriflier both ways: the monitor sends it, the veriflier's
    // callbacks carry it back as its own `auth_token`.
    let legacy = start_veriflier(&ca, "127.0.0.62", "v-legacy", Vec::new(), |config| {
        config.auth_token.0 = MONITOR_TOKEN.into();
        config.jetmon_server_port = callback_addr.port();
        config.monitors[0].host = CALLBACK_IP.into();
    });

    std::fs::write(
        dir.0.join("sites.txt"),
        format!("1 http://{dead}/\n2 {}\n", live.url("/status/200")),
    )
    .unwrap();
    let mut legacy_entry = verifier_entry("v-legacy", legacy.local_addr(), MONITOR_TOKEN);
    legacy_entry["mode"] = "legacy".into();
    let config = write_monitor_config(
        &dir.0,
        serde_json::json!({
            "timeout_for_requests_sec": 10, "veriflier_ca_file": ca_file,
            "legacy_callback_listen": callback_addr.to_string(),
            "legacy_callback_cert_file": "callback.crt", "legacy_callback_key_file": "callback.key",
            "PEER_OFFLINE_LIMIT": 2,
            "VERIFIERS": [verifier_entry("v1", v1.local_addr(), MONITOR_TOKEN), legacy_entry],
        }),
    );
    let notes = dir.0.join("notes.jsonl");
    let daemon = DaemonProcess::start(&config);

    let checks = first_down_checks(&notes, 1);
    let remote = veriflier_hosts(&checks);
    assert_eq!(remote, vec!["v-legacy", "v1"], "both verifliers voted: {checks:?}");
    assert!(checks.iter().filter(|c| c["type"] == 2).all(|c| c["status"] == 0));

    // Forged and broken callbacks: refused with a JSON error, nothing reaches the status machine.
    let forged = serde_json::json!({"auth_token": "not-the-token", "veriflier": "v-legacy",
        "checks": [{"blog_id": 2, "monitor_url": live.url("/status/200"), "status": 0, "rtt": 0, "code": 995}]});
    let (status, body) = post_callback(&ca, callback_addr, &forged.to_string());
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let v1_is_not_legacy = serde_json::json!({"auth_token": MONITOR_TOKEN, "veriflier": "v1",
        "checks": [{"blog_id": 2, "monitor_url": live.url("/status/200"), "status": 0, "rtt": 0, "code": 995}]});
    assert_eq!(post_callback(&ca, callback_addr, &v1_is_not_legacy.to_string()).0, 401);
    let (status, body) = post_callback(&ca, callback_addr, r#"{"auth_token": "x", "checks": [{"blog_id": "#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_callback(
        &ca,
        callback_addr,
        r#"{"auth_token": "x", "veriflier": "v-legacy", "checks": [{"blog_id": "2"}]}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("checks[0].blog_id"), "{body}");

    let log = stop_with_site_quiet(daemon, &config, &notes, 2, Duration::from_secs(3));
    assert!(
        log.lines()
            .any(|l| l.contains("legacy veriflier results received") && l.contains("v-legacy")),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains("legacy callback refused")).count(),
        2,
        "{log}"
    );
    drop((v1, legacy, live));
}
