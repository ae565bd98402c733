//! Root filesystems of build steps: the parent's layers unpacked once into
//! snapshot directories (shared by every step and every build), stacked
//! with overlayfs under a fresh upper directory per step; the upper
//! directory becomes the step's layer.
//!
//! The overlay is mounted inside the sandbox for RUN. File operations
//! (COPY, WORKDIR) need the merged view on the host: they run on a thread
//! of their own that first moves into a private mount namespace, mounts
//! the stack there and works through it; the mount disappears with the
//! thread, so nothing is ever left mounted on the host, even after a
//! crash.

use std::path::{Path, PathBuf};

use kiln_executor::{ActiveSnapshot, LayerOptions, Snapshotter};
use kiln_registry::Store;
use kiln_solver::Layer;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use super::error::BuildWorkerError;
use super::image::to_store_layer;

/// A step's writable root filesystem.
#[derive(Debug)]
pub struct BuildRootfs {
    pub snapshot: ActiveSnapshot,
}

/// The snapshot directories of `parent` (unpacked when missing), topmost
/// first, as overlayfs wants them. An empty chain is one empty directory.
pub fn lowers(
    store: &Store,
    root: &Path,
    parent: &[Layer],
) -> Result<Vec<PathBuf>, BuildWorkerError> {
    if parent.is_empty() {
        let empty = root.join("snapshots/empty");
        std::fs::create_dir_all(&empty).map_err(BuildWorkerError::io("create", &empty))?;
        return Ok(vec![empty]);
    }
    let mut dirs = Vec::with_capacity(parent.len());
    for l in parent {
        dirs.push(store.unpack_layer(&to_store_layer(l))?);
    }
    dirs.reverse();
    Ok(dirs)
}

/// Prepares a step's rootfs over `parent` (blocking).
pub fn prepare(
    store: &Store,
    snapshotter: &Snapshotter,
    root: &Path,
    parent: &[Layer],
) -> Result<BuildRootfs, BuildWorkerError> {
    let lowers = lowers(store, root, parent)?;
    Ok(BuildRootfs {
        snapshot: snapshotter.prepare(&lowers)?,
    })
}

/// Writes the step's changes as a layer (blocking); `None` when it changed
/// nothing.
pub fn commit(
    store: &Store,
    rootfs: BuildRootfs,
    source_date_epoch: Option<i64>,
) -> Result<Option<Layer>, BuildWorkerError> {
    let start = std::time::Instant::now();
    let info = rootfs
        .snapshot
        .write_layer(store, &LayerOptions { source_date_epoch })?;
    tracing::debug!(
        diff_id = %info.diff_id,
        size = info.size,
        entries = info.entries,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "step committed"
    );
    if info.entries == 0 {
        return Ok(None);
    }
    keep_as_snapshot(store, &rootfs, &info.diff_id);
    Ok(Some(Layer {
        diff_id: info.diff_id.clone(),
        blob: oci_spec::image::Descriptor::new(
            oci_spec::image::MediaType::Other(kiln_executor::LAYER_MEDIA_TYPE.to_string()),
            info.size,
            info.diff_id,
        ),
    }))
}

/// An overlay stack to mount: lowers (topmost first), an optional
/// (upper, work) pair, and the mountpoint.
pub type StackMount = (Vec<PathBuf>, Option<(PathBuf, PathBuf)>, PathBuf);

/// Keeps the step's upper directory as the snapshot of the layer it just
/// became: it already is that layer in overlay-lower form (whiteouts as 0/0
/// character devices, opaque directories marked), so the next step stacks
/// it directly instead of unpacking the tar just written — as
/// containers/storage stacks layer diff directories. It is adopted unsynced
/// (trusted for this boot: see `Store::adopt_snapshot`); when the snapshot
/// exists already (another build made the same layer), the upper directory
/// goes away with the step.
fn keep_as_snapshot(store: &Store, rootfs: &BuildRootfs, diff_id: &oci_spec::image::Digest) {
    // Only an overlay upper dir is the layer alone; a plain-copy snapshot
    // holds the whole filesystem.
    if rootfs.snapshot.mode() != kiln_executor::SnapshotMode::Overlay {
        return;
    }
    match store.adopt_snapshot(&rootfs.snapshot.upper(), diff_id) {
        Ok(true) => tracing::debug!(%diff_id, "kept the step's upper dir as the layer snapshot"),
        Ok(false) => {}
        Err(e) => tracing::debug!(%diff_id, error = %e, "layer snapshot not kept"),
    }
}

/// The overlay mount options for `lowers` (topmost first) and an optional
/// upper/work pair.
fn overlay_options(lowers: &[PathBuf], upper: Option<(&Path, &Path)>) -> String {
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    match upper {
        Some((u, w)) => format!(
            "lowerdir={lower},upperdir={},workdir={}",
            u.display(),
            w.display()
        ),
        None => format!("lowerdir={lower}"),
    }
}

/// Runs `f` on a new thread inside a private mount namespace where the
/// given overlay stacks are mounted; returns what `f` returns. Each mount is
/// (lowers topmost first, optional (upper, work), mountpoint). A stack of a
/// single read-only lower is used as it is, without a mount.
pub fn with_mounted<R: Send + 'static>(
    mounts: Vec<StackMount>,
    f: impl FnOnce(&[PathBuf]) -> Result<R, BuildWorkerError> + Send + 'static,
) -> Result<R, BuildWorkerError> {
    let handle = std::thread::Builder::new()
        .name("kiln-fileop".into())
        .spawn(move || {
            // A private mount namespace for this thread only: mounts made
            // here are invisible to the host and vanish with the thread.
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).map_err(|e| {
                BuildWorkerError::io("enter a private mount namespace for", "/")(e.into())
            })?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| BuildWorkerError::io("make mounts private under", "/")(e.into()))?;
            let mut roots = Vec::with_capacity(mounts.len());
            let mut mounted = Vec::new();
            for (lowers, upper, point) in &mounts {
                if upper.is_none() && lowers.len() == 1 {
                    roots.push(lowers[0].clone());
                    continue;
                }
                let opts = overlay_options(
                    lowers,
                    upper.as_ref().map(|(u, w)| (u.as_path(), w.as_path())),
                );
                let flags = if upper.is_none() {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
                // `volatile` (Linux 5.10+): no sync of the whole upper
                // filesystem when the mount goes away; the upper becomes an
                // unsynced snapshot (`Store::adopt_snapshot`)
                let volatile = format!("{opts},volatile");
                let tried = match upper {
                    Some((_, work)) => {
                        // a marker of an earlier volatile mount of this
                        // upper refuses any new mount
                        let _ = std::fs::remove_dir_all(work.join("work/incompat"));
                        mount(
                            Some("overlay"),
                            point,
                            Some("overlay"),
                            flags,
                            Some(volatile.as_str()),
                        )
                    }
                    None => Err(nix::errno::Errno::EINVAL),
                };
                tried
                    .or_else(|e| match e {
                        nix::errno::Errno::EINVAL => mount(
                            Some("overlay"),
                            point,
                            Some("overlay"),
                            flags,
                            Some(opts.as_str()),
                        ),
                        e => Err(e),
                    })
                    .map_err(|e| BuildWorkerError::io("mount an overlay on", point)(e.into()))?;
                mounted.push(point.clone());
                roots.push(point.clone());
            }
            let r = f(&roots);
            for p in mounted.iter().rev() {
                let _ = umount2(p, MntFlags::MNT_DETACH);
            }
            r
        })
        .map_err(BuildWorkerError::io(
            "start a thread for",
            "a file operation",
        ))?;
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
