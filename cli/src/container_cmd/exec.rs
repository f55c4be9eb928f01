//! `hull exec`: another process in a running container, through a new
//! session with its agent over the VM's vsock (the VMM's unix socket takes
//! `CONNECT <port>` and answers `OK <port>` once the guest accepts).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hull_protocol::{RunSpec, EXEC_PORT};

use crate::container::{self, Status};
use crate::process_config::{parse_user, with_env_flags};
use crate::session;
use crate::signals::ForwardedSignals;
use crate::state::StateRoot;
use crate::terminal;

/// How long to retry while the container's process is still being started
/// (the agent takes exec sessions once it runs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Args)]
pub struct ExecArgs {
    /// Keep stdin open and forward it to the process.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give the process a terminal (with -i: this terminal's keys, raw).
    #[arg(short = 't', long)]
    tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory (default: the container's).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// User to run as: USER[:GROUP] (default: the container's).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,
    /// Container name or ID.
    container: String,
    /// The command to run, with its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn exec(args: ExecArgs, root: &StateRoot) -> Result<u8> {
    let container = container::find(root, &args.container)?;
    if container.state()?.status != Status::Running {
        bail!("container {} is not running", container.short_id());
    }
    let boot = &container.config.boot;
    let tty = terminal::requested(args.tty, args.interactive)?;
    let spec = RunSpec {
        argv: args.command,
        env: with_env_flags(&boot.env, &args.env),
        cwd: args.workdir.unwrap_or_else(|| boot.cwd.clone()),
        user: args.user.unwrap_or_else(|| boot.user.clone()),
        hostname: boot.hostname.clone(),
        rootfs: None,
        tty,
    };
    let signals = ForwardedSignals::catch()?;
    let stream = connect_to_agent(&root.run_dir_path(container.id()).join("vsock.sock"))
        .with_context(|| format!("cannot reach container {}", container.short_id()))?;
    let end = session::attach(
        stream,
        spec,
        args.interactive,
        signals,
        Box::new(session::Terminal::default()),
    )?;
    Ok(end.exit_code())
}

/// Opens a stream to the agent's exec port through the VMM's socket.
fn connect_to_agent(vsock_socket: &std::path::Path) -> Result<UnixStream> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let mut stream = UnixStream::connect(vsock_socket)
            .with_context(|| format!("cannot connect to {}", vsock_socket.display()))?;
        stream.write_all(format!("CONNECT {EXEC_PORT}\n").as_bytes())?;
        match read_line(&mut stream)? {
            Some(line) if line.starts_with("OK ") => return Ok(stream),
            Some(line) => bail!("unexpected answer from the VMM: {line:?}"),
            // Refused: the agent does not listen yet.
            None if Instant::now() < deadline => std::thread::sleep(CONNECT_RETRY_INTERVAL),
            None => bail!("its agent takes no exec sessions"),
        }
    }
}

/// One short line, or `None` if the stream closes first.
fn read_line(stream: &mut UnixStream) -> Result<Option<String>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 64 {
        match stream.read(&mut byte)? {
            0 => return Ok(None),
            _ if byte[0] == b'\n' => return Ok(Some(String::from_utf8_lossy(&line).into_owned())),
            _ => line.push(byte[0]),
        }
    }
    bail!("the VMM's answer is too long")
}
