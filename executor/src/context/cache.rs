//! The per-root file-hash cache: the sha256 of a file's bytes, remembered
//! under (device, inode) and valid while size, mtime and ctime (in
//! nanoseconds) are unchanged, so a rebuild costs one `stat` per context
//! file. Content hashes only: a `touch` or a fresh clone changes the
//! validation fields, the file is read again, and its hash — hence the cache
//! key of the step — is the same.
//!
//! On disk: `<kiln root>/cache/filehash-v1.bin`, a fixed-size record file
//! (magic, then 72-byte records), read once and rewritten atomically (temp +
//! fsync + rename) under an `flock` on `filehash.lock` after merging with
//! what other kiln processes wrote meanwhile. A file whose ctime is less
//! than [`RACY_WINDOW`] before the scan started is hashed but not
//! remembered: it could still change within the filesystem's timestamp
//! granularity without its stat changing.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::fileop::FileOpError;

const MAGIC: &[u8; 8] = b"KILNFH01";
const RECORD: usize = 8 * 5 + 32;
/// Most entries kept; beyond it, entries not used by this process go first.
const MAX_ENTRIES: usize = 1_000_000;
/// Files changed this recently are not remembered.
pub const RACY_WINDOW: Duration = Duration::from_secs(1);

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ctime_ns: i64,
}

impl Stamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    stamp: Stamp,
    sha256: [u8; 32],
    used: bool,
}

/// The file-hash cache of one kiln root, shared by every checksum of a
/// process (safe to use from several threads). [`save`](Self::save) writes
/// what was learnt.
#[derive(Debug)]
pub struct FileHashCache {
    dir: Option<PathBuf>,
    entries: Mutex<HashMap<(u64, u64), Entry>>,
    /// Entries added or replaced since load.
    fresh: Mutex<HashMap<(u64, u64), Entry>>,
    /// Files changed after this instant are not remembered.
    trust_before_ns: i64,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn parse(bytes: &[u8]) -> HashMap<(u64, u64), Entry> {
    let mut out = HashMap::new();
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return out;
    };
    for r in body.chunks_exact(RECORD) {
        let u = |i: usize| u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&r[40..72]);
        out.insert(
            (u(0), u(1)),
            Entry {
                stamp: Stamp {
                    size: u(2),
                    mtime_ns: u(3) as i64,
                    ctime_ns: u(4) as i64,
                },
                sha256,
                used: false,
            },
        );
    }
    out
}

fn encode(entries: &HashMap<(u64, u64), Entry>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + entries.len() * RECORD);
    out.extend_from_slice(MAGIC);
    for ((dev, ino), e) in entries {
        for v in [
            *dev,
            *ino,
            e.stamp.size,
            e.stamp.mtime_ns as u64,
            e.stamp.ctime_ns as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&e.sha256);
    }
    out
}

fn read_file(path: &Path) -> Result<Vec<u8>, FileOpError> {
    match File::open(path) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(FileOpError::io("read", path))?;
            Ok(buf)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FileOpError::io("open", path)(e)),
    }
}

impl FileHashCache {
    /// Loads the cache of the kiln root `root` (creating `cache/` when
    /// needed). A missing or unreadable cache file starts empty.
    pub fn open(root: &Path) -> Result<FileHashCache, FileOpError> {
        let dir = root.join("cache");
        std::fs::create_dir_all(&dir).map_err(FileOpError::io("create directory", &dir))?;
        let bytes = read_file(&dir.join("filehash-v1.bin"))?;
        Ok(FileHashCache {
            entries: Mutex::new(parse(&bytes)),
            dir: Some(dir),
            fresh: Mutex::new(HashMap::new()),
            trust_before_ns: now_ns() - RACY_WINDOW.as_nanos() as i64,
        })
    }

    /// A cache that lives only in memory (tests, `--no-cache`).
    pub fn in_memory() -> FileHashCache {
        FileHashCache {
            dir: None,
            entries: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            trust_before_ns: now_ns() - RACY_WINDOW.as_nanos() as i64,
        }
    }

    /// Number of remembered files.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remembered hash of the file `m` describes, if still valid.
    pub(crate) fn get(&self, m: &std::fs::Metadata) -> Option<[u8; 32]> {
        let mut entries = self.entries.lock().ok()?;
        let e = entries.get_mut(&(m.dev(), m.ino()))?;
        if e.stamp != Stamp::of(m) {
            return None;
        }
        e.used = true;
        Some(e.sha256)
    }

