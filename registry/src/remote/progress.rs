//! Progress of a pull or push, as events for whoever renders them (the CLI
//! draws indicatif bars on a terminal and plain lines otherwise).

use oci_spec::image::Digest;

/// What a blob is to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    Config,
    Layer,
}

/// How a blob's transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Pull: downloaded and verified.
    Downloaded,
    /// Pull: the store already had it.
    AlreadyPresent,
    /// Push: uploaded.
    Uploaded,
    /// Push: the registry already had it.
    AlreadyExists,
    /// Push: linked from another repository of the registry.
    Mounted { from: String },
}

/// One step of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// The reference resolved to this manifest digest.
    Resolved { reference: String, digest: Digest },
    /// A layer is being compressed before its upload.
    Compressing { diff_id: Digest },
    /// A blob transfer (or check) starts.
    BlobStarted {
        digest: Digest,
        size: u64,
        role: BlobRole,
    },
    /// Bytes of the blob transferred so far (restarts at 0 on a retry).
    BlobProgress { digest: Digest, done: u64 },
    BlobFinished {
        digest: Digest,
        outcome: BlobOutcome,
    },
}

/// Receives events; called from several tasks at once.
pub trait TransferProgress: Send + Sync {
    fn event(&self, event: TransferEvent);
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl TransferProgress for NoProgress {
    fn event(&self, _event: TransferEvent) {}
}
