//! Commands on kept containers: `ps`, `logs`, `attach`, `exec`, `cp`, `top`, `stats`,
//! `inspect`, `port`, `stop`, `start`, `restart`, `kill`, `rm`, `wait`, `rename`,
//! `container prune`, `commit`, `export`, `diff`, `update`.

mod attach;
mod commit;
mod cp;
mod diff;
mod exec;
mod export;
mod inspect;
mod lifecycle;
mod logs;
mod port;
mod ps;
mod ps_filter;
mod ps_format;
mod stats;
mod top;
mod update;

pub use attach::{attach, attach_to, left, AttachArgs, AttachFlags};
pub use commit::{commit, container_layer, CommitArgs, ContainerLayerArgs};
pub use cp::{copy, cp, host_destination, CopyFlags, CpArgs};
pub use diff::{diff, DiffArgs};
pub use exec::{exec, ExecArgs};
pub use export::{export, ExportArgs};
pub use inspect::{inspect, inspect_each, parse_format, InspectArgs};
pub use lifecycle::{
    kill, pause, prune, prune_containers, rename, restart, rm, start, stop, unpause, wait,
    KillArgs, PauseArgs, PruneArgs, RenameArgs, RestartArgs, RmArgs, StartArgs, StopArgs, WaitArgs,
};
pub use logs::{logs, LogSelection, LogsArgs};
pub use port::{port, PortArgs};
pub use ps::{ps, row as ps_row, PsArgs};
pub use ps_format::PsFormat;
pub use stats::{stats, StatsArgs};
pub use top::{print_processes, top, TopArgs};
pub use update::{update, UpdateArgs};

/// Does `act` for each of `names`, as Docker's commands on several
/// containers do: every name is tried, each failure reported on its own
/// line; the exit code is the last failure's, 0 if none failed.
pub fn for_each_name(names: &[String], mut act: impl FnMut(&str) -> anyhow::Result<()>) -> u8 {
    let mut code = 0;
    for name in names {
        if let Err(err) = act(name) {
            crate::report::print(&err);
            code = crate::error_code(&err);
        }
    }
    code
}
