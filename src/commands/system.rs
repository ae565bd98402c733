//! `kiln system df`: what images, containers, volumes and the build cache
//! take in the kiln root, and how much of it `kiln prune` (with `--all`
//! for images) and `kiln volume rm` could free, as `docker system df`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kiln_runner::Usage;
use kiln_solver::CacheIndex;
use miette::{IntoDiagnostic, WrapErr};

use super::{CmdResult, images::print_table, runtime, store};
use crate::cli::GlobalArgs;
use crate::human;
use crate::worker::BUILD_CACHE_ROOTS;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df(DfArgs),
}

#[derive(Debug, Args)]
pub struct DfArgs {}

pub fn run(global: &GlobalArgs, cmd: SystemCommand) -> CmdResult {
    match cmd {
        SystemCommand::Df(_) => df(global),
    }
}

fn df(global: &GlobalArgs) -> CmdResult {
    let store = store::open(global)?;
    // Each blob counted once: images share layers.
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    let mut images = Usage::default();
    for summary in store.images().map_err(store::diag)? {
        let image = store.image_for(&summary.target).map_err(store::diag)?;
        let active = !summary.holders.is_empty();
        let blobs = image
            .layers
            .iter()
            .map(|l| &l.descriptor)
            .chain([&image.config_descriptor, &image.manifest_descriptor]);
        for d in blobs {
            sizes.insert(d.digest().to_string(), d.size());
            if active {
                in_use.insert(d.digest().to_string());
            }
        }
        images.total += 1;
        images.active += usize::from(active);
    }
    images.size = sizes.values().sum();
    images.reclaimable = sizes
        .iter()
        .filter(|(d, _)| !in_use.contains(*d))
        .map(|(_, s)| s)
        .sum();

    let usage = runtime::open(global)?.disk_usage().map_err(runtime::diag)?;

    let records = CacheIndex::open(&global.root_dir())
        .into_diagnostic()
        .wrap_err("cannot open the build cache")?
        .states()
        .len();
    let mut cache = Usage {
        total: records,
        ..Usage::default()
    };
    for d in store.gc_roots(BUILD_CACHE_ROOTS).map_err(store::diag)? {
        let size = store.blob_size(&d).unwrap_or(0);
        cache.size += size;
        if !sizes.contains_key(&d.to_string()) {
            cache.reclaimable += size;
        }
    }

    let row = |kind: &str, u: &Usage| {
        let percent = (u.reclaimable * 100)
            .checked_div(u.size)
            .map(|p| format!(" ({p}%)"))
            .unwrap_or_default();
        [
            kind.to_string(),
            u.total.to_string(),
            u.active.to_string(),
            human::size(u.size),
            format!("{}{percent}", human::size(u.reclaimable)),
        ]
    };
    print_table(
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &[
            row("Images", &images),
            row("Containers", &usage.containers),
            row("Local Volumes", &usage.volumes),
            row("Build Cache", &cache),
        ],
    );
    Ok(ExitCode::SUCCESS)
}
