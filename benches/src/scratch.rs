//! A temporary directory for generated configs, certificates and logs, removed on drop.

use std::fs;
use std::path::{Path, PathBuf};

use crate::BenchError;

/// A directory under the system temp dir, unique to this process.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `$TMPDIR/jetmon-bench-<label>-<pid>`.
    pub fn create(label: &str) -> Result<ScratchDir, BenchError> {
        let path = std::env::temp_dir().join(format!("jetmon-bench-{label}-{}", std::process::id()));
        fs::create_dir_all(&path).map_err(BenchError::io(format!("create {}", path.display())))?;
        Ok(ScratchDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A port on `ip` that was free a moment ago, for servers (nginx) that cannot report the port they bound.
pub fn free_port(ip: std::net::IpAddr) -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind((ip, 0)).map_err(BenchError::io(format!("bind {ip}:0")))?;
    let port = listener
        .local_addr()
        .map_err(BenchError::io("read the bound address"))?
        .port();
    Ok(port)
}
