//! What a step changed in a plain-copy rootfs (the snapshot fallback where
//! overlayfs is not usable), found by walking the rootfs and the merged
//! view of its lowers side by side:
//!
//! - an entry the lowers do not have is new;
//! - an entry they have is changed when its kind, mode, owner, mtime,
//!   size, device number, link target, extended attributes or content
//!   differ (directories: their own metadata only);
//! - a name the lowers have and the rootfs lacks becomes `.wh.<name>`;
//! - a directory that replaced what the lowers had at its path (something
//!   else than a directory, or a directory deleted and made again) is
//!   followed by `.wh..wh..opq` and compared with nothing below.
//!
//! Entries come out in the order and with the metadata the overlay reader
//! gives, so a step gives the same layer whichever snapshot it ran on.
//!
//! With the [`Baseline`] taken when the copy was made, a file that still
//! has its copied inode and a ctime not past the baseline's fence was not
//! touched by the step and is not read again, and a directory made again
//! is told from the copied one by its inode and birth time. Without one, every file whose metadata
//! matches has its content compared, and a directory deleted and made
//! again gives whiteouts for what it lost instead of an opaque marker.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::changes::{
    Change, DiffReadError, Links, dir_changes, leaf_change, read_err, same_dir_meta, sibling_key,
    whiteout,
};
use crate::overlay::{MergedDir, MergedEntry};

/// What a plain-copy rootfs looked like when the step began.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Baseline {
    /// A ctime (seconds, nanoseconds) at or after every change the copy
    /// itself made, and before the filesystem's clock can date anything
    /// the step does: an entry whose ctime is not past it is untouched.
    pub(crate) fence: (i64, i64),
    /// The inode of every entry of the copy, by path in the rootfs: an
    /// entry is the copied one only if it still has its inode (a rename
    /// onto it need not change the ctime everywhere).
    pub(crate) inodes: HashMap<PathBuf, u64>,
}

/// The ctime of `m` as (seconds, nanoseconds).
pub(crate) fn ctime(m: &Metadata) -> (i64, i64) {
    (m.ctime(), m.ctime_nsec())
}

/// The birth time of `m`, where the filesystem records one.
fn btime(m: &Metadata) -> Option<(i64, i64)> {
    let d = m.created().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((d.as_secs() as i64, i64::from(d.subsec_nanos())))
}

enum Item {
    Here(OsString, Metadata),
    Gone(OsString),
}

struct Comparer<'a> {
    rootfs: &'a Path,
    base: Option<&'a Baseline>,
    links: Links,
    out: Vec<Change>,
}

