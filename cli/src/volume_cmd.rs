//! `hull volume`: the volumes containers mount, made, listed, inspected,
//! removed and pruned as with Docker.

use anyhow::Result;
use clap::{Args, Subcommand};
use hull_format::{labels_field, render_rows, Format, Listing};
use hull_runtime::{parse_volume_name, CreateVolumeOptions, Runtime, VolumeInfo};
use serde_json::{json, Value};

use crate::container_cmd::{for_each_name, inspect_each};
use crate::filters::{all_hold, LabelFilter, ListFilter};
use crate::prune_report::PruneReport;
use crate::run::{label_pair, parse_label};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a new anonymous one without a name); prints its
    /// name.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON.
    Inspect(InspectArgs),
    /// Remove volumes no container uses.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove the anonymous volumes no container uses (-a: every unused
    /// volume).
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The volume's name (or as --name).
    #[arg(value_parser = parse_volume_name, conflicts_with = "name_flag")]
    name: Option<String>,
    #[arg(long = "name", value_parser = parse_volume_name, hide = true)]
    name_flag: Option<String>,
    /// Set a label on the volume: KEY=VALUE (or KEY).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<String>,
    /// The volume driver: only `local`, volumes in hull's root or bound to
    /// a host directory (`-o`).
    #[arg(short = 'd', long, default_value = "local", value_parser = ["local"])]
    driver: String,
    /// A local driver option: `-o type=none -o o=bind -o device=/PATH` makes
    /// the volume that host directory.
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE", value_parser = parse_option)]
    options: Vec<(String, String)>,
}

/// `KEY=VALUE` of `volume create -o` (the value may hold `=` itself).
fn parse_option(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "{value:?} is not KEY=VALUE, such as device=/srv/data"
        )),
    }
}

#[derive(Args)]
pub struct LsArgs {
    /// Print only volume names.
    #[arg(short, long)]
    quiet: bool,
    /// Show only volumes that match: dangling=true|false, name=PART,
    /// label=KEY[=VALUE], driver=local.
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    filter: Vec<Filter>,
    /// `table` (default), `json` (one object per line), or a Go template.
    #[arg(long, default_value = "")]
    format: Format,
}

#[derive(Args)]
pub struct InspectArgs {
    /// A Go template for each volume, e.g. `{{.Mountpoint}}`.
    #[arg(short, long, value_parser = crate::container_cmd::parse_format)]
    format: Option<String>,
    /// Volume names.
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// No error for a volume that is not there.
    #[arg(short, long)]
    force: bool,
    /// Volume names.
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Every volume no container uses, named ones too.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

impl PruneArgs {
    /// Whether it goes ahead without asking.
    pub fn force(&self) -> bool {
        self.force
    }
}

#[derive(Clone, Debug)]
pub enum Filter {
    Dangling(bool),
    Name(String),
    Label(LabelFilter),
    Driver(String),
}

impl ListFilter for Filter {
    fn is_label(&self) -> bool {
        matches!(self, Filter::Label(_))
    }
}

impl Filter {
    fn matches(&self, info: &VolumeInfo) -> bool {
        match self {
            Filter::Dangling(dangling) => info.users.is_empty() == *dangling,
            Filter::Name(part) => info.volume.name.contains(part.as_str()),
            Filter::Label(label) => label.matches(&info.volume.labels),
            Filter::Driver(driver) => driver == "local",
        }
    }
}

fn parse_filter(value: &str) -> Result<Filter, String> {
    let invalid = || {
        format!(
            "{value:?}: filters are dangling=true|false, name=PART, label=KEY[=VALUE], \
             driver=local"
        )
    };
    let (key, wanted) = value.split_once('=').ok_or_else(invalid)?;
    match key {
        "dangling" => match wanted {
            "true" | "1" => Ok(Filter::Dangling(true)),
            "false" | "0" => Ok(Filter::Dangling(false)),
            _ => Err(invalid()),
        },
        "name" => Ok(Filter::Name(wanted.to_owned())),
        "label" => Ok(Filter::Label(LabelFilter::parse(wanted))),
        "driver" => Ok(Filter::Driver(wanted.to_owned())),
        _ => Err(invalid()),
    }
}

/// `docker volume ls`'s default table.
const LISTING: Listing = Listing {
    default_format: "table {{.Driver}}\t{{.Name}}",
    headers: &[
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Scope", "SCOPE"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
    ],
};

/// Docker's questions before `volume prune`.
const PRUNE_WARNING: &str =
    "WARNING! This will remove anonymous local volumes not used by at least one container.";
const PRUNE_ALL_WARNING: &str =
    "WARNING! This will remove all local volumes not used by at least one container.";

pub fn volume(command: VolumeCommand, runtime: &Runtime) -> Result<u8> {
    match command {
        VolumeCommand::Create(args) => {
            let name = args.name.or(args.name_flag);
            let options = CreateVolumeOptions {
                labels: args.labels.iter().map(|label| label_pair(label)).collect(),
                driver_options: args.options.into_iter().collect(),
            };
            println!("{}", runtime.create_volume(name.as_deref(), options)?.name);
        }
        VolumeCommand::Ls(args) => {
            let volumes: Vec<VolumeInfo> = runtime
                .list_volumes()?
                .into_iter()
                .filter(|info| all_hold(&args.filter, |filter| filter.matches(info)))
                .collect();
            if args.quiet {
                volumes
                    .iter()
                    .for_each(|info| println!("{}", info.volume.name));
                return Ok(0);
            }
            let rows: Vec<Value> = volumes.iter().map(row).collect();
            render_rows(&args.format, &LISTING, &rows, &mut std::io::stdout())?;
        }
        VolumeCommand::Inspect(args) => {
            return inspect_each(&args.volumes, args.format.as_deref(), |name| {
                Ok(describe(&runtime.inspect_volume(name)?))
            });
        }
        VolumeCommand::Rm(args) => {
            return Ok(for_each_name(&args.volumes, |name| {
                runtime.remove_volume(name, args.force)?;
                println!("{name}");
                Ok(())
            }));
        }
        VolumeCommand::Prune(args) => {
            let question = match args.all {
                true => PRUNE_ALL_WARNING,
                false => PRUNE_WARNING,
            };
            if args.force || crate::prompt::confirm(question)? {
                print!("{}", prune(runtime, args.all)?.with_total());
            }
        }
    }
    Ok(0)
}

/// `hull volume prune`, and its part of `hull system prune --volumes`:
/// what Docker prints of it.
pub fn prune(runtime: &Runtime, all: bool) -> Result<PruneReport> {
    let pruned = runtime.prune_volumes(all)?;
    Ok(PruneReport::new(
        "Deleted Volumes:",
        &pruned.names,
        pruned.bytes,
    ))
}

/// A volume as a `volume ls` row.
fn row(info: &VolumeInfo) -> Value {
    let volume = &info.volume;
    json!({
        "Driver": "local",
        "Name": volume.name,
        "Mountpoint": volume.mountpoint,
        "Scope": "local",
        "Labels": labels_field(&info.volume.labels),
        "Links": info.users.len().to_string(),
        "CreatedAt": volume.created,
        // Docker's listing computes no sizes either.
        "Size": "N/A",
    })
}

/// A volume as `docker volume inspect` shows it (and `UsedBy`, hull's:
/// the containers that mount it).
pub fn describe(info: &VolumeInfo) -> Value {
    let volume = &info.volume;
    json!({
        "CreatedAt": volume.created,
        "Driver": "local",
        "Labels": volume.labels,
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Options": volume.options,
        "Scope": "local",
        "UsedBy": info.users,
    })
}
