//! The entries of a layer as the two diff readers find them — from an
//! overlay upper directory (`upper.rs`) or by comparing a plain-copy rootfs
//! with its lowers (`compare.rs`) — and what both share: how a file on the
//! host becomes an entry, hard links, whiteouts and opaque markers.
//!
//! Entries come out in a fixed order: each directory before its children,
//! then its whiteouts (the OCI image spec asks for them before sibling
//! entries), then the other siblings; each group sorted by byte name (a
//! whiteout under its tar name). See [`sibling_key`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::xattrs::{self, Xattrs};

/// Name prefix of a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The kind of a layer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    /// Another name for an earlier entry (relative path in the layer).
    Hardlink(PathBuf),
    Char(u64),
    Block(u64),
    Fifo,
    /// `.wh.<name>` or `.wh..wh..opq`: an empty regular file.
    Whiteout,
}

/// One entry of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// Relative path in the layer (no leading `/`).
    pub path: PathBuf,
    pub kind: Kind,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub xattrs: Xattrs,
    /// Where the content is (regular files).
    pub source: Option<PathBuf>,
}

/// Errors while reading a diff.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path} from the step's changes")]
pub struct DiffReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A `DiffReadError` maker for `path`.
pub(crate) fn read_err(path: PathBuf) -> impl FnOnce(io::Error) -> DiffReadError {
    move |source| DiffReadError { path, source }
}

/// An entry with `meta`'s owner, mode and time, no content.
pub(crate) fn base_change(path: PathBuf, meta: &Metadata, kind: Kind) -> Change {
    Change {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        size: 0,
        xattrs: Vec::new(),
        source: None,
    }
}

/// The whiteout entry `<dir>/.wh.<name>`: an empty file owned by root
/// with no permissions (as overlayfs makes its whiteouts), dated `mtime`.
pub(crate) fn whiteout(dir: &Path, name: &OsStr, mtime: i64) -> Change {
    Change {
        path: dir.join(whiteout_name(name)),
        kind: Kind::Whiteout,
        mode: 0,
        uid: 0,
        gid: 0,
        mtime,
        size: 0,
        xattrs: Vec::new(),
        source: None,
    }
}

/// `.wh.<name>`.
pub(crate) fn whiteout_name(name: &OsStr) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(
        &[WHITEOUT_PREFIX.as_bytes(), name.as_bytes()].concat(),
    ))
}

/// The sort key of a directory's child in the layer: whiteouts (by their
/// `.wh.` name) before every other sibling, whatever bytes the names start
/// with (`+x` sorts before `.wh.y` by bytes alone), so a reader meets the
/// deletions before anything the layer puts beside them, as the OCI image
/// spec asks. A directory's opaque marker comes first of all (it is
/// written with the directory itself, see [`dir_changes`]).
pub(crate) fn sibling_key(name: &OsStr, is_whiteout: bool) -> (bool, Vec<u8>) {
    if is_whiteout {
        (false, whiteout_name(name).into_os_string().into_vec())
    } else {
        (true, name.as_bytes().to_vec())
    }
}

/// The directory entry for `dir` (whose xattrs are `attrs`), followed by
/// its opaque marker when it replaced what the lowers had there.
pub(crate) fn dir_changes(rel: &Path, meta: &Metadata, attrs: Xattrs, opaque: bool) -> Vec<Change> {
    let mut c = base_change(rel.to_path_buf(), meta, Kind::Dir);
    c.xattrs = attrs;
    let mut out = vec![c];
    if opaque {
        out.push(base_change(rel.join(OPAQUE_MARKER), meta, Kind::Whiteout));
    }
    out
}

/// Whether a directory's own metadata (not its entries) is the same in
/// `a` (with attributes `a_attrs`) and `b` (read from `b_path`).
pub(crate) fn same_dir_meta(a: &Metadata, a_attrs: &Xattrs, b: &Metadata, b_path: &Path) -> bool {
    b.is_dir()
        && a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && xattrs::read(b_path).ok().as_ref() == Some(a_attrs)
}

/// Hard links seen so far in one layer: `(dev, ino)` → the first path
/// written.
#[derive(Default)]
pub(crate) struct Links(HashMap<(u64, u64), PathBuf>);

/// The entry for the non-directory `host` (layer path `rel`, metadata
/// `meta`): a file (its content read when the tar is written), symlink,
/// device or FIFO — or a hard link to an earlier entry of the same layer.
/// Sockets have no place in a layer: `None`.
pub(crate) fn leaf_change(
    links: &mut Links,
    rel: &Path,
    host: &Path,
    meta: &Metadata,
) -> io::Result<Option<Change>> {
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        Kind::Symlink(std::fs::read_link(host)?)
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_char_device() {
        Kind::Char(meta.rdev())
    } else if ft.is_block_device() {
        Kind::Block(meta.rdev())
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        return Ok(None);
    };
    let mut c = base_change(rel.to_path_buf(), meta, kind);
    c.xattrs = xattrs::read(host)?;
    if c.kind == Kind::File {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.0.get(&key) {
                c.kind = Kind::Hardlink(first.clone());
                return Ok(Some(c));
            }
            links.0.insert(key, rel.to_path_buf());
        }
        c.size = meta.len();
        c.source = Some(host.to_path_buf());
    }
    Ok(Some(c))
}
