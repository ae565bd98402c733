//! The store's metadata: image records, tags and holds in one document,
//! `meta/images.json`, changed only under `locks/meta.lock` and replaced
//! whole (temp file, fsync, rename), so readers need no lock and two
//! processes never lose each other's changes.
//!
//! ```json
//! {"version":1,
//!  "images":{"sha256:<manifest or index>":{"mediaType":"…","size":123,"id":"sha256:<config>","added":"2024-…Z"}},
//!  "tags":{"docker.io/library/busybox:latest":"sha256:<manifest or index>"},
//!  "holds":{"container:3f2a…":["sha256:<manifest or index>"]}}
//! ```
//!
//! An image record says "this manifest (or index) is an image of the store",
//! tagged or not; a tag names a record; a hold says "holder X uses this
//! image" (a container) and makes `rmi` refuse it and GC keep it.
//! GC roots registered by other components (the build cache) live beside it
//! in `meta/roots/<owner>.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::image::{Descriptor, Digest, MediaType};
use serde::{Deserialize, Serialize};

use super::canonical::canonical_json;
use super::lock::FileLock;
use super::{Store, StoreError};

const META_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct MetaDoc {
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) images: BTreeMap<String, ImageEntry>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) holds: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageEntry {
    #[serde(rename = "mediaType")]
    pub(crate) media_type: String,
    pub(crate) size: u64,
    /// The config digest (the image id) of the host platform's manifest.
    pub(crate) id: String,
    pub(crate) added: String,
}

impl ImageEntry {
    pub(crate) fn descriptor(&self, digest: &str) -> Result<Descriptor, StoreError> {
        Ok(Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.size,
            parse_digest(digest)?,
        ))
    }
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest, StoreError> {
    Digest::from_str(s).map_err(|_| StoreError::CorruptMetadata {
        path: PathBuf::from("meta/images.json"),
        reason: format!("invalid digest {s:?}"),
    })
}

/// One GC root set, as stored in `meta/roots/<owner>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RootsDoc {
    digests: BTreeSet<String>,
}

impl Store {
    fn meta_path(&self) -> PathBuf {
        self.root().join("meta/images.json")
    }

