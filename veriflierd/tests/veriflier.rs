//! End to end: a real veriflier on 127.0.0.50 with TLS, real target servers, the real client.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::TestCa;
use veriflierd::client::{ClientError, VeriflierClient};
use veriflierd::protocol::{CheckItem, LegacyCallback, RemoteStatus};

fn item(blog_id: u64, url: String) -> CheckItem {
    CheckItem {
        blog_id,
        monitor_url: url,
    }
}

fn target() -> TargetServer {
    TargetServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap()
}

#[test]
fn sync_check_reports_online_and_offline_with_code_and_rtt() {
    let ca = TestCa::new("sync");
    let server = start_veriflier(&ca, config(true));
    let site = target();
    let refused = refused_addr(ip("127.0.0.1"));
    let checks = [
        item(1, site.url("/status/200")),
        item(2, format!("http://{refused}/")),
        item(3, site.url("/status/503")),
    ];
    let results = client(&ca, &server, MONITOR_TOKEN)
        .with_monitor_name("m1")
        .check(&checks)
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        (results[0].blog_id, results[0].status, results[0].code),
        (1, RemoteStatus::Online, 200)
    );
    assert!(results[0].rtt > 0 && results[0].error.is_none());
    assert_eq!(
        (results[1].blog_id, results[1].status, results[1].code),
        (2, RemoteStatus::Offline, 0)
    );
    assert_eq!(results[1].error.as_deref(), Some("refused"));
    assert_eq!((results[2].status, results[2].code), (RemoteStatus::Offline, 503));
}

#[test]
fn wrong_or_missing_token_is_401_and_no_check_runs() {
    let ca = TestCa::new("auth");
    let server = start_veriflier(&ca, config(true));
    let site = target();
    let err = client(&ca, &server, "not-the-token")
        .check(&[item(1, site.url("/status/200"))])
        .unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err:?}");
    let body = format!(
        r#"{{"checks":[{{"blog_id":1,"monitor_url":"{}"}}]}}"#,
        site.url("/status/200")
    );
    let (status, answer) = raw_post(ca.client_config(), server.local_addr(), "/v1/check", "", &body);
    assert_eq!(status, 401, "{answer}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(site.connections(), 0, "a refused request must not reach the target");
}

#[test]
fn token_of_another_monitor_name_is_403() {
    let ca = TestCa::new("name");
    let server = start_veriflier(&ca, config(true));
    let err = client(&ca, &server, MONITOR_TOKEN)
        .with_monitor_name("m2")
        .check(&[item(1, "http://127.0.0.1:9/".into())])
        .unwrap_err();
    assert!(matches!(err, ClientError::Http { status: 403, .. }), "{err:?}");
}

#[test]
fn untrusted_server_certificate_is_a_tls_error() {
    let ca = TestCa::new("real");
    let server = start_veriflier(&ca, config(true));
    let stranger = TestCa::new("stranger");
    let url = format!("https://{}", server.local_addr());
    let client = VeriflierClient::new("v", &url, MONITOR_TOKEN, client_tls(&stranger), CLIENT_TIMEOUT).unwrap();
    let err = client.check(&[item(1, "http://127.0.0.1:9/".into())]).unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
}

#[test]
fn bad_requests_get_4xx_with_a_message_and_the_server_keeps_serving() {
    let ca = TestCa::new("bad");
    let mut config = config(true);
    config.batch_size = 2;
    let server = start_veriflier(&ca, config);
    let addr = server.local_addr();
    let auth = format!("\r\nAuthorization: Bearer {MONITOR_TOKEN}");

    let head = format!("POST /v1/check HTTP/1.1\r\nContent-Length: 5000000{auth}");
    let (status, body) = raw_request(ca.client_config(), addr, &head, b"");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than"), "{body}");

    let (status, body) = raw_post(ca.client_config(), addr, "/v1/check", &auth, "{\"checks\": [");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not valid JSON"), "{body}");

    let wrong_type = r#"{"checks":[{"blog_id":"seven","monitor_url":"http://127.0.0.1:9/"}]}"#;
    let (status, body) = raw_post(ca.client_config(), addr, "/v1/check", &auth, wrong_type);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("checks[0].blog_id"), "{body}");

    let checks: Vec<CheckItem> = (0..3).map(|i| item(i, "http://127.0.0.1:9/".into())).collect();
    let err = client(&ca, &server, MONITOR_TOKEN).check(&checks).unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status: 413, body } if body.contains("batch_size")),
        "{err:?}"
    );

    let (status, body) = raw_post(ca.client_config(), addr, "/get/host-status", "", "[1,2]");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"status\":-1"), "{body}");

    let site = target();
    let results = client(&ca, &server, MONITOR_TOKEN)
        .check(&[item(9, site.url("/status/200"))])
        .unwrap();
    assert_eq!(results[0].status, RemoteStatus::Online);
}

