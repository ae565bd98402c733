//! Writing one blob: temp file, hash while writing, verify, fsync, rename.
//!
//! Large blobs (layers of hundreds of MB) start their writeback while they
//! are written: every [`WRITEBACK_CHUNK`] bytes the kernel is asked to
//! begin writing the chunk out (`sync_file_range(SYNC_FILE_RANGE_WRITE)`,
//! which does not wait), so the disk works while the layer is still being
//! archived and hashed and the final fsync only waits for the tail. The
//! fsync before the rename stays the durability guarantee.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::{Store, StoreError, fsync_dir, sha256_digest};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Bytes written between two requests to start writeback.
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// A committed blob: its digest and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// A blob being written. Bytes go to a temp file in the store's `tmp/` and
/// through sha256 as they are written; [`BlobWriter::commit`] checks the
/// digest, fsyncs and renames the file into `blobs/`. Dropping a writer
/// without committing removes the temp file, so an error never leaves a
/// partial blob behind.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    size: u64,
    /// Bytes whose writeback has been started.
    flushed: u64,
}

impl BlobWriter {
    pub(super) fn create(store: &Store) -> Result<BlobWriter, StoreError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = store
            .tmp_dir()
            .join(format!("{}-{n}-{nanos:x}.blob", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(StoreError::io("create", &tmp))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            blobs: store.root().join("blobs/sha256"),
            hasher: Sha256::new(),
            size: 0,
            flushed: 0,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finishes the blob. With `expected`, a different digest is an error and
    /// nothing is stored. When the blob already exists the new copy is
    /// discarded (content addressing makes them identical).
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<BlobInfo, StoreError> {
        let digest = sha256_digest(&self.hasher.clone().finalize());
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let file = self.file.take().expect("commit consumes the writer");
        file.sync_all()
            .map_err(StoreError::io("fsync", &self.tmp))?;
        drop(file);
        let dest = self.blobs.join(digest.digest());
        if dest.exists() {
            let _ = fs::remove_file(&self.tmp);
        } else {
            fs::rename(&self.tmp, &dest).map_err(StoreError::io("rename into place", &dest))?;
            fsync_dir(&self.blobs)?;
        }
        Ok(BlobInfo {
            digest,
            size: self.size,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if self.size - self.flushed >= WRITEBACK_CHUNK {
            start_writeback(file, self.flushed, self.size - self.flushed);
            self.flushed = self.size;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to
/// disk without waiting. Only a hint: failures are ignored (the fsync at
/// commit is what counts).
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a file descriptor this writer owns; no
    // memory is passed.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::str::FromStr;

    #[test]
    fn a_blob_past_several_writeback_chunks_commits_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let chunk: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut w = store.blob_writer().unwrap();
        let mut all = Vec::new();
        while (all.len() as u64) < 2 * WRITEBACK_CHUNK + 5 {
            w.write_all(&chunk).unwrap();
            all.extend_from_slice(&chunk);
        }
        assert!(w.flushed >= WRITEBACK_CHUNK && w.flushed < w.size());
        let info = w.commit(None).unwrap();
        assert_eq!(info.digest, sha256_digest(&Sha256::digest(&all)));
        assert_eq!(info.size, all.len() as u64);
        let mut back = Vec::new();
        store
            .open_blob(&info.digest)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == all);
    }

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let info = store.write_blob(b"hello").unwrap();
        assert_eq!(
            info.digest.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(info.size, 5);
        assert!(store.has_blob(&info.digest));
        let mut s = String::new();
        store
            .open_blob(&info.digest)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello");
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"corrupt").unwrap();
        let want = Digest::from_str(
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        )
        .unwrap();
        let err = w.commit(Some(&want)).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!store.has_blob(&want));
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn stale_temp_files_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // no pid is ever this large (pid_max <= 2^22)
        let stale = store.tmp_dir().join("999999999-0-0.blob");
        fs::write(&stale, b"half").unwrap();
        let live = store
            .tmp_dir()
            .join(format!("{}-x.blob", std::process::id()));
        fs::write(&live, b"busy").unwrap();
        Store::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
    }
}
