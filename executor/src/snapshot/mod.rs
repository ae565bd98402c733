//! Snapshots: a rootfs state is a stack of unpacked layer directories
//! (`<root>/snapshots/layers/<diffID hex>/`, written by kiln-registry's
//! unpacker) plus, per step, a place for the step's changes. Two modes:
//!
//! - [`SnapshotMode::Overlay`]: the stack is mounted with overlayfs under a
//!   fresh upper directory, inside the sandbox's own mount namespace (never
//!   on the host, so nothing can be left mounted); the step's diff is read
//!   from the upper directory alone.
//! - [`SnapshotMode::Copy`], the fallback where overlayfs is not usable
//!   (no overlay module, or a kiln root on a filesystem overlayfs refuses
//!   as upper, such as overlayfs itself inside a container): the stack's
//!   merged view is copied into a directory the step runs in (`copy.rs`),
//!   and the diff compares it with the stack.
//!
//! [`Snapshotter::open`] picks overlay when a test mount works, else the
//! copy; `KILN_SNAPSHOTTER=overlay|copy` forces one (tests run the same
//! expectations on both). Either way the same step gives the same layer.
//!
//! Active snapshots live in `<root>/snapshots/active/<pid>-<n>/` (`upper/`,
//! `work/`, `merged/`, or `rootfs/`) and are removed when dropped; those of
//! processes that died are removed by the next [`Snapshotter::open`].

mod copy;
mod probe;

pub use copy::copy_merged_dir;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_registry::Store;
use oci_spec::image::Digest;

use crate::fileop::FileOpError;
use crate::layer::{Baseline, LayerError, LayerInfo, LayerOptions, write_copy_layer, write_layer};
use crate::sandbox::{OverlayRootfs, Rootfs};

/// The environment variable that forces a snapshot mode: `overlay` or
/// `copy`.
pub const SNAPSHOTTER_ENV: &str = "KILN_SNAPSHOTTER";

/// How a step's rootfs is made and its changes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// overlayfs over the shared layer directories, a fresh upper per step.
    Overlay,
    /// A plain copy of the layers per step, compared with them afterwards.
    Copy,
}

impl SnapshotMode {
    /// `overlay` or `copy`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMode::Overlay => "overlay",
            SnapshotMode::Copy => "copy",
        }
    }
}

impl std::fmt::Display for SnapshotMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot copy {path} into a plain snapshot")]
    Copy {
        path: PathBuf,
        #[source]
        source: FileOpError,
    },
    #[error("overlayfs is not usable under {path}")]
    NoOverlay { path: PathBuf },
    #[error("unknown snapshot mode {value:?} in ${SNAPSHOTTER_ENV}: expected overlay or copy")]
    UnknownMode { value: String },
    #[error("the filesystem clock does not advance on {path}")]
    ClockStuck { path: PathBuf },
    #[error("a snapshot needs at least one layer")]
    NoLayers,
}

