//! The `Worker` trait: every side effect of a build goes through it.
//!
//! This is BuildKit's "worker" role. The solver decides *what* to do (which
//! vertex, with which inputs, whether the cache already has it); the worker
//! does it: resolves image sources, checksums build-context content, prepares
//! writable root filesystems on top of layer chains, runs processes and file
//! operations in them, commits their changes as layers and writes the final
//! image. `kiln` implements it with kiln-executor and kiln-registry; the
//! solver's own tests use a fake. Only oci-spec types and the plain data types
//! below cross this boundary.

use std::collections::BTreeMap;
use std::future::Future;

use oci_spec::image::{Descriptor, Digest, Platform};
use serde::{Deserialize, Serialize};

use crate::progress::OpContext;

/// One layer of a root filesystem: its uncompressed digest (the diffID, as
/// listed in an image config) and the blob that holds it in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub diff_id: Digest,
    pub blob: Descriptor,
}

/// An image source resolved to content: what `FROM name` means.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The normalised reference the user named (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The digest of the platform-specific manifest.
    pub manifest_digest: Digest,
    /// The digest of the image config; the cache key of the source.
    pub config_digest: Digest,
    /// The exact bytes of the image config. The solver parses them itself so
    /// that docker-only fields (`OnBuild`, `Healthcheck`, `Shell`) survive.
    pub config_json: Vec<u8>,
    /// The image's layers, bottom first.
    pub layers: Vec<Layer>,
}

/// What the worker reports after making an image's layers available locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Every blob was already local.
    AlreadyLocal,
    /// Some blobs were downloaded.
    Fetched,
}

/// How a RUN step reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Outbound access (the host's network namespace, as BuildKit's OCI worker
    /// does without CNI).
    #[default]
    Default,
    /// A namespace with only `lo`.
    None,
    /// The host's network namespace, explicitly.
    Host,
}

