//! `hull images`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_image::{Image, ImageRef, Store};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{familiar, human_size};
use crate::filters::{all_hold, LabelFilter, ListFilter};
use crate::times::{created_at, human_duration_since};
use hull_format::{render_rows, Format, Listing};

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Accepted: hull keeps no intermediate images, so all is the list.
    #[arg(short = 'a', long = "all")]
    _all: bool,
    /// Show each tag's digests.
    #[arg(long)]
    digests: bool,
    /// Show whole image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Only images that match: dangling=true|false, reference=PATTERN
    /// (`app*`, `*:v1`), label=KEY[=VALUE], before=IMAGE, since=IMAGE;
    /// repeat a key for any of its values.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<Filter>,
    /// Only this repository (and tag): REPOSITORY[:TAG], patterns allowed.
    repository: Option<String>,
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
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("Containers", "CONTAINERS"),
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
    let mut images = store.images()?;
    let mut filters = args.filter.clone();
    filters.extend(args.repository.clone().map(Filter::Reference));
    let filters = Resolved::new(&store, filters)?;
    images.retain(|image| all_hold(&filters.list, |filter| filters.holds(filter, image)));
    for image in &mut images {
        // Only the names a reference filter matches are rows.
        let named = filters.references();
        if !named.is_empty() {
            image
                .repo_tags
                .retain(|tagged| named.iter().any(|p| reference_matches(p, tagged)));
        }
    }
    if args.quiet {
        let mut seen = BTreeSet::new();
        for image in &images {
            if seen.insert(image.id.clone()) {
                println!("{}", image_id(image, args.no_trunc));
            }
        }
        return Ok(0);
    }
    let digests = args.digests || shows_digests(&args.format);
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|image| rows(image, digests, args.no_trunc))
        .collect();
    let listing = match args.digests {
        true => &DIGESTS_LISTING,
        false => &LISTING,
    };
    render_rows(&args.format, listing, &rows, &mut std::io::stdout())?;
    Ok(0)
}

/// `docker images --digests`'s table.
const DIGESTS_LISTING: Listing = Listing {
    default_format:
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: LISTING.headers,
};

/// An `images --filter` (or the REPOSITORY argument, a reference one).
#[derive(Clone, Debug)]
pub enum Filter {
    /// Untagged (true) or tagged.
    Dangling(bool),
    /// A pattern of `REPOSITORY[:TAG]`, Go's `path.Match`.
    Reference(String),
    Label(LabelFilter),
    /// Made before this image.
    Before(String),
    /// Made after this image.
    Since(String),
}

impl ListFilter for Filter {
    fn is_label(&self) -> bool {
        matches!(self, Filter::Label(_))
    }
}

fn parse_filter(value: &str) -> Result<Filter, String> {
    let invalid = || {
        format!(
            "{value:?}: filters are dangling=true|false, reference=PATTERN, \
             label=KEY[=VALUE], before=IMAGE, since=IMAGE"
        )
    };
    let (key, wanted) = value.split_once('=').ok_or_else(invalid)?;
    match key {
        "dangling" => match wanted {
            "true" | "1" => Ok(Filter::Dangling(true)),
            "false" | "0" => Ok(Filter::Dangling(false)),
            _ => Err(invalid()),
        },
        "reference" => {
            // A bad pattern is refused here, as Docker refuses it.
            hull_builder::path_match(wanted, "")
                .map_err(|err| format!("reference={wanted}: {err}"))?;
            Ok(Filter::Reference(wanted.to_owned()))
        }
        "label" => Ok(Filter::Label(LabelFilter::parse(wanted))),
        "before" => Ok(Filter::Before(wanted.to_owned())),
        "since" => Ok(Filter::Since(wanted.to_owned())),
        _ => Err(invalid()),
    }
}

/// The filters, with the times `before=`/`since=` compare against.
struct Resolved {
    list: Vec<Filter>,
    /// The creation time of each image a `before=`/`since=` names.
    times: BTreeMap<String, OffsetDateTime>,
}

impl Resolved {
    fn new(store: &Store, list: Vec<Filter>) -> Result<Resolved> {
        let mut times = BTreeMap::new();
        for filter in &list {
            if let Filter::Before(name) | Filter::Since(name) = filter {
                let image = store
                    .find(name)?
                    .ok_or_else(|| hull_image::NoSuchImage(name.clone()))?;
                times.insert(
                    name.clone(),
                    created_time(&image).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                );
            }
        }
        Ok(Resolved { list, times })
    }

