//! OCI whiteouts: `.wh.<name>` (delete `name` from lower layers) and
//! `.wh..wh..opq` (hide a directory's lower content), written as overlayfs
//! understands them (a 0/0 character device, the opaque xattr) or applied
//! to the directory (deleting). Per the OCI spec a whiteout only hides what
//! lower layers made: what this layer itself made stays.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mknodat};

use super::extract::Extractor;
use super::resolve::{is_dir, list_dir, remove_all_at};
use super::{UnpackError, UnpackMode};

pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub(super) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
pub(super) const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

impl Extractor {
    /// `.wh.<target>` in `parent`.
    pub(super) fn whiteout(
        &mut self,
        parent: &[OsString],
        target: &OsStr,
        name: &str,
    ) -> Result<(), UnpackError> {
        let dir = self.parent(parent, name)?;
        let mut comps = parent.to_vec();
        comps.push(target.to_os_string());
        let io = |op: &'static str| {
            let name = name.to_string();
            move |errno: Errno| UnpackError::Io {
                op,
                entry: name,
                source: io::Error::from(errno),
            }
        };
        self.stats.whiteouts += 1;
        let touched = self.touched(&comps);
        match self.mode {
            UnpackMode::OverlayLower => {
                if touched {
                    // what this layer made stays; a directory of this layer
                    // hides the lower one's content instead
                    if let Ok(st) = fstatat(&dir, target, AtFlags::AT_SYMLINK_NOFOLLOW)
                        && is_dir(&st)
                    {
                        let fd = openat(
                            &dir,
                            target,
                            OFlag::O_RDONLY
                                | OFlag::O_DIRECTORY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(io("open directory"))?;
                        self.set_opaque(&fd, name)?;
                    }
                    return Ok(());
                }
                remove_all_at(&dir, target).map_err(io("replace"))?;
                mknodat(&dir, target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                    .map_err(io("create whiteout device"))?;
            }
            UnpackMode::Apply => {
                if touched {
                    if let Ok(st) = fstatat(&dir, target, AtFlags::AT_SYMLINK_NOFOLLOW)
                        && is_dir(&st)
                    {
                        self.prune_lower(&dir, target, &comps, name)?;
                    }
                    return Ok(());
                }
                remove_all_at(&dir, target).map_err(io("remove whited-out path"))?;
            }
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `dir_comps`.
    pub(super) fn opaque(&mut self, dir_comps: &[OsString], name: &str) -> Result<(), UnpackError> {
        self.stats.whiteouts += 1;
        match self.mode {
            UnpackMode::OverlayLower => {
                let fd = self.open_dir_rw(dir_comps, name)?;
                self.set_opaque(&fd, name)
            }
            UnpackMode::Apply => {
                let Some((last, parent)) = dir_comps.split_last() else {
                    let root = self.parent(&[], name)?;
                    let children = list_dir(&root).map_err(|e| UnpackError::Io {
                        op: "list directory",
                        entry: name.to_string(),
                        source: e.into(),
                    })?;
                    for c in children {
                        let comps = vec![c.clone()];
                        if self.touched(&comps) {
                            if let Ok(st) =
                                fstatat(&root, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                                && is_dir(&st)
                            {
                                self.prune_lower(&root, &c, &comps, name)?;
                            }
                        } else {
                            remove_all_at(&root, &c).map_err(|e| UnpackError::Io {
                                op: "remove",
                                entry: name.to_string(),
                                source: e.into(),
                            })?;
                        }
                    }
                    return Ok(());
                };
                let pdir = self.parent(parent, name)?;
                self.prune_lower(&pdir, last, dir_comps, name)
            }
        }
    }

    /// Apply mode: removes everything under the directory `dname` in `dir`
    /// that this layer did not create.
    fn prune_lower(
        &self,
        dir: &OwnedFd,
        dname: &OsStr,
        comps: &[OsString],
        name: &str,
    ) -> Result<(), UnpackError> {
        let io = |op: &'static str| {
            let name = name.to_string();
            move |errno: Errno| UnpackError::Io {
                op,
                entry: name,
                source: io::Error::from(errno),
            }
        };
        let sub = match openat(
            dir,
            dname,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(()),
            Err(e) => return Err(io("open directory")(e)),
        };
        for c in list_dir(&sub).map_err(io("list directory"))? {
            let mut cc = comps.to_vec();
            cc.push(c.clone());
            if self.touched(&cc) {
                if let Ok(st) = fstatat(&sub, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    && is_dir(&st)
                {
                    self.prune_lower(&sub, &c, &cc, name)?;
                }
            } else {
                remove_all_at(&sub, &c).map_err(io("remove"))?;
            }
        }
        Ok(())
    }

    fn set_opaque(&mut self, fd: &impl AsFd, name: &str) -> Result<(), UnpackError> {
        let k = CString::new(self.opaque_xattr).expect("static name");
        let r = unsafe {
            libc::fsetxattr(
                fd.as_fd().as_raw_fd(),
                k.as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        if r != 0 {
            return Err(UnpackError::Io {
                op: "mark directory opaque",
                entry: name.to_string(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}
