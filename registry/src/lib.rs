//! kiln-registry: images at rest and on the wire.
//!
//! Owns image references and their normalisation, the local content-addressed
//! store (blobs, manifests, configs, tags, garbage collection, locks), layer
//! unpacking into snapshot directories, and the remote client (pull, push,
//! authentication). It depends on nothing else of kiln.

pub mod archive;
pub mod auth;
pub mod reference;
pub mod remote;
pub mod store;
pub mod unpack;

pub use archive::{ArchiveError, ImportOptions, LoadedImage, SaveItem};
pub use reference::{Reference, ReferenceError};
pub use store::{
    BlobInfo, BlobWriter, Compression, ExportOptions, ExportedImage, GcReport, Image, ImageSummary,
    Layer, Lease, PruneOptions, RemovedImage, Store, StoreError, canonical_json, sha256_digest,
    sha256_of, short_hex,
};
pub use unpack::{UnpackError, UnpackMode, UnpackStats, unpack_stream};
