//! `kiln rmi [-f] IMAGE...`: untags images and deletes those left without a
//! tag, refusing images a container uses unless forced; then frees their
//! blobs (unless a concurrent write is in progress: `kiln prune` does it
//! later).

use std::process::ExitCode;

use clap::Args;

use super::{CmdResult, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove even if a container uses the image or it has several names.
    #[arg(short, long)]
    pub force: bool,
    /// Images: names, ids or id prefixes.
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RmiArgs) -> CmdResult {
    let store = store::open(global)?;
    let mut failed = false;
    for name in &args.images {
        match store.remove_image(name, args.force) {
            Ok(removed) => {
                for r in &removed.untagged {
                    println!("Untagged: {}", r.familiar());
                }
                if let Some(d) = &removed.deleted {
                    println!("Deleted: {}", d.digest());
                }
            }
            Err(e) => {
                crate::report::print_error(&store::diag(e));
                failed = true;
            }
        }
    }
    match store.try_collect_garbage() {
        Ok(Some(r)) => tracing::debug!(blobs = r.blobs, bytes = r.bytes, "freed"),
        Ok(None) => tracing::debug!("a write is in progress; blobs are freed by the next prune"),
        Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
