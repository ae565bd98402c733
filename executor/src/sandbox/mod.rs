//! The sandbox: run one process tree in an isolated root filesystem.
//!
//! [`Sandbox`] is the seam the rest of kiln programs against: the build
//! worker runs RUN steps to completion with [`Sandbox::run`] (output streamed
//! line by line), the runner starts containers with [`Sandbox::spawn`] (the
//! container's init pid is known while it runs, it can be signalled,
//! detached, and entered with [`Sandbox::exec`]). [`LinuxSandbox`] is the
//! real implementation (namespaces, cgroups, pivot_root); [`FakeSandbox`]
//! records requests and plays scripted results for unit tests above it.
//!
//! What a sandbox is given: a [`Rootfs`] (a directory, or an overlay stack
//! of read-only layer directories plus a writable upper directory), an OCI
//! runtime [`Spec`] (process args/env/cwd/user, mounts, namespaces,
//! resources, rlimits, capabilities, hostname; see [`crate::spec`] for
//! docker's defaults) and stdio. A network namespace without a path in the
//! spec means "none" (own namespace, only `lo` up); no network namespace
//! means "host".
//!
//! # Process model
//!
//! kiln is a tokio program, and forking a multi-threaded process that then
//! allocates is unsafe. [`LinuxSandbox`] therefore re-executes kiln itself
//! (`/proc/self/exe` with the hidden first argument [`HELPER_ARG`]) as a
//! single-threaded helper process; `main` must call [`helper_main`] before
//! any runtime or thread exists. The helper creates the cgroup, forks the
//! container's init (PID 1 of a new PID namespace) and supervises it; it
//! talks to the caller over a socket. When PID 1 exits the kernel kills the
//! rest of the tree; the helper reaps, removes the cgroup and reports the
//! [`ExitOutcome`]. If the caller disappears (crash, Ctrl-C, dropped handle)
//! the socket closes and the helper kills the tree — unless the sandbox was
//! [detached](Running::detach).

mod cancel;
mod caps;
mod fake;
mod helper;
mod init;
mod linux;
mod network;
mod output;
mod protocol;
mod rlimits;
mod rootfs;
mod setup_error;

pub use cancel::{Cancel, CancelReason};
pub use fake::{FakeResult, FakeSandbox, RecordedRequest};
pub use helper::helper_main;
pub use linux::LinuxSandbox;
pub use network::loopback_up;
pub use output::{LineSplitter, OutputStream};

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

/// The hidden first argument that makes the kiln binary act as the sandbox
/// helper (see the module docs). `main` checks for it before anything else.
pub const HELPER_ARG: &str = "__kiln-sandbox-helper";

/// The root filesystem of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// A directory used as it is: the process writes into it. (Plain-copy
    /// snapshots and `kiln debug sandbox --rootfs DIR`.)
    Dir(PathBuf),
    /// An overlayfs stack, mounted inside the sandbox's own mount namespace
    /// (never on the host).
    Overlay(OverlayRootfs),
}

/// An overlayfs root: read-only `lowers` (topmost first, as overlayfs
/// orders `lowerdir`), a writable `upper` that receives every change (the
/// step's diff is read from it), and overlayfs's `work` directory (same
/// filesystem as `upper`, empty). `mountpoint` is an existing empty
/// directory the stack is mounted on inside the sandbox's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayRootfs {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub mountpoint: PathBuf,
    /// Mount with `volatile` (Linux 5.10+, ignored where missing): no sync
    /// of the upper filesystem when the mount goes, and fsync inside is a
    /// no-op. For build steps, whose upper kiln reads and keeps itself;
    /// never for containers, whose programs may rely on fsync.
    #[serde(default)]
    pub volatile: bool,
}

/// Where one of the process's standard streams goes. With
/// `spec.process.terminal = true` all three are a pseudo-terminal instead
/// (its master is handed back by [`Running::take_pty`]) and these are
/// ignored.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own stream.
    Inherit,
    /// `/dev/null`.
    #[default]
    Null,
    /// A pipe; the caller's end comes from [`Running::take_stdin`] /
    /// [`Running::take_stdout`] / [`Running::take_stderr`], or is streamed
    /// line by line by [`Running::wait_with_output`].
    Piped,
    /// An open file, socket or pipe end (log files of detached containers).
    Fd(OwnedFd),
}

