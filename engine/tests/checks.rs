//! End-to-end checks through real sockets against the local target farm: one test per behaviour a
//! monitored site can show, from healthy to hostile.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jetmon_engine::{CheckRequest, CheckResult, Engine, EngineConfig, ErrorClass, ResolveOverride, Verdict};
use jetmon_testkit::dns::{DnsServer, Zone};
use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::{self_signed_server_config, TestCa};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An engine that never touches the machine's resolver: a DNS server that does not exist, and no hosts file,
/// unless a test says otherwise.
fn local_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.threads = 1;
    config.check_timeout = Duration::from_secs(5);
    config.dns.nameservers = vec![refused_addr("127.0.0.1".parse().unwrap())];
    config.dns.hosts_file = None;
    config.dns.attempt_timeout = Duration::from_millis(200);
    config
}

/// Runs `urls` and returns the results in submission order.
fn run(config: EngineConfig, urls: &[String]) -> Vec<CheckResult> {
    let engine = Engine::start(config).expect("engine starts");
    for (i, url) in urls.iter().enumerate() {
        engine.submit(CheckRequest::new(i as u64, url.clone())).unwrap();
    }
    let mut results: Vec<CheckResult> = (0..urls.len())
        .map(|_| {
            engine
                .results()
                .recv_timeout(Duration::from_secs(60))
                .expect("every check reports")
        })
        .collect();
    results.sort_by_key(|r| r.id);
    engine.shutdown();
    results
}

fn run_one(config: EngineConfig, url: String) -> CheckResult {
    run(config, &[url]).remove(0)
}

fn assert_failed(result: &CheckResult, class: ErrorClass, legacy: Option<u16>) {
    assert_eq!(result.verdict, Verdict::Down, "{result:?}");
    assert_eq!(result.error, Some(class), "{result:?}");
    assert_eq!(result.legacy_error_code, legacy, "{result:?}");
    assert!(!result.detail.is_empty());
}

#[test]
fn status_codes_follow_the_original_rule() {
    let server = TargetServer::start(addr("127.0.0.2:0"), None).unwrap();
    let urls: Vec<String> = [200, 204, 404, 500]
        .iter()
        .map(|c| server.url(&format!("/status/{c}")))
        .collect();
    let results = run(local_config(), &urls);
    let got: Vec<(Verdict, u16)> = results.iter().map(|r| (r.verdict, r.code)).collect();
    assert_eq!(
        got,
        vec![
            (Verdict::Up, 200),
            (Verdict::Up, 204),
            (Verdict::Down, 404),
            (Verdict::Down, 500)
        ]
    );
    assert!(results.iter().all(|r| r.error.is_none() && r.rtt > Duration::ZERO));
    assert!(results[0].timings.connect.is_some() && results[0].timings.ttfb.is_some());
}

#[test]
fn request_is_a_head_with_host_user_agent_and_close() {
    let server = TargetServer::start(addr("127.0.0.2:0"), None).unwrap();
    run_one(local_config(), server.url("/status/200?x=1"));
    let requests = server.requests();
    let request = requests.last().expect("server saw the request");
    assert_eq!(request.method, "HEAD");
    assert_eq!(request.path, "/status/200?x=1");
    assert_eq!(request.header("host"), Some(server.addr().to_string().as_str()));
    assert_eq!(request.header("user-agent"), Some(jetmon_engine::DEFAULT_USER_AGENT));
    assert_eq!(request.header("connection"), Some("close"));
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let server = TargetServer::start(addr("127.0.0.3:0"), None).unwrap();
    let urls = [
        server.url("/redirect/2"),
        server.url("/relative-redirect"),
        server.url("/redirect/3"),
        server.url("/loop"),
    ];
    let results = run(local_config(), &urls);
    assert_eq!(
        (results[0].verdict, results[0].code, results[0].redirects),
        (Verdict::Up, 200, 2)
    );
    assert_eq!(
        (results[1].verdict, results[1].code, results[1].redirects),
        (Verdict::Up, 200, 1)
    );
    // At the limit the last 3xx stands and counts as up (the original's rule).
    assert_eq!(
        (results[2].verdict, results[2].code, results[2].redirects),
        (Verdict::Up, 302, 2)
    );
    assert_eq!(
        (results[3].verdict, results[3].code, results[3].redirects),
        (Verdict::Up, 302, 2)
    );
}

