//! Commands on kept containers: `ps`, `logs`, `stop`, `rm`, `wait`.

mod lifecycle;
mod logs;
mod ps;

pub use lifecycle::{rm, stop, wait, RmArgs, StopArgs, WaitArgs};
pub use logs::{logs, LogsArgs};
pub use ps::{ps, PsArgs};
