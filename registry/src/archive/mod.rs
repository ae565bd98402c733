//! Images in and out of files: `import` (a root filesystem tarball),
//! `save` (an OCI layout tar that also carries docker's `manifest.json`)
//! and `load` (OCI layout and docker-archive tars).

mod import;
mod load;
mod save;

pub use import::{ImportOptions, default_created};
pub use load::LoadedImage;
pub use save::SaveItem;

use crate::store::StoreError;

/// Errors of import, save and load.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {what}")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {what}")]
    Write {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not a tar archive")]
    NotATar {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not a usable image archive: {reason}")]
    BadArchive { what: String, reason: String },
    #[error("cannot build the image {what}")]
    Spec {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl ArchiveError {
    pub(crate) fn spec(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> Self {
        move |source| ArchiveError::Spec { what, source }
    }
}
