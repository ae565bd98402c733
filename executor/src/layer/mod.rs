//! Layers: a step's changes written as an uncompressed OCI layer tar
//! straight into the store, hashed while it is written (the blob digest is
//! the diffID), never held in memory. The changes are read from the
//! step's overlay upper directory (`upper.rs`) or, for plain-copy
//! snapshots, found by comparing the rootfs with its lowers
//! (`compare.rs`); both give the same entries for the same step.
//! Compression happens later, when the layer is pushed or saved. Archiving
//! and hashing + writing run on two threads (`piped.rs`).
//!
//! # Reproducibility
//!
//! Two layers are byte-identical when their entries are: the same paths,
//! kinds, contents, modes, owners, extended attributes, link targets and
//! modification times (whole seconds). The order is fixed (a directory
//! before its children, siblings by byte order), user/group names are
//! empty, access and change times are not recorded. Modification times are
//! what the step left unless [`LayerOptions::source_date_epoch`] clamps
//! them (every later time becomes the epoch): with it, the same step run
//! twice gives the same digest even though it ran at different times.

mod changes;
mod compare;
mod pax;
mod piped;
mod upper;

pub use changes::{DiffReadError, OPAQUE_MARKER, WHITEOUT_PREFIX};
pub(crate) use compare::{Baseline, ctime};

use std::io;
use std::path::{Path, PathBuf};

use kiln_registry::{Store, StoreError};
use oci_spec::image::Digest;

/// Media type of the layers kiln stores locally.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// How to write a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// Clamp modification times to this (seconds since the epoch), as
    /// `SOURCE_DATE_EPOCH` asks.
    pub source_date_epoch: Option<i64>,
}

/// A layer written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The blob's digest, which for an uncompressed layer is its diffID.
    pub diff_id: Digest,
    pub size: u64,
    /// Entries in the tar (0: the step changed nothing).
    pub entries: usize,
}

/// Errors writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Read(#[from] DiffReadError),
    #[error("cannot archive {path}")]
    Archive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the layer to the store")]
    Store(#[source] StoreError),
    #[error("cannot write the layer to the store")]
    Write(#[source] io::Error),
}

/// Writes the changes in the overlay upper directory `upper` (over
/// `lowers`, topmost first; used to leave out directories overlayfs only
/// copied up) as a layer blob.
pub fn write_layer(
    store: &Store,
    upper: &Path,
    lowers: &[PathBuf],
    options: &LayerOptions,
) -> Result<LayerInfo, LayerError> {
    write_changes(store, &upper::read_changes(upper, lowers)?, options)
}

/// Writes what a step changed in the plain-copy `rootfs` of its lowers
/// (topmost first) as a layer blob, comparing every entry with the lowers
/// (see `compare.rs`; snapshots pass what they know of the copy instead).
pub fn write_layer_from_copy(
    store: &Store,
    rootfs: &Path,
    lowers: &[PathBuf],
    options: &LayerOptions,
) -> Result<LayerInfo, LayerError> {
    write_changes(
        store,
        &compare::read_changes(rootfs, lowers, None)?,
        options,
    )
}

/// [`write_layer_from_copy`] with the snapshot's baseline.
pub(crate) fn write_copy_layer(
    store: &Store,
    rootfs: &Path,
    lowers: &[PathBuf],
    baseline: &Baseline,
    options: &LayerOptions,
) -> Result<LayerInfo, LayerError> {
    let changes = compare::read_changes(rootfs, lowers, Some(baseline))?;
    write_changes(store, &changes, options)
}

fn write_changes(
    store: &Store,
    changes: &[changes::Change],
    options: &LayerOptions,
) -> Result<LayerInfo, LayerError> {
    let writer = store.blob_writer().map_err(LayerError::Store)?;
    let mut builder = tar::Builder::new(piped::Piped::new(writer).map_err(LayerError::Write)?);
    for change in changes {
        pax::append(&mut builder, change, options.source_date_epoch).map_err(|source| {
            LayerError::Archive {
                path: change.source.clone().unwrap_or_else(|| change.path.clone()),
                source,
            }
        })?;
    }
    let piped = builder.into_inner().map_err(LayerError::Write)?;
    let writer = piped.finish().map_err(LayerError::Write)?;
    let info = writer.commit(None).map_err(LayerError::Store)?;
    tracing::debug!(diff_id = %info.digest, size = info.size, entries = changes.len(), "layer written");
    Ok(LayerInfo {
        diff_id: info.digest,
        size: info.size,
        entries: changes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(store: &Store, digest: &Digest) -> Vec<(String, tar::EntryType, u64)> {
        let mut ar = tar::Archive::new(store.open_blob(digest).unwrap());
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn files_links_whiteouts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let upper = dir.path().join("upper");
        let lower = dir.path().join("lower");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(upper.join("etc/b"), "bee").unwrap();
        // '+' sorts before '.' by bytes, but whiteouts come first.
        std::fs::write(upper.join("etc/+plus"), "plus").unwrap();
        set_mtime(&lower.join("etc"), 1000);
        std::fs::write(upper.join("a"), "a").unwrap();
        std::fs::hard_link(upper.join("a"), upper.join("z")).unwrap();
        symlink("/etc/b", upper.join("link")).unwrap();
        let long = "d".repeat(120);
        std::fs::write(upper.join(&long), "long").unwrap();
        if nix::unistd::geteuid().is_root() {
            nix::sys::stat::mknod(
                &upper.join("etc/gone"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let opts = LayerOptions {
            source_date_epoch: Some(10),
        };
        let info = write_layer(&store, &upper, std::slice::from_ref(&lower), &opts).unwrap();
        let got = entries(&store, &info.diff_id);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        let mut want = vec![
            "a",
            long.as_str(),
            "etc/",
            "etc/+plus",
            "etc/b",
            "link",
            "z",
        ];
        if nix::unistd::geteuid().is_root() {
            want.insert(3, "etc/.wh.gone");
        }
        assert_eq!(names, want);
        assert_eq!(got.last().unwrap().1, tar::EntryType::Link);
        assert!(got.iter().all(|(_, _, m)| *m == 10));
        // Same content, same bytes.
        let again = write_layer(&store, &upper, &[lower], &opts).unwrap();
        assert_eq!(again.diff_id, info.diff_id);
        assert_eq!(info.size, store.blob_size(&info.diff_id).unwrap());
    }

    #[test]
    fn copied_up_unchanged_directories_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let upper = dir.path().join("upper");
        let lower = dir.path().join("lower");
        std::fs::create_dir_all(upper.join("usr/bin")).unwrap();
        std::fs::create_dir_all(lower.join("usr/bin")).unwrap();
        std::fs::write(upper.join("usr/bin/tool"), "x").unwrap();
        // usr/bin/ changed (a new file), usr/ did not.
        set_mtime(&lower.join("usr/bin"), 1000);
        // usr/ as overlayfs copies it up: same metadata as the lower one.
        let lower_meta = std::fs::metadata(lower.join("usr")).unwrap();
        let t = filetime_of(&lower_meta);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &upper.join("usr"),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap();
        let info = write_layer(&store, &upper, &[lower], &LayerOptions::default()).unwrap();
        let names: Vec<String> = entries(&store, &info.diff_id)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["usr/bin/", "usr/bin/tool"]);
    }

    fn set_mtime(path: &Path, secs: i64) {
        let t = nix::sys::time::TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap();
    }

    fn filetime_of(m: &std::fs::Metadata) -> nix::sys::time::TimeSpec {
        use std::os::unix::fs::MetadataExt;
        nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec())
    }
}
