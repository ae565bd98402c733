//! `kiln history IMAGE`: the image's history entries, newest first, with
//! the size of the layer each one made (IMAGE CREATED CREATED BY SIZE
//! COMMENT), as `docker history` shows them.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::images::{Format, print_table};
use super::{CmdResult, store};
use crate::cli::GlobalArgs;
use crate::human;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Do not truncate CREATED BY.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The image: a name, an id or an id prefix.
    pub image: String,
}

pub fn run(global: &GlobalArgs, args: HistoryArgs) -> CmdResult {
    let store = store::open(global)?;
    let image = store.find_image(&args.image).map_err(store::diag)?;
    let history = image.config.history().clone().unwrap_or_default();
    let mut layers = image.layers.iter();
    let mut rows = Vec::new();
    for h in &history {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            layers.next().map(|l| l.descriptor.size()).unwrap_or(0)
        };
        rows.push((h.clone(), size));
    }
    // layers without history entries (some importers write none)
    for l in layers {
        rows.push((Default::default(), l.descriptor.size()));
    }
    rows.reverse();
    let id_of = |i: usize| {
        if i == 0 {
            if args.no_trunc {
                image.id().to_string()
            } else {
                image.short_id()
            }
        } else {
            "<missing>".to_string()
        }
    };
    match args.format {
        Format::Json => {
            for (i, (h, size)) in rows.iter().enumerate() {
                let line = json!({
                    "ID": id_of(i),
                    "CreatedAt": h.created().clone().unwrap_or_default(),
                    "CreatedSince": human::ago(h.created().as_deref()),
                    "CreatedBy": h.created_by().clone().unwrap_or_default(),
                    "Size": human::size(*size),
                    "Comment": h.comment().clone().unwrap_or_default(),
                });
                println!("{line}");
            }
        }
        Format::Table => {
            let table: Vec<[String; 5]> = rows
                .iter()
                .enumerate()
                .map(|(i, (h, size))| {
                    let by = h.created_by().clone().unwrap_or_default();
                    let by = if !args.no_trunc && by.chars().count() > 45 {
                        format!("{}…", by.chars().take(44).collect::<String>())
                    } else {
                        by
                    };
                    [
                        id_of(i),
                        human::ago(h.created().as_deref()),
                        by,
                        human::size(*size),
                        h.comment().clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &table,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
