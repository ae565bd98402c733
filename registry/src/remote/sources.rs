//! Where blobs came from: `registry/repository` entries per blob, kept when
//! a blob is pulled or pushed, so a later push to another repository of the
//! same registry can ask for a cross-repository mount instead of uploading.
//!
//! One small file per blob under `<root>/distribution/sources/<hex>`, one
//! `registry/repository` per line, rewritten atomically (temp in the store's
//! `tmp/`, fsync, rename). It is a hint: a lost line costs an upload, a
//! stale one a refused mount.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use oci_spec::image::Digest;

use crate::store::{Store, StoreError};

/// Most sources remembered per blob (the newest are kept).
const MAX_SOURCES: usize = 16;

fn path(store: &Store, digest: &Digest) -> PathBuf {
    store
        .root()
        .join("distribution/sources")
        .join(digest.digest())
}

/// The `(registry, repository)` pairs a blob is known to exist in.
pub(crate) fn lookup(store: &Store, digest: &Digest) -> Vec<(String, String)> {
    let Ok(text) = fs::read_to_string(path(store, digest)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_once('/'))
        .map(|(r, p)| (r.to_string(), p.to_string()))
        .collect()
}

/// Remembers that the blob exists in `registry/repository`.
pub(crate) fn record(
    store: &Store,
    digest: &Digest,
    registry: &str,
    repository: &str,
) -> Result<(), StoreError> {
    let mut entries = lookup(store, digest);
    if entries
        .iter()
        .any(|(r, p)| r == registry && p == repository)
    {
        return Ok(());
    }
    entries.push((registry.to_string(), repository.to_string()));
    if entries.len() > MAX_SOURCES {
        entries.drain(..entries.len() - MAX_SOURCES);
    }
    let mut text = String::new();
    for (r, p) in &entries {
        text.push_str(r);
        text.push('/');
        text.push_str(p);
        text.push('\n');
    }
    let dest = path(store, digest);
    let dir = dest.parent().expect("sources path has a parent");
    fs::create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
    let tmp = store
        .tmp_dir()
        .join(format!("{}-source-{}", std::process::id(), digest.digest()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
        f.write_all(text.as_bytes())
            .map_err(StoreError::io("write", &tmp))?;
        f.sync_all().map_err(StoreError::io("fsync", &tmp))?;
        fs::rename(&tmp, &dest).map_err(StoreError::io("rename into place", &dest))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Another repository of `registry` that has the blob, for a mount.
pub(crate) fn mount_source(
    store: &Store,
    digest: &Digest,
    registry: &str,
    repository: &str,
) -> Option<String> {
    lookup(store, digest)
        .into_iter()
        .rev()
        .find(|(r, p)| r == registry && p != repository)
        .map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_sources_and_finds_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.write_blob(b"x").unwrap().digest;
        assert!(lookup(&store, &d).is_empty());
        record(&store, &d, "127.0.0.1:5000", "a/b").unwrap();
        record(&store, &d, "127.0.0.1:5000", "a/b").unwrap();
        record(&store, &d, "other.io", "c").unwrap();
        assert_eq!(lookup(&store, &d).len(), 2);
        assert_eq!(
            mount_source(&store, &d, "127.0.0.1:5000", "x/y").as_deref(),
            Some("a/b")
        );
        assert_eq!(mount_source(&store, &d, "127.0.0.1:5000", "a/b"), None);
        assert_eq!(mount_source(&store, &d, "third.io", "a/b"), None);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
