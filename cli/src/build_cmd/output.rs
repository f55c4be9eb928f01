//! Where a build's result goes besides hull's image store, as buildx's
//! `--output` (`-o`), `--push` and `--iidfile` say: the image's files into
//! a directory or a tar (a CI job's artifacts, built in VMs), the image as
//! `docker save` writes it, or to its registry.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hull_image::{ImageRef, RegistryOptions, Store, Stream};

use crate::image_cmd::push_image;

/// One `--output`: `type=local,dest=DIR`, `type=tar,dest=FILE`,
/// `type=docker|oci,dest=FILE`, `type=image|docker[,name=N][,push=true]`
/// (the store), `type=registry[,name=N]` (a push); `DIR` alone is
/// `local`, `-` a tar on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The image store (where every build's image goes), under `names`
    /// too (none: the -t names), and pushed under them if `push`.
    Image { names: Vec<String>, push: bool },
    /// The image's files, written into a directory.
    Directory(PathBuf),
    /// The image's files as one tar.
    Tar(Destination),
    /// The image as `hull save` writes it (docker-archive and OCI layout).
    Archive(Destination),
}

/// Where a tar goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
    Stdout,
}

impl Destination {
    fn parse(dest: &str) -> Result<Destination, String> {
        match dest {
            "" => Err("dest= is empty: give a file, or - for stdout".to_owned()),
            "-" if io::stdout().is_terminal() => Err(
                "dest=- would write a tar to this terminal: redirect stdout, or give a file"
                    .to_owned(),
            ),
            "-" => Ok(Destination::Stdout),
            path => Ok(Destination::File(PathBuf::from(path))),
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
        match value {
            "" => return Err("an output needs a directory, - or type=...".to_owned()),
            "-" => return Destination::parse("-").map(Output::Tar),
            dir if !dir.contains('=') => return Ok(Output::Directory(PathBuf::from(dir))),
            _ => {}
        }
        let mut kind = None;
        let mut dest = None;
        let mut push = false;
        let mut names = Vec::new();
        for field in value.split(',') {
            let (key, setting) = field
                .split_once('=')
                .ok_or_else(|| format!("{field:?}: expected KEY=VALUE"))?;
            match key {
                "type" => kind = Some(setting),
                "dest" => dest = Some(setting),
                "push" => push = setting == "true",
                "name" => names.push(setting.to_owned()),
                // Options of the image exporters hull's store has no use
                // for (`compression` is the registry's business).
                "compression" | "oci-mediatypes" | "tar" => {}
                other => return Err(format!("{other:?} is not an output option hull has")),
            }
        }
        let needs_dest = |kind: &str| {
            dest.ok_or_else(|| format!("type={kind} needs dest=PATH (or dest=- for stdout)"))
        };
        match kind.unwrap_or("local") {
            "local" => match needs_dest("local")? {
                "" => Err("dest= is empty: give a directory".to_owned()),
                dir => Ok(Output::Directory(PathBuf::from(dir))),
            },
            "tar" => Ok(Output::Tar(Destination::parse(needs_dest("tar")?)?)),
            "oci" => Ok(Output::Archive(Destination::parse(needs_dest("oci")?)?)),
            "docker" if dest.is_some() => {
                Ok(Output::Archive(Destination::parse(needs_dest("docker")?)?))
            }
            "image" | "docker" => Ok(Output::Image { names, push }),
            "registry" => Ok(Output::Image { names, push: true }),
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
            Output::Image { names, push } => {
                let names = match names.is_empty() {
                    true => tags.to_vec(),
                    false => tag_as(store, id, names)?,
                };
                if !push {
                    return Ok(());
                }
                if names.is_empty() {
                    bail!("pushing a build needs a name to push it as: add -t REGISTRY/NAME[:TAG]");
                }
                // stdout is the image ID's (or an exported tar's).
                for name in &names {
                    push_image(store, name, registry, quiet, Stream::Stderr)?;
                }
                Ok(())
            }
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

/// Tags the image `id` as each of `names` (an output's `name=`s).
fn tag_as(store: &Store, id: &str, names: &[String]) -> Result<Vec<ImageRef>> {
    names
        .iter()
        .map(|name| {
            let reference = ImageRef::parse_new_name(name)
                .with_context(|| format!("--output name={name}: use NAME[:TAG]"))?;
            store.tag(id, &reference)?;
            Ok(reference)
        })
        .collect()
}

/// The image `id`'s files written into `dir` (made if missing).
fn write_directory(store: &Store, id: &str, dir: &Path) -> Result<()> {
    let image = store.resolve(id)?;
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
        if !io::stdout().is_terminal() {
            assert_eq!(Output::parse("-"), Ok(Output::Tar(Destination::Stdout)));
        }
        assert_eq!(
            Output::parse("type=tar,dest=rootfs.tar"),
            Ok(Output::Tar(Destination::File("rootfs.tar".into())))
        );
        assert_eq!(
            Output::parse("type=oci,dest=img.tar"),
            Ok(Output::Archive(Destination::File("img.tar".into())))
        );
        let image = |names: &[&str], push| Output::Image {
            names: names.iter().map(|name| name.to_string()).collect(),
            push,
        };
        assert_eq!(Output::parse("type=docker"), Ok(image(&[], false)));
        assert_eq!(
            Output::parse("type=image,name=r/app:1,push=true"),
            Ok(image(&["r/app:1"], true))
        );
        assert_eq!(Output::parse("type=registry"), Ok(image(&[], true)));
        for (bad, reason) in [
            ("type=local", "type=local needs dest=PATH"),
            ("type=local,dest=", "dest= is empty"),
            ("type=tar,dest=", "dest= is empty"),
            ("type=oci", "type=oci needs dest=PATH"),
            ("", "needs a directory"),
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
