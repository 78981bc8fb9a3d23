//! Framing the HEAD request for any URL the engine accepts: one head, no header injection.

#![no_main]

use jetmon_fuzz::assert_well_framed_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = jetmon_engine::parse_check_url(text) {
        assert_well_framed_request(&url);
    }
});
