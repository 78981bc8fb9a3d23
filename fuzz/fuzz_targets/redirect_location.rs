//! Resolving a redirect's `Location` against the URL that answered it.
//!
//! Input: one byte choosing the base URL from a fixed set, then the raw header value. A resolved target is
//! a URL the engine will connect to next, so it must be checkable and frame a clean request.

#![no_main]

use jetmon_engine::http::resolve_location;
use jetmon_fuzz::{assert_checkable, assert_well_framed_request};
use libfuzzer_sys::fuzz_target;
use url::Url;

/// Bases covering what the engine follows redirects from: paths with and without a trailing slash, a
/// query, explicit ports, IPv4 and IPv6 literals, an IDNA host.
const BASES: [&str; 8] = [
    "https://example.com/blog/post?x=1",
    "http://example.com",
    "http://127.0.0.1:8099/moved",
    "https://[::1]:8443/a/b/",
    "https://xn--bcher-kva.example/dir/file.html#top",
    "http://user:pass@example.org:80/",
    "https://example.com/a/b/c/d/e/f/../g?q=%20#f",
    "http://10.0.0.1/",
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, location)) = data.split_first() else {
        return;
    };
    let Ok(base) = Url::parse(BASES[usize::from(choice) % BASES.len()]) else {
        return;
    };
    if let Ok(target) = resolve_location(&base, location) {
        assert_checkable(&target);
        assert_well_framed_request(&target);
    }
});
