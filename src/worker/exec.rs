//! RUN steps in the sandbox: docker's default spec with the step's argv,
//! environment, working directory, user, network and mounts, output
//! streamed line by line to the step's progress, cancelled with the build.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_executor::spec::{default_spec, set_host_network};
use kiln_executor::{
    BindMount, CacheMount, Cancel, CancelReason, ExitOutcome, LinuxSandbox, MountContext,
    MountSpec, OutputStream, PathMatcher, PreparedMounts, Sandbox, SandboxRequest, SecretMount,
    SecretSource, Sharing, SshMount, TmpfsMount,
};
use kiln_solver::{
    CacheSharing, ExecSpec, ExitStatus, FileSource, LogStream, MountKind, NetworkMode, OpContext,
    Security, WorkerError,
};
use oci_spec::runtime::{Mount as RtMount, MountBuilder};

use super::error::BuildWorkerError;
use super::fileop::Patterns;
use super::image::to_store_layer;
use super::rootfs::BuildRootfs;

/// The hostname RUN steps see (BuildKit's).
pub const BUILD_HOSTNAME: &str = "buildkitsandbox";

/// What a step's mounts hold on the host until it ends: the executor's
/// prepared mounts (cache locks, staged secrets), inline files, filesystems
/// of other stages copied out for a bind, and the step's scratch dir.
#[derive(Default)]
pub struct MountGuards {
    _prepared: Option<PreparedMounts>,
    _dirs: Vec<tempfile::TempDir>,
}

fn bind(src: PathBuf, target: &str, readonly: bool) -> RtMount {
    let mut options = vec!["rbind".to_string()];
    if readonly {
        options.push("ro".into());
    }
    MountBuilder::default()
        .destination(PathBuf::from(target))
        .typ("bind")
        .source(src)
        .options(options)
        .build()
        .expect("mount fields are set")
}

