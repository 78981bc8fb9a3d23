//! WPCOM's answer to a notification: `outbox::wpcom::judge`, the rule that decides delivered (dropped
//! from the outbox) or not (retried), from the status and the body.
//!
//! Input: byte 0 picks the mode (low bit: `original` or `post`), bytes 1-2 the status (big-endian, modulo
//! 600), the rest is the body (lossily UTF-8, as the client reads text). No panic, and the rule's shape
//! holds: only a 2xx can be accepted; a non-2xx is a status error, a 2xx never is; `original` accepts
//! only JSON; whatever `original` accepts `post` accepts too; errors quote a bounded part of the body.

#![no_main]

use jetmond::config::WpcomMode;
use jetmond::outbox::wpcom::{judge, DeliveryError};
use libfuzzer_sys::fuzz_target;

/// Longest error text accepted: the quoted body is cut to 200 characters, plus a short prefix.
const MAX_ERROR_CHARS: usize = 300;

fuzz_target!(|data: &[u8]| {
    let [mode, high, low, body @ ..] = data else {
        return;
    };
    let mode = if mode & 1 == 0 {
        WpcomMode::Original
    } else {
        WpcomMode::Post
    };
    let status = u16::from_be_bytes([*high, *low]) % 600;
    let body = String::from_utf8_lossy(body);
    let verdict = judge(mode, status, &body);
    let success = (200..300).contains(&status);

    match &verdict {
        Ok(()) => assert!(success, "HTTP {status} accepted"),
        Err(DeliveryError::Status { status: reported, .. }) => {
            assert!(!success, "HTTP {status} judged as a status error");
            assert_eq!(*reported, status);
        }
        Err(DeliveryError::Refused { status: reported, .. }) => {
            assert!(success, "HTTP {status} judged as a refusal");
            assert_eq!(*reported, status);
        }
        Err(other) => panic!("a response cannot be a transport error: {other}"),
    }
    if let Err(error) = &verdict {
        let text = error.to_string();
        assert!(
            text.chars().count() <= MAX_ERROR_CHARS,
            "error quotes too much: {} chars",
            text.chars().count()
        );
    }
    if mode == WpcomMode::Original && verdict.is_ok() {
        assert!(
            serde_json::from_str::<serde_json::Value>(&body).is_ok(),
            "original mode accepted a body that is not JSON"
        );
        assert_eq!(
            judge(WpcomMode::Post, status, &body),
            Ok(()),
            "post mode refused what original accepts"
        );
    }
});
