//! Garbage collection: `kiln prune`'s image part.
//!
//! Mark and sweep under the exclusive GC lock (see [`Lease`](super::Lease)):
//! it waits until no write is in progress, and while it runs no write
//! starts, so every blob it finds unreferenced really is.
//!
//! Roots: image records (and so their tags), holds, and GC roots registered
//! by other components (`meta/roots/*.json`). From each root it marks the
//! blob, and for a manifest or index everything it refers to (config,
//! layers, child manifests); it marks the diffIDs of every reachable
//! config, and every root digest, as live layer snapshots; and it keeps a
//! remembered compressed copy of a layer (see `compress.rs`) while the
//! uncompressed layer it was made from is live. Everything else under
//! `blobs/`, `snapshots/layers/` and `compressed/` is removed; a snapshot is
//! first renamed into `tmp/`, so none is ever seen half-deleted.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{Descriptor, Digest};
use serde_json::Value;

use super::lock::FileLock;
use super::media::{self, DocKind};
use super::{MAX_METADATA_BLOB, Store, StoreError, sha256_hex};

/// What to remove besides unreferenced blobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// Remove dangling images: records with no tag and no holder.
    pub dangling: bool,
    /// Remove every image no holder uses, tagged or not (and its tags).
    pub all: bool,
}

/// What garbage collection removed.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Image records removed, with their ids.
    pub images: Vec<(Descriptor, Digest)>,
    pub blobs: usize,
    pub snapshots: usize,
    /// Bytes of blobs removed (snapshots are not counted).
    pub bytes: u64,
}

impl Store {
    /// Prunes images as `opts` says, then collects garbage. Waits for
    /// writes in progress to finish.
    pub fn prune_images(&self, opts: PruneOptions) -> Result<GcReport, StoreError> {
        let lock = FileLock::exclusive(&self.root().join("locks/gc.lock"))?;
        self.gc_locked(opts, lock)
    }

    /// Collects garbage (unreferenced blobs and snapshots) now, waiting for
    /// writes in progress to finish.
    pub fn collect_garbage(&self) -> Result<GcReport, StoreError> {
        self.prune_images(PruneOptions::default())
    }

    /// Collects garbage only if no write is in progress; `None` if one is.
    pub fn try_collect_garbage(&self) -> Result<Option<GcReport>, StoreError> {
        match FileLock::try_exclusive(&self.root().join("locks/gc.lock"))? {
            Some(lock) => self.gc_locked(PruneOptions::default(), lock).map(Some),
            None => Ok(None),
        }
    }