/// The runtime-spec mounts and environment of a step's `--mount`s
/// (blocking: a `locked` cache waits for its holder).
fn mounts(
    worker: &WorkerParts,
    spec: &ExecSpec,
) -> Result<(Vec<RtMount>, Vec<String>, MountGuards), BuildWorkerError> {
    let tmp = &worker.tmp;
    let mut guards = MountGuards::default();
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{}-mounts-", std::process::id()))
        .tempdir_in(tmp)
        .map_err(BuildWorkerError::io("create a temp dir in", tmp))?;
    let ignore = worker.ignore.clone().map(Patterns);
    // Host directories of the sources, kept alive while preparing.
    let mut hosts: Vec<PathBuf> = Vec::new();
    let host_of = |from: &FileSource,
                   guards: &mut MountGuards|
     -> Result<(PathBuf, bool), BuildWorkerError> {
        match from {
            FileSource::Context => Ok((
                worker.context.clone().ok_or(BuildWorkerError::NoContext)?,
                true,
            )),
            FileSource::Layers(chain) => {
                let (dir, guard) = worker.materialize(chain)?;
                if let Some(g) = guard {
                    guards._dirs.push(g);
                }
                Ok((dir, false))
            }
            FileSource::Inline { name, data, mode } => {
                let dir = tempfile::Builder::new()
                    .prefix(&format!("{}-inline-", std::process::id()))
                    .tempdir_in(tmp)
                    .map_err(BuildWorkerError::io("create a temp dir in", tmp))?;
                let path = dir.path().join(name);
                std::fs::write(&path, data).map_err(BuildWorkerError::io("write", &path))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                    .map_err(BuildWorkerError::io("chmod", &path))?;
                let p = dir.path().to_path_buf();
                guards._dirs.push(dir);
                Ok((p, false))
            }
            FileSource::Url { .. } => Err(BuildWorkerError::Unsupported {
                what: "mounting a URL",
            }),
        }
    };
    // First pass: the host path of every source.
    let mut plain: Vec<RtMount> = Vec::new();
    enum Planned {
        Bind(usize, String, String, bool, bool),
        Cache(crate::worker::exec::CachePlan),
        Other,
    }
    let mut planned = Vec::new();
    for m in &spec.mounts {
        match &m.kind {
            MountKind::Bind {
                from: from @ FileSource::Inline { .. },
                ..
            } => {
                let (dir, _) = host_of(from, &mut guards)?;
                plain.push(bind(dir, &m.target, true));
                planned.push(Planned::Other);
            }
            MountKind::Bind {
                from,
                source,
                readwrite,
            } => {
                let (dir, is_context) = host_of(from, &mut guards)?;
                hosts.push(dir);
                planned.push(Planned::Bind(
                    hosts.len() - 1,
                    source.clone(),
                    m.target.clone(),
                    *readwrite,
                    is_context,
                ));
            }
            MountKind::Cache {
                id,
                sharing,
                readonly,
                from,
                mode,
                uid,
                gid,
            } => {
                let seed = match from {
                    Some((src, path)) => {
                        let (dir, _) = host_of(src, &mut guards)?;
                        hosts.push(dir);
                        Some((hosts.len() - 1, path.clone()))
                    }
                    None => None,
                };
                planned.push(Planned::Cache(CachePlan {
                    id: id.clone(),
                    target: m.target.clone(),
                    sharing: match sharing {
                        CacheSharing::Shared => Sharing::Shared,
                        CacheSharing::Private => Sharing::Private,
                        CacheSharing::Locked => Sharing::Locked,
                    },
                    readonly: *readonly,
                    mode: mode.unwrap_or(0o755),
                    uid: uid.unwrap_or(0),
                    gid: gid.unwrap_or(0),
                    seed,
                }));
            }
            MountKind::Tmpfs { .. } | MountKind::Secret { .. } | MountKind::Ssh { .. } => {
                planned.push(Planned::Other)
            }
        }
    }
    // Second pass: the executor's mount specs over those paths.
    let mut specs: Vec<MountSpec<'_>> = Vec::new();
    for (m, p) in spec.mounts.iter().zip(&planned) {
        match (p, &m.kind) {
            (Planned::Bind(h, source, target, rw, is_context), _) => {
                specs.push(MountSpec::Bind(BindMount {
                    from: &hosts[*h],
                    ignore: if *is_context {
                        ignore.as_ref().map(|i| i as &dyn PathMatcher)
                    } else {
                        None
                    },
                    source: source.clone(),
                    target: target.clone(),
                    rw: *rw,
                }))
            }
            (Planned::Cache(c), _) => specs.push(MountSpec::Cache(CacheMount {
                id: c.id.clone(),
                target: c.target.clone(),
                sharing: c.sharing,
                readonly: c.readonly,
                uid: c.uid,
                gid: c.gid,
                mode: c.mode,
                from: c.seed.as_ref().map(|(h, _)| hosts[*h].clone()),
                source: c.seed.as_ref().map(|(_, p)| p.clone()),
            })),
            (Planned::Other, MountKind::Tmpfs { size }) => {
                specs.push(MountSpec::Tmpfs(TmpfsMount {
                    target: m.target.clone(),
                    size: *size,
                }))
            }
            (
                Planned::Other,
                MountKind::Secret {
                    id,
                    required,
                    mode,
                    uid,
                    gid,
                },
            ) => specs.push(MountSpec::Secret(SecretMount {
                id: id.clone(),
                target: Some(m.target.clone()),
                env: None,
                required: *required,
                mode: mode.unwrap_or(0o400),
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
            })),
            (
                Planned::Other,
                MountKind::Ssh {
                    id,
                    required,
                    mode,
                    uid,
                    gid,
                },
            ) => specs.push(MountSpec::Ssh(SshMount {
                id: id.clone(),
                target: Some(m.target.clone()),
                required: *required,
                mode: mode.unwrap_or(0o600),
                uid: uid.unwrap_or(0),
                gid: gid.unwrap_or(0),
            })),
            (Planned::Other, _) => {}
        }
    }
    for (var, id, required) in &spec.secret_env {
        specs.push(MountSpec::Secret(SecretMount {
            id: id.clone(),
            target: None,
            env: Some(var.clone()),
            required: *required,
            mode: 0o400,
            uid: 0,
            gid: 0,
        }));
    }
    let ctx = MountContext {
        kiln_root: &worker.root,
        scratch: scratch.path(),
        secrets: &worker.secrets,
        ssh_agents: &worker.ssh_agents,
    };
    let prepared = kiln_executor::buildmount::prepare(&ctx, &spec.cwd, &specs)?;
    let mut out = plain;
    out.extend(prepared.mounts.iter().cloned());
    let env = prepared.env.clone();
    guards._prepared = Some(prepared);
    guards._dirs.push(scratch);
    Ok((out, env, guards))
}

