//! `top`: the processes of a running container, as its agent reads them
//! in the guest (pids as the container sees them).

use anyhow::anyhow;
use hull_protocol::{Answer, ProcessInfo, Query};

use crate::container;
use crate::error::Result;
use crate::ops::agent;
use crate::session;
use crate::Runtime;

impl Runtime {
    /// The processes of the running container `name`.
    pub fn top(&self, name: &str) -> Result<Vec<ProcessInfo>> {
        let container = container::find(&self.root, name)?;
        let stream = agent::connect(&self.root, &container)?;
        let Answer::Processes(processes) = session::query(stream, Query::Processes)? else {
            return Err(anyhow!("the guest agent answered another question").into());
        };
        Ok(processes)
    }
}
