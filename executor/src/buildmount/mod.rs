//! The host side of `RUN --mount`: what each mount type needs on the host,
//! turned into [`oci_spec::runtime::Mount`] entries for the sandbox spec,
//! plus environment variables, and a guard ([`PreparedMounts`]) that
//! releases locks and removes what was staged when dropped.
//!
//! - `type=cache`: a directory persistent per id in the kiln root
//!   (`<root>/mounts/cache/<sha256(id)>/<instance>`), created with the
//!   requested uid/gid/mode and seeded from `from`/`source` the first time;
//!   `sharing=shared` (one instance, shared lock), `locked` (one instance,
//!   exclusive lock: a second step waits), `private` (the first instance
//!   nobody holds, a new one when all are busy).
//! - `type=secret`: the secret (from `--secret id=…,src=…|env=…`) written
//!   to a private file outside the rootfs — in `/dev/shm` (a tmpfs) when
//!   available — bind-mounted read-only at `/run/secrets/<id>` or `target`,
//!   or handed over as an environment variable (`env=`). It never enters
//!   the rootfs, a layer, the history or a cache key.
//! - `type=bind`: a path of the context or of another stage, read-only
//!   unless `rw`; with `rw` an overlay takes the writes and they are thrown
//!   away. `.dockerignore` holds: a context path hiding ignored files is
//!   mounted from a filtered copy.
//! - `type=tmpfs`: a fresh tmpfs (`size` in bytes).
//! - `type=ssh`: a socket forwarding to the host's SSH agent, with the
//!   requested mode/uid/gid, and `SSH_AUTH_SOCK` pointing at it; a clear
//!   error when `required` and there is no agent.
//!
//! [`prepare`] may block (a `locked` cache waits for its holder): call it
//! from a blocking task.

mod cache;
mod secret;
mod ssh;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

pub use cache::{CachePrune, prune_cache_mounts};
pub use secret::SecretSource;

use crate::fileop::{self, FileOpError, PathMatcher};

/// Errors preparing mounts.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A required secret was not given with `--secret`.
    #[error("secret {id} not found: pass it with --secret id={id},src=PATH (or env=VAR)")]
    SecretNotFound { id: String },
    /// The secret's source could not be read.
    #[error("read secret {id}")]
    SecretRead {
        id: String,
        #[source]
        source: std::io::Error,
    },
    /// A required SSH agent is not available.
    #[error(
        "ssh agent {id:?} requested by RUN --mount=type=ssh but none was given: pass --ssh {id}[=SOCKET] (an ssh-agent socket; default $SSH_AUTH_SOCK) or drop required=true"
    )]
    SshAgentMissing { id: String },
    /// A mount source path does not exist in its tree.
    #[error("bind mount source {path:?} not found")]
    BindSourceNotFound { path: String },
    /// A path cannot be passed to overlayfs (it contains `:` or `,`).
    #[error("path {path} cannot be used in an overlay mount")]
    UnsupportedPath { path: PathBuf },
    /// A file operation (seeding a cache, filtering a context) failed.
    #[error(transparent)]
    FileOp(#[from] FileOpError),
    /// A mount entry could not be built.
    #[error("invalid mount for {target}")]
    Spec {
        target: String,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl MountError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> MountError {
        let path = path.into();
        move |source| MountError::Io { op, path, source }
    }
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// `RUN --mount=type=cache,…`, resolved.
#[derive(Debug, Clone)]
pub struct CacheMount {
    /// `id` (BuildKit defaults it to the target).
    pub id: String,
    pub target: String,
    pub sharing: Sharing,
    pub readonly: bool,
    /// Owner and mode of a new cache directory (defaults 0:0 and 0755).
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// `from=`: the root of the stage/image/context seeding a new cache,
    /// and `source=` inside it.
    pub from: Option<PathBuf>,
    pub source: Option<String>,
}

/// `RUN --mount=type=secret,…`.
#[derive(Debug, Clone)]
pub struct SecretMount {
    pub id: String,
    /// `target`; `/run/secrets/<id>` when neither `target` nor `env` is set.
    pub target: Option<String>,
    /// `env=`: also (or only, without `target`) expose it as a variable.
    pub env: Option<String>,
    pub required: bool,
    /// Defaults 0400 and 0:0.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `RUN --mount=type=bind,…`.
#[derive(Clone)]
pub struct BindMount<'a> {
    /// The tree mounted from: the context directory or a stage's rootfs.
    pub from: &'a Path,
    /// `.dockerignore` when `from` is the context.
    pub ignore: Option<&'a dyn PathMatcher>,
    /// `source=` inside `from` (default `/`).
    pub source: String,
    pub target: String,
    pub rw: bool,
}

/// `RUN --mount=type=tmpfs,…`.
#[derive(Debug, Clone)]
pub struct TmpfsMount {
    pub target: String,
    /// `size=` in bytes; unlimited when `None`.
    pub size: Option<u64>,
}

/// `RUN --mount=type=ssh,…`.
#[derive(Debug, Clone)]
pub struct SshMount {
    /// Agent id (`default`).
    pub id: String,
    /// Socket path; `/run/buildkit/ssh_agent.<n>` by default.
    pub target: Option<String>,
    pub required: bool,
    /// Defaults 0600 and 0:0.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One `--mount` of a RUN.
#[derive(Clone)]
pub enum MountSpec<'a> {
    Cache(CacheMount),
    Secret(SecretMount),
    Bind(BindMount<'a>),
    Tmpfs(TmpfsMount),
    Ssh(SshMount),
}

/// Where mounts come from.
pub struct MountContext<'a> {
    /// The kiln root (cache mounts live there).
    pub kiln_root: &'a Path,
    /// A private directory for this step, outside the rootfs, removed by
    /// the caller after the step (overlay upper dirs, filtered copies).
    pub scratch: &'a Path,
    /// `--secret` values by id.
    pub secrets: &'a HashMap<String, SecretSource>,
    /// SSH agent sockets by id (`default` from `SSH_AUTH_SOCK`).
    pub ssh_agents: &'a HashMap<String, PathBuf>,
}

/// Mounts ready for the sandbox spec. Dropping it releases cache locks,
/// stops SSH forwarding and removes staged secrets.
pub struct PreparedMounts {
    /// In `--mount` order; append to the spec's mounts.
    pub mounts: Vec<Mount>,
    /// `KEY=value` entries to add to the process environment.
    pub env: Vec<String>,
    guards: Vec<Box<dyn Send>>,
}

impl std::fmt::Debug for PreparedMounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMounts")
            .field("mounts", &self.mounts)
            .field(
                "env",
                &self
                    .env
                    .iter()
                    .map(|e| e.split('=').next().unwrap_or(""))
                    .collect::<Vec<_>>(),
            )
            .field("guards", &self.guards.len())
            .finish()
    }
}

