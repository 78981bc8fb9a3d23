//! Reading a JSON config file, the one way both daemons do it: comment keys, key spellings, keys of the
//! original program that are ignored, `<PREFIX><KEY>` environment overrides, then typed values, relative
//! paths and a last check that the values can work. Every refusal names the key, the file and the
//! environment variable that supplied the value.
//!
//! A config type opts in by implementing [`ConfigFile`]; the known keys are exactly the fields it
//! serialises, so the list cannot drift from the struct.
//!
//! Values are typed one key at a time (each applied onto an otherwise valid configuration) rather than by
//! deserialising the whole object at once, because serde's error for a whole object does not say which key
//! was wrong, and the operator needs to know that first.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Keys starting with this are comments: JSON has none, and a sample file should explain itself.
const COMMENT_PREFIX: &str = "//";

/// A configuration struct read by [`load`]. Its fields, as serialised, are the canonical (lower-case) keys.
pub trait ConfigFile: Serialize + DeserializeOwned + Default {
    /// Prefix of the environment variables that override keys (`JETMON_`, `VERIFLIER_`).
    const ENV_PREFIX: &'static str;
    /// Whether a key may also be written in upper case in the file, as jetmon.js spelled its keys.
    const UPPER_CASE_KEYS: bool;

    /// Why `key`, a setting of the original program, is accepted but ignored; `None` for any other key.
    fn ignored_key_note(key: &str) -> Option<&'static str>;

    /// Resolves the relative file paths against `base_dir`, the config file's directory.
    fn resolve_paths(&mut self, base_dir: &Path);

    /// The first key whose value cannot work, with the reason.
    fn impossibility(&self) -> Option<(&'static str, String)>;
}

/// A loaded, validated configuration and what the operator should be told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<T> {
    /// The configuration to run with.
    pub config: T,
    /// Accepted-but-ignored keys and unmatched environment variables, to log at start.
    pub warnings: Vec<ConfigWarning>,
}

/// Where a config value was read: always the key and the file, plus the environment variable when one
/// overrode the file, so every message points the user at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLocation {
    /// The canonical (lower-case) key.
    pub key: String,
    /// The config file being loaded.
    pub path: PathBuf,
    /// The `<PREFIX><KEY>` variable that supplied the value, if any.
    pub variable: Option<String>,
}

impl KeyLocation {
    fn new(key: &str, path: &Path, variable: Option<&str>) -> KeyLocation {
        KeyLocation {
            key: key.to_owned(),
            path: path.to_owned(),
            variable: variable.map(str::to_owned),
        }
    }
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

/// A configuration that cannot be used. Every variant names the file, and the key where one is at fault.
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
    /// A key the daemon does not know (a typo, or a key of another program).
    #[error("unknown config key `{key}` in {}", path.display())]
    UnknownKey {
        /// The key as written in the file.
        key: String,
        /// The config file.
        path: PathBuf,
    },
    /// The same key written twice, in its lower-case and its upper-case spelling.
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
    /// A well-typed value that cannot work (an empty bucket range, zero interval, a required key left out...).
    #[error("{at}: {message}")]
    ImpossibleValue {
        /// Where the value came from (the file's default when the key was not given).
        at: KeyLocation,
        /// Why it cannot work.
        message: String,
    },
}

/// Something accepted but worth telling the operator, e.g. a jetmon.js key that no longer does anything.
/// Returned to the caller (not logged here) so it can go through the daemon's logger.
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

/// A value waiting to be applied, with where it came from.
struct Setting {
    value: Value,
    /// An environment override's raw text, tried as a string when its JSON reading does not fit.
    raw_text: Option<String>,
    at: KeyLocation,
}

