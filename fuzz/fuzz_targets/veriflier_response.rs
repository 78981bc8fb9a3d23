//! The monitor's side of the veriflier RPC: the body of a `200` answer to `POST /v1/check`, as
//! `VeriflierClient::check` decodes it, and the legacy mode's acknowledgement and `/put/host-status`
//! callback body (which jetmond's callback server parses). A veriflier (or whatever answers on its address) is not trusted
//! to send well-formed results.
//!
//! Input: one body. No panic; every refusal prints; an accepted response, written out again, parses to
//! the same value, and every result's status is one the protocol defines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veriflierd::protocol::{parse_check_response, parse_legacy_ack, parse_legacy_callback, RemoteStatus};

fuzz_target!(|data: &[u8]| {
    // Legacy bodies: no panic, refusals print, accepted callbacks only carry defined statuses.
    if let Err(e) = parse_legacy_ack(data) {
        let _ = e.to_string();
    }
    match parse_legacy_callback(data) {
        Ok(callback) => {
            for item in &callback.checks {
                assert_eq!(RemoteStatus::from_u8(item.status.as_u8()), Some(item.status));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let response = match parse_check_response(data) {
        Ok(response) => response,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for result in &response.results {
        assert_eq!(
            RemoteStatus::from_u8(result.status.as_u8()),
            Some(result.status),
            "status does not read back from its wire number"
        );
    }
    let written = match serde_json::to_vec(&response) {
        Ok(written) => written,
        Err(e) => panic!("accepted response does not serialise: {e}"),
    };
    match parse_check_response(&written) {
        Ok(again) => assert_eq!(again, response, "response changes when written out and parsed again"),
        Err(e) => panic!("accepted response, written out, is refused: {e}"),
    }
});
