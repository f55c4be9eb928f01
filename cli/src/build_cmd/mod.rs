//! `hull build` (`image build`): a Dockerfile built into an image with
//! `hull_builder`, its steps shown as BuildKit's progress shows them (a
//! block redrawn in place on a terminal, `tty_progress`; lines elsewhere,
//! `plain_progress`);
//! `hull builder prune`; and the hidden `__build-step` that runs one `RUN`
//! step inside the hull machine for a build on a host whose KVM cannot run
//! hull's guest. `--secret`s are read by `secret_flag`, once, before the
//! build starts.
//!
//! The build itself runs on this host, as `pull` and `import` do: it adds
//! to the image store (layers' whiteouts are device nodes, which the
//! machine's share cannot make). Only its `RUN` steps need VMs: here, or
//! one `hull __build-step` each in the machine, which writes the step's
//! layer tar into a file under the hull root.

use std::collections::BTreeMap;
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use hull_builder::tree::dockerfile_ignore_file;
use hull_builder::{BuildError, BuildOptions, Built, Progress, Secrets, StepOutput, StepRunner};
use hull_image::{ImageRef, ProgressStyle, RegistryOptions, Store, Stream};
use hull_runtime::session::Writers;
use hull_runtime::{Runtime, Stdio, StepOptions};
use serde::{Deserialize, Serialize};

mod output;
mod plain_progress;
mod secret_flag;
mod tty_progress;

use crate::image_cmd::{human_size, registry_options};
use crate::machine::{self, Placement, Route};
use crate::terminal;
use output::Output;
use plain_progress::PlainProgress;
use tty_progress::TtyProgress;

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
    #[arg(long = "build-arg", value_parser = crate::run::parse_env)]
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
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = crate::run::parse_label)]
    labels: Vec<String>,
    /// The network of `RUN` steps: `bridge`/`default` or `none`.
    #[arg(long, default_value = "default")]
    network: String,
    /// The platform to build for (linux/amd64 only).
    #[arg(long)]
    platform: Option<String>,
    /// A secret for `RUN --mount=type=secret`:
    /// `id=ID[,src=PATH][,env=VAR][,type=file|env]`; may be repeated.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Also write the result elsewhere: type=local,dest=DIR (or DIR) for
    /// its files, type=tar,dest=FILE (or -) as a tar, type=docker|oci,
    /// dest=FILE as `hull save` writes it, type=registry to push it.
    #[arg(short = 'o', long = "output", value_name = "TYPE=...,DEST=...", value_parser = Output::parse)]
    outputs: Vec<Output>,
    /// Push the image under each -t name once it is built.
    #[arg(long)]
    push: bool,
    /// Accepted: a built image is in hull's store (buildx's type=docker).
    #[arg(long)]
    load: bool,
    /// Write the image's ID into this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Ignored, with a warning: hull's build cache is its root's own.
    #[arg(long = "cache-from", value_name = "SOURCE")]
    cache_from: Vec<String>,
    /// Ignored, with a warning, as --cache-from.
    #[arg(long = "cache-to", value_name = "DEST")]
    cache_to: Vec<String>,
    /// Accepted for the legacy builder: a step's VM never outlives it.
    #[arg(long = "rm", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    _rm: Option<bool>,
    /// Accepted for the legacy builder, as --rm.
    #[arg(long = "force-rm", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    _force_rm: Option<bool>,
    /// The build context: a directory, or `-` for a tar (or a Dockerfile
    /// alone) on stdin.
    path: String,
}

/// How a build's progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// `tty` on a terminal, `plain` otherwise.
    Auto,
    Plain,
    Tty,
    Quiet,
}

impl ProgressMode {
    /// `auto` decided for stderr, as BuildKit decides it: `tty` on a
    /// terminal that can move the cursor.
    fn on_this_terminal(self) -> ProgressMode {
        let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() && !dumb => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            mode => mode,
        }
    }
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

/// `--build-arg`s as `KEY=VALUE`; a bare `KEY` takes the environment's
/// value, and is left out if it has none (as in Docker).
pub fn parse_build_args(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|arg| match arg.split_once('=') {
            Some((key, value)) => Some((key.to_owned(), value.to_owned())),
            None => std::env::var(arg).ok().map(|value| (arg.clone(), value)),
        })
        .collect()
}

