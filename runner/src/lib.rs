//! kiln-runner: containers for `kiln run`.
//!
//! Owns image → root filesystem → runtime spec → the executor's sandbox, the
//! container state machine, the supervisor of detached containers, logs,
//! stop/kill, exec, port publishing and volumes.
//!
//! The pieces, from the bottom up:
//! - [`container`]: the model (`ContainerConfig`, `ContainerState`) and the
//!   state machine (`Status::can_start`, `can_kill`, `can_remove`);
//! - [`ContainerStore`]: `<root>/containers/<id>/`, written atomically and
//!   reconciled with the live processes when read;
//! - option parsing as docker does it: [`resolve_argv`], [`env`],
//!   [`resolve_user`], [`parse_port_spec`], [`parse_volume`], [`limits`],
//!   [`parse_signal`].

pub mod command;
pub mod container;
pub mod containers;
pub mod env;
pub mod error;
pub mod image;
pub mod limits;
pub mod logs;
pub mod mounts;
pub mod names;
pub mod network;
pub mod ports;
pub mod process;
pub mod signal;

mod cleanup;
mod proxy;
mod spec;

pub use command::resolve_argv;
pub use container::{
    Container, ContainerConfig, ContainerState, ImageRef, NetworkMode, ProcRef, Status,
};
pub use containers::{ContainerLock, ContainerStore};
pub use error::RunnerError;
pub use limits::Limits;
pub use mounts::{TmpfsSpec, VolumeSource, VolumeSpec, parse_tmpfs, parse_volume};
pub use names::{short_id, validate_name};
pub use ports::{PortSpec, Protocol, PublishedPort, parse_port_spec};
pub use signal::{parse_signal, signal_name};
