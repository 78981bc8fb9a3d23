//! `jetmond check` as a user runs it: a real process, real sockets, JSON lines on stdout.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use jetmon_testkit::http::{refused_addr, TargetServer};

fn jetmond(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jetmond"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jetmond runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn by_url<'a>(results: &'a [serde_json::Value], url: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["url"] == url)
        .unwrap_or_else(|| panic!("no result for {url}"))
}

#[test]
fn prints_one_json_object_per_url_with_the_contract_fields() {
    let server = TargetServer::start("127.0.0.30:0".parse().unwrap(), None).unwrap();
    let dead: SocketAddr = refused_addr("127.0.0.30".parse().unwrap());
    let up = server.url("/status/200");
    let redirected = server.url("/redirect/1");
    let refused = format!("http://{dead}/");
    let out = jetmond(&["check", &up, &redirected, &refused, "--timeout", "5"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = lines(&out);
    assert_eq!(results.len(), 3);
    let r = by_url(&results, &up);
    assert_eq!(
        (r["status"].as_str(), r["code"].as_u64(), r["redirects"].as_u64()),
        (Some("up"), Some(200), Some(0))
    );
    assert!(r["error"].is_null() && r["error_code"].is_null());
    assert!(r["rtt_ms"].as_u64().unwrap() >= 1);
    for key in ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms"] {
        assert!(r["timings"].get(key).is_some(), "timings.{key} present");
    }
    assert!(r["timings"]["connect_ms"].is_number());
    assert_eq!(by_url(&results, &redirected)["redirects"].as_u64(), Some(1));
    let r = by_url(&results, &refused);
    assert_eq!(
        (r["status"].as_str(), r["error"].as_str(), r["error_code"].as_u64()),
        (Some("down"), Some("refused"), Some(995))
    );
}

#[test]
fn reads_stdin_skipping_comments_and_reports_bad_lines() {
    let server = TargetServer::start("127.0.0.31:0".parse().unwrap(), None).unwrap();
    let input = format!(
        "# sites\n\n{}\n42 {}\nnot-a-url\n  # indented comment\n",
        server.url("/status/204"),
        server.url("/status/500")
    );
    let out = jetmond(&["check", "-i", "-", "--summary"], Some(&input));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = lines(&out);
    assert_eq!(results.len(), 3, "one result per non-comment line");
    assert_eq!(by_url(&results, &server.url("/status/204"))["code"].as_u64(), Some(204));
    assert_eq!(
        by_url(&results, &server.url("/status/500"))["status"].as_str(),
        Some("down")
    );
    assert_eq!(by_url(&results, "not-a-url")["error"].as_str(), Some("invalid_url"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checked 3"), "summary on stderr: {stderr}");
}

#[test]
fn resolve_option_points_a_name_at_a_local_address() {
    let server = TargetServer::start("127.0.0.32:0".parse().unwrap(), None).unwrap();
    let port = server.addr().port();
    let url = format!("http://my.site.test:{port}/status/200");
    let resolve = format!("my.site.test:{port}:127.0.0.32");
    let out = jetmond(
        &["check", &url, "--resolve", &resolve, "--dns-server", "127.0.0.1:9"],
        None,
    );
    let results = lines(&out);
    assert_eq!(results[0]["status"].as_str(), Some("up"), "{results:?}");
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    for args in [
        vec!["check"],
        vec!["check", "http://a.test/", "--timeout", "abc"],
        vec!["check", "http://a.test/", "--resolve", "nocolons"],
        vec!["check", "-i", "/nonexistent/list.txt"],
    ] {
        let out = jetmond(&args, None);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
        assert!(out.stdout.is_empty(), "{args:?} prints no results");
    }
}
