//! Registry credentials: where they come from and where `kiln login` puts them.
//!
//! kiln reads and writes docker's client configuration, so `docker login`,
//! `podman login --authfile ~/.docker/config.json` and `kiln login` share
//! credentials:
//! - `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`
//!   ([`DockerConfig`]);
//! - per-registry `credHelpers`, then the default `credsStore`, then the
//!   file's own `auths` entries (base64 `user:password`), the order
//!   containers/image uses;
//! - helpers are the `docker-credential-<name>` programs, spoken to on stdin
//!   and stdout ([`helper`]), so a secret never appears in a process's
//!   arguments.
//!
//! Passwords live in [`Secret`], whose `Debug` is redacted and which has no
//! `Display`: they cannot end up in a log line or an error by accident.

mod docker_config;
pub(crate) mod helper;

pub use docker_config::{DockerConfig, default_config_path, normalize_registry, registry_key};

use std::fmt;
use std::path::PathBuf;

/// A password or token. Printing it with `{:?}` shows `<redacted>`; reading
/// it takes an explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Where a registry's credentials are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The `auths` section of the config file.
    File(PathBuf),
    /// A `docker-credential-<name>` helper.
    Helper(String),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::File(path) => write!(f, "{}", path.display()),
            CredentialSource::Helper(name) => write!(f, "docker-credential-{name}"),
        }
    }
}

/// Errors reading or writing credentials. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid docker config file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the `auth` entry for {registry} in {path} is not base64 of `user:password`")]
    BadAuthEntry { registry: String, path: PathBuf },
    #[error(
        "{held_by} holds an identity token for {registry}; kiln supports user names and passwords (log in again with `kiln login {registry}`)"
    )]
    IdentityToken { registry: String, held_by: String },
    #[error("credential helper {program} cannot be started (is it on PATH?)")]
    HelperMissing {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper {program} failed to {action} credentials for {registry}: {message}")]
    HelperFailed {
        program: String,
        action: &'static str,
        registry: String,
        message: String,
    },
    #[error("credential helper {program} gave unreadable output for {registry}")]
    HelperOutput {
        program: String,
        registry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no home directory: set HOME or DOCKER_CONFIG")]
    NoHome,
}
