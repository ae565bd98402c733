//! Opening the image store for a command, and turning the store's errors
//! into diagnostics with a hint where one helps.

use std::error::Error;

use kiln_registry::{ArchiveError, Store, StoreError};

use crate::cli::GlobalArgs;

/// Opens the store under the root the user chose.
pub fn open(global: &GlobalArgs) -> miette::Result<Store> {
    let root = global.root_dir();
    Store::open(&root).map_err(|e| {
        crate::diagnostic::with_hint(
            e,
            Some(format!(
                "kiln keeps its state in {}; choose another with --root or KILN_ROOT",
                root.display()
            )),
        )
    })
}

/// Unpacks an image's layers into snapshots right after `pull`, `load` or
/// `import` stored it, so that builds and runs from it start at once (as
/// docker and containerd unpack on pull). A failure only warns: the image
/// is stored, and a build or run unpacking it again reports the error with
/// its context.
pub fn unpack_ahead(store: &Store, image: &kiln_registry::store::Image) {
    if let Err(e) = store.unpack_image_parallel(image) {
        tracing::warn!(image = %image.id(), error = %e, "cannot unpack the image's layers yet");
    }
}

fn store_hint(e: &StoreError) -> Option<String> {
    match e {
        StoreError::ImageNotFound { .. } => {
            Some("`kiln images` lists the images in this store".to_string())
        }
        StoreError::AmbiguousId { .. } => Some("give more digits of the image id".to_string()),
        StoreError::ImageInUse { .. } => {
            Some("remove the containers using it, or force with -f".to_string())
        }
        StoreError::BlobNotFound(_) | StoreError::DigestMismatch { .. } => {
            Some("the store may be damaged: pull, load or build the image again".to_string())
        }
        _ => None,
    }
}

/// A store error as a diagnostic (with a hint for the common ones).
pub fn diag(e: StoreError) -> miette::Report {
    let help = store_hint(&e);
    crate::diagnostic::with_hint(e, help)
}

/// An import/save/load error as a diagnostic.
pub fn archive_diag(e: ArchiveError) -> miette::Report {
    match e {
        ArchiveError::Store(e) => diag(e),
        e => crate::diagnostic::with_hint(e, None),
    }
}

/// Any other error as a diagnostic.
pub fn other<E: Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::diagnostic::with_hint(e, None)
}
