//! The remote side: pulling images from registries into the store, pushing
//! them back, and logging in.
//!
//! - [`transport`]: which registries speak plain HTTP, retry policy, limits.
//! - `client`: one repository on one registry behind a trait, implemented on
//!   oci-client with retries, explicit authentication and streaming blobs.
//! - [`error`]: errors that name the operation, registry, repository and
//!   request.

#[allow(dead_code)] // pull and push use it (next commits)
pub(crate) mod client;
pub mod error;
mod login;
#[allow(dead_code)] // `available` is used by pull (next commit)
pub mod platform;
pub mod progress;
#[allow(dead_code)]
pub(crate) mod retry;
#[allow(dead_code)]
pub(crate) mod sources;
pub mod transport;

pub use error::{Operation, RemoteError, RemoteErrorKind, Request, Status};
pub use login::{LoginOutcome, login, logout};
pub use platform::{Platform, PlatformError};
pub use progress::{BlobOutcome, BlobRole, NoProgress, TransferEvent, TransferProgress};
pub use transport::{INSECURE_REGISTRIES_ENV, RemoteConfig, RetryPolicy};
