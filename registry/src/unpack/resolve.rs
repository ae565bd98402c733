//! Resolving paths inside an unpack root, so no entry can reach outside it.
//!
//! Every operation works on a directory fd obtained here plus one final
//! name, with `*at` syscalls that never follow a symlink in that final
//! name. Parent directories are resolved with openat2(2) and
//! `RESOLVE_IN_ROOT` (symlinks are followed as if the root were `/`, so
//! they stay inside), or — for overlay lower dirs, where a layer never has a
//! legitimate reason to write through a symlink — `RESOLVE_NO_SYMLINKS`.
//! When openat2 is missing (Linux < 5.6, seccomp) or a directory must be
//! created, the same rules are applied by hand: one component at a time
//! with `O_NOFOLLOW`, symlinks read and resolved against the root fd
//! ourselves, `..` never climbing above the root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Symlinks followed while resolving one path before giving up (as Linux).
const MAX_SYMLINKS: usize = 40;

/// Why a directory could not be resolved; `at` is the index of the
/// offending component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// A symlink where symlinks are not followed.
    Symlink {
        at: usize,
    },
    /// Something that is not a directory where one is needed.
    NotDir {
        at: usize,
    },
    /// Does not exist (and was not to be created).
    Missing {
        at: usize,
    },
    TooManySymlinks,
    Sys {
        at: usize,
        errno: Errno,
    },
}

static OPENAT2: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 works, 2 unavailable

/// A directory all paths are resolved inside.
#[derive(Debug)]
pub(crate) struct RootDir {
    fd: OwnedFd,
    follow_symlinks: bool,
    use_openat2: bool,
}

pub(crate) fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

pub(crate) fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

fn open_path(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl RootDir {
    /// Opens `path` as the root. `follow_symlinks`: symlinks in parent
    /// paths are followed inside the root (apply mode) rather than refused
    /// (overlay mode).
    pub(crate) fn open(path: &Path, follow_symlinks: bool) -> std::io::Result<RootDir> {
        let use_openat2 = OPENAT2.load(Ordering::Relaxed) != 2;
        Self::open_with(path, follow_symlinks, use_openat2)
    }

    /// [`RootDir::open`] choosing whether to try openat2 (tests exercise the
    /// fallback on kernels that have it).
    pub(crate) fn open_with(
        path: &Path,
        follow_symlinks: bool,
        use_openat2: bool,
    ) -> std::io::Result<RootDir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootDir {
            fd,
            follow_symlinks,
            use_openat2,
        })
    }

    #[cfg(test)]
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// An `O_PATH` fd of the directory `comps` inside the root, creating
    /// missing directories (mode 0755) when `create`.
    pub(crate) fn dir(&self, comps: &[OsString], create: bool) -> Result<OwnedFd, ResolveError> {
        if comps.is_empty() {
            return nix::unistd::dup(&self.fd).map_err(|errno| ResolveError::Sys { at: 0, errno });
        }
        if self.use_openat2 {
            let mut path = Vec::new();
            for (i, c) in comps.iter().enumerate() {
                if i > 0 {
                    path.push(b'/');
                }
                path.extend_from_slice(c.as_bytes());
            }
            let mut resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
            if !self.follow_symlinks {
                resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
            }
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(resolve);
            match openat2(&self.fd, OsStr::from_bytes(&path), how) {
                Ok(fd) => {
                    OPENAT2.store(1, Ordering::Relaxed);
                    return Ok(fd);
                }
                Err(Errno::ENOSYS | Errno::EPERM) => {
                    OPENAT2.store(2, Ordering::Relaxed);
                }
                // anything else (missing, a symlink, not a directory, a
                // rename race): the walk below creates or explains precisely
                Err(_) => {}
            }
        }
        self.walk(comps, create)
    }

    /// The component-by-component resolution (see the module docs).
    fn walk(&self, comps: &[OsString], create: bool) -> Result<OwnedFd, ResolveError> {
        let sys = |at: usize| move |errno| ResolveError::Sys { at, errno };
        let mut stack: Vec<OwnedFd> = vec![nix::unistd::dup(&self.fd).map_err(sys(0))?];
        // (component, index in `comps` it stands for, for error messages)
        let mut pending: VecDeque<(OsString, usize)> = comps
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        let mut links = 0;
        while let Some((c, at)) = pending.pop_front() {
            let bytes = c.as_bytes();
            if bytes.is_empty() || bytes == b"." {
                continue;
            }
            if bytes == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let cur = stack.last().expect("the root stays on the stack");
            let fd = match open_path(cur, &c) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(cur, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => return Err(ResolveError::Sys { at, errno }),
                    }
                    open_path(cur, &c).map_err(sys(at))?
                }
                Err(Errno::ENOENT) => return Err(ResolveError::Missing { at }),
                Err(errno) => return Err(ResolveError::Sys { at, errno }),
            };
            let st = fstat(&fd).map_err(sys(at))?;
            if is_dir(&st) {
                stack.push(fd);
            } else if is_symlink(&st) {
                if !self.follow_symlinks {
                    return Err(ResolveError::Symlink { at });
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ResolveError::TooManySymlinks);
                }
                let target = readlinkat(cur, c.as_os_str()).map_err(sys(at))?;
                let tb = target.as_bytes();
                if tb.first() == Some(&b'/') {
                    stack.truncate(1);
                }
                for part in tb.split(|b| *b == b'/').rev() {
                    pending.push_front((OsStr::from_bytes(part).to_os_string(), at));
                }
            } else {
                return Err(ResolveError::NotDir { at });
            }
        }
        Ok(stack.pop().expect("the root stays on the stack"))
    }
}

