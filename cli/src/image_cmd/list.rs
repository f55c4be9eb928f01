//! `hull images`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_image::{Image, ImageRef, Store};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::{familiar, human_size};
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
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
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
    let digests = shows_digests(&args.format);
    let rows: Vec<Value> = images.iter().flat_map(|i| rows(i, digests)).collect();
    render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// Whether rows get their digests, as Docker decides without `--digests`:
/// when the template asks for them.
fn shows_digests(format: &Format) -> bool {
    matches!(format, Format::Template { template, .. } if template.contains("{{.Digest}}"))
}

/// One row per tag, or one `<none>` row for an untagged image; with
/// `digests`, a tag's row for each digest of its repository. The fields are
/// Docker's, strings all: `Containers` and the shared and unique sizes,
/// which Docker's list leaves uncounted, are `N/A` as there.
fn rows(image: &Image, digests: bool) -> Vec<Value> {
    let created = image.config.created().clone().unwrap_or_default();
    let created_at = created_at(&created);
    let created_since = since(&created);
    names(image, digests)
        .into_iter()
        .map(|name| {
            json!({
                "Containers": "N/A",
                "CreatedAt": created_at,
                "CreatedSince": created_since,
                "Digest": name.digest,
                "ID": image.id.short(),
                "Repository": name.repository,
                "SharedSize": "N/A",
                "Size": human_size(image.size, 3),
                "Tag": name.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(image.size, 4),
            })
        })
        .collect()
}

/// What one row of `images` names.
struct Name {
    repository: String,
    tag: String,
    digest: String,
}

/// The rows' names for `image`; see [`rows`].
fn names(image: &Image, digests: bool) -> Vec<Name> {
    const NONE: &str = "<none>";
    if image.repo_tags.is_empty() {
        return vec![Name {
            repository: NONE.into(),
            tag: NONE.into(),
            digest: NONE.into(),
        }];
    }
    let mut names = Vec::new();
    for tagged in &image.repo_tags {
        let (repository, tag) = familiar(tagged);
        let mut of_repository = if digests {
            digests_of(image, &repository)
        } else {
            Vec::new()
        };
        if of_repository.is_empty() {
            of_repository.push(NONE.into());
        }
        names.extend(of_repository.into_iter().map(|digest| Name {
            repository: repository.clone(),
            tag: tag.clone(),
            digest,
        }));
    }
    names
}

/// The digests `image` was pulled or pushed as in the repository Docker
/// calls `repository`.
fn digests_of(image: &Image, repository: &str) -> Vec<String> {
    image
        .repo_digests
        .iter()
        .filter_map(|pinned| ImageRef::parse(pinned).ok())
        .filter(|pinned| pinned.familiar_name() == repository)
        .filter_map(|pinned| pinned.digest().map(str::to_owned))
        .collect()
}

/// An RFC 3339 time as Docker shows `CreatedAt` (Go's `time.String()`), in
/// UTC: `2024-01-27 00:59:20 +0000 UTC`. Anything else is shown as it is.
pub(super) fn created_at(created: &str) -> String {
    let Ok(time) = OffsetDateTime::parse(created, &Rfc3339) else {
        return created.to_owned();
    };
    let utc = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// "5 minutes ago", as Docker words it.
pub(super) fn since(created: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_read_like_docker() {
        assert_eq!(
            created_at("2024-01-27T02:59:20.123+02:00"),
            "2024-01-27 00:59:20 +0000 UTC"
        );
        assert_eq!(created_at(""), "");
    }

    #[test]
    fn digests_are_shown_only_when_the_template_asks() {
        let format = |text: &str| text.parse::<Format>().unwrap();
        assert!(shows_digests(&format("{{.Repository}}@{{.Digest}}")));
        assert!(!shows_digests(&format("json")));
        assert!(!shows_digests(&format("")));
        assert!(!shows_digests(&format("{{json .}}")));
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
