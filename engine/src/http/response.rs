//! Parsing of the response head. A check only needs the status code and, for redirects, `Location`; the
//! rest of the head is skipped without copying.

use std::ops::Range;

/// Headers we make room for. Real sites rarely send more than 40; a head with more is still judged by its
/// status line (see [`HeadError::TooLarge`]).
const MAX_HEADERS: usize = 128;

/// The parts of a complete response head that a check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code of the final (non-1xx) response.
    pub code: u16,
    /// Byte range of the `Location` header value in the parsed buffer, if present.
    pub location: Option<Range<usize>>,
}

/// Why a buffer is not (yet) a usable response head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// More bytes are needed.
    #[error("incomplete response head")]
    Partial,
    /// The bytes are not an HTTP/1.x response head.
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
    /// The head has more headers than the parser makes room for; `code` is the status line's code.
    #[error("response head has more than {MAX_HEADERS} headers")]
    TooLarge {
        /// Status code from the status line.
        code: u16,
    },
}

/// Parses the response head at the start of `buf`.
///
/// Interim 1xx responses (100 Continue, 103 Early Hints) are skipped: the verdict belongs to the final
/// response. `101 Switching Protocols` is final (a server that upgrades a HEAD is answering).
pub fn parse_response_head(buf: &[u8]) -> Result<ResponseHead, HeadError> {
    let mut offset = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let rest = &buf[offset..];
        match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => {
                let code = response.code.unwrap_or(0);
                // httparse takes any three digits; HTTP status codes start at 100, and "099" must not pass as
                // a code below 400 (up).
                if code < 100 {
                    return Err(HeadError::Malformed("status code below 100"));
                }
                if is_interim(code) {
                    offset += len;
                    continue;
                }
                let location = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("location"))
                    .map(|h| {
                        let start = h.value.as_ptr() as usize - buf.as_ptr() as usize;
                        start..start + h.value.len()
                    });
                return Ok(ResponseHead { code, location });
            }
            Ok(httparse::Status::Partial) => return Err(HeadError::Partial),
            Err(httparse::Error::TooManyHeaders) => {
                return match response.code {
                    // An interim response says nothing about the final one.
                    Some(code) if code >= 100 && !is_interim(code) => Err(HeadError::TooLarge { code }),
                    _ => Err(HeadError::Malformed("too many headers")),
                };
            }
            Err(e) => return Err(HeadError::Malformed(describe(e))),
        }
    }
}

/// The status code of a head that is not complete yet, once its status line is: used when a server sends
/// more head than the engine accepts, so a site with a huge cookie jar is still judged by its status.
/// Complete interim (1xx) heads in front are skipped; an incomplete one gives `None`.
pub fn partial_status_code(buf: &[u8]) -> Option<u16> {
    let mut rest = buf;
    loop {
        let code = status_line_code(rest)?;
        if !is_interim(code) {
            return Some(code);
        }
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        rest = &rest[end + 4..];
    }
}

/// The code of the status line at the start of `buf`, if that line is complete and valid.
fn status_line_code(buf: &[u8]) -> Option<u16> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    // Parsing only the status line followed by an empty line reuses httparse's strict rules.
    let mut line = [0u8; 128];
    let len = line_end.min(line.len() - 4);
    line[..len].copy_from_slice(&buf[..len]);
    line[len..len + 4].copy_from_slice(b"\r\n\r\n");
    let mut headers = [httparse::EMPTY_HEADER; 0];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&line[..len + 4]) {
        Ok(httparse::Status::Complete(_)) => response.code.filter(|code| *code >= 100),
        _ => None,
    }
}

/// 1xx responses other than 101 are interim: the final response follows on the same connection.
fn is_interim(code: u16) -> bool {
    (100..200).contains(&code) && code != 101
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::Status => "invalid status line",
        httparse::Error::Version => "not an HTTP/1.x response",
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_head_gives_code_and_location() {
        let buf = b"HTTP/1.1 301 Moved\r\nServer: x\r\nlocation: /next\r\n\r\n";
        let head = parse_response_head(buf).unwrap();
        assert_eq!(head.code, 301);
        assert_eq!(&buf[head.location.unwrap()], b"/next");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert_eq!(parse_response_head(b"HTTP/1.1 200 OK\r\nServ"), Err(HeadError::Partial));
        assert_eq!(parse_response_head(b""), Err(HeadError::Partial));
    }

    #[test]
    fn garbage_status_line_is_malformed() {
        assert!(matches!(
            parse_response_head(b"SSH-2.0-OpenSSH_9.0\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn interim_responses_are_skipped() {
        let buf = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_response_head(buf).unwrap().code, 204);
        assert_eq!(
            parse_response_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"),
            Err(HeadError::Partial)
        );
    }

    #[test]
    fn too_many_headers_keeps_status_code() {
        let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            buf.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(parse_response_head(&buf), Err(HeadError::TooLarge { code: 200 }));
    }

    #[test]
    fn status_codes_below_100_are_malformed() {
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 099 X\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert_eq!(partial_status_code(b"HTTP/1.1 000 X\r\nX: y"), None);
    }

    #[test]
    fn interim_heads_never_give_the_verdict() {
        let mut many = b"HTTP/1.1 103 Early Hints\r\n".to_vec();
        for i in 0..200 {
            many.extend_from_slice(format!("Link: </{i}.css>\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse_response_head(&many), Err(HeadError::Malformed(_))));
        assert_eq!(
            partial_status_code(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nX: y"),
            Some(500)
        );
        assert_eq!(partial_status_code(b"HTTP/1.1 100 Continue\r\nX: y"), None);
    }

    #[test]
    fn partial_status_code_reads_the_status_line_only() {
        assert_eq!(partial_status_code(b"HTTP/1.1 200 OK\r\nX-Pad: aaaa"), Some(200));
        assert_eq!(partial_status_code(b"HTTP/1.1 200 OK"), None);
        assert_eq!(partial_status_code(b"garbage\r\n"), None);
    }
}
