//! Loading the configuration: the file text, plus `JETMON_*` environment overrides.
//!
//! Input: the config file's text, optionally followed by a NUL byte and NUL-separated `NAME=VALUE`
//! environment entries (so the seed corpus is plain JSON files). `Config::load` reads from a path, so
//! each run writes the text to a file named after this process, removed again when the run passes.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use jetmond::config::Config;
use libfuzzer_sys::fuzz_target;

fn config_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join("jetmon-fuzz-config");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        dir.join(format!("config-{}.json", std::process::id()))
    })
}

fn write_config(path: &PathBuf, text: &[u8]) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}

fuzz_target!(|data: &[u8]| {
    let (file_text, env_bytes) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let env: Vec<(String, String)> = env_bytes
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (name, value) = entry.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();

    let path = config_path();
    write_config(path, file_text);
    let result = Config::load(path, env);
    let _ = std::fs::remove_file(path);
    let loaded = match result {
        Ok(loaded) => loaded,
        Err(e) => {
            // Every refusal must be printable for the operator.
            let _ = e.to_string();
            return;
        }
    };
    for warning in &loaded.warnings {
        let _ = warning.to_string();
    }
    let config = loaded.config;
    assert!(!config.bucket_range().is_empty(), "accepted an empty bucket range");
    let _ = config.machine_config();

    // What was accepted, written back out as a file, loads to the same configuration.
    let written = match serde_json::to_vec(&config) {
        Ok(written) => written,
        Err(e) => panic!("accepted config does not serialise: {e}"),
    };
    write_config(path, &written);
    let again = Config::load(path, Vec::new());
    let _ = std::fs::remove_file(path);
    match again {
        Ok(again) => assert_eq!(again.config, config, "config changes when written out and loaded again"),
        Err(e) => panic!("accepted config, written out, is refused: {e}"),
    }
});
