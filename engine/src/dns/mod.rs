//! Name resolution inside the engine's own mio loop: no resolver threads, no blocking `getaddrinfo`.
//!
//! [`Dns`] answers at once what it can (IP literals, `--resolve` overrides, the hosts file, the cache)
//! and otherwise asks the upstream nameservers itself, reporting the answer later through
//! [`Dns::on_event`] / [`Dns::on_timeout`]. Checks waiting for the same name share one lookup.
//!
//! Files: `resolver.rs` is the sans-IO state machine (retries, server rotation, A+AAAA merging),
//! `io.rs` moves its bytes over UDP/TCP, `wire.rs` encodes and interprets messages, `cache.rs`,
//! `hosts.rs` and `conf.rs` are what their names say.

mod cache;
mod conf;
mod hosts;
mod io;
mod resolver;
mod wire;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::Name;

use crate::config::{DnsConfig, ResolveOverride};
use cache::Cache;
use hosts::Hosts;
use io::Io;
use resolver::Resolver;

/// Addresses of a host, IPv4 first; shared so that a thousand checks of one name hold one copy.
pub(crate) type Addrs = Arc<[IpAddr]>;

/// Names cached at once. At a few hundred bytes each this bounds the cache to tens of MiB, and is far
/// above the distinct hosts of one round on one engine thread.
pub(crate) const CACHE_CAPACITY_NAMES: usize = 100_000;
/// Longest host name DNS can carry (RFC 1035 §2.3.4, presentation form without the trailing dot).
const MAX_NAME_BYTES: usize = 253;

/// Why a name has no addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DnsError {
    /// NXDOMAIN: the name does not exist. The site's fault, not ours.
    #[error("{name}: no such domain (NXDOMAIN)")]
    NotFound { name: String },
    /// The name exists but has no A (or AAAA) record.
    #[error("{name}: no address records")]
    NoRecords { name: String },
    /// No upstream gave a usable answer (timeouts, SERVFAIL, REFUSED, network errors).
    #[error("{name}: resolver unavailable: {detail}")]
    Unavailable { name: String, detail: String },
    /// Not something DNS can look up.
    #[error("invalid host name {name:?}")]
    InvalidName { name: String },
    /// The resolver's configuration files are unusable.
    #[error("DNS configuration {path}: {detail}")]
    Config { path: String, detail: String },
    /// A socket could not be set up.
    #[error("DNS socket: {detail}")]
    Io { detail: String },
}

impl DnsError {
    /// True for failures on the resolver's side, which say nothing about the site being checked (as
    /// opposed to NXDOMAIN, no records or an invalid name).
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DnsError::Unavailable { .. } | DnsError::Config { .. } | DnsError::Io { .. }
        )
    }
}

/// Resolver counters, cumulative since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DnsStats {
    /// Lookups answered from the cache.
    pub(crate) cache_hits: u64,
    /// Lookups that had to wait for upstream (including those joining a lookup already in flight).
    pub(crate) cache_misses: u64,
    /// Questions sent upstream, retransmissions and TCP retries included.
    pub(crate) queries_sent: u64,
    /// Upstream attempts that timed out.
    pub(crate) timeouts: u64,
    /// Truncated UDP answers retried over TCP.
    pub(crate) tcp_fallbacks: u64,
}

/// The resolver of one engine thread. It owns the mio tokens `first_token .. first_token + TOKEN_SPAN`.
#[derive(Debug)]
pub(crate) struct Dns {
    overrides: Vec<ResolveOverride>,
    hosts: Hosts,
    cache: Cache,
    resolver: Resolver,
    io: Io,
    first_token: usize,
    /// Answers that became known outside `on_event`/`on_timeout` (a lookup whose every send failed),
    /// delivered at the next call; `ready_since` makes `next_deadline` ask for that call at once.
    ready: Vec<(u64, Result<Addrs, DnsError>)>,
    ready_since: Option<Instant>,
    cache_hits: u64,
    cache_misses: u64,
}

impl Dns {
    /// Tokens owned: two UDP sockets, the rest for TCP connections.
    pub(crate) const TOKEN_SPAN: usize = 1024;

