//! Writing what a source selected into the destination root, with `cp -a`
//! semantics as BuildKit's copier has them: directories merged, files
//! replaced, symlinks copied as symlinks, hard links within one copy kept,
//! device nodes and FIFOs recreated, sockets turned into empty files,
//! owner/mode/times/xattrs copied or overridden.

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::meta;
use super::select::{Entry, Event, Filters, Match, walk};
use super::{Chmod, CopyStats, FileOpError, Owner};

/// How copied entries get their metadata.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetaPolicy<'a> {
    /// Owner of every copied entry; `None` keeps the source's.
    pub(crate) owner: Option<Owner>,
    /// `--chmod` for every copied entry; `None` keeps the source's mode.
    pub(crate) mode: Option<&'a Chmod>,
    /// Timestamp of every copied entry; `None` keeps the source's.
    pub(crate) time: Option<SystemTime>,
}

impl MetaPolicy<'_> {
    fn owner_of(&self, m: &Metadata) -> Owner {
        self.owner.unwrap_or(Owner {
            uid: m.uid(),
            gid: m.gid(),
        })
    }

    /// Applies owner, mode, times and xattrs of `src` (as overridden) to
    /// `dst`.
    pub(crate) fn apply(&self, src: &Path, m: &Metadata, dst: &Path) -> Result<(), FileOpError> {
        meta::chown(dst, self.owner_of(m))?;
        if !m.file_type().is_symlink() {
            let own = m.mode() & 0o7777;
            let mode = self.mode.map_or(own, |c| c.apply(own, m.is_dir()));
            meta::chmod(dst, mode)?;
        }
        meta::copy_xattrs(src, dst)?;
        match self.time {
            Some(t) => meta::set_time(dst, t),
            None => {
                let (a, mt) = meta::source_times(m);
                meta::set_times(dst, a, mt)
            }
        }
    }
}

/// State of one copy operation (one COPY/ADD instruction): hard links seen
/// so far and counters.
pub(crate) struct Copier<'a> {
    pub(crate) policy: MetaPolicy<'a>,
    links: HashMap<(u64, u64), PathBuf>,
    pub(crate) stats: CopyStats,
}

impl<'a> Copier<'a> {
    pub(crate) fn new(policy: MetaPolicy<'a>) -> Copier<'a> {
        Copier {
            policy,
            links: HashMap::new(),
            stats: CopyStats::default(),
        }
    }

    /// Copies everything below `m` that `filters` let through to `target`
    /// (the destination path for the match itself, already resolved inside
    /// the destination root). `shown` is `target` as seen inside the image.
    /// When `m` is a directory, `target` must be a directory already: its
    /// own metadata is left as it is (BuildKit copies a directory's
    /// contents).
    pub(crate) fn copy_match(
        &mut self,
        m: &Match,
        filters: &Filters<'_>,
        target: &Path,
        shown: &str,
    ) -> Result<(), FileOpError> {
        walk(m, filters, &mut |ev| match ev {
            Event::EnterDir(e) => {
                if e.sub.is_empty() {
                    return Ok(());
                }
                self.enter_dir(e, &target.join(e.sub_raw), shown)
            }
            Event::LeaveDir(e) => {
                if e.sub.is_empty() {
                    return Ok(());
                }
                self.policy.apply(e.abs, e.meta, &target.join(e.sub_raw))
            }
            Event::Leaf(e) => {
                let dst = if e.sub.is_empty() {
                    target.to_path_buf()
                } else {
                    target.join(e.sub_raw)
                };
                self.leaf(e, &dst, shown)
            }
        })
    }

    fn enter_dir(&mut self, e: &Entry<'_>, dst: &Path, shown: &str) -> Result<(), FileOpError> {
        match std::fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() => Ok(()),
            Ok(_) => Err(FileOpError::CopyDirOntoFile {
                path: join_shown(shown, e.sub),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(dst).map_err(FileOpError::io("create directory", dst))?;
                self.stats.dirs += 1;
                Ok(())
            }
            Err(err) => Err(FileOpError::io("stat", dst)(err)),
        }
    }

    fn leaf(&mut self, e: &Entry<'_>, dst: &Path, shown: &str) -> Result<(), FileOpError> {
        let shown = join_shown(shown, e.sub);
        if e.meta.file_type().is_socket() {
            // A layer cannot hold a socket: COPY makes it an empty file
            // with the socket's permission bits, as BuildKit does.
            remove_file_target(dst, &shown)?;
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(dst)
                .map_err(FileOpError::io("create", dst))?;
            self.stats.files += 1;
            return self.policy.apply(e.abs, e.meta, dst);
        }
        self.copy_leaf(e.abs, e.meta, dst, &shown)
    }

    /// Copies the non-directory `src` (metadata `meta`) to `dst` (shown
    /// as `shown` in errors), replacing a file there, keeping hard links
    /// among what this copier copied, then applies the metadata policy.
    pub(crate) fn copy_leaf(
        &mut self,
        src: &Path,
        meta: &Metadata,
        dst: &Path,
        shown: &str,
    ) -> Result<(), FileOpError> {
        remove_file_target(dst, shown)?;
        let ft = meta.file_type();
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    std::fs::hard_link(first, dst)
                        .map_err(FileOpError::io("create hard link", dst))?;
                    self.stats.files += 1;
                    return Ok(());
                }
                self.links.insert(key, dst.to_path_buf());
            }
            self.stats.bytes += copy_file_data(src, dst)?;
            self.stats.files += 1;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(FileOpError::io("read link", src))?;
            std::os::unix::fs::symlink(&target, dst)
                .map_err(FileOpError::io("create symlink", dst))?;
            self.stats.files += 1;
        } else {
            meta::make_special(dst, meta)?;
            self.stats.files += 1;
        }
        self.policy.apply(src, meta, dst)
    }
}

fn join_shown(shown: &str, sub: &str) -> String {
    if sub.is_empty() {
        shown.to_owned()
    } else if shown.ends_with('/') {
        format!("{shown}{sub}")
    } else {
        format!("{shown}/{sub}")
    }
}

/// Makes room for a file at `dst`: an existing file or symlink is removed
/// (never followed); a directory is an error.
pub(crate) fn remove_file_target(dst: &Path, shown: &str) -> Result<(), FileOpError> {
    match std::fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => Err(FileOpError::ReplaceDirWithFile {
            path: shown.to_owned(),
        }),
        Ok(_) => std::fs::remove_file(dst).map_err(FileOpError::io("remove", dst)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FileOpError::io("stat", dst)(e)),
    }
}

/// Streams a regular file's bytes into a new file (`copy_file_range` where
/// the kernel offers it). Returns the byte count.
pub(crate) fn copy_file_data(src: &Path, dst: &Path) -> Result<u64, FileOpError> {
    let mut from = File::open(src).map_err(FileOpError::io("open", src))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .map_err(FileOpError::io("create", dst))?;
    std::io::copy(&mut from, &mut to).map_err(FileOpError::io("copy to", dst))
}