/// Reads the config file at `path`, with overrides from `env` (name, value pairs; only those starting with
/// [`ConfigFile::ENV_PREFIX`] are looked at), and validates it.
pub fn load<T: ConfigFile>(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded<T>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let document: Value = serde_json::from_str(&text).map_err(|source| ConfigError::Syntax {
        path: path.to_owned(),
        source,
    })?;
    let Value::Object(entries) = document else {
        return Err(ConfigError::NotAnObject { path: path.to_owned() });
    };

    let known = known_keys::<T>();
    let mut warnings = Vec::new();
    // Sorted so that with several bad values the same one is reported every time.
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    let mut spellings: BTreeMap<String, String> = BTreeMap::new();

    for (spelling, value) in entries {
        if spelling.starts_with(COMMENT_PREFIX) {
            continue;
        }
        let Some(key) = canonical_key(&spelling, T::UPPER_CASE_KEYS) else {
            return Err(ConfigError::UnknownKey {
                key: spelling,
                path: path.to_owned(),
            });
        };
        if let Some(other_spelling) = spellings.insert(key.clone(), spelling.clone()) {
            return Err(ConfigError::DuplicateKey {
                key,
                other_spelling,
                path: path.to_owned(),
            });
        }
        let at = KeyLocation::new(&key, path, None);
        if let Some(note) = T::ignored_key_note(&key) {
            warnings.push(ConfigWarning {
                at,
                message: note.into(),
            });
        } else if known.contains(&key) {
            let setting = Setting {
                value,
                raw_text: None,
                at,
            };
            settings.insert(key, setting);
        } else {
            return Err(ConfigError::UnknownKey {
                key: spelling,
                path: path.to_owned(),
            });
        }
    }

    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(variable, _)| variable.starts_with(T::ENV_PREFIX))
        .collect();
    // The environment has no order; sorting keeps warnings and error choice reproducible.
    overrides.sort();
    for (variable, text) in overrides {
        let suffix = &variable[T::ENV_PREFIX.len()..];
        let key = suffix.to_ascii_lowercase();
        let at = KeyLocation::new(&key, path, Some(&variable));
        if let Some(note) = T::ignored_key_note(&key) {
            warnings.push(ConfigWarning {
                at,
                message: note.into(),
            });
        } else if suffix == suffix.to_ascii_uppercase() && known.contains(&key) {
            let value = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
            let setting = Setting {
                value,
                raw_text: Some(text),
                at,
            };
            settings.insert(key, setting);
        } else {
            warnings.push(ConfigWarning {
                at,
                message: "matches no config key and is ignored".into(),
            });
        }
    }

    let mut config = T::default();
    let mut locations: BTreeMap<String, KeyLocation> = BTreeMap::new();
    for (key, setting) in settings {
        config = apply(&config, &key, setting.value).or_else(|message| {
            // An override like JETMON_AUTH_TOKEN=1234 parses as a JSON number but means a string.
            match &setting.raw_text {
                Some(text) => apply(&config, &key, Value::String(text.clone())).map_err(|_| message),
                None => Err(message),
            }
            .map_err(|message| ConfigError::InvalidValue {
                at: setting.at.clone(),
                message,
            })
        })?;
        locations.insert(key, setting.at);
    }

    config.resolve_paths(&path.parent().map(Path::to_path_buf).unwrap_or_default());
    if let Some((key, message)) = config.impossibility() {
        let at = locations
            .remove(key)
            .unwrap_or_else(|| KeyLocation::new(key, path, None));
        return Err(ConfigError::ImpossibleValue { at, message });
    }
    Ok(Loaded { config, warnings })
}

/// The canonical keys: exactly the fields a `T` serialises, so the list cannot drift from the struct.
pub fn known_keys<T: ConfigFile>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        // Serialising a plain struct of plain fields cannot fail or give a non-object.
        _ => Vec::new(),
    }
}

/// `file` resolved against `base_dir` when it is relative.
pub fn resolve_path(base_dir: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_owned()
    } else {
        base_dir.join(file)
    }
}

/// The key a spelling stands for: itself, or, with `upper_case_keys`, its lower case when it is all upper
/// case (`NUM_OF_CHECKS` means `num_of_checks`). Mixed case means nothing.
fn canonical_key(spelling: &str, upper_case_keys: bool) -> Option<String> {
    if !upper_case_keys {
        return Some(spelling.to_owned());
    }
    let lower = spelling.to_ascii_lowercase();
    (spelling == lower || spelling == spelling.to_ascii_uppercase()).then_some(lower)
}

/// `config` with `key` set to `value`, or serde's complaint about the value.
fn apply<T: ConfigFile>(config: &T, key: &str, value: Value) -> Result<T, String> {
    let mut fields = match serde_json::to_value(config) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    fields.insert(key.to_owned(), value);
    serde_json::from_value(Value::Object(fields)).map_err(|error| error.to_string())
}
