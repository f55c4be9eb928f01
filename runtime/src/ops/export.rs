//! `export`: a container's root file system as one tar.

use std::io::Write;

use hull_protocol::Message;

use crate::error::Result;
use crate::ops::agent;
use crate::Runtime;

impl Runtime {
    /// Writes the container `name`'s root file system into `out`
    /// as a tar, as its processes see it (its image's layers and its
    /// writable layer merged) but without what is mounted on it: `/proc`,
    /// `/sys` and `/dev` are the image's (empty) directories, volumes and
    /// bind mounts their mount points, as `docker export` has them.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let mut session = agent::file_system_session(&self.root, name, "export needs")?;
        session.writer.send(&Message::Export)?;
        Ok(agent::receive_data(
            &mut session.reader,
            out,
            "the container's file system",
        )?)
    }
}
