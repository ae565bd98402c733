//! Applying file metadata on the destination side: owner, permission bits,
//! timestamps, extended attributes, device nodes, and `mkdir -p` with the
//! owner BuildKit gives created parents.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

use super::{FileOpError, Owner};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `lchown`, tolerating EPERM when kiln does not run as root (ownership in
/// the layer then comes from the diff, which records what the build asked).
pub(crate) fn chown(path: &Path, owner: Owner) -> Result<(), FileOpError> {
    match std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid)) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !is_root() => {
            tracing::debug!(path = %path.display(), uid = owner.uid, gid = owner.gid, "chown not permitted without root");
            Ok(())
        }
        Err(e) => Err(FileOpError::io("chown", path)(e)),
    }
}

/// Sets the permission bits (including setuid, setgid and sticky).
pub(crate) fn chmod(path: &Path, mode: u32) -> Result<(), FileOpError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(FileOpError::io("chmod", path))
}

fn timespec(t: SystemTime) -> TimeSpec {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => TimeSpec::from_duration(d),
        Err(_) => TimeSpec::new(0, 0),
    }
}

/// Sets access and modification times without following a symlink.
pub(crate) fn set_times(path: &Path, atime: TimeSpec, mtime: TimeSpec) -> Result<(), FileOpError> {
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| FileOpError::io("set times of", path)(std::io::Error::from(e)))
}

/// Sets both times to `t`.
pub(crate) fn set_time(path: &Path, t: SystemTime) -> Result<(), FileOpError> {
    let ts = timespec(t);
    set_times(path, ts, ts)
}

/// The source's access and modification times.
pub(crate) fn source_times(meta: &Metadata) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(meta.atime(), meta.atime_nsec()),
        TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    )
}

/// Copies extended attributes from `src` to `dst` (neither followed),
/// overlayfs's own left out; see [`crate::xattrs::copy`].
pub(crate) fn copy_xattrs(src: &Path, dst: &Path) -> Result<(), FileOpError> {
    crate::xattrs::copy(src, dst).map_err(FileOpError::io("copy extended attributes of", src))
}

/// The extended attributes of `path` (not followed), sorted by name,
/// without overlayfs bookkeeping.
pub(crate) fn read_xattrs(path: &Path) -> Result<crate::xattrs::Xattrs, FileOpError> {
    crate::xattrs::read(path).map_err(FileOpError::io("read extended attributes of", path))
}

/// Creates a device node, FIFO or socket like `src`.
pub(crate) fn make_special(dst: &Path, meta: &Metadata) -> Result<(), FileOpError> {
    let kind = SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
    let perm = Mode::from_bits_truncate(meta.mode() & 0o7777);
    mknod(dst, kind, perm, meta.rdev())
        .map_err(|e| FileOpError::io("create special file", dst)(std::io::Error::from(e)))
}

/// `mkdir -p` inside an already resolved path: every directory created gets
/// `mode` (0755 unless `--chmod` says otherwise), `owner` (root when none)
/// and `time` when given. Existing
/// directories are left untouched; an existing non-directory is an error.
/// Created directories are appended to `created`, parents first.
pub(crate) fn mkdir_all(
    path: &Path,
    mode: u32,
    owner: Option<Owner>,
    time: Option<SystemTime>,
    shown: &str,
    created: &mut Vec<std::path::PathBuf>,
) -> Result<(), FileOpError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(FileOpError::NotADirectory {
                path: shown.to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(FileOpError::NotADirectory {
                path: shown.to_owned(),
            });
        }
        Err(e) => return Err(FileOpError::io("stat", path)(e)),
    }
    if let Some(parent) = path.parent() {
        let parent_shown = match shown.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &shown[..i],
        };
        mkdir_all(parent, mode, owner, time, parent_shown, created)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => return Ok(()),
        Err(e) => return Err(FileOpError::io("create directory", path)(e)),
    }
    chown(path, owner.unwrap_or(Owner::ROOT))?;
    chmod(path, mode)?;
    if let Some(t) = time {
        set_time(path, t)?;
    }
    created.push(path.to_path_buf());
    Ok(())
}