impl SnapshotError {
    fn copy(path: &Path) -> impl FnOnce(FileOpError) -> SnapshotError {
        let path = path.to_path_buf();
        move |source| SnapshotError::Copy { path, source }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { op, path, source }
}

/// ext4's "top of directory hierarchy" flag (`chattr +T`).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` as the top of directory hierarchies (`chattr +T`), so ext4's
/// Orlov allocator places each snapshot made in it in a block group of its
/// own choosing instead of next to its parent. Where many files were just
/// deleted (a pruned root, a removed snapshot), the parent's group is full
/// of recently freed inodes, which ext4 without a journal skips one inode
/// table lookup at a time: creating a step's files there measured 2.5 times
/// slower. Only a placement hint: other filesystems refuse the flag, and
/// that is ignored.
fn spread_subdirs(dir: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(d) = std::fs::File::open(dir) else {
        return;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one int through the
    // pointer, which points at a live local.
    unsafe {
        if libc::ioctl(d.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0
            || flags & FS_TOPDIR_FL != 0
        {
            return;
        }
        flags |= FS_TOPDIR_FL;
        let _ = libc::ioctl(d.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
    }
}

/// Creates snapshots under a kiln root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    mode: SnapshotMode,
}

impl Snapshotter {
    /// Opens `<kiln_root>/snapshots`, removing active snapshots of dead
    /// processes, in the mode `$KILN_SNAPSHOTTER` asks for, else overlay
    /// where a test mount works and copy otherwise (said once).
    pub fn open(kiln_root: &Path) -> Result<Snapshotter, SnapshotError> {
        let forced = match std::env::var(SNAPSHOTTER_ENV) {
            Ok(v) if v == "overlay" => Some(SnapshotMode::Overlay),
            Ok(v) if v == "copy" => Some(SnapshotMode::Copy),
            Ok(v) if v.is_empty() => None,
            Ok(value) => return Err(SnapshotError::UnknownMode { value }),
            Err(_) => None,
        };
        Snapshotter::open_with(kiln_root, forced)
    }

    /// Opens `<kiln_root>/snapshots` in `mode`, or the detected one for
    /// `None`. Overlay asked for where it is not usable is an error.
    pub fn open_with(
        kiln_root: &Path,
        mode: Option<SnapshotMode>,
    ) -> Result<Snapshotter, SnapshotError> {
        let dir = kiln_root.join("snapshots");
        for d in [dir.join("layers"), dir.join("active")] {
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        spread_subdirs(&dir.join("active"));
        if let Ok(rd) = std::fs::read_dir(dir.join("active")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                    continue;
                };
                if !Path::new("/proc").join(pid.to_string()).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let active = dir.join("active");
        let memo = dir.join("overlay-probe");
        let usable = || probe::overlay_usable(&active, Some(&memo));
        let mode = match mode {
            Some(SnapshotMode::Overlay) if !usable() => {
                return Err(SnapshotError::NoOverlay { path: active });
            }
            Some(m) => m,
            None if usable() => SnapshotMode::Overlay,
            None => {
                probe::warn_once(&active);
                SnapshotMode::Copy
            }
        };
        Ok(Snapshotter { dir, mode })
    }

    /// The mode snapshots are made in.
    pub fn mode(&self) -> SnapshotMode {
        self.mode
    }

    /// Where the unpacked layer with this diffID lives.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.digest())
    }

    /// A new snapshot over `lowers` (topmost first). Overlay: empty upper
    /// and work directories and a mountpoint for the sandbox. Copy: the
    /// lowers' merged view copied into a directory of its own.
    pub fn prepare(&self, lowers: &[PathBuf]) -> Result<ActiveSnapshot, SnapshotError> {
        static N: AtomicU64 = AtomicU64::new(0);
        if lowers.is_empty() {
            return Err(SnapshotError::NoLayers);
        }
        let dir = self.dir.join("active").join(format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let subs: &[&str] = match self.mode {
            SnapshotMode::Overlay => &["upper", "work", "merged"],
            SnapshotMode::Copy => &["rootfs"],
        };
        for sub in subs {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let mut snapshot = ActiveSnapshot {
            dir,
            lowers: lowers.to_vec(),
            copy: None,
        };
        if self.mode == SnapshotMode::Copy {
            let rootfs = snapshot.dir.join("rootfs");
            snapshot.copy = Some(copy::materialize(lowers, &rootfs, &snapshot.dir)?);
        }
        Ok(snapshot)
    }
}

/// One step's snapshot: layers plus its own place for changes. Removed
/// when dropped.
#[derive(Debug)]
pub struct ActiveSnapshot {
    dir: PathBuf,
    lowers: Vec<PathBuf>,
    /// For a plain copy: what it was made as.
    copy: Option<Baseline>,
}

impl ActiveSnapshot {
    /// The mode this snapshot was made in.
    pub fn mode(&self) -> SnapshotMode {
        match self.copy {
            Some(_) => SnapshotMode::Copy,
            None => SnapshotMode::Overlay,
        }
    }

    /// The rootfs to give the sandbox.
    pub fn rootfs(&self) -> Rootfs {
        match self.copy {
            Some(_) => Rootfs::Dir(self.upper()),
            None => Rootfs::Overlay(OverlayRootfs {
                lowers: self.lowers.clone(),
                upper: self.upper(),
                work: self.dir.join("work"),
                mountpoint: self.dir.join("merged"),
                volatile: true,
            }),
        }
    }

    /// The directory receiving the step's changes: the overlay upper
    /// directory, or the whole copied rootfs.
    pub fn upper(&self) -> PathBuf {
        match self.copy {
            Some(_) => self.dir.join("rootfs"),
            None => self.dir.join("upper"),
        }
    }

    /// The read-only layers, topmost first.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// Writes the step's changes as a layer blob into `store`.
    pub fn write_layer(
        &self,
        store: &Store,
        options: &LayerOptions,
    ) -> Result<LayerInfo, LayerError> {
        match &self.copy {
            Some(base) => write_copy_layer(store, &self.upper(), &self.lowers, base, options),
            None => write_layer(store, &self.upper(), &self.lowers, options),
        }
    }
}

impl Drop for ActiveSnapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(store: &Store, digest: &Digest) -> Vec<String> {
        let mut ar = tar::Archive::new(store.open_blob(digest).unwrap());
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    fn base(dir: &Path) -> PathBuf {
        let lower = dir.join("lower");
        for d in ["etc", "home/app", "usr/bin"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        for (f, text) in [
            ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
            ("etc/same", "same"),
            ("etc/x", "x"),
            ("etc/y", "y"),
            ("home/app/old", "old"),
            ("usr/bin/tool", "#!/bin/sh\n"),
        ] {
            std::fs::write(lower.join(f), text).unwrap();
        }
        lower
    }

    /// The step of the black-box diff tests, done by hand.
    fn step(fs: &Path, lower: &Path) {
        std::fs::write(fs.join("etc/newfile"), "new\n").unwrap();
        // Sorts before ".wh." by bytes; the whiteouts still come first.
        std::fs::write(fs.join("etc/+plus"), "+\n").unwrap();
        let mut passwd = std::fs::OpenOptions::new()
            .append(true)
            .open(fs.join("etc/passwd"))
            .unwrap();
        std::io::Write::write_all(&mut passwd, b"changed\n").unwrap();
        std::fs::remove_file(fs.join("etc/group")).unwrap();
        std::fs::remove_dir_all(fs.join("home/app")).unwrap();
        std::fs::create_dir_all(fs.join("home/app/x")).unwrap();
        std::fs::hard_link(fs.join("etc/newfile"), fs.join("etc/newlink")).unwrap();
        // A file renamed over another: the name that is left changed.
        std::fs::rename(fs.join("etc/x"), fs.join("etc/y")).unwrap();
        // Rewritten with the same bytes and times: not a change.
        std::fs::write(fs.join("etc/same"), "same").unwrap();
        let m = std::fs::metadata(lower.join("etc/same")).unwrap();
        let t = nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec());
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &fs.join("etc/same"),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn copy_snapshots_give_the_step_its_own_rootfs_and_find_its_changes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let store = Store::open(&root).unwrap();
        let lower = base(t.path());
        let snaps = Snapshotter::open_with(&root, Some(SnapshotMode::Copy)).unwrap();
        assert_eq!(snaps.mode(), SnapshotMode::Copy);
        let snap = snaps.prepare(std::slice::from_ref(&lower)).unwrap();
        assert_eq!(snap.mode(), SnapshotMode::Copy);
        let fs = snap.upper();
        assert_eq!(snap.rootfs(), Rootfs::Dir(fs.clone()));
        step(&fs, &lower);
        let opts = LayerOptions {
            source_date_epoch: Some(0),
        };
        let info = snap.write_layer(&store, &opts).unwrap();
        assert_eq!(
            names(&store, &info.diff_id),
            [
                "etc/",
                "etc/.wh.group",
                "etc/.wh.x",
                "etc/+plus",
                "etc/newfile",
                "etc/newlink",
                "etc/passwd",
                "etc/y",
                "home/",
                "home/app/",
                "home/app/.wh..wh..opq",
                "home/app/x/",
            ]
        );
        // The lowers are untouched.
        assert!(lower.join("etc/group").exists());
        assert!(!lower.join("etc/newfile").exists());
        assert_eq!(
            std::fs::read_to_string(lower.join("etc/passwd")).unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
        // Nothing changed since: the same layer again; and without the
        // baseline, the deleted directory's old entries are whited out one
        // by one instead.
        assert_eq!(snap.write_layer(&store, &opts).unwrap(), info);
        let plain = crate::layer::write_layer_from_copy(&store, &fs, &[lower], &opts).unwrap();
        let got = names(&store, &plain.diff_id);
        assert!(got.contains(&"home/app/.wh.old".to_string()), "{got:?}");
        assert!(!got.contains(&"home/app/.wh..wh..opq".to_string()));
        drop(snap);
        assert_eq!(
            std::fs::read_dir(root.join("snapshots/active"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn active_snapshots_spread_over_the_filesystem_where_it_can() {
        use std::os::fd::AsRawFd;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        Snapshotter::open_with(&root, Some(SnapshotMode::Copy)).unwrap();
        let d = std::fs::File::open(root.join("snapshots/active")).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: reads one int into a live local.
        let r = unsafe { libc::ioctl(d.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        let fs_type = nix::sys::statfs::fstatfs(&d).unwrap().filesystem_type();
        if r != 0 || fs_type != nix::sys::statfs::EXT4_SUPER_MAGIC {
            eprintln!("skipped: not ext4");
            return;
        }
        assert_ne!(flags & FS_TOPDIR_FL, 0);
    }

    #[test]
    fn an_unchanged_copy_gives_the_empty_layer() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let store = Store::open(&root).unwrap();
        let lower = base(t.path());
        let snaps = Snapshotter::open_with(&root, Some(SnapshotMode::Copy)).unwrap();
        let snap = snaps.prepare(&[lower]).unwrap();
        let info = snap.write_layer(&store, &LayerOptions::default()).unwrap();
        assert_eq!(info.entries, 0);
        assert_eq!(info.size, 1024);
    }
}
