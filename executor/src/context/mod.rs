//! Content checksums of what a COPY/ADD selects, for its cache key: the
//! context (or another tree) is read in place — no tarball, no copy — and
//! exactly the paths the copy would write are covered (after
//! `.dockerignore`, `--exclude`, `--parents`, wildcards), each with its
//! path, type, permission bits, owner as it will be written, link target,
//! extended attributes, device number and the sha256 of its bytes. Never
//! mtimes: a `touch` or a fresh clone keeps the checksum.
//!
//! File bytes are hashed in parallel (largest first) and remembered in the
//! root's [`FileHashCache`], so a rebuild with an unchanged context costs a
//! `stat` (and an `llistxattr`) per file.

mod cache;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

pub use cache::{FileHashCache, RACY_WINDOW};

use crate::fileop::plan::{self, Item};
use crate::fileop::select::{self, Event};
use crate::fileop::{Chmod, CopyRequest, FileOpError, Owner, Source, meta};

/// Schema tag of the checksum: bump when the serialisation changes.
const SCHEMA: &[u8] = b"kiln-context-checksum-v1\0";

/// The checksum of a COPY/ADD's sources and what computing it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextChecksum {
    /// `sha256:` digest over every selected path, in copy order.
    pub digest: Digest,
    /// Paths covered (files, directories, links).
    pub entries: u64,
    /// Regular files whose bytes had to be read (file-hash cache misses).
    pub files_read: u64,
    /// Bytes read for them.
    pub bytes_read: u64,
}

/// One covered path: its metadata serialised, and for a regular file the
/// slot of its content hash.
struct Record {
    header: Vec<u8>,
    file: Option<FileSlot>,
}

struct FileSlot {
    path: PathBuf,
    meta: std::fs::Metadata,
    sha256: Option<[u8; 32]>,
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

fn type_tag(m: &std::fs::Metadata) -> u8 {
    let ft = m.file_type();
    if ft.is_dir() {
        b'd'
    } else if ft.is_file() {
        b'f'
    } else if ft.is_symlink() {
        b'l'
    } else if ft.is_char_device() {
        b'c'
    } else if ft.is_block_device() {
        b'b'
    } else if ft.is_fifo() {
        b'p'
    } else {
        b's'
    }
}

/// Computes the content checksum of what `req` would copy. `req.dest`,
/// `workdir` and `timestamp` do not enter it (the solver keys the
/// instruction's definition itself); `--chown` and `--chmod` do, as the
/// owner and mode written.
pub fn checksum(
    req: &CopyRequest<'_>,
    cache: &FileHashCache,
) -> Result<ContextChecksum, FileOpError> {
    let plan = plan::plan(req)?;
    let mut records: Vec<Record> = Vec::new();
    for planned in &plan.items {
        let mut head = Vec::new();
        head.push(b'S');
        field(&mut head, &(planned.source as u64).to_le_bytes());
        match &req.sources[planned.source] {
            Source::Path(p) => {
                head.push(b'p');
                field(&mut head, p.as_bytes());
            }
            Source::Inline(f) => {
                head.push(b'i');
                field(&mut head, f.name.as_bytes());
            }
            Source::Download(d) => {
                head.push(b'u');
                field(&mut head, d.url.as_bytes());
                field(&mut head, d.file_name.as_bytes());
            }
        }
        match &planned.item {
            Item::Inline(f) => {
                field(&mut head, &Sha256::digest(&f.content));
                let mode = req.options.mode.map_or(f.mode, |c| c.apply(f.mode, false));
                head.extend_from_slice(&mode.to_le_bytes());
                records.push(Record {
                    header: head,
                    file: None,
                });
            }
            Item::Tree { m, .. } => {
                field(&mut head, m.resolved.rel().as_bytes());
                field(&mut head, m.name.as_bytes());
                records.push(Record {
                    header: head,
                    file: None,
                });
                let filters = plan.filters(&planned.item);
                let owner = planned.owner;
                let mode = req.options.mode;
                select::walk(m, &filters, &mut |ev| {
                    let e = match ev {
                        Event::EnterDir(e) | Event::Leaf(e) => e,
                        Event::LeaveDir(_) => return Ok(()),
                    };
                    records.push(record(e, owner, mode)?);
                    Ok(())
                })?;
            }
        }
    }

    // Content hashes: from the cache, else read (in parallel).
    let mut todo: Vec<usize> = Vec::new();
    for (i, r) in records.iter_mut().enumerate() {
        if let Some(slot) = &mut r.file {
            match cache.get(&slot.meta) {
                Some(h) => slot.sha256 = Some(h),
                None => todo.push(i),
            }
        }
    }
    let bytes_read = AtomicU64::new(0);
    hash_files(&mut records, &mut todo, cache, &bytes_read)?;

    let mut h = Sha256::new();
    h.update(SCHEMA);
    let mut entries = 0u64;
    for r in &records {
        h.update(&r.header);
        if let Some(slot) = &r.file {
            let sum = slot.sha256.ok_or_else(|| {
                FileOpError::io("hash", &slot.path)(std::io::Error::other("file was not hashed"))
            })?;
            h.update(sum);
        }
        if r.header.first() == Some(&b'E') {
            entries += 1;
        }
    }
    let digest = Digest::from_str(&format!("sha256:{}", hex::encode(h.finalize())))
        .expect("a sha256 hex digest is a valid digest");
    let out = ContextChecksum {
        digest,
        entries,
        files_read: todo.len() as u64,
        bytes_read: bytes_read.into_inner(),
    };
    tracing::debug!(digest = %out.digest, entries = out.entries, files_read = out.files_read, bytes_read = out.bytes_read, "context checksum");
    Ok(out)
}

/// Serialises one walked path.
fn record(
    e: &select::Entry<'_>,
    owner: Option<Owner>,
    mode: Option<&Chmod>,
) -> Result<Record, FileOpError> {
    let m = e.meta;
    let mut head = Vec::with_capacity(96);
    head.push(b'E');
    head.push(type_tag(m));
    field(&mut head, e.sub_raw.as_os_str().as_bytes());
    let owner = owner.unwrap_or(Owner {
        uid: m.uid(),
        gid: m.gid(),
    });
    let perm = if m.file_type().is_symlink() {
        0o777
    } else {
        let own = m.mode() & 0o7777;
        mode.map_or(own, |c| c.apply(own, m.is_dir()))
    };
    head.extend_from_slice(&perm.to_le_bytes());
    head.extend_from_slice(&owner.uid.to_le_bytes());
    head.extend_from_slice(&owner.gid.to_le_bytes());
    let ft = m.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(e.abs).map_err(FileOpError::io("read link", e.abs))?;
        field(&mut head, target.as_os_str().as_bytes());
    }
    if ft.is_char_device() || ft.is_block_device() {
        head.extend_from_slice(&m.rdev().to_le_bytes());
    }
    let xattrs = meta::read_xattrs(e.abs)?;
    head.extend_from_slice(&(xattrs.len() as u64).to_le_bytes());
    for (k, v) in &xattrs {
        field(&mut head, k.as_bytes());
        field(&mut head, v);
    }
    let file = ft.is_file().then(|| FileSlot {
        path: e.abs.to_path_buf(),
        meta: m.clone(),
        sha256: None,
    });
    Ok(Record { header: head, file })
}

