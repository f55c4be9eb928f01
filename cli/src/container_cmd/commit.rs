//! `hull commit`: a new image from a container's changes, stored
//! on this host. On a host whose VMs run in the hull machine, the
//! container's layer is taken there (`hull __container-layer`, into a file
//! under the hull root, which the machine shares) and stored here.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{ArgAction, Args};
use hull_builder::changes::Changes;
use hull_image::ImageRef;
use hull_runtime::session::Writers;
use hull_runtime::{CommitOptions, Runtime};

use crate::machine::{self, Placement, Route};

#[derive(Args)]
pub struct CommitArgs {
    /// A Dockerfile instruction to apply to the image's config (CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR,
    /// STOPSIGNAL, HEALTHCHECK).
    #[arg(short, long = "change", value_name = "CHANGE")]
    changes: Vec<String>,
    /// The history entry's comment.
    #[arg(short, long, default_value = "")]
    message: String,
    /// The image's author.
    #[arg(short, long, default_value = "")]
    author: String,
    /// Freeze the container's processes while its changes are read.
    #[arg(
        short,
        long,
        action = ArgAction::Set,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pause: bool,
    /// Container name or ID.
    container: String,
    /// A name for the image: REPOSITORY[:TAG].
    repository: Option<String>,
}

impl CommitArgs {
    /// The container it commits.
    pub fn container(&self) -> &str {
        &self.container
    }
}

/// `hull __container-layer`'s arguments.
#[derive(Args)]
pub struct ContainerLayerArgs {
    /// Freeze the container's processes meanwhile.
    #[arg(long)]
    pause: bool,
    /// Container name or ID.
    container: String,
    /// Where the layer tar goes.
    layer: PathBuf,
}

pub fn commit(args: CommitArgs, root: &Path) -> Result<u8> {
    let changes = Changes::parse(&args.changes)?;
    let reference = args
        .repository
        .as_deref()
        .map(ImageRef::parse_new_name)
        .transpose()?;
    let runtime = Runtime::new(root);
    let change = |config: &mut serde_json::Map<String, serde_json::Value>| changes.apply(config);
    let options = CommitOptions {
        reference,
        comment: args.message,
        author: args.author,
        pause: args.pause,
        change: &change,
    };
    // A stopped container's layer is read by a VM.
    let id = match machine::route(root, Placement::Vm)? {
        Route::Here(_machine_down) => runtime.commit(&args.container, &options)?,
        Route::Machine { notice } => {
            let layer = tempfile::Builder::new()
                .prefix("commit-")
                .suffix(".tar")
                .tempfile_in(root)
                .with_context(|| format!("cannot make a file under {}", root.display()))?;
            let code = layer_in_machine(root, &notice, &args.container, args.pause, layer.path())?;
            if code != 0 {
                // The machine's hull said why.
                return Ok(code);
            }
            let mut reader = BufReader::new(File::open(layer.path())?);
            runtime.commit_layer(&args.container, &options, &mut reader)?
        }
    };
    println!("{id}");
    Ok(0)
}

/// Runs `hull __container-layer` in the hull machine; its exit code.
fn layer_in_machine(
    root: &Path,
    notice: &str,
    container: &str,
    pause: bool,
    layer: &Path,
) -> Result<u8> {
    let mut argv = vec![
        hull_machine::hull_executable()?,
        "--root".into(),
        root.display().to_string(),
        "__container-layer".into(),
    ];
    if pause {
        argv.push("--pause".into());
    }
    argv.extend([
        "--".into(),
        container.to_owned(),
        layer.display().to_string(),
    ]);
    let output = Writers::new(Box::new(std::io::sink()), Box::new(std::io::stderr()));
    machine::run_with_output(root, notice, argv, output)
}

/// `hull __container-layer`: a container's writable layer into a file, in
/// the hull machine, for `commit` on the host.
pub fn container_layer(args: ContainerLayerArgs, runtime: &Runtime) -> Result<u8> {
    let mut file = File::create(&args.layer)
        .with_context(|| format!("cannot write {}", args.layer.display()))?;
    runtime.write_layer(&args.container, args.pause, &mut file)?;
    Ok(0)
}
