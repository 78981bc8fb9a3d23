//! Checks shared by several fuzz targets: a property stated once, asserted wherever it must hold.

use url::Url;

/// The user agent the engine sends by default; the targets frame requests with it.
pub use jetmon_engine::DEFAULT_USER_AGENT;

/// Frames the HEAD request for `url` and asserts it is one well-formed HTTP/1.1 head: exactly one
/// `\r\n\r\n`, at its end; no bare `\r` or `\n` (so nothing in the URL can inject a header line); and
/// httparse reads it back as `HEAD` with the request target and `Host` that the URL gives.
pub fn assert_well_framed_request(url: &Url) {
    let mut out = Vec::new();
    jetmon_engine::http::write_head_request(url, DEFAULT_USER_AGENT, &mut out);

    assert!(out.ends_with(b"\r\n\r\n"), "request does not end its head: {out:?}");
    let head_ends = out.windows(4).filter(|w| w == b"\r\n\r\n").count();
    assert_eq!(head_ends, 1, "request has {head_ends} head ends: {out:?}");
    for (i, &byte) in out.iter().enumerate() {
        match byte {
            b'\r' => assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR at {i}: {out:?}"),
            b'\n' => assert!(i > 0 && out[i - 1] == b'\r', "bare LF at {i}: {out:?}"),
            _ => {}
        }
    }

    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(&out);
    assert!(
        matches!(parsed, Ok(httparse::Status::Complete(len)) if len == out.len()),
        "request is not one complete head ({parsed:?}): {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(request.method, Some("HEAD"));
    let path = request.path.unwrap_or_default();
    assert!(path.starts_with('/'), "request target {path:?} is not origin-form");
    let host = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value);
    let expected_host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    assert_eq!(host, Some(expected_host.as_bytes()), "Host header does not name {url}");
}

/// Asserts what every URL the engine will check must satisfy: http or https, with a non-empty host, and
/// stable when written out and read again (the engine stores and logs URLs as text).
pub fn assert_checkable(url: &Url) {
    assert!(matches!(url.scheme(), "http" | "https"), "scheme of {url}");
    assert!(url.host_str().is_some_and(|host| !host.is_empty()), "{url} has no host");
    match jetmon_engine::parse_check_url(url.as_str()) {
        Ok(again) => assert_eq!(&again, url, "{url} reads back differently"),
        Err(e) => panic!("{url} does not read back: {e}"),
    }
}
