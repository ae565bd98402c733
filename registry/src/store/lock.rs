//! Inter-process locks on files under `<root>/locks/` (flock(2) through
//! `std::fs::File::lock`), and the GC lease built on them.
//!
//! - `locks/meta.lock` (exclusive): held while `meta/images.json` (images,
//!   tags, holds) is read, changed and atomically replaced, so concurrent
//!   processes never lose an update. Readers need no lock: the document is
//!   always replaced whole by rename.
//! - `locks/gc.lock`: every [`Lease`] holds it shared; garbage collection
//!   holds it exclusive. See [`Lease`].
//! - `locks/layer-<hex>.lock` (exclusive): held while one layer is unpacked,
//!   so two processes never do the same work twice.
//!
//! A lock is released when its file is closed, also when the process dies,
//! so a SIGKILL never leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::StoreError;

/// A held lock; dropping it unlocks.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    fn open(path: &Path) -> Result<File, StoreError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("open lock file", path))
    }

    /// Waits for an exclusive lock on `path` (created when missing).
    pub(crate) fn exclusive(path: &Path) -> Result<FileLock, StoreError> {
        let file = Self::open(path)?;
        file.lock().map_err(StoreError::io("lock", path))?;
        Ok(FileLock { _file: file })
    }

    /// Waits for a shared lock on `path` (created when missing).
    pub(crate) fn shared(path: &Path) -> Result<FileLock, StoreError> {
        let file = Self::open(path)?;
        file.lock_shared().map_err(StoreError::io("lock", path))?;
        Ok(FileLock { _file: file })
    }

    /// Takes an exclusive lock on `path` only if nobody holds it.
    pub(crate) fn try_exclusive(path: &Path) -> Result<Option<FileLock>, StoreError> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io("lock", path)(e)),
        }
    }
}

/// Protection of a write in progress against garbage collection.
///
/// Any operation that writes blobs and then makes something refer to them
/// (a manifest, a tag, an image record, a hold, a GC root) holds a lease from
/// before its first blob write until the reference is recorded. A lease is a
/// shared flock on `locks/gc.lock`; garbage collection takes that lock
/// exclusively, so it only ever runs while no write is in progress, and sees
/// every reference a finished write recorded. Store methods that record
/// references ([`Store::tag`](super::Store::tag), holds, roots, unpacking)
/// take their own lease; callers that write blobs first take one with
/// [`Store::lease`](super::Store::lease) and keep it until their image is
/// tagged or recorded. Leases nest freely (each is its own open file).
#[derive(Debug)]
pub struct Lease {
    _lock: FileLock,
}

impl Lease {
    pub(crate) fn acquire(root: &Path) -> Result<Lease, StoreError> {
        Ok(Lease {
            _lock: FileLock::shared(&root.join("locks/gc.lock"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = FileLock::shared(&p).unwrap();
        let _b = FileLock::shared(&p).unwrap();
        assert!(FileLock::try_exclusive(&p).unwrap().is_none());
        drop(a);
        assert!(FileLock::try_exclusive(&p).unwrap().is_none());
        drop(_b);
        let _ex = FileLock::try_exclusive(&p).unwrap().unwrap();
        assert!(FileLock::try_exclusive(&p).unwrap().is_none());
    }
}
