//! The build cache index: cache key → result, kept in the kiln root.
//!
//! One small JSON file per key, `build-cache/v1/<hh>/<hex>.json`, written to
//! a temp file in `build-cache/tmp/` and renamed into place. A key
//! names its result completely, so two builds that record the same key
//! concurrently write equivalent records and whichever rename lands last
//! wins: no lock is needed and readers only ever see whole files. A record
//! whose layers were pruned from the store is treated as a miss by the
//! solver. Temp files of a killed writer are named `<pid>-…` and removed by
//! the next [`CacheIndex::open`] once that pid is gone.
//!
//! Records are not fsynced: a record is only an optimisation whose reader
//! checks it (schema, key, JSON, and that its layers are still in the
//! store), so one lost or emptied by a power cut is a cache miss, never a
//! wrong result — and a cold build writes one record per step, where an
//! fsync each would cost more than the step.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::cachekey::{CacheKey, SCHEMA_VERSION};
use crate::worker::Layer;

/// Errors of the cache index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the cache record for {key}")]
    Encode {
        key: CacheKey,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IndexError + 'a {
    move |source| IndexError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What the index records for a vertex that makes a filesystem state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The layers of the resulting root filesystem, bottom first.
    pub chain: Vec<Layer>,
    /// The layer this vertex added, `None` when it changed nothing.
    pub layer: Option<Layer>,
    /// When the result was first made (RFC 3339): the history `created`.
    pub created: String,
}

/// What the index records for a final image: its creation time, so a fully
/// cached rebuild produces the very same image (same config, same id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTimeRecord {
    pub created: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    schema: u32,
    key: String,
    record: T,
}

/// The cache index of one kiln root. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CacheIndex {
    dir: PathBuf,
}

impl CacheIndex {
    /// Opens (creating) the index under `<kiln root>/build-cache`, and
    /// removes temp files of writers that are gone.
    pub fn open(kiln_root: &Path) -> Result<CacheIndex, IndexError> {
        let dir = kiln_root.join("build-cache");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        let index = CacheIndex { dir };
        index.reclaim_temp_files();
        Ok(index)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        let hex = key.hex();
        self.dir
            .join(format!("v{SCHEMA_VERSION}"))
            .join(&hex[..2])
            .join(format!("{hex}.json"))
    }

