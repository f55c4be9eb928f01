//! `hull history IMAGE`: the image's history as its config records it,
//! newest first, each entry that made a layer with that layer's size.

use std::path::Path;

use anyhow::Result;
use clap::{ArgAction, Args};
use hull_format::{render_rows, Format, Listing};
use hull_image::{Image, Store};
use serde_json::{json, Value};

use super::human_size;
use super::list::since;
use crate::times::created_at_rfc3339;

/// How much of `CREATED BY` the table shows without `--no-trunc`.
const CREATED_BY_WIDTH: usize = 45;

#[derive(Args)]
pub struct HistoryArgs {
    /// Sizes and dates in human-readable form.
    #[arg(short = 'H', long, default_value_t = true, action = ArgAction::Set)]
    human: bool,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// `table` (default), `json`, or a Go template (`{{.CreatedBy}}`).
    #[arg(long, default_value = "")]
    format: Format,
    image: String,
}

const LISTING: Listing = Listing {
    default_format: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ],
};

pub fn history(args: HistoryArgs, root: &Path) -> Result<u8> {
    let image = Store::open(root)?.resolve(&args.image)?;
    let rows = rows(&image, &args);
    if args.quiet {
        for row in &rows {
            println!("{}", row["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// Docker's rows: newest first, the image's ID on the newest and
/// `<missing>` on the others, an entry that made a layer with its size.
fn rows(image: &Image, args: &HistoryArgs) -> Vec<Value> {
    let history = image.config.history().clone().unwrap_or_default();
    let mut layers = image.layers.iter();
    let mut rows = Vec::new();
    for entry in &history {
        let empty = entry.empty_layer().unwrap_or(false);
        let size = match empty {
            true => 0,
            false => layers.next().map_or(0, |dir| layer_size(dir)),
        };
        let created = entry.created().clone().unwrap_or_default();
        let created_by = entry.created_by().clone().unwrap_or_default();
        let created_by = match args.no_trunc || created_by.chars().count() <= CREATED_BY_WIDTH {
            true => created_by,
            false => {
                let kept: String = created_by.chars().take(CREATED_BY_WIDTH - 1).collect();
                format!("{kept}…")
            }
        };
        rows.push(json!({
            "ID": "<missing>",
            "CreatedSince": match args.human {
                true => since(&created),
                false => created_at_rfc3339(&created),
            },
            "CreatedAt": created_at_rfc3339(&created),
            "CreatedBy": created_by,
            "Size": if args.human { human_size(size, 3) } else { size.to_string() },
            "Comment": entry.comment().clone().unwrap_or_default(),
        }));
    }
    rows.reverse();
    if let Some(newest) = rows.first_mut() {
        newest["ID"] = match args.no_trunc {
            true => json!(image.id.to_string()),
            false => json!(image.id.short()),
        };
    }
    rows
}

/// The unpacked size the store recorded for the layer at `dir`.
fn layer_size(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.with_file_name("size"))
        .ok()
        .and_then(|size| size.trim().parse().ok())
        .unwrap_or(0)
}
