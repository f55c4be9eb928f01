//! `hull images`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_image::{Image, Store};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::familiar;
use hull_format::{render_rows, Format, Listing};

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// `table` (default), `json` (one object per line), or a Go template
    /// (`{{.Repository}}:{{.Tag}}`).
    #[arg(long, default_value = "")]
    format: Format,
}

/// `docker images`'s default table.
const LISTING: Listing = Listing {
    default_format: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: &[
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("ID", "IMAGE ID"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedSince", "CREATED"),
        ("Size", "SIZE"),
    ],
};

pub fn images(args: ImagesArgs, root: &Path) -> Result<u8> {
    let store = Store::open(root)?;
    let images = store.images()?;
    if args.quiet {
        let mut seen = BTreeSet::new();
        for image in &images {
            if seen.insert(image.id.clone()) {
                println!("{}", image.id.short());
            }
        }
        return Ok(0);
    }
    let rows: Vec<Value> = images.iter().flat_map(rows).collect();
    render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// One row per tag, or one `<none>` row for an untagged image.
fn rows(image: &Image) -> Vec<Value> {
    let created = image.config.created().clone().unwrap_or_default();
    let created_since = since(&created);
    let names: Vec<(String, String)> = if image.repo_tags.is_empty() {
        vec![("<none>".into(), "<none>".into())]
    } else {
        image.repo_tags.iter().map(|t| familiar(t)).collect()
    };
    names
        .into_iter()
        .map(|(repository, tag)| {
            json!({
                "Repository": repository,
                "Tag": tag,
                "ID": image.id.short(),
                "CreatedAt": created,
                "CreatedSince": created_since,
                "Size": human_size(image.size),
                "VirtualSize": image.size,
            })
        })
        .collect()
}

/// "5 minutes ago", as Docker words it.
fn since(created: &str) -> String {
    let Ok(then) = OffsetDateTime::parse(created, &Rfc3339) else {
        return "N/A".into();
    };
    let seconds = (OffsetDateTime::now_utc() - then).whole_seconds().max(0);
    let (n, unit) = match seconds {
        s if s < 60 => return "Less than a minute ago".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 14 => (s / 86_400, "day"),
        s if s < 86_400 * 60 => (s / (86_400 * 7), "week"),
        s if s < 86_400 * 730 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural} ago")
}

/// Decimal units, as Docker shows sizes.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}", value = (value * 100.0).round() / 100.0)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_200_000), "4.2MB");
        assert_eq!(human_size(1_000_000_000), "1GB");
    }

    #[test]
    fn ages_read_like_docker() {
        let two_hours = (OffsetDateTime::now_utc() - time::Duration::hours(2))
            .format(&Rfc3339)
            .unwrap();
        assert_eq!(since(&two_hours), "2 hours ago");
        assert_eq!(since("garbage"), "N/A");
    }
}
