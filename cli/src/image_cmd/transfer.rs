//! `hull pull`, `hull push`, `hull import`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use hull_builder::changes::Changes;
use hull_image::{ImageRef, ImportOptions, ProgressStyle, Pulled, RegistryOptions, Store, Stream};

use super::{familiar_string, registry_options};

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
    /// Pull every tag of the repository.
    #[arg(short, long)]
    all_tags: bool,
    /// The image's platform: linux/amd64, the only one hull runs (checked
    /// by its parser; nothing else to choose).
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = super::parse_platform)]
    _platform: Option<String>,
}

/// Pulls as `docker pull` does: the progress and status of
/// [`pull_image`], then the image's full name on its own line, which is
/// all that `-q` prints.
pub fn pull(args: PullArgs, root: &Path) -> Result<u8> {
    let reference = ImageRef::parse(&args.reference)?;
    let store = Store::open(root)?;
    let mut options = registry_options(root, &args.insecure)?;
    if args.quiet {
        options.progress = ProgressStyle::Quiet;
    }
    if args.all_tags {
        let repository = untagged(&reference, &args.reference)?;
        for tag in hull_image::list_tags(&repository, &options)? {
            let tagged = ImageRef::parse(&format!("{}:{tag}", repository.name()))?;
            pull_image(&store, &tagged, &options)?;
        }
        println!("{}", repository.name());
        return Ok(0);
    }
    if names_no_version(&args.reference) {
        options.progress.message("Using default tag: latest");
    }
    pull_image(&store, &reference, &options)?;
    println!("{reference}");
    Ok(0)
}

/// `reference` for `--all-tags`, which takes a repository: with neither
/// tag nor digest, as typed.
fn untagged(reference: &ImageRef, typed: &str) -> Result<ImageRef> {
    if !names_no_version(typed) {
        anyhow::bail!(
            "tag can't be used with --all-tags/-a: give the repository, {}",
            reference.familiar_name()
        );
    }
    Ok(reference.clone())
}

/// Pulls `reference` into `store` with Docker's report, where `options`
/// shows progress: `TAG: Pulling from REPOSITORY` once its registry has
/// its manifest, a line or bar per layer, then `Digest: sha256:...` and
/// `Status: ...`, as `docker pull` reports on stdout and `docker run` on
/// stderr.
pub fn pull_image(
    store: &Store,
    reference: &ImageRef,
    options: &RegistryOptions,
) -> Result<Pulled> {
    let before = store.find(&reference.to_string())?.map(|image| image.id);
    let pulled = hull_image::pull(store, reference, options)?;
    let name = familiar_string(reference);
    super::image_event(store, "pull", &name, &reference.familiar_name());
    // As in Docker, a name that moved to another image is news too.
    let newer = pulled.downloaded || before.as_ref() != Some(&pulled.id);
    options
        .progress
        .message(&pull_status(reference, &pulled, newer));
    Ok(pulled)
}

/// Docker's last lines of a pull: the manifest's digest, and whether a
/// newer image came (else the one here was up to date).
fn pull_status(reference: &ImageRef, pulled: &Pulled, newer: bool) -> String {
    let status = if newer {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    format!(
        "Digest: {}\nStatus: {status} {}",
        pulled.digest,
        familiar_string(reference)
    )
}

/// Whether `reference`, as typed, has neither tag nor digest, which Docker
/// points out (`Using default tag: latest`).
fn names_no_version(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    !reference.contains('@') && !last.contains(':')
}

#[derive(Args)]
pub struct PushArgs {
    /// Local image to push, named for its registry: REGISTRY/NAME[:TAG].
    reference: String,
    /// Talk plain HTTP to this registry (host[:port]); repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure: Vec<String>,
    /// Print only the pushed reference.
    #[arg(short, long)]
    quiet: bool,
    /// Push every local tag of the repository.
    #[arg(short, long)]
    all_tags: bool,
}

/// Pushes as `docker push` does.
pub fn push(args: PushArgs, root: &Path) -> Result<u8> {
    let reference = ImageRef::parse(&args.reference)?;
    let store = Store::open(root)?;
    let options = registry_options(root, &args.insecure)?;
    if !args.all_tags {
        push_image(&store, &reference, &options, args.quiet, Stream::Stdout)?;
        return Ok(0);
    }
    let repository = untagged(&reference, &args.reference)?;
    let prefix = format!("{}:", repository.name());
    let mut tagged: Vec<ImageRef> = Vec::new();
    for image in store.images()? {
        for tag in image
            .repo_tags
            .iter()
            .filter(|tag| tag.starts_with(&prefix))
        {
            tagged.push(ImageRef::parse(tag)?);
        }
    }
    if tagged.is_empty() {
        anyhow::bail!(
            "no such image: no tag of {} here",
            repository.familiar_name()
        );
    }
    tagged.sort_by_key(ToString::to_string);
    for reference in &tagged {
        push_image(&store, reference, &options, args.quiet, Stream::Stdout)?;
    }
    Ok(0)
}

/// Pushes `reference` from `store` as `docker push` does, on `stream`:
/// the repository, the layers' progress, then `TAG: digest: sha256:...
/// size: N`; `quiet`: only the reference.
pub fn push_image(
    store: &Store,
    reference: &ImageRef,
    options: &RegistryOptions,
    quiet: bool,
    stream: Stream,
) -> Result<()> {
    let mut options = options.clone();
    let mut out: Box<dyn Write> = match stream {
        Stream::Stdout => Box::new(std::io::stdout()),
        Stream::Stderr => Box::new(std::io::stderr()),
    };
    match quiet {
        true => options.progress = ProgressStyle::Quiet,
        false => {
            options.progress = ProgressStyle::on(stream);
            writeln!(out, "The push refers to repository [{}]", reference.name())?;
        }
    }
    let pushed = hull_image::push(store, reference, &options)?;
    let name = familiar_string(reference);
    super::image_event(store, "push", &name, &reference.familiar_name());
    match quiet {
        true => writeln!(out, "{reference}")?,
        false => writeln!(
            out,
            "{}: digest: {} size: {}",
            reference.tag().unwrap_or("latest"),
            pushed.digest,
            pushed.size
        )?,
    }
    Ok(())
}

#[derive(Args)]
pub struct ImportArgs {
    /// A Dockerfile instruction to apply to the image's config (CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR,
    /// STOPSIGNAL, HEALTHCHECK).
    #[arg(short, long = "change", value_name = "CHANGE")]
    changes: Vec<String>,
    /// The image's comment, in its config and history (default: `Imported
    /// from -`, or from the URL).
    #[arg(short, long, default_value = "")]
    message: String,
    /// The image's platform: linux/amd64, the only one hull runs (checked
    /// by its parser; nothing else to choose).
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = super::parse_platform)]
    _platform: Option<String>,
    /// Root filesystem tar (plain, or gzip, zstd, xz or bzip2): a file, an
    /// http(s) URL, or `-` for stdin.
    source: String,
    /// Name for the new image: NAME[:TAG].
    reference: Option<String>,
}