    /// Reads the current metadata document (no lock: it is replaced whole).
    pub(crate) fn read_meta(&self) -> Result<MetaDoc, StoreError> {
        let path = self.meta_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(MetaDoc {
                    version: META_VERSION,
                    ..MetaDoc::default()
                });
            }
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        let doc: MetaDoc =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptMetadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if doc.version != META_VERSION {
            return Err(StoreError::CorruptMetadata {
                path,
                reason: format!("unknown version {}", doc.version),
            });
        }
        Ok(doc)
    }

    /// Changes the metadata document under the exclusive meta lock: reads the
    /// current version, applies `f`, and replaces the file atomically when
    /// `f` succeeds (on error nothing changes).
    pub(crate) fn update_meta<T>(
        &self,
        f: impl FnOnce(&mut MetaDoc) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = FileLock::exclusive(&self.root().join("locks/meta.lock"))?;
        let mut doc = self.read_meta()?;
        let out = f(&mut doc)?;
        let bytes = canonical_json(&doc).map_err(StoreError::serialize("metadata"))?;
        self.write_file_atomic(&self.meta_path(), &bytes)?;
        Ok(out)
    }

    /// Writes `bytes` to `dest` through a temp file, fsync and rename.
    pub(crate) fn write_file_atomic(
        &self,
        dest: &std::path::Path,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let tmp = self.tmp_name("meta");
        let result = (|| {
            let mut f = fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
            f.write_all(bytes).map_err(StoreError::io("write", &tmp))?;
            f.sync_all().map_err(StoreError::io("fsync", &tmp))?;
            fs::rename(&tmp, dest).map_err(StoreError::io("rename into place", dest))?;
            if let Some(dir) = dest.parent() {
                super::fsync_dir(dir)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    // ---- GC roots -------------------------------------------------------

    fn roots_path(&self, owner: &str) -> Result<PathBuf, StoreError> {
        let valid = !owner.is_empty()
            && owner.len() <= 128
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !owner.starts_with('.');
        if !valid {
            return Err(StoreError::InvalidName {
                what: "gc root owner",
                name: owner.to_string(),
            });
        }
        Ok(self.root().join("meta/roots").join(format!("{owner}.json")))
    }

    /// Replaces the GC roots registered by `owner` (e.g. `build-cache`):
    /// every blob whose digest is listed, everything a listed manifest or
    /// index refers to, and the unpacked layer snapshot of a listed diffID
    /// survive garbage collection. `owner` is `[A-Za-z0-9._-]+`.
    pub fn set_gc_roots<'a>(
        &self,
        owner: &str,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) -> Result<(), StoreError> {
        let path = self.roots_path(owner)?;
        let _lease = self.lease()?;
        let _lock = FileLock::exclusive(&self.root().join("locks/meta.lock"))?;
        let doc = RootsDoc {
            digests: digests.into_iter().map(|d| d.to_string()).collect(),
        };
        let bytes = canonical_json(&doc).map_err(StoreError::serialize("gc roots"))?;
        self.write_file_atomic(&path, &bytes)
    }

    /// Adds digests to `owner`'s GC roots.
    pub fn add_gc_roots<'a>(
        &self,
        owner: &str,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) -> Result<(), StoreError> {
        let path = self.roots_path(owner)?;
        let _lease = self.lease()?;
        let _lock = FileLock::exclusive(&self.root().join("locks/meta.lock"))?;
        let mut doc = self.read_roots_file(&path)?;
        doc.digests
            .extend(digests.into_iter().map(|d| d.to_string()));
        let bytes = canonical_json(&doc).map_err(StoreError::serialize("gc roots"))?;
        self.write_file_atomic(&path, &bytes)
    }

    /// The GC roots `owner` registered.
    pub fn gc_roots(&self, owner: &str) -> Result<Vec<Digest>, StoreError> {
        let path = self.roots_path(owner)?;
        self.read_roots_file(&path)?
            .digests
            .iter()
            .map(|d| parse_digest(d))
            .collect()
    }

    /// Removes all of `owner`'s GC roots.
    pub fn remove_gc_roots(&self, owner: &str) -> Result<(), StoreError> {
        let path = self.roots_path(owner)?;
        let _lock = FileLock::exclusive(&self.root().join("locks/meta.lock"))?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", &path)(e)),
        }
    }

    /// Every registered GC root of every owner.
    pub(crate) fn all_gc_roots(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.root().join("meta/roots");
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io("read directory", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read directory", &dir))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                for d in self.read_roots_file(&path)?.digests {
                    out.push(parse_digest(&d)?);
                }
            }
        }
        Ok(out)
    }

    fn read_roots_file(&self, path: &std::path::Path) -> Result<RootsDoc, StoreError> {
        match fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::CorruptMetadata {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RootsDoc::default()),
            Err(e) => Err(StoreError::io("read", path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_round_trip_and_owner_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = super::super::sha256_of(b"a");
        let b = super::super::sha256_of(b"b");
        store.set_gc_roots("build-cache", [&a]).unwrap();
        store.add_gc_roots("build-cache", [&b]).unwrap();
        let mut got = store.gc_roots("build-cache").unwrap();
        got.sort_by_key(|d| d.to_string());
        let mut want = vec![a.clone(), b.clone()];
        want.sort_by_key(|d| d.to_string());
        assert_eq!(got, want);
        assert_eq!(store.all_gc_roots().unwrap().len(), 2);
        store.set_gc_roots("build-cache", [&a]).unwrap();
        assert_eq!(store.gc_roots("build-cache").unwrap(), vec![a]);
        store.remove_gc_roots("build-cache").unwrap();
        assert!(store.gc_roots("build-cache").unwrap().is_empty());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(store.gc_roots(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn failed_update_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .update_meta(|doc| {
                doc.tags.insert("x".into(), "y".into());
                Ok(())
            })
            .unwrap();
        let err = store.update_meta(|doc| {
            doc.tags.clear();
            Err::<(), _>(StoreError::InvalidName {
                what: "test",
                name: "x".into(),
            })
        });
        assert!(err.is_err());
        assert_eq!(store.read_meta().unwrap().tags.len(), 1);
    }
}
