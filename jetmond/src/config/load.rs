//! Reading a config file: key spellings, legacy keys, environment overrides, then typed values.
//!
//! Values are typed one key at a time (each applied onto an otherwise valid configuration) rather than
//! by deserialising the whole object at once, because serde's error for a whole object does not say
//! which key was wrong, and the operator needs to know that first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Config, ConfigError, ConfigWarning, KeyLocation, LoadedConfig, ENV_PREFIX};

/// jetmon.js keys that configured its Node worker processes; one event loop per core replaces them.
const WORKER_KEYS: [&str; 5] = [
    "num_workers",
    "num_to_process",
    "dataset_size",
    "worker_max_checks",
    "worker_max_mem_mb",
];
const WORKER_KEY_NOTE: &str =
    "is a jetmon.js worker-process setting and is ignored: jetmond runs one event loop per core (see engine_threads, max_in_flight)";
/// jetmon.js's `DEBUG` switched on verbose logs; log levels now come from `RUST_LOG`.
const DEBUG_KEY: &str = "debug";
const DEBUG_KEY_NOTE: &str = "is ignored: set the log level with RUST_LOG (e.g. RUST_LOG=jetmond=debug)";

/// Keys starting with this are comments: JSON has none, and a sample file should explain itself.
const COMMENT_PREFIX: &str = "//";

/// A value waiting to be applied, with where it came from.
struct Setting {
    value: Value,
    /// An environment override's raw text, tried as a string when its JSON reading does not fit.
    raw_text: Option<String>,
    at: KeyLocation,
}

pub(super) fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<LoadedConfig, ConfigError> {
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

    let known = known_keys();
    let mut warnings = Vec::new();
    // Canonical key -> value; a BTreeMap-like stable order is not needed since each key is applied alone.
    let mut settings: HashMap<String, Setting> = HashMap::new();
    let mut spellings: HashMap<String, String> = HashMap::new();

    for (spelling, value) in entries {
        if spelling.starts_with(COMMENT_PREFIX) {
            continue;
        }
        let Some(key) = canonical_key(&spelling) else {
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
        let at = location(&key, path, None);
        if let Some(note) = ignored_key_note(&key) {
            warnings.push(ConfigWarning {
                at,
                message: note.into(),
            });
        } else if known.contains(&key) {
            settings.insert(
                key,
                Setting {
                    value,
                    raw_text: None,
                    at,
                },
            );
        } else {
            return Err(ConfigError::UnknownKey {
                key: spelling,
                path: path.to_owned(),
            });
        }
    }

    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(variable, _)| variable.starts_with(ENV_PREFIX))
        .collect();
    // The environment has no order; sorting keeps warnings and error choice reproducible.
    overrides.sort();
    for (variable, text) in overrides {
        let suffix = &variable[ENV_PREFIX.len()..];
        let key = suffix.to_ascii_lowercase();
        let at = location(&key, path, Some(&variable));
        if let Some(note) = ignored_key_note(&key) {
            warnings.push(ConfigWarning {
                at,
                message: note.into(),
            });
        } else if suffix == suffix.to_ascii_uppercase() && known.contains(&key) {
            let value = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
            settings.insert(
                key,
                Setting {
                    value,
                    raw_text: Some(text),
                    at,
                },
            );
        } else {
            warnings.push(ConfigWarning {
                at,
                message: "matches no config key and is ignored".into(),
            });
        }
    }

    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut config = Config::default();
    let mut locations: HashMap<String, KeyLocation> = HashMap::new();
    // Sorted so that with several bad values the same one is reported every time.
    let mut settings: Vec<(String, Setting)> = settings.into_iter().collect();
    settings.sort_by(|(a, _), (b, _)| a.cmp(b));
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

    config.sites_file = resolve(&base_dir, &config.sites_file);
    config.state_file = resolve(&base_dir, &config.state_file);
    config.notifications_file = resolve(&base_dir, &config.notifications_file);
    config.outbox_file = resolve(&base_dir, &config.outbox_file);
    for optional in [
        &mut config.wpcom_ca_file,
        &mut config.wpcom_client_cert_file,
        &mut config.wpcom_client_key_file,
        &mut config.veriflier_ca_file,
        &mut config.veriflier_client_cert_file,
        &mut config.veriflier_client_key_file,
    ] {
        // Empty means "not set" and must stay empty rather than become the config directory.
        if !optional.as_os_str().is_empty() {
            *optional = resolve(&base_dir, optional);
        }
    }

    if let Some((key, message)) = config.impossibility() {
        let at = locations.remove(key).unwrap_or_else(|| location(key, path, None));
        return Err(ConfigError::ImpossibleValue { at, message });
    }
    Ok(LoadedConfig { config, warnings })
}

/// The canonical keys: exactly the fields a [`Config`] serialises, so the list cannot drift from the
/// struct.
pub(super) fn known_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        // Serialising a plain struct of plain fields cannot fail or give a non-object.
        _ => Vec::new(),
    }
}

/// `num_of_checks` and `NUM_OF_CHECKS` both mean `num_of_checks`; mixed case means nothing.
fn canonical_key(spelling: &str) -> Option<String> {
    let lower = spelling.to_ascii_lowercase();
    (spelling == lower || spelling == spelling.to_ascii_uppercase()).then_some(lower)
}

fn ignored_key_note(key: &str) -> Option<&'static str> {
    if WORKER_KEYS.contains(&key) {
        Some(WORKER_KEY_NOTE)
    } else if key == DEBUG_KEY {
        Some(DEBUG_KEY_NOTE)
    } else {
        None
    }
}

fn location(key: &str, path: &Path, variable: Option<&str>) -> KeyLocation {
    KeyLocation {
        key: key.to_owned(),
        path: path.to_owned(),
        variable: variable.map(str::to_owned),
    }
}

/// `config` with `key` set to `value`, or serde's complaint about the value.
fn apply(config: &Config, key: &str, value: Value) -> Result<Config, String> {
    let mut fields = match serde_json::to_value(config) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    fields.insert(key.to_owned(), value);
    serde_json::from_value(Value::Object(fields)).map_err(|error| error.to_string())
}

fn resolve(base_dir: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_owned()
    } else {
        base_dir.join(file)
    }
}
