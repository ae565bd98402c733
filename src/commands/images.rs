//! `kiln images [REPOSITORY[:TAG]]`: the images in the store, as
//! `docker images` lists them (REPOSITORY TAG IMAGE ID CREATED SIZE), or one
//! JSON object per line with `--format json`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kiln_registry::Reference;
use serde_json::json;

use super::{CmdResult, store};
use crate::cli::GlobalArgs;
use crate::human;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only images of this repository (and tag).
    pub repository: Option<String>,
}

struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created: Option<String>,
    size: u64,
}

pub fn run(global: &GlobalArgs, args: ImagesArgs) -> CmdResult {
    let store = store::open(global)?;
    let filter = match &args.repository {
        Some(f) => Some(parse_filter(f)?),
        None => None,
    };
    let mut rows = Vec::new();
    for summary in store.images().map_err(store::diag)? {
        // an image whose blobs vanished (being pruned) is not listed
        let Ok(image) = store.image_for(&summary.target) else {
            continue;
        };
        let created = image.config.created().clone();
        let id = image.id().to_string();
        let size = image.size();
        let digest = summary.target.digest().to_string();
        if summary.tags.is_empty() {
            if filter.is_none() {
                rows.push(Row {
                    repository: "<none>".into(),
                    tag: "<none>".into(),
                    digest,
                    id,
                    created,
                    size,
                });
            }
            continue;
        }
        for tag in &summary.tags {
            if let Some((name, t)) = &filter
                && (tag.name() != *name || t.as_deref().is_some_and(|t| Some(t) != tag.tag()))
            {
                continue;
            }
            rows.push(Row {
                repository: tag.familiar_name(),
                tag: tag.tag().unwrap_or("<none>").to_string(),
                digest: digest.clone(),
                id: id.clone(),
                created: created.clone(),
                size,
            });
        }
    }
    // newest first, then by name
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.repository.cmp(&b.repository))
            .then(a.tag.cmp(&b.tag))
    });
    let short = |id: &str| -> String {
        if args.no_trunc {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                println!("{}", short(&r.id));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            for r in &rows {
                let created_at = r
                    .created
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                            .to_string()
                    })
                    .unwrap_or_default();
                let line = json!({
                    "Containers": "N/A",
                    "CreatedAt": created_at,
                    "CreatedSince": human::ago(r.created.as_deref()),
                    "Digest": r.digest,
                    "ID": short(&r.id),
                    "Repository": r.repository,
                    "SharedSize": "N/A",
                    "Size": human::size(r.size),
                    "Tag": r.tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human::size(r.size),
                });
                println!("{line}");
            }
        }
        Format::Table => {
            let table: Vec<[String; 5]> = rows
                .iter()
                .map(|r| {
                    [
                        r.repository.clone(),
                        r.tag.clone(),
                        short(&r.id),
                        human::ago(r.created.as_deref()),
                        human::size(r.size),
                    ]
                })
                .collect();
            print_table(
                &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
                &table,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `name` or `name:tag` → (full repository name, tag).
fn parse_filter(f: &str) -> miette::Result<(String, Option<String>)> {
    let r = Reference::parse(f).map_err(store::other)?;
    // `busybox` means every tag of busybox, `busybox:1` only that one
    let explicit_tag = f.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/'));
    Ok((
        r.name(),
        explicit_tag.then(|| r.tag().map(str::to_string)).flatten(),
    ))
}

/// Prints left-aligned columns separated by at least three spaces, as
/// docker's tabwriter does.
pub fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for (i, h) in header.iter().enumerate() {
        widths[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
