//! Layer unpacking: a layer blob (gzip, zstd or uncompressed, detected by
//! its bytes) streamed into a directory, its uncompressed digest checked
//! against the diffID.
//!
//! Two modes:
//! - [`UnpackMode::OverlayLower`]: each layer into its own empty directory,
//!   the snapshot `<root>/snapshots/layers/<diffID hex>/`, usable as an
//!   overlayfs lower dir: a whiteout `.wh.x` becomes a 0/0 character device
//!   `x`, an opaque directory gets the xattr `trusted.overlay.opaque=y`
//!   (`user.overlay.opaque` when not root, for `userxattr` mounts). Built in
//!   `tmp/` and renamed into place: a snapshot that exists is complete.
//! - [`UnpackMode::Apply`]: layers applied one after another onto one
//!   directory (the plain-copy fallback, checks against `umoci`): whiteouts
//!   delete what lower layers put there.
//!
//! Hostile archives: names are relative without `..` (else refused); every
//! parent directory is resolved inside the root (see `resolve.rs`), and in
//! overlay mode a path through a symlink is refused (a layer's own tree
//! never needs one); final components are replaced, never followed;
//! hardlink targets are resolved the same way and may not be directories;
//! overlayfs xattrs (`trusted.overlay.*`, `user.overlay.*`) in an archive
//! are refused. Ownership, modes, xattrs, hardlinks, symlinks and times are
//! kept; device nodes are made when root and skipped (with a warning)
//! otherwise.

mod extract;
#[cfg(test)]
mod hostile_tests;
mod path;
mod resolve;
#[cfg(test)]
pub(crate) mod test_tar;
#[cfg(test)]
mod tests;
mod whiteout;

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::store::decompress::{HashingReader, decompressed};
use crate::store::media::{self, DocKind};
use crate::store::{Image, Layer, Store, StoreError};

/// How whiteouts are written; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackMode {
    OverlayLower,
    Apply,
}

/// What an unpack wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub whiteouts: u64,
    /// Device nodes not made (not root).
    pub skipped_devices: u64,
    /// Extended attributes this filesystem or user could not set.
    pub skipped_xattrs: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Why a layer could not be unpacked. Nothing of a failed snapshot unpack
/// is left visible.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read layer {layer}")]
    Read {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("layer archive is malformed{}", entry.as_ref().map(|e| format!(" at entry {e:?}")).unwrap_or_default())]
    Tar {
        entry: Option<String>,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?} refused: {reason}")]
    BadName { entry: String, reason: &'static str },
    #[error("layer entry {entry:?} refused: its path goes through the symlink {symlink:?}")]
    ThroughSymlink { entry: String, symlink: String },
    #[error("layer entry {entry:?} refused: {path:?} is not a directory")]
    NotADirectory { entry: String, path: String },
    #[error("layer entry {entry:?} refused: too many levels of symlinks")]
    TooManySymlinks { entry: String },
    #[error("layer hardlink {entry:?} -> {target:?} refused: {reason}")]
    BadHardlink {
        entry: String,
        target: String,
        reason: &'static str,
    },
    #[error("layer entry {entry:?} refused: it carries the overlayfs attribute {xattr:?}")]
    ForbiddenXattr { entry: String, xattr: String },
    #[error("layer entry {entry:?} has an unsupported type {:?}", *kind as char)]
    UnsupportedEntry { entry: String, kind: u8 },
    #[error("cannot {op} for layer entry {entry:?}")]
    Io {
        op: &'static str,
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot {op} {path}")]
    Fs {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer content does not match its diffID: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
}

/// Unpacks a layer stream (any compression) into the existing directory
/// `target`. With `expected_diff_id`, the uncompressed stream's sha256 must
/// match — checked at the end, so in [`UnpackMode::Apply`] a mismatching
/// layer has already changed `target`: apply into a scratch directory and
/// discard it on error.
pub fn unpack_stream<R: Read + Send>(
    reader: R,
    target: &Path,
    mode: UnpackMode,
    expected_diff_id: Option<&Digest>,
    layer_name: &str,
) -> Result<UnpackStats, UnpackError> {
    let read_err = |source| UnpackError::Read {
        layer: layer_name.to_string(),
        source,
    };
    let (_, plain) = decompressed(reader, None).map_err(read_err)?;
    let mut hashing = HashingReader::new(plain);
    let root = resolve::RootDir::open(target, mode == UnpackMode::Apply).map_err(|source| {
        UnpackError::Fs {
            op: "open",
            path: target.to_path_buf(),
            source,
        }
    })?;
    let mut ex = extract::Extractor::new(root, mode);
    ex.extract(&mut hashing)?;
    let (actual, _) = hashing.finish().map_err(|source| UnpackError::Read {
        layer: layer_name.to_string(),
        source,
    })?;
    if let Some(expected) = expected_diff_id
        && expected != &actual
    {
        return Err(UnpackError::DiffIdMismatch {
            expected: expected.clone(),
            actual,
        });
    }
    Ok(ex.stats)
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
fn current_boot_id() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
    })
    .as_deref()
}

