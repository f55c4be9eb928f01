//! `hull cp`: files and directories between the host and a
//! container, either way, placed as `docker cp` places them; `-` stands for
//! a tar stream on stdin or stdout.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_runtime::{CopyOptions, CopySource, CopyTarget, Runtime};

#[derive(Args)]
pub struct CpArgs {
    #[command(flatten)]
    copy: CopyFlags,
    /// Accepted: hull prints no progress.
    #[arg(short = 'q', long = "quiet")]
    _quiet: bool,
    /// CONTAINER:PATH, a host path, or - for a tar stream on stdin.
    source: String,
    /// CONTAINER:PATH, a host path, or - for a tar stream on stdout.
    destination: String,
}

/// How `cp` and `compose cp` copy.
#[derive(Args)]
pub struct CopyFlags {
    /// Keep owners (uid/gid), and on the host set-id and sticky bits.
    #[arg(short, long)]
    archive: bool,
    /// Copy a source path that is a symbolic link as what it points to.
    #[arg(short = 'L', long)]
    follow_link: bool,
}

impl CopyFlags {
    pub fn options(&self) -> CopyOptions {
        CopyOptions {
            archive: self.archive,
            follow_link: self.follow_link,
        }
    }
}

/// One end of a copy.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Container {
        container: String,
        path: String,
    },
    Host(PathBuf),
    /// A tar stream on stdin or stdout.
    Stream,
}

impl Location {
    /// `CONTAINER:PATH` names a container's path; a host path with a colon
    /// can be written `./a:b`.
    fn parse(arg: &str) -> Location {
        if arg == "-" {
            return Location::Stream;
        }
        match arg.split_once(':') {
            Some((container, path)) if !container.is_empty() && !container.contains('/') => {
                Location::Container {
                    container: container.to_owned(),
                    path: path.to_owned(),
                }
            }
            _ => Location::Host(PathBuf::from(arg)),
        }
    }
}

impl CpArgs {
    /// The container it copies out of or into (the first, if both).
    pub fn container(&self) -> Option<String> {
        [&self.source, &self.destination]
            .into_iter()
            .find_map(|arg| match Location::parse(arg) {
                Location::Container { container, .. } => Some(container),
                _ => None,
            })
    }

    /// The host path a copy out of a container writes, if it does.
    pub fn host_destination(&self) -> Option<PathBuf> {
        host_destination(&self.source, &self.destination)
    }

    /// Whether it copies a tar stream from stdin.
    pub fn reads_stdin(&self) -> bool {
        Location::parse(&self.source) == Location::Stream
    }
}

/// The host path a copy from `source` to `destination` writes, if it
/// copies out of a container.
pub fn host_destination(source: &str, destination: &str) -> Option<PathBuf> {
    match (Location::parse(source), Location::parse(destination)) {
        (Location::Container { .. }, Location::Host(path)) => Some(path),
        _ => None,
    }
}

pub fn cp(args: CpArgs, runtime: &Runtime) -> Result<u8> {
    let one = |name: &str| Ok(vec![name.to_owned()]);
    let options = args.copy.options();
    copy(runtime, &args.source, &args.destination, options, one)?;
    Ok(0)
}

/// Copies from `source` to `destination`, one of them `NAME:PATH`, the
/// other a host path or `-` (a tar stream on stdin or stdout), placed as
/// `docker cp` places them; `containers` gives the containers `NAME`
/// stands for (a copy out reads the first; a copy in writes each).
pub fn copy(
    runtime: &Runtime,
    source: &str,
    destination: &str,
    options: CopyOptions,
    containers: impl Fn(&str) -> Result<Vec<String>>,
) -> Result<()> {
    match (Location::parse(source), Location::parse(destination)) {
        (Location::Container { .. }, Location::Container { .. }) => {
            bail!("cannot copy between two containers: copy through a host directory")
        }
        (Location::Container { container, path }, to) => {
            let target = match to {
                Location::Host(dest) => CopyTarget::Path(dest),
                _ => CopyTarget::Tar(Box::new(io::stdout())),
            };
            let from = containers(&container)?;
            let from = from.first().map_or(container.as_str(), String::as_str);
            runtime.copy_from(from, &path, target, options)?;
        }
        (from, Location::Container { container, path }) => {
            let into = containers(&container)?;
            // A tar stream on stdin, read once, for each container: kept in
            // an unnamed file when there are several.
            let kept = match (&from, into.len() > 1) {
                (Location::Stream, true) => Some(stdin_kept()?),
                _ => None,
            };
            for target in &into {
                let source = match (&from, &kept) {
                    (Location::Host(source), _) => CopySource::Path(source.clone()),
                    (_, Some(file)) => CopySource::Tar(Box::new(rewound(file)?)),
                    (_, None) => CopySource::Tar(Box::new(io::stdin())),
                };
                runtime.copy_into(target, source, &path, options)?;
            }
        }
        _ => bail!("one of the paths must be in a container, written CONTAINER:PATH"),
    }
    Ok(())
}

/// Stdin, read whole into an unnamed temporary file.
fn stdin_kept() -> Result<File> {
    let mut file = tempfile::tempfile().context("cannot make a temporary file")?;
    io::copy(&mut io::stdin().lock(), &mut file).context("cannot read the tar on stdin")?;
    Ok(file)
}

/// Another handle on `file`, read from its start.
fn rewound(file: &File) -> Result<File> {
    let mut again = file.try_clone().context("cannot reopen the tar")?;
    again
        .seek(SeekFrom::Start(0))
        .context("cannot reread the tar")?;
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_have_a_name_and_a_colon() {
        assert_eq!(
            Location::parse("web:/etc/hosts"),
            Location::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(Location::parse("-"), Location::Stream);
        assert_eq!(Location::parse("./a:b"), Location::Host("./a:b".into()));
        assert_eq!(Location::parse("/tmp/x"), Location::Host("/tmp/x".into()));
        assert_eq!(Location::parse(":x"), Location::Host(":x".into()));
    }
}