/// `hull build`.
pub fn build(args: BuildArgs, root: &Path) -> Result<u8> {
    let options = options(&args, root)?;
    for ignored in args.cache_from.iter().chain(&args.cache_to) {
        eprintln!("hull: warning: {ignored}: ignored; hull's build cache is its root's own");
    }
    let progress = progress_mode(&args);
    let quiet = progress == ProgressMode::Quiet;
    let built = build_image(&options.build, progress);
    drop(options.temporary);
    let err = match built {
        Ok(built) => {
            deliver(&args, root, &built, &options.build.tags, quiet)?;
            let stdout_taken = args.outputs.iter().any(Output::uses_stdout);
            if quiet && !stdout_taken {
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

/// Writes the image ID into `--iidfile`, and the image where `--output`
/// and `--push` say (`quiet`: pushes print only what they pushed).
fn deliver(
    args: &BuildArgs,
    root: &Path,
    built: &Built,
    tags: &[ImageRef],
    quiet: bool,
) -> Result<()> {
    let id = built.id.to_string();
    if let Some(file) = &args.iidfile {
        fs::write(file, &id)
            .with_context(|| format!("--iidfile {}: cannot write it", file.display()))?;
    }
    let push = args.push.then_some(Output::Image {
        names: Vec::new(),
        push: true,
    });
    let outputs: Vec<&Output> = args.outputs.iter().chain(&push).collect();
    if outputs.is_empty() {
        return Ok(());
    }
    let store = Store::open(root)?;
    let registry = registry_options(root, &[])?;
    for output in outputs {
        output.write(&store, &id, tags, &registry, quiet)?;
    }
    Ok(())
}

/// How `args` say to show the build: `-q` is `--progress quiet`.
fn progress_mode(args: &BuildArgs) -> ProgressMode {
    match args.quiet {
        true => ProgressMode::Quiet,
        false => args.progress,
    }
}

/// Builds an image as `options` say, its steps in VMs here or in the hull
/// machine and shown on stderr as BuildKit shows them in `mode` (`quiet`:
/// only a failing step's output); for `hull build` and for `hull
/// compose`'s services with `build:`.
pub fn build_image(options: &BuildOptions, mode: ProgressMode) -> Result<Built> {
    let progress: Arc<Mutex<dyn Progress>> = match mode.on_this_terminal() {
        ProgressMode::Tty => Arc::new(Mutex::new(TtyProgress::new(
            terminal::size_of_stderr().map_or(80, |size| usize::from(size.cols)),
        ))),
        mode => Arc::new(Mutex::new(PlainProgress::new(mode == ProgressMode::Quiet))),
    };
    let runner = runner(&options.root)?;
    hull_builder::build(options, runner.as_ref(), progress)
}

/// Where a build shown in `mode` pulls its base images from: a pull shows
/// on stderr with the steps (stdout is the image ID's, or an exported
/// tar's), as lines; not in tty mode, whose folded steps bars would break
/// (its FROM step's time shows instead).
pub fn build_registry(root: &Path, mode: ProgressMode) -> Result<RegistryOptions> {
    let mut registry = registry_options(root, &[])?;
    registry.progress = match mode.on_this_terminal() {
        ProgressMode::Plain => ProgressStyle::Lines(Stream::Stderr),
        _ => ProgressStyle::Quiet,
    };
    Ok(registry)
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
            ImageRef::parse_new_name(tag)
                .with_context(|| format!("invalid tag {tag:?}: use NAME[:TAG]"))
        })
        .collect::<Result<Vec<_>>>()?;
    let network = match args.network.as_str() {
        "default" | "bridge" | "host" => true,
        "none" => false,
        other => bail!("--network {other}: a build's steps use default (bridge) or none"),
    };
    let build_args = parse_build_args(&args.build_args);
    let secrets = read_secrets(&args.secrets)?;
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
    let (dockerfile, ignore_file) = match (&args.file, from_stdin) {
        (_, Some(text)) => (text, None),
        (Some(file), None) if file == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the Dockerfile from stdin")?;
            (text, None)
        }
        (Some(file), None) => (read_dockerfile(file)?, Some(dockerfile_ignore_file(file))),
        (None, None) => {
            let path = context.join("Dockerfile");
            if !path.exists() {
                bail!(
                    "the context {} has no Dockerfile: name one with -f",
                    context.display()
                );
            }
            (read_dockerfile(&path)?, Some(dockerfile_ignore_file(&path)))
        }
    };
    Ok(Prepared {
        build: BuildOptions {
            root: root.to_owned(),
            context,
            dockerfile,
            ignore_file,
            tags,
            build_args,
            target: args.target.clone(),
            no_cache: args.no_cache,
            pull: args.pull,
            labels,
            network,
            platform: args.platform.clone(),
            registry: Some(build_registry(root, progress_mode(args))?),
            secrets,
        },
        temporary,
    })
}

/// The Dockerfile at `path`, which must be UTF-8 text.
fn read_dockerfile(path: &Path) -> Result<String> {
    let bytes =
        fs::read(path).with_context(|| format!("cannot read the Dockerfile {}", path.display()))?;
    String::from_utf8(bytes).map_err(|err| {
        anyhow::anyhow!(
            "the Dockerfile {} is not UTF-8 text (at byte {})",
            path.display(),
            err.utf8_error().valid_up_to()
        )
    })
}

/// The `--secret`s, each read now, before any step runs (an empty one is
/// skipped, as buildx skips it).
fn read_secrets(specs: &[String]) -> Result<Secrets> {
    let given = specs
        .iter()
        .filter(|spec| !spec.is_empty())
        .map(|spec| secret_flag::parse(spec, |var| std::env::var_os(var).is_some()))
        .collect::<Result<Vec<_>>>()?;
    Secrets::read(&given, |var| std::env::var_os(var))
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
    /// Where the step's [`StepResult`] goes.
    result: PathBuf,
}

/// How a step in the hull machine ended, as `__build-step` writes it for
/// the build on this host.
#[derive(Debug, Serialize, Deserialize)]
enum StepResult {
    /// Its command ran and exited with this code.
    Exited(u8),
    /// It failed before its command ran (an unknown `USER`, a missing
    /// working directory): why, to end the build with.
    Failed(String),
}

impl StepResult {
    /// The result of running a step: its exit code, or why it could not run.
    fn of(ran: Result<u8>) -> StepResult {
        match ran {
            Ok(code) => StepResult::Exited(code),
            Err(err) => StepResult::Failed(format!("{err:#}")),
        }
    }

    /// The command's exit code, or the step's failure as the error.
    fn exit_code(self) -> Result<u8> {
        match self {
            StepResult::Exited(code) => Ok(code),
            StepResult::Failed(reason) => Err(anyhow!(reason)),
        }
    }
}

/// The exit code of a step in the hull machine, from its result file's
/// text (none when `__build-step` could not write one, exiting with `exit`).
fn machine_step_exit_code(result: std::io::Result<String>, exit: u8) -> Result<u8> {
    let Ok(text) = result else {
        bail!("the build step could not run in the hull machine (exit code {exit})");
    };
    let result: StepResult = serde_json::from_str(&text)
        .with_context(|| format!("the step's result {text:?} is malformed"))?;
    result.exit_code()
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
        // Only its owner may read it: the step's environment may hold
        // secrets (`RUN --mount=type=secret,env=`).
        let bytes = serde_json::to_vec(&request)?;
        fs::File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&request_file)
            .and_then(|mut file| file.write_all(&bytes))
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
        machine_step_exit_code(code, ran?)
    }
}

