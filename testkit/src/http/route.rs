//! Maps a request target to the scripted behaviour it asks for. Pure: no IO, unit-tested here.

use std::time::Duration;

/// Where `/relative-redirect` points. Per RFC 3986 §5.2 it resolves against
/// `/relative-redirect` to `/status/200` (the `..` above the root is dropped); a client that
/// pastes it onto the path instead asks for `/../status/200` and gets a 404.
pub const RELATIVE_REDIRECT_LOCATION: &str = "../status/200";

/// The unparsable `Location` sent by `/bad-location`.
pub const BAD_LOCATION: &str = "http://[::1";

/// The non-HTTP banner sent by `/garbage`.
pub const GARBAGE_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.0\r\n\r\n";

/// The truncated response `/reset-mid` sends before resetting the connection.
pub const RESET_MID_PREFIX: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Le";

/// Byte interval of `/trickle` when `ms` is not given.
pub const DEFAULT_TRICKLE_INTERVAL: Duration = Duration::from_millis(200);

/// Wait of `/delay` when `ms` is not given.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    Status(u16),
    /// `n` redirects left before a 200.
    Redirect(u32),
    RedirectTo {
        location: String,
        code: u16,
    },
    RelativeRedirect,
    Loop,
    NoLocation,
    BadLocation,
    Hang,
    Close,
    Reset,
    ResetMid,
    Garbage,
    HugeHeaders,
    EndlessHeaders,
    Trickle(Duration),
    Delay(Duration),
    EchoHead,
    NotFound,
    /// The path names a route but its parameters are malformed; the text says why.
    BadRequest(&'static str),
}

impl Route {
    pub(super) fn parse(target: &str) -> Route {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let millis = |default| match query_param(query, "ms") {
            None => Ok(default),
            Some(ms) => ms.parse().map(Duration::from_millis),
        };
        match path {
            "/relative-redirect" => Route::RelativeRedirect,
            "/loop" => Route::Loop,
            "/no-location" => Route::NoLocation,
            "/bad-location" => Route::BadLocation,
            "/hang" => Route::Hang,
            "/close" => Route::Close,
            "/reset" => Route::Reset,
            "/reset-mid" => Route::ResetMid,
            "/garbage" => Route::Garbage,
            "/huge-headers" => Route::HugeHeaders,
            "/endless-headers" => Route::EndlessHeaders,
            "/echo-head" => Route::EchoHead,
            "/trickle" => {
                millis(DEFAULT_TRICKLE_INTERVAL).map_or(Route::BadRequest("ms must be an integer"), Route::Trickle)
            }
            "/delay" => millis(DEFAULT_DELAY).map_or(Route::BadRequest("ms must be an integer"), Route::Delay),
            "/redirect-to" => redirect_to(query),
            _ => {
                if let Some(code) = path.strip_prefix("/status/") {
                    parse_status(code).map_or(Route::BadRequest("bad status code"), Route::Status)
                } else if let Some(n) = path.strip_prefix("/redirect/") {
                    n.parse()
                        .map_or(Route::BadRequest("bad redirect count"), Route::Redirect)
                } else {
                    Route::NotFound
                }
            }
        }
    }
}

fn redirect_to(query: &str) -> Route {
    let Some(location) = query_param(query, "url") else {
        return Route::BadRequest("url is required");
    };
    // A CR or LF would split the Location header into forged headers.
    if location.chars().any(char::is_control) {
        return Route::BadRequest("url must not contain control characters");
    }
    let code = match query_param(query, "code") {
        None => 302,
        Some(code) => match parse_status(&code) {
            Some(code) => code,
            None => return Route::BadRequest("bad status code"),
        },
    };
    Route::RedirectTo { location, code }
}

/// Three digits, as a status line requires; odd codes such as 999 are allowed on purpose
/// because real sites send them.
fn parse_status(text: &str) -> Option<u16> {
    let code: u16 = text.parse().ok()?;
    (100..=999).contains(&code).then_some(code)
}

/// The percent-decoded value of the first `name=value` pair in `query`.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

/// Form-style decoding: `%XX` escapes and `+` as space; malformed escapes stay literal.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match escaped {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_route_takes_three_digit_codes_only() {
        assert_eq!(Route::parse("/status/204"), Route::Status(204));
        assert_eq!(Route::parse("/status/999"), Route::Status(999));
        assert!(matches!(Route::parse("/status/42"), Route::BadRequest(_)));
        assert!(matches!(Route::parse("/status/x"), Route::BadRequest(_)));
    }

    #[test]
    fn redirect_to_decodes_url_and_defaults_to_302() {
        assert_eq!(
            Route::parse("/redirect-to?url=http%3A%2F%2Fa.example%2Fx%3Fy%3D1"),
            Route::RedirectTo {
                location: "http://a.example/x?y=1".into(),
                code: 302
            }
        );
        assert_eq!(
            Route::parse("/redirect-to?code=301&url=/status/200"),
            Route::RedirectTo {
                location: "/status/200".into(),
                code: 301
            }
        );
    }

    #[test]
    fn redirect_to_rejects_header_injection_and_missing_url() {
        assert!(matches!(
            Route::parse("/redirect-to?url=/a%0d%0aX-Evil:%201"),
            Route::BadRequest(_)
        ));
        assert!(matches!(Route::parse("/redirect-to?code=301"), Route::BadRequest(_)));
    }

    #[test]
    fn timed_routes_read_ms_or_use_defaults() {
        assert_eq!(Route::parse("/trickle?ms=5"), Route::Trickle(Duration::from_millis(5)));
        assert_eq!(Route::parse("/trickle"), Route::Trickle(DEFAULT_TRICKLE_INTERVAL));
        assert_eq!(Route::parse("/delay"), Route::Delay(DEFAULT_DELAY));
        assert!(matches!(Route::parse("/delay?ms=soon"), Route::BadRequest(_)));
    }

    #[test]
    fn percent_decode_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz+b"), "%zz b");
        assert_eq!(percent_decode("%41%42"), "AB");
    }

    #[test]
    fn unknown_and_dot_segment_paths_are_not_found() {
        assert_eq!(Route::parse("/nope"), Route::NotFound);
        assert_eq!(Route::parse("/../status/200"), Route::NotFound);
        assert_eq!(Route::parse("/redirect/3"), Route::Redirect(3));
    }
}
