//! Framing of the HEAD request.

use std::io::Write;

use url::Url;

/// Appends `HEAD <path> HTTP/1.1` with `Host`, `User-Agent` and `Connection: close` for `url` to `out`.
///
/// `Connection: close` because a check never reuses its connection and a server that knows it closes first,
/// which leaves the TIME_WAIT state on its side rather than on the monitor's.
pub fn write_head_request(url: &Url, user_agent: &str, out: &mut Vec<u8>) {
    let path = url.path();
    let path = if path.is_empty() { "/" } else { path };
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HEAD {path}");
    if let Some(query) = url.query() {
        let _ = write!(out, "?{query}");
    }
    let host = url.host_str().unwrap_or_default();
    let _ = write!(out, " HTTP/1.1\r\nHost: {host}");
    // `Url::port` is None for the scheme's default port, exactly when Host must omit it.
    if let Some(port) = url.port() {
        let _ = write!(out, ":{port}");
    }
    let _ = write!(
        out,
        "\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(url: &str) -> String {
        let mut out = Vec::new();
        write_head_request(&Url::parse(url).unwrap(), "ua/1", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_port_is_left_out_of_host() {
        assert_eq!(
            framed("https://example.com/a?b=c#frag"),
            "HEAD /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ua/1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn explicit_port_and_ipv6_host_are_framed() {
        assert!(framed("http://[::1]:8080").starts_with("HEAD / HTTP/1.1\r\nHost: [::1]:8080\r\n"));
        assert!(framed("http://example.com:80/x").contains("Host: example.com\r\n"));
    }
}