    fn reclaim_temp_files(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The record for `key`, if any. An unreadable or foreign record is a
    /// miss (and logged), never an error: the cache is an optimisation.
    pub fn get<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read cache record");
                return None;
            }
        };
        match serde_json::from_slice::<Envelope<T>>(&bytes) {
            Ok(env) if env.schema == SCHEMA_VERSION && env.key == key.to_string() => {
                Some(env.record)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt cache record");
                None
            }
        }
    }

    /// Records `record` for `key`, atomically.
    pub fn put<T: Serialize>(&self, key: &CacheKey, record: &T) -> Result<(), IndexError> {
        let env = Envelope {
            schema: SCHEMA_VERSION,
            key: key.to_string(),
            record,
        };
        let bytes =
            serde_json::to_vec(&env).map_err(|source| IndexError::Encode { key: *key, source })?;
        let path = self.path(key);
        let parent = path.parent().expect("record paths have a parent");
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempfile_in(&tmp_dir)
            .map_err(io_err("create a temp file in", &tmp_dir))?;
        tmp.write_all(&bytes).map_err(io_err("write", tmp.path()))?;
        tmp.persist(&path).map_err(|e| IndexError::Io {
            op: "rename into",
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Every state record in the index (for pruning and `system df`).
    pub fn states(&self) -> Vec<(CacheKey, StateRecord)> {
        let mut out = Vec::new();
        let root = self.dir.join(format!("v{SCHEMA_VERSION}"));
        let Ok(shards) = fs::read_dir(&root) else {
            return out;
        };
        for shard in shards.flatten() {
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let Some(key) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(CacheKey::from_hex)
                else {
                    continue;
                };
                if let Some(rec) = self.get::<StateRecord>(&key) {
                    out.push((key, rec));
                }
            }
        }
        out
    }

    /// Forgets every record (`kiln prune`); returns how many there were.
    /// Records are moved out of sight first (one rename), then removed.
    pub fn clear(&self) -> Result<usize, IndexError> {
        let live = self.dir.join(format!("v{SCHEMA_VERSION}"));
        if !live.exists() {
            return Ok(0);
        }
        let count = self.states().len();
        let doomed = self
            .tmp_dir()
            .join(format!("{}-cleared-{}", std::process::id(), unique()));
        fs::rename(&live, &doomed).map_err(io_err("move aside", &live))?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))?;
        Ok(count)
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &CacheKey) -> Result<(), IndexError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cachekey::compute;

    fn layer(n: u8) -> Layer {
        use oci_spec::image::{Descriptor, MediaType};
        let d = crate::cachekey::sha256_digest(&[n]);
        Layer {
            diff_id: d.clone(),
            blob: Descriptor::new(MediaType::ImageLayer, 10, d),
        }
    }

    #[test]
    fn put_get_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = compute("exec", &"a", &[], &[]);
        let rec = StateRecord {
            chain: vec![layer(1), layer(2)],
            layer: Some(layer(2)),
            created: "2024-01-01T00:00:00Z".into(),
        };
        {
            let idx = CacheIndex::open(dir.path()).unwrap();
            assert_eq!(idx.get::<StateRecord>(&key), None);
            idx.put(&key, &rec).unwrap();
        }
        let idx = CacheIndex::open(dir.path()).unwrap();
        assert_eq!(idx.get::<StateRecord>(&key), Some(rec.clone()));
        assert_eq!(idx.states(), vec![(key, rec.clone())]);
        idx.remove(&key).unwrap();
        assert_eq!(idx.get::<StateRecord>(&key), None);
        idx.put(&key, &rec).unwrap();
        assert_eq!(idx.clear().unwrap(), 1);
        assert_eq!(idx.get::<StateRecord>(&key), None);
        assert_eq!(idx.clear().unwrap(), 0);
    }

    #[test]
    fn corrupt_or_foreign_records_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(dir.path()).unwrap();
        let key = compute("exec", &"a", &[], &[]);
        let other = compute("exec", &"b", &[], &[]);
        let path = idx.path(&key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{not json").unwrap();
        assert_eq!(idx.get::<StateRecord>(&key), None);
        // A record copied under the wrong name is not trusted.
        idx.put(
            &other,
            &ImageTimeRecord {
                created: "x".into(),
            },
        )
        .unwrap();
        fs::copy(idx.path(&other), &path).unwrap();
        assert_eq!(idx.get::<ImageTimeRecord>(&key), None);
    }

    #[test]
    fn concurrent_writers_never_expose_partial_records() {
        let dir = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(dir.path()).unwrap();
        let key = compute("exec", &"same", &[], &[]);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let idx = idx.clone();
                std::thread::spawn(move || {
                    for j in 0..50 {
                        let rec = StateRecord {
                            chain: vec![layer(i)],
                            layer: None,
                            created: format!("{j}"),
                        };
                        idx.put(&key, &rec).unwrap();
                        assert!(idx.get::<StateRecord>(&key).is_some());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(idx.get::<StateRecord>(&key).is_some());
        assert_eq!(fs::read_dir(idx.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn temp_files_of_dead_writers_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(dir.path()).unwrap();
        // pid 0x7fffffff never exists.
        let stale = idx.tmp_dir().join("2147483647-abc");
        fs::write(&stale, b"x").unwrap();
        let mine = idx.tmp_dir().join(format!("{}-abc", std::process::id()));
        fs::write(&mine, b"x").unwrap();
        CacheIndex::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(mine.exists());
    }
}
