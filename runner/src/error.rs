//! kiln-runner's errors: one enum per concern, gathered into [`RunnerError`].
//! Context (ids, paths, specs) travels as fields, causes as `#[source]`.

use std::path::PathBuf;

use crate::container::Status;

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters"
    )]
    Invalid { name: String },
    #[error("cannot read random bytes for an id or name")]
    Random {
        #[source]
        source: std::io::Error,
    },
    #[error("could not generate an unused container name")]
    Exhausted,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no command specified: the image has no ENTRYPOINT or CMD and none was given")]
    NoCommand,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("invalid environment variable {entry:?}: no variable name")]
    NoName { entry: String },
    #[error("environment variable {name:?} contains whitespace")]
    Whitespace { name: String },
    #[error("{path}:{line}: invalid entry")]
    File {
        path: PathBuf,
        line: usize,
        #[source]
        source: Box<EnvError>,
    },
    #[error("cannot read the env file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("invalid memory size {value:?} (examples: 512m, 1g)")]
    Memory { value: String },
    #[error("memory limit {value:?} is too small: the minimum is 6m")]
    MemoryTooSmall { value: String },
    #[error("invalid number of CPUs {value:?}")]
    Cpus { value: String },
    #[error("--cpus {value}: the range is 0.01 to {host_cpus}, as there are only {host_cpus} CPUs")]
    CpusRange { value: String, host_cpus: usize },
    #[error("invalid --pids-limit {value}")]
    Pids { value: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid signal {signal:?}")]
    Invalid { signal: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid port specification {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
    #[error(
        "invalid port specification {spec:?}: protocol {protocol:?} is not supported (tcp, udp)"
    )]
    Protocol { spec: String, protocol: String },
    #[error("cannot publish {address}: the port is already allocated or not available")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no free host port in {start}-{end} for container port {container_port}")]
    NoFreePort {
        start: u16,
        end: u16,
        container_port: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("invalid volume specification {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
    #[error("cannot prepare the volume source {path}")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no such volume: {name}")]
    NoSuchVolume { name: String },
    #[error("volume {name} is in use by container {container}")]
    VolumeInUse { name: String, container: String },
    #[error("cannot copy the image's {target} into the volume {name}")]
    Seed {
        name: String,
        target: String,
        #[source]
        source: Box<kiln_executor::SnapshotError>,
    },
}

/// Persistence of container state under `<root>/containers`.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("no such container: {reference}")]
    NoSuchContainer { reference: String },
    #[error("container reference {reference:?} is ambiguous: it matches {count} containers")]
    Ambiguous { reference: String, count: usize },
    #[error(
        "the container name {name:?} is already in use by container {id}; remove it or choose another name"
    )]
    NameInUse { name: String, id: String },
    #[error("container {id} is {status}: {action} needs it to be {needed}")]
    WrongState {
        id: String,
        status: Status,
        action: &'static str,
        needed: &'static str,
    },
    #[error("cannot remove the running container {id}: stop it first or use rm -f")]
    RemoveRunning { id: String },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot send {signal} to container {id}")]
    Kill {
        id: String,
        signal: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Sandbox(#[from] kiln_executor::SandboxError),
    #[error("cannot start container {id}")]
    Start {
        id: String,
        #[source]
        source: kiln_executor::SandboxError,
    },
    #[error("lost track of container {id}")]
    Wait {
        id: String,
        #[source]
        source: kiln_executor::SandboxError,
    },
    /// A detached start failed in the supervisor process.
    #[error("{message}")]
    Supervisor { message: String, code: i32 },
    #[error("this runtime cannot start detached containers (no supervisor command)")]
    NoSupervisor,
    #[error("cannot {what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl RunnerError {
    /// The status `kiln run` exits with for this error, as docker's: 127
    /// when the program is not found, 126 when it cannot be executed, 125
    /// for everything else (kiln's own errors).
    pub fn run_exit_code(&self) -> i32 {
        crate::session::start_failure_code(self)
    }
}