/// Imports as `docker import` does: the new image's ID on stdout.
pub fn import(args: ImportArgs, root: &Path) -> Result<u8> {
    let reference = args
        .reference
        .as_deref()
        .map(ImageRef::parse_new_name)
        .transpose()?;
    let changes = Changes::parse(&args.changes)?;
    let store = Store::open(root)?;
    let input: Box<dyn Read> = match args.source.as_str() {
        "-" => Box::new(super::archive_stdin(
            "import",
            "hull import - NAME < rootfs.tar",
        )?),
        url if is_url(url) => Box::new(download(&store, root, url)?),
        path => Box::new(super::open_archive(Path::new(path))?),
    };
    let change = |config: &mut serde_json::Map<String, serde_json::Value>| changes.apply(config);
    // Docker's CLI sends a file's bytes as it sends stdin's: its image says
    // `Imported from -`; a URL is named.
    let source = match is_url(&args.source) {
        true => args.source.as_str(),
        false => "-",
    };
    let options = ImportOptions {
        tag: reference.as_ref(),
        message: &args.message,
        source,
        change: &change,
    };
    let id = hull_image::import_tar(&store, input, &options)
        .with_context(|| format!("cannot import {}", args.source))?;
    // As Docker's: imported, then tagged.
    super::image_event(&store, "import", id.as_str(), id.as_str());
    if let Some(reference) = &reference {
        super::image_event(&store, "tag", id.as_str(), &familiar_string(reference));
    }
    println!("{id}");
    Ok(0)
}

/// Whether `source` is one `import` downloads.
fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The file at `url`, downloaded into an unnamed file under the hull root
/// (held to the store's layer size limit), ready to be read from its start.
fn download(store: &Store, root: &Path, url: &str) -> Result<File> {
    let mut file = tempfile::tempfile_in(root)
        .with_context(|| format!("cannot make a file under {}", root.display()))?;
    hull_image::download(url, &mut file, store.limits())?;
    file.rewind()
        .with_context(|| format!("cannot read what {url} gave"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pull whose ID and manifest digest are `sha256:aaa...`.
    fn pulled() -> Pulled {
        let digest = hull_image::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        Pulled {
            id: digest.clone(),
            digest,
            downloaded: true,
        }
    }

    #[test]
    fn a_pull_ends_as_dockers_does() {
        let alpine = ImageRef::parse("alpine").unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            pull_status(&alpine, &pulled(), true),
            format!("Digest: {digest}\nStatus: Downloaded newer image for alpine:latest")
        );
        let local = ImageRef::parse("localhost:5000/app:v1").unwrap();
        assert_eq!(
            pull_status(&local, &pulled(), false),
            format!("Digest: {digest}\nStatus: Image is up to date for localhost:5000/app:v1")
        );
    }

    #[test]
    fn only_a_bare_name_takes_the_default_tag() {
        for bare in ["alpine", "me/app", "localhost:5000/app"] {
            assert!(names_no_version(bare), "{bare}");
        }
        for versioned in ["alpine:3", "localhost:5000/app:v1", "alpine@sha256:00"] {
            assert!(!names_no_version(versioned), "{versioned}");
        }
    }
}