impl NetworkMode {
    /// Parses `default`, `none` or `host`.
    pub fn parse(s: &str) -> Option<NetworkMode> {
        match s {
            "default" | "" => Some(NetworkMode::Default),
            "none" => Some(NetworkMode::None),
            "host" => Some(NetworkMode::Host),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Default => "default",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

/// Where the content of a file operation or a mount comes from, as the worker
/// sees it (the solver has already replaced references to other vertices by
/// their layer chains).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// The build context directory, read in place.
    Context,
    /// The root filesystem made of these layers (another stage, an image);
    /// an empty chain is `scratch`.
    Layers(Vec<Layer>),
    /// An HTTP(S) URL (ADD), verified against `checksum` when given.
    Url {
        url: String,
        checksum: Option<Digest>,
    },
    /// Bytes written by the build itself (heredoc files): a directory
    /// holding one file `name` with `mode`.
    Inline {
        name: String,
        data: Vec<u8>,
        mode: u32,
    },
}

/// Sharing mode of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// One `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount<S = FileSource> {
    /// Absolute path inside the container.
    pub target: String,
    pub kind: MountKind<S>,
}

/// The kinds of `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind<S = FileSource> {
    /// `type=bind`: a path of another filesystem; writes are discarded.
    Bind {
        from: S,
        /// Path inside `from` (`source=`), absolute.
        source: String,
        readwrite: bool,
    },
    /// `type=cache`: a directory kept in the kiln root between builds, by id.
    Cache {
        id: String,
        sharing: CacheSharing,
        readonly: bool,
        /// Initial content when the cache is created (`from=`, `source=`).
        from: Option<(S, String)>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `type=tmpfs`.
    Tmpfs { size: Option<u64> },
    /// `type=secret`: the content of `--secret id=…`, never in a layer, a
    /// cache key or the history.
    Secret {
        id: String,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `type=ssh`: a socket relayed to the SSH agent given with `--ssh id=…`
    /// (the socket's host path is never in a layer or a cache key).
    Ssh {
        id: String,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
}

impl<S> MountKind<S> {
    /// Replaces every source by `f(source)`.
    pub fn map_source<T, E>(self, mut f: impl FnMut(S) -> Result<T, E>) -> Result<MountKind<T>, E> {
        Ok(match self {
            MountKind::Bind {
                from,
                source,
                readwrite,
            } => MountKind::Bind {
                from: f(from)?,
                source,
                readwrite,
            },
            MountKind::Cache {
                id,
                sharing,
                readonly,
                from,
                mode,
                uid,
                gid,
            } => MountKind::Cache {
                id,
                sharing,
                readonly,
                from: match from {
                    Some((s, p)) => Some((f(s)?, p)),
                    None => None,
                },
                mode,
                uid,
                gid,
            },
            MountKind::Tmpfs { size } => MountKind::Tmpfs { size },
            MountKind::Secret {
                id,
                required,
                mode,
                uid,
                gid,
            } => MountKind::Secret {
                id,
                required,
                mode,
                uid,
                gid,
            },
            MountKind::Ssh {
                id,
                required,
                mode,
                uid,
                gid,
            } => MountKind::Ssh {
                id,
                required,
                mode,
                uid,
                gid,
            },
        })
    }
}

/// A process to run in a prepared root filesystem (a RUN step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec<S = FileSource> {
    /// argv, with the shell already prepended for the shell form.
    pub args: Vec<String>,
    /// `KEY=VALUE`, in order: the image's Env, then ARGs in scope.
    pub env: Vec<String>,
    /// Absolute working directory (created when missing).
    pub cwd: String,
    /// `user[:group]` as written (resolved in the rootfs), empty for root.
    pub user: String,
    pub network: NetworkMode,
    pub security: Security,
    pub mounts: Vec<Mount<S>>,
    /// Environment variables set from secrets: (variable, secret id, required).
    pub secret_env: Vec<(String, String, bool)>,
}

/// What a process run reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// One action of a file operation (COPY, ADD, WORKDIR, heredoc files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction<S = FileSource> {
    Copy(CopyAction<S>),
    /// Creates a directory and its parents (WORKDIR), owned by `owner`.
    Mkdir {
        path: String,
        mode: u32,
        owner: Option<String>,
    },
}

impl<S> FileAction<S> {
    pub fn map_source<T, E>(self, f: impl FnOnce(S) -> Result<T, E>) -> Result<FileAction<T>, E> {
        Ok(match self {
            FileAction::Copy(c) => FileAction::Copy(CopyAction {
                from: f(c.from)?,
                sources: c.sources,
                dest: c.dest,
                chown: c.chown,
                chmod: c.chmod,
                link: c.link,
                parents: c.parents,
                excludes: c.excludes,
                unpack: c.unpack,
                keep_git_dir: c.keep_git_dir,
                apply_dockerignore: c.apply_dockerignore,
            }),
            FileAction::Mkdir { path, mode, owner } => FileAction::Mkdir { path, mode, owner },
        })
    }
}

/// COPY/ADD of `sources` (paths in `from`, wildcards allowed) to `dest`.
/// The rules (directory contents, wildcards, trailing `/`, created parents,
/// tar extraction) are the worker's; the solver only carries the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction<S = FileSource> {
    pub from: S,
    /// Source paths relative to the root of `from`, as written (after
    /// variable expansion). Empty for URL and inline sources.
    pub sources: Vec<String>,
    /// Absolute destination; a trailing `/` is kept, it means "a directory".
    pub dest: String,
    /// `--chown` as written (`user`, `user:group`, ids), resolved in the
    /// destination root filesystem.
    pub chown: Option<String>,
    /// `--chmod` (octal or symbolic).
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// ADD: extract local tar archives.
    pub unpack: bool,
    pub keep_git_dir: bool,
    /// Whether `.dockerignore` applies (sources from the main context).
    pub apply_dockerignore: bool,
}

/// A content checksum request: the digest of exactly the files a COPY/ADD
/// (or a bind mount) would read — path, type, mode, owner, link target,
/// xattrs and content of each, never mtimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumRequest {
    pub from: FileSource,
    pub sources: Vec<String>,
    pub excludes: Vec<String>,
    pub parents: bool,
    pub apply_dockerignore: bool,
}

/// The image written by [`Worker::write_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub manifest: Descriptor,
}

