//! `attach`: a caller joins a running container's process through its
//! monitor's attach socket: its output from now on, the caller's input if
//! it was created interactive, and the detach keys to leave it running.

use std::os::unix::net::UnixStream;

use anyhow::Context;

use crate::attach_server;
use crate::container::{self, ContainerConfig, Status};
use crate::detach_keys::DetachKeys;
use crate::error::{Error, Hint, Result};
use crate::ops::{run_session, Outcome, Stdio};
use crate::session::Request;
use crate::Runtime;

impl Runtime {
    /// Joins the running container `name`'s process with `stdio` until it
    /// ends or the detach keys (default: the container's, else Docker's)
    /// are typed. The caller's input reaches the process only if the
    /// container was created interactive.
    pub fn attach(&self, name: &str, stdio: Stdio) -> Result<Outcome> {
        let container = container::find(&self.root, name)?;
        let config = &container.config;
        if container.state()?.status != Status::Running {
            return Err(Error::NotRunning {
                name: config.name.clone(),
                hint: Hint::new(format!("start it with `hull start {}` first", config.name)),
            });
        }
        let stdio = match (config.interactive, stdio.stdin.is_some()) {
            (true, true) => Stdio {
                detach_keys: detach_keys(
                    stdio.detach_keys.clone(),
                    config,
                    config.boot.tty.is_some(),
                ),
                ..stdio
            },
            _ => Stdio {
                stdin: None,
                ..stdio
            },
        };
        let socket = attach_server::socket_path(&self.root.run_dir_path(container.id()));
        let stream = UnixStream::connect(&socket)
            .with_context(|| format!("cannot attach to container {}", config.name))?;
        run_session(stream, Request::Join, stdio)
    }
}

/// The keys that detach a caller joining a process of the container of
/// `config` (on a terminal if `tty`): the `given` ones, else the
/// container's, else Docker's; none without a terminal, as Docker's (input
/// through a pipe is the process's, whole).
pub(super) fn detach_keys(
    given: Option<DetachKeys>,
    config: &ContainerConfig,
    tty: bool,
) -> Option<DetachKeys> {
    if !tty {
        return None;
    }
    given
        .or_else(|| config.detach_keys.clone())
        .or_else(|| Some(Default::default()))
}
