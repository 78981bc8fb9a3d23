//! The site-list format shared by `jetmond check` and the embedded (no-MySQL) mode: one site per line,
//! either `URL` or `BLOG_ID URL`; blank lines and lines starting with `#` are ignored, as are trailing
//! `# comments` after white space.

use std::io::BufRead;

/// One site from a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteEntry {
    /// The 1-based line number the entry came from.
    pub line: usize,
    /// The WPCOM blog id, when the line gives one.
    pub blog_id: Option<u64>,
    /// The URL text as written (validated later by the engine, so a bad URL still yields a result).
    pub url: String,
}

/// A line that is neither blank, a comment, `URL` nor `BLOG_ID URL`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct SiteLineError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses one line. `None` for blank and comment lines.
pub fn parse_site_line(line_no: usize, text: &str) -> Option<Result<SiteEntry, SiteLineError>> {
    let text = match text.find(" #").or_else(|| text.find("\t#")) {
        Some(at) => &text[..at],
        None => text,
    };
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let mut fields = text.split_whitespace();
    let first = fields.next()?;
    let entry = match (fields.next(), fields.next()) {
        (None, _) => Ok(SiteEntry {
            line: line_no,
            blog_id: None,
            url: first.to_string(),
        }),
        (Some(url), None) => match first.parse::<u64>() {
            Ok(blog_id) => Ok(SiteEntry {
                line: line_no,
                blog_id: Some(blog_id),
                url: url.to_string(),
            }),
            Err(_) => Err(SiteLineError {
                line: line_no,
                reason: format!("expected `URL` or `BLOG_ID URL`, and {first:?} is not a blog id"),
            }),
        },
        (Some(_), Some(_)) => Err(SiteLineError {
            line: line_no,
            reason: "too many fields: expected `URL` or `BLOG_ID URL`".to_string(),
        }),
    };
    Some(entry)
}

/// Iterates over the entries of a reader, line by line, without holding the whole list in memory.
pub fn read_sites<R: BufRead>(reader: R) -> impl Iterator<Item = Result<SiteEntry, SiteListError>> {
    reader.lines().enumerate().filter_map(|(i, line)| match line {
        Ok(text) => parse_site_line(i + 1, &text).map(|r| r.map_err(SiteListError::Line)),
        Err(e) => Some(Err(SiteListError::Read { line: i + 1, source: e })),
    })
}

/// A site list that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SiteListError {
    /// A malformed line.
    #[error(transparent)]
    Line(#[from] SiteLineError),
    /// The reader failed (not UTF-8, IO error).
    #[error("line {line}: cannot read: {source}")]
    Read {
        /// The 1-based line number.
        line: usize,
        /// The IO error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_comment_lines_are_skipped() {
        assert_eq!(parse_site_line(1, ""), None);
        assert_eq!(parse_site_line(1, "   \t"), None);
        assert_eq!(parse_site_line(1, "# a comment"), None);
        assert_eq!(parse_site_line(1, "  # indented comment"), None);
    }

    #[test]
    fn url_alone_and_with_blog_id() {
        let e = parse_site_line(3, " https://a.example/  # trailing").unwrap().unwrap();
        assert_eq!((e.line, e.blog_id, e.url.as_str()), (3, None, "https://a.example/"));
        let e = parse_site_line(4, "42\thttp://b.example").unwrap().unwrap();
        assert_eq!((e.blog_id, e.url.as_str()), (Some(42), "http://b.example"));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let err = parse_site_line(9, "x http://a").unwrap().unwrap_err();
        assert_eq!(err.line, 9);
        assert!(err.to_string().contains("not a blog id"), "{err}");
        assert!(parse_site_line(9, "1 http://a extra").unwrap().is_err());
    }

    #[test]
    fn reader_streams_entries_with_line_numbers() {
        let input = "# list\nhttp://a\n\n7 http://b\nbad line here\n";
        let got: Vec<_> = read_sites(input.as_bytes()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].as_ref().unwrap().line, 4);
        assert!(got[2].is_err());
    }
}
