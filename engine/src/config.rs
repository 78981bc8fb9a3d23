//! Engine settings. Defaults follow the original jetmon where it had one (20 s whole-check deadline,
//! 2 redirects, its User-Agent); the rest are what a large fleet needs (per-phase limits, in-flight caps).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::policy::AddressPolicy;

/// The User-Agent of the original jetmon, kept so that site owners' logs and firewall rules still match.
pub const DEFAULT_USER_AGENT: &str = "jetmon/1.0 (Jetpack Site Uptime Monitor by WordPress.com)";
/// The original's whole-check deadline.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// Connect limit per hop: long enough for a SYN retransmit (1 s) and a slow path, short enough to leave time
/// for TLS and the response inside the whole-check deadline.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshake limit per hop.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// The original's redirect limit.
pub const DEFAULT_MAX_REDIRECTS: u8 = 2;
/// Largest response head (status line and headers) accepted. Real sites send 8–16 KiB of cookies and
/// security headers; 32 KiB leaves room while bounding memory per check.
pub const DEFAULT_MAX_RESPONSE_HEAD_BYTES: usize = 32 * 1024;
/// File descriptors kept free for everything else in the process (logs, DB, RPC servers).
pub const RESERVED_FDS: u64 = 256;

/// How names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Upstream servers. Empty means: read them from `resolv_conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Where to read nameservers and options from when `nameservers` is empty.
    pub resolv_conf: PathBuf,
    /// A hosts file consulted before DNS; `None` disables it.
    pub hosts_file: Option<PathBuf>,
    /// Fixed answers that win over everything (`--resolve HOST:PORT:ADDR`, curl style). A port of 0
    /// matches every port.
    pub overrides: Vec<ResolveOverride>,
    /// Time to wait for one upstream before trying the next one.
    pub attempt_timeout: Duration,
    /// How many rounds over the upstream list before giving up.
    pub attempts: u8,
    /// Cache answers at most this long, whatever their TTL says.
    pub max_ttl: Duration,
    /// Cache negative answers (NXDOMAIN, no records) this long.
    pub negative_ttl: Duration,
    /// Ask for AAAA records too (IPv6 addresses are tried after IPv4 ones).
    pub ipv6: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            hosts_file: Some(PathBuf::from("/etc/hosts")),
            overrides: Vec::new(),
            attempt_timeout: Duration::from_secs(2),
            attempts: 2,
            max_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(60),
            ipv6: true,
        }
    }
}

/// A fixed answer for one host (and optionally one port), like curl's `--resolve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    /// Host name, compared case-insensitively.
    pub host: String,
    /// Port the override applies to; 0 for any.
    pub port: u16,
    /// The address to use.
    pub addr: IpAddr,
}

/// A `HOST:PORT:ADDR` string that is not a valid [`ResolveOverride`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resolve entry {input:?}: {reason} (expected HOST:PORT:ADDR, PORT 0 or * for any)")]
pub struct ResolveOverrideParseError {
    input: String,
    reason: String,
}

impl std::str::FromStr for ResolveOverride {
    type Err = ResolveOverrideParseError;

    /// Parses curl's `--resolve` syntax: `HOST:PORT:ADDR`, with `*` or `0` as PORT for any port and IPv6
    /// addresses with or without brackets (`site.test:443:[::1]`).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ResolveOverrideParseError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (host, rest) = input.split_once(':').ok_or_else(|| err("missing PORT and ADDR"))?;
        let (port, addr) = rest.split_once(':').ok_or_else(|| err("missing ADDR"))?;
        if host.is_empty() {
            return Err(err("HOST is empty"));
        }
        let port = match port {
            "*" => 0,
            p => p
                .parse::<u16>()
                .map_err(|_| err("PORT is not a number from 0 to 65535"))?,
        };
        let addr = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
        let addr = addr.parse().map_err(|_| err("ADDR is not an IP address"))?;
        Ok(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

/// Settings of an [`crate::Engine`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Event-loop threads. 0 means one per available core.
    pub threads: usize,
    /// Checks in flight at once across all threads. Further submissions wait in the queue.
    pub max_in_flight: usize,
    /// Concurrent connections to one destination IP per engine thread; 0 for no limit. Keeps one shared host
    /// carrying thousands of sites from being hammered by a round.
    pub max_per_ip: usize,
    /// Deadline for the whole check, redirects included.
    pub check_timeout: Duration,
    /// Limit on one TCP connect (all addresses of a hop together).
    pub connect_timeout: Duration,
    /// Limit on one TLS handshake.
    pub tls_timeout: Duration,
    /// Redirects followed before the last 3xx is taken as the answer.
    pub max_redirects: u8,
    /// Largest response head accepted, in bytes.
    pub max_response_head_bytes: usize,
    /// Sent as `User-Agent`.
    pub user_agent: String,
    /// Extra PEM file of CA certificates trusted beside the built-in web roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Trust only `extra_ca_file`, not the built-in web roots (private deployments, tests).
    pub only_extra_ca: bool,
    /// Name resolution.
    pub dns: DnsConfig,
    /// Which destination addresses may be probed (SSRF guard).
    pub address_policy: AddressPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            threads: 0,
            max_in_flight: 10_000,
            max_per_ip: 0,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls_timeout: DEFAULT_TLS_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_response_head_bytes: DEFAULT_MAX_RESPONSE_HEAD_BYTES,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            extra_ca_file: None,
            only_extra_ca: false,
            dns: DnsConfig::default(),
            address_policy: AddressPolicy::allow_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_entries_parse_like_curl() {
        let r: ResolveOverride = "Site.Test:443:127.0.0.2".parse().unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.addr),
            ("site.test", 443, "127.0.0.2".parse().unwrap())
        );
        let r: ResolveOverride = "a:*:[::1]".parse().unwrap();
        assert_eq!((r.port, r.addr), (0, "::1".parse().unwrap()));
        for bad in [
            "nocolons",
            "a:80",
            ":80:127.0.0.1",
            "a:x:127.0.0.1",
            "a:80:not-ip",
            "a:70000:127.0.0.1",
        ] {
            assert!(bad.parse::<ResolveOverride>().is_err(), "{bad}");
        }
    }
}