impl Comparer<'_> {
    fn err(&self, rel: &Path) -> impl FnOnce(io::Error) -> DiffReadError {
        read_err(self.rootfs.join(rel))
    }

    /// Whether the entry `rel` is the copied one, untouched since.
    fn untouched(&self, rel: &Path, m: &Metadata) -> bool {
        self.base
            .is_some_and(|b| ctime(m) <= b.fence && b.inodes.get(rel) == Some(&m.ino()))
    }

    /// Whether the directory `rel` is not the one the copy made.
    fn recreated(&self, rel: &Path, m: &Metadata) -> bool {
        self.base.is_some_and(|b| {
            b.inodes.get(rel) != Some(&m.ino()) || btime(m).is_some_and(|t| t > b.fence)
        })
    }

    fn dir(&mut self, rel: &Path, lower: Option<&MergedDir>) -> Result<(), DiffReadError> {
        let host = self.rootfs.join(rel);
        let dir_meta = std::fs::symlink_metadata(&host).map_err(self.err(rel))?;
        let mut below: BTreeMap<OsString, MergedEntry> = match lower {
            Some(d) => d.entries().map_err(read_err(d.layers[0].clone()))?,
            None => BTreeMap::new(),
        };
        let mut items: Vec<((bool, Vec<u8>), Item)> = Vec::new();
        for entry in std::fs::read_dir(&host).map_err(self.err(rel))? {
            let entry = entry.map_err(self.err(rel))?;
            let name = entry.file_name();
            let meta =
                std::fs::symlink_metadata(entry.path()).map_err(self.err(&rel.join(&name)))?;
            items.push((sibling_key(&name, false), Item::Here(name, meta)));
        }
        let here: std::collections::HashSet<Vec<u8>> =
            items.iter().map(|i| i.0.1.clone()).collect();
        for name in below.keys() {
            if !here.contains(name.as_bytes()) {
                items.push((sibling_key(name, true), Item::Gone(name.clone())));
            }
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, item) in items {
            let (name, meta) = match item {
                Item::Gone(name) => {
                    self.out.push(whiteout(rel, &name, dir_meta.mtime()));
                    continue;
                }
                Item::Here(name, meta) => (name, meta),
            };
            let child = rel.join(&name);
            let path = host.join(&name);
            let lower_entry = below.remove(&name);
            if meta.is_dir() {
                let attrs = crate::xattrs::read(&path).map_err(self.err(&child))?;
                match lower_entry {
                    None => {
                        self.out.extend(dir_changes(&child, &meta, attrs, false));
                        self.dir(&child, None)?;
                    }
                    Some(l) if l.dir.is_none() || self.recreated(&child, &meta) => {
                        self.out.extend(dir_changes(&child, &meta, attrs, true));
                        self.dir(&child, None)?;
                    }
                    Some(l) => {
                        if !same_dir_meta(&meta, &attrs, &l.meta, &l.path) {
                            self.out.extend(dir_changes(&child, &meta, attrs, false));
                        }
                        self.dir(&child, l.dir.as_ref())?;
                    }
                }
                continue;
            }
            let changed = match &lower_entry {
                None => true,
                Some(l) => {
                    !self.untouched(&child, &meta)
                        && differs(&meta, &path, l).map_err(self.err(&child))?
                }
            };
            if changed
                && let Some(c) =
                    leaf_change(&mut self.links, &child, &path, &meta).map_err(self.err(&child))?
            {
                self.out.push(c);
            }
        }
        Ok(())
    }
}

/// Whether the non-directory at `path` (metadata `m`) differs from the
/// lowers' entry `l`.
fn differs(m: &Metadata, path: &Path, l: &MergedEntry) -> io::Result<bool> {
    let b = &l.meta;
    if m.mode() != b.mode()
        || m.uid() != b.uid()
        || m.gid() != b.gid()
        || m.mtime() != b.mtime()
        || m.mtime_nsec() != b.mtime_nsec()
    {
        return Ok(true);
    }
    let ft = m.file_type();
    if ft.is_file() && m.len() != b.len() {
        return Ok(true);
    }
    if !ft.is_file() && !ft.is_symlink() && m.rdev() != b.rdev() {
        return Ok(true);
    }
    if ft.is_symlink() && std::fs::read_link(path)? != std::fs::read_link(&l.path)? {
        return Ok(true);
    }
    if crate::xattrs::read(path)? != crate::xattrs::read(&l.path)? {
        return Ok(true);
    }
    if ft.is_file() {
        return Ok(!same_content(path, &l.path)?);
    }
    Ok(false)
}

/// Whether two files hold the same bytes.
fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fill(&mut fa, &mut ba)?;
        let m = fill(&mut fb, &mut bb)?;
        if ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends; returns the count.
fn fill(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The changes in the plain-copy `rootfs` over `lowers` (topmost first),
/// in layer order.
pub(crate) fn read_changes(
    rootfs: &Path,
    lowers: &[PathBuf],
    base: Option<&Baseline>,
) -> Result<Vec<Change>, DiffReadError> {
    let mut c = Comparer {
        rootfs,
        base,
        links: Links::default(),
        out: Vec::new(),
    };
    let root = (!lowers.is_empty()).then(|| MergedDir::root(lowers));
    c.dir(Path::new(""), root.as_ref())?;
    Ok(c.out)
}
