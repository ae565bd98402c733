//! RUN: the command, its heredocs and its `--mount`, `--network` and
//! `--security` flags.

use super::{CommandLine, MountSpec};
use crate::syntax::Heredoc;

/// `RUN [--mount=...]... [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command, not expanded (the shell expands shell form at run time).
    ///
    /// With heredocs, the shell form holds the line as written (`<<EOF` or
    /// `cat <<EOF > f`); BuildKit then runs a lone `<<EOF` as the body itself
    /// (a body starting with `#!` as a script file) and otherwise hands the
    /// line plus the bodies to the shell.
    pub command: CommandLine,
    /// Heredoc bodies, in the order their markers appear on the line.
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` flags in order, checked at parse time and resolved per
    /// stage environment with [`MountSpec::resolve`].
    pub mounts: Vec<MountSpec>,
    /// `--network=`; `None` means the build's default.
    pub network: Option<NetworkMode>,
    /// `--security=`; `None` means sandbox.
    pub security: Option<SecurityMode>,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// `default`: the build's default network.
    Default,
    /// `none`: only a loopback interface.
    None,
    /// `host`: the host's network namespace.
    Host,
}

impl NetworkMode {
    /// Parses `default`, `none` or `host`.
    pub fn parse(s: &str) -> Option<NetworkMode> {
        match s {
            "default" => Some(NetworkMode::Default),
            "none" => Some(NetworkMode::None),
            "host" => Some(NetworkMode::Host),
            _ => None,
        }
    }

    /// The flag value.
    pub fn as_str(&self) -> &'static str {
        match self {
            NetworkMode::Default => "default",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityMode {
    /// `sandbox`: the default confinement.
    Sandbox,
    /// `insecure`: all capabilities, no confinement (needs an entitlement).
    Insecure,
}

impl SecurityMode {
    /// Parses `sandbox` or `insecure`.
    pub fn parse(s: &str) -> Option<SecurityMode> {
        match s {
            "sandbox" => Some(SecurityMode::Sandbox),
            "insecure" => Some(SecurityMode::Insecure),
            _ => None,
        }
    }

    /// The flag value.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecurityMode::Sandbox => "sandbox",
            SecurityMode::Insecure => "insecure",
        }
    }
}