    /// Reads the nameservers (from the config, or else resolv.conf) and the hosts file, opens and
    /// registers the UDP sockets.
    pub(crate) fn new(config: &DnsConfig, registry: &mio::Registry, first_token: usize) -> Result<Dns, DnsError> {
        let servers = if config.nameservers.is_empty() {
            conf::nameservers_from_file(&config.resolv_conf)?
        } else {
            config.nameservers.clone()
        };
        let hosts = match &config.hosts_file {
            Some(path) => read_hosts(path, config.ipv6)?,
            None => Hosts::default(),
        };
        let overrides = config
            .overrides
            .iter()
            .map(|o| ResolveOverride {
                host: normalize_name(&o.host).into_owned(),
                ..o.clone()
            })
            .collect();
        let io = Io::new(&servers, registry, first_token, Self::TOKEN_SPAN)?;
        Ok(Dns {
            overrides,
            hosts,
            cache: Cache::new(CACHE_CAPACITY_NAMES, config.max_ttl, config.negative_ttl),
            resolver: Resolver::new(servers, config.attempt_timeout, config.attempts, config.ipv6),
            io,
            first_token,
            ready: Vec::new(),
            ready_since: None,
            cache_hits: 0,
            cache_misses: 0,
        })
    }

    /// Immediate answer for IP literals, overrides (matching host and port or port 0), hosts file, cache
    /// hits; else None and the answer comes later through on_event/on_timeout, for `waiter`. A new
    /// lookup replaces whatever `waiter` was still waiting for (a redirect to another host).
    pub(crate) fn lookup(
        &mut self,
        host: &str,
        port: u16,
        waiter: u64,
        now: Instant,
    ) -> Option<Result<Addrs, DnsError>> {
        self.cancel(waiter);
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(addr) = literal.parse::<IpAddr>() {
            return Some(Ok(Arc::from([addr])));
        }
        let key = normalize_name(host);
        if let Some(addrs) = self.overridden(&key, port) {
            return Some(Ok(addrs));
        }
        if let Some(addrs) = self.hosts.get(&key) {
            return Some(Ok(Arc::clone(addrs)));
        }
        if let Some(answer) = self.cache.get(&key, now) {
            self.cache_hits += 1;
            return Some(answer);
        }
        let Some(name) = dns_name(&key) else {
            return Some(Err(DnsError::InvalidName { name: host.to_string() }));
        };
        self.cache_misses += 1;
        self.resolver.start(&key, &name, waiter, now);
        self.io.flush_udp(&mut self.resolver, now);
        self.collect(now);
        if !self.ready.is_empty() {
            self.ready_since.get_or_insert(now);
        }
        None
    }

    /// The check gave up on its lookup: `waiter` is never reported. The lookup itself goes on for the
    /// other waiters and the cache.
    pub(crate) fn cancel(&mut self, waiter: u64) {
        self.resolver.cancel(waiter);
        self.ready.retain(|(w, _)| *w != waiter);
    }

    /// Whether `token` belongs to this resolver.
    pub(crate) fn owns(&self, token: mio::Token) -> bool {
        token
            .0
            .checked_sub(self.first_token)
            .is_some_and(|offset| offset < Self::TOKEN_SPAN)
    }

    /// Handles readiness of one of our sockets; finished lookups are appended to `done`.
    pub(crate) fn on_event(
        &mut self,
        registry: &mio::Registry,
        event: &mio::event::Event,
        now: Instant,
        done: &mut Vec<(u64, Result<Addrs, DnsError>)>,
    ) {
        self.io.on_event(registry, event, &mut self.resolver, now);
        self.finish_step(registry, now, done);
    }

    /// Retransmits, moves to the next server or gives up on attempts whose deadline has passed;
    /// finished lookups are appended to `done`.
    pub(crate) fn on_timeout(
        &mut self,
        registry: &mio::Registry,
        now: Instant,
        done: &mut Vec<(u64, Result<Addrs, DnsError>)>,
    ) {
        self.resolver.on_timeout(now);
        self.finish_step(registry, now, done);
    }

