//! `kiln load [-i FILE]`: images from an OCI layout tar or a docker archive
//! (plain, gzip or zstd), read from a file or standard input.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::save::io_err;
use super::{CmdResult, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file (default: standard input).
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Only print the loaded image ids.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(global: &GlobalArgs, args: LoadArgs) -> CmdResult {
    let store = store::open(global)?;
    let loaded = match &args.input {
        None => {
            let (_, reader) =
                kiln_registry::store::decompress::decompressed(std::io::stdin(), None).map_err(
                    |e| store::other(io_err("read", std::path::Path::new("standard input"), e)),
                )?;
            store.load(reader, "standard input")
        }
        Some(path) => {
            let file = File::open(path).map_err(|e| store::other(io_err("open", path, e)))?;
            let (_, reader) = kiln_registry::store::decompress::decompressed(
                BufReader::with_capacity(1 << 20, file),
                None,
            )
            .map_err(|e| store::other(io_err("read", path, e)))?;
            store.load(reader, &path.display().to_string())
        }
    }
    .map_err(store::archive_diag)?;
    for l in &loaded {
        store::unpack_ahead(&store, &l.image);
    }
    for l in &loaded {
        if args.quiet {
            println!("{}", l.image.id());
        } else if l.names.is_empty() {
            println!("Loaded image ID: {}", l.image.id());
        } else {
            for n in &l.names {
                println!("Loaded image: {}", n.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
