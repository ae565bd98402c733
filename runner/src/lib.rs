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

mod attach;
pub mod command;
pub mod container;
pub mod containers;
pub mod env;
pub mod error;
pub mod exec;
pub mod image;
mod lifecycle;
pub mod limits;
pub mod logs;
pub mod mounts;
pub mod names;
pub mod network;
pub mod ports;
pub mod process;
mod reconcile;
pub mod runtime;
mod session;
pub mod signal;
mod usage;
pub mod view;
pub mod volumes;

mod cleanup;
mod proxy;
mod spec;

pub use command::resolve_argv;
pub use container::{
    Container, ContainerConfig, ContainerState, ImageRef, NetworkMode, ProcRef, Status,
};
pub use containers::{ContainerLock, ContainerStore};
pub use error::RunnerError;
pub use exec::ExecOptions;
pub use image::{ImageError, ImageSource, ResolvedImage, StoreImages};
pub use limits::Limits;
pub use logs::{LogOptions, print_logs};
pub use mounts::{TmpfsSpec, VolumeSource, VolumeSpec, parse_tmpfs, parse_volume};
pub use names::{short_id, validate_name};
pub use network::{OutboundHelper, outbound_helper};
pub use ports::{PortSpec, Protocol, PublishedPort, parse_port_spec};
pub use runtime::{CreateOptions, PruneReport, Runtime, SupervisorCommand};
pub use session::READY_FD_ENV;
pub use signal::{parse_signal, signal_name};
pub use usage::{DiskUsage, Usage};
pub use volumes::VolumeStore;
