//! `hull rmi`, `hull tag`, `hull image inspect`, `hull image prune`.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use hull_image::{Image, ImageRef, Removal, Store};
use serde_json::json;

use super::{familiar, in_use};
use crate::container_cmd::print_inspected;

#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove even if in use or named several times.
    #[arg(short, long)]
    force: bool,
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
                        Removal::Untagged(tag) => {
                            let (repository, tag) = familiar(&tag);
                            println!("Untagged: {repository}:{tag}");
                        }
                        Removal::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            // Each failure gets its line; the last one is the command's error.
            Err(err) => {
                if let Some(previous) = last_error.replace(err) {
                    eprintln!("hull: {previous:#}");
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
    let target = ImageRef::parse(&args.target)?;
    Store::open(root)?.tag(&args.source, &target)?;
    Ok(0)
}

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each image, e.g. `{{.Config.Cmd}}`.
    #[arg(short, long)]
    format: Option<String>,
    /// Images to inspect (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn inspect(args: InspectArgs, root: &Path) -> Result<u8> {
    let store = Store::open(root)?;
    let images = args
        .images
        .iter()
        .map(|name| store.resolve(name).map(|image| describe(&image)))
        .collect::<Result<Vec<_>>>()?;
    print_inspected(args.format.as_deref(), &images)
}

fn describe(image: &Image) -> serde_json::Value {
    let config = &image.config;
    json!({
        "Id": image.id,
        "RepoTags": image.repo_tags.iter().map(|t| { let (r, t) = familiar(t); format!("{r}:{t}") }).collect::<Vec<_>>(),
        "RepoDigests": image.repo_digests,
        "Created": config.created(),
        "Author": config.author(),
        "Architecture": config.architecture().to_string(),
        "Os": config.os().to_string(),
        "Size": image.size,
        "Config": config.config(),
        "RootFS": config.rootfs(),
        "Manifest": { "Digest": image.manifest_digest, "Layers": image.manifest.layers },
        "Layers": image.layers,
    })
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all images not used by a container, not just untagged ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation (hull never asks; accepted for Docker compatibility).
    #[arg(short, long)]
    pub force: bool,
}

pub fn prune(args: PruneArgs, root: &Path) -> Result<u8> {
    let _ = args.force;
    let removed = Store::open(root)?.prune(args.all, &in_use(root)?)?;
    if removed.is_empty() {
        println!("Total reclaimed: 0 images");
        return Ok(0);
    }
    println!("Deleted Images:");
    for id in &removed {
        println!("deleted: {id}");
    }
    Ok(0)
}
