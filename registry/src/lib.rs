//! kiln-registry: images at rest and on the wire.
//!
//! Owns image references and their normalisation, the local content-addressed
//! store (blobs, manifests, configs, tags, garbage collection, locks), layer
//! unpacking into snapshot directories, and the remote client (pull, push,
//! authentication). It depends on nothing else of kiln.

pub mod auth;
pub mod remote;
pub mod store;

pub use store::{BlobInfo, BlobWriter, Store, StoreError};
