//! The solver's errors.
//!
//! A [`StepError`] says which step failed (its progress name and Dockerfile
//! location) and why; it is `Clone` because every vertex waiting on the
//! failed one receives it. [`LowerError`]s come from turning stages into a
//! graph, before anything runs.

use std::sync::Arc;

use crate::graph::Location;
use crate::image::ConfigError;
use crate::index::IndexError;
use crate::worker::{ExitStatus, WorkerError};

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepErrorKind {
    /// A RUN process exited unsuccessfully.
    #[error("process \"{command}\" did not complete successfully: {status}")]
    Exit {
        command: String,
        status: ExitDisplay,
    },
    #[error(transparent)]
    Worker(Arc<WorkerError>),
    #[error("cannot record the result in the build cache")]
    Index(#[source] Arc<IndexError>),
    #[error("the config of {image} is not valid")]
    Config {
        image: String,
        #[source]
        source: Arc<ConfigError>,
    },
    #[error("cancelled")]
    Cancelled,
}

/// An exit status as BuildKit prints it (`exit code: 2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitDisplay(pub ExitStatus);

impl std::fmt::Display for ExitDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            ExitStatus::Code(c) => write!(f, "exit code: {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// A step of the build failed. It reads as its kind, whose causes are its
/// causes.
#[derive(Debug, Clone)]
pub struct StepError {
    /// The step's progress name (`[2/3] RUN make`).
    pub step: String,
    /// The step's progress vertex (its output was reported under it).
    pub vertex: Option<crate::progress::VertexId>,
    /// The instruction it comes from.
    pub location: Option<Location>,
    pub kind: StepErrorKind,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl StepError {
    /// The exit code, when a process failed.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match &self.kind {
            StepErrorKind::Exit { status, .. } => Some(status.0),
            _ => None,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, StepErrorKind::Cancelled)
            || matches!(&self.kind, StepErrorKind::Worker(w) if matches!(**w, WorkerError::Cancelled))
    }
}

/// Errors turning Dockerfile stages into a build graph.
#[derive(Debug, thiserror::Error)]
pub enum LowerErrorKind {
    #[error("the Dockerfile has no stages to build")]
    NoStages,
    #[error("target stage \"{0}\" could not be found")]
    UnknownTarget(String),
    #[error("circular dependency between stages: {0}")]
    Cycle(String),
    #[error("invalid stage index {0}")]
    BadStageIndex(usize),
    #[error("base name ({0}) should not be blank")]
    BlankBase(String),
    #[error("cannot copy from stage \"{from}\", it needs to be defined before the current stage")]
    LaterStage { from: String },
    #[error("{what}")]
    Invalid { what: String },
    #[error("invalid platform \"{0}\"")]
    BadPlatform(String),
    #[error(
        "RUN needs platform {wanted} but this host runs {host}; cross-platform RUN steps are not supported"
    )]
    ForeignPlatform { wanted: String, host: String },
    #[error("{instruction} is not supported")]
    Unsupported { instruction: String },
    /// `COPY --link --chown=NAME`: with --link the files are copied onto an
    /// empty filesystem, which has no /etc/passwd to resolve names in
    /// (BuildKit rejects it too; only ids and `root` work).
    #[error(
        "{keyword} --link --chown={chown}: user and group names cannot be resolved with --link (the files are copied onto an empty filesystem); use numeric ids such as --chown=1000:1000, or drop --link"
    )]
    LinkChownByName {
        keyword: &'static str,
        chown: String,
    },
    #[error("cannot resolve image {name}")]
    Resolve {
        name: String,
        #[source]
        source: Arc<WorkerError>,
    },
    #[error("the config of image {name} is not valid")]
    BaseConfig {
        name: String,
        #[source]
        source: ConfigError,
    },
    /// A word could not be expanded (`${V:?msg}`, bad syntax).
    #[error(transparent)]
    Expand(Box<kiln_parser::ExpandError>),
    /// The Dockerfile's global ARGs cannot be evaluated.
    #[error(transparent)]
    Parse(Box<kiln_parser::Error>),
    /// A `RUN --mount` flag is invalid once expanded.
    #[error(transparent)]
    Mount(#[from] kiln_parser::MountError),
    /// An ONBUILD trigger of a base image does not parse.
    #[error("invalid ONBUILD trigger {trigger:?}")]
    Trigger {
        trigger: String,
        #[source]
        source: Box<kiln_parser::Error>,
    },
}

/// A lowering error with the Dockerfile location it is about.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct LowerError {
    pub location: Option<Location>,
    #[source]
    pub kind: LowerErrorKind,
}

impl LowerError {
    pub fn new(kind: LowerErrorKind, location: Option<Location>) -> LowerError {
        LowerError { location, kind }
    }
}

/// Everything `solve` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error(transparent)]
    Lower(#[from] LowerError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("build cancelled")]
    Cancelled,
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("cannot write the image")]
    WriteImage(#[source] WorkerError),
}

impl SolveError {
    /// Where in the Dockerfile the error is, when it is about one place.
    pub fn location(&self) -> Option<Location> {
        match self {
            SolveError::Lower(e) => e.location,
            SolveError::Step(e) => e.location,
            _ => None,
        }
    }
}
