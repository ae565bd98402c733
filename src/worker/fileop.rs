//! File operations (COPY, ADD, WORKDIR, heredoc files) and the content
//! checksums of what they read, on kiln-executor's file operations.

use kiln_solver::{ChecksumRequest, FileAction, OpContext, WorkerError};
use oci_spec::image::Digest;

use super::error::BuildWorkerError;
use super::{BuildRootfs, KilnWorker};

pub async fn apply(
    _worker: &KilnWorker,
    _rootfs: &mut BuildRootfs,
    _action: &FileAction,
    _ctx: &OpContext,
) -> Result<(), WorkerError> {
    Err(BuildWorkerError::Unsupported {
        what: "COPY and ADD",
    }
    .into())
}

pub async fn checksum(
    _worker: &KilnWorker,
    _req: &ChecksumRequest,
    _ctx: &OpContext,
) -> Result<Digest, WorkerError> {
    Err(BuildWorkerError::Unsupported {
        what: "COPY and ADD",
    }
    .into())
}