/// Everything needed to start a sandbox.
#[derive(Debug)]
pub struct SandboxRequest {
    /// A short name for logs and the cgroup (`kiln/<id>`); letters, digits,
    /// `-`, `_` and `.`. Empty: one is generated.
    pub id: String,
    pub rootfs: Rootfs,
    /// The OCI runtime spec. `spec.root` is ignored (the rootfs is
    /// `rootfs`), except `root.readonly`.
    pub spec: Spec,
    /// `USER` as docker takes it (`name`, `uid`, `name:group`, `uid:gid`),
    /// resolved inside the rootfs against its `/etc/passwd` and `/etc/group`
    /// (see [`crate::user`]); it replaces `spec.process.user` and sets
    /// `HOME` unless the env has one. `None`: `spec.process.user` as it is.
    pub user: Option<String>,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// Contents of `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`
    /// bind-mounted into the sandbox. `None`: defaults (see [`EtcFiles`]).
    pub etc: Option<EtcFiles>,
    /// When set, the helper writes the [`ExitOutcome`] here as JSON
    /// (atomically) when the sandbox ends, also after [`Running::detach`].
    pub exit_file: Option<PathBuf>,
    /// A gate on the process's start: the sandbox is set up at once, but
    /// its process is only `exec`'d once a byte can be read from this fd
    /// (the runner writes one when the container's network is ready); end
    /// of file instead calls the start off. `None`: no wait.
    pub gate: Option<OwnedFd>,
}

impl SandboxRequest {
    /// A request with null stdio, default `/etc` files and no exit file.
    pub fn new(rootfs: Rootfs, spec: Spec) -> SandboxRequest {
        SandboxRequest {
            id: String::new(),
            rootfs,
            spec,
            user: None,
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            etc: None,
            exit_file: None,
            gate: None,
        }
    }
}

/// Files the sandbox provides under `/etc` (bind-mounted over the rootfs's
/// own, which stay untouched, so they never end up in a layer). The
/// defaults: `hosts` with localhost entries and the hostname, the host's
/// `resolv.conf` (without loopback nameservers when the sandbox has its own
/// network namespace), and `hostname`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFiles {
    pub hosts: Option<String>,
    pub resolv_conf: Option<String>,
    pub hostname: Option<String>,
}

/// Starting a process inside a running sandbox (`kiln exec`): it joins the
/// sandbox's namespaces and cgroup.
#[derive(Debug)]
pub struct ExecRequest {
    /// args, env, cwd, capabilities, rlimits, no_new_privileges, terminal.
    pub process: Process,
    /// As [`SandboxRequest::user`].
    pub user: Option<String>,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// How a sandbox (or an exec'd process) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ExitOutcome {
    /// The process exited with this status.
    Exited { code: i32 },
    /// The process was killed by this signal (not by the OOM killer).
    Signaled { signal: i32 },
    /// The kernel's OOM killer killed a process of the sandbox (its cgroup
    /// memory limit was reached) and the sandbox did not succeed.
    OomKilled,
    /// The caller cancelled (Ctrl-C, timeout); the tree was killed.
    Cancelled { reason: CancelReason },
}

impl ExitOutcome {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitOutcome::Exited { code: 0 })
    }

    /// The status a shell (or `docker run`) would report: the exit code,
    /// 128 + signal, 137 for an OOM kill, 130 for Ctrl-C, 124 for a timeout.
    pub fn code(&self) -> i32 {
        match *self {
            ExitOutcome::Exited { code } => code,
            ExitOutcome::Signaled { signal } => 128 + signal,
            ExitOutcome::OomKilled => 137,
            ExitOutcome::Cancelled {
                reason: CancelReason::Interrupted,
            } => 130,
            ExitOutcome::Cancelled {
                reason: CancelReason::TimedOut,
            } => 124,
        }
    }
}

impl std::fmt::Display for ExitOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitOutcome::Exited { code } => write!(f, "exit code: {code}"),
            ExitOutcome::Signaled { signal } => write!(f, "killed by signal {signal}"),
            ExitOutcome::OomKilled => write!(f, "killed: out of memory"),
            ExitOutcome::Cancelled {
                reason: CancelReason::Interrupted,
            } => write!(f, "interrupted"),
            ExitOutcome::Cancelled {
                reason: CancelReason::TimedOut,
            } => write!(f, "timed out"),
        }
    }
}

/// What identifies a running sandbox, also from another kiln process (the
/// runner stores it in the container's state): enough to signal it, enter
/// it with [`Sandbox::exec`], and tell a reused pid from the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxHandle {
    pub id: String,
    /// The container's PID 1 as the host sees it. `setns` into
    /// `/proc/<init_pid>/ns/*` (or a pidfd) to join its namespaces, e.g. for
    /// a port proxy connecting inside its network namespace.
    pub init_pid: i32,
    /// The init's start time (field 22 of `/proc/<pid>/stat`): a pid whose
    /// start time differs is another process.
    pub init_start_time: u64,
    /// The supervising helper process.
    pub helper_pid: i32,
    /// The sandbox's cgroup directories (one per v1 controller, or one v2
    /// directory); empty when it has none.
    pub cgroup_dirs: Vec<PathBuf>,
}

impl SandboxHandle {
    /// Whether the init process still runs (same pid and start time).
    pub fn is_running(&self) -> bool {
        crate::proc::start_time(self.init_pid).ok() == Some(self.init_start_time)
    }

