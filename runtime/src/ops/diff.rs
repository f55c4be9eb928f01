//! `write_layer` and `diff`: a container's writable layer, as a
//! layer tar (for `commit`) or as Docker's list of changed paths.

use std::io::{Seek, Write};
use std::path::PathBuf;

use anyhow::Context;
use hull_image::{Digest, Store};
use hull_protocol::{Diff, Message};

use crate::changes::{self, Change};
use crate::container::{self, BootSpec, RootfsSource};
use crate::error::Result;
use crate::ops::agent;
use crate::Runtime;

/// Paths of a container's root that are the run's rather than its
/// processes' (as Docker's init layer and mounts keep them out of its
/// writable layer): the agent's `/etc` files and the kernel's file systems.
const RUN_PATHS: [&str; 6] = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/proc",
    "/sys",
    "/dev",
];

impl Runtime {
    /// Writes what the container `name`'s processes changed in its
    /// root file system, its writable layer, into `out` as an OCI layer tar
    /// (whiteouts for deletions), leaving out the run's own files and mount
    /// points. With `pause`, its processes are frozen meanwhile.
    pub fn write_layer(&self, name: &str, pause: bool, out: &mut dyn Write) -> Result<()> {
        self.receive_layer(name, pause, "commit needs", out)
    }

    /// What the container `name` changed in its root file system,
    /// as `docker diff` lists it.
    pub fn diff(&self, name: &str) -> Result<Vec<Change>> {
        let container = container::find(&self.root, name)?;
        let lower = lower_layers(&self.root, &container.config.boot)?;
        let mut layer = tempfile::tempfile_in(self.root.path())
            .context("cannot make a file for the container's changes")?;
        self.receive_layer(name, false, "diff needs", &mut layer)?;
        layer
            .rewind()
            .context("cannot read the container's changes")?;
        Ok(changes::changes(std::io::BufReader::new(layer), &lower)?)
    }

    fn receive_layer(
        &self,
        name: &str,
        pause: bool,
        needs: &str,
        out: &mut dyn Write,
    ) -> Result<()> {
        let container = container::find(&self.root, name)?;
        let mut session = agent::file_system_session(&self.root, name, needs)?;
        let exclude = RUN_PATHS
            .iter()
            .map(|path| path.to_string())
            .chain(
                container
                    .config
                    .boot
                    .mounts
                    .iter()
                    .map(|m| m.target.clone()),
            )
            .collect();
        // Docker's commit and diff keep the mount points a container made.
        session.writer.send(&Message::Diff(Diff {
            exclude,
            pause,
            stubs: Vec::new(),
        }))?;
        Ok(agent::receive_data(
            &mut session.reader,
            out,
            "the container's changes",
        )?)
    }
}

/// The unpacked layers a container's writable layer lies on, bottom first.
pub(crate) fn lower_layers(root: &crate::root::StateRoot, boot: &BootSpec) -> Result<Vec<PathBuf>> {
    Ok(match &boot.rootfs {
        RootfsSource::Directory(dir) => vec![dir.clone()],
        RootfsSource::Image(id) => Store::open(root.path())?.resolve(id)?.layers,
        RootfsSource::Layers(diff_ids) => {
            let store = Store::open(root.path())?;
            diff_ids
                .iter()
                .map(|diff_id| store.layer(&Digest::parse(diff_id)?))
                .collect::<anyhow::Result<_>>()?
        }
    })
}
