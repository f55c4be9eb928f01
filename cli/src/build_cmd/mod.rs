//! `hull build` (`image build`): a Dockerfile built into an image with
//! `hull_builder`, its steps shown as BuildKit's plain progress shows them;
//! `hull builder prune`; and the hidden `__build-step` that runs one `RUN`
//! step inside the hull machine for a build on a host whose KVM cannot run
//! hull's guest.
//!
//! The build itself runs on this host, as `pull` and `import` do: it adds
//! to the image store (layers' whiteouts are device nodes, which the
//! machine's share cannot make). Only its `RUN` steps need VMs: here, or
//! one `hull __build-step` each in the machine, which writes the step's
//! layer tar into a file under the hull root.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use hull_builder::{BuildError, BuildOptions, Built, Event, Progress, StepOutput, StepRunner};
use hull_image::ImageRef;
use hull_runtime::session::Writers;
use hull_runtime::{Runtime, Stdio, StepOptions};
use serde::{Deserialize, Serialize};

use crate::image_cmd::{human_size, registry_options};
use crate::machine::{self, Placement, Route};

/// `hull build`'s exit code when the build fails, as Docker's.
const BUILD_FAILED: u8 = 1;

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (`name:tag`); may be repeated.
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile (default: PATH/Dockerfile; `-` reads it from stdin).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// A build-time variable, `KEY=VALUE` (or `KEY` to take it from the
    /// environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Take nothing from the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Pull base images even if they are here.
    #[arg(long)]
    pull: bool,
    /// How steps are shown.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// A label of the image, `KEY=VALUE`.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// The network of `RUN` steps: `bridge`/`default` or `none`.
    #[arg(long, default_value = "default")]
    network: String,
    /// The platform to build for (linux/amd64 only).
    #[arg(long)]
    platform: Option<String>,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// The build context: a directory, or `-` for a tar (or a Dockerfile
    /// alone) on stdin.
    path: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressMode {
    Auto,
    Plain,
    Tty,
    Quiet,
}

/// `hull builder SUBCOMMAND`.
#[derive(Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache (cached steps and cache mounts).
    Prune(BuilderPruneArgs),
}

#[derive(Args)]
pub struct BuilderPruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Everything (the build cache is removed whole either way).
    #[arg(short, long)]
    all: bool,
}

/// `hull build`.
pub fn build(args: BuildArgs, root: &Path) -> Result<u8> {
    let options = options(&args, root)?;
    let quiet = args.quiet || args.progress == ProgressMode::Quiet;
    let built = build_image(&options.build, quiet);
    drop(options.temporary);
    let err = match built {
        Ok(built) => {
            if quiet {
                println!("{}", built.id);
            }
            return Ok(0);
        }
        Err(err) => err,
    };
    // A step that failed is the build's failure, said as BuildKit says it.
    match err
        .chain()
        .find_map(|cause| cause.downcast_ref::<BuildError>())
    {
        Some(failed) => {
            eprintln!("ERROR: failed to solve: {failed}");
            Ok(BUILD_FAILED)
        }
        None => Err(err),
    }
}

/// Builds an image as `options` say, its steps in VMs here or in the hull
/// machine and shown on stderr as BuildKit's plain progress shows them
/// (`quiet`: only a failing step's output); for `hull build` and for
/// `hull compose`'s services with `build:`.
pub fn build_image(options: &BuildOptions, quiet: bool) -> Result<Built> {
    let progress: Arc<Mutex<dyn Progress>> = Arc::new(Mutex::new(PlainProgress::new(quiet)));
    let runner = runner(&options.root)?;
    hull_builder::build(options, runner.as_ref(), progress)
}

/// A build's options, and the directory of a context from stdin.
struct Prepared {
    build: BuildOptions,
    /// Removed once the build is over.
    temporary: Option<tempfile::TempDir>,
}

