//! Writing one layer tar into a directory: every entry type, ownership,
//! modes, xattrs, times, hardlinks, and OCI whiteouts in either mode
//! (overlay lower dir, or applied onto a directory).
//!
//! Each entry is written relative to a directory fd resolved inside the
//! root (see `resolve.rs`); an existing final component is removed, never
//! followed, and files are created with `O_EXCL | O_NOFOLLOW`.

use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    Mode, SFlag, UtimensatFlags, fchmod, fstatat, futimens, makedev, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use super::path::{NameProblem, components, key};
use super::resolve::{ResolveError, RootDir, is_dir, remove_all_at};
use super::{UnpackError, UnpackMode, UnpackStats};

use super::whiteout::{WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// Metadata set on a directory once all entries are written (so writing
/// children neither fails on a read-only mode nor changes its mtime).
struct DirMeta {
    comps: Vec<OsString>,
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
}

pub(crate) struct Extractor {
    pub(super) root: RootDir,
    pub(super) mode: UnpackMode,
    privileged: bool,
    /// `trusted.overlay.opaque` as root, `user.overlay.opaque` otherwise
    /// (for overlay mounts with `userxattr`).
    pub(super) opaque_xattr: &'static str,
    /// Paths this layer created, and every ancestor of one.
    created: HashSet<Vec<u8>>,
    ancestors: HashSet<Vec<u8>>,
    dirs: Vec<DirMeta>,
    pub(super) stats: UnpackStats,
}

/// The metadata of one entry, pax extensions applied.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    atime: TimeSpec,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn timespec(secs: f64) -> TimeSpec {
    let s = secs.floor();
    TimeSpec::new(s as i64, ((secs - s) * 1e9) as i64)
}

impl Extractor {
    pub(crate) fn new(root: RootDir, mode: UnpackMode) -> Extractor {
        let privileged = nix::unistd::geteuid().is_root();
        Extractor {
            root,
            mode,
            privileged,
            opaque_xattr: if privileged {
                "trusted.overlay.opaque"
            } else {
                "user.overlay.opaque"
            },
            created: HashSet::new(),
            ancestors: HashSet::new(),
            dirs: Vec::new(),
            stats: UnpackStats::default(),
        }
    }

