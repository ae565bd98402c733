//! Errors of the file operations (COPY, ADD, WORKDIR, heredoc files, URL
//! downloads): what failed, on which path, with the cause as `source`.

use std::path::PathBuf;

/// Boxed cause coming from a caller-supplied pattern compiler.
pub type PatternCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error of a file operation. Paths are shown as the user wrote them
/// (relative to the source tree or inside the destination root) where they
/// are known, never as host paths of kiln's own directories.
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    /// A filesystem call failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A source path (no wildcard) does not exist, or is excluded by
    /// `.dockerignore`.
    #[error("\"{path}\": not found")]
    SourceNotFound { path: String },
    /// Several sources were given and the destination is not a directory.
    #[error(
        "when using {instruction} with more than one source file, the destination must be a directory and end with a /"
    )]
    DestinationNotDirectory {
        instruction: &'static str,
        dest: String,
    },
    /// The copy stopped because another file of it failed (that failure
    /// is the one reported).
    #[error("the copy stopped after an error")]
    CopyAborted,
    /// A file would replace a directory at the destination.
    #[error("cannot replace directory {path} with a file")]
    ReplaceDirWithFile { path: String },
    /// A directory would be copied onto a file at the destination.
    #[error("cannot copy a directory to non-directory {path}")]
    CopyDirOntoFile { path: String },
    /// A path in the destination is not a directory where one is needed.
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    /// Symlinks loop while resolving a path.
    #[error("too many levels of symbolic links resolving {path}")]
    SymlinkLoop { path: String },
    /// A source is a socket or another kind of file that cannot be copied.
    #[error("{path}: cannot copy a {kind}")]
    UnsupportedFileType { path: String, kind: &'static str },
    /// `--chmod` is neither an octal mode between 0 and 07777 nor a
    /// symbolic mode.
    #[error(
        "invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
    )]
    InvalidChmod { value: String },
    /// `--chown` (or a USER for WORKDIR) could not be parsed.
    #[error("invalid user or group '{value}'")]
    InvalidChown { value: String },
    /// A user name is not in the image's /etc/passwd.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser { name: String },
    /// A group name is not in the image's /etc/group.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup { name: String },
    /// A caller-supplied pattern list (`--exclude`, `--parents`) is invalid.
    #[error("invalid pattern {pattern:?}")]
    InvalidPattern {
        pattern: String,
        #[source]
        source: PatternCause,
    },
    /// An archive member would land outside the destination.
    #[error("archive entry {entry:?} in {archive} points outside the destination")]
    ArchiveEscape { archive: String, entry: String },
    /// An archive could not be read.
    #[error("extract {archive}")]
    Archive {
        archive: String,
        #[source]
        source: std::io::Error,
    },
    /// An archive has an entry kind kiln cannot create.
    #[error("archive {archive}: unsupported entry {entry:?}")]
    UnsupportedArchiveEntry { archive: String, entry: String },
    /// A URL could not be fetched.
    #[error("download {url}")]
    Download {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The server answered with an error status.
    #[error("download {url}: server answered {status}")]
    DownloadStatus { url: String, status: u16 },
    /// The downloaded content does not match `--checksum`.
    #[error("digest mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// `--checksum` is not a `sha256:<64 hex>` digest.
    #[error("invalid checksum {value:?}: expected sha256:<64 hex digits>")]
    InvalidChecksum { value: String },
}

impl FileOpError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> FileOpError {
        let path = path.into();
        move |source| FileOpError::Io { op, path, source }
    }
}
