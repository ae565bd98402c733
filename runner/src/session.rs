//! One run of a container, from start to recorded exit, by the process
//! that supervises it: `kiln run` itself in the foreground, or the small
//! supervisor process (`kiln` re-executed, in its own session) that a
//! detached container gets and that outlives the CLI.
//!
//! Start: the state goes `created|exited → starting` under the container's
//! lock (this process recorded as supervisor), the network namespace and
//! host ports are prepared, the executor's sandbox is spawned over an
//! overlay of the image's layers with the container's own upper directory,
//! and the state becomes `running` with the sandbox's handle. A failed
//! start goes back to `created` (or `exited`) with the error recorded.
//!
//! Run: ports are proxied, output is logged (detached) or the terminal is
//! attached (foreground), signals are forwarded. End: the outcome (exit
//! code, signal, OOM kill) is recorded, the network torn down, and a
//! `--rm` container removed. If this process is killed instead, the sandbox
//! helper kills the container and writes its outcome to `exit.json`, from
//! which the next reader reconciles the state.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio as ProcStdio;
use std::thread::JoinHandle;

use chrono::Utc;
use kiln_executor::{
    Cancel, EtcFiles, ExitOutcome, OverlayRootfs, Rootfs, Running, SandboxError, SandboxHandle,
    SandboxRequest, Stdio,
};
use serde::{Deserialize, Serialize};

use crate::attach::{PtyAttachment, SignalForwarder};
use crate::container::{Container, ProcRef, Status};
use crate::containers::{EXIT_FILE, LOG_FILE};
use crate::error::RunnerError;
use crate::logs::{LogStream, LogWriter};
use crate::mounts::VolumeSource;
use crate::network::{ContainerNetwork, OutboundHelper, outbound_helper};
use crate::proxy::{BoundPort, bind_ports, publish};
use crate::runtime::Runtime;
use crate::spec::{BindMount, NetworkNamespace, container_spec};

/// Where a started container's stdio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wiring {
    /// The caller's stdio (foreground `run`, `start -a`).
    Attached,
    /// The log file (detached).
    Logged,
}

/// A container this process has started and supervises.
pub(crate) struct Started {
    running: Box<dyn Running>,
    handle: SandboxHandle,
    network: Option<ContainerNetwork>,
    ports: Vec<BoundPort>,
}

/// The environment variable naming the supervisor's readiness descriptor.
pub const READY_FD_ENV: &str = "KILN_SUPERVISOR_READY_FD";

/// What the detached supervisor tells the CLI once the start succeeded or
/// failed.
#[derive(Debug, Serialize, Deserialize)]
struct Ready {
    ok: bool,
    error: Option<String>,
    code: Option<i32>,
}

/// The exit status docker gives a failed start: 127 when the program is
/// not found, 126 when it cannot be executed, 125 otherwise.
pub(crate) fn start_failure_code(e: &RunnerError) -> i32 {
    let io = match e {
        RunnerError::Start {
            source: SandboxError::Exec { source, .. },
            ..
        } => Some(source),
        RunnerError::Supervisor { code, .. } => return *code,
        _ => None,
    };
    match io.map(|e| e.kind()) {
        Some(std::io::ErrorKind::NotFound) => 127,
        Some(std::io::ErrorKind::PermissionDenied) => 126,
        _ if io.and_then(|e| e.raw_os_error()) == Some(libc::EISDIR)
            || io.and_then(|e| e.raw_os_error()) == Some(libc::ENOEXEC) =>
        {
            126
        }
        _ => 125,
    }
}

/// An error with its causes, one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The signal handlers of a supervisor, installed before the container
/// starts: in the foreground every signal a user sends is forwarded; the
/// detached supervisor passes on only polite requests to stop.
pub(crate) fn install_signals(wiring: Wiring) -> Result<SignalForwarder, RunnerError> {
    let signals = match wiring {
        Wiring::Attached => None,
        Wiring::Logged => Some(&[libc::SIGTERM, libc::SIGINT][..]),
    };
    SignalForwarder::install(signals).map_err(|source| RunnerError::Io {
        what: "install signal handlers",
        source,
    })
}