#[test]
fn redirect_to_another_host_and_to_a_dead_host() {
    let target = TargetServer::start(addr("127.0.0.4:0"), None).unwrap();
    let front = TargetServer::start(addr("127.0.0.5:0"), None).unwrap();
    let dead = refused_addr("127.0.0.4".parse().unwrap());
    let enc = |u: &str| u.replace(':', "%3A").replace('/', "%2F");
    let urls = [
        front.url(&format!(
            "/redirect-to?url={}&code=301",
            enc(&target.url("/status/200"))
        )),
        front.url(&format!("/redirect-to?url={}", enc(&format!("http://{dead}/")))),
    ];
    let results = run(local_config(), &urls);
    assert_eq!(
        (results[0].verdict, results[0].code, results[0].redirects),
        (Verdict::Up, 200, 1)
    );
    assert_failed(&results[1], ErrorClass::Refused, Some(996));
}

#[test]
fn broken_redirects_are_down_with_997() {
    let server = TargetServer::start(addr("127.0.0.6:0"), None).unwrap();
    let results = run(
        local_config(),
        &[server.url("/no-location"), server.url("/bad-location")],
    );
    for r in &results {
        assert_failed(r, ErrorClass::Redirect, Some(997));
        assert_eq!(r.code, 302);
    }
}

#[test]
fn refused_port_is_refused_995() {
    let dead = refused_addr("127.0.0.7".parse().unwrap());
    assert_failed(
        &run_one(local_config(), format!("http://{dead}/")),
        ErrorClass::Refused,
        Some(995),
    );
}

#[test]
fn silent_and_slow_servers_time_out_998() {
    let server = TargetServer::start(addr("127.0.0.8:0"), None).unwrap();
    let mut config = local_config();
    config.check_timeout = Duration::from_millis(800);
    let urls = [
        server.url("/hang"),
        server.url("/trickle?ms=100"),
        server.url("/endless-headers"),
    ];
    let started = Instant::now();
    let results = run(config, &urls);
    for r in &results {
        assert_failed(r, ErrorClass::Timeout, Some(998));
    }
    assert!(
        results[1].detail.contains("reading the response head"),
        "{}",
        results[1].detail
    );
    // The deadline is a deadline, not a hint: a generous bound so a loaded machine does not flake.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn broken_responses_are_protocol_errors_999() {
    let server = TargetServer::start(addr("127.0.0.9:0"), None).unwrap();
    let urls = [
        server.url("/close"),
        server.url("/garbage"),
        server.url("/reset"),
        server.url("/reset-mid"),
    ];
    let results = run(local_config(), &urls);
    for r in &results {
        assert_failed(r, ErrorClass::Protocol, Some(999));
    }
    assert!(
        results[0].detail.contains("without a response"),
        "{}",
        results[0].detail
    );
}

#[test]
fn huge_header_block_is_judged_by_its_status_line() {
    let server = TargetServer::start(addr("127.0.0.10:0"), None).unwrap();
    let r = run_one(local_config(), server.url("/huge-headers"));
    assert_eq!((r.verdict, r.code, r.error), (Verdict::Up, 200, None));
}

