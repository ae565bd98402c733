//! Plain-copy snapshots, for hosts where overlayfs is not usable: the
//! merged view of a step's lowers copied into a directory of its own, as
//! Docker's `vfs` storage driver does — file data with `copy_file_range`
//! (which clones blocks on filesystems that can), owners, modes, times,
//! extended attributes, device nodes and hard links kept. Never hard links
//! into the lowers: a step writing a file in place would change the
//! shared, read-only snapshot under every other build.
//!
//! While copying, it records what the diff needs to tell the step's
//! changes from the copy ([`Baseline`]): each entry's inode, and a ctime
//! fence taken once the copy is done and the filesystem's clock has moved
//! past it.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{SnapshotError, io_err};
use crate::fileop::{Copier, MetaPolicy};
use crate::layer::{Baseline, ctime};
use crate::overlay::MergedDir;

/// Copies the merged view of `lowers` (topmost first) into the existing
/// empty directory `rootfs`; `scratch` (on the same filesystem) holds the
/// fence marker.
pub(crate) fn materialize(
    lowers: &[PathBuf],
    rootfs: &Path,
    scratch: &Path,
) -> Result<Baseline, SnapshotError> {
    let start = Instant::now();
    let top = lowers.first().ok_or(SnapshotError::NoLayers)?;
    let mut c = CopyState {
        copier: Copier::new(MetaPolicy::default()),
        inodes: HashMap::new(),
        rootfs,
    };
    c.dir(&MergedDir::root(lowers), Path::new(""))?;
    let root_meta = std::fs::symlink_metadata(top).map_err(io_err("read", top))?;
    c.copier
        .policy
        .apply(top, &root_meta, rootfs)
        .map_err(SnapshotError::copy(rootfs))?;
    let fence = fence(scratch)?;
    tracing::debug!(rootfs = %rootfs.display(), files = c.copier.stats.files,
        bytes = c.copier.stats.bytes, elapsed_ms = start.elapsed().as_millis() as u64,
        "copied the lowers into a plain snapshot");
    Ok(Baseline {
        fence,
        inodes: c.inodes,
    })
}

/// Copies what the merged view of `lowers` (topmost first) holds under the
/// directory `rel` into the existing directory `dest`, and gives `dest` that
/// directory's owner and mode: how a volume mounted at `rel` is seeded with
/// the image's content there, as docker does for an empty volume. False
/// (nothing copied) when the image has no directory at `rel`.
pub fn copy_merged_dir(lowers: &[PathBuf], rel: &Path, dest: &Path) -> Result<bool, SnapshotError> {
    let top = lowers.first().ok_or(SnapshotError::NoLayers)?;
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let entry = crate::overlay::lookup(lowers, rel).map_err(io_err("read", &top.join(rel)))?;
    let Some((entry, dir)) = entry.and_then(|e| e.dir.clone().map(|d| (e, d))) else {
        return Ok(false);
    };
    let mut c = CopyState {
        copier: Copier::new(MetaPolicy::default()),
        inodes: HashMap::new(),
        rootfs: dest,
    };
    c.dir(&dir, Path::new(""))?;
    c.copier
        .policy
        .apply(&entry.path, &entry.meta, dest)
        .map_err(SnapshotError::copy(dest))?;
    Ok(true)
}

struct CopyState<'a> {
    copier: Copier<'static>,
    inodes: HashMap<PathBuf, u64>,
    rootfs: &'a Path,
}

impl CopyState<'_> {
    /// Copies the entries of the merged directory `dir` into `rel`.
    fn dir(&mut self, dir: &MergedDir, rel: &Path) -> Result<(), SnapshotError> {
        self.record(rel)?;
        let entries = dir.entries().map_err(io_err("read", &dir.layers[0]))?;
        for (name, e) in entries {
            let child = rel.join(&name);
            let dst = self.rootfs.join(&child);
            match &e.dir {
                Some(sub) => {
                    std::fs::create_dir(&dst).map_err(io_err("create", &dst))?;
                    self.dir(sub, &child)?;
                    self.copier
                        .policy
                        .apply(&e.path, &e.meta, &dst)
                        .map_err(SnapshotError::copy(&e.path))?;
                }
                None => {
                    let shown = Path::new("/").join(&child);
                    self.copier
                        .copy_leaf(&e.path, &e.meta, &dst, &shown.to_string_lossy())
                        .map_err(SnapshotError::copy(&e.path))?;
                    self.record(&child)?;
                }
            }
        }
        Ok(())
    }

    /// Remembers the inode of the copy's entry `rel`.
    fn record(&mut self, rel: &Path) -> Result<(), SnapshotError> {
        let host = self.rootfs.join(rel);
        let ino = std::fs::symlink_metadata(&host)
            .map_err(io_err("read", &host))?
            .ino();
        self.inodes.insert(rel.to_path_buf(), ino);
        Ok(())
    }
}

