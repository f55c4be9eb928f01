//! `hull rmi`, `hull tag`, `hull image inspect`, `hull image prune`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_image::{Digest, Image, ImageRef, Pruned, Removal, Store};
use serde_json::{json, Value};

use super::{familiar, in_use};
use crate::container_cmd::inspect_each;
use crate::filters::{all_hold, PruneFilter};
use crate::prompt;
use crate::prune_report::PruneReport;

#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove even if in use or named several times.
    #[arg(short, long)]
    force: bool,
    /// Accepted: hull keeps no untagged parent images to delete with it.
    #[arg(long = "no-prune")]
    _no_prune: bool,
}

pub fn rmi(args: RmiArgs, root: &Path) -> Result<u8> {
    let store = Store::open(root)?;
    let in_use = in_use(root)?;
    let mut last_error = None;
    for name in &args.images {
        match store.remove(name, args.force, &in_use) {
            Ok(removals) => {
                for removal in removals {
                    match removal {
                        Removal::Untagged(name) => {
                            let name = super::shown_name(&name);
                            super::image_event(&store, "untag", &name, &name);
                            println!("Untagged: {name}");
                        }
                        Removal::Deleted(id) => {
                            super::image_event(&store, "delete", id.as_str(), id.as_str());
                            println!("Deleted: {id}");
                        }
                    }
                }
            }
            // Each failure gets its line; the last one is the command's error.
            Err(err) => {
                if let Some(previous) = last_error.replace(err) {
                    crate::report::print(&previous);
                }
            }
        }
    }
    match last_error {
        Some(err) => Err(err),
        None => Ok(0),
    }
}

#[derive(Args)]
pub struct TagArgs {
    /// Existing image (name or ID).
    source: String,
    /// New name: NAME[:TAG].
    target: String,
}

pub fn tag(args: TagArgs, root: &Path) -> Result<u8> {
    let target = ImageRef::parse_new_name(&args.target)?;
    let store = Store::open(root)?;
    store.tag(&args.source, &target)?;
    let id = store.resolve(&args.source)?.id;
    let name = super::familiar_string(&target);
    super::image_event(&store, "tag", id.as_str(), &name);
    Ok(0)
}

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each image, e.g. `{{.Config.Cmd}}`.
    #[arg(short, long, value_parser = crate::container_cmd::parse_format)]
    format: Option<String>,
    /// Images to inspect (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn inspect(args: InspectArgs, root: &Path) -> Result<u8> {
    let store = Store::open(root)?;
    inspect_each(&args.images, args.format.as_deref(), |name| {
        Ok(describe(&store.resolve(name)?))
    })
}

/// An image as `docker image inspect` shows it (and where hull keeps its
/// manifest and layers).
pub fn describe(image: &Image) -> Value {
    let config = &image.config;
    json!({
        "Id": image.id,
        "RepoTags": image.repo_tags.iter().map(|t| { let (r, t) = familiar(t); format!("{r}:{t}") }).collect::<Vec<_>>(),
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": image.docker.comment.as_deref().unwrap_or_default(),
        "Created": config.created(),
        "DockerVersion": "",
        "Author": config.author().as_deref().unwrap_or_default(),
        "Config": docker_config(json!(config.config()), image),
        "Architecture": config.architecture().to_string(),
        "Os": config.os().to_string(),
        "Size": image.size,
        "RootFS": {
            "Type": config.rootfs().typ(),
            "Layers": config.rootfs().diff_ids(),
        },
        "Manifest": { "Digest": image.manifest_digest, "Layers": image.manifest.layers },
        "Layers": image.layers,
    })
}

