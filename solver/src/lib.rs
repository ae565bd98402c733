//! kiln-solver: from typed Dockerfile stages to an image.
//!
//! Owns the build graph lowered from typed stages (one lowering per
//! instruction), cache keys, the cache index, the parallel scheduler, image
//! config and history assembly, and progress events. Every side effect goes
//! through its [`Worker`] trait, so it is tested with a fake worker; it never
//! sees the executor or the registry.

mod cachekey;
mod error;
mod graph;
mod image;
mod index;
mod lower;
mod op;
mod progress;
mod scheduler;
mod solve;
mod transfer;
mod worker;

#[cfg(test)]
mod fake;

pub use cachekey::{CacheKey, SCHEMA_VERSION, sha256_digest};
pub use error::{ExitDisplay, LowerError, LowerErrorKind, SolveError, StepError, StepErrorKind};
pub use graph::{BuildGraph, Location, Vertex};
pub use image::{
    ConfigError, DEFAULT_PATH, HISTORY_COMMENT, Healthcheck, ImageConfig, format_platform,
    host_platform, parse_platform, parse_platform_lenient,
};
pub use index::{CacheIndex, ImageTimeRecord, IndexError, StateRecord};
pub use lower::BuildOptions;
pub use op::{Op, SourceRef};
pub use progress::{
    LogStream, LogWriter, NullSink, OpContext, Progress, ProgressEvent, ProgressSink, VertexId,
};
pub use scheduler::SchedulerOptions;
pub use solve::{BuildOutput, build};
pub use transfer::{CacheExport, ExportedState, ImportedCache};
pub use worker::{
    CacheSharing, ChecksumRequest, CopyAction, ExecSpec, ExitStatus, FetchOutcome, FileAction,
    FileSource, ImageRecord, Layer, Mount, MountKind, NetworkMode, ResolvedImage, Security,
    StringMap, Worker, WorkerError,
};