/// A cache mount before its seed's host path is known.
pub struct CachePlan {
    id: String,
    target: String,
    sharing: Sharing,
    readonly: bool,
    mode: u32,
    uid: u32,
    gid: u32,
    seed: Option<(usize, String)>,
}

/// What a RUN needs of the worker, owned (it moves to a blocking thread).
pub struct WorkerParts {
    pub sandbox: Arc<LinuxSandbox>,
    pub store: kiln_registry::Store,
    pub root: PathBuf,
    pub tmp: PathBuf,
    pub context: Option<PathBuf>,
    pub ignore: Option<kiln_parser::DockerIgnore>,
    pub secrets: HashMap<String, SecretSource>,
    /// `--ssh` agent sockets by id.
    pub ssh_agents: HashMap<String, PathBuf>,
}

impl WorkerParts {
    /// A host directory holding the filesystem of `chain` (for a bind or a
    /// cache seed): a single layer's snapshot as it is, else the layers
    /// applied into a temp dir (removed with the returned guard).
    fn materialize(
        &self,
        chain: &[kiln_solver::Layer],
    ) -> Result<(PathBuf, Option<tempfile::TempDir>), BuildWorkerError> {
        if chain.len() == 1 {
            let dir = self.store.unpack_layer(&to_store_layer(&chain[0]))?;
            return Ok((dir, None));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-stage-", std::process::id()))
            .tempdir_in(&self.tmp)
            .map_err(BuildWorkerError::io("create a temp dir in", &self.tmp))?;
        for l in chain {
            self.store.apply_layer(&to_store_layer(l), dir.path())?;
        }
        Ok((dir.path().to_path_buf(), Some(dir)))
    }
}

/// Runs `spec` in `rootfs`.
pub async fn run(
    parts: WorkerParts,
    rootfs: &mut BuildRootfs,
    spec: &ExecSpec,
    ctx: &OpContext,
) -> Result<ExitStatus, WorkerError> {
    if spec.security == Security::Insecure {
        return Err(BuildWorkerError::Insecure.into());
    }
    let parts = Arc::new(parts);
    let (extra, mount_env, files) = {
        let parts = parts.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || mounts(&parts, &spec))
            .await
            .map_err(BuildWorkerError::Join)??
    };
    let sandbox = parts.sandbox.clone();
    let mut rt = default_spec(&spec.args);
    rt.set_hostname(Some(BUILD_HOSTNAME.to_string()));
    if let Some(p) = rt.process_mut() {
        let mut env = spec.env.clone();
        env.extend(mount_env);
        p.set_env(Some(env));
        p.set_cwd(PathBuf::from(&spec.cwd));
    }
    match spec.network {
        NetworkMode::Default | NetworkMode::Host => set_host_network(&mut rt),
        NetworkMode::None => {}
    }
    if let Some(m) = rt.mounts_mut() {
        m.extend(extra);
    }
    let mut request = SandboxRequest::new(rootfs.snapshot.rootfs(), rt);
    request.user = (!spec.user.is_empty()).then(|| spec.user.clone());

    let cancel = Cancel::new();
    let watcher = {
        let cancel = cancel.clone();
        let token = ctx.cancel.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            cancel.cancel(CancelReason::Interrupted);
        })
    };
    let log_ctx = ctx.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut sink = |stream: OutputStream, line: &[u8]| {
            let s = match stream {
                OutputStream::Stdout => LogStream::Stdout,
                OutputStream::Stderr => LogStream::Stderr,
            };
            let mut l = Vec::with_capacity(line.len() + 1);
            l.extend_from_slice(line);
            l.push(b'\n');
            log_ctx.log(s, &l);
        };
        let r = sandbox.run(request, &cancel, &mut sink);
        drop(files);
        r
    })
    .await;
    watcher.abort();
    let outcome = outcome
        .map_err(BuildWorkerError::Join)?
        .map_err(BuildWorkerError::from)?;
    match outcome {
        ExitOutcome::Exited { code } => Ok(ExitStatus::Code(code)),
        ExitOutcome::Signaled { signal } => Ok(ExitStatus::Signal(signal)),
        ExitOutcome::OomKilled => {
            ctx.log(LogStream::Stderr, b"killed: out of memory\n");
            Ok(ExitStatus::Code(137))
        }
        ExitOutcome::Cancelled { .. } => Err(WorkerError::Cancelled),
    }
}