    fn gc_locked(&self, opts: PruneOptions, _lock: FileLock) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        if opts.dangling || opts.all {
            report.images = self.update_meta(|doc| {
                let held: HashSet<String> = doc.holds.values().flatten().cloned().collect();
                let tagged: HashSet<String> = doc.tags.values().cloned().collect();
                let doomed: Vec<String> = doc
                    .images
                    .keys()
                    .filter(|d| !held.contains(*d) && (opts.all || !tagged.contains(*d)))
                    .cloned()
                    .collect();
                let mut removed = Vec::new();
                for d in doomed {
                    doc.tags.retain(|_, t| *t != d);
                    if let Some(e) = doc.images.remove(&d) {
                        removed.push((e.descriptor(&d)?, super::meta::parse_digest(&e.id)?));
                    }
                }
                Ok(removed)
            })?;
        }
        let doc = self.read_meta()?;
        let mut roots: Vec<Digest> = Vec::new();
        for d in doc.images.keys().chain(doc.holds.values().flatten()) {
            roots.push(super::meta::parse_digest(d)?);
        }
        roots.extend(self.all_gc_roots()?);
        let (blobs, mut diff_ids) = self.mark(&roots)?;
        diff_ids.extend(roots.iter().map(|d| d.digest().to_string()));
        let mut live: HashSet<String> = blobs;
        self.keep_compressed_copies(&mut live)?;
        // sweep blobs
        let dir = self.root().join("blobs/sha256");
        for entry in fs::read_dir(&dir).map_err(StoreError::io("read directory", &dir))? {
            let entry = entry.map_err(StoreError::io("read directory", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if live.contains(&name) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    report.blobs += 1;
                    report.bytes += size;
                    tracing::debug!(blob = %name, size, "removed unreferenced blob");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", entry.path())(e)),
            }
        }
        // sweep snapshots
        let snaps = self.root().join("snapshots/layers");
        if let Ok(entries) = fs::read_dir(&snaps) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if diff_ids.contains(&name) {
                    continue;
                }
                let tmp = self.tmp_name("gc-snapshot");
                fs::rename(entry.path(), &tmp)
                    .map_err(StoreError::io("move aside", entry.path()))?;
                remove_tree(&tmp)?;
                report.snapshots += 1;
                tracing::debug!(diff_id = %name, "removed unused layer snapshot");
            }
        }
        // markers of unsynced snapshots (see `Store::adopt_snapshot`)
        // whose snapshot is gone
        if let Ok(entries) = fs::read_dir(self.root().join("snapshots/volatile")) {
            for entry in entries.flatten() {
                if !snaps.join(entry.file_name()).exists() {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        self.sweep_compressed_map(&live)?;
        // Per-layer lock files: no lease is held while GC runs, so nobody
        // holds or is about to open one; they are made again when needed.
        if let Ok(entries) = fs::read_dir(self.root().join("locks")) {
            for e in entries.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.starts_with("layer-") || n.starts_with("compress-") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        super::fsync_dir(&dir)?;
        Ok(report)
    }

    /// Marks every blob reachable from `roots`; returns the live blob hex
    /// digests and the diffIDs (hex) of every reachable config.
    fn mark(&self, roots: &[Digest]) -> Result<(HashSet<String>, BTreeSet<String>), StoreError> {
        let mut live = HashSet::new();
        let mut diff_ids = BTreeSet::new();
        let mut queue: VecDeque<(Digest, Option<DocKind>)> =
            roots.iter().map(|d| (d.clone(), None)).collect();
        while let Some((d, kind)) = queue.pop_front() {
            let Ok(hex) = sha256_hex(&d) else { continue };
            if !live.insert(hex.to_string()) {
                continue;
            }
            let size = match self.blob_size(&d) {
                Ok(s) => s,
                Err(StoreError::BlobNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let may_be_doc = matches!(
                kind,
                None | Some(DocKind::Manifest | DocKind::Index | DocKind::Config)
            );
            if !may_be_doc || !(2..=MAX_METADATA_BLOB).contains(&size) {
                continue;
            }
            let bytes = self.read_blob(&d)?;
            if bytes.first() != Some(&b'{') {
                continue;
            }
            let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let children = |key: &str| -> Vec<(Digest, String)> {
                let list: Vec<&Value> = match value.get(key) {
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(v @ Value::Object(_)) => vec![v],
                    _ => vec![],
                };
                list.into_iter()
                    .filter_map(|v| {
                        let d = Digest::from_str(v.get("digest")?.as_str()?).ok()?;
                        let mt = v
                            .get("mediaType")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        Some((d, mt))
                    })
                    .collect()
            };
            if kind == Some(DocKind::Config)
                || value.get("rootfs").is_some() && value.get("layers").is_none()
            {
                if let Some(ids) = value.pointer("/rootfs/diff_ids").and_then(Value::as_array) {
                    for id in ids.iter().filter_map(Value::as_str) {
                        if let Some(h) = id.strip_prefix("sha256:") {
                            diff_ids.insert(h.to_string());
                        }
                    }
                }
                continue;
            }
            for (child, mt) in children("manifests") {
                let k = match media::kind_of(&mt) {
                    DocKind::Unknown => None,
                    k => Some(k),
                };
                queue.push_back((child, k));
            }
            for (child, _) in children("config") {
                queue.push_back((child, Some(DocKind::Config)));
            }
            for (child, mt) in children("layers") {
                let k = match media::kind_of(&mt) {
                    DocKind::Unknown => Some(DocKind::Layer(media::Compression::None)),
                    k => Some(k),
                };
                queue.push_back((child, k));
            }
        }
        Ok((live, diff_ids))
    }
}

/// Removes a directory tree that may hold read-only directories.
pub(crate) fn remove_tree(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            // make every directory writable (non-root unpacks keep 0555 dirs), retry
            fn chmod_dirs(p: &Path) {
                if let Ok(m) = fs::symlink_metadata(p)
                    && m.is_dir()
                {
                    let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
                    if let Ok(rd) = fs::read_dir(p) {
                        for e in rd.flatten() {
                            chmod_dirs(&e.path());
                        }
                    }
                }
            }
            chmod_dirs(path);
            fs::remove_dir_all(path).map_err(StoreError::io("remove", path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reference;
    use crate::store::image::tests::make_image;

    #[test]
    fn keeps_reachable_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tagged = make_image(&store, "tagged");
        store.tag(&Reference::parse("t").unwrap(), &tagged).unwrap();
        let dangling = make_image(&store, "dangling");
        store.add_image(&dangling).unwrap();
        let held = make_image(&store, "held");
        store.add_image(&held).unwrap();
        store.hold("container:x", held.digest()).unwrap();
        let rooted = store.write_blob(b"cache layer").unwrap();
        store.set_gc_roots("build-cache", [&rooted.digest]).unwrap();
        let loose = store.write_blob(b"loose").unwrap();
        let _unrecorded = make_image(&store, "unrecorded");

        let report = store.collect_garbage().unwrap();
        // the unrecorded image's manifest, config and layer, and the loose blob
        assert_eq!(report.blobs, 4);
        assert!(!store.has_blob(&loose.digest));
        assert!(store.has_blob(&rooted.digest));
        for m in [&tagged, &dangling, &held] {
            let img = store.image_for(m).unwrap();
            assert!(store.has_blob(img.layers[0].descriptor.digest()));
        }
        let report = store
            .prune_images(PruneOptions {
                dangling: true,
                all: false,
            })
            .unwrap();
        assert_eq!(report.images.len(), 1);
        assert_eq!(&report.images[0].0, &dangling);
        assert_eq!(report.blobs, 3);
        let report = store
            .prune_images(PruneOptions {
                dangling: true,
                all: true,
            })
            .unwrap();
        assert_eq!(report.images.len(), 1, "the held image stays");
        assert!(store.tags().unwrap().is_empty());
        assert!(store.image_for(&held).is_ok());
        store.release("container:x").unwrap();
        store
            .prune_images(PruneOptions {
                dangling: true,
                all: false,
            })
            .unwrap();
        assert!(store.images().unwrap().is_empty());
        assert!(store.image_for(&held).is_err());
        assert!(store.has_blob(&rooted.digest));
    }

    #[test]
    fn waits_for_leases() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease().unwrap();
        store.write_blob(b"in progress").unwrap();
        assert!(store.try_collect_garbage().unwrap().is_none());
        drop(lease);
        assert_eq!(store.try_collect_garbage().unwrap().unwrap().blobs, 1);
    }

    #[test]
    fn removes_unused_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        store.add_image(&m).unwrap();
        let img = store.image_for(&m).unwrap();
        let snaps = dir.path().join("snapshots/layers");
        let live = snaps.join(img.layers[0].diff_id.digest());
        let dead = snaps.join("00".repeat(32));
        fs::create_dir_all(live.join("etc")).unwrap();
        fs::create_dir_all(dead.join("etc")).unwrap();
        let markers = dir.path().join("snapshots/volatile");
        fs::create_dir_all(&markers).unwrap();
        for m in [&live, &dead] {
            fs::write(markers.join(m.file_name().unwrap()), "boot\n").unwrap();
        }
        let report = store.collect_garbage().unwrap();
        assert_eq!(report.snapshots, 1);
        assert!(live.exists());
        assert!(!dead.exists());
        // the live snapshot keeps its marker, the dead one's goes
        assert!(markers.join(live.file_name().unwrap()).exists());
        assert!(!markers.join(dead.file_name().unwrap()).exists());
    }
}
