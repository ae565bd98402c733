//! `kiln prune`: frees what nothing uses, part by part. Parts run in order
//! and each reports what it removed; the images part runs last, so blobs
//! freed by the others (containers releasing their image holds, the build
//! cache dropping its GC roots) are collected in the same run.
//!
//! The parts, as `docker system prune`: stopped containers (their
//! anonymous volumes stay, as docker's), the build cache, then dangling
//! images (every image no container uses with `--all`). To add a part,
//! write a `fn(&GlobalArgs, &PruneArgs) -> miette::Result<PartReport>` and
//! list it in [`PARTS`] before `images`.

use std::process::ExitCode;

use clap::Args;
use kiln_registry::PruneOptions;

use super::{CmdResult, runtime, store};
use crate::cli::GlobalArgs;
use crate::human;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove tagged images no container uses (not only dangling ones).
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt (kiln never prompts; accepted for docker compatibility).
    #[arg(short, long)]
    pub force: bool,
}

/// What one part removed.
#[derive(Debug, Default)]
pub struct PartReport {
    /// A heading such as "Deleted Images:", and one line per removed thing.
    pub heading: &'static str,
    pub lines: Vec<String>,
    pub reclaimed: u64,
}

/// One part of `kiln prune`.
pub struct Part {
    pub name: &'static str,
    pub run: fn(&GlobalArgs, &PruneArgs) -> miette::Result<PartReport>,
}

/// The parts, in order. Images last (see the module docs).
pub const PARTS: &[Part] = &[
    Part {
        name: "stopped containers",
        run: prune_containers,
    },
    Part {
        name: "build cache",
        run: super::build::prune::prune_build_cache,
    },
    Part {
        name: "images",
        run: prune_images,
    },
];

pub fn run(global: &GlobalArgs, args: PruneArgs) -> CmdResult {
    let images = if args.all {
        "images no container uses"
    } else {
        "dangling images"
    };
    let names: Vec<&str> = PARTS[..PARTS.len() - 1].iter().map(|p| p.name).collect();
    eprintln!("Removing {}, and {images}.", names.join(", "));
    let mut total = 0;
    for part in PARTS {
        tracing::debug!(part = part.name, "pruning");
        let report = (part.run)(global, &args)?;
        if !report.lines.is_empty() {
            println!("{}", report.heading);
            for l in &report.lines {
                println!("{l}");
            }
            println!();
        }
        total += report.reclaimed;
    }
    println!("Total reclaimed space: {}", human::size(total));
    Ok(ExitCode::SUCCESS)
}

fn prune_containers(global: &GlobalArgs, _args: &PruneArgs) -> miette::Result<PartReport> {
    let report = runtime::open(global)?.prune().map_err(runtime::diag)?;
    Ok(PartReport {
        heading: "Deleted Containers:",
        lines: report.removed,
        reclaimed: report.reclaimed_bytes,
    })
}

fn prune_images(global: &GlobalArgs, args: &PruneArgs) -> miette::Result<PartReport> {
    let store = store::open(global)?;
    let tags = store.tags().map_err(store::diag)?;
    let report = store
        .prune_images(PruneOptions {
            dangling: true,
            all: args.all,
        })
        .map_err(store::diag)?;
    let mut lines = Vec::new();
    for (target, id) in &report.images {
        for (r, d) in &tags {
            if d.digest() == target.digest() {
                lines.push(format!("untagged: {}", r.familiar()));
            }
        }
        lines.push(format!("deleted: {id}"));
    }
    Ok(PartReport {
        heading: "Deleted Images:",
        lines,
        reclaimed: report.bytes,
    })
}
