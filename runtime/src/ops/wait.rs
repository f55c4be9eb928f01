//! `wait`: until a container's process has ended.

use std::time::Duration;

use crate::container::{self, Status};
use crate::error::Result;
use crate::Runtime;

const POLL_INTERVAL: Duration = Duration::from_millis(100);

impl Runtime {
    /// Waits until the container `name` has exited and returns its exit
    /// code.
    pub fn wait(&self, name: &str) -> Result<i32> {
        let container = container::find(&self.root, name)?;
        loop {
            let state = container.state()?;
            if state.status == Status::Exited {
                return Ok(state.exit_code.unwrap_or(-1));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}