#[test]
fn ssrf_guard_reports_loopback_targets_forbidden_without_connecting() {
    let ca = TestCa::new("ssrf");
    let server = start_veriflier(&ca, config(false));
    let site = target();
    let results = client(&ca, &server, MONITOR_TOKEN)
        .check(&[item(1, site.url("/status/200"))])
        .unwrap();
    assert_eq!(results[0].status, RemoteStatus::Offline);
    assert_eq!(results[0].error.as_deref(), Some("forbidden"));
    assert_eq!(site.connections(), 0);
}

#[test]
fn legacy_mode_acks_at_once_and_calls_the_monitor_back() {
    let ca = TestCa::new("legacy");
    let (callback_addr, callbacks) = callback_server(&ca);
    let mut config = config(true);
    config.jetmon_server_port = callback_addr.port();
    // Exercise the config path for the callback's trust instead of the ready-made client config.
    config.ca_file = Some(ca.write_pem(&temp_dir("legacy")));
    let mut options = options(&ca);
    options.callback_tls = None;
    let server = veriflierd::server::start(config, options).unwrap();
    let site = target();
    let body = format!(
        r#"{{"auth_token":"{MONITOR_TOKEN}","checks":[{{"blog_id":5,"monitor_url":"{}"}},{{"blog_id":6,"monitor_url":"{}"}}]}}"#,
        site.url("/delay?ms=1000"),
        site.url("/status/500"),
    );
    let started = Instant::now();
    let (status, answer) = raw_post(ca.client_config(), server.local_addr(), "/get/host-status", "", &body);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"status\":1"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the ack must not wait for the checks"
    );

    let (path, payload) = callbacks.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(path, "/put/host-status");
    let callback: LegacyCallback = serde_json::from_str(&payload).unwrap();
    assert_eq!(callback.auth_token, VERIFLIER_TOKEN);
    assert_eq!(callback.veriflier, "v-test");
    assert_eq!(callback.checks.len(), 2);
    assert_eq!(
        (callback.checks[0].blog_id, callback.checks[0].status),
        (5, RemoteStatus::Online)
    );
    assert_eq!(callback.checks[0].code, 200);
    assert_eq!(
        (callback.checks[1].status, callback.checks[1].code),
        (RemoteStatus::Offline, 500)
    );
}

#[test]
fn legacy_mode_with_wrong_token_is_401_and_calls_nobody() {
    let ca = TestCa::new("legacy-auth");
    let (callback_addr, callbacks) = callback_server(&ca);
    let mut config = config(true);
    config.jetmon_server_port = callback_addr.port();
    let server = start_veriflier(&ca, config);
    let site = target();
    let body = format!(
        r#"{{"auth_token":"nope","checks":[{{"blog_id":5,"monitor_url":"{}"}}]}}"#,
        site.url("/status/200")
    );
    let (status, _) = raw_post(ca.client_config(), server.local_addr(), "/get/host-status", "", &body);
    assert_eq!(status, 401);
    assert!(callbacks.recv_timeout(Duration::from_millis(300)).is_err());
    assert_eq!(site.connections(), 0);
}

#[test]
fn health_endpoints_answer_200() {
    let ca = TestCa::new("health");
    let server = start_veriflier(&ca, config(true));
    let (status, body) = raw_request(ca.client_config(), server.local_addr(), "GET /get/status HTTP/1.1", b"");
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, body) = raw_request(ca.client_config(), server.local_addr(), "GET /healthz HTTP/1.1", b"");
    assert_eq!(status, 200);
    assert!(body.contains("\"veriflier\":\"v-test\""), "{body}");
    let (status, _) = raw_request(ca.client_config(), server.local_addr(), "GET /nope HTTP/1.1", b"");
    assert_eq!(status, 404);
}

#[test]
fn hanging_veriflier_gives_timeout_within_the_client_deadline() {
    let ca = TestCa::new("hang");
    let listener = TcpListener::bind("127.0.0.52:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds connections without a byte of TLS.
    let holder = std::thread::spawn(move || listener.accept().map(|(socket, _)| socket));
    let timeout = Duration::from_millis(500);
    let client = VeriflierClient::new(
        "hung",
        &format!("https://{addr}"),
        MONITOR_TOKEN,
        client_tls(&ca),
        timeout,
    )
    .unwrap();
    let started = Instant::now();
    let err = client.check(&[item(1, "http://127.0.0.1:9/".into())]).unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    drop(holder.join());
}

#[test]
fn shutdown_stops_listening() {
    let ca = TestCa::new("stop");
    let server = start_veriflier(&ca, config(true));
    let addr = server.local_addr();
    server.shutdown();
    assert!(std::net::TcpStream::connect(addr).is_err());
}
