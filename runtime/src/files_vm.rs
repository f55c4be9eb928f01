//! A VM that serves a created or stopped container's files, for `cp`,
//! `diff`, `export` and `commit`, which Docker allows on a container in any
//! state: its writable layer is a disk only a guest kernel reads. The VM
//! boots as the container's would (its layers, scratch disk, volumes and
//! binds, limits; no network, so no address or port is taken), and its
//! agent sets the container up but starts no process in it
//! ([`RunSpec::hold`]); sessions on the VM's exec port then work on the
//! container's files as on a running one's. The VM powers off when the
//! value is dropped. Its run directory and VMM cgroup are named after the
//! container, so that what a killed command left behind goes with the
//! container's next files VM or its removal.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hull_protocol::{read_message, Message, RunSpec};
use nix::fcntl::Flock;
use sha2::{Digest, Sha256};

use crate::boot::{self, BootOutcome, Booted, ConsoleTarget};
use crate::container::{BootSpec, Container};
use crate::network::ContainerNetwork;
use crate::root::{StateRoot, SHORT_ID_LEN};
use crate::session::{self, SessionWriter};
use crate::signals::Signals;
use crate::vmm_jail;

/// How long the VM may take to power off once its sessions are over (it
/// syncs the scratch disk first): generous, as a VM killed earlier may lose
/// what a copy just wrote.
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(120);

/// A running VM holding a stopped container's files.
pub(crate) struct FilesVm {
    /// The host end of its vsock device, where sessions connect.
    vsock: PathBuf,
    /// The run session, whose end powers the VM off.
    run_session: SessionWriter,
    run_session_reader: UnixStream,
    booted: Option<Box<Booted>>,
    /// Keeps the container's monitor from booting it meanwhile.
    _layer: Flock<File>,
}

impl FilesVm {
    /// Boots `container`'s files in a VM of their own, with `layer` (the
    /// container's layer lock) held until the VM is gone.
    pub(crate) fn boot(
        root: &StateRoot,
        container: &Container,
        layer: Flock<File>,
    ) -> Result<FilesVm> {
        let recorded = &container.config.boot;
        let spec = BootSpec {
            tty: None,
            cpuset_cpus: None,
            network: ContainerNetwork {
                endpoints: Vec::new(),
                ports: Vec::new(),
                ..recorded.network.clone()
            },
            ..recorded.clone()
        };
        // A run directory of its own: the container's is its monitor's.
        let vm_id = vm_id(container.id());
        remove_left_behind(root, container.id());
        let no_signals = Signals::channel().1;
        let booted = match boot::boot(
            root,
            &vm_id,
            &spec,
            &container.scratch_path(),
            ConsoleTarget::Log,
            &no_signals,
        )? {
            BootOutcome::Booted(booted) => booted,
            BootOutcome::Interrupted(signal) => bail!("signal {signal} came while the VM booted"),
        };
        let stream = booted
            .stream
            .try_clone()
            .context("cannot clone the agent stream")?;
        let (reader, writer) = session::greet(stream)?;
        let spec = RunSpec {
            hold: true,
            privileged: false,
            ..booted.spec.clone()
        };
        // From here on, dropped on failure: the agent then syncs the disk
        // it may have formatted and powers off.
        let mut files_vm = FilesVm {
            vsock: root.vsock_path(&vm_id),
            run_session: writer,
            run_session_reader: reader,
            booted: Some(booted),
            _layer: layer,
        };
        files_vm.run_session.send(&Message::Run(Box::new(spec)))?;
        let answer = read_message(&mut files_vm.run_session_reader)
            .context("cannot read from the guest agent")?;
        match answer {
            Some(Message::Started { .. }) => Ok(files_vm),
            Some(Message::Failed { reason, .. }) => bail!("{reason}"),
            Some(other) => bail!("unexpected message from the guest agent: {other:?}"),
            None => bail!("the guest agent hung up while it set the container up"),
        }
    }

    /// The host end of the VM's vsock device.
    pub(crate) fn vsock_path(&self) -> &Path {
        &self.vsock
    }
}

impl Drop for FilesVm {
    fn drop(&mut self) {
        // The end of the run session ends the agent, which powers off.
        if let Err(err) = self.run_session.send(&Message::Shutdown) {
            tracing::warn!("cannot end the session of a container's files VM: {err:#}");
        }
        if let Some(booted) = self.booted.take() {
            let Booted { vm, .. } = *booted;
            vm.finish(POWER_OFF_TIMEOUT);
        }
    }
}

/// The ID the files VM of container `id` runs under (its run directory
/// and VMM cgroup are named after its first characters): derived from the
/// container's, as unlike any other container's as a new one.
fn vm_id(id: &str) -> String {
    hex::encode(Sha256::digest(format!("files of {id}")))
}

/// Removes what the files VM of container `id` left behind when the
/// command holding it was killed: its run directory and VMM cgroup. The
/// caller holds the container's layer lock, or removes the container.
pub(crate) fn remove_left_behind(root: &StateRoot, id: &str) {
    let vm_id = vm_id(id);
    let run_dir = root.run_dir_path(&vm_id);
    if let Err(err) = std::fs::remove_dir_all(&run_dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {err}", run_dir.display());
        }
    }
    vmm_jail::cgroup::remove_left_behind(&vm_id[..SHORT_ID_LEN]);
}
