//! `kiln tag SOURCE TARGET`: gives an image another name.

use std::process::ExitCode;

use clap::Args;
use kiln_registry::Reference;

use super::{CmdResult, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: a name, an id or an id prefix.
    pub source: String,
    /// The new name, `[REGISTRY/]REPOSITORY[:TAG]`.
    pub target: String,
}

pub fn run(global: &GlobalArgs, args: TagArgs) -> CmdResult {
    let target = Reference::parse(&args.target).map_err(store::other)?;
    let store = store::open(global)?;
    let image = store.find_image(&args.source).map_err(store::diag)?;
    store.tag(&target, &image.target).map_err(store::diag)?;
    Ok(ExitCode::SUCCESS)
}