    /// Remembers the hash of the file `m` describes, unless it changed too
    /// recently to be trusted.
    pub(crate) fn put(&self, m: &std::fs::Metadata, stamp_before: Stamp, sha256: [u8; 32]) {
        let stamp = Stamp::of(m);
        if stamp != stamp_before
            || stamp.ctime_ns >= self.trust_before_ns
            || stamp.mtime_ns >= self.trust_before_ns
        {
            return;
        }
        let e = Entry {
            stamp,
            sha256,
            used: true,
        };
        let key = (m.dev(), m.ino());
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, e);
        }
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.insert(key, e);
        }
    }

    /// Writes what this process learnt, merged with the file as other
    /// processes left it. Does nothing for an in-memory cache or when
    /// nothing was learnt.
    pub fn save(&self) -> Result<(), FileOpError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let fresh = match self.fresh.lock() {
            Ok(f) if !f.is_empty() => f.clone(),
            _ => return Ok(()),
        };
        let lock_path = dir.join("filehash.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(FileOpError::io("open", &lock_path))?;
        let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| FileOpError::io("lock", &lock_path)(e.into()))?;
        let path = dir.join("filehash-v1.bin");
        let mut merged = parse(&read_file(&path)?);
        let used: Vec<(u64, u64)> = self
            .entries
            .lock()
            .map(|e| e.iter().filter(|(_, v)| v.used).map(|(k, _)| *k).collect())
            .unwrap_or_default();
        for (k, v) in &fresh {
            merged.insert(*k, *v);
        }
        if merged.len() > MAX_ENTRIES {
            let keep: std::collections::HashSet<(u64, u64)> = used.into_iter().collect();
            let excess = merged.len() - MAX_ENTRIES;
            let drop: Vec<(u64, u64)> = merged
                .keys()
                .filter(|k| !keep.contains(k))
                .take(excess)
                .copied()
                .collect();
            for k in drop {
                merged.remove(&k);
            }
        }
        let tmp = dir.join(format!("filehash-v1.bin.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&encode(&merged))?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(FileOpError::io("write", &path)(e));
        }
        if let Ok(mut f) = self.fresh.lock() {
            f.clear();
        }
        Ok(())
    }
}

/// A copy of `c` that trusts files however recently they changed (tests
/// write their files just before hashing them).
#[cfg(test)]
pub(crate) fn tests_trusting(c: FileHashCache) -> FileHashCache {
    FileHashCache {
        trust_before_ns: i64::MAX,
        ..c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        // Old enough to be trusted: ctime cannot be set, so trust the
        // cache's own clock instead (see `trusting`).
        p
    }

    use super::tests_trusting as trusting;

    #[test]
    fn remembers_and_validates_by_stat() {
        let t = tempfile::tempdir().unwrap();
        let p = old_file(t.path(), "f", b"one");
        let c = trusting(FileHashCache::in_memory());
        let m = std::fs::metadata(&p).unwrap();
        assert!(c.get(&m).is_none());
        c.put(&m, Stamp::of(&m), [7; 32]);
        assert_eq!(c.get(&m), Some([7; 32]));
        std::fs::write(&p, b"two!").unwrap();
        let m2 = std::fs::metadata(&p).unwrap();
        assert!(c.get(&m2).is_none(), "size/mtime/ctime change invalidates");
    }

    #[test]
    fn recent_files_are_not_remembered() {
        let t = tempfile::tempdir().unwrap();
        let p = old_file(t.path(), "f", b"one");
        let c = FileHashCache::in_memory();
        let m = std::fs::metadata(&p).unwrap();
        c.put(&m, Stamp::of(&m), [1; 32]);
        assert!(c.get(&m).is_none());
    }

    #[test]
    fn saves_atomically_and_merges_between_processes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let a = old_file(t.path(), "a", b"a");
        let b = old_file(t.path(), "b", b"b");
        let ma = std::fs::metadata(&a).unwrap();
        let mb = std::fs::metadata(&b).unwrap();
        let c1 = trusting(FileHashCache::open(&root).unwrap());
        let c2 = trusting(FileHashCache::open(&root).unwrap());
        c1.put(&ma, Stamp::of(&ma), [1; 32]);
        c2.put(&mb, Stamp::of(&mb), [2; 32]);
        c1.save().unwrap();
        c2.save().unwrap();
        let c3 = FileHashCache::open(&root).unwrap();
        assert_eq!(c3.get(&ma), Some([1; 32]));
        assert_eq!(c3.get(&mb), Some([2; 32]));
        assert_eq!(c3.len(), 2);
        let leftovers: Vec<_> = std::fs::read_dir(root.join("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn corrupt_file_starts_empty() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("cache")).unwrap();
        std::fs::write(t.path().join("cache/filehash-v1.bin"), b"garbage").unwrap();
        assert!(FileHashCache::open(t.path()).unwrap().is_empty());
    }
}
