//! `run_step`: one step of an image build (`RUN` in a Dockerfile): a
//! command run once in a VM of its own on given layers, whose changes to
//! the root file system come back as a layer tar.
//!
//! A step is no container: nothing is recorded, `ps` does not show it; its
//! network address is leased for this process's lifetime only, and its VM,
//! scratch disk and runtime directory go with the step.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hull_protocol::{container_path, Diff, Limits, Message};
use serde::{Deserialize, Serialize};

use crate::assets;
use crate::boot::{self, BootOutcome, ConsoleTarget};
use crate::capabilities::DEFAULT_CAPABILITIES;
use crate::container::{BootSpec, Mount, Records, RootfsSource};
use crate::error::Result;
use crate::network::{self, NetworkOptions, NO_NETWORK};
use crate::ops::diff::lower_layers;
use crate::ops::{agent, outcome, Outcome, Stdio};
use crate::root::{new_id, SHORT_ID_LEN};
use crate::session::{self, Request, SessionWriter};
use crate::signals::Signals;
use crate::Runtime;

/// How long a step's VM may take to power off after its command ended.
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(30);
/// Files the agent writes into every container's /etc: the run's, not the
/// command's (Docker bind-mounts them), so never part of its layer.
const AGENT_FILES: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/// What a build step runs, and on what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepOptions {
    /// The layers it runs on, by diff_id (`sha256:...`), bottom first; they
    /// must be in the image store.
    pub layers: Vec<String>,
    /// The command line (not resolved against an image: exactly this).
    pub argv: Vec<String>,
    /// Its whole environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Its working directory (made if missing; that is part of the layer).
    pub workdir: String,
    /// `USER[:GROUP]`, names or ids; empty for root.
    pub user: String,
    /// On the default network (else loopback only).
    pub network: bool,
    /// Mounted over its root for the run only: their contents are not part
    /// of the layer (bind mounts of host directories and tmpfs).
    pub mounts: Vec<Mount>,
    /// Virtual CPUs.
    pub cpus: u8,
    /// Guest memory.
    pub memory_mib: u64,
}

impl Runtime {
    /// Runs the build step `options` describe in a new VM, with `stdio` as
    /// its input and output, and once its command has exited (whatever its
    /// code) writes what it changed as a layer tar (OCI whiteouts) into
    /// `layer`. Returns how the command ended; one that could not start is
    /// an error, as with [`Runtime::run_attached`].
    pub fn run_step(
        &self,
        options: StepOptions,
        stdio: Stdio,
        layer: &mut dyn Write,
    ) -> Result<Outcome> {
        let root = &self.root;
        let id = new_id();
        let hostname = id[..SHORT_ID_LEN].to_owned();
        let kernel = assets::guest_kernel(None)?;
        assets::agent_binary()?;
        let network_options = NetworkOptions {
            networks: match options.network {
                true => Vec::new(),
                false => vec![NO_NETWORK.into()],
            },
            ..NetworkOptions::default()
        };
        let name = format!("build-step-{hostname}");
        let records = Records::new(root);
        let network = network::create(root, &records, &id, &name, &network_options, &[])?;
        let exclude: Vec<String> = AGENT_FILES
            .iter()
            .map(|file| file.to_string())
            .chain(options.mounts.iter().map(|mount| mount.target.clone()))
            .collect();
        let spec = BootSpec {
            kernel,
            cpus: options.cpus,
            nano_cpus: None,
            cpuset_cpus: None,
            memory_mib: options.memory_mib,
            rootfs: RootfsSource::Layers(options.layers),
            argv: options.argv,
            entrypoint_len: 0,
            env: options.env,
            cwd: options.workdir,
            user: options.user,
            hostname,
            domainname: String::new(),
            tty: None,
            network: network.clone(),
            mounts: options.mounts,
            read_only: false,
            scratch_bytes: None,
            limits: Limits {
                capabilities: Some(DEFAULT_CAPABILITIES.map(String::from).to_vec()),
                ..Limits::default()
            },
        };
        // What the step's mounts need made that its layers lack.
        let diff = Diff {
            exclude,
            pause: false,
            stubs: mount_stubs(&lower_layers(root, &spec)?, &spec.mounts),
        };
        let ran = run(self, &id, &spec, stdio, &diff, layer);
        if let Err(err) = network::release(root, &id, &network) {
            tracing::warn!("{err:#}");
        }
        ran
    }
}

