//! Upstream nameservers from `resolv.conf`, used when the configuration names none. Only the
//! `nameserver` lines matter: the engine resolves fully qualified site names, so `search`, `domain` and
//! `ndots` would only produce surprising answers, and timeouts come from [`crate::config::DnsConfig`].

use std::ffi::CString;
use std::net::{SocketAddr, SocketAddrV6};
use std::path::Path;

use resolv_conf::ScopedIp;

use super::DnsError;

/// Nameservers listen on the standard DNS port; resolv.conf cannot say otherwise.
pub(crate) const DNS_PORT: u16 = 53;

/// Reads and parses the nameservers of the resolv.conf file at `path`.
pub(crate) fn nameservers_from_file(path: &Path) -> Result<Vec<SocketAddr>, DnsError> {
    let text = std::fs::read(path).map_err(|e| DnsError::Config {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    parse_nameservers(&text, path)
}

/// Nameservers of resolv.conf text, port 53. Lines the parser does not understand are logged and
/// skipped (glibc ignores them too); no usable nameserver at all is an error, because the C library's
/// fallback to 127.0.0.1 would silently resolve nothing on most probe hosts.
pub(crate) fn parse_nameservers(text: &[u8], path: &Path) -> Result<Vec<SocketAddr>, DnsError> {
    let (parsed, errors) = resolv_conf::Config::parse_with_errors(text);
    for error in errors {
        tracing::debug!(path = %path.display(), %error, "resolv.conf: skipping line");
    }
    let servers: Vec<SocketAddr> = parsed.nameservers.iter().filter_map(socket_addr).collect();
    if servers.is_empty() {
        return Err(DnsError::Config {
            path: path.display().to_string(),
            detail: "no usable nameserver line".to_string(),
        });
    }
    Ok(servers)
}

/// The socket address of one nameserver. Link-local IPv6 servers need their zone (`%eth0` or `%2`) to be
/// reachable; one whose interface does not exist is skipped.
fn socket_addr(ip: &ScopedIp) -> Option<SocketAddr> {
    match ip {
        ScopedIp::V4(v4) => Some(SocketAddr::from((*v4, DNS_PORT))),
        ScopedIp::V6(v6, None) => Some(SocketAddr::from((*v6, DNS_PORT))),
        ScopedIp::V6(v6, Some(zone)) => match interface_index(zone) {
            Some(scope) => Some(SocketAddr::V6(SocketAddrV6::new(*v6, DNS_PORT, 0, scope))),
            None => {
                tracing::warn!(%v6, zone, "resolv.conf: unknown interface for nameserver, skipping it");
                None
            }
        },
    }
}

/// A zone id as written after `%`: a number, or an interface name.
fn interface_index(zone: &str) -> Option<u32> {
    if let Ok(index) = zone.parse::<u32>() {
        return Some(index);
    }
    let name = CString::new(zone).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call; the function only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_get_port_53_in_file_order() {
        let dir = std::env::temp_dir().join(format!("jetmon-dns-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("resolv.conf");
        std::fs::write(
            &path,
            "# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2 timeout:1\n",
        )
        .unwrap();
        let servers = nameservers_from_file(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            servers,
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::53]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn unknown_lines_are_skipped() {
        let servers = parse_nameservers(b"frobnicate yes\nnameserver 192.0.2.1\n", Path::new("x")).unwrap();
        assert_eq!(servers, vec!["192.0.2.1:53".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn numeric_zone_id_becomes_the_scope() {
        let servers = parse_nameservers(b"nameserver fe80::1%3\n", Path::new("x")).unwrap();
        assert_eq!(
            servers,
            vec![SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 3))]
        );
    }

    #[test]
    fn no_nameserver_is_a_config_error() {
        let err = parse_nameservers(b"search example.com\n", Path::new("/etc/resolv.conf")).unwrap_err();
        assert!(
            matches!(err, DnsError::Config { ref path, .. } if path == "/etc/resolv.conf"),
            "{err:?}"
        );
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let err = nameservers_from_file(Path::new("/nonexistent/jetmon/resolv.conf")).unwrap_err();
        assert!(matches!(err, DnsError::Config { .. }), "{err:?}");
    }
}