    /// The reference patterns.
    fn references(&self) -> Vec<&str> {
        let patterns = self.list.iter().filter_map(|filter| match filter {
            Filter::Reference(pattern) => Some(pattern.as_str()),
            _ => None,
        });
        patterns.collect()
    }

    fn holds(&self, filter: &Filter, image: &Image) -> bool {
        let created = created_time(image).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        match filter {
            Filter::Dangling(dangling) => image.repo_tags.is_empty() == *dangling,
            Filter::Reference(pattern) => image
                .repo_tags
                .iter()
                .any(|tagged| reference_matches(pattern, tagged)),
            Filter::Label(label) => {
                let labels = image
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone());
                label.matches(&labels.unwrap_or_default().into_iter().collect())
            }
            Filter::Before(name) => self.times.get(name).is_some_and(|t| created < *t),
            Filter::Since(name) => self.times.get(name).is_some_and(|t| created > *t),
        }
    }
}

/// Whether the tagged name `tagged` matches `pattern` as Docker's
/// `reference=` does: the familiar `name:tag`, or the familiar name alone.
fn reference_matches(pattern: &str, tagged: &str) -> bool {
    let (repository, tag) = familiar(tagged);
    [format!("{repository}:{tag}"), repository]
        .iter()
        .any(|text| hull_builder::path_match(pattern, text).unwrap_or(false))
}

/// When `image` was made, if its config says.
fn created_time(image: &Image) -> Option<OffsetDateTime> {
    let created = image.config.created().as_deref()?;
    OffsetDateTime::parse(created, &Rfc3339).ok()
}

/// The image's ID as a row shows it.
fn image_id(image: &Image, no_trunc: bool) -> String {
    match no_trunc {
        true => image.id.to_string(),
        false => image.id.short().to_string(),
    }
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
fn rows(image: &Image, digests: bool, no_trunc: bool) -> Vec<Value> {
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
                "ID": image_id(image, no_trunc),
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
        // Pulled by digest: a row per repository it was pulled from.
        let pinned = image
            .repo_digests
            .iter()
            .filter_map(|pinned| ImageRef::parse(pinned).ok());
        let mut seen = std::collections::BTreeSet::new();
        let mut names: Vec<Name> = pinned
            .filter_map(|pinned| {
                Some(Name {
                    repository: pinned.familiar_name(),
                    tag: NONE.into(),
                    digest: pinned.digest()?.to_owned(),
                })
            })
            .filter(|name| digests || seen.insert(name.repository.clone()))
            .collect();
        if names.is_empty() {
            names.push(Name {
                repository: NONE.into(),
                tag: NONE.into(),
                digest: NONE.into(),
            });
        }
        return names;
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

/// "5 minutes ago", as Docker words it.
pub fn since(created: &str) -> String {
    human_duration_since(created).map_or_else(|| "N/A".into(), |since| format!("{since} ago"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_shown_only_when_the_template_asks() {
        let format = |text: &str| text.parse::<Format>().unwrap();
        assert!(shows_digests(&format("{{.Repository}}@{{.Digest}}")));
        assert!(!shows_digests(&format("json")));
        assert!(!shows_digests(&format("")));
        assert!(!shows_digests(&format("{{json .}}")));
    }

    #[test]
    fn references_match_as_dockers_filter_does() {
        let tagged = "docker.io/library/nginx:1.27";
        for pattern in ["nginx", "nginx:*", "ngi*", "*:1.27"] {
            assert!(reference_matches(pattern, tagged), "{pattern}");
        }
        for pattern in ["nginx:latest", "library/nginx", "*/nginx"] {
            assert!(!reference_matches(pattern, tagged), "{pattern}");
        }
        assert!(!reference_matches(
            "myorg/*",
            "registry.example/myorg/app:v1"
        ));
        assert!(reference_matches("myorg/*", "docker.io/myorg/app:v1"));
        assert!(matches!(
            parse_filter("dangling=true"),
            Ok(Filter::Dangling(true))
        ));
        assert!(parse_filter("reference=[").is_err());
        assert!(parse_filter("size=1").is_err());
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
