//! The site-list format: each line alone, and the whole list through the reader.
//!
//! Input: a site list. Every line is parsed with `parse_site_line`, and the reader must give the same
//! entries in the same order.

#![no_main]

use std::io::Cursor;

use jetmond::sites::{parse_site_line, read_sites, SiteEntry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader must cope with anything, including bytes that are not UTF-8.
    let from_reader: Vec<Option<SiteEntry>> = read_sites(Cursor::new(data)).map(Result::ok).collect();

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut from_lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some(parsed) = parse_site_line(line_no, line) else {
            continue;
        };
        match &parsed {
            Ok(entry) => {
                assert_eq!(entry.line, line_no);
                assert!(!entry.url.is_empty(), "empty URL from line {line:?}");
                assert!(
                    !entry.url.contains(char::is_whitespace),
                    "URL {:?} from line {line:?} holds white space",
                    entry.url
                );
                assert!(
                    line.contains(entry.url.as_str()),
                    "URL {:?} is not from line {line:?}",
                    entry.url
                );
            }
            Err(e) => assert_eq!(e.line, line_no),
        }
        from_lines.push(parsed.ok());
    }
    assert_eq!(from_reader, from_lines, "the reader and the line parser disagree");
});