    /// Writes every entry of the archive read from `reader`.
    pub(crate) fn extract<R: Read>(&mut self, reader: R) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|source| UnpackError::Tar {
            entry: None,
            source,
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| UnpackError::Tar {
                entry: None,
                source,
            })?;
            self.entry(&mut entry)?;
        }
        self.finish_dirs()
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let name = display(&raw);
        let comps = components(&raw).map_err(|problem| UnpackError::BadName {
            entry: name.clone(),
            reason: problem.describe(),
        })?;
        let kind = entry.header().entry_type();
        let meta = self.meta(entry, &name)?;

        // whiteouts
        if let Some(last) = comps.last() {
            let b = last.as_bytes();
            if b == WHITEOUT_OPAQUE {
                return self.opaque(&comps[..comps.len() - 1], &name);
            }
            if b.starts_with(WHITEOUT_META_PREFIX) {
                // other AUFS metadata (.wh..wh.plnk, …): meaningless here
                return Ok(());
            }
            if let Some(target) = b.strip_prefix(WHITEOUT_PREFIX) {
                if target.is_empty() || target == b"." || target == b".." {
                    return Err(UnpackError::BadName {
                        entry: name,
                        reason: "a whiteout must name a file",
                    });
                }
                let parent = &comps[..comps.len() - 1];
                return self.whiteout(parent, OsStr::from_bytes(target), &name);
            }
        }

        let Some((last, parent)) = comps.split_last() else {
            // the root itself: only a directory entry makes sense
            if kind.is_dir() {
                self.dirs.push(DirMeta {
                    comps: Vec::new(),
                    mode: meta.mode,
                    atime: meta.atime,
                    mtime: meta.mtime,
                });
                let fd = self.open_dir_rw(&[], &name)?;
                self.set_owner_xattrs(&fd, &meta, &name)?;
                return Ok(());
            }
            return Err(UnpackError::BadName {
                entry: name,
                reason: NameProblem::Empty.describe(),
            });
        };
        let dir = self.parent(parent, &name)?;
        let io = |op: &'static str| {
            let name = name.clone();
            move |errno: Errno| UnpackError::Io {
                op,
                entry: name,
                source: io::Error::from(errno),
            }
        };

        if kind.is_dir() {
            match fstatat(&dir, last.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if is_dir(&st) => {}
                Ok(_) => {
                    remove_all_at(&dir, last).map_err(io("replace"))?;
                    mkdirat(&dir, last.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(io("mkdir"))?;
                }
                Err(Errno::ENOENT) => {
                    mkdirat(&dir, last.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(io("mkdir"))?;
                }
                Err(e) => return Err(io("stat")(e)),
            }
            let fd = openat(
                &dir,
                last.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io("open directory"))?;
            self.set_owner_xattrs(&fd, &meta, &name)?;
            self.dirs.push(DirMeta {
                comps: comps.clone(),
                mode: meta.mode,
                atime: meta.atime,
                mtime: meta.mtime,
            });
            self.stats.dirs += 1;
            self.mark_created(&comps);
            return Ok(());
        }

        if kind == tar::EntryType::Link
            && let Some(t) = entry.link_name_bytes()
            && components(&t).is_ok_and(|t| t == comps)
        {
            return Err(UnpackError::BadHardlink {
                entry: name.clone(),
                target: display(&t),
                reason: "a hardlink cannot point at itself",
            });
        }
        // everything else replaces whatever is there
        remove_all_at(&dir, last).map_err(io("replace"))?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = openat(
                    &dir,
                    last.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(io("create"))?;
                let mut file = File::from(fd);
                let n = io::copy(entry, &mut file).map_err(|source| UnpackError::Tar {
                    entry: Some(name.clone()),
                    source,
                })?;
                self.stats.bytes += n;
                self.set_owner_xattrs(&file, &meta, &name)?;
                fchmod(&file, Mode::from_bits_truncate(meta.mode)).map_err(io("chmod"))?;
                futimens(&file, &meta.atime, &meta.mtime).map_err(io("set times"))?;
                self.stats.files += 1;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::BadName {
                        entry: name.clone(),
                        reason: "a symlink without a target",
                    })?;
                if target.is_empty() {
                    return Err(UnpackError::BadName {
                        entry: name,
                        reason: "a symlink without a target",
                    });
                }
                symlinkat(OsStr::from_bytes(&target), &dir, last.as_os_str())
                    .map_err(io("symlink"))?;
                if self.privileged {
                    fchownat(
                        &dir,
                        last.as_os_str(),
                        Some(Uid::from_raw(meta.uid as u32)),
                        Some(Gid::from_raw(meta.gid as u32)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(io("chown"))?;
                }
                utimensat(
                    &dir,
                    last.as_os_str(),
                    &meta.atime,
                    &meta.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(io("set times"))?;
                self.stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::BadName {
                        entry: name.clone(),
                        reason: "a hardlink without a target",
                    })?;
                self.hardlink(&dir, last, &target, &name)?;
                self.stats.hardlinks += 1;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (sflag, needs_root) = match kind {
                    tar::EntryType::Char => (SFlag::S_IFCHR, true),
                    tar::EntryType::Block => (SFlag::S_IFBLK, true),
                    _ => (SFlag::S_IFIFO, false),
                };
                if needs_root && !self.privileged {
                    self.stats.skipped_devices += 1;
                    if self.stats.skipped_devices == 1 {
                        tracing::warn!(entry = %name, "not root: device nodes in this layer are skipped");
                    }
                    return Ok(());
                }
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                mknodat(
                    &dir,
                    last.as_os_str(),
                    sflag,
                    Mode::from_bits_truncate(meta.mode),
                    makedev(major.into(), minor.into()),
                )
                .map_err(io("mknod"))?;
                if self.privileged {
                    fchownat(
                        &dir,
                        last.as_os_str(),
                        Some(Uid::from_raw(meta.uid as u32)),
                        Some(Gid::from_raw(meta.gid as u32)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(io("chown"))?;
                }
                utimensat(
                    &dir,
                    last.as_os_str(),
                    &meta.atime,
                    &meta.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(io("set times"))?;
                self.stats.devices += 1;
            }
            other => {
                return Err(UnpackError::UnsupportedEntry {
                    entry: name,
                    kind: other.as_byte(),
                });
            }
        }
        self.mark_created(&comps);
        Ok(())
    }

    fn mark_created(&mut self, comps: &[OsString]) {
        for i in 0..comps.len() {
            self.ancestors.insert(key(&comps[..i]));
        }
        self.created.insert(key(comps));
    }

    /// Whether this layer made `comps` or something under it.
    pub(super) fn touched(&self, comps: &[OsString]) -> bool {
        let k = key(comps);
        self.created.contains(&k) || self.ancestors.contains(&k)
    }

    pub(super) fn parent(&self, parent: &[OsString], name: &str) -> Result<OwnedFd, UnpackError> {
        self.root
            .dir(parent, true)
            .map_err(|e| resolve_error(e, parent, name))
    }

    pub(super) fn open_dir_rw(
        &self,
        comps: &[OsString],
        name: &str,
    ) -> Result<OwnedFd, UnpackError> {
        let fd = self.parent(comps, name)?;
        openat(
            &fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| UnpackError::Io {
            op: "open directory",
            entry: name.to_string(),
            source: e.into(),
        })
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Meta, UnpackError> {
        let h = entry.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let uid = h.uid().unwrap_or(0);
        let gid = h.gid().unwrap_or(0);
        let mut mtime = TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0);
        let mut atime = None;
        let mut xattrs = Vec::new();
        let pax = entry.pax_extensions().map_err(|source| UnpackError::Tar {
            entry: Some(name.to_string()),
            source,
        })?;
        if let Some(pax) = pax {
            for ext in pax {
                let ext = ext.map_err(|source| UnpackError::Tar {
                    entry: Some(name.to_string()),
                    source,
                })?;
                let k = ext.key_bytes();
                if k == b"mtime" {
                    if let Some(t) = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                    {
                        mtime = timespec(t);
                    }
                } else if k == b"atime" {
                    atime = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                        .map(timespec);
                } else if let Some(x) = k.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((x.to_vec(), ext.value_bytes().to_vec()));
                } else if let Some(x) = k.strip_prefix(b"LIBARCHIVE.xattr.") {
                    use base64::Engine;
                    let value = base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(
                            ext.value_bytes()
                                .strip_suffix(b"=")
                                .unwrap_or(ext.value_bytes()),
                        )
                        .or_else(|_| {
                            base64::engine::general_purpose::STANDARD.decode(ext.value_bytes())
                        })
                        .unwrap_or_default();
                    xattrs.push((x.to_vec(), value));
                }
            }
        }
        let mut checked = Vec::new();
        for (k, v) in xattrs {
            let ks = display(&k);
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                return Err(UnpackError::ForbiddenXattr {
                    entry: name.to_string(),
                    xattr: ks,
                });
            }
            let Ok(c) = CString::new(k) else {
                return Err(UnpackError::ForbiddenXattr {
                    entry: name.to_string(),
                    xattr: ks,
                });
            };
            checked.push((c, v));
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            atime: atime.unwrap_or(mtime),
            mtime,
            xattrs: checked,
        })
    }

    fn set_owner_xattrs(
        &mut self,
        fd: &impl AsFd,
        meta: &Meta,
        name: &str,
    ) -> Result<(), UnpackError> {
        if self.privileged {
            fchown(
                fd,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            )
            .map_err(|e| UnpackError::Io {
                op: "chown",
                entry: name.to_string(),
                source: e.into(),
            })?;
        }
        for (k, v) in &meta.xattrs {
            let r = unsafe {
                libc::fsetxattr(
                    fd.as_fd().as_raw_fd(),
                    k.as_ptr(),
                    v.as_ptr().cast(),
                    v.len(),
                    0,
                )
            };
            if r != 0 {
                let err = io::Error::last_os_error();
                let errno = err.raw_os_error().unwrap_or(0);
                // unsupported here (filesystem, or not privileged): skip, as
                // docker and containerd do
                if errno == libc::ENOTSUP || errno == libc::EPERM || errno == libc::EACCES {
                    self.stats.skipped_xattrs += 1;
                    tracing::debug!(entry = %name, xattr = ?k, "xattr not supported here; skipped");
                    continue;
                }
                return Err(UnpackError::Io {
                    op: "set xattr",
                    entry: name.to_string(),
                    source: err,
                });
            }
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        dir: &OwnedFd,
        last: &OsString,
        target: &[u8],
        name: &str,
    ) -> Result<(), UnpackError> {
        let bad = |reason: &'static str| UnpackError::BadHardlink {
            entry: name.to_string(),
            target: display(target),
            reason,
        };
        let tcomps = components(target).map_err(|p| bad(p.describe()))?;
        let Some((tlast, tparent)) = tcomps.split_last() else {
            return Err(bad("a hardlink cannot point at the root"));
        };
        let tdir = self.root.dir(tparent, false).map_err(|e| match e {
            ResolveError::Symlink { .. } => bad("its target's path goes through a symlink"),
            ResolveError::Missing { .. } => bad("its target does not exist"),
            ResolveError::NotDir { .. } => bad("its target's path goes through a file"),
            _ => bad("its target cannot be resolved"),
        })?;
        match fstatat(&tdir, tlast.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_dir(&st) => return Err(bad("its target is a directory")),
            Ok(_) => {}
            Err(Errno::ENOENT) => return Err(bad("its target does not exist")),
            Err(e) => {
                return Err(UnpackError::Io {
                    op: "stat hardlink target",
                    entry: name.to_string(),
                    source: e.into(),
                });
            }
        }
        linkat(
            &tdir,
            tlast.as_os_str(),
            dir,
            last.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| UnpackError::Io {
            op: "hardlink",
            entry: name.to_string(),
            source: e.into(),
        })
    }

    /// Sets directory modes and times, deepest first, once everything is
    /// written. A directory a later entry replaced is skipped.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.comps.len()));
        for d in dirs {
            let name = display(&key(&d.comps));
            let fd = match d.comps.split_last() {
                None => self.open_dir_rw(&[], &name)?,
                Some((last, parent)) => {
                    let Ok(pfd) = self.root.dir(parent, false) else {
                        continue;
                    };
                    match openat(
                        &pfd,
                        last.as_os_str(),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(_) => continue,
                    }
                }
            };
            let err = |op: &'static str| {
                let name = name.clone();
                move |e: Errno| UnpackError::Io {
                    op,
                    entry: name,
                    source: e.into(),
                }
            };
            fchmod(&fd, Mode::from_bits_truncate(d.mode)).map_err(err("chmod"))?;
            futimens(&fd, &d.atime, &d.mtime).map_err(err("set times"))?;
        }
        Ok(())
    }
}

/// Explains a resolution failure for entry `name` whose parent is `parent`.
fn resolve_error(e: ResolveError, parent: &[OsString], name: &str) -> UnpackError {
    let upto = |at: usize| display(&key(&parent[..(at + 1).min(parent.len())]));
    match e {
        ResolveError::Symlink { at } => UnpackError::ThroughSymlink {
            entry: name.to_string(),
            symlink: upto(at),
        },
        ResolveError::NotDir { at } => UnpackError::NotADirectory {
            entry: name.to_string(),
            path: upto(at),
        },
        ResolveError::TooManySymlinks => UnpackError::TooManySymlinks {
            entry: name.to_string(),
        },
        ResolveError::Missing { at } => UnpackError::Io {
            op: "resolve",
            entry: name.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, upto(at)),
        },
        ResolveError::Sys { at: _, errno } => UnpackError::Io {
            op: "resolve",
            entry: name.to_string(),
            source: errno.into(),
        },
    }
}
