//! The hosts file (`/etc/hosts` format): fixed addresses consulted before DNS, so operators can pin a
//! site to an address the same way every other tool on the machine does.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Addrs;

/// Names to addresses, read once at start-up. Keys are lowercase without a trailing dot.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    by_name: HashMap<String, Addrs>,
}

impl Hosts {
    /// Parses hosts-file text: `addr name [aliases...]` per line, `#` starts a comment. Lines whose
    /// first field is not an IP address are skipped, as the C library does. Without `ipv6`, IPv6 entries
    /// are left out, so that a name with only those falls through to DNS like any other.
    pub(crate) fn parse(text: &str, ipv6: bool) -> Hosts {
        let mut collected: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let Some(addr) = fields.next() else { continue };
            // Zone ids (`fe80::1%eth0`) cannot be carried by `IpAddr`; such entries are useless for
            // probing public sites anyway.
            let Ok(addr) = addr.parse::<IpAddr>() else {
                tracing::debug!(line, "hosts: skipping line without a valid address");
                continue;
            };
            if addr.is_ipv6() && !ipv6 {
                continue;
            }
            for name in fields {
                let addrs = collected.entry(super::normalize_name(name).into_owned()).or_default();
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        let by_name = collected
            .into_iter()
            .map(|(name, addrs)| (name, super::ipv4_first(addrs)))
            .collect();
        Hosts { by_name }
    }

    /// Addresses for `name` (already normalized), IPv4 first.
    pub(crate) fn get(&self, name: &str) -> Option<&Addrs> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment line
127.0.0.1\tlocalhost localhost.localdomain
::1         localhost ip6-localhost   # trailing comment
192.0.2.10  Pinned.Example.  alias.example
not-an-ip   broken.example
2001:db8::10 pinned.example
192.0.2.10  pinned.example
";

    fn addrs(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn names_and_aliases_map_to_their_address() {
        let hosts = Hosts::parse(SAMPLE, true);
        assert_eq!(&**hosts.get("alias.example").unwrap(), addrs(&["192.0.2.10"]));
        assert_eq!(&**hosts.get("localhost.localdomain").unwrap(), addrs(&["127.0.0.1"]));
    }

    #[test]
    fn lookups_are_case_insensitive_and_ignore_the_trailing_dot() {
        let hosts = Hosts::parse(SAMPLE, true);
        assert!(hosts.get("pinned.example").is_some());
        assert!(hosts.get("Pinned.Example").is_none(), "callers normalize before asking");
    }

    #[test]
    fn ipv4_and_ipv6_entries_merge_ipv4_first_without_duplicates() {
        let hosts = Hosts::parse(SAMPLE, true);
        assert_eq!(&**hosts.get("localhost").unwrap(), addrs(&["127.0.0.1", "::1"]));
        assert_eq!(
            &**hosts.get("pinned.example").unwrap(),
            addrs(&["192.0.2.10", "2001:db8::10"])
        );
    }

    #[test]
    fn ipv6_entries_are_dropped_when_ipv6_is_off() {
        let hosts = Hosts::parse(SAMPLE, false);
        assert_eq!(&**hosts.get("localhost").unwrap(), addrs(&["127.0.0.1"]));
        assert!(hosts.get("ip6-localhost").is_none());
    }

    #[test]
    fn comments_and_invalid_lines_are_skipped() {
        let hosts = Hosts::parse(SAMPLE, true);
        assert!(hosts.get("broken.example").is_none());
        assert!(hosts.get("comment").is_none());
        assert!(hosts.get("trailing").is_none());
    }
}