    /// Sends `signal` to the container's PID 1, through a pidfd checked
    /// against the start time (so a reused pid is never signalled). PID 1
    /// ignores signals it has no handler for, except SIGKILL.
    pub fn signal(&self, signal: i32) -> Result<(), SandboxError> {
        crate::proc::signal_checked(self.init_pid, self.init_start_time, signal).map_err(|source| {
            SandboxError::Signal {
                id: self.id.clone(),
                signal,
                source,
            }
        })
    }
}

/// A line-oriented sink for a sandbox's output: called once per line (the
/// trailing newline removed; a last line without one is delivered at the
/// end; very long lines are cut into pieces of at most
/// [`LineSplitter::MAX_LINE`] bytes).
pub type OutputSink<'a> = dyn FnMut(OutputStream, &[u8]) + 'a;

/// A sandbox that has started: its process runs until [`Running::wait`]
/// sees it end. Dropping it kills the whole tree, reaps it and removes its
/// cgroup (unless it was [detached](Running::detach)).
pub trait Running: Send {
    /// The running sandbox's identity (init pid, cgroup).
    fn handle(&self) -> &SandboxHandle;
    /// The caller's end of a [`Stdio::Piped`] stdin (once).
    fn take_stdin(&mut self) -> Option<OwnedFd>;
    /// The caller's end of a [`Stdio::Piped`] stdout (once).
    fn take_stdout(&mut self) -> Option<OwnedFd>;
    /// The caller's end of a [`Stdio::Piped`] stderr (once).
    fn take_stderr(&mut self) -> Option<OwnedFd>;
    /// The pseudo-terminal master when `process.terminal` was set (once).
    /// Resize with `TIOCSWINSZ` on it.
    fn take_pty(&mut self) -> Option<OwnedFd>;
    /// Sends a signal to the process (PID 1 of the sandbox, or the exec'd
    /// process).
    fn signal(&mut self, signal: i32) -> Result<(), SandboxError>;
    /// Waits for the end. When `cancel` fires (or its deadline passes) the
    /// tree is killed and the outcome is [`ExitOutcome::Cancelled`].
    fn wait(&mut self, cancel: &Cancel) -> Result<ExitOutcome, SandboxError>;
    /// As [`Running::wait`], and streams piped stdout and stderr (those not
    /// taken) to `sink` line by line meanwhile.
    fn wait_with_output(
        &mut self,
        cancel: &Cancel,
        sink: &mut OutputSink<'_>,
    ) -> Result<ExitOutcome, SandboxError>;
    /// Lets the sandbox outlive this handle and this process: the helper
    /// keeps supervising, writes the outcome to the request's `exit_file`
    /// and cleans up when the sandbox ends.
    fn detach(self: Box<Self>) -> Result<SandboxHandle, SandboxError>;
}

/// Runs processes in isolated root filesystems. Implementations are cheap
/// to share between threads; every method blocks (call them from
/// `spawn_blocking` in async code), and [`Cancel`] may be fired from any
/// thread or async task.
pub trait Sandbox: Send + Sync {
    /// Starts a sandbox and returns once its process has been exec'd (or
    /// setting it up failed).
    fn spawn(&self, request: SandboxRequest) -> Result<Box<dyn Running>, SandboxError>;

    /// Starts a process inside a running sandbox: it joins the sandbox's
    /// namespaces (mount, PID, UTS, IPC, network, cgroup) and cgroup.
    fn exec(
        &self,
        target: &SandboxHandle,
        request: ExecRequest,
    ) -> Result<Box<dyn Running>, SandboxError>;

    /// Runs a sandbox to completion (a RUN step): stdout and stderr are
    /// piped and streamed to `sink` line by line; `request.stdout` and
    /// `request.stderr` are replaced.
    fn run(
        &self,
        mut request: SandboxRequest,
        cancel: &Cancel,
        sink: &mut OutputSink<'_>,
    ) -> Result<ExitOutcome, SandboxError> {
        request.stdout = Stdio::Piped;
        request.stderr = Stdio::Piped;
        let mut running = self.spawn(request)?;
        running.wait_with_output(cancel, sink)
    }
}

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the sandbox helper {path}")]
    SpawnHelper {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lost contact with the sandbox helper of {id}")]
    Helper {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid message from the sandbox helper of {id}")]
    Protocol {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("sandbox setup failed: {stage}{}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Setup {
        stage: String,
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot execute {program:?}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the spec has no process args")]
    NoArgs,
    #[error("invalid spec: {reason}")]
    InvalidSpec { reason: String },
    #[error("invalid sandbox id {0:?} (letters, digits, '-', '_', '.')")]
    InvalidId(String),
    #[error(transparent)]
    User(#[from] crate::user::UserError),
    #[error("cannot send signal {signal} to sandbox {id}")]
    Signal {
        id: String,
        signal: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox {id} is not running")]
    NotRunning { id: String },
    #[error("{op} for the sandbox's output")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}