impl Runtime {
    /// Starts a container with this process as its supervisor.
    pub(crate) fn begin(&self, id: &str, wiring: Wiring) -> Result<Started, RunnerError> {
        let me = ProcRef::current();
        let c = {
            let _lock = self.store.lock(id)?;
            let c = self.store.get(id)?;
            c.require(Status::can_start, "start", "created or exited")?;
            self.store.update_state_locked(id, |s| {
                s.status = Status::Starting;
                s.supervisor = me;
                s.error = None;
            })?;
            c
        };
        tracing::debug!(%id, "starting");
        match self.launch(&c, wiring) {
            Ok(started) => {
                let published: Vec<_> = started.ports.iter().map(|p| p.published.clone()).collect();
                let handle = started.handle.clone();
                let recorded = self.store.update_state(id, |s| {
                    s.status = Status::Running;
                    s.sandbox = Some(handle);
                    s.started_at = Some(Utc::now());
                    s.finished_at = None;
                    s.exit_code = None;
                    s.oom_killed = false;
                    s.error = None;
                    s.ports = published;
                    s.start_count += 1;
                });
                if let Err(e) = recorded {
                    // Unrecorded, it would run unseen: stop it.
                    drop(started);
                    self.fail_start(id, &e);
                    return Err(e);
                }
                tracing::debug!(%id, "running");
                Ok(started)
            }
            Err(e) => {
                self.fail_start(id, &e);
                Err(e)
            }
        }
    }

    fn fail_start(&self, id: &str, e: &RunnerError) {
        let code = start_failure_code(e);
        let message = chain(e);
        let auto_remove = self
            .store
            .get(id)
            .map(|c| c.config.auto_remove)
            .unwrap_or(false);
        let _ = self.store.update_state(id, |s| {
            s.status = if s.start_count == 0 {
                Status::Created
            } else {
                Status::Exited
            };
            s.supervisor = None;
            s.sandbox = None;
            s.ports.clear();
            s.exit_code = Some(code);
            s.error = Some(message);
        });
        // As docker: a `--rm` container goes even when it never ran.
        if auto_remove && let Err(e) = self.remove_stopped(id, true) {
            tracing::warn!(%id, error = %e, "cannot remove the container");
        }
    }

    fn layer_dirs(&self, c: &Container) -> Result<Vec<PathBuf>, RunnerError> {
        if c.config.image.layer_dirs.iter().all(|d| d.is_dir()) {
            return Ok(c.config.image.layer_dirs.clone());
        }
        Ok(self.images.by_id(&c.config.image.id)?.layer_dirs)
    }

    fn launch(&self, c: &Container, wiring: Wiring) -> Result<Started, RunnerError> {
        let dir = &c.dir;
        // Top layer first, as overlayfs stacks them.
        let mut lowers: Vec<PathBuf> = self.layer_dirs(c)?.into_iter().rev().collect();
        let layers = lowers.clone();
        if lowers.is_empty() {
            lowers.push(dir.join("empty"));
        }
        let rootfs = Rootfs::Overlay(OverlayRootfs {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            mountpoint: dir.join("rootfs"),
            volatile: false,
        });
        let mut binds = Vec::new();
        for v in &c.config.volumes {
            let source = match &v.source {
                VolumeSource::Bind(path) => {
                    if !path.exists() {
                        // As docker's -v: a missing host path becomes a directory.
                        std::fs::create_dir_all(path).map_err(|source| {
                            crate::error::MountError::Source {
                                path: path.clone(),
                                source,
                            }
                        })?;
                    }
                    path.clone()
                }
                VolumeSource::Named(name) => {
                    let seed_from = if v.no_copy { &[][..] } else { &layers[..] };
                    self.volumes.prepare(name, seed_from, &v.target)?
                }
                VolumeSource::Anonymous => self.volumes.ensure(&crate::names::new_id()?)?,
            };
            binds.push(BindMount {
                source,
                target: v.target.clone(),
                read_only: v.read_only,
            });
        }
        // Host ports first: a taken port fails before anything is set up.
        let ports = bind_ports(&c.config.ports)?;
        // pasta configures the namespace while the sandbox is set up; the
        // gate holds the process back until it is done.
        let (mut network, gate) = match c.config.network {
            crate::container::NetworkMode::Host => (None, None),
            crate::container::NetworkMode::None => (
                Some(ContainerNetwork::create(&dir.join("netns"), None)?),
                None,
            ),
            crate::container::NetworkMode::Default => match outbound_helper() {
                Some(helper @ OutboundHelper::Pasta(_)) => {
                    let (n, gate) = ContainerNetwork::create_gated(&dir.join("netns"), &helper)?;
                    (Some(n), Some(gate))
                }
                // slirp4netns's own DNS goes into resolv.conf: attached first.
                other => (
                    Some(ContainerNetwork::create(
                        &dir.join("netns"),
                        other.as_ref(),
                    )?),
                    None,
                ),
            },
        };
        tracing::debug!(network = %c.config.network, gated = gate.is_some(), "network namespace ready");
        let namespace = match &network {
            Some(n) => NetworkNamespace::Join(n.path().to_path_buf()),
            None => NetworkNamespace::Host,
        };
        let spec = container_spec(&c.config, &namespace, &binds);
        let etc = EtcFiles {
            hosts: None,
            resolv_conf: network
                .as_ref()
                .and_then(|n| n.nameserver())
                .map(|ns| format!("nameserver {ns}\n")),
            hostname: None,
        };
        let _ = std::fs::remove_file(dir.join(EXIT_FILE));
        let (stdin, stdout, stderr) = match (wiring, c.config.tty) {
            (_, true) => (Stdio::Null, Stdio::Null, Stdio::Null),
            (Wiring::Attached, false) => (
                if c.config.open_stdin {
                    Stdio::Inherit
                } else {
                    Stdio::Null
                },
                Stdio::Inherit,
                Stdio::Inherit,
            ),
            (Wiring::Logged, false) => (Stdio::Null, Stdio::Piped, Stdio::Piped),
        };
        let request = SandboxRequest {
            id: c.id().to_string(),
            rootfs,
            spec,
            user: Some(c.config.user.clone()),
            stdin,
            stdout,
            stderr,
            etc: Some(etc),
            // A --rm container is removed when it ends: its outcome need
            // not outlive this process (and the helper's fsync is saved).
            exit_file: (!c.config.auto_remove).then(|| dir.join(EXIT_FILE)),
            gate,
        };
        let spawned = self.sandbox.spawn(request);
        if let Some(n) = &mut network {
            n.attached();
        }
        let running = match spawned {
            Ok(r) => r,
            Err(source) => {
                if let Some(n) = network {
                    n.close();
                }
                return Err(RunnerError::Start {
                    id: c.name().to_string(),
                    source,
                });
            }
        };
        let handle = running.handle().clone();
        tracing::debug!(pid = handle.init_pid, "sandbox spawned");
        Ok(Started {
            running,
            handle,
            network,
            ports,
        })
    }