/// An image's `Config` (`given`, as the OCI config has it, with `image`'s
/// Docker healthcheck and triggers) as Docker shows it: every field Docker has, empty
/// where the image sets none.
fn docker_config(given: Value, image: &Image) -> Value {
    let mut fields = json!({
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": null,
        "Cmd": null,
        "Image": "",
        "Volumes": null,
        "WorkingDir": "",
        "Entrypoint": null,
        "OnBuild": null,
        "Labels": null,
    });
    if let (Value::Object(fields), Value::Object(given)) = (&mut fields, given) {
        fields.extend(given);
        if let Some(healthcheck) = &image.docker.healthcheck {
            fields.insert("Healthcheck".to_owned(), json!(healthcheck));
        }
        if let Some(on_build) = &image.docker.on_build {
            fields.insert("OnBuild".to_owned(), json!(on_build));
        }
    }
    fields
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only images that match: until=TIME (made before; `24h` for a day
    /// ago), label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long, value_name = "KEY=VALUE", value_parser = PruneFilter::parse)]
    pub filter: Vec<PruneFilter>,
}

/// Docker's questions before `image prune` and `image prune -a`.
const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all images without at least one \
    container associated to them.\nAre you sure you want to continue?";

/// Prunes as `docker image prune` does: after asking (unless `force`;
/// anything but yes leaves everything as it was), and listing what went.
pub fn prune(args: PruneArgs, root: &Path) -> Result<u8> {
    let question = if args.all {
        ALL_WARNING
    } else {
        DANGLING_WARNING
    };
    if !args.force && !prompt::confirm(question)? {
        return Ok(0);
    }
    print!("{}", prune_images(&args, root)?.with_total());
    Ok(0)
}

/// `hull image prune`'s work, and its part of `hull system prune`: the
/// unused images `args` select, removed.
pub fn prune_images(args: &PruneArgs, root: &Path) -> Result<PruneReport> {
    let store = Store::open(root)?;
    // The images the filters leave out are kept as if in use.
    let selected: BTreeSet<Digest> = store
        .images()?
        .into_iter()
        .filter(|image| {
            let created = image.config.created().clone().unwrap_or_default();
            let labels = image
                .config
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone());
            let labels = labels.unwrap_or_default().into_iter().collect();
            all_hold(&args.filter, |filter| filter.holds(&created, &labels))
        })
        .map(|image| image.id)
        .collect();
    let in_use = in_use(root)?;
    let kept = |id: &Digest| in_use(id) || !selected.contains(id);
    let pruned = store.prune(args.all, &kept)?;
    for image in &pruned.images {
        for tag in &image.repo_tags {
            let name = super::shown_name(tag);
            super::image_event(&store, "untag", &name, &name);
        }
        super::image_event(&store, "delete", image.id.as_str(), image.id.as_str());
    }
    Ok(prune_report(&pruned))
}

/// What `docker image prune` prints of what it removed: each image's names,
/// then the image and its layers that went with it, and the space freed.
fn prune_report(pruned: &Pruned) -> PruneReport {
    let mut lines = Vec::new();
    for image in &pruned.images {
        for name in image.repo_tags.iter().chain(&image.repo_digests) {
            lines.push(format!("untagged: {}", super::shown_name(name)));
        }
        for id in std::iter::once(&image.id).chain(&image.layers) {
            lines.push(format!("deleted: {id}"));
        }
    }
    PruneReport::new("Deleted Images:", &lines, pruned.reclaimed)
}

#[cfg(test)]
mod tests {
    use hull_image::{Digest, PrunedImage};

    use super::*;

    fn digest(byte: char) -> Digest {
        Digest::parse(&format!("sha256:{}", byte.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn nothing_pruned_reads_like_docker() {
        assert_eq!(
            prune_report(&Pruned::default()).with_total(),
            "Total reclaimed space: 0B\n"
        );
    }

    #[test]
    fn a_prune_reads_like_docker() {
        let pruned = Pruned {
            images: vec![
                PrunedImage {
                    id: digest('1'),
                    repo_tags: vec!["docker.io/library/alpine:latest".into()],
                    repo_digests: vec![format!("docker.io/library/alpine@{}", digest('d'))],
                    layers: vec![digest('b'), digest('a')],
                },
                PrunedImage {
                    id: digest('2'),
                    repo_tags: Vec::new(),
                    repo_digests: Vec::new(),
                    layers: Vec::new(),
                },
            ],
            reclaimed: 3_400_000,
        };
        let [one, two, a, b, d] = ['1', '2', 'a', 'b', 'd'].map(digest);
        assert_eq!(
            prune_report(&pruned).with_total(),
            format!(
                "Deleted Images:\n\
                 untagged: alpine:latest\n\
                 untagged: alpine@{d}\n\
                 deleted: {one}\n\
                 deleted: {b}\n\
                 deleted: {a}\n\
                 deleted: {two}\n\
                 \n\
                 Total reclaimed space: 3.4MB\n"
            )
        );
    }
}
