//! DNS-heavy mix vs IP-only: the same count of checks against the same nginx, once by IP literal and once
//! by host names that a local DNS server (`jetmon_testkit::dns::DnsServer`) resolves to 127.0.1.x. The
//! engine is pointed at that server alone (`dns.nameservers`, no hosts file), so every name it has not
//! cached costs a real UDP round trip to a real (if tiny) server; the server counts the questions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use jetmon_testkit::dns::{DnsServer, Zone};

use crate::load::{bench_config, run_urls, LoadOutcome};
use crate::BenchError;

/// The addresses names resolve to (nginx listens on each): 127.0.1.1 to 127.0.1.8.
pub fn target_hosts() -> Vec<Ipv4Addr> {
    (1..=8).map(|i| Ipv4Addr::new(127, 0, 1, i)).collect()
}

/// Where the DNS server binds (port chosen by the system).
pub const DNS_BIND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 53)), 0);

/// The `i`th host name of the mix.
pub fn host_name(i: usize) -> String {
    format!("site-{i:05}.bench.test")
}

/// `names` names, the `i`th resolving to `hosts[i % hosts.len()]`.
pub fn zone(names: usize, hosts: &[Ipv4Addr]) -> Zone {
    (0..names).fold(Zone::default(), |zone, i| zone.a(&host_name(i), hosts[i % hosts.len()]))
}

/// `checks` URLs over `names` distinct names, in order (name `i % names`), on `port`.
pub fn name_urls(checks: usize, names: usize, port: u16) -> Vec<String> {
    (0..checks)
        .map(|i| format!("http://{}:{port}/", host_name(i % names.max(1))))
        .collect()
}

/// `checks` IP-literal URLs over the same addresses.
pub fn ip_urls(checks: usize, hosts: &[Ipv4Addr], port: u16) -> Vec<String> {
    (0..checks)
        .map(|i| format!("http://{}:{port}/", hosts[i % hosts.len()]))
        .collect()
}

/// What one DNS-mix run measured.
#[derive(Debug, Clone)]
pub struct DnsMixOutcome {
    /// The engine run.
    pub load: LoadOutcome,
    /// Questions the DNS server received (A and AAAA), or 0 for the IP-only run.
    pub queries: usize,
}

/// Checks `urls` with the engine; with `names`, through a fresh DNS server holding that many names.
pub fn run_mix(urls: &[String], names: Option<usize>, max_in_flight: usize) -> Result<DnsMixOutcome, BenchError> {
    let mut config = bench_config(max_in_flight, 0, None);
    let server = match names {
        Some(names) => {
            let server = DnsServer::start(DNS_BIND, zone(names, &target_hosts()))
                .map_err(BenchError::io(format!("start the DNS server on {DNS_BIND}")))?;
            config.dns.nameservers = vec![server.addr()];
            Some(server)
        }
        None => None,
    };
    let load = run_urls(urls, config)?;
    Ok(DnsMixOutcome {
        load,
        queries: server.as_ref().map_or(0, DnsServer::queries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_cycle_over_names_and_hosts() {
        let urls = name_urls(5, 2, 80);
        assert_eq!(urls[0], "http://site-00000.bench.test:80/");
        assert_eq!(urls[2], urls[0]);
        let hosts = target_hosts();
        let ips = ip_urls(9, &hosts, 80);
        assert_eq!(ips[0], "http://127.0.1.1:80/");
        assert_eq!(ips[8], ips[0]);
    }
}
