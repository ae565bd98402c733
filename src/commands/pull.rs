//! `kiln pull [--platform P] [-q] REF`: fetch an image from its registry
//! into the store and tag it.

use std::process::ExitCode;

use clap::Args;
use kiln_registry::remote::{Platform, PullOptions};
use kiln_registry::{Reference, Store};
use miette::IntoDiagnostic;

use super::transfer_progress::{ProgressMode, TransferRenderer};
use super::{CmdResult, block_on};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Take this platform from a multi-platform image (OS/ARCH[/VARIANT]);
    /// the host's by default.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Print only the image reference, no progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// The image: NAME[:TAG] or NAME@DIGEST.
    pub image: String,
}

pub fn pull(global: &GlobalArgs, args: PullArgs) -> CmdResult {
    let reference: Reference = args.image.parse().into_diagnostic()?;
    let store = Store::open(global.root_dir()).into_diagnostic()?;
    let config = global.remote_config();
    let renderer = TransferRenderer::new(if args.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    });
    let options = PullOptions {
        platform: args.platform,
    };
    let label = reference.tag().unwrap_or("latest").to_string();
    renderer.line(&format!(
        "{label}: Pulling from {}",
        reference.familiar_name()
    ));
    let pulled = block_on(kiln_registry::remote::pull(
        &store, &config, &reference, &options, &renderer,
    ))?;
    renderer.finish();
    let pulled = pulled.into_diagnostic()?;
    super::store::unpack_ahead(&store, &pulled.image);
    renderer.line(&format!("Digest: {}", pulled.target.digest()));
    renderer.line(&if pulled.downloaded == 0 {
        format!("Status: Image is up to date for {}", reference.familiar())
    } else {
        format!(
            "Status: Downloaded newer image for {}",
            reference.familiar()
        )
    });
    println!("{reference}");
    Ok(ExitCode::SUCCESS)
}