    /// When `on_timeout` should next be called.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match (self.ready_since, self.resolver.next_deadline()) {
            (Some(ready), Some(timer)) => Some(ready.min(timer)),
            (ready, timer) => ready.or(timer),
        }
    }

    pub(crate) fn stats(&self) -> DnsStats {
        let counters = self.resolver.counters();
        DnsStats {
            cache_hits: self.cache_hits,
            cache_misses: self.cache_misses,
            queries_sent: counters.queries_sent,
            timeouts: counters.timeouts,
            tcp_fallbacks: counters.tcp_fallbacks,
        }
    }

    /// Performs the IO the resolver asked for and hands out what finished.
    fn finish_step(&mut self, registry: &mio::Registry, now: Instant, done: &mut Vec<(u64, Result<Addrs, DnsError>)>) {
        self.io.flush(registry, &mut self.resolver, now);
        self.collect(now);
        done.append(&mut self.ready);
        self.ready_since = None;
    }

    /// Caches finished lookups and queues their waiters' results.
    fn collect(&mut self, now: Instant) {
        while let Some(completion) = self.resolver.poll_completion() {
            self.cache
                .store(&completion.key, &completion.result, completion.ttl, now);
            for waiter in completion.waiters {
                self.ready.push((waiter, completion.result.clone()));
            }
        }
    }

    /// Addresses of the overrides for `key`: those for exactly `port` win over those for any port.
    fn overridden(&self, key: &str, port: u16) -> Option<Addrs> {
        let matching = |wanted: u16| -> Vec<IpAddr> {
            self.overrides
                .iter()
                .filter(|o| o.host == key && o.port == wanted)
                .map(|o| o.addr)
                .collect()
        };
        if self.overrides.is_empty() {
            return None;
        }
        let exact = if port == 0 { Vec::new() } else { matching(port) };
        let addrs = if exact.is_empty() { matching(0) } else { exact };
        (!addrs.is_empty()).then(|| ipv4_first(addrs))
    }
}

/// The cache and hosts key of a host name: lowercase, without the trailing dot. Borrowed when already
/// in that form, which is the usual case, so cache hits allocate nothing.
pub(crate) fn normalize_name(host: &str) -> Cow<'_, str> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Orders addresses IPv4 first (the engine connects in this order), keeping order within a family.
pub(crate) fn ipv4_first(addrs: Vec<IpAddr>) -> Addrs {
    let (mut ordered, v6): (Vec<IpAddr>, Vec<IpAddr>) = addrs.into_iter().partition(IpAddr::is_ipv4);
    ordered.extend(v6);
    Arc::from(ordered)
}

