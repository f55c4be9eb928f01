//! `hull top NAME`: the processes of a running container, as its agent
//! reads them in the guest (pids as the container sees them).

use anyhow::{bail, Result};
use clap::Args;
use hull_protocol::{Answer, ProcessInfo, Query};

use super::agent;
use crate::container;
use crate::state::StateRoot;
use crate::{session, table};

#[derive(Args)]
pub struct TopArgs {
    /// Container name or ID.
    container: String,
}

pub fn top(args: TopArgs, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, &args.container)?;
    let stream = agent::connect(root, &container)?;
    let Answer::Processes(processes) = session::query(stream, Query::Processes)? else {
        bail!("the guest agent answered another question");
    };
    let rows: Vec<Vec<String>> = processes.iter().map(row).collect();
    table::print(&["UID", "PID", "PPID", "STAT", "TIME", "CMD"], &rows);
    Ok(0)
}

fn row(process: &ProcessInfo) -> Vec<String> {
    vec![
        process.uid.to_string(),
        process.pid.to_string(),
        process.ppid.to_string(),
        process.state.clone(),
        cpu_time(process.cpu_time_ms),
        process.command.clone(),
    ]
}

/// `ps`'s TIME column: hours, minutes and seconds of CPU time.
fn cpu_time(ms: u64) -> String {
    let seconds = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_reads_like_ps() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(61_500), "00:01:01");
        assert_eq!(cpu_time(3_723_000), "01:02:03");
    }
}
