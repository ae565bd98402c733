//! `kiln debug layer --upper DIR [--lower DIR]...`: writes the changes in an
//! existing overlay upper directory as a layer into the store and prints
//! its digest, size and how fast it was written (benchmarks use it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use kiln_executor::{LayerOptions, write_layer};
use miette::IntoDiagnostic;

use crate::cli::GlobalArgs;
use crate::commands::CmdResult;

#[derive(Debug, Args)]
pub struct LayerArgs {
    /// The upper directory holding the changes.
    #[arg(long, value_name = "DIR")]
    pub upper: PathBuf,
    /// The layers below it, topmost first.
    #[arg(long, value_name = "DIR")]
    pub lower: Vec<PathBuf>,
    /// Clamp file times in the layer (default: $SOURCE_DATE_EPOCH).
    #[arg(long, value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
}

pub fn run(global: &GlobalArgs, args: LayerArgs) -> CmdResult {
    let store = kiln_registry::Store::open(global.root_dir()).into_diagnostic()?;
    let start = Instant::now();
    let layer = write_layer(
        &store,
        &args.upper,
        &args.lower,
        &LayerOptions {
            source_date_epoch: args.source_date_epoch,
        },
    )
    .into_diagnostic()?;
    let secs = start.elapsed().as_secs_f64();
    println!("{} {}", layer.diff_id, layer.size);
    eprintln!(
        "{} entries, {} bytes in {:.3} s: {:.0} MB/s",
        layer.entries,
        layer.size,
        secs,
        layer.size as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