/// The fully qualified DNS name for a normalized key; `None` if DNS cannot carry it. The name is always
/// absolute: the engine checks public sites, and resolv.conf search domains would only turn a typo into
/// someone else's site.
fn dns_name(key: &str) -> Option<Name> {
    if key.is_empty() || key.len() > MAX_NAME_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut name = Name::from_ascii(key).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// Reads the hosts file; a missing one is empty (minimal containers have none), any other read error is
/// a configuration error.
fn read_hosts(path: &std::path::Path, ipv6: bool) -> Result<Hosts, DnsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Hosts::parse(&text, ipv6)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "hosts file not found, using none");
            Ok(Hosts::default())
        }
        Err(e) => Err(DnsError::Config {
            path: path.display().to_string(),
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Real sockets against the testkit DNS server, driven by a `mio::Poll` loop like the reactor's.
    //! Each test binds its own 127.0.0.x address so tests run in parallel without sharing a server.

    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
    use std::time::Duration;

    use jetmon_testkit::dns::{DnsServer, Zone};
    use mio::{Events, Poll};

    /// Bound on every test's event loop, far above what any test needs.
    const TEST_DEADLINE: Duration = Duration::from_secs(10);
    const FIRST_TOKEN: usize = 1 << 20;
    const V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

    fn config(servers: &[SocketAddr]) -> DnsConfig {
        DnsConfig {
            nameservers: servers.to_vec(),
            hosts_file: None,
            attempt_timeout: Duration::from_millis(500),
            ..DnsConfig::default()
        }
    }

    fn server(ip: [u8; 4], zone: Zone) -> DnsServer {
        DnsServer::start(SocketAddr::from((ip, 0)), zone).unwrap()
    }

    struct Harness {
        poll: Poll,
        dns: Dns,
    }

    impl Harness {
        fn new(config: &DnsConfig) -> Harness {
            let poll = Poll::new().unwrap();
            let dns = Dns::new(config, poll.registry(), FIRST_TOKEN).unwrap();
            Harness { poll, dns }
        }

        /// Runs the loop until `count` answers arrived (or the test deadline passed).
        fn answers(&mut self, count: usize) -> Vec<(u64, Result<Addrs, DnsError>)> {
            let deadline = Instant::now() + TEST_DEADLINE;
            let mut done = Vec::new();
            let mut events = Events::with_capacity(64);
            while done.len() < count && Instant::now() < deadline {
                let now = Instant::now();
                let wait = self
                    .dns
                    .next_deadline()
                    .map_or(deadline - now, |d| d.saturating_duration_since(now));
                self.poll.poll(&mut events, Some(wait)).unwrap();
                let now = Instant::now();
                for event in events.iter() {
                    assert!(self.dns.owns(event.token()), "{event:?}");
                    self.dns.on_event(self.poll.registry(), event, now, &mut done);
                }
                if self.dns.next_deadline().is_some_and(|d| d <= now) {
                    self.dns.on_timeout(self.poll.registry(), now, &mut done);
                }
            }
            done
        }

        fn resolve(&mut self, host: &str) -> Result<Addrs, DnsError> {
            if let Some(answer) = self.dns.lookup(host, 443, 1, Instant::now()) {
                return answer;
            }
            let mut answers = self.answers(1);
            assert_eq!(answers.len(), 1, "no answer for {host} within {TEST_DEADLINE:?}");
            answers.remove(0).1
        }
    }

    fn addrs(list: &[IpAddr]) -> Result<Addrs, DnsError> {
        Ok(Arc::from(list))
    }

    #[test]
    fn a_and_aaaa_answer_lists_ipv4_first() {
        let upstream = server(
            [127, 0, 0, 71],
            Zone::default().aaaa("site.test", V6).a("site.test", V4),
        );
        let mut harness = Harness::new(&config(&[upstream.addr()]));
        assert_eq!(harness.resolve("Site.Test."), addrs(&[V4.into(), V6.into()]));
        assert_eq!(upstream.queries_for("site.test", "A"), 1);
        assert_eq!(upstream.queries_for("site.test", "AAAA"), 1);
    }

    #[test]
    fn nxdomain_is_not_found_and_not_the_resolvers_fault() {
        let upstream = server([127, 0, 0, 72], Zone::default());
        let mut harness = Harness::new(&config(&[upstream.addr()]));
        let error = harness.resolve("missing.test").unwrap_err();
        assert_eq!(
            error,
            DnsError::NotFound {
                name: "missing.test".into()
            }
        );
        assert!(!error.is_unavailable());
    }

    #[test]
    fn silent_upstream_is_unavailable_after_all_attempts() {
        // Bound but never read: datagrams vanish, like a dead resolver behind a firewall.
        let black_hole = UdpSocket::bind("127.0.0.73:0").unwrap();
        let upstream = server([127, 0, 0, 73], Zone::default().silent("slow.test"));
        let mut config = config(&[black_hole.local_addr().unwrap(), upstream.addr()]);
        config.attempt_timeout = Duration::from_millis(100);
        config.attempts = 2;
        let mut harness = Harness::new(&config);
        let error = harness.resolve("slow.test").unwrap_err();
        assert!(matches!(error, DnsError::Unavailable { .. }), "{error:?}");
        assert!(error.is_unavailable());
        assert_eq!(upstream.queries_for("slow.test", "A"), 2, "one per round");
        let stats = harness.dns.stats();
        assert_eq!(stats.timeouts, 8, "2 types x 2 rounds x 2 servers");
        assert_eq!(stats.queries_sent, 8);
    }

    #[test]
    fn servfail_falls_through_to_the_next_server() {
        let broken = server([127, 0, 0, 74], Zone::default().servfail("site.test"));
        let working = server([127, 0, 0, 75], Zone::default().a("site.test", V4));
        let mut config = config(&[broken.addr(), working.addr()]);
        config.ipv6 = false;
        let mut harness = Harness::new(&config);
        assert_eq!(harness.resolve("site.test"), addrs(&[V4.into()]));
        assert_eq!(broken.queries(), 1);
        assert_eq!(harness.dns.stats().timeouts, 0, "SERVFAIL moves on at once");
    }

    #[test]
    fn truncated_udp_answer_is_fetched_over_tcp() {
        let zone = Zone::default()
            .truncate_udp("big.test")
            .a("big.test", V4)
            .aaaa("big.test", V6);
        let upstream = server([127, 0, 0, 76], zone);
        let mut harness = Harness::new(&config(&[upstream.addr()]));
        assert_eq!(harness.resolve("big.test"), addrs(&[V4.into(), V6.into()]));
        assert_eq!(upstream.queries_for("big.test", "A"), 2, "UDP then TCP");
        assert_eq!(harness.dns.stats().tcp_fallbacks, 2);
    }

    #[test]
    fn hundred_waiters_on_one_name_make_one_question_per_type() {
        let upstream = server(
            [127, 0, 0, 77],
            Zone::default().a("shared.test", V4).aaaa("shared.test", V6),
        );
        let mut harness = Harness::new(&config(&[upstream.addr()]));
        let now = Instant::now();
        for waiter in 0..100 {
            assert!(harness.dns.lookup("shared.test", 443, waiter, now).is_none());
        }
        let mut answers = harness.answers(100);
        answers.sort_by_key(|(waiter, _)| *waiter);
        assert_eq!(
            answers.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        assert!(answers
            .iter()
            .all(|(_, answer)| *answer == addrs(&[V4.into(), V6.into()])));
        assert_eq!(upstream.queries_for("shared.test", "A"), 1);
        assert_eq!(upstream.queries_for("shared.test", "AAAA"), 1);
        assert_eq!(harness.dns.stats().cache_misses, 100);
    }

    #[test]
    fn burst_of_lookups_beyond_a_servers_socket_buffer_loses_no_question() {
        // 2,000 questions at once would overflow a one-thread server's default receive buffer (about 256
        // small datagrams on Linux) and cost every dropped one an attempt timeout; the resolver keeps at
        // most `MAX_QUESTIONS_IN_FLIGHT` outstanding, so the server never holds more than that.
        const NAMES: u64 = 1_000;
        let name = |i: u64| format!("burst-{i}.test");
        let zone = (0..NAMES).fold(Zone::default(), |zone, i| zone.a(&name(i), V4).aaaa(&name(i), V6));
        let upstream = server([127, 0, 0, 84], zone);
        let mut config = config(&[upstream.addr()]);
        // Long enough that only a lost datagram, never a slow test machine, can time an attempt out.
        config.attempt_timeout = Duration::from_secs(5);
        let mut harness = Harness::new(&config);
        let now = Instant::now();
        for waiter in 0..NAMES {
            assert!(harness.dns.lookup(&name(waiter), 80, waiter, now).is_none());
        }
        let answers = harness.answers(NAMES as usize);
        assert_eq!(answers.len(), NAMES as usize);
        assert!(answers
            .iter()
            .all(|(_, answer)| *answer == addrs(&[V4.into(), V6.into()])));
        let stats = harness.dns.stats();
        assert_eq!(stats.timeouts, 0, "no question was lost and waited out");
        assert_eq!(stats.queries_sent, 2 * NAMES);
        assert_eq!(upstream.queries(), 2 * NAMES as usize);
    }

    #[test]
    fn second_lookup_is_a_cache_hit() {
        let upstream = server([127, 0, 0, 78], Zone::default().a("cached.test", V4).ttl(60));
        let mut config = config(&[upstream.addr()]);
        config.ipv6 = false;
        let mut harness = Harness::new(&config);
        assert_eq!(harness.resolve("cached.test"), addrs(&[V4.into()]));
        let again = harness.dns.lookup("CACHED.test", 80, 2, Instant::now());
        assert_eq!(again, Some(addrs(&[V4.into()])));
        assert_eq!(upstream.queries(), 1);
        assert_eq!(harness.dns.stats().cache_hits, 1);
    }

    #[test]
    fn cancelled_waiter_is_never_reported() {
        let upstream = server([127, 0, 0, 79], Zone::default().a("site.test", V4));
        let mut config = config(&[upstream.addr()]);
        config.ipv6 = false;
        let mut harness = Harness::new(&config);
        let now = Instant::now();
        assert!(harness.dns.lookup("site.test", 443, 1, now).is_none());
        assert!(harness.dns.lookup("site.test", 443, 2, now).is_none());
        harness.dns.cancel(1);
        let answers = harness.answers(1);
        assert_eq!(answers, vec![(2, addrs(&[V4.into()]))]);
        assert_eq!(harness.dns.next_deadline(), None, "nothing left to report");
    }

    #[test]
    fn override_wins_over_dns_for_its_port() {
        let upstream = server([127, 0, 0, 80], Zone::default().a("pinned.test", V4));
        let pinned: IpAddr = "198.51.100.7".parse().unwrap();
        let any_port: IpAddr = "198.51.100.8".parse().unwrap();
        let mut config = config(&[upstream.addr()]);
        config.overrides = vec![
            ResolveOverride {
                host: "Pinned.Test".into(),
                port: 443,
                addr: pinned,
            },
            ResolveOverride {
                host: "anyport.test".into(),
                port: 0,
                addr: any_port,
            },
        ];
        let mut harness = Harness::new(&config);
        let now = Instant::now();
        assert_eq!(harness.dns.lookup("pinned.test", 443, 1, now), Some(addrs(&[pinned])));
        assert_eq!(
            harness.dns.lookup("anyport.test", 8080, 2, now),
            Some(addrs(&[any_port]))
        );
        assert_eq!(upstream.queries(), 0);
        // Another port of the pinned host goes to DNS as usual.
        assert_eq!(harness.dns.lookup("pinned.test", 80, 3, now), None);
    }

    #[test]
    fn literals_and_invalid_names_answer_at_once() {
        let upstream = server([127, 0, 0, 81], Zone::default());
        let mut harness = Harness::new(&config(&[upstream.addr()]));
        let now = Instant::now();
        assert_eq!(
            harness.dns.lookup("192.0.2.1", 80, 1, now),
            Some(addrs(&["192.0.2.1".parse().unwrap()]))
        );
        assert_eq!(
            harness.dns.lookup("[2001:db8::1]", 80, 2, now),
            Some(addrs(&["2001:db8::1".parse().unwrap()]))
        );
        let too_long = "a".repeat(MAX_NAME_BYTES + 1);
        for bad in ["", "two words.test", too_long.as_str()] {
            let answer = harness.dns.lookup(bad, 80, 3, now);
            assert!(
                matches!(answer, Some(Err(DnsError::InvalidName { .. }))),
                "{bad:?}: {answer:?}"
            );
        }
        assert_eq!(upstream.queries(), 0);
    }

    #[test]
    fn hosts_file_answers_before_dns() {
        let dir = std::env::temp_dir().join(format!("jetmon-dns-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "192.0.2.55 fromhosts.test\n").unwrap();
        let upstream = server([127, 0, 0, 82], Zone::default());
        let mut config = config(&[upstream.addr()]);
        config.hosts_file = Some(path);
        let mut harness = Harness::new(&config);
        let answer = harness.dns.lookup("FromHosts.test", 443, 1, Instant::now());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(answer, Some(addrs(&["192.0.2.55".parse().unwrap()])));
        assert_eq!(upstream.queries(), 0);
    }

    #[test]
    fn owns_exactly_its_token_span() {
        let upstream = server([127, 0, 0, 83], Zone::default());
        let harness = Harness::new(&config(&[upstream.addr()]));
        assert!(!harness.dns.owns(mio::Token(FIRST_TOKEN - 1)));
        assert!(harness.dns.owns(mio::Token(FIRST_TOKEN)));
        assert!(harness.dns.owns(mio::Token(FIRST_TOKEN + Dns::TOKEN_SPAN - 1)));
        assert!(!harness.dns.owns(mio::Token(FIRST_TOKEN + Dns::TOKEN_SPAN)));
    }
}
