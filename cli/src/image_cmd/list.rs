//! `hull images`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use clap::{Args, ValueEnum};
use hull_image::{Image, Store};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::familiar;

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

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
    let rows: Vec<Row> = images.iter().flat_map(rows).collect();
    match args.format {
        Format::Json => {
            for row in &rows {
                let line = json!({
                    "Repository": row.repository,
                    "Tag": row.tag,
                    "ID": row.id,
                    "CreatedAt": row.created,
                    "CreatedSince": row.created_since,
                    "Size": row.size,
                    "VirtualSize": row.bytes,
                });
                println!("{line}");
            }
        }
        Format::Table => {
            println!(
                "{:<40} {:<16} {:<14} {:<24} SIZE",
                "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
            );
            for row in &rows {
                println!(
                    "{:<40} {:<16} {:<14} {:<24} {}",
                    row.repository, row.tag, row.id, row.created_since, row.size
                );
            }
        }
    }
    Ok(0)
}

struct Row {
    repository: String,
    tag: String,
    id: String,
    created: String,
    created_since: String,
    size: String,
    bytes: u64,
}

/// One row per tag, or one `<none>` row for an untagged image.
fn rows(image: &Image) -> Vec<Row> {
    let created = image.config.created().clone().unwrap_or_default();
    let created_since = since(&created);
    let names: Vec<(String, String)> = if image.repo_tags.is_empty() {
        vec![("<none>".into(), "<none>".into())]
    } else {
        image.repo_tags.iter().map(|t| familiar(t)).collect()
    };
    names
        .into_iter()
        .map(|(repository, tag)| Row {
            repository,
            tag,
            id: image.id.short().to_owned(),
            created: created.clone(),
            created_since: created_since.clone(),
            size: human_size(image.size),
            bytes: image.size,
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
