//! hull's image builder: a Dockerfile and its context made into an image
//! in the store, every `RUN` in a microVM of its own.
//!
//! The builder reads the Dockerfile ([`dockerfile`], on the
//! `parse-dockerfile` crate, with BuildKit's word rules in [`words`]),
//! builds the stages the target needs, and stores the result as a normal
//! image. `COPY`, `ADD` and `WORKDIR` make their layers on this host from
//! the context ([`tree`], never followed outside its root) or other
//! stages; a `RUN` goes to a [`StepRunner`]: the runtime's
//! [`run_step`](hull_runtime::Runtime::run_step) boots a VM on the step's
//! parent layers and brings back what the command changed as a layer tar.
//! A front end provides the runner (on a host whose KVM cannot run hull's
//! guest, one that runs the step in the hull machine) and shows the
//! [`progress`] events.
//!
//! Every instruction's result is cached in the image store (see
//! [`hull_image::CacheEntry`]); cache mounts persist under
//! `<root>/builder/cache-mounts/`. The build's [`Secrets`] reach a `RUN`
//! that mounts them as files written under `<root>/builder/tmp/` for the
//! step only, or as variables; never its key, layer or the image.

mod build;
mod cache_mount;
pub mod changes;
mod chmod;
mod context_view;
mod copy;
pub mod dockerfile;
mod json_forms;
mod metadata;
mod pattern;
pub mod progress;
mod remote;
mod run;
mod run_heredocs;
mod secret_mount;
mod secrets;
mod state;
pub mod tree;
mod users;
pub mod words;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hull_image::{Digest, ImageRef, RegistryOptions};
use hull_runtime::StepOptions;

pub use pattern::match_component as path_match;
pub use progress::{Event, Progress, SharedProgress};
pub use secrets::{SecretSource, Secrets};

/// What to build.
pub struct BuildOptions {
    /// The hull root (image store, cache mounts).
    pub root: PathBuf,
    /// The build context: a directory.
    pub context: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The Dockerfile's own ignore file (`NAME.dockerignore` beside it),
    /// which, if it exists, takes the place of the context's
    /// `.dockerignore`, as BuildKit's does.
    pub ignore_file: Option<PathBuf>,
    /// Names for the image.
    pub tags: Vec<ImageRef>,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (default: the last).
    pub target: Option<String>,
    /// Run every step, taking nothing from the cache.
    pub no_cache: bool,
    /// Pull base images even if they are here.
    pub pull: bool,
    /// `--label`s of the image.
    pub labels: BTreeMap<String, String>,
    /// `RUN` steps on the default network (else loopback only).
    pub network: bool,
    /// `--platform`: only linux/amd64 is built.
    pub platform: Option<String>,
    /// How to pull missing base images (`None`: they must be here).
    pub registry: Option<RegistryOptions>,
    /// `--secret`s, for `RUN --mount=type=secret`.
    pub secrets: Secrets,
}

/// What a build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The image's ID.
    pub id: Digest,
}

/// A build's errors that a front end tells apart.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A `RUN` ended with a non-zero code.
    #[error("{step}: process \"{command}\" did not complete successfully: exit code: {code}")]
    StepFailed {
        /// The instruction.
        step: String,
        /// The command line it ran.
        command: String,
        /// Its exit code.
        code: u8,
    },
}

/// Where a `RUN` step's output goes.
pub struct StepOutput {
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

/// Runs `RUN` steps.
pub trait StepRunner {
    /// Runs `step` with `output`, and once its command has exited writes
    /// what it changed, a layer tar, into the file `layer` (which exists,
    /// empty, under the hull root). Returns the command's exit code as a
    /// shell reports it (128+N for signal N); an error if it could not run.
    fn run(&self, step: StepOptions, output: StepOutput, layer: &Path) -> Result<u8>;
}

/// Builds the image `options` describe, reporting to `progress`.
pub fn build(
    options: &BuildOptions,
    runner: &dyn StepRunner,
    progress: SharedProgress,
) -> Result<Built> {
    build::Build::new(options, runner, progress)?.run()
}

/// Unpacks a build context sent as a tar stream (plain or gzip) into the
/// empty directory `dir`: regular files, directories and links only,
/// nothing outside `dir`.
pub fn unpack_context(input: impl Read, dir: &Path) -> Result<()> {
    let mut input = std::io::BufReader::new(input);
    let head = std::io::BufRead::fill_buf(&mut input)?;
    let reader: Box<dyn Read> = match head.starts_with(&[0x1f, 0x8b]) {
        true => Box::new(flate2::read::GzDecoder::new(input)),
        false => Box::new(input),
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    for entry in archive.entries().context("cannot read the context tar")? {
        let mut entry = entry.context("corrupt context tar")?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink() || kind.is_hard_link()) {
            continue;
        }
        entry
            .unpack_in(dir)
            .context("cannot unpack the context tar")?;
    }
    Ok(())
}

/// Whether `head` (the first bytes of stdin) looks like a tar stream
/// rather than a Dockerfile: gzip, or the ustar magic.
pub fn is_tar(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// The build cache of the hull root `root`: cached steps and the layers
/// they name, with the cache mounts' bytes counted as the cache's own.
pub fn cache_usage(root: &Path) -> Result<hull_image::CacheUsage> {
    let mut usage = hull_image::Store::open(root)?.build_cache_usage()?;
    let mounts = hull_runtime::fsutil::disk_usage(&cache_mounts_dir(root));
    usage.bytes += mounts;
    usage.exclusive_bytes += mounts;
    Ok(usage)
}

/// Removes the build cache of the hull root `root`: every cached step, the
/// layers only they kept, and the cache mounts. Returns the bytes freed.
pub fn prune(root: &Path) -> Result<u64> {
    let store = hull_image::Store::open(root)?;
    let pruned = store.prune_build_cache()?;
    let mounts = cache_mounts_dir(root);
    let mount_bytes = hull_runtime::fsutil::disk_usage(&mounts);
    match std::fs::remove_dir_all(&mounts) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot remove {}", mounts.display())),
    }
    Ok(pruned.reclaimed + mount_bytes)
}

/// Where cache mounts (`RUN --mount=type=cache`) persist between builds.
pub fn cache_mounts_dir(root: &Path) -> PathBuf {
    root.join("builder/cache-mounts")
}