/// The ctime of a marker file made after the copy, returned once the
/// filesystem dates changes later than it (at most a clock tick, or a
/// second on filesystems with whole-second times): everything the copy
/// did is at or before it, everything the step does is after it.
fn fence(scratch: &Path) -> Result<(i64, i64), SnapshotError> {
    let marker = scratch.join("fence");
    std::fs::write(&marker, b"").map_err(io_err("create", &marker))?;
    let stat = |p: &Path| std::fs::symlink_metadata(p).map_err(io_err("read", p));
    let fence = ctime(&stat(&marker)?);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut mode = 0o600;
    loop {
        mode ^= 0o040;
        std::fs::set_permissions(&marker, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("change", &marker))?;
        if ctime(&stat(&marker)?) > fence {
            return Ok(fence);
        }
        if Instant::now() > deadline {
            return Err(SnapshotError::ClockStuck { path: marker });
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn copies_one_merged_directory_with_its_owner_and_mode() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        std::fs::create_dir_all(bottom.join("data/sub")).unwrap();
        std::fs::create_dir_all(top.join("data")).unwrap();
        std::fs::write(bottom.join("data/sub/f"), "below").unwrap();
        std::fs::write(bottom.join("data/gone"), "x").unwrap();
        std::fs::write(bottom.join("outside"), "x").unwrap();
        std::fs::set_permissions(top.join("data"), PermissionsExt::from_mode(0o750)).unwrap();
        // a whiteout (root only: mknod) hides the file below
        let whiteout = nix::sys::stat::mknod(
            &top.join("data/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok();
        let lowers = [top, bottom];
        let dest = t.path().join("volume");
        std::fs::create_dir(&dest).unwrap();
        assert!(copy_merged_dir(&lowers, Path::new("/data"), &dest).unwrap());
        let mut names: Vec<_> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            if whiteout {
                vec!["sub"]
            } else {
                vec!["gone", "sub"]
            }
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("sub/f")).unwrap(),
            "below"
        );
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o750);
        // a file, or nothing, at the path: nothing copied
        assert!(!copy_merged_dir(&lowers, Path::new("/outside"), &dest).unwrap());
        assert!(!copy_merged_dir(&lowers, Path::new("/none"), &dest).unwrap());
    }

    #[test]
    fn copies_the_merged_view_with_metadata_and_hard_links() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        for d in [&top, &bottom] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
        }
        std::fs::write(bottom.join("etc/a"), "old").unwrap();
        std::fs::write(top.join("etc/a"), "new").unwrap();
        std::fs::write(bottom.join("etc/b"), "bee").unwrap();
        std::fs::hard_link(bottom.join("etc/b"), bottom.join("etc/b2")).unwrap();
        symlink("a", top.join("etc/link")).unwrap();
        std::fs::set_permissions(bottom.join("etc/b"), PermissionsExt::from_mode(0o4751)).unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let base = materialize(&[top, bottom.clone()], &rootfs, t.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/a")).unwrap(),
            "new"
        );
        let b = std::fs::symlink_metadata(rootfs.join("etc/b")).unwrap();
        let b2 = std::fs::symlink_metadata(rootfs.join("etc/b2")).unwrap();
        let src = std::fs::symlink_metadata(bottom.join("etc/b")).unwrap();
        assert_eq!(b.ino(), b2.ino());
        assert_ne!(b.ino(), src.ino(), "never a hard link into a lower");
        assert_eq!(b.mode() & 0o7777, 0o4751);
        assert_eq!((b.mtime(), b.mtime_nsec()), (src.mtime(), src.mtime_nsec()));
        assert_eq!(
            std::fs::read_link(rootfs.join("etc/link")).unwrap(),
            Path::new("a")
        );
        assert!(ctime(&b) <= base.fence);
        // The root, etc, a, b, b2 and link.
        assert_eq!(base.inodes.len(), 6);
        assert_eq!(base.inodes[Path::new("etc/b2")], b.ino());
        assert_eq!(
            base.inodes[Path::new("etc")],
            std::fs::metadata(rootfs.join("etc")).unwrap().ino()
        );
        // Anything done now is dated after the fence.
        std::fs::write(rootfs.join("etc/a"), "changed").unwrap();
        let a = std::fs::symlink_metadata(rootfs.join("etc/a")).unwrap();
        assert!(ctime(&a) > base.fence);
    }
}
