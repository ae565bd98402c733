//! The container model: its configuration (fixed at create time), its
//! state (what happened to it since) and the state machine that says which
//! operations are allowed when — `created → running → exited`, and
//! `exited → running` again with `kiln start`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use kiln_executor::SandboxHandle;

use crate::limits::Limits;
use crate::mounts::{TmpfsSpec, VolumeSpec};
use crate::ports::{PortSpec, PublishedPort};

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started.
    Created,
    /// A supervisor is setting the process up; not yet running.
    Starting,
    /// The process runs.
    Running,
    /// The process ended (or never managed to start after a `start`).
    Exited,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Exited => "exited",
        })
    }
}

impl Status {
    /// `kiln start` (and `run`) may start it.
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }

    /// `kiln kill` / `stop` may signal it.
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Running)
    }

    /// `kiln exec` may enter it.
    pub fn can_exec(self) -> bool {
        matches!(self, Status::Running)
    }

    /// `kiln rm` may remove it (`force` kills a running one first).
    pub fn can_remove(self, force: bool) -> bool {
        match self {
            Status::Created | Status::Exited => true,
            Status::Running | Status::Starting => force,
        }
    }

    /// Running or about to be: the supervisor owns it.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Starting | Status::Running)
    }
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A private namespace with `lo`, published ports, and outbound access
    /// through pasta or slirp4netns when installed.
    #[default]
    Default,
    /// A private namespace with only `lo`.
    None,
    /// The host's network namespace.
    Host,
}

impl std::str::FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" | "bridge" | "pasta" | "slirp4netns" => Ok(NetworkMode::Default),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            other => Err(format!(
                "unknown network mode {other:?} (default, none, host)"
            )),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::Default => "default",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        })
    }
}

/// The image a container was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// As the user wrote it (`example/echo`), shown by `ps`.
    pub name: String,
    /// The image id: the digest of its config (`sha256:…`).
    pub id: String,
    /// The store record it was found through (manifest or index digest):
    /// what the container's hold names.
    pub target: String,
    /// The unpacked layer directories, bottom first, at create time (found
    /// again through `id` if they have been removed since).
    pub layer_dirs: Vec<PathBuf>,
}

/// Everything fixed when a container is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub image: ImageRef,
    /// The process's argv (entrypoint and command already combined).
    pub argv: Vec<String>,
    /// The container's environment (user entries, then the image's), without
    /// the PATH/HOSTNAME/TERM/HOME defaults added at start.
    pub env: Vec<String>,
    /// Working directory; empty means `/`.
    pub working_dir: String,
    /// `user[:group]`; empty means root.
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub volumes: Vec<VolumeSpec>,
    pub tmpfs: Vec<TmpfsSpec>,
    pub ports: Vec<PortSpec>,
    pub network: NetworkMode,
    pub limits: Limits,
    /// The signal `stop` sends first (image STOPSIGNAL or `--stop-signal`).
    pub stop_signal: i32,
    /// Seconds `stop` waits before SIGKILL, unless `-t` says otherwise.
    pub stop_timeout: Option<u32>,
    pub labels: BTreeMap<String, String>,
}

/// A process identified beyond its pid: the pid plus its start time (clock
/// ticks after boot, from `/proc/<pid>/stat`), so a recycled pid is never
/// mistaken for ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub start_time: u64,
}

/// Everything that changes after create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// The running sandbox (init pid and start time, cgroups) while
    /// running: what `stop`, `kill` and `exec` act on.
    pub sandbox: Option<SandboxHandle>,
    /// The supervisor that owns the container while it is active.
    pub supervisor: Option<ProcRef>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last exit status (128+N for signal N); `None` when unknown.
    pub exit_code: Option<i32>,
    /// The kernel's OOM killer ended the last run.
    pub oom_killed: bool,
    /// Why the last start failed, or why the exit status is unknown.
    pub error: Option<String>,
    /// Host ports bound while running.
    pub ports: Vec<PublishedPort>,
    /// How many times the container was started.
    pub start_count: u32,
}

impl ContainerState {
    /// The container's init process, identified with its start time.
    pub fn process(&self) -> Option<ProcRef> {
        self.sandbox.as_ref().map(|h| ProcRef {
            pid: h.init_pid,
            start_time: h.init_start_time,
        })
    }

    pub fn created() -> ContainerState {
        ContainerState {
            status: Status::Created,
            sandbox: None,
            supervisor: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            ports: Vec::new(),
            start_count: 0,
        }
    }
}

/// A container as read from the root: configuration, reconciled state and
/// its directory.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    pub state: ContainerState,
    pub dir: PathBuf,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn short_id(&self) -> &str {
        crate::names::short_id(&self.config.id)
    }

    /// Fails with a clear message unless `allowed(status)`.
    pub(crate) fn require(
        &self,
        allowed: impl Fn(Status) -> bool,
        action: &'static str,
        needed: &'static str,
    ) -> Result<(), crate::RunnerError> {
        if allowed(self.state.status) {
            Ok(())
        } else {
            Err(crate::RunnerError::WrongState {
                id: self.config.name.clone(),
                status: self.state.status,
                action,
                needed,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        use Status::*;
        assert!(Created.can_start() && Exited.can_start());
        assert!(!Running.can_start() && !Starting.can_start());
        assert!(Running.can_kill());
        assert!(!Created.can_kill() && !Exited.can_kill() && !Starting.can_kill());
        assert!(Running.can_exec() && !Exited.can_exec());
        assert!(Created.can_remove(false) && Exited.can_remove(false));
        assert!(!Running.can_remove(false) && Running.can_remove(true));
        assert!(!Starting.can_remove(false));
        assert!(Running.is_active() && Starting.is_active() && !Exited.is_active());
    }

    #[test]
    fn network_modes() {
        assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
        assert_eq!("host".parse::<NetworkMode>().unwrap(), NetworkMode::Host);
        assert_eq!(
            "bridge".parse::<NetworkMode>().unwrap(),
            NetworkMode::Default
        );
        assert!("weird".parse::<NetworkMode>().is_err());
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = ContainerState::created();
        s.status = Status::Exited;
        s.exit_code = Some(137);
        s.oom_killed = true;
        s.finished_at = Some(Utc::now());
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"status\":\"exited\""), "{text}");
        let back: ContainerState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
