//! `kiln save [-o FILE] IMAGE...`: images into one tar that is both an OCI
//! image layout and a docker archive (see `kiln_registry::archive`).
//! Layers go out gzip-compressed unless `--compression` says otherwise.
//! The file appears only when complete (written beside it, then renamed).

use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kiln_registry::{Compression, Reference, SaveItem};

use super::{CmdResult, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file (default: standard output, if it is not a terminal).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compression for layers stored uncompressed: gzip, zstd or none.
    #[arg(long, default_value = "gzip", value_name = "ALGORITHM")]
    pub compression: Compression,
    /// Images: names, ids or id prefixes.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// Why `kiln save` refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("refusing to write an image archive to a terminal: use -o FILE or redirect the output")]
struct TerminalOutput;

pub fn run(global: &GlobalArgs, args: SaveArgs) -> CmdResult {
    let store = store::open(global)?;
    let mut items: Vec<SaveItem> = Vec::new();
    for name in &args.images {
        let image = store.find_image(name).map_err(store::diag)?;
        // a name saves that name; an id saves the image unnamed (as docker)
        let names: Vec<Reference> = match Reference::parse(name) {
            Ok(r) if r.digest().is_none() && store.resolve(&r).map_err(store::diag)?.is_some() => {
                vec![r]
            }
            _ => Vec::new(),
        };
        match items
            .iter_mut()
            .find(|i| i.image.target.digest() == image.target.digest())
        {
            Some(i) => {
                for n in names {
                    if !i.names.contains(&n) {
                        i.names.push(n);
                    }
                }
            }
            None => items.push(SaveItem { image, names }),
        }
    }
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(store::other(TerminalOutput));
            }
            let out = store
                .save(
                    &items,
                    args.compression,
                    BufWriter::with_capacity(1 << 20, stdout.lock()),
                )
                .map_err(store::archive_diag)?;
            finish(out, Path::new("standard output"))?;
        }
        Some(path) => write_atomically(path, |file| {
            let out = store
                .save(
                    &items,
                    args.compression,
                    BufWriter::with_capacity(1 << 20, file),
                )
                .map_err(store::archive_diag)?;
            let file = out
                .into_inner()
                .map_err(|e| store::other(io_err("write", path, e.into_error())))?;
            file.sync_all()
                .map_err(|e| store::other(io_err("fsync", path, e)))
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

fn finish<W: Write>(mut out: W, path: &Path) -> miette::Result<()> {
    out.flush()
        .map_err(|e| store::other(io_err("write", path, e)))
}

/// An I/O error on a file the user named.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}", path.display())]
pub struct FileError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

pub fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> FileError {
    FileError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Runs `write` on a temp file beside `path` and renames it into place
/// when it succeeds; removes it otherwise.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(File) -> miette::Result<()>,
) -> miette::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let tmp = dir.join(format!(".{name}.kiln-{}", std::process::id()));
    let file = File::create(&tmp).map_err(|e| store::other(io_err("create", &tmp, e)))?;
    match write(file) {
        Ok(()) => fs::rename(&tmp, path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            store::other(io_err("rename into place", path, e))
        }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}
