//! The build cache's part of `kiln prune`: every cache record is forgotten
//! and the cache's GC roots dropped, so the images part that runs next
//! frees the layers no image uses; and the cache mounts (`RUN
//! --mount=type=cache`) no build is using are emptied.

use kiln_solver::CacheIndex;
use miette::{IntoDiagnostic, WrapErr};

use crate::cli::GlobalArgs;
use crate::commands::prune::{PartReport, PruneArgs};
use crate::commands::store;
use crate::worker::BUILD_CACHE_ROOTS;

pub fn prune_build_cache(global: &GlobalArgs, _args: &PruneArgs) -> miette::Result<PartReport> {
    let root = global.root_dir();
    let index = CacheIndex::open(&root)
        .into_diagnostic()
        .wrap_err("cannot open the build cache")?;
    let records = index
        .clear()
        .into_diagnostic()
        .wrap_err("cannot clear the build cache")?;
    let store = store::open(global)?;
    store
        .remove_gc_roots(BUILD_CACHE_ROOTS)
        .map_err(store::diag)?;
    let mut report = PartReport {
        heading: "Deleted build cache:",
        ..PartReport::default()
    };
    if records > 0 {
        report.lines.push(format!("{records} cache records"));
    }
    let mounts = kiln_executor::prune_cache_mounts(&root)
        .into_diagnostic()
        .wrap_err("cannot prune the cache mounts")?;
    if mounts.instances > 0 {
        report
            .lines
            .push(format!("{} cache mount directories", mounts.instances));
    }
    report.reclaimed += mounts.bytes;
    Ok(report)
}
