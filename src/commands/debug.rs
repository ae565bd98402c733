//! `kiln debug …`: commands that exercise one part of kiln on its own
//! (the sandbox, snapshots and diffs, …) before the whole pipeline exists.
//! One module per command under `debug/`.

mod diff;
mod layer;
mod sandbox;

use clap::Subcommand;

use super::CmdResult;
use crate::cli::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Run a command in a sandbox on a root filesystem directory.
    Sandbox(sandbox::SandboxArgs),
    /// Run a command on a snapshot of layer directories and write what it
    /// changed as a layer into the store; prints the layer's digest and size.
    Diff(diff::DiffArgs),
    /// Write the changes in an overlay upper directory as a layer into the
    /// store; prints its digest and size, and the write speed on stderr.
    Layer(layer::LayerArgs),
}

pub fn run(global: &GlobalArgs, cmd: DebugCommand) -> CmdResult {
    match cmd {
        DebugCommand::Sandbox(args) => sandbox::run(global, args),
        DebugCommand::Diff(args) => diff::run(global, args),
        DebugCommand::Layer(args) => layer::run(global, args),
    }
}
