//! `wait`: until a container's process has ended, and how.
//!
//! A running container is joined through its monitor's attach socket,
//! which tells its clients how the process ended: so the exit code is known
//! even of a container removed as it ends (`--rm`).

use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::attach_server;
use crate::container::{self, Container, Status, KILLED_EXIT_CODE};
use crate::error::{Error, Result};
use crate::root::StateRoot;
use crate::session::{self, Controls, Input, OutputSink, Request};
use crate::Runtime;

const POLL_INTERVAL: Duration = Duration::from_millis(100);

impl Runtime {
    /// Waits until the container `name` has exited (not to restart) and
    /// returns its exit code.
    pub fn wait(&self, name: &str) -> Result<i32> {
        let container = container::find(&self.root, name)?;
        // How the last run joined ended: all there is of a container
        // removed as it ends (`--rm`).
        let mut joined = None;
        let mut seen_running = false;
        loop {
            if !container.exists() {
                // Removed while it ran, its end untold (`rm -f` kills its
                // VM): killed, as Docker reports it.
                let killed = seen_running.then_some(KILLED_EXIT_CODE);
                return joined
                    .or(killed)
                    .ok_or_else(|| Error::NoSuchContainer(name.to_owned()));
            }
            let state = match container.state() {
                Err(_) if !container.exists() => continue,
                state => state?,
            };
            match state.status {
                Status::Exited => return Ok(state.exit_code.unwrap_or(-1)),
                Status::Running => {
                    seen_running = true;
                    joined = join_until_end(&self.root, &container).or(joined);
                }
                Status::Created | Status::Restarting => {}
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

/// Joins the running container's process until it ends; its exit code, or
/// `None` if it cannot be joined (it ended meanwhile).
fn join_until_end(root: &StateRoot, container: &Container) -> Option<i32> {
    let socket = attach_server::socket_path(&root.run_dir_path(container.id()));
    let stream = UnixStream::connect(socket).ok()?;
    let end = session::attach(
        stream,
        Request::Join,
        Input::Closed,
        Controls::default(),
        &mut Discard,
    )
    .ok()?;
    Some(i32::from(end.exit_code()))
}

/// The process's output, unread.
struct Discard;

impl OutputSink for Discard {
    fn stdout(&mut self, _: &[u8]) {}

    fn stderr(&mut self, _: &[u8]) {}
}
