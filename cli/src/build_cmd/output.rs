//! Where a build's result goes besides hull's image store, as buildx's
//! `--output` (`-o`), `--push` and `--iidfile` say: the image's files into
//! a directory or a tar (a CI job's artifacts, built in VMs), the image as
//! `docker save` writes it, or to its registry.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hull_image::{ImageRef, RegistryOptions, Store};

use crate::image_cmd::push_image;

/// One `--output`: `type=local,dest=DIR`, `type=tar,dest=FILE`,
/// `type=docker|oci,dest=FILE`, `type=image|docker` (the store),
/// `type=registry` (a push); `DIR` alone is `local`, `-` a tar on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Only the image store (where every build's image goes).
    Store,
    /// The image's files, written into a directory.
    Directory(PathBuf),
    /// The image's files as one tar.
    Tar(Destination),
    /// The image as `hull save` writes it (docker-archive and OCI layout).
    Archive(Destination),
    /// The image pushed under each of its tags.
    Registry,
}

/// Where a tar goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
    Stdout,
}

impl Destination {
    fn parse(dest: &str) -> Destination {
        match dest {
            "-" => Destination::Stdout,
            path => Destination::File(PathBuf::from(path)),
        }
    }

    /// Opens it for writing (a file made or truncated).
    fn open(&self) -> Result<Box<dyn Write>> {
        Ok(match self {
            Destination::Stdout => Box::new(io::stdout().lock()),
            Destination::File(path) => Box::new(
                File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
            ),
        })
    }
}

impl Output {
    /// Reads one `--output` value.
    pub fn parse(value: &str) -> Result<Output, String> {
        if !value.contains('=') {
            return Ok(match value {
                "-" => Output::Tar(Destination::Stdout),
                dir => Output::Directory(PathBuf::from(dir)),
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut push = false;
        for field in value.split(',') {
            let (key, setting) = field
                .split_once('=')
                .ok_or_else(|| format!("{field:?}: expected KEY=VALUE"))?;
            match key {
                "type" => kind = Some(setting),
                "dest" => dest = Some(setting),
                "push" => push = setting == "true",
                // Options of the image exporters hull's store has no use
                // for (`name` is -t's, `compression` the push's).
                "name" | "compression" | "oci-mediatypes" | "tar" => {}
                other => return Err(format!("{other:?} is not an output option hull has")),
            }
        }
        let needs_dest = |kind: &str| {
            dest.ok_or_else(|| format!("type={kind} needs dest=PATH (or dest=- for stdout)"))
        };
        match kind.unwrap_or("local") {
            "local" => Ok(Output::Directory(PathBuf::from(needs_dest("local")?))),
            "tar" => Ok(Output::Tar(Destination::parse(needs_dest("tar")?))),
            "docker" | "oci" if dest.is_some() => {
                Ok(Output::Archive(Destination::parse(dest.unwrap_or("-"))))
            }
            "image" | "docker" if push => Ok(Output::Registry),
            "image" | "docker" => Ok(Output::Store),
            "registry" => Ok(Output::Registry),
            other => Err(format!(
                "type={other} is not an output hull has (local, tar, docker, oci, image, registry)"
            )),
        }
    }

    /// Writes the image `id`, built as `tags`, where this output says
    /// (`quiet`: a push prints only what it pushed).
    pub fn write(
        &self,
        store: &Store,
        id: &str,
        tags: &[ImageRef],
        registry: &RegistryOptions,
        quiet: bool,
    ) -> Result<()> {
        match self {
            Output::Store => Ok(()),
            Output::Directory(dir) => write_directory(store, id, dir),
            Output::Tar(dest) => {
                let image = store.resolve(id)?;
                let mut out = dest.open()?;
                hull_image::flatten(&image.layers, &mut out)?;
                out.flush().context("cannot write the image's files")
            }
            Output::Archive(dest) => {
                let names: Vec<String> = match tags.is_empty() {
                    true => vec![id.to_owned()],
                    false => tags.iter().map(ToString::to_string).collect(),
                };
                let mut out = dest.open()?;
                hull_image::save(store, &names, &mut out)?;
                out.flush().context("cannot write the image archive")
            }
            Output::Registry => {
                if tags.is_empty() {
                    bail!("pushing a build needs a name to push it as: add -t REGISTRY/NAME[:TAG]");
                }
                for tag in tags {
                    push_image(store, tag, registry, quiet)?;
                }
                Ok(())
            }
        }
    }

    /// Whether it writes on stdout (where the image ID would go).
    pub fn uses_stdout(&self) -> bool {
        matches!(
            self,
            Output::Tar(Destination::Stdout) | Output::Archive(Destination::Stdout)
        )
    }
}

/// The image `id`'s files written into `dir` (made if missing).
fn write_directory(store: &Store, id: &str, dir: &Path) -> Result<()> {
    let image = store.resolve(id)?;
    fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    hull_image::flatten_into(&image.layers, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_read_as_buildx_reads_them() {
        let dir = |path: &str| Output::Directory(PathBuf::from(path));
        assert_eq!(Output::parse("out"), Ok(dir("out")));
        assert_eq!(Output::parse("type=local,dest=out"), Ok(dir("out")));
        assert_eq!(Output::parse("dest=out"), Ok(dir("out")));
        assert_eq!(Output::parse("-"), Ok(Output::Tar(Destination::Stdout)));
        assert_eq!(
            Output::parse("type=tar,dest=rootfs.tar"),
            Ok(Output::Tar(Destination::File("rootfs.tar".into())))
        );
        assert_eq!(
            Output::parse("type=docker,dest=-"),
            Ok(Output::Archive(Destination::Stdout))
        );
        assert_eq!(
            Output::parse("type=oci,dest=img.tar"),
            Ok(Output::Archive(Destination::File("img.tar".into())))
        );
        assert_eq!(Output::parse("type=docker"), Ok(Output::Store));
        assert_eq!(
            Output::parse("type=image,name=x,push=true"),
            Ok(Output::Registry)
        );
        assert_eq!(Output::parse("type=registry"), Ok(Output::Registry));
        for (bad, reason) in [
            ("type=local", "type=local needs dest=PATH"),
            ("type=cacheonly", "not an output hull has"),
            (
                "type=local,dest=x,colour=red",
                "\"colour\" is not an output option",
            ),
            ("type=local,dest", "\"dest\": expected KEY=VALUE"),
        ] {
            let err = Output::parse(bad).unwrap_err();
            assert!(err.contains(reason), "{bad}: {err}");
        }
        assert!(Output::Tar(Destination::Stdout).uses_stdout());
        assert!(!dir("out").uses_stdout());
    }
}
