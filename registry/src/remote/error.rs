//! Errors of the remote side. Every [`RemoteError`] says what kiln was doing
//! (pull, push, login), to which registry and repository, and which request
//! failed: `push 127.0.0.1:5000/a/b: blob upload rejected: 413 Payload Too
//! Large (PUT /v2/a/b/blobs/uploads/ for sha256:…)`. None carries a secret.

use std::fmt;

use crate::auth::CredentialError;
use crate::store::StoreError;

/// What kiln was doing when a remote error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Pull,
    Push,
    Login,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Pull => "pull",
            Operation::Push => "push",
            Operation::Login => "login",
        })
    }
}

/// One HTTP request, as errors name it: `GET /v2/a/b/manifests/latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    /// What the request was about when the path does not say (the digest
    /// being uploaded to an upload session).
    pub subject: Option<String>,
}

impl Request {
    pub(crate) fn new(method: &'static str, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            subject: None,
        }
    }

    pub(crate) fn about(mut self, subject: impl fmt::Display) -> Request {
        self.subject = Some(subject.to_string());
        self
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(subject) = &self.subject {
            write!(f, " for {subject}")?;
        }
        Ok(())
    }
}

/// A registry's answer: the HTTP status when known (registries' JSON error
/// documents do not always come with it) and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Option<u16>,
    pub message: String,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.code {
            write!(f, "{code}")?;
            if let Some(reason) = reqwest::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
            {
                write!(f, " {reason}")?;
            }
            if !self.message.is_empty() {
                f.write_str(": ")?;
            }
        }
        f.write_str(&self.message)
    }
}

/// The low-level cause of a failed request.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Oci(Box<oci_client::errors::OciDistributionError>),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<oci_client::errors::OciDistributionError> for Cause {
    fn from(e: oci_client::errors::OciDistributionError) -> Self {
        Cause::Oci(Box::new(e))
    }
}

/// A failed pull, push or login: the operation, the registry and repository
/// (`127.0.0.1:5000/a/b`; the registry alone for a login), and what failed.
#[derive(Debug)]
pub struct RemoteError {
    pub operation: Operation,
    pub target: String,
    pub kind: Box<RemoteErrorKind>,
}

impl RemoteError {
    pub fn new(operation: Operation, target: impl Into<String>, kind: RemoteErrorKind) -> Self {
        RemoteError {
            operation,
            target: target.into(),
            kind: Box::new(kind),
        }
    }

    /// Whether the registry asked for credentials kiln does not have (the
    /// CLI suggests `kiln login`).
    pub fn is_auth_required(&self) -> bool {
        matches!(*self.kind, RemoteErrorKind::AuthRequired { .. })
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.operation, self.target, self.kind)
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

/// What went wrong, with its request and cause.
#[derive(Debug, thiserror::Error)]
pub enum RemoteErrorKind {
    /// The registry could not be reached, or kept failing with 429 or 5xx.
    #[error("{request} failed after {attempts} attempts{}", last_status(.status))]
    Unavailable {
        request: Request,
        attempts: u32,
        status: Option<Status>,
        #[source]
        cause: Option<Cause>,
    },
    /// A request failed in a way retrying cannot fix (TLS, a bad URL).
    #[error("{request} failed")]
    Transport {
        request: Request,
        #[source]
        cause: Cause,
    },
    /// The registry refused something: `blob upload rejected: 413 …`.
    #[error("{what} rejected: {status} ({request})")]
    Rejected {
        what: &'static str,
        request: Request,
        status: Status,
    },
    #[error("{what} {name} not found ({request})")]
    NotFound {
        what: &'static str,
        name: String,
        request: Request,
    },
    #[error(
        "authentication required ({request} answered 401); log in with `kiln login {registry}`"
    )]
    AuthRequired { registry: String, request: Request },
    #[error("access denied: {status} ({request})")]
    Denied { request: Request, status: Status },
    #[error("wrong user name or password ({request}: {status})")]
    BadCredentials { request: Request, status: Status },
    /// The bearer-token endpoint refused to issue a token.
    #[error("the token service {realm} refused a token: {message}")]
    TokenRefused { realm: String, message: String },
    #[error("the registry's authentication challenge is not understood: {challenge}")]
    BadChallenge { challenge: String },
    /// What arrived does not hash to the digest it was asked for: nothing
    /// was stored.
    #[error("digest mismatch for {expected}: the content received hashes to {actual} ({request})")]
    DigestMismatch {
        expected: String,
        actual: String,
        request: Request,
    },
    #[error("size mismatch: expected {expected} bytes, received {actual} ({request})")]
    SizeMismatch {
        request: Request,
        expected: u64,
        actual: u64,
    },
    #[error("no image for platform {wanted} in {reference} (it has {available})")]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("unsupported manifest media type {media_type} for {reference}")]
    UnsupportedMediaType {
        reference: String,
        media_type: String,
    },
    #[error("manifest {digest} is not a valid image manifest or index")]
    InvalidManifest {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no local image {reference}: build, pull or tag one first")]
    LocalImageMissing { reference: String },
    #[error("the local store failed")]
    Store(#[source] StoreError),
    #[error("cannot read the credentials")]
    Credentials(#[source] CredentialError),
    #[error("cannot set up an HTTP client")]
    ClientSetup(#[source] Cause),
}

fn last_status(status: &Option<Status>) -> String {
    match status {
        Some(s) => format!(" (last answer: {s})"),
        None => String::new(),
    }
}

impl From<StoreError> for RemoteErrorKind {
    fn from(e: StoreError) -> Self {
        RemoteErrorKind::Store(e)
    }
}

impl From<CredentialError> for RemoteErrorKind {
    fn from(e: CredentialError) -> Self {
        RemoteErrorKind::Credentials(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_operation_target_and_request() {
        let e = RemoteError::new(
            Operation::Push,
            "127.0.0.1:5000/a/b",
            RemoteErrorKind::Rejected {
                what: "blob upload",
                request: Request::new("PUT", "/v2/a/b/blobs/uploads/").about("sha256:abc"),
                status: Status {
                    code: Some(413),
                    message: "too big".into(),
                },
            },
        );
        assert_eq!(
            e.to_string(),
            "push 127.0.0.1:5000/a/b: blob upload rejected: 413 Payload Too Large: too big (PUT /v2/a/b/blobs/uploads/ for sha256:abc)"
        );
    }
}
