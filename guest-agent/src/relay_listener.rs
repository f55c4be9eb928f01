//! Relay listener: the `hull machine`'s many concurrent sessions.
//!
//! The machine's QEMU forwards a loopback TCP port of the host to this
//! listener. A connection that opens with the machine's token (a line) gets
//! its own relay session: a fresh `hull-agent relay --channel -` process
//! with the connection as its standard input. Anyone else is dropped.
//!
//! The listener is the subreaper of everything started through it, so the
//! processes a session leaves running (`hull run -d` monitors) are reaped
//! here when they end.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// How long a new connection may take to present the token.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The token is one line of at most this many bytes.
const MAX_TOKEN_LEN: u64 = 256;
/// How long the reaper sleeps when there is no child to wait for.
const IDLE_INTERVAL: Duration = Duration::from_millis(200);

/// Serves relay sessions on TCP `port` for clients that know the token in
/// `token_file`. Returns only on failure.
pub fn listen(port: u16, token_file: &Path) -> anyhow::Result<()> {
    let token = fs::read_to_string(token_file)
        .with_context(|| format!("reading the token {}", token_file.display()))?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("the token file {} is empty", token_file.display());
    }
    become_subreaper()?;
    thread::spawn(reap_forever);
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .with_context(|| format!("listening on TCP port {port}"))?;
    let session = std::env::current_exe().context("locating the agent executable")?;
    for connection in listener.incoming() {
        let stream = match connection {
            Ok(stream) => stream,
            Err(err) => {
                eprintln!("hull-agent relay: accepting a connection: {err}");
                continue;
            }
        };
        let token = token.clone();
        let session = session.clone();
        thread::spawn(move || {
            if let Err(err) = serve(stream, &token, &session) {
                eprintln!("hull-agent relay: {err:#}");
            }
        });
    }
    bail!("the relay listener stopped accepting connections")
}

/// Starts a session on `stream` once it has presented `token`.
fn serve(stream: TcpStream, token: &str, session: &Path) -> anyhow::Result<()> {
    stream
        .set_read_timeout(Some(TOKEN_TIMEOUT))
        .context("setting the token timeout")?;
    if !presents_token(&stream, token)? {
        bail!("dropped a connection without the machine's token");
    }
    stream
        .set_read_timeout(None)
        .context("clearing the token timeout")?;
    Command::new(session)
        .args(["relay", "--channel", "-"])
        .stdin(Stdio::from(OwnedFd::from(stream)))
        .spawn()
        .context("starting a relay session")?;
    // The reaper thread waits for it.
    Ok(())
}

/// Reads the first line of `stream` (and nothing more) and compares it.
fn presents_token(stream: &TcpStream, token: &str) -> anyhow::Result<bool> {
    // Byte by byte: what follows the line belongs to the session.
    let mut line = Vec::new();
    let mut reader = BufReader::with_capacity(1, stream.take(MAX_TOKEN_LEN));
    match reader.read_until(b'\n', &mut line) {
        Ok(_) => {}
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Ok(false)
        }
        Err(err) => return Err(err).context("reading the token"),
    }
    Ok(line
        .strip_suffix(b"\n")
        .is_some_and(|line| same_bytes(line, token.as_bytes())))
}

/// Whether `a` and `b` are equal, in a time that does not depend on where
/// they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn become_subreaper() -> anyhow::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no
    // memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == -1 {
        return Err(std::io::Error::last_os_error()).context("becoming a subreaper");
    }
    Ok(())
}

/// Reaps every child: sessions, and orphans they left (detached monitors).
fn reap_forever() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => thread::sleep(IDLE_INTERVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn connected_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn the_token_line_is_read_and_nothing_after_it() {
        let (mut client, mut server) = connected_pair();
        client.write_all(b"s3cret\nHELLO").unwrap();
        assert!(presents_token(&server, "s3cret").unwrap());
        let mut rest = [0; 5];
        server.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"HELLO");
    }

    #[test]
    fn a_wrong_or_missing_token_is_refused() {
        let (mut client, server) = connected_pair();
        client.write_all(b"guess\n").unwrap();
        assert!(!presents_token(&server, "s3cret").unwrap());

        let (client, server) = connected_pair();
        drop(client);
        assert!(!presents_token(&server, "s3cret").unwrap());

        let (mut client, server) = connected_pair();
        client.write_all(b"s3cret").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(!presents_token(&server, "s3cret").unwrap());
    }
}