    /// Serves a started container until it ends, records how it ended, and
    /// removes it when it was `--rm`. Returns the exit status.
    pub(crate) async fn supervise(
        &self,
        id: &str,
        started: Started,
        wiring: Wiring,
        mut forwarder: SignalForwarder,
    ) -> Result<i32, RunnerError> {
        let Started {
            mut running,
            handle,
            network,
            ports,
        } = started;
        let c = self.store.get(id)?;
        let publisher = match &network {
            Some(n) if !ports.is_empty() => Some(publish(ports, n.connector()).map_err(
                |source| RunnerError::Io {
                    what: "publish ports",
                    source,
                },
            )?),
            _ => None,
        };
        let mut copiers: Vec<JoinHandle<()>> = Vec::new();
        let mut pty_attachment = None;
        match wiring {
            Wiring::Logged => {
                let log =
                    LogWriter::open(&c.dir.join(LOG_FILE)).map_err(|source| RunnerError::Io {
                        what: "open the log file",
                        source,
                    })?;
                let sources = [
                    (LogStream::Stdout, running.take_pty()),
                    (LogStream::Stdout, running.take_stdout()),
                    (LogStream::Stderr, running.take_stderr()),
                ];
                for (stream, fd) in sources {
                    let Some(fd) = fd else { continue };
                    let log = log.clone();
                    copiers.push(std::thread::spawn(move || {
                        if let Err(e) = log.copy_from(stream, std::fs::File::from(fd)) {
                            tracing::warn!(error = %e, "cannot write the container's log");
                        }
                    }));
                }
            }
            Wiring::Attached => {
                if let Some(pty) = running.take_pty() {
                    pty_attachment = Some(PtyAttachment::start(pty, c.config.open_stdin).map_err(
                        |source| RunnerError::Io {
                            what: "attach the terminal",
                            source,
                        },
                    )?);
                }
            }
        }
        forwarder.forward_to(handle.clone());
        let waited = tokio::task::spawn_blocking(move || {
            let result = running.wait(&Cancel::new());
            (result, running)
        })
        .await;
        drop(forwarder);
        drop(publisher);
        let result = match waited {
            Ok((result, running)) => {
                drop(running);
                result
            }
            Err(join) => Err(SandboxError::Io {
                op: "wait",
                source: std::io::Error::other(join.to_string()),
            }),
        };
        tracing::debug!(%id, "process ended");
        for copier in copiers {
            let _ = copier.join();
        }
        if let Some(p) = pty_attachment {
            p.finish();
        }
        if let Some(n) = network {
            n.close();
        }
        let (code, oom, error) = match &result {
            Ok(outcome) => (
                Some(outcome.code()),
                matches!(outcome, ExitOutcome::OomKilled),
                None,
            ),
            Err(e) => (None, false, Some(chain(e))),
        };
        self.store.update_state(id, |s| {
            s.status = Status::Exited;
            s.sandbox = None;
            s.supervisor = None;
            s.ports.clear();
            s.finished_at = Some(Utc::now());
            s.exit_code = code;
            s.oom_killed = oom;
            s.error = error.clone();
        })?;
        tracing::debug!(%id, ?code, oom, "exit recorded");
        if c.config.auto_remove {
            match self.remove_stopped(id, true) {
                Ok(()) | Err(RunnerError::NoSuchContainer { .. }) => {}
                Err(e) => tracing::warn!(%id, error = %e, "cannot remove the container"),
            }
        }
        match result {
            Ok(outcome) => Ok(outcome.code()),
            Err(source) => Err(RunnerError::Wait {
                id: c.name().to_string(),
                source,
            }),
        }
    }

