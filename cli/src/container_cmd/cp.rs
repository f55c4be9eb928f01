//! `hull cp`: files and directories between the host and a running
//! container, either way, placed as `docker cp` places them; `-` stands for
//! a tar stream on stdin or stdout.

use std::io;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use hull_runtime::{CopyOptions, CopySource, CopyTarget, Runtime};

#[derive(Args)]
pub struct CpArgs {
    /// Keep owners (uid/gid), and on the host set-id and sticky bits.
    #[arg(short, long)]
    archive: bool,
    /// CONTAINER:PATH, a host path, or - for a tar stream on stdin.
    source: String,
    /// CONTAINER:PATH, a host path, or - for a tar stream on stdout.
    destination: String,
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
    /// The host path a copy out of a container writes, if it does.
    pub fn host_destination(&self) -> Option<PathBuf> {
        match (
            Location::parse(&self.source),
            Location::parse(&self.destination),
        ) {
            (Location::Container { .. }, Location::Host(path)) => Some(path),
            _ => None,
        }
    }
}

pub fn cp(args: CpArgs, runtime: &Runtime) -> Result<u8> {
    let options = CopyOptions {
        archive: args.archive,
    };
    match (
        Location::parse(&args.source),
        Location::parse(&args.destination),
    ) {
        (Location::Container { .. }, Location::Container { .. }) => {
            bail!("cannot copy between two containers: copy through a host directory")
        }
        (Location::Container { container, path }, to) => {
            let target = match to {
                Location::Host(dest) => CopyTarget::Path(dest),
                _ => CopyTarget::Tar(Box::new(io::stdout())),
            };
            runtime.copy_from(&container, &path, target, options)?;
        }
        (from, Location::Container { container, path }) => {
            let source = match from {
                Location::Host(source) => CopySource::Path(source),
                _ => CopySource::Tar(Box::new(io::stdin())),
            };
            runtime.copy_into(&container, source, &path, options)?;
        }
        _ => bail!("one of the paths must be in a container, written CONTAINER:PATH"),
    }
    Ok(0)
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