pub(crate) fn build_mount(
    target: &str,
    typ: &str,
    source: &Path,
    options: Vec<String>,
) -> Result<Mount, MountError> {
    MountBuilder::default()
        .destination(PathBuf::from(target))
        .typ(typ)
        .source(source.to_path_buf())
        .options(options)
        .build()
        .map_err(|source| MountError::Spec {
            target: target.to_owned(),
            source,
        })
}

/// Mount targets are absolute inside the container; a relative one is
/// relative to the step's working directory.
fn abs_target(target: &str, workdir: &str) -> String {
    let p = fileop::dest_path(target, workdir);
    match p.trim_end_matches('/') {
        "" => "/".to_owned(),
        t => t.to_owned(),
    }
}

/// Prepares every mount of one RUN. `workdir` makes relative targets
/// absolute.
pub fn prepare(
    ctx: &MountContext<'_>,
    workdir: &str,
    specs: &[MountSpec<'_>],
) -> Result<PreparedMounts, MountError> {
    let mut out = PreparedMounts {
        mounts: Vec::new(),
        env: Vec::new(),
        guards: Vec::new(),
    };
    let mut ssh_index = 0usize;
    for (i, spec) in specs.iter().enumerate() {
        match spec {
            MountSpec::Cache(c) => {
                let (dir, guard) = cache::acquire(ctx.kiln_root, c)?;
                out.guards.push(Box::new(guard));
                let rw = if c.readonly { "ro" } else { "rw" };
                out.mounts.push(build_mount(
                    &abs_target(&c.target, workdir),
                    "bind",
                    &dir,
                    vec!["rbind".into(), rw.into()],
                )?);
            }
            MountSpec::Secret(s) => {
                let Some(source) = ctx.secrets.get(&s.id) else {
                    if s.required {
                        return Err(MountError::SecretNotFound { id: s.id.clone() });
                    }
                    continue;
                };
                let value = source.read(&s.id)?;
                if let Some(var) = &s.env {
                    out.env
                        .push(format!("{var}={}", String::from_utf8_lossy(&value)));
                }
                let target = match (&s.target, &s.env) {
                    (Some(t), _) => Some(abs_target(t, workdir)),
                    (None, None) => Some(format!("/run/secrets/{}", s.id)),
                    (None, Some(_)) => None,
                };
                if let Some(target) = target {
                    let staged = secret::stage(&value, s)?;
                    out.mounts.push(build_mount(
                        &target,
                        "bind",
                        staged.path(),
                        vec![
                            "rbind".into(),
                            "ro".into(),
                            "nosuid".into(),
                            "nodev".into(),
                            "noexec".into(),
                        ],
                    )?);
                    out.guards.push(Box::new(staged));
                }
            }
            MountSpec::Bind(b) => {
                let m = bind(ctx, i, b, workdir)?;
                out.mounts.push(m);
            }
            MountSpec::Tmpfs(t) => {
                let mut options = vec!["nosuid".to_owned(), "nodev".to_owned()];
                if let Some(size) = t.size {
                    options.push(format!("size={size}"));
                }
                out.mounts.push(build_mount(
                    &abs_target(&t.target, workdir),
                    "tmpfs",
                    Path::new("tmpfs"),
                    options,
                )?);
            }
            MountSpec::Ssh(s) => {
                let target = s
                    .target
                    .as_deref()
                    .map(|t| abs_target(t, workdir))
                    .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{ssh_index}"));
                ssh_index += 1;
                let Some(agent) = ctx.ssh_agents.get(&s.id) else {
                    if s.required {
                        return Err(MountError::SshAgentMissing { id: s.id.clone() });
                    }
                    continue;
                };
                let fwd = ssh::Forwarder::start(agent, s)?;
                out.mounts.push(build_mount(
                    &target,
                    "bind",
                    fwd.socket(),
                    vec!["bind".into(), "rw".into()],
                )?);
                if !out.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                    out.env.push(format!("SSH_AUTH_SOCK={target}"));
                }
                out.guards.push(Box::new(fwd));
            }
        }
    }
    Ok(out)
}

