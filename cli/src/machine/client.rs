//! Running a hull command line inside the hull machine through a relay
//! session, with this process's stdio, terminal, signals and exit code.

use std::env;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};
use hull_machine::{hull_executable, relay_spec, Machine};
use hull_runtime::session::{self, Input, Request, Writers};
use hull_runtime::signals::{interrupted_exit_code, Signals};
use hull_runtime::Boot;

use super::ForwardedStdio;
use crate::terminal::{self, Terminal};

/// Runs this process's own command line in the machine (starting it if
/// need be, with `notice`) with `stdio` and our environment plus `env`, and
/// returns its exit code.
pub fn forward(root: &Path, notice: &str, stdio: ForwardedStdio, env: Vec<String>) -> Result<u8> {
    let mut argv = vec![hull_executable()?];
    argv.extend(env::args().skip(1));
    let code = run_attached(root, argv, stdio, env, Some(notice), standard_output())?;
    // Containers started or stopped: their ports on the host follow now.
    if let Ok(failures) = Machine::new(root).sync_ports() {
        for failure in failures {
            eprintln!("hull: warning: {failure}");
        }
    }
    Ok(code)
}

/// Runs `argv` in the running machine with this process's stdin, terminal
/// and signals (`hull machine exec`).
pub fn exec(root: &Path, argv: Vec<String>) -> Result<u8> {
    let stdio = ForwardedStdio {
        stdin: true,
        tty: true,
    };
    run_attached(root, argv, stdio, Vec::new(), None, standard_output())
}

/// Runs `argv` in the machine (starting it if need be, with `notice`)
/// without input, its output into `output`, and returns its exit code (a
/// build step, `hull build`).
pub fn run_with_output(
    root: &Path,
    notice: &str,
    argv: Vec<String>,
    output: Writers,
) -> Result<u8> {
    let stdio = ForwardedStdio::default();
    run_attached(root, argv, stdio, Vec::new(), Some(notice), output)
}

fn standard_output() -> Writers {
    Writers::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()))
}

/// Runs `argv` in the machine; with `notice`, starting it first if need be
/// (and saying so), else only if it is up.
fn run_attached(
    root: &Path,
    argv: Vec<String>,
    stdio: ForwardedStdio,
    env: Vec<String>,
    notice: Option<&str>,
    mut output: Writers,
) -> Result<u8> {
    let on_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let tty =
        (stdio.tty && on_terminal).then(|| terminal::size().unwrap_or(terminal::DEFAULT_SIZE));
    let mut environment = hull_machine::testhost::environment();
    environment.extend(env);
    let spec = relay_spec(argv, environment, tty)?;
    let signals = Signals::catch()?;
    let machine = Machine::new(root);
    let stream = match notice {
        Some(notice) => match machine.session_starting(notice, &signals)? {
            Boot::Ready(stream) => stream,
            Boot::Interrupted(signal) => return Ok(interrupted_exit_code(signal)),
        },
        None => machine.session()?,
    };
    let input = match stdio.stdin {
        true => Input::Reader {
            reader: Box::new(std::io::stdin()),
            detach_keys: None,
        },
        false => Input::Closed,
    };
    let terminal = Terminal::new(tty.is_some(), stdio.stdin);
    let end = session::attach(
        stream,
        Request::Run {
            spec: Box::new(spec),
            report_oom: false,
        },
        input,
        terminal.controls(Some(signals))?,
        &mut output,
    )
    .context("the session with the hull machine broke off")?;
    drop(terminal);
    if let Some(reason) = end.failure() {
        eprintln!("hull: {reason}");
    }
    Ok(end.exit_code())
}
