//! What a step changed, read from its overlay upper directory alone (no
//! walk of the whole rootfs): new and changed entries, deletions (overlay's
//! 0/0 character devices) as `.wh.<name>`, directories that replaced a
//! lower one (`trusted.overlay.opaque=y`) followed by `.wh..wh..opq`.
//! Directories that overlayfs merely copied up, unchanged, are left out.
//! Entries come out in a fixed order: each directory before its children,
//! siblings sorted by their byte names (a whiteout under its tar name).

use std::ffi::{CString, OsStr, OsString};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

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
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    /// Where the content is (regular files).
    pub source: Option<PathBuf>,
}

/// Reads the extended attributes of `path` (not following symlinks),
/// sorted by name, without overlayfs's own.
pub(crate) fn xattrs(path: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path; a null buffer asks for the size.
    let len = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if len < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; len as usize];
    // SAFETY: the buffer has the size just reported.
    let len = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(len as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let cname = CString::new(name).map_err(io::Error::other)?;
        let value = get_xattr(&c, &cname)?.unwrap_or_default();
        out.push((OsStr::from_bytes(name).to_os_string(), value));
    }
    out.sort();
    Ok(out)
}

fn get_xattr(path: &CString, name: &CString) -> io::Result<Option<Vec<u8>>> {
    // SAFETY: NUL-terminated strings; a null buffer asks for the size.
    let len = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    if len < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    let mut value = vec![0u8; len as usize];
    // SAFETY: the buffer has the size just reported.
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    value.truncate(len as usize);
    Ok(Some(value))
}

fn is_opaque(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| {
            let name = CString::new(*n).unwrap_or_default();
            matches!(get_xattr(&c, &name), Ok(Some(v)) if v == b"y")
        })
}

/// An overlay whiteout: a character device 0/0.
fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Errors while reading a diff.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path} from the step's changes")]
pub struct DiffReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

struct Walker<'a> {
    upper: &'a Path,
    lowers: &'a [PathBuf],
    /// (dev, ino) → first path, for hard links.
    links: std::collections::HashMap<(u64, u64), PathBuf>,
    out: Vec<Change>,
}

fn base_change(path: PathBuf, meta: &Metadata, kind: Kind) -> Change {
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

impl Walker<'_> {
    fn err(&self, rel: &Path) -> impl FnOnce(io::Error) -> DiffReadError {
        let path = self.upper.join(rel);
        move |source| DiffReadError { path, source }
    }

    /// The metadata of `rel` in the topmost lower layer that has it.
    fn lower(&self, rel: &Path) -> Option<Metadata> {
        self.lowers.iter().find_map(|l| {
            let m = std::fs::symlink_metadata(l.join(rel)).ok()?;
            (!is_whiteout(&m)).then_some(m)
        })
    }

    fn dir(&mut self, rel: &Path) -> Result<(), DiffReadError> {
        let host = self.upper.join(rel);
        let mut names: Vec<(Vec<u8>, OsString, Metadata)> = Vec::new();
        for entry in std::fs::read_dir(&host).map_err(self.err(rel))? {
            let entry = entry.map_err(self.err(rel))?;
            let name = entry.file_name();
            let meta =
                std::fs::symlink_metadata(entry.path()).map_err(self.err(&rel.join(&name)))?;
            let key = if is_whiteout(&meta) {
                [WHITEOUT_PREFIX.as_bytes(), name.as_bytes()].concat()
            } else {
                name.as_bytes().to_vec()
            };
            names.push((key, name, meta));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, name, meta) in names {
            let child = rel.join(&name);
            let path = self.upper.join(&child);
            if is_whiteout(&meta) {
                let mut c = base_change(rel.join(OsStr::from_bytes(&key)), &meta, Kind::Whiteout);
                c.mode &= 0o7777;
                self.out.push(c);
                continue;
            }
            let ft = meta.file_type();
            if ft.is_dir() {
                let opaque = is_opaque(&path);
                let attrs = xattrs(&path).map_err(self.err(&child))?;
                let unchanged = !opaque
                    && self.lower(&child).is_some_and(|l| {
                        l.is_dir()
                            && l.mode() == meta.mode()
                            && l.uid() == meta.uid()
                            && l.gid() == meta.gid()
                            && l.mtime() == meta.mtime()
                            && l.mtime_nsec() == meta.mtime_nsec()
                            && xattrs(&self.lowers_path(&child)).ok().as_ref() == Some(&attrs)
                    });
                if !unchanged {
                    let mut c = base_change(child.clone(), &meta, Kind::Dir);
                    c.xattrs = attrs;
                    self.out.push(c);
                    if opaque {
                        let mut o = base_change(child.join(OPAQUE_MARKER), &meta, Kind::Whiteout);
                        o.xattrs = Vec::new();
                        self.out.push(o);
                    }
                }
                self.dir(&child)?;
                continue;
            }
            let kind = if ft.is_symlink() {
                Kind::Symlink(std::fs::read_link(&path).map_err(self.err(&child))?)
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_char_device() {
                Kind::Char(meta.rdev())
            } else if ft.is_block_device() {
                Kind::Block(meta.rdev())
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                // Sockets have no place in a layer.
                continue;
            };
            let mut c = base_change(child.clone(), &meta, kind);
            c.xattrs = xattrs(&path).map_err(self.err(&child))?;
            if c.kind == Kind::File {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        c.kind = Kind::Hardlink(first.clone());
                        self.out.push(c);
                        continue;
                    }
                    self.links.insert(key, child.clone());
                }
                c.size = meta.len();
                c.source = Some(path);
            }
            self.out.push(c);
        }
        Ok(())
    }

    fn lowers_path(&self, rel: &Path) -> PathBuf {
        self.lowers
            .iter()
            .map(|l| l.join(rel))
            .find(|p| std::fs::symlink_metadata(p).is_ok())
            .unwrap_or_else(|| PathBuf::from("/nonexistent"))
    }
}

/// The changes in `upper` over `lowers` (topmost first), in layer order.
pub(crate) fn read_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, DiffReadError> {
    let mut w = Walker {
        upper,
        lowers,
        links: Default::default(),
        out: Vec::new(),
    };
    w.dir(Path::new(""))?;
    Ok(w.out)
}
