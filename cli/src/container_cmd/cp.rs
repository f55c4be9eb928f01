//! `hull cp`: files and directories between the host and a running
//! container, either way, placed as `docker cp` places them; `-` stands for
//! a tar stream on stdin or stdout.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_protocol::copy::{self, DataReader, DataWriter};
use hull_protocol::{read_message, Copy, ExitStatus, Message};

use super::agent;
use crate::container;
use crate::session::{self, SessionWriter};
use crate::state::StateRoot;

#[derive(Args)]
pub struct CpArgs {
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

pub fn cp(args: CpArgs, root: &StateRoot) -> Result<u8> {
    match (
        Location::parse(&args.source),
        Location::parse(&args.destination),
    ) {
        (Location::Container { .. }, Location::Container { .. }) => {
            bail!("cannot copy between two containers: copy through a host directory")
        }
        (Location::Container { container, path }, to) => {
            let agent = connect(root, &container)?;
            copy_out(agent, &path, &to)
        }
        (from, Location::Container { container, path }) => {
            if let Location::Host(source) = &from {
                std::fs::symlink_metadata(source)
                    .with_context(|| format!("cannot copy {}", source.display()))?;
            }
            let agent = connect(root, &container)?;
            copy_in(agent, &from, &path)
        }
        _ => bail!("one of the paths must be in a container, written CONTAINER:PATH"),
    }?;
    Ok(0)
}

fn connect(root: &StateRoot, name: &str) -> Result<(UnixStream, SessionWriter)> {
    let container = container::find(root, name)?;
    session::greet(agent::connect(root, &container)?)
}

/// Copies the container's `path` to `to`.
fn copy_out(agent: (UnixStream, SessionWriter), path: &str, to: &Location) -> Result<()> {
    let (reader, writer) = agent;
    writer.send(&Message::Copy(Copy::Out {
        path: path.to_owned(),
    }))?;
    let mut data = DataReader::new(reader);
    let received = match to {
        Location::Host(dest) => copy::receive(&mut data, dest, copy::names_contents(path))
            .with_context(|| format!("cannot copy to {}", dest.display())),
        _ => io::copy(&mut data, &mut io::stdout().lock())
            .map(drop)
            .context("cannot write the archive to stdout"),
    };
    // The agent's reason for stopping comes first: it explains the rest.
    let end = data.finish().context("cannot read from the guest agent");
    check_end(end?.cloned())?;
    received
}

/// Copies `from` into the container as `dest`.
fn copy_in(agent: (UnixStream, SessionWriter), from: &Location, dest: &str) -> Result<()> {
    let (mut reader, writer) = agent;
    let contents = match from {
        Location::Host(source) => copy::names_contents(&source.to_string_lossy()),
        _ => true,
    };
    writer.send(&Message::Copy(Copy::In {
        dest: dest.to_owned(),
        contents,
    }))?;
    let mut data = DataWriter::new(Message::Stdin, |message: &Message| {
        writer.send(message).map_err(io::Error::other)
    });
    let sent = match from {
        Location::Host(source) => copy::send(source, &mut data),
        _ => io::copy(&mut io::stdin().lock(), &mut data).map(drop),
    }
    .and_then(|()| data.flush());
    let closed = sent.and_then(|()| writer.send(&Message::StdinClose).map_err(io::Error::other));
    // The agent's answer explains a refused stream best.
    let end = read_message(&mut reader).context("cannot read from the guest agent");
    check_end(end?)?;
    closed.context("cannot send the copy")
}

fn check_end(end: Option<Message>) -> Result<()> {
    match end {
        Some(Message::Exited(ExitStatus::Code(0))) => Ok(()),
        Some(Message::Failed { reason, .. }) => bail!("{reason}"),
        Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
        None => bail!("the guest agent hung up during the copy"),
    }
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