    /// `kiln run` in the foreground (and `start -a`): starts the container
    /// with the caller's stdio and returns its exit status once it ended.
    pub async fn run_attached(&self, id: &str) -> Result<i32, RunnerError> {
        let forwarder = install_signals(Wiring::Attached)?;
        let started = tokio::task::block_in_place(|| self.begin(id, Wiring::Attached))?;
        self.supervise(id, started, Wiring::Attached, forwarder)
            .await
    }

    /// `kiln run -d` and `kiln start`: starts a supervisor process for the
    /// container, which outlives this one, and returns once the container
    /// runs (or failed to start).
    pub fn start_detached(&self, id: &str) -> Result<(), RunnerError> {
        let cmd = self.supervisor.as_ref().ok_or(RunnerError::NoSupervisor)?;
        let dir = self.store.container_dir(id);
        let (ready_r, ready_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunnerError::Io {
                what: "create a pipe",
                source: e.into(),
            })?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("supervisor.log"))
            .map_err(|source| RunnerError::Io {
                what: "open the supervisor log",
                source,
            })?;
        let mut command = std::process::Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .arg(id)
            .env(READY_FD_ENV, "3")
            .stdin(ProcStdio::null())
            .stdout(ProcStdio::null())
            .stderr(ProcStdio::from(log));
        let raw = ready_w.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if raw == 3 {
                    if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The supervisor outlives us: it must not keep any other
                // descriptor of ours (or of our caller) open.
                libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| RunnerError::Io {
            what: "start the container's supervisor",
            source,
        })?;
        drop(ready_w);
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::fs::File::from(ready_r), &mut text);
        // The supervisor lives on; the init process reaps it.
        drop(child);
        match serde_json::from_str::<Ready>(text.trim()) {
            Ok(Ready { ok: true, .. }) => Ok(()),
            Ok(Ready { error, code, .. }) => Err(RunnerError::Supervisor {
                message: error.unwrap_or_else(|| "the container did not start".to_string()),
                code: code.unwrap_or(125),
            }),
            Err(_) => Err(RunnerError::Supervisor {
                message: format!(
                    "the supervisor ended before the container started (see {})",
                    dir.join("supervisor.log").display()
                ),
                code: 125,
            }),
        }
    }

    /// The detached supervisor's life (the hidden command of `kiln`): starts
    /// the container, reports to the CLI on the descriptor named by
    /// [`READY_FD_ENV`], serves it until it ends. Returns the exit status.
    pub async fn supervise_detached(&self, id: &str) -> i32 {
        let ready = std::env::var(READY_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|&fd| {
                // Ours alone: nothing we start (pasta daemonises) may keep
                // it, or the CLI would wait forever.
                // SAFETY: fcntl on a descriptor number; fails if not open.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0 }
            })
            // SAFETY: the CLI passed this descriptor for us alone.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        let report = |msg: Ready| {
            if let Some(fd) = &ready
                && let Ok(fd) = fd.as_fd().try_clone_to_owned()
            {
                let mut f = std::fs::File::from(fd);
                let _ = f.write_all(serde_json::to_string(&msg).unwrap_or_default().as_bytes());
            }
        };
        let forwarder = match install_signals(Wiring::Logged) {
            Ok(f) => f,
            Err(e) => {
                report(Ready {
                    ok: false,
                    error: Some(chain(&e)),
                    code: Some(125),
                });
                return 125;
            }
        };
        let started = match tokio::task::block_in_place(|| self.begin(id, Wiring::Logged)) {
            Ok(s) => s,
            Err(e) => {
                report(Ready {
                    ok: false,
                    error: Some(chain(&e)),
                    code: Some(start_failure_code(&e)),
                });
                return start_failure_code(&e);
            }
        };
        report(Ready {
            ok: true,
            error: None,
            code: None,
        });
        drop(ready);
        match self.supervise(id, started, Wiring::Logged, forwarder).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!(%id, error = %chain(&e), "supervising the container failed");
                125
            }
        }
    }
}
