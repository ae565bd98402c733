//! RUN steps in the sandbox: docker's default spec with the step's argv,
//! environment, working directory, user, network and mounts, output
//! streamed line by line to the step's progress, cancelled with the build.

use std::path::PathBuf;
use std::sync::Arc;

use kiln_executor::spec::{default_spec, set_host_network};
use kiln_executor::{
    Cancel, CancelReason, ExitOutcome, LinuxSandbox, OutputStream, Sandbox, SandboxRequest,
};
use kiln_solver::{
    ExecSpec, ExitStatus, FileSource, LogStream, MountKind, NetworkMode, OpContext, Security,
    WorkerError,
};
use oci_spec::runtime::{Mount as RtMount, MountBuilder};

use super::error::BuildWorkerError;
use super::rootfs::BuildRootfs;

/// The hostname RUN steps see (BuildKit's).
pub const BUILD_HOSTNAME: &str = "buildkitsandbox";

/// Files a step's mounts need on the host, removed with it.
#[derive(Debug, Default)]
pub struct MountFiles {
    dirs: Vec<tempfile::TempDir>,
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

/// The runtime-spec mounts of a step's `--mount`s that this worker makes
/// itself (inline files, tmpfs).
fn mounts(
    spec: &ExecSpec,
    tmp: &std::path::Path,
    files: &mut MountFiles,
) -> Result<Vec<RtMount>, BuildWorkerError> {
    let mut out = Vec::new();
    for m in &spec.mounts {
        match &m.kind {
            MountKind::Bind {
                from: FileSource::Inline { name, data, mode },
                ..
            } => {
                let dir = tempfile::Builder::new()
                    .prefix(&format!("{}-inline-", std::process::id()))
                    .tempdir_in(tmp)
                    .map_err(BuildWorkerError::io("create a temp dir in", tmp))?;
                let path = dir.path().join(name);
                std::fs::write(&path, data).map_err(BuildWorkerError::io("write", &path))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                    .map_err(BuildWorkerError::io("chmod", &path))?;
                out.push(bind(dir.path().to_path_buf(), &m.target, true));
                files.dirs.push(dir);
            }
            MountKind::Tmpfs { size } => {
                let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = size {
                    options.push(format!("size={s}"));
                }
                out.push(
                    MountBuilder::default()
                        .destination(PathBuf::from(&m.target))
                        .typ("tmpfs")
                        .source(PathBuf::from("tmpfs"))
                        .options(options)
                        .build()
                        .expect("mount fields are set"),
                );
            }
            MountKind::Bind { .. } => {
                return Err(BuildWorkerError::Unsupported {
                    what: "RUN --mount=type=bind",
                });
            }
            MountKind::Cache { .. } => {
                return Err(BuildWorkerError::Unsupported {
                    what: "RUN --mount=type=cache",
                });
            }
            MountKind::Secret { .. } => {
                return Err(BuildWorkerError::Unsupported {
                    what: "RUN --mount=type=secret",
                });
            }
        }
    }
    if !spec.secret_env.is_empty() {
        return Err(BuildWorkerError::Unsupported {
            what: "RUN --mount=type=secret,env=",
        });
    }
    Ok(out)
}

/// Runs `spec` in `rootfs`.
pub async fn run(
    sandbox: Arc<LinuxSandbox>,
    tmp: PathBuf,
    rootfs: &mut BuildRootfs,
    spec: &ExecSpec,
    ctx: &OpContext,
) -> Result<ExitStatus, WorkerError> {
    if spec.security == Security::Insecure {
        return Err(BuildWorkerError::Insecure.into());
    }
    let mut files = MountFiles::default();
    let extra = mounts(spec, &tmp, &mut files)?;
    let mut rt = default_spec(&spec.args);
    rt.set_hostname(Some(BUILD_HOSTNAME.to_string()));
    if let Some(p) = rt.process_mut() {
        p.set_env(Some(spec.env.clone()));
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
