//! The supervisor's control socket: one request line per connection, one
//! answer line (`OK` or `ERR <reason>`), then what the request carries: a
//! relay session's bytes, port-forward warnings, or the status as JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::shares::WritableShares;

/// Request lines are short; anything longer is not ours.
const MAX_LINE: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A relay session with the machine's agent follows.
    Session,
    /// Bring the host's port forwards in line with the running containers'
    /// published ports now; each forward that failed comes back as a line.
    SyncPorts,
    /// The status as one JSON line.
    Status,
    /// Stop the machine (its containers first).
    Stop,
}

impl Request {
    fn word(self) -> &'static str {
        match self {
            Request::Session => "session",
            Request::SyncPorts => "sync-ports",
            Request::Status => "status",
            Request::Stop => "stop",
        }
    }

    fn parse(word: &str) -> Option<Request> {
        [
            Request::Session,
            Request::SyncPorts,
            Request::Status,
            Request::Stop,
        ]
        .into_iter()
        .find(|request| request.word() == word)
    }
}

/// What `hull machine status` shows of a running machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub supervisor_pid: u32,
    pub qemu_pid: u32,
    pub cpus: u32,
    pub memory_mib: u64,
    pub idle_timeout_secs: u64,
    pub uptime_secs: u64,
    /// Commands using the machine right now.
    pub sessions: usize,
    /// Host forwards of published ports, as `tcp 127.0.0.1:8080`.
    pub forwards: Vec<String>,
    /// The host directories it writes; none from a machine started by a
    /// hull before it had them, whose root is the host's, writable.
    #[serde(default)]
    pub shares: Option<WritableShares>,
}

/// Sends `request` to the running machine's supervisor and returns the
/// stream after its `OK`.
pub fn send(layout: &Layout, request: Request) -> Result<UnixStream> {
    let path = layout.control_socket();
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("cannot reach the hull machine at {}", path.display()))?;
    stream
        .write_all(format!("{}\n", request.word()).as_bytes())
        .context("cannot talk to the hull machine")?;
    let answer = read_line(&mut stream).context("no answer from the hull machine")?;
    match answer.strip_prefix("ERR ") {
        Some(reason) => bail!("the hull machine: {reason}"),
        None if answer == "OK" => Ok(stream),
        None => bail!("unexpected answer from the hull machine: {answer:?}"),
    }
}

/// The rest of the answer to `request`, read to its end.
pub fn answer(layout: &Layout, request: Request) -> Result<String> {
    let mut stream = send(layout, request)?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .context("cannot read the hull machine's answer")?;
    Ok(text)
}

/// Reads the request line a client sent.
pub fn receive(stream: &mut UnixStream) -> Result<Request> {
    let line = read_line(stream)?;
    Request::parse(&line).with_context(|| format!("unknown request {line:?}"))
}

/// One line, read byte by byte so that nothing after it is consumed.
fn read_line(stream: &mut UnixStream) -> Result<String> {
    let mut line = Vec::new();
    BufReader::with_capacity(1, stream.take(MAX_LINE))
        .read_until(b'\n', &mut line)
        .context("cannot read a line")?;
    match line.strip_suffix(b"\n") {
        Some(line) => Ok(String::from_utf8_lossy(line).into_owned()),
        None => bail!("the connection ended before the end of the line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_sent_and_leave_the_rest() {
        for request in [
            Request::Session,
            Request::SyncPorts,
            Request::Status,
            Request::Stop,
        ] {
            let (mut client, mut server) = UnixStream::pair().unwrap();
            client
                .write_all(format!("{}\nrest", request.word()).as_bytes())
                .unwrap();
            assert_eq!(receive(&mut server).unwrap(), request);
            let mut rest = [0; 4];
            server.read_exact(&mut rest).unwrap();
            assert_eq!(&rest, b"rest");
        }
        let (mut client, mut server) = UnixStream::pair().unwrap();
        client.write_all(b"reboot\n").unwrap();
        assert!(receive(&mut server).is_err());
        let (client, mut server) = UnixStream::pair().unwrap();
        drop(client);
        assert!(receive(&mut server).is_err());
    }
}
