//! `hull pull`, `hull push`, `hull import`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hull_image::{ImageRef, Store};

use super::registry_options;

#[derive(Args)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG] or NAME@sha256:DIGEST.
    reference: String,
    /// Talk plain HTTP to this registry (host[:port]); repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure: Vec<String>,
    /// Print only the image name.
    #[arg(short, long)]
    quiet: bool,
}

pub fn pull(args: PullArgs, root: &Path) -> Result<u8> {
    let reference = ImageRef::parse(&args.reference)?;
    let store = Store::open(root)?;
    let mut options = registry_options(root, &args.insecure)?;
    if args.quiet {
        options.progress = hull_image::ProgressStyle::Quiet;
    } else {
        println!(
            "{}: Pulling from {}",
            reference.tag().or(reference.digest()).unwrap_or("latest"),
            reference.repository()
        );
    }
    let pulled = hull_image::pull(&store, &reference, &options)?;
    if !args.quiet {
        println!("Digest: {}", pulled.manifest_digest);
        let status = if pulled.downloaded {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        println!("Status: {status} {}", args.reference);
    }
    println!("{reference}");
    Ok(0)
}

#[derive(Args)]
pub struct PushArgs {
    /// Local image to push, named for its registry: REGISTRY/NAME[:TAG].
    reference: String,
    /// Talk plain HTTP to this registry (host[:port]); repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure: Vec<String>,
}

pub fn push(args: PushArgs, root: &Path) -> Result<u8> {
    let reference = ImageRef::parse(&args.reference)?;
    let store = Store::open(root)?;
    let options = registry_options(root, &args.insecure)?;
    println!("The push refers to repository [{}]", reference.name());
    let digest = hull_image::push(&store, &reference, &options)?;
    println!("{}: digest: {digest}", reference.tag().unwrap_or("latest"));
    Ok(0)
}

#[derive(Args)]
pub struct ImportArgs {
    /// Root filesystem tar (plain, gzip or zstd), or `-` for stdin.
    file: PathBuf,
    /// Name for the new image: NAME[:TAG].
    reference: Option<String>,
}

pub fn import(args: ImportArgs, root: &Path) -> Result<u8> {
    let reference = args.reference.as_deref().map(ImageRef::parse).transpose()?;
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        )
    };
    let store = Store::open(root)?;
    let id = hull_image::import_tar(&store, input, reference.as_ref())
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    println!("{id}");
    Ok(0)
}
