//! The internet-weather guard on a veriflier: when its canary cannot be reached it answers "unknown" (2)
//! instead of "offline" for sites it cannot reach, keeps answering "online" for those it can, and goes
//! back to "offline" answers by itself once the canary answers again.

mod common;

use std::time::{Duration, Instant};

use common::*;
use jetmon_testkit::http::{refused_addr, TargetServer};
use jetmon_testkit::tls::TestCa;
use veriflierd::protocol::{CheckItem, RemoteStatus};
use veriflierd::server::RunningServer;

fn wait_until(what: &str, server: &RunningServer, degraded: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.weather().is_degraded() != degraded {
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: {:?}",
            server.weather().snapshot()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unreachable_canary_turns_offline_answers_into_unknown_until_it_answers() {
    let ca = TestCa::new("weather");
    let canary = refused_addr(ip("127.0.0.1"));
    let mut config = config(true);
    config.weather.canaries = vec![format!("http://{canary}/status/200")];
    config.weather.canary_interval_sec = 1;
    config.weather.canary_failures = 2;
    config.weather.hold_sec = 1;
    let server = start_veriflier(&ca, config);
    let site = TargetServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let dead = refused_addr(ip("127.0.0.1"));
    let checks = [
        CheckItem {
            blog_id: 1,
            monitor_url: site.url("/status/200"),
        },
        CheckItem {
            blog_id: 2,
            monitor_url: format!("http://{dead}/"),
        },
    ];
    let client = client(&ca, &server, MONITOR_TOKEN);

    wait_until("the canary's failures make it degraded", &server, true);
    let results = client.check(&checks).unwrap();
    assert_eq!(
        results[0].status,
        RemoteStatus::Online,
        "what it can reach is still online"
    );
    assert_eq!(
        results[1].status,
        RemoteStatus::Unknown,
        "it cannot tell about the rest"
    );
    assert_eq!(server.weather().snapshot().held_back, 1);

    // The canary comes back: the veriflier trusts its own failures again.
    let _canary = TargetServer::start(canary, None).unwrap();
    wait_until("the canary answers again and the hold passes", &server, false);
    let results = client.check(&checks).unwrap();
    assert_eq!(results[1].status, RemoteStatus::Offline);
}
