//! `hull system`: what hull's state takes on disk (`df`), and removing what
//! nothing uses any more (`prune`), as Docker's: exited containers,
//! networks without containers (with the host bridges and NAT rules behind
//! them, the default network's too while it is idle), untagged images
//! (with `--all`, every image no container uses) and, with `--volumes`,
//! anonymous volumes no container uses.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use hull_format::{render_rows, Format, Listing};
use hull_image::{Image, Store};
use hull_runtime::{MountSource, Runtime, Status};
use serde_json::{json, Value};

use crate::filters::PruneFilter;
use crate::image_cmd::human_size;
use crate::{container_cmd, image_cmd, network_cmd, prompt, volume_cmd};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show the disk space images, containers and volumes take.
    Df(DfArgs),
    /// Remove exited containers, unused networks and untagged images.
    Prune(PruneArgs),
    /// Show what happens to containers, images, networks and volumes
    /// (`hull events`).
    Events(crate::events_cmd::EventsArgs),
    /// Show where hull runs VMs on this host and why (`hull info`).
    Info(crate::version::VersionArgs),
}

#[derive(Args)]
pub struct DfArgs {
    /// Show each image, container and volume.
    #[arg(short, long)]
    verbose: bool,
    /// `table` (default), `json` (one object per line), or a Go template
    /// over .Type, .TotalCount, .Active, .Size, .Reclaimable.
    #[arg(long, default_value = "")]
    format: Format,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only untagged ones.
    #[arg(short, long)]
    all: bool,
    /// Remove anonymous volumes no container uses too.
    #[arg(long)]
    volumes: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only containers, networks and images that match: until=TIME,
    /// label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long, value_name = "KEY=VALUE", value_parser = PruneFilter::parse)]
    filter: Vec<PruneFilter>,
}

pub fn system(command: SystemCommand, runtime: &Runtime) -> Result<u8> {
    match command {
        SystemCommand::Df(args) => df(&args, runtime),
        SystemCommand::Prune(args) => prune(&args, runtime),
        SystemCommand::Events(_) | SystemCommand::Info(_) => {
            unreachable!("system events and info are made canonical first")
        }
    }
}

fn prune(args: &PruneArgs, runtime: &Runtime) -> Result<u8> {
    let images = match args.all {
        true => "all images without at least one container associated to them",
        false => "all dangling images",
    };
    let volumes = match args.volumes {
        true => "\n  - all anonymous volumes not used by at least one container",
        false => "",
    };
    let question = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by \
         at least one container{volumes}\n  - {images}"
    );
    if !args.force && !prompt::confirm(&question)? {
        return Ok(0);
    }
    // As Docker's: each kind's section, then the space freed in all.
    let mut report = container_cmd::prune_containers(runtime, &args.filter)?
        .and(network_cmd::prune(runtime, &args.filter)?);
    if args.volumes {
        report = report.and(volume_cmd::prune(runtime, false)?);
    }
    let images = image_cmd::PruneArgs {
        all: args.all,
        force: true,
        filter: args.filter.clone(),
    };
    report = report.and(image_cmd::prune_images(&images, runtime.root())?);
    print!("{}", report.with_total());
    Ok(0)
}

/// `docker system df`'s table.
const LISTING: Listing = Listing {
    default_format: "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    headers: &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ],
};

/// The images' layers, each once, with how many images have it.
struct SharedLayers<'a> {
    layers: HashMap<&'a Path, (u64, usize)>,
}

impl<'a> SharedLayers<'a> {
    fn of(images: &'a [Image]) -> SharedLayers<'a> {
        let mut layers: HashMap<&Path, (u64, usize)> = HashMap::new();
        for image in images {
            // A layer an image has twice (an empty one) is still its own.
            let own: HashMap<&Path, u64> = image
                .layers
                .iter()
                .map(PathBuf::as_path)
                .zip(image.layer_sizes.iter().copied())
                .collect();
            for (layer, size) in own {
                layers.entry(layer).or_insert((size, 0)).1 += 1;
            }
        }
        SharedLayers { layers }
    }

    /// The bytes of every layer.
    fn total_bytes(&self) -> u64 {
        self.layers.values().map(|(size, _)| size).sum()
    }

    /// The bytes of `layers`.
    fn bytes_of(&self, layers: &HashSet<&Path>) -> u64 {
        layers
            .iter()
            .filter_map(|layer| self.layers.get(layer))
            .map(|(size, _)| size)
            .sum()
    }

    /// The bytes of `image`'s layers that another image has too.
    fn shared_bytes(&self, image: &Image) -> u64 {
        let shared = |layer: &&PathBuf| {
            self.layers
                .get(layer.as_path())
                .is_some_and(|(_, n)| *n > 1)
        };
        image
            .layers
            .iter()
            .zip(&image.layer_sizes)
            .filter(|(layer, _)| shared(layer))
            .map(|(_, size)| size)
            .sum()
    }
}

/// How much of one kind of thing there is, and what pruning would free.
#[derive(Default)]
struct Usage {
    total: usize,
    active: usize,
    bytes: u64,
    reclaimable: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64, active: bool) {
        self.total += 1;
        self.bytes += bytes;
        match active {
            true => self.active += 1,
            false => self.reclaimable += bytes,
        }
    }

