//! The worker's own errors: what failed, on what, and the executor's or
//! store's typed cause. The solver sees them as the source of a
//! `WorkerError::Failed`.

use std::path::PathBuf;

use kiln_executor::{LayerError, SandboxError, SnapshotError};
use kiln_registry::{StoreError, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum BuildWorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot unpack a layer")]
    Unpack(#[from] UnpackError),
    #[error("cannot prepare the step's filesystem")]
    Snapshot(#[from] SnapshotError),
    #[error("cannot run the step")]
    Sandbox(#[from] SandboxError),
    #[error("cannot write the step's layer")]
    Layer(#[from] LayerError),
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot pull {name}")]
    Pull {
        name: String,
        #[source]
        source: kiln_registry::remote::RemoteError,
    },
    #[error("image {name} is here only for {have}, and pulling it for {want} failed")]
    OtherPlatform {
        name: String,
        have: String,
        want: String,
        #[source]
        source: kiln_registry::remote::RemoteError,
    },
    #[error("invalid image reference {name:?}")]
    Reference {
        name: String,
        #[source]
        source: kiln_registry::ReferenceError,
    },
    #[error(
        "RUN --security=insecure is not allowed (kiln grants no security.insecure entitlement)"
    )]
    Insecure,
    #[error("{what} is not supported yet")]
    Unsupported { what: &'static str },
    #[error("the image config is not valid JSON")]
    Config(#[source] serde_json::Error),
    #[error(transparent)]
    FileOp(#[from] kiln_executor::FileOpError),
    #[error("cannot prepare the step's mounts")]
    Mount(#[from] kiln_executor::MountError),
    #[error("this build has no context (kiln build -), so it cannot read files from one")]
    NoContext,
    #[error(transparent)]
    CacheLayer(Box<crate::worker::cache_layers::CacheLayerError>),
    #[error("a background task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl BuildWorkerError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BuildWorkerError::Io { op, path, source }
    }
}

impl From<BuildWorkerError> for kiln_solver::WorkerError {
    fn from(e: BuildWorkerError) -> Self {
        kiln_solver::WorkerError::failed(e)
    }
}