/// Removes `name` in `dir` whatever it is; a directory with everything in
/// it (fd-based: never follows a symlink). Missing is fine.
pub(crate) fn remove_all_at(dir: &impl AsFd, name: &OsStr) -> nix::Result<()> {
    let st = match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if is_dir(&st) {
        let sub = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        for child in list_dir(&sub)? {
            remove_all_at(&sub, &child)?;
        }
        match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    } else {
        match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The names in a directory (without `.` and `..`).
pub(crate) fn list_dir(dir: &impl AsFd) -> nix::Result<Vec<OsString>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn comps(s: &str) -> Vec<OsString> {
        crate::unpack::path::components(s.as_bytes()).unwrap()
    }

    fn real(fd: &OwnedFd) -> std::path::PathBuf {
        std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .unwrap()
    }

    #[test]
    fn contained_and_refused_both_ways() {
        for use_openat2 in [true, false] {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("root");
            std::fs::create_dir_all(root.join("usr/lib")).unwrap();
            std::fs::create_dir_all(t.path().join("outside")).unwrap();
            symlink("usr/lib", root.join("lib")).unwrap();
            symlink("/", root.join("up")).unwrap();
            symlink("../../..", root.join("usr/lib/dots")).unwrap();
            symlink(t.path().join("outside"), root.join("abs")).unwrap();
            symlink("loop2", root.join("loop1")).unwrap();
            symlink("loop1", root.join("loop2")).unwrap();
            std::fs::write(root.join("file"), b"x").unwrap();
            let canon = root.canonicalize().unwrap();

            let follow = RootDir::open_with(&root, true, use_openat2).unwrap();
            assert_eq!(
                real(&follow.dir(&comps("lib"), false).unwrap()),
                canon.join("usr/lib")
            );
            assert_eq!(
                real(&follow.dir(&comps("up/usr"), false).unwrap()),
                canon.join("usr")
            );
            assert_eq!(
                real(&follow.dir(&comps("lib/dots/usr"), false).unwrap()),
                canon.join("usr")
            );
            // an absolute symlink to the host's outside dir resolves inside the root
            let fd = follow.dir(&comps("abs/x"), true).unwrap();
            assert!(real(&fd).starts_with(&canon), "{use_openat2}");
            assert!(!t.path().join("outside/x").exists());
            assert_eq!(
                follow.dir(&comps("loop1"), false).unwrap_err(),
                ResolveError::TooManySymlinks
            );
            assert_eq!(
                follow.dir(&comps("file/x"), true).unwrap_err(),
                ResolveError::NotDir { at: 0 }
            );
            assert_eq!(
                follow.dir(&comps("nope/x"), false).unwrap_err(),
                ResolveError::Missing { at: 0 }
            );
            let fd = follow.dir(&comps("new/deep/dir"), true).unwrap();
            assert_eq!(real(&fd), canon.join("new/deep/dir"));

            let strict = RootDir::open_with(&root, false, use_openat2).unwrap();
            assert_eq!(
                strict
                    .dir(&comps("usr/lib"), false)
                    .map(|f| real(&f))
                    .unwrap(),
                canon.join("usr/lib")
            );
            assert_eq!(
                strict.dir(&comps("lib/x"), true).unwrap_err(),
                ResolveError::Symlink { at: 0 }
            );
            assert_eq!(
                strict.dir(&comps("usr/lib/dots/x"), true).unwrap_err(),
                ResolveError::Symlink { at: 2 }
            );
            assert_eq!(
                strict.dir(&comps("abs"), true).unwrap_err(),
                ResolveError::Symlink { at: 0 }
            );
            assert!(
                t.path()
                    .join("outside")
                    .read_dir()
                    .unwrap()
                    .next()
                    .is_none()
            );
        }
    }

    #[test]
    fn removes_trees_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let keep = t.path().join("keep");
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("precious"), b"x").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        std::fs::write(root.join("d/e/f"), b"x").unwrap();
        symlink(&keep, root.join("d/link")).unwrap();
        let r = RootDir::open(&root, false).unwrap();
        remove_all_at(r.fd(), OsStr::new("d")).unwrap();
        remove_all_at(r.fd(), OsStr::new("missing")).unwrap();
        assert!(!root.join("d").exists());
        assert!(keep.join("precious").exists());
    }
}