struct TlsFarm {
    _dir: TempDir,
    ca_file: PathBuf,
    ca: TestCa,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("jetmon-engine-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_farm(tag: &str) -> TlsFarm {
    let dir = TempDir::new(tag);
    let ca = TestCa::new("jetmon test CA");
    let ca_file = ca.write_pem(&dir.0);
    TlsFarm { _dir: dir, ca_file, ca }
}

fn tls_config(farm: &TlsFarm, overrides: &[(&str, IpAddr)]) -> EngineConfig {
    let mut config = local_config();
    config.extra_ca_file = Some(farm.ca_file.clone());
    config.only_extra_ca = true;
    config.dns.overrides = overrides
        .iter()
        .map(|(host, addr)| ResolveOverride {
            host: host.to_string(),
            port: 0,
            addr: *addr,
        })
        .collect();
    config
}

#[test]
fn tls_with_trusted_ca_by_name_and_by_ip() {
    let farm = tls_farm("tls-ok");
    let ip: IpAddr = "127.0.0.11".parse().unwrap();
    let server = TargetServer::start(
        SocketAddr::new(ip, 0),
        Some(farm.ca.server_config(&["site.test", "127.0.0.11"])),
    )
    .unwrap();
    let port = server.addr().port();
    let urls = [
        format!("https://site.test:{port}/status/200"),
        format!("https://127.0.0.11:{port}/redirect/1"),
    ];
    let results = run(tls_config(&farm, &[("site.test", ip)]), &urls);
    assert_eq!(
        (results[0].verdict, results[0].code),
        (Verdict::Up, 200),
        "{:?}",
        results[0]
    );
    assert!(results[0].timings.tls.is_some());
    assert_eq!(
        (results[1].verdict, results[1].code, results[1].redirects),
        (Verdict::Up, 200, 1),
        "{:?}",
        results[1]
    );
    let sni: Vec<_> = server.requests().iter().map(|r| r.server_name.clone()).collect();
    assert!(sni.contains(&Some("site.test".to_string())), "SNI sent: {sni:?}");
}

#[test]
fn tls_with_wrong_host_name_or_self_signed_is_tls_error() {
    let farm = tls_farm("tls-bad");
    let ip: IpAddr = "127.0.0.12".parse().unwrap();
    let wrong_name = TargetServer::start(SocketAddr::new(ip, 0), Some(farm.ca.server_config(&["other.test"]))).unwrap();
    let self_signed =
        TargetServer::start(SocketAddr::new(ip, 0), Some(self_signed_server_config(&["site.test"]))).unwrap();
    let urls = [
        format!("https://site.test:{}/status/200", wrong_name.addr().port()),
        format!("https://site.test:{}/status/200", self_signed.addr().port()),
    ];
    let results = run(tls_config(&farm, &[("site.test", ip)]), &urls);
    for r in &results {
        assert_failed(r, ErrorClass::Tls, Some(995));
    }
    assert!(results[0].detail.contains("certificate"), "{}", results[0].detail);
}

#[test]
fn plain_http_to_a_tls_port_is_a_protocol_error() {
    let farm = tls_farm("tls-plain");
    let server = TargetServer::start(addr("127.0.0.13:0"), Some(farm.ca.server_config(&["127.0.0.13"]))).unwrap();
    let r = run_one(local_config(), format!("http://{}/", server.addr()));
    assert_eq!(r.verdict, Verdict::Down);
    assert!(
        matches!(r.error, Some(ErrorClass::Protocol) | Some(ErrorClass::Timeout)),
        "{r:?}"
    );
}

#[test]
fn ipv6_loopback_target_is_checked() {
    let Ok(server) = TargetServer::start(addr("[::1]:0"), None) else {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    };
    let r = run_one(local_config(), server.url("/status/200"));
    assert_eq!((r.verdict, r.code), (Verdict::Up, 200), "{r:?}");
}

#[test]
fn names_resolve_through_our_dns_server() {
    let server = TargetServer::start(addr("127.0.0.14:0"), None).unwrap();
    let dns = DnsServer::start(
        addr("127.0.0.14:0"),
        Zone::default()
            .a("up.test", "127.0.0.14".parse().unwrap())
            .cname("www.up.test", "up.test"),
    )
    .unwrap();
    let mut config = local_config();
    config.dns.nameservers = vec![dns.addr()];
    let port = server.addr().port();
    let urls = [
        format!("http://up.test:{port}/status/200"),
        format!("http://www.up.test:{port}/status/200"),
        format!("http://missing.test:{port}/"),
    ];
    let results = run(config, &urls);
    assert_eq!(
        (results[0].verdict, results[0].code),
        (Verdict::Up, 200),
        "{:?}",
        results[0]
    );
    assert!(results[0].timings.dns.is_some());
    assert_eq!(
        (results[1].verdict, results[1].code),
        (Verdict::Up, 200),
        "{:?}",
        results[1]
    );
    assert_failed(&results[2], ErrorClass::Dns, Some(995));
}

#[test]
fn dead_resolver_is_dns_unavailable_not_the_sites_fault() {
    let dns = DnsServer::start(addr("127.0.0.15:0"), Zone::default().silent("slow.test")).unwrap();
    let mut config = local_config();
    config.dns.nameservers = vec![dns.addr()];
    let engine = Engine::start(config).unwrap();
    engine.submit(CheckRequest::new(1, "http://slow.test/")).unwrap();
    let r = engine.results().recv_timeout(Duration::from_secs(30)).unwrap();
    assert_failed(&r, ErrorClass::DnsUnavailable, Some(995));
    // The unanswered questions show in the stats (published by the loop right after the result).
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.stats().dns_timeouts == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = engine.stats();
    assert!(
        stats.dns_timeouts >= 1 && stats.dns_queries >= stats.dns_timeouts,
        "{stats:?}"
    );
}

#[test]
fn names_resolve_through_a_hosts_file() {
    let server = TargetServer::start(addr("127.0.0.16:0"), None).unwrap();
    let dir = TempDir::new("hosts");
    let hosts = dir.0.join("hosts");
    std::fs::write(&hosts, "# test hosts\n127.0.0.16 hosted.test alias.test\n").unwrap();
    let mut config = local_config();
    config.dns.hosts_file = Some(hosts);
    let port = server.addr().port();
    let results = run(config, &[format!("http://alias.test:{port}/status/204")]);
    assert_eq!(
        (results[0].verdict, results[0].code),
        (Verdict::Up, 204),
        "{:?}",
        results[0]
    );
}

#[test]
fn system_hosts_file_resolves_localhost() {
    let server = TargetServer::start(addr("127.0.0.1:0"), None).unwrap();
    let mut config = local_config();
    config.dns.hosts_file = Some("/etc/hosts".into());
    let r = run_one(config, format!("http://localhost:{}/status/200", server.addr().port()));
    assert_eq!((r.verdict, r.code), (Verdict::Up, 200), "{r:?}");
}

#[test]
fn invalid_urls_get_a_result_and_the_rest_still_run() {
    let server = TargetServer::start(addr("127.0.0.17:0"), None).unwrap();
    let urls = [
        "not a url".to_string(),
        server.url("/status/200"),
        "gopher://x/".to_string(),
    ];
    let results = run(local_config(), &urls);
    assert_failed(&results[0], ErrorClass::InvalidUrl, None);
    assert_eq!(results[1].verdict, Verdict::Up);
    assert_failed(&results[2], ErrorClass::InvalidUrl, None);
}

#[test]
fn address_policy_blocks_loopback_unless_allowed() {
    let server = TargetServer::start(addr("127.0.0.18:0"), None).unwrap();
    let mut config = local_config();
    config.address_policy = jetmon_engine::AddressPolicy::public_only(Vec::new());
    assert_failed(
        &run_one(config.clone(), server.url("/status/200")),
        ErrorClass::Forbidden,
        None,
    );
    config.address_policy = jetmon_engine::AddressPolicy::public_only(vec!["127.0.0.0/8".parse().unwrap()]);
    assert_eq!(run_one(config, server.url("/status/200")).verdict, Verdict::Up);
}

#[test]
fn per_ip_limit_caps_concurrent_connections() {
    let server = TargetServer::start(addr("127.0.0.19:0"), None).unwrap();
    let mut config = local_config();
    config.max_per_ip = 2;
    config.check_timeout = Duration::from_secs(3);
    let engine = Engine::start(config).unwrap();
    for i in 0..6 {
        engine.submit(CheckRequest::new(i, server.url("/hang"))).unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(server.connections(), 2, "only two connections to one IP at a time");
    let results: Vec<_> = (0..6)
        .map(|_| engine.results().recv_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    assert!(results.iter().all(|r| r.error == Some(ErrorClass::Timeout)));
}

#[test]
fn abort_ends_in_flight_checks_as_aborted() {
    let server = TargetServer::start(addr("127.0.0.20:0"), None).unwrap();
    let engine = Engine::start(local_config()).unwrap();
    engine.submit(CheckRequest::new(1, server.url("/hang"))).unwrap();
    while engine.stats().open_sockets == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let results = engine.abort();
    let r = results.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(r.error, Some(ErrorClass::Aborted));
}

#[test]
fn five_thousand_concurrent_checks_all_complete() {
    const CHECKS: u64 = 5_000;
    let servers: Vec<TargetServer> = (21..25)
        .map(|i| TargetServer::start(addr(&format!("127.0.0.{i}:0")), None).unwrap())
        .collect();
    let mut config = local_config();
    config.threads = 2;
    config.max_in_flight = 6_000;
    config.check_timeout = Duration::from_secs(30);
    let engine = Engine::start(config).unwrap();
    let submitter = engine.submitter();
    let urls: Vec<String> = (0..CHECKS)
        .map(|i| servers[i as usize % servers.len()].url("/delay?ms=1500"))
        .collect();
    submitter
        .submit_many(
            urls.iter()
                .enumerate()
                .map(|(i, u)| CheckRequest::new(i as u64, u.clone())),
        )
        .unwrap();
    let mut seen = HashSet::new();
    let mut peak_in_flight = 0;
    for _ in 0..CHECKS {
        peak_in_flight = peak_in_flight.max(engine.stats().in_flight);
        let r = engine
            .results()
            .recv_timeout(Duration::from_secs(60))
            .expect("no check is lost");
        assert_eq!((r.verdict, r.code), (Verdict::Up, 200), "{r:?}");
        assert!(seen.insert(r.id), "result {} reported twice", r.id);
    }
    assert_eq!(seen.len() as u64, CHECKS);
    assert!(
        peak_in_flight >= 4_000,
        "checks really ran concurrently (peak {peak_in_flight})"
    );
    let stats = engine.stats();
    assert_eq!((stats.completed, stats.in_flight, stats.open_sockets), (CHECKS, 0, 0));
}
