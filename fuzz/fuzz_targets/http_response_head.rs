//! Response-head parsing on arbitrary bytes, and its framing across buffer boundaries.
//!
//! Input: one byte choosing where to split, then the bytes a server sent. The engine parses the first read
//! in place and later reads from a growing buffer, so the same head must give the same verdict however it
//! is cut: a prefix is either still incomplete or already gives the whole's answer.

#![no_main]

use jetmon_engine::http::{parse_response_head, partial_status_code, HeadError, ResponseHead};
use libfuzzer_sys::fuzz_target;

fn assert_location_in_bounds(head: &Result<ResponseHead, HeadError>, buf: &[u8]) {
    if let Ok(ResponseHead {
        location: Some(range), ..
    }) = head
    {
        assert!(
            range.start <= range.end && range.end <= buf.len(),
            "Location {range:?} outside a buffer of {} bytes",
            buf.len()
        );
        let value = &buf[range.clone()];
        assert!(
            !value.contains(&b'\r') && !value.contains(&b'\n'),
            "Location value spans lines: {value:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let whole = parse_response_head(bytes);
    assert_location_in_bounds(&whole, bytes);
    let whole_partial_code = partial_status_code(bytes);
    // A verdict is only ever taken from a real, final status code.
    if let Ok(head) = &whole {
        assert!(head.code >= 200 || head.code == 101, "verdict from code {}", head.code);
        if let Some(code) = whole_partial_code {
            assert_eq!(code, head.code, "oversize fallback would judge by another status line");
        }
    }
    if let Err(HeadError::TooLarge { code }) = whole {
        assert!(code >= 200 || code == 101, "too-large head judged by code {code}");
    }
    if let Some(code) = whole_partial_code {
        assert!(code >= 200 || code == 101, "partial status code {code}");
    }

    // The split point scales over the input so short and long inputs both get cut anywhere.
    let at = bytes.len() * usize::from(split) / usize::from(u8::MAX);
    let prefix = &bytes[..at];
    let first = parse_response_head(prefix);
    assert_location_in_bounds(&first, prefix);
    assert!(
        first == Err(HeadError::Partial) || first == whole,
        "prefix of {at} bytes gives {first:?}, the whole {} bytes give {whole:?}",
        bytes.len()
    );
    if let Some(code) = partial_status_code(prefix) {
        assert_eq!(
            Some(code),
            whole_partial_code,
            "status line read from a prefix of {at} bytes differs from the whole's"
        );
    }
});