/// `type=bind`: the source resolved inside its tree; read-only, or an
/// overlay whose upper directory (in scratch) takes the writes.
fn bind(
    ctx: &MountContext<'_>,
    index: usize,
    b: &BindMount<'_>,
    workdir: &str,
) -> Result<Mount, MountError> {
    let target = abs_target(&b.target, workdir);
    let resolved = fileop::rootpath::resolve(b.from, &b.source, true)?;
    let mut src = resolved.under(b.from);
    let meta = std::fs::metadata(&src).map_err(|_| MountError::BindSourceNotFound {
        path: b.source.clone(),
    })?;
    if let Some(ignore) = b.ignore
        && hides_something(b.from, &resolved.rel(), &meta, ignore)?
    {
        // Mount a filtered copy: ignored files must not be visible (they
        // are not part of the step's cache key either).
        let copy_root = ctx.scratch.join(format!("bind-{index}"));
        std::fs::create_dir_all(&copy_root)
            .map_err(MountError::io("create directory", &copy_root))?;
        let sources = [fileop::Source::Path(b.source.clone())];
        fileop::copy(
            &copy_root,
            &fileop::CopyRequest {
                tree: fileop::SourceTree {
                    root: b.from,
                    kind: fileop::TreeKind::Context,
                    ignore: Some(ignore),
                },
                sources: &sources,
                dest: if meta.is_dir() { "/data/" } else { "/data" },
                workdir: "/",
                options: fileop::CopyOptions::copy(),
            },
        )?;
        src = copy_root.join("data");
        let rw = if b.rw { "rw" } else { "ro" };
        return build_mount(&target, "bind", &src, vec!["rbind".into(), rw.into()]);
    }
    if !b.rw {
        return build_mount(&target, "bind", &src, vec!["rbind".into(), "ro".into()]);
    }
    if meta.is_dir() {
        let upper = ctx.scratch.join(format!("bind-{index}-upper"));
        let work = ctx.scratch.join(format!("bind-{index}-work"));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(MountError::io("create directory", d))?;
        }
        for p in [&src, &upper, &work] {
            let s = p.to_string_lossy();
            if s.contains(':') || s.contains(',') {
                return Err(MountError::UnsupportedPath { path: p.clone() });
            }
        }
        return build_mount(
            &target,
            "overlay",
            Path::new("overlay"),
            vec![
                format!("lowerdir={}", src.display()),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
        );
    }
    // A single file: a private copy takes the writes.
    let copy = ctx.scratch.join(format!("bind-{index}-file"));
    std::fs::copy(&src, &copy).map_err(MountError::io("copy", &src))?;
    build_mount(&target, "bind", &copy, vec!["bind".into(), "rw".into()])
}

/// Whether `.dockerignore` hides anything at or below `rel` in `root`.
fn hides_something(
    root: &Path,
    rel: &str,
    meta: &std::fs::Metadata,
    ignore: &dyn PathMatcher,
) -> Result<bool, MountError> {
    if !rel.is_empty() && ignore.matches(rel) {
        return Ok(true);
    }
    if !meta.is_dir() {
        return Ok(false);
    }
    let mut stack = vec![rel.to_owned()];
    while let Some(dir) = stack.pop() {
        let host = if dir.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&dir)
        };
        for name in fileop::select::read_dir_sorted(&host)
            .map_err(MountError::io("read directory", &host))?
        {
            let name = name.to_string_lossy();
            let child = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            if ignore.matches(&child) {
                return Ok(true);
            }
            let p = root.join(&child);
            if std::fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                stack.push(child);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
