//! `kiln push [-q] REF`: upload a local image to its registry; prints
//! `TAG: digest: sha256:… size: N` as docker does.

use std::process::ExitCode;

use clap::Args;
use kiln_registry::{Reference, Store};
use miette::IntoDiagnostic;

use super::transfer_progress::{ProgressMode, TransferRenderer};
use super::{CmdResult, block_on};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Print only the result line, no progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// The local image to push, named for its destination:
    /// REGISTRY/REPOSITORY[:TAG].
    pub image: String,
}

pub fn push(global: &GlobalArgs, args: PushArgs) -> CmdResult {
    let reference: Reference = args.image.parse().into_diagnostic()?;
    let store = Store::open(global.root_dir()).into_diagnostic()?;
    let config = global.remote_config();
    let renderer = TransferRenderer::new(if args.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    });
    renderer.line(&format!(
        "The push refers to repository [{}]",
        reference.name()
    ));
    let pushed = block_on(kiln_registry::remote::push(
        &store, &config, &reference, &renderer,
    ))?;
    renderer.finish();
    let pushed = pushed.into_diagnostic()?;
    let label = reference
        .tag()
        .map(str::to_string)
        .unwrap_or_else(|| pushed.digest.to_string());
    println!("{label}: digest: {} size: {}", pushed.digest, pushed.size);
    Ok(ExitCode::SUCCESS)
}