/// `hull __build-step REQUEST`: one step, in the hull machine.
pub fn build_step(request: &Path, root: &Path) -> Result<u8> {
    let bytes = fs::read(request).with_context(|| format!("cannot read {}", request.display()))?;
    let request: StepRequest = serde_json::from_slice(&bytes).context("a malformed build step")?;
    let mut layer = fs::File::create(&request.layer)
        .with_context(|| format!("cannot write {}", request.layer.display()))?;
    let stdio = Stdio::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
    let ran = Runtime::new(root)
        .run_step(request.step, stdio, &mut layer)
        .map(|outcome| outcome.exit_code())
        .map_err(anyhow::Error::from);
    // A failure goes back to the build on the host, to end it with.
    let result = serde_json::to_vec(&StepResult::of(ran))?;
    fs::write(&request.result, result)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_failed_in_the_hull_machine_ends_the_build_with_its_cause() {
        let cause = anyhow::anyhow!("no matching entries in passwd file")
            .context("unable to find user nosuchuser");
        let written = serde_json::to_string(&StepResult::of(Err(cause))).unwrap();
        let err = machine_step_exit_code(Ok(written), 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nosuchuser: no matching entries in passwd file"
        );
        let written = serde_json::to_string(&StepResult::of(Ok(3))).unwrap();
        assert_eq!(machine_step_exit_code(Ok(written), 0).unwrap(), 3);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = machine_step_exit_code(Err(missing), 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the build step could not run in the hull machine (exit code 1)"
        );
    }

    #[test]
    fn a_dockerfile_that_is_not_text_is_refused_naming_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        fs::write(&path, b"FROM \xff\xfe\n").unwrap();
        let err = read_dockerfile(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "the Dockerfile {} is not UTF-8 text (at byte 5)",
                path.display()
            )
        );
    }
}
