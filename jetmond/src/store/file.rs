//! The embedded store: sites from a site-list file, statuses in a JSON state file that survives restarts.
//!
//! The state file is rewritten whole on each batch (write to a temporary file, fsync, rename) so a crash
//! leaves either the old or the new state, never half of one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Site, SiteStore, StatusUpdate, StoreError};
use crate::sites::{read_sites, SiteListError};
use crate::status::{SiteStatus, UnixMillis};

/// Sites loaded per page handed to the control thread.
const PAGE_SITES: usize = 1000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SavedStatus {
    status: SiteStatus,
    last_status_change: Option<UnixMillis>,
}

/// Site list plus state file.
pub struct FileStore {
    sites_file: PathBuf,
    state_file: PathBuf,
    state: BTreeMap<u64, SavedStatus>,
}

impl FileStore {
    /// Opens the store, reading the state file if it exists. A corrupt state file is an error naming it (we
    /// do not silently forget every site's status).
    pub fn open(sites_file: &Path, state_file: &Path) -> Result<FileStore, StoreError> {
        let state = match File::open(state_file) {
            Ok(file) => serde_json::from_reader(BufReader::new(file)).map_err(|e| StoreError::File {
                path: state_file.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(StoreError::File {
                    path: state_file.to_path_buf(),
                    source,
                })
            }
        };
        Ok(FileStore {
            sites_file: sites_file.to_path_buf(),
            state_file: state_file.to_path_buf(),
            state,
        })
    }

    fn save(&self) -> Result<(), StoreError> {
        let err = |source| StoreError::File {
            path: self.state_file.clone(),
            source,
        };
        let tmp = self.state_file.with_extension("json.tmp");
        let mut file = File::create(&tmp).map_err(err)?;
        let body = serde_json::to_vec_pretty(&self.state).map_err(|e| err(std::io::Error::other(e)))?;
        file.write_all(&body).map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.state_file).map_err(err)
    }
}

/// A stable id for a site listed without one: the same URL always maps to the same id, so its state survives
/// restarts and reordering of the list. Kept below 2^53 so JSON consumers read it exactly.
pub fn url_blog_id(url: &str) -> u64 {
    // FNV-1a: tiny, stable across Rust versions (unlike the std hasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in url.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash & ((1 << 53) - 1)
}

impl SiteStore for FileStore {
    fn load_sites(
        &mut self,
        page: &mut dyn FnMut(Vec<Site>),
        bad: &mut dyn FnMut(StoreError),
    ) -> Result<(), StoreError> {
        let file = File::open(&self.sites_file).map_err(|source| StoreError::File {
            path: self.sites_file.clone(),
            source,
        })?;
        let mut batch = Vec::with_capacity(PAGE_SITES);
        for entry in read_sites(BufReader::new(file)) {
            match entry {
                Ok(entry) => {
                    let blog_id = entry.blog_id.unwrap_or_else(|| url_blog_id(&entry.url));
                    let saved = self.state.get(&blog_id);
                    batch.push(Site {
                        blog_id,
                        monitor_url: entry.url,
                        status: saved.map(|s| s.status).unwrap_or(SiteStatus::Running),
                        last_status_change: saved.and_then(|s| s.last_status_change),
                        check_interval: None,
                    });
                    if batch.len() == PAGE_SITES {
                        page(std::mem::replace(&mut batch, Vec::with_capacity(PAGE_SITES)));
                    }
                }
                Err(SiteListError::Line(e)) => bad(StoreError::BadRecord {
                    blog_id: 0,
                    reason: format!("{}: {e}", self.sites_file.display()),
                }),
                Err(SiteListError::Read { line, source }) => {
                    return Err(StoreError::File {
                        path: self.sites_file.clone(),
                        source: std::io::Error::new(source.kind(), format!("line {line}: {source}")),
                    })
                }
            }
        }
        if !batch.is_empty() {
            page(batch);
        }
        Ok(())
    }

    fn persist_statuses(&mut self, updates: &[StatusUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        for u in updates {
            self.state.insert(
                u.blog_id,
                SavedStatus {
                    status: u.status,
                    last_status_change: Some(u.last_status_change),
                },
            );
        }
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("jetmond-filestore-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn load(store: &mut FileStore) -> (Vec<Site>, Vec<String>) {
        let mut sites = Vec::new();
        let mut bad = Vec::new();
        store
            .load_sites(&mut |p| sites.extend(p), &mut |e| bad.push(e.to_string()))
            .unwrap();
        (sites, bad)
    }

    #[test]
    fn statuses_survive_a_reopen() {
        let d = dir("reopen");
        let sites = d.0.join("sites.txt");
        let state = d.0.join("state.json");
        std::fs::write(&sites, "5 http://a.test/\nhttp://b.test/\nnot valid line here\n").unwrap();
        let mut store = FileStore::open(&sites, &state).unwrap();
        let (loaded, bad) = load(&mut store);
        assert_eq!(loaded.len(), 2);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(loaded.iter().all(|s| s.status == SiteStatus::Running));
        let at = UnixMillis::from_millis(1_700_000_000_000);
        store
            .persist_statuses(&[StatusUpdate {
                blog_id: 5,
                status: SiteStatus::Down,
                last_status_change: at,
            }])
            .unwrap();
        let mut reopened = FileStore::open(&sites, &state).unwrap();
        let (loaded, _) = load(&mut reopened);
        let a = loaded.iter().find(|s| s.blog_id == 5).unwrap();
        assert_eq!((a.status, a.last_status_change), (SiteStatus::Down, Some(at)));
        assert_eq!(
            loaded.iter().find(|s| s.blog_id != 5).unwrap().blog_id,
            url_blog_id("http://b.test/")
        );
    }

    #[test]
    fn corrupt_state_file_is_an_error_naming_it() {
        let d = dir("corrupt");
        let state = d.0.join("state.json");
        std::fs::write(&state, "{not json").unwrap();
        let err = FileStore::open(&d.0.join("sites.txt"), &state).err().unwrap();
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn url_ids_are_stable_and_json_safe() {
        assert_eq!(url_blog_id("http://a/"), url_blog_id("http://a/"));
        assert_ne!(url_blog_id("http://a/"), url_blog_id("http://b/"));
        assert!(url_blog_id("http://a/") < 1 << 53);
    }
}
