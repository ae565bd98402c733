//! Snapshots: a rootfs state is a stack of unpacked layer directories
//! (`<root>/snapshots/layers/<diffID hex>/`, written by kiln-registry's
//! unpacker) plus, per step, a fresh upper directory. The stack is mounted
//! with overlayfs inside the sandbox's own mount namespace (never on the
//! host, so nothing can be left mounted); the step's diff is then read
//! from the upper directory alone ([`crate::layer`]).
//!
//! Active snapshots live in `<root>/snapshots/active/<pid>-<n>/` (`upper/`,
//! `work/`, `merged/`) and are removed when dropped; those of processes
//! that died are removed by the next [`Snapshotter::open`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_registry::Store;
use oci_spec::image::Digest;

use crate::layer::{LayerError, LayerInfo, LayerOptions, write_layer};
use crate::sandbox::{OverlayRootfs, Rootfs};

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
    #[error("overlayfs is not available on this host")]
    NoOverlay,
    #[error("a snapshot needs at least one layer")]
    NoLayers,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { op, path, source }
}

/// Creates snapshots under a kiln root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
}

impl Snapshotter {
    /// Opens `<kiln_root>/snapshots`, removing active snapshots of dead
    /// processes.
    pub fn open(kiln_root: &Path) -> Result<Snapshotter, SnapshotError> {
        let dir = kiln_root.join("snapshots");
        for d in [dir.join("layers"), dir.join("active")] {
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
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
        Ok(Snapshotter { dir })
    }

    /// Whether the kernel has overlayfs.
    pub fn overlay_supported() -> bool {
        std::fs::read_to_string("/proc/filesystems")
            .map(|s| s.lines().any(|l| l.trim_end().ends_with("\toverlay")))
            .unwrap_or(false)
    }

    /// Where the unpacked layer with this diffID lives.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.digest())
    }

    /// A new snapshot over `lowers` (topmost first): empty upper and work
    /// directories and a mountpoint for the sandbox.
    pub fn prepare(&self, lowers: &[PathBuf]) -> Result<ActiveSnapshot, SnapshotError> {
        static N: AtomicU64 = AtomicU64::new(0);
        if lowers.is_empty() {
            return Err(SnapshotError::NoLayers);
        }
        if !Snapshotter::overlay_supported() {
            return Err(SnapshotError::NoOverlay);
        }
        let dir = self.dir.join("active").join(format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for sub in ["upper", "work", "merged"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        Ok(ActiveSnapshot {
            dir,
            lowers: lowers.to_vec(),
        })
    }
}

/// One step's snapshot: layers plus its own upper directory. Removed when
/// dropped.
#[derive(Debug)]
pub struct ActiveSnapshot {
    dir: PathBuf,
    lowers: Vec<PathBuf>,
}

impl ActiveSnapshot {
    /// The rootfs to give the sandbox.
    pub fn rootfs(&self) -> Rootfs {
        Rootfs::Overlay(OverlayRootfs {
            lowers: self.lowers.clone(),
            upper: self.upper(),
            work: self.dir.join("work"),
            mountpoint: self.dir.join("merged"),
        })
    }

    /// The directory receiving the step's changes.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
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
        write_layer(store, &self.upper(), &self.lowers, options)
    }
}

impl Drop for ActiveSnapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
