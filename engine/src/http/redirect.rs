//! Resolving a redirect's `Location` against the URL that answered it.

use url::Url;

/// A `Location` that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// The header value is not valid text.
    #[error("Location header is not valid UTF-8")]
    NotText,
    /// The value does not resolve to a URL.
    #[error("Location {location:?} does not resolve to a URL: {reason}")]
    Unparsable {
        /// The header value (truncated for logs).
        location: String,
        /// What the URL parser said.
        reason: String,
    },
    /// The target is not http or https.
    #[error("Location {location:?} has unsupported scheme {scheme:?}")]
    UnsupportedScheme {
        /// The header value.
        location: String,
        /// Its scheme.
        scheme: String,
    },
}

/// Longest `Location` echoed back in errors; the rest is cut so a hostile server cannot bloat logs.
const MAX_ECHOED_LOCATION_CHARS: usize = 200;

/// Resolves `location` (absolute, scheme-relative, or relative) against `base`, as browsers do.
pub fn resolve_location(base: &Url, location: &[u8]) -> Result<Url, RedirectError> {
    let text = std::str::from_utf8(location).map_err(|_| RedirectError::NotText)?;
    let text = text.trim();
    let echoed = || text.chars().take(MAX_ECHOED_LOCATION_CHARS).collect::<String>();
    let target = base.join(text).map_err(|e| RedirectError::Unparsable {
        location: echoed(),
        reason: e.to_string(),
    })?;
    match target.scheme() {
        "http" | "https" if target.host().is_some() => Ok(target),
        "http" | "https" => Err(RedirectError::Unparsable {
            location: echoed(),
            reason: "no host".to_string(),
        }),
        other => Err(RedirectError::UnsupportedScheme {
            location: echoed(),
            scheme: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://example.com/blog/post?x=1").unwrap()
    }

    #[test]
    fn relative_locations_resolve_against_current_url() {
        assert_eq!(
            resolve_location(&base(), b"../status/200").unwrap().as_str(),
            "https://example.com/status/200"
        );
        assert_eq!(
            resolve_location(&base(), b"/a").unwrap().as_str(),
            "https://example.com/a"
        );
        assert_eq!(
            resolve_location(&base(), b"next").unwrap().as_str(),
            "https://example.com/blog/next"
        );
        assert_eq!(
            resolve_location(&base(), b"//other.org/").unwrap().as_str(),
            "https://other.org/"
        );
    }

    #[test]
    fn absolute_location_replaces_the_url() {
        assert_eq!(
            resolve_location(&base(), b"http://a.b:81/").unwrap().as_str(),
            "http://a.b:81/"
        );
    }

    #[test]
    fn broken_locations_are_errors() {
        assert!(matches!(
            resolve_location(&base(), b"http://[::1"),
            Err(RedirectError::Unparsable { .. })
        ));
        assert!(matches!(
            resolve_location(&base(), b"ftp://x/"),
            Err(RedirectError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            resolve_location(&base(), &[0xff, 0xfe]),
            Err(RedirectError::NotText)
        ));
    }
}