impl Store {
    /// Where the snapshot of the layer with this diffID lives (whether or
    /// not it exists): `snapshots/layers/<hex>`.
    pub fn snapshot_path(&self, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let hex = crate::store::sha256_hex(diff_id)?;
        Ok(self.root().join("snapshots/layers").join(hex))
    }

    /// The snapshot of this diffID, if it has been unpacked (and, for a
    /// snapshot adopted unsynced, in this boot: see
    /// [`Store::adopt_snapshot`]).
    pub fn snapshot(&self, diff_id: &Digest) -> Option<PathBuf> {
        let path = self.snapshot_path(diff_id).ok()?;
        (path.is_dir() && self.snapshot_durable_or_current(diff_id)).then_some(path)
    }

    /// Where the marker of an unsynced snapshot lives:
    /// `snapshots/volatile/<hex>`, holding the boot id it was made in.
    fn volatile_marker(&self, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let hex = crate::store::sha256_hex(diff_id)?;
        Ok(self.root().join("snapshots/volatile").join(hex))
    }

    /// Whether the snapshot of `diff_id` was synced (no marker) or was made
    /// unsynced in this boot, so the page cache still holds what it lacks
    /// on disk.
    fn snapshot_durable_or_current(&self, diff_id: &Digest) -> bool {
        let Ok(marker) = self.volatile_marker(diff_id) else {
            return false;
        };
        match fs::read_to_string(&marker) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Ok(boot) => current_boot_id().is_some_and(|b| b == boot.trim()),
            Err(_) => false,
        }
    }

    /// Makes the directory `dir` (a build step's overlay upper directory,
    /// which is that layer in overlay-lower form) the snapshot of
    /// `diff_id`, by a rename, without syncing it: syncing a step's files
    /// costs a sync of the whole filesystem, at every step. The snapshot is
    /// marked with this boot's id and trusted in this boot only; after a
    /// reboot (which may have been a crash that lost some of its data) it is
    /// unpacked again from its blob, which is synced. Returns `false` when
    /// the snapshot exists already (`dir` is left to the caller).
    pub fn adopt_snapshot(&self, dir: &Path, diff_id: &Digest) -> Result<bool, UnpackError> {
        let dest = self.snapshot_path(diff_id)?;
        let marker = self.volatile_marker(diff_id)?;
        let _lease = self.lease()?;
        let hex = crate::store::sha256_hex(diff_id)?.to_string();
        let _lock = crate::store::lock::FileLock::exclusive(
            &self.root().join(format!("locks/layer-{hex}.lock")),
        )?;
        if dest.is_dir() {
            if self.snapshot_durable_or_current(diff_id) {
                return Ok(false);
            }
            self.discard_snapshot(&dest, &marker)?;
        }
        let boot = current_boot_id().ok_or_else(|| UnpackError::Fs {
            op: "read the boot id for",
            path: dest.clone(),
            source: io::Error::from(io::ErrorKind::Unsupported),
        })?;
        for d in [marker.parent(), dest.parent()].into_iter().flatten() {
            fs::create_dir_all(d).map_err(|source| UnpackError::Fs {
                op: "create",
                path: d.to_path_buf(),
                source,
            })?;
        }
        // The marker first: a snapshot is never visible unmarked.
        fs::write(&marker, format!("{boot}\n")).map_err(|source| UnpackError::Fs {
            op: "write",
            path: marker.clone(),
            source,
        })?;
        match nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            dir,
            nix::fcntl::AT_FDCWD,
            &dest,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => Ok(true),
            Err(e) => Err(UnpackError::Fs {
                op: "rename into place",
                path: dest,
                source: e.into(),
            }),
        }
    }

    /// Removes a snapshot that cannot be trusted any more, and its marker.
    fn discard_snapshot(&self, dest: &Path, marker: &Path) -> Result<(), UnpackError> {
        let tmp = self.tmp_name("stale-snapshot");
        fs::rename(dest, &tmp).map_err(|source| UnpackError::Fs {
            op: "move aside",
            path: dest.to_path_buf(),
            source,
        })?;
        crate::store::gc::remove_tree(&tmp)?;
        match fs::remove_file(marker) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(UnpackError::Fs {
                op: "remove",
                path: marker.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Unpacks a layer as an overlay lower dir (see the module docs) and
    /// returns its snapshot directory; an existing snapshot is returned at
    /// once. Safe with other processes unpacking the same layer: one does
    /// the work, the others wait for it.
    pub fn unpack_layer(&self, layer: &Layer) -> Result<PathBuf, UnpackError> {
        let dest = self.snapshot_path(&layer.diff_id)?;
        if dest.is_dir() && self.snapshot_durable_or_current(&layer.diff_id) {
            return Ok(dest);
        }
        let _lease = self.lease()?;
        let hex = crate::store::sha256_hex(&layer.diff_id)?.to_string();
        let _lock = crate::store::lock::FileLock::exclusive(
            &self.root().join(format!("locks/layer-{hex}.lock")),
        )?;
        if dest.is_dir() {
            if self.snapshot_durable_or_current(&layer.diff_id) {
                return Ok(dest);
            }
            // unsynced and from an earlier boot: unpack it again
            self.discard_snapshot(&dest, &self.volatile_marker(&layer.diff_id)?)?;
        }
        if let DocKind::Layer(_) | DocKind::Unknown =
            media::kind_of_media(layer.descriptor.media_type())
        {
        } else {
            return Err(StoreError::UnexpectedMediaType {
                digest: layer.descriptor.digest().clone(),
                media_type: layer.descriptor.media_type().to_string(),
                expected: "a layer",
            }
            .into());
        }
        let start = std::time::Instant::now();
        let tmp = self.tmp_name("unpack");
        fs::create_dir(&tmp).map_err(|source| UnpackError::Fs {
            op: "create",
            path: tmp.clone(),
            source,
        })?;
        let result = (|| {
            let blob =
                BufReader::with_capacity(1 << 20, self.open_blob(layer.descriptor.digest())?);
            let stats = unpack_stream(
                blob,
                &tmp,
                UnpackMode::OverlayLower,
                Some(&layer.diff_id),
                layer.descriptor.digest().as_ref(),
            )?;
            // the files' data reaches the disk before the snapshot is visible
            let dir = fs::File::open(&tmp).map_err(|source| UnpackError::Fs {
                op: "open",
                path: tmp.clone(),
                source,
            })?;
            nix::unistd::syncfs(&dir).map_err(|e| UnpackError::Fs {
                op: "sync",
                path: tmp.clone(),
                source: e.into(),
            })?;
            let parent = dest.parent().expect("snapshot paths have a parent");
            fs::create_dir_all(parent).map_err(|source| UnpackError::Fs {
                op: "create",
                path: parent.to_path_buf(),
                source,
            })?;
            match nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &tmp,
                nix::fcntl::AT_FDCWD,
                &dest,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {}
                Err(nix::errno::Errno::EEXIST) => {
                    crate::store::gc::remove_tree(&tmp)?;
                }
                Err(e) => {
                    return Err(UnpackError::Fs {
                        op: "rename into place",
                        path: dest.clone(),
                        source: e.into(),
                    });
                }
            }
            crate::store::fsync_dir(parent)?;
            // synced: no longer bound to this boot
            let marker = self.volatile_marker(&layer.diff_id)?;
            match fs::remove_file(&marker) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(UnpackError::Fs {
                        op: "remove",
                        path: marker,
                        source: e,
                    });
                }
                _ => {}
            }
            Ok(stats)
        })();
        match result {
            Ok(stats) => {
                tracing::debug!(diff_id = %layer.diff_id, files = stats.files, bytes = stats.bytes,
                    elapsed_ms = start.elapsed().as_millis() as u64, "unpacked layer");
                Ok(dest)
            }
            Err(e) => {
                let _ = crate::store::gc::remove_tree(&tmp);
                Err(e)
            }
        }
    }

    /// Unpacks every layer of an image (see [`Store::unpack_layer`]);
    /// returns the snapshot directories base first (overlayfs wants
    /// `lowerdir=` top first: reverse them).
    pub fn unpack_image(&self, image: &Image) -> Result<Vec<PathBuf>, UnpackError> {
        image.layers.iter().map(|l| self.unpack_layer(l)).collect()
    }

    /// Unpacks the layers of an image not unpacked yet, several at once
    /// (up to the core count): what `pull`, `load` and `import` do, so that
    /// builds and runs from the image find its snapshots ready. Returns the
    /// first error.
    pub fn unpack_image_parallel(&self, image: &Image) -> Result<(), UnpackError> {
        let todo: Vec<&Layer> = image
            .layers
            .iter()
            .filter(|l| self.snapshot(&l.diff_id).is_none())
            .collect();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(todo.len());
        if workers <= 1 {
            return todo.iter().try_for_each(|l| self.unpack_layer(l).map(drop));
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(l) = todo.get(i) else {
                                return Ok(());
                            };
                            self.unpack_layer(l)?;
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<()>, UnpackError>>()
                .map(drop)
        })
    }

    /// Applies one layer onto the directory `target` (see
    /// [`UnpackMode::Apply`] and [`unpack_stream`] on errors).
    pub fn apply_layer(&self, layer: &Layer, target: &Path) -> Result<UnpackStats, UnpackError> {
        let blob = BufReader::with_capacity(1 << 20, self.open_blob(layer.descriptor.digest())?);
        unpack_stream(
            blob,
            target,
            UnpackMode::Apply,
            Some(&layer.diff_id),
            layer.descriptor.digest().as_ref(),
        )
    }

    /// Applies all of an image's layers onto the (empty) directory `target`:
    /// its root filesystem as a plain directory tree.
    pub fn apply_image(&self, image: &Image, target: &Path) -> Result<UnpackStats, UnpackError> {
        let mut total = UnpackStats::default();
        for layer in &image.layers {
            let s = self.apply_layer(layer, target)?;
            total.files += s.files;
            total.dirs += s.dirs;
            total.symlinks += s.symlinks;
            total.hardlinks += s.hardlinks;
            total.devices += s.devices;
            total.whiteouts += s.whiteouts;
            total.skipped_devices += s.skipped_devices;
            total.skipped_xattrs += s.skipped_xattrs;
            total.bytes += s.bytes;
        }
        Ok(total)
    }
}