fn options(args: &BuildArgs, root: &Path) -> Result<Prepared> {
    let tags = args
        .tags
        .iter()
        .map(|tag| {
            ImageRef::parse(tag).with_context(|| format!("invalid tag {tag:?}: use NAME[:TAG]"))
        })
        .collect::<Result<Vec<_>>>()?;
    let network = match args.network.as_str() {
        "default" | "bridge" | "host" => true,
        "none" => false,
        other => bail!("--network {other}: a build's steps use default (bridge) or none"),
    };
    let mut build_args = BTreeMap::new();
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some((key, value)) => build_args.insert(key.to_owned(), value.to_owned()),
            // `--build-arg KEY` takes the environment's value, if any.
            None => match std::env::var(arg) {
                Ok(value) => build_args.insert(arg.clone(), value),
                Err(_) => continue,
            },
        };
    }
    let mut labels = BTreeMap::new();
    for label in &args.labels {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        labels.insert(key.to_owned(), value.to_owned());
    }
    let stdin_dockerfile = args.file.as_deref() == Some(Path::new("-"));
    let (context, temporary, from_stdin) = match args.path.as_str() {
        "-" => {
            if stdin_dockerfile {
                bail!("-f - and PATH -: stdin can carry the context or the Dockerfile, not both");
            }
            let (dir, dockerfile) = context_from_stdin(root)?;
            (dir.path().to_owned(), Some(dir), dockerfile)
        }
        path => {
            let dir = PathBuf::from(path);
            if !dir.is_dir() {
                bail!("unable to prepare context: path {path:?} is not a directory");
            }
            (dir, None, None)
        }
    };
    let dockerfile = match (&args.file, from_stdin) {
        (_, Some(text)) => text,
        (Some(file), None) if file == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the Dockerfile from stdin")?;
            text
        }
        (file, None) => {
            let path = file.clone().unwrap_or_else(|| context.join("Dockerfile"));
            fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read the Dockerfile {}: give one with -f",
                    path.display()
                )
            })?
        }
    };
    Ok(Prepared {
        build: BuildOptions {
            root: root.to_owned(),
            context,
            dockerfile,
            tags,
            build_args,
            target: args.target.clone(),
            no_cache: args.no_cache,
            pull: args.pull,
            labels,
            network,
            platform: args.platform.clone(),
            registry: Some(registry_options(root, &[])?),
        },
        temporary,
    })
}

/// The context sent on stdin, in a new directory: a tar is unpacked; other
/// input is a Dockerfile (returned) with an empty context.
fn context_from_stdin(root: &Path) -> Result<(tempfile::TempDir, Option<String>)> {
    let tmp = root.join("builder/tmp");
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(&tmp)
        .context("cannot create a directory for the context")?;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("cannot read the context from stdin")?;
    if hull_builder::is_tar(&input) {
        hull_builder::unpack_context(input.as_slice(), dir.path())?;
        return Ok((dir, None));
    }
    let text = String::from_utf8(input).context("stdin is neither a tar nor a Dockerfile")?;
    Ok((dir, Some(text)))
}

/// The step runner for this host: VMs here, or in the hull machine.
fn runner(root: &Path) -> Result<Box<dyn StepRunner>> {
    Ok(match machine::route(root, Placement::Vm)? {
        Route::Here(_) => Box::new(LocalSteps {
            runtime: Runtime::new(root),
        }),
        Route::Machine { notice } => Box::new(MachineSteps {
            root: root.to_owned(),
            notice,
        }),
    })
}

/// Steps in VMs of this host.
struct LocalSteps {
    runtime: Runtime,
}

impl StepRunner for LocalSteps {
    fn run(&self, step: StepOptions, output: StepOutput, layer: &Path) -> Result<u8> {
        let mut file =
            fs::File::create(layer).with_context(|| format!("cannot write {}", layer.display()))?;
        let stdio = Stdio::new(output.stdout, output.stderr);
        let outcome = self.runtime.run_step(step, stdio, &mut file)?;
        Ok(outcome.exit_code())
    }
}

/// Steps in the hull machine: `hull __build-step` there.
struct MachineSteps {
    root: PathBuf,
    notice: String,
}

/// What `__build-step` runs, in a file beside the layer.
#[derive(Serialize, Deserialize)]
struct StepRequest {
    step: StepOptions,
    /// Where the layer tar goes.
    layer: PathBuf,
    /// Where the command's exit code goes, once it has run.
    result: PathBuf,
}

