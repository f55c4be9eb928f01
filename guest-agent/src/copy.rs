//! `hull cp` sessions: a path of the container's file system sent to the
//! host, or one received from it (see [`hull_protocol::copy`]).

use std::io::{self, Read};
use std::path::Path;

use anyhow::Context;
use hull_protocol::copy::{self, DataReader, DataWriter, Keep};
use hull_protocol::{Copy, Message};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::chroot;

/// Runs `copy` in the container whose root directory the agent reaches at
/// `root`: host data comes from the frames on `frames`, ours goes out
/// through `send`. Call it on a thread of its own: the thread's root
/// directory becomes the container's, so that the container's paths,
/// symbolic links and `..` resolve as they do in the container.
pub fn run(
    copy: &Copy,
    root: &Path,
    frames: impl Read,
    send: impl FnMut(&Message) -> io::Result<()>,
) -> anyhow::Result<()> {
    enter_root(root)?;
    match copy {
        Copy::Out { path, follow_link } => {
            let out = DataWriter::new(Message::Stdout, send);
            copy::send(Path::new(path), *follow_link, out)
                .with_context(|| format!("copying {path} out"))
        }
        Copy::In {
            dest,
            contents,
            archive,
        } => {
            let mut data = DataReader::new(frames);
            // Inside the container, special bits are the image's business.
            let keep = Keep {
                owners: *archive,
                special_bits: true,
            };
            copy::receive(&mut data, Path::new(dest), *contents, keep)
                .with_context(|| format!("copying into {dest}"))?;
            match data.finish()? {
                Some(Message::StdinClose) => Ok(()),
                other => anyhow::bail!("the copy's data ended with {other:?}"),
            }
        }
    }
}

/// Moves the calling thread, and it alone, into `root`.
fn enter_root(root: &Path) -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_FS).context("unsharing the thread's root directory")?;
    chroot(root).with_context(|| format!("entering {}", root.display()))?;
    std::env::set_current_dir("/").context("entering the container's /")
}