/// Hashes the files of `records` listed in `todo` on a few threads,
/// largest first, remembering results in `cache`.
fn hash_files(
    records: &mut [Record],
    todo: &mut [usize],
    cache: &FileHashCache,
    bytes_read: &AtomicU64,
) -> Result<(), FileOpError> {
    if todo.is_empty() {
        return Ok(());
    }
    todo.sort_by_key(|&i| {
        std::cmp::Reverse(records[i].file.as_ref().map(|f| f.meta.size()).unwrap_or(0))
    });
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
        .min(todo.len());
    let next = AtomicUsize::new(0);
    let jobs: Vec<(usize, PathBuf, std::fs::Metadata)> = todo
        .iter()
        .map(|&i| {
            let f = records[i]
                .file
                .as_ref()
                .expect("todo lists file records only");
            (i, f.path.clone(), f.meta.clone())
        })
        .collect();
    type Hashed = Result<Vec<(usize, [u8; 32])>, FileOpError>;
    let results: Vec<Hashed> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some((i, path, m)) = jobs.get(k) else {
                            return Ok(done);
                        };
                        let (sum, n) = hash_one(path, m, cache, &mut buf)?;
                        bytes_read.fetch_add(n, Ordering::Relaxed);
                        done.push((*i, sum));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(FileOpError::io("hash", "context")(std::io::Error::other(
                        "hashing thread panicked",
                    )))
                })
            })
            .collect()
    });
    for r in results {
        for (i, sum) in r? {
            if let Some(slot) = &mut records[i].file {
                slot.sha256 = Some(sum);
            }
        }
    }
    Ok(())
}

/// Reads and hashes one file; remembers the result when the file did not
/// change while it was read.
fn hash_one(
    path: &std::path::Path,
    walked: &std::fs::Metadata,
    cache: &FileHashCache,
    buf: &mut [u8],
) -> Result<([u8; 32], u64), FileOpError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(FileOpError::io("open", path))?;
    let before = cache::Stamp::of(walked);
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let r = f.read(buf).map_err(FileOpError::io("read", path))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    let sum: [u8; 32] = h.finalize().into();
    if let Ok(after) = f.metadata()
        && after.ino() == walked.ino()
        && after.dev() == walked.dev()
    {
        cache.put(&after, before, sum);
    }
    Ok((sum, n))
}

#[cfg(test)]
mod tests;
