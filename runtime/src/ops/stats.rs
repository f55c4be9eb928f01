//! `stats`: one reading of a running container's cgroup in the guest.

use std::time::Instant;

use anyhow::anyhow;
use hull_protocol::{Answer, ContainerStats, Query};

use crate::container;
use crate::error::Result;
use crate::ops::agent;
use crate::session;
use crate::Runtime;

/// One reading of a container's CPU, memory and process counts.
#[derive(Debug, Clone, Copy)]
pub struct StatsSample {
    /// What the agent read.
    pub stats: ContainerStats,
    /// When: two samples give a CPU rate.
    pub at: Instant,
}

impl StatsSample {
    /// The CPU used between `earlier` and this sample, in percent of one
    /// CPU (100: one CPU kept busy).
    pub fn cpu_percent_since(&self, earlier: &StatsSample) -> f64 {
        let used = self
            .stats
            .cpu_usage_usec
            .saturating_sub(earlier.stats.cpu_usage_usec);
        let elapsed = self.at.duration_since(earlier.at).as_micros().max(1);
        used as f64 * 100.0 / elapsed as f64
    }
}

impl Runtime {
    /// A reading of the running container `name`'s cgroup.
    pub fn stats(&self, name: &str) -> Result<StatsSample> {
        let container = container::find(&self.root, name)?;
        let stream = agent::connect(&self.root, &container)?;
        let Answer::Stats(stats) = session::query(stream, Query::Stats)? else {
            return Err(anyhow!("the guest agent answered another question").into());
        };
        Ok(StatsSample {
            stats,
            at: Instant::now(),
        })
    }
}