    fn row(&self, kind: &str) -> Value {
        let percent = match self.bytes {
            0 => 0,
            bytes => self.reclaimable * 100 / bytes,
        };
        json!({
            "Type": kind,
            "TotalCount": self.total.to_string(),
            "Active": self.active.to_string(),
            "Size": human_size(self.bytes, 4),
            "Reclaimable": format!("{} ({percent}%)", human_size(self.reclaimable, 4)),
        })
    }
}

fn df(args: &DfArgs, runtime: &Runtime) -> Result<u8> {
    let containers = runtime.list()?;
    let volumes = runtime.list_volumes()?;
    let images = Store::open(runtime.root())?.images()?;
    let (mut image_usage, mut container_usage, mut volume_usage) = Default::default();
    let users_of = |id: &str| {
        let same_image = |c: &&hull_runtime::ContainerInfo| image_id_of(c) == Some(id);
        containers.iter().filter(same_image).count()
    };
    // A layer several images share is counted once, and frees space only
    // when no image in use has it.
    let layers = SharedLayers::of(&images);
    let mut used_layers = HashSet::new();
    let mut image_rows = Vec::new();
    for image in &images {
        let users = users_of(&image.id.to_string());
        Usage::add(&mut image_usage, 0, users > 0);
        if users > 0 {
            used_layers.extend(image.layers.iter().map(PathBuf::as_path));
        }
        // As `images` shows it: `alpine`, not docker.io/library/alpine.
        let (repository, tag) = image.repo_tags.first().map_or_else(
            || ("<none>".to_owned(), "<none>".to_owned()),
            |tagged| image_cmd::familiar(tagged),
        );
        let shared = layers.shared_bytes(image);
        image_rows.push(json!({
            "Repository": repository, "Tag": tag, "ID": image.id.short(),
            "CreatedSince": image_cmd::since(&image.config.created().clone().unwrap_or_default()),
            "Size": human_size(image.size, 3),
            "SharedSize": human_size(shared, 3),
            "UniqueSize": human_size(image.size - shared, 3),
            "Containers": users.to_string(),
        }));
    }
    image_usage.bytes = layers.total_bytes();
    image_usage.reclaimable = image_usage.bytes - layers.bytes_of(&used_layers);
    let mut container_rows = Vec::new();
    for container in &containers {
        let running = container.state.status == Status::Running;
        Usage::add(&mut container_usage, container.writable_bytes, running);
        let volumes = container.config.boot.mounts.iter();
        let volume_count = volumes
            .filter(|mount| matches!(mount.source, MountSource::Volume { .. }))
            .count();
        // `ps`'s row, as Docker's `df -v` shows it.
        let mut row = container_cmd::ps_row(container, false);
        row["LocalVolumes"] = json!(volume_count.to_string());
        container_rows.push(row);
    }
    let mut volume_rows = Vec::new();
    for info in &volumes {
        let bytes = runtime.volume_size(&info.volume.name)?;
        Usage::add(&mut volume_usage, bytes, !info.users.is_empty());
        volume_rows.push(json!({
            "Name": info.volume.name, "Links": info.users.len().to_string(),
            "Size": human_size(bytes, 3),
        }));
    }
    // What `builder prune` would free: what no image shares.
    let cache = hull_builder::cache_usage(runtime.root())?;
    let cache_usage = Usage {
        total: cache.entries,
        active: 0,
        bytes: cache.bytes,
        reclaimable: cache.exclusive_bytes,
    };
    let mut out = std::io::stdout();
    if !args.verbose {
        let rows = [
            image_usage.row("Images"),
            container_usage.row("Containers"),
            volume_usage.row("Local Volumes"),
            cache_usage.row("Build Cache"),
        ];
        render_rows(&args.format, &LISTING, &rows, &mut out)?;
        return Ok(0);
    }
    let sections = [
        (
            "Images space usage:",
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t\
             {{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
            &[
                ("Repository", "REPOSITORY"),
                ("Tag", "TAG"),
                ("ID", "IMAGE ID"),
                ("CreatedSince", "CREATED"),
                ("Size", "SIZE"),
                ("SharedSize", "SHARED SIZE"),
                ("UniqueSize", "UNIQUE SIZE"),
                ("Containers", "CONTAINERS"),
            ][..],
            &image_rows,
        ),
        (
            "Containers space usage:",
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t\
             {{.RunningFor}}\t{{.Status}}\t{{.Names}}",
            &[
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("LocalVolumes", "LOCAL VOLUMES"),
                ("Size", "SIZE"),
                ("RunningFor", "CREATED"),
                ("Status", "STATUS"),
                ("Names", "NAMES"),
            ][..],
            &container_rows,
        ),
        (
            "Local Volumes space usage:",
            "table {{.Name}}\t{{.Links}}\t{{.Size}}",
            &[
                ("Name", "VOLUME NAME"),
                ("Links", "LINKS"),
                ("Size", "SIZE"),
            ][..],
            &volume_rows,
        ),
    ];
    for (title, default_format, headers, rows) in sections {
        println!("{title}\n");
        let listing = Listing {
            default_format,
            headers,
        };
        render_rows(&Format::Default, &listing, rows, &mut out)?;
        println!();
    }
    println!("Build cache usage: {}", human_size(cache.bytes, 3));
    Ok(0)
}

/// The image a container runs, by ID; none for a `--rootfs` one.
fn image_id_of(container: &hull_runtime::ContainerInfo) -> Option<&str> {
    match &container.config.boot.rootfs {
        hull_runtime::RootfsSource::Image(id) => Some(id),
        hull_runtime::RootfsSource::Directory(_) | hull_runtime::RootfsSource::Layers(_) => None,
    }
}
