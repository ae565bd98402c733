//! The remote side: pulling images from registries into the store, pushing
//! them back, and logging in.
//!
//! - [`transport`]: which registries speak plain HTTP, retry policy, limits.
//! - `client`: one repository on one registry behind a trait, implemented on
//!   oci-client with retries, explicit authentication and streaming blobs.
//! - [`error`]: errors that name the operation, registry, repository and
//!   request.

mod artifact;
pub(crate) mod client;
pub mod error;
#[cfg(test)]
mod fake;
mod login;
pub mod platform;
pub mod progress;
mod pull;
mod push;
pub(crate) mod retry;
pub(crate) mod sources;
#[cfg(test)]
mod tests;
pub mod transport;

pub use artifact::Repository;
pub use error::{Operation, RemoteError, RemoteErrorKind, Request, Status};
pub use login::{LoginOutcome, login, logout};
pub use platform::{Platform, PlatformError};
pub use progress::{BlobOutcome, BlobRole, NoProgress, TransferEvent, TransferProgress};
pub use pull::{PullOptions, Pulled, pull, pull_if_missing};
pub use push::{Pushed, push};
pub use transport::{INSECURE_REGISTRIES_ENV, RemoteConfig, RetryPolicy};

/// `reference`'s registry and repository as errors name them
/// (`host[:port]/repo`).
pub(crate) fn target_of(reference: &crate::reference::Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// Connects to `reference`'s repository with the credentials kiln has for
/// its registry, for `operation` (pull, or push and pull); errors name the
/// operation and the repository.
pub(crate) async fn connect(
    config: &RemoteConfig,
    reference: &crate::reference::Reference,
    operation: Operation,
) -> Result<client::OciRepo, RemoteError> {
    let err = |kind| RemoteError::new(operation, target_of(reference), kind);
    let credentials = credentials_for(config, reference.registry())
        .await
        .map_err(err)?;
    client::OciRepo::connect(
        std::sync::Arc::new(config.clone()),
        reference.registry(),
        reference.repository(),
        credentials,
        match operation {
            Operation::Push => oci_client::RegistryOperation::Push,
            _ => oci_client::RegistryOperation::Pull,
        },
    )
    .await
    .map_err(err)
}

/// The credentials kiln has for `registry` (from the docker config file or
/// its helper), looked up off the async threads (helpers are processes).
pub(crate) async fn credentials_for(
    config: &RemoteConfig,
    registry: &str,
) -> Result<Option<crate::auth::Credentials>, RemoteErrorKind> {
    let path = config.docker_config.clone();
    let registry = registry.to_string();
    let found = tokio::task::spawn_blocking(move || {
        let file = match path {
            Some(p) => crate::auth::DockerConfig::load(p)?,
            None => match crate::auth::DockerConfig::load_default() {
                Ok(f) => f,
                // No home and no DOCKER_CONFIG: no credentials, go anonymous.
                Err(crate::auth::CredentialError::NoHome) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        file.get(&registry)
    })
    .await;
    match found {
        Ok(result) => Ok(result?),
        Err(join) => Err(RemoteErrorKind::Credentials(
            crate::auth::CredentialError::Read {
                path: config.docker_config.clone().unwrap_or_default(),
                source: std::io::Error::other(join),
            },
        )),
    }
}