/// Errors a worker reports. The cause is the worker's own typed error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The operation stopped because the build was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An image source does not exist (locally nor in its registry).
    #[error("image {name} not found")]
    ImageNotFound {
        name: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Secret `id` is required but was not given with `--secret`.
    #[error("secret {id} not found (pass it with --secret id={id},src=FILE)")]
    SecretNotFound { id: String },
    /// Anything else the worker could not do; `source` says what and why.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

impl WorkerError {
    /// Wraps a worker's own error.
    pub fn failed(err: impl std::error::Error + Send + Sync + 'static) -> WorkerError {
        WorkerError::Failed(Box::new(err))
    }
}

/// The side effects of a build. Methods take `&self` and may be called
/// concurrently for different vertices; every future must be `Send`.
/// A dropped [`Worker::Rootfs`] must release everything it holds.
pub trait Worker: Send + Sync + 'static {
    /// A writable root filesystem prepared on top of a chain of layers.
    type Rootfs: Send + 'static;

    /// Resolves an image name for `platform` to its manifest, config and
    /// layers: from the local store, else from its registry (metadata only).
    fn resolve_image(
        &self,
        name: &str,
        platform: &Platform,
        ctx: &OpContext,
    ) -> impl Future<Output = Result<ResolvedImage, WorkerError>> + Send;

    /// Makes every layer blob of `image` local (pulling what is missing).
    fn fetch_layers(
        &self,
        image: &ResolvedImage,
        ctx: &OpContext,
    ) -> impl Future<Output = Result<FetchOutcome, WorkerError>> + Send;

    /// Whether every one of these layer blobs is still in the store (a cache
    /// record whose blobs were pruned is a miss).
    fn has_layers(&self, layers: &[Layer]) -> impl Future<Output = bool> + Send;

    /// Makes local the layer blobs of a cache record imported from
    /// elsewhere ([`crate::ImportedCache`], `--cache-from`): those not in the
    /// store are fetched from where the record came from.
    fn fetch_cached_layers(
        &self,
        layers: &[Layer],
        ctx: &OpContext,
    ) -> impl Future<Output = Result<(), WorkerError>> + Send;

    /// The content checksum of the selected files (see [`ChecksumRequest`]).
    fn checksum(
        &self,
        req: &ChecksumRequest,
        ctx: &OpContext,
    ) -> impl Future<Output = Result<Digest, WorkerError>> + Send;

    /// A writable root filesystem whose initial content is `parent` (empty
    /// for scratch).
    fn prepare(
        &self,
        parent: &[Layer],
        ctx: &OpContext,
    ) -> impl Future<Output = Result<Self::Rootfs, WorkerError>> + Send;

    /// Runs a process in `rootfs`, streaming its output to `ctx`. Returns
    /// its exit status; stops it (and reports [`WorkerError::Cancelled`])
    /// when `ctx` is cancelled.
    fn exec(
        &self,
        rootfs: &mut Self::Rootfs,
        spec: &ExecSpec,
        ctx: &OpContext,
    ) -> impl Future<Output = Result<ExitStatus, WorkerError>> + Send;

    /// Applies a file action to `rootfs`.
    fn file(
        &self,
        rootfs: &mut Self::Rootfs,
        action: &FileAction,
        ctx: &OpContext,
    ) -> impl Future<Output = Result<(), WorkerError>> + Send;

    /// Turns the changes made in `rootfs` into a layer in the store; `None`
    /// when nothing changed.
    fn commit(
        &self,
        rootfs: Self::Rootfs,
        ctx: &OpContext,
    ) -> impl Future<Output = Result<Option<Layer>, WorkerError>> + Send;

    /// Writes an image (config bytes exactly as given, manifest over
    /// `layers`) into the store, and names it as the worker was asked to;
    /// status lines go to `ctx`.
    fn write_image(
        &self,
        config_json: &[u8],
        layers: &[Layer],
        ctx: &OpContext,
    ) -> impl Future<Output = Result<ImageRecord, WorkerError>> + Send;
}

/// Labels, build args and similar `key → value` sets, in a stable order.
pub type StringMap = BTreeMap<String, String>;