/// Boots the step's VM, runs its command and takes its layer.
fn run(
    runtime: &Runtime,
    id: &str,
    spec: &BootSpec,
    stdio: Stdio,
    diff: &Diff,
    layer: &mut dyn Write,
) -> Result<Outcome> {
    let root = &runtime.root;
    let signals = stdio
        .signals
        .clone()
        .unwrap_or_else(|| Signals::channel().1);
    // The scratch disk lives in the VM's runtime directory, and goes with it.
    let scratch = root.run_dir_path(id).join("scratch.img");
    let booted = match boot::boot(root, id, spec, &scratch, ConsoleTarget::Log, &signals)? {
        BootOutcome::Booted(booted) => booted,
        BootOutcome::Interrupted(signal) => return Ok(Outcome::Interrupted { signal }),
    };
    let (input, mut output, controls) = stdio.split();
    let mut take_layer = |reader: &mut std::os::unix::net::UnixStream, writer: &SessionWriter| {
        receive_layer(reader, writer, diff, layer)
    };
    let end = session::attach_then(
        booted.stream,
        Request::Run {
            spec: Box::new(booted.spec),
            report_oom: false,
        },
        input,
        controls,
        &mut output,
        Some(&mut take_layer),
    );
    booted.vm.finish(POWER_OFF_TIMEOUT);
    outcome(end?)
}

/// Asks the agent for the container's changes as `diff` says and copies
/// them into `layer`.
fn receive_layer(
    reader: &mut std::os::unix::net::UnixStream,
    writer: &SessionWriter,
    diff: &Diff,
    layer: &mut dyn Write,
) -> anyhow::Result<()> {
    writer.send(&Message::Diff(diff.clone()))?;
    agent::receive_data(reader, layer, "the step's changes")
}

/// The directories the agent makes for `mounts`' targets that no layer in
/// `lower` has (the targets' ancestors below the root, from the first one
/// no layer has), absolute container paths: a step that leaves nothing
/// else in one leaves it out of its layer, as BuildKit does with the stubs
/// of a `RUN`'s mounts. A target below a link or a file in a layer, which
/// the agent resolves inside the container's root, has none: no host path
/// is followed through an image's links.
fn mount_stubs(lower: &[PathBuf], mounts: &[Mount]) -> Vec<String> {
    let mut stubs = BTreeSet::new();
    for mount in mounts {
        let target = container_path::clean(Path::new(&mount.target));
        // From the root's child down to the target's parent.
        let mut ancestors: Vec<&Path> = target.ancestors().skip(1).collect();
        ancestors.reverse();
        for (depth, ancestor) in ancestors.iter().enumerate().skip(1) {
            let inside = ancestor.strip_prefix("/").unwrap_or(ancestor);
            let found: Vec<_> = lower
                .iter()
                .filter_map(|layer| layer.join(inside).symlink_metadata().ok())
                .collect();
            if found.is_empty() {
                stubs.extend(
                    ancestors[depth..]
                        .iter()
                        .map(|a| a.to_string_lossy().into_owned()),
                );
                break;
            }
            if found.iter().any(|metadata| !metadata.is_dir()) {
                break;
            }
        }
    }
    stubs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::MountSource;

    #[test]
    fn mount_stubs_are_the_targets_ancestors_no_layer_has() {
        let temp = tempfile::tempdir().unwrap();
        let (base, top) = (temp.path().join("base"), temp.path().join("top"));
        std::fs::create_dir_all(base.join("root")).unwrap();
        std::fs::create_dir_all(top.join("var/lib")).unwrap();
        std::os::unix::fs::symlink("/", top.join("link")).unwrap();
        let mount = |target: &str| Mount {
            target: target.into(),
            source: MountSource::Tmpfs {
                size_bytes: None,
                mode: None,
            },
            read_only: false,
        };
        let mounts = [
            mount("/root/.cache/pip"),
            mount("/var/lib/app/data"),
            mount("/cache"),
            mount("/srv/./a/../b/c"),
            mount("/link/tmp/x/y"),
        ];
        assert_eq!(
            mount_stubs(&[base, top], &mounts),
            ["/root/.cache", "/srv", "/srv/b", "/var/lib/app"]
        );
    }
}
