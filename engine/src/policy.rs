//! Which destination addresses the engine may connect to.
//!
//! A monitor probes URLs that users type in; a URL that resolves to 127.0.0.1 or 169.254.169.254 would let
//! anyone make the monitor (or a veriflier) poke at its own host or cloud metadata service. The check is
//! made on the resolved address at connect time, so DNS rebinding cannot slip past it.

use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fe80::/10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {input:?}: {reason}")]
pub struct IpNetParseError {
    input: String,
    reason: &'static str,
}

impl IpNet {
    /// Whether `ip` lies inside this network. An IPv4 network never contains an IPv6 address and back,
    /// except that IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| IpNetParseError {
            input: input.to_string(),
            reason,
        };
        let (addr, prefix) = match input.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (input, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| err("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|_| err("prefix length is not a number"))?,
            None => max,
        };
        if prefix > max {
            return Err(err("prefix length too long for the address family"));
        }
        Ok(IpNet { addr, prefix })
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net[..full] != ip[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (net[full] & mask) == (ip[full] & mask)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Loopback, link-local, private, shared, multicast, unspecified and documentation ranges: the addresses a
/// public uptime monitor has no business connecting to.
pub const NON_PUBLIC_NETWORKS: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// The address policy: a deny list with an allow list that wins over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    deny: Vec<IpNet>,
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// Every address may be probed (the default for the `check` CLI and embedded uses).
    pub fn allow_all() -> Self {
        AddressPolicy::default()
    }

    /// Refuse [`NON_PUBLIC_NETWORKS`] except the networks in `allow`.
    pub fn public_only(allow: Vec<IpNet>) -> Self {
        let deny = NON_PUBLIC_NETWORKS.iter().filter_map(|n| n.parse().ok()).collect();
        AddressPolicy { deny, allow }
    }

    /// Whether the engine may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.deny.is_empty() {
            return true;
        }
        self.allow.iter().any(|n| n.contains(ip)) || !self.deny.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_networks_all_parse() {
        for n in NON_PUBLIC_NETWORKS {
            assert!(n.parse::<IpNet>().is_ok(), "{n}");
        }
    }

    #[test]
    fn public_only_refuses_loopback_metadata_and_private() {
        let p = AddressPolicy::public_only(Vec::new());
        for denied in [
            "127.0.0.1",
            "169.254.169.254",
            "10.1.2.3",
            "192.168.0.1",
            "::1",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(!p.permits(ip(denied)), "{denied}");
        }
        assert!(!p.permits(ip("::ffff:127.0.0.1")), "v4-mapped loopback");
        for allowed in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(p.permits(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn allow_list_wins_over_deny_list() {
        let p = AddressPolicy::public_only(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(p.permits(ip("127.0.0.9")));
        assert!(!p.permits(ip("10.0.0.1")));
    }

    #[test]
    fn bad_networks_are_rejected_with_reason() {
        assert!("300.0.0.0/8".parse::<IpNet>().is_err());
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("10.0.0.0/x".parse::<IpNet>().is_err());
        let odd: IpNet = "10.128.0.0/9".parse().unwrap();
        assert!(odd.contains(ip("10.200.0.1")));
        assert!(!odd.contains(ip("10.1.0.1")));
    }
}
