//! `kiln debug diff --lower DIR... [options] -- CMD...`: snapshots a rootfs
//! (the lower directories, topmost first, read-only), runs a command on it
//! in the sandbox, writes what it changed as a layer into the store, and
//! prints the layer's digest (its diffID) and size. The command's own
//! output goes to stderr.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kiln_executor::{LayerOptions, LinuxSandbox, Sandbox, SandboxRequest, Snapshotter, Stdio};
use miette::{IntoDiagnostic, WrapErr};

use super::sandbox::{NetworkMode, cancel_on_signals};
use crate::cli::GlobalArgs;
use crate::commands::CmdResult;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A read-only layer directory; repeat for a stack, topmost first.
    #[arg(long, value_name = "DIR", required = true)]
    pub lower: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "none")]
    pub network: NetworkMode,
    /// Clamp file times in the layer (default: $SOURCE_DATE_EPOCH).
    #[arg(long, value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: DiffArgs) -> CmdResult {
    let root = global.root_dir();
    let store = kiln_registry::Store::open(&root).into_diagnostic()?;
    let snapshots = Snapshotter::open(&root).into_diagnostic()?;
    let lowers = args
        .lower
        .iter()
        .map(|l| {
            std::fs::canonicalize(l)
                .into_diagnostic()
                .wrap_err_with(|| format!("layer directory {}", l.display()))
        })
        .collect::<miette::Result<Vec<_>>>()?;
    let snapshot = snapshots.prepare(&lowers).into_diagnostic()?;
    let mut spec = kiln_executor::spec::default_spec(&args.command);
    if args.network == NetworkMode::Host {
        kiln_executor::spec::set_host_network(&mut spec);
    }
    let mut request = SandboxRequest::new(snapshot.rootfs(), spec);
    let stderr = std::io::stderr();
    let out: OwnedFd = std::os::fd::AsFd::as_fd(&stderr)
        .try_clone_to_owned()
        .into_diagnostic()?;
    request.stdout = Stdio::Fd(out);
    request.stderr = Stdio::Inherit;
    let cancel = cancel_on_signals();
    let mut running = LinuxSandbox::new().spawn(request).into_diagnostic()?;
    let outcome = running.wait(&cancel).into_diagnostic()?;
    drop(running);
    if !outcome.success() {
        eprintln!("kiln: the command failed ({outcome}); no layer written");
        return Ok(ExitCode::from(outcome.code().clamp(1, 255) as u8));
    }
    let layer = snapshot
        .write_layer(
            &store,
            &LayerOptions {
                source_date_epoch: args.source_date_epoch,
            },
        )
        .into_diagnostic()?;
    println!("{} {}", layer.diff_id, layer.size);
    Ok(ExitCode::SUCCESS)
}
