//! Commands on kept containers: `ps`, `logs`, `attach`, `exec`, `cp`, `top`, `stats`,
//! `inspect`, `port`, `stop`, `start`, `restart`, `kill`, `rm`, `wait`, `rename`,
//! `container prune`.

mod attach;
mod cp;
mod exec;
mod inspect;
mod lifecycle;
mod logs;
mod port;
mod ps;
mod stats;
mod top;

pub use attach::{attach, AttachArgs};
pub use cp::{cp, CpArgs};
pub use exec::{exec, ExecArgs};
pub use inspect::{inspect, print_inspected, InspectArgs};
pub use lifecycle::{
    kill, prune, rename, restart, rm, start, stop, wait, KillArgs, PruneArgs, RenameArgs,
    RestartArgs, RmArgs, StartArgs, StopArgs, WaitArgs,
};
pub use logs::{logs, LogsArgs};
pub use port::{port, PortArgs};
pub use ps::{ps, PsArgs};
pub use stats::{stats, StatsArgs};
pub use top::{top, TopArgs};
