//! `hull top NAME`: the processes of a running container, as its agent
//! reads them in the guest (pids as the container sees them).

use anyhow::Result;
use clap::Args;
use hull_runtime::{ProcessInfo, Runtime};
use serde_json::{json, Value};

use hull_format::{render_rows, Format, Listing};

/// `ps`'s columns.
const LISTING: Listing = Listing {
    default_format: "table {{.UID}}\t{{.PID}}\t{{.PPID}}\t{{.STAT}}\t{{.TIME}}\t{{.CMD}}",
    headers: &[],
};

#[derive(Args)]
pub struct TopArgs {
    /// Container name or ID.
    container: String,
}

pub fn top(args: TopArgs, runtime: &Runtime) -> Result<u8> {
    print_processes(&runtime.top(&args.container)?)?;
    Ok(0)
}

/// Prints `processes` as `ps` does.
pub fn print_processes(processes: &[ProcessInfo]) -> Result<()> {
    let rows: Vec<Value> = processes.iter().map(row).collect();
    render_rows(&Format::Default, &LISTING, &rows, &mut std::io::stdout())?;
    Ok(())
}

fn row(process: &ProcessInfo) -> Value {
    json!({
        "UID": process.uid.to_string(),
        "PID": process.pid.to_string(),
        "PPID": process.ppid.to_string(),
        "STAT": process.state,
        "TIME": cpu_time(process.cpu_time_ms),
        "CMD": process.command,
    })
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
