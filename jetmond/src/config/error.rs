//! Why a configuration was refused, and where the offending value came from.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a config value was read: always the key and the file, plus the environment variable when one
/// overrode the file, so every message points the user at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLocation {
    /// The canonical (lower-case) key.
    pub key: String,
    /// The config file being loaded.
    pub path: PathBuf,
    /// The `JETMON_<KEY>` variable that supplied the value, if any.
    pub variable: Option<String>,
}

impl fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variable {
            Some(variable) => write!(
                f,
                "environment variable {variable} (overriding config key `{}` of {})",
                self.key,
                self.path.display()
            ),
            None => write!(f, "config key `{}` in {}", self.key, self.path.display()),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not JSON.
    #[error("config file {} is not valid JSON: {source}", path.display())]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The file is JSON but not an object of keys.
    #[error("config file {} must hold a JSON object of keys at the top level", path.display())]
    NotAnObject {
        /// The config file.
        path: PathBuf,
    },
    /// A key that jetmond does not know (a typo, or a key of another program).
    #[error("unknown config key `{key}` in {}", path.display())]
    UnknownKey {
        /// The key as written in the file.
        key: String,
        /// The config file.
        path: PathBuf,
    },
    /// The same key written twice, in its lower-case and its original upper-case spelling.
    #[error("config key `{key}` is given twice in {} (as `{key}` and `{other_spelling}`)", path.display())]
    DuplicateKey {
        /// The canonical key.
        key: String,
        /// The other spelling found.
        other_spelling: String,
        /// The config file.
        path: PathBuf,
    },
    /// A value of the wrong type or shape.
    #[error("{at}: {message}")]
    InvalidValue {
        /// Where the value came from.
        at: KeyLocation,
        /// What is wrong with it.
        message: String,
    },
    /// A well-typed value that cannot work (an empty bucket range, zero interval, ...).
    #[error("{at}: {message}")]
    ImpossibleValue {
        /// Where the value came from (the file's default when the key was not given).
        at: KeyLocation,
        /// Why it cannot work.
        message: String,
    },
}

/// Something accepted but worth telling the operator, e.g. a jetmon.js key that no longer does
/// anything. Returned to the caller (not logged here) so it can go through the daemon's logger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The key or variable concerned.
    pub at: KeyLocation,
    /// What the operator should know.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}
