//! Parsing a URL to check, as submitted from a site list, the database or the CLI.

#![no_main]

use jetmon_fuzz::assert_checkable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = jetmon_engine::parse_check_url(text) {
        assert_checkable(&url);
    }
});
