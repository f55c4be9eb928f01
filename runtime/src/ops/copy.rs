//! `copy_into` and `copy_from`: files and directories between the host and
//! a container (running, or its files in a VM of their own), placed as
//! `docker cp` places them, or a tar stream either way.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use hull_protocol::copy::{self, DataReader, DataWriter, Keep};
use hull_protocol::{read_message, Copy, ExitStatus, Message};

use crate::error::Result;
use crate::ops::agent::{self, FileSystemSession};
use crate::Runtime;

/// What is copied into a container.
pub enum CopySource {
    /// A host file or directory.
    Path(PathBuf),
    /// A tar stream, unpacked at the destination.
    Tar(Box<dyn Read + Send>),
}

/// How a copy treats the files' metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Keep the files' owners, and on the host their set-id and sticky
    /// bits (`docker cp -a`); else files belong to the receiving side's
    /// root and the host drops the bits a container chose.
    pub archive: bool,
    /// A source path that is a symbolic link is copied as what it points
    /// to, under the link's name (`docker cp -L`); else as the link.
    pub follow_link: bool,
}

/// Where a container's path is copied to.
pub enum CopyTarget {
    /// A host path.
    Path(PathBuf),
    /// A tar stream of it.
    Tar(Box<dyn Write + Send>),
}

impl Runtime {
    /// Copies `source` into the container `name` as `dest`.
    pub fn copy_into(
        &self,
        name: &str,
        source: CopySource,
        dest: &str,
        options: CopyOptions,
    ) -> Result<()> {
        if let CopySource::Path(path) = &source {
            std::fs::symlink_metadata(path)
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
        let mut session = self.agent_session(name)?;
        let writer = &session.writer;
        let contents = match &source {
            CopySource::Path(path) => copy::names_contents(&path.to_string_lossy()),
            CopySource::Tar(_) => true,
        };
        writer.send(&Message::Copy(Copy::In {
            dest: dest.to_owned(),
            contents,
            archive: options.archive,
        }))?;
        let mut data = DataWriter::new(Message::Stdin, |message: &Message| {
            writer.send(message).map_err(io::Error::other)
        });
        let sent = match source {
            CopySource::Path(path) => copy::send(&path, options.follow_link, &mut data),
            CopySource::Tar(mut tar) => io::copy(&mut tar, &mut data).map(drop),
        }
        .and_then(|()| data.flush());
        let closed =
            sent.and_then(|()| writer.send(&Message::StdinClose).map_err(io::Error::other));
        // The agent's answer explains a refused stream best.
        let end = read_message(&mut session.reader).context("cannot read from the guest agent");
        check_end(end?)?;
        Ok(closed.context("cannot send the copy")?)
    }

    /// Copies the container `name`'s `path` to `target`.
    pub fn copy_from(
        &self,
        name: &str,
        path: &str,
        target: CopyTarget,
        options: CopyOptions,
    ) -> Result<()> {
        let session = self.agent_session(name)?;
        session.writer.send(&Message::Copy(Copy::Out {
            path: path.to_owned(),
            follow_link: options.follow_link,
        }))?;
        let mut data = DataReader::new(&session.reader);
        let received = match target {
            CopyTarget::Path(dest) => {
                let keep = Keep {
                    owners: options.archive,
                    special_bits: options.archive,
                };
                copy::receive(&mut data, &dest, copy::names_contents(path), keep)
                    .with_context(|| format!("cannot copy to {}", dest.display()))
            }
            CopyTarget::Tar(mut tar) => io::copy(&mut data, &mut tar)
                .and_then(|_| tar.flush())
                .context("cannot write the archive"),
        };
        // The agent's reason for stopping comes first: it explains the rest.
        let end = data.finish().context("cannot read from the guest agent");
        check_end(end?.cloned())?;
        Ok(received?)
    }

    fn agent_session(&self, name: &str) -> Result<FileSystemSession> {
        agent::file_system_session(&self.root, name, "copies need")
    }
}

fn check_end(end: Option<Message>) -> anyhow::Result<()> {
    match end {
        Some(Message::Exited(ExitStatus::Code(0))) => Ok(()),
        Some(Message::Failed { reason, .. }) => Err(anyhow!("{reason}")),
        Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
        None => bail!("the guest agent hung up during the copy"),
    }
}