impl StepRunner for MachineSteps {
    fn run(&self, step: StepOptions, output: StepOutput, layer: &Path) -> Result<u8> {
        let request_file = layer.with_extension("step.json");
        let result = layer.with_extension("code");
        let request = StepRequest {
            step,
            layer: layer.to_owned(),
            result: result.clone(),
        };
        fs::write(&request_file, serde_json::to_vec(&request)?)
            .with_context(|| format!("cannot write {}", request_file.display()))?;
        let argv = vec![
            hull_machine::hull_executable()?,
            "--root".into(),
            self.root.display().to_string(),
            "__build-step".into(),
            request_file.display().to_string(),
        ];
        let writers = Writers::new(output.stdout, output.stderr);
        let ran = machine::run_with_output(&self.root, &self.notice, argv, writers);
        let code = fs::read_to_string(&result);
        let _ = fs::remove_file(&request_file);
        let _ = fs::remove_file(&result);
        let exit = ran?;
        match code {
            Ok(code) => code
                .trim()
                .parse()
                .with_context(|| format!("the step's result {code:?} is no exit code")),
            Err(_) => bail!("the build step could not run in the hull machine (exit code {exit})"),
        }
    }
}

/// `hull __build-step REQUEST`: one step, in the hull machine.
pub fn build_step(request: &Path, root: &Path) -> Result<u8> {
    let bytes = fs::read(request).with_context(|| format!("cannot read {}", request.display()))?;
    let request: StepRequest = serde_json::from_slice(&bytes).context("a malformed build step")?;
    let mut layer = fs::File::create(&request.layer)
        .with_context(|| format!("cannot write {}", request.layer.display()))?;
    let stdio = Stdio::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
    let outcome = Runtime::new(root).run_step(request.step, stdio, &mut layer)?;
    let code = outcome.exit_code();
    fs::write(&request.result, code.to_string())
        .with_context(|| format!("cannot write {}", request.result.display()))?;
    Ok(0)
}

/// `hull builder prune`.
pub fn builder(command: BuilderCommand, root: &Path) -> Result<u8> {
    let BuilderCommand::Prune(args) = command;
    // `-a` is Docker's; here the whole cache goes either way.
    let _ = args.all;
    if !args.force
        && !crate::prompt::confirm(
            "WARNING! This will remove all build cache.\nAre you sure you want to continue?",
        )?
    {
        return Ok(0);
    }
    let reclaimed = hull_builder::prune(root)?;
    println!("Total reclaimed space: {}", human_size(reclaimed, 3));
    Ok(0)
}

/// BuildKit's plain progress: `#N name`, the step's output lines as
/// `#N 1.234 line`, then `#N CACHED` or `#N DONE 1.2s`.
struct PlainProgress {
    quiet: bool,
    out: std::io::Stderr,
    started: BTreeMap<usize, Instant>,
    /// A step's output not yet ended by a newline.
    partial: BTreeMap<usize, Vec<u8>>,
}

impl PlainProgress {
    fn new(quiet: bool) -> PlainProgress {
        PlainProgress {
            quiet,
            out: std::io::stderr(),
            started: BTreeMap::new(),
            partial: BTreeMap::new(),
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn elapsed(&self, id: usize) -> Duration {
        self.started
            .get(&id)
            .map_or(Duration::ZERO, Instant::elapsed)
    }

    fn flush_partial(&mut self, id: usize) {
        if let Some(rest) = self.partial.remove(&id).filter(|rest| !rest.is_empty()) {
            let text = format!(
                "#{id} {:.3} {}",
                self.elapsed(id).as_secs_f64(),
                String::from_utf8_lossy(&rest)
            );
            self.line(&text);
        }
    }
}

impl Progress for PlainProgress {
    fn event(&mut self, event: Event<'_>) {
        // -q shows a failing step's output only, as Docker does.
        if self.quiet && !matches!(event, Event::Failed { .. }) {
            return;
        }
        match event {
            Event::Started { id, name } => {
                self.started.insert(id, Instant::now());
                self.line(&format!("#{id} {name}"));
            }
            Event::Cached { id } => self.line(&format!("#{id} CACHED")),
            Event::Output { id, data } => {
                let mut buffer = self.partial.remove(&id).unwrap_or_default();
                buffer.extend_from_slice(data);
                let elapsed = self.elapsed(id).as_secs_f64();
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line[..end]);
                    self.line(&format!(
                        "#{id} {elapsed:.3} {}",
                        text.trim_end_matches('\r')
                    ));
                }
                self.partial.insert(id, buffer);
            }
            Event::Note { id, text } => self.line(&format!("#{id} {text}")),
            Event::Done { id, elapsed } => {
                self.flush_partial(id);
                self.line(&format!("#{id} DONE {:.1}s", elapsed.as_secs_f64()));
            }
            Event::Failed { id, error } => {
                self.flush_partial(id);
                self.line(&format!("#{id} ERROR: {error}"));
            }
        }
        let _ = self.out.flush();
    }
}
