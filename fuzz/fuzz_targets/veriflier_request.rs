//! The veriflier's request bodies: `POST /v1/check` and jetmon.js's `POST /get/host-status`, which arrive
//! from the network before any token is checked (the token of the legacy mode is inside the body).
//!
//! Input: one body, given to both parsers. Neither may panic; every refusal prints; an accepted body,
//! written out again, parses to the same value (what the client sends is what the server reads).

#![no_main]

use libfuzzer_sys::fuzz_target;
use veriflierd::protocol::{parse_check_request, parse_legacy_request};

fuzz_target!(|data: &[u8]| {
    match parse_check_request(data) {
        Ok(batch) => {
            assert!(!batch.checks.is_empty(), "accepted an empty batch");
            let written = match serde_json::to_vec(&batch) {
                Ok(written) => written,
                Err(e) => panic!("accepted batch does not serialise: {e}"),
            };
            match parse_check_request(&written) {
                Ok(again) => assert_eq!(again, batch, "batch changes when written out and parsed again"),
                Err(e) => panic!("accepted batch, written out, is refused: {e}"),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match parse_legacy_request(data) {
        Ok(request) => {
            assert!(!request.checks.is_empty(), "accepted an empty legacy batch");
            let written = match serde_json::to_vec(&request) {
                Ok(written) => written,
                Err(e) => panic!("accepted legacy request does not serialise: {e}"),
            };
            match parse_legacy_request(&written) {
                Ok(again) => assert_eq!(
                    again, request,
                    "legacy request changes when written out and parsed again"
                ),
                Err(e) => panic!("accepted legacy request, written out, is refused: {e}"),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
