//! Hull command lines run in the machine through a relay session: the
//! process they run as there.

use std::env;
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result};
use hull_protocol::{RunSpec, TerminalSize};
use hull_runtime::session::{self, Controls, Input, Request, Writers};

use crate::testhost;
use crate::BACKEND_ENV;

/// The machine's host name, as its processes see it.
const HOSTNAME: &str = "hull-machine";

/// This hull's path, which is the same in the machine. A hull replaced
/// (upgraded) since this process started is the one run there.
pub fn hull_executable() -> Result<String> {
    let exe = env::current_exe().context("cannot locate the hull executable")?;
    let exe = exe
        .to_str()
        .with_context(|| format!("the hull executable {} is not UTF-8", exe.display()))?;
    Ok(exe.strip_suffix(" (deleted)").unwrap_or(exe).to_owned())
}

/// `argv` as the machine runs it: as root, in this directory, with `env`
/// (`KEY=VALUE` words), where a hull runs its VMs itself; on a terminal of
/// size `tty` if given.
pub fn relay_spec(
    argv: Vec<String>,
    env: Vec<String>,
    tty: Option<TerminalSize>,
) -> Result<RunSpec> {
    let backend = format!("{BACKEND_ENV}=");
    let env = env
        .into_iter()
        .filter(|word| !word.starts_with(&backend))
        .chain([format!("{backend}direct")])
        .collect();
    testhost::relay_process(argv, env, HOSTNAME, tty)
}

/// Runs `hull ARGS...` through `stream`, a relay session with the machine,
/// with stdin closed and the output on ours (the supervisor's log).
pub(crate) fn run_quietly(stream: UnixStream, args: Vec<String>) -> Result<u8> {
    let env = ["PATH", "HOME"]
        .into_iter()
        .filter_map(|key| Some(format!("{key}={}", env::var(key).ok()?)))
        .collect();
    let mut argv = vec![hull_executable()?];
    argv.extend(args);
    let mut output = Writers::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));
    let end = session::attach(
        stream,
        Request::Run {
            spec: Box::new(relay_spec(argv, env, None)?),
            report_oom: false,
        },
        Input::Closed,
        Controls::default(),
        &mut output,
    )?;
    if let Some(reason) = end.failure() {
        eprintln!("hull machine: {reason}");
    }
    Ok(end.exit_code())
}
