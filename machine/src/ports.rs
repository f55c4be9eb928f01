//! Published ports on the host's own addresses: QEMU's user network forwards
//! each running container's host port to the same port of the machine,
//! where that container's proxy listens (see `PortMapping::bind_address`).
//! The forwards are changed through QEMU's monitor (QMP).

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use hull_runtime::{ContainerInfo, Protocol};

/// The id of the machine's user-network netdev.
pub const NETDEV: &str = "net0";
/// How long QEMU's monitor may take to answer.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);

/// One forward from a host address and port to the same port of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Forward {
    pub protocol: Protocol,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

impl Forward {
    /// QEMU's name for the host side, `tcp:127.0.0.1:8080`.
    fn host_side(&self) -> String {
        format!("{}:{}:{}", self.protocol, self.host_ip, self.host_port)
    }

    fn add_command(&self) -> String {
        format!(
            "hostfwd_add {NETDEV} {}-:{}",
            self.host_side(),
            self.host_port
        )
    }

    fn remove_command(&self) -> String {
        format!("hostfwd_remove {NETDEV} {}", self.host_side())
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.protocol, self.host_ip, self.host_port)
    }
}

/// The forwards the `held` containers (those running now) need.
pub fn wanted(held: &[ContainerInfo]) -> HashSet<Forward> {
    held.iter()
        .flat_map(|container| &container.config.boot.network.ports)
        .map(|mapping| Forward {
            protocol: mapping.protocol,
            host_ip: mapping.host_ip,
            host_port: mapping.host_port,
        })
        .collect()
}

/// The forwards in place, changed only through [`PortForwards::sync`].
pub struct PortForwards {
    qmp_socket: PathBuf,
    active: HashSet<Forward>,
}

impl PortForwards {
    pub fn new(qmp_socket: PathBuf) -> PortForwards {
        PortForwards {
            qmp_socket,
            active: HashSet::new(),
        }
    }

    pub fn active(&self) -> impl Iterator<Item = &Forward> {
        self.active.iter()
    }

    /// Removes the forwards no longer wanted and adds the missing ones;
    /// returns one line for each that could not be added (say, a host port
    /// taken on the host), to be tried again next time.
    pub fn sync(&mut self, wanted: &HashSet<Forward>) -> Vec<String> {
        let mut failures = Vec::new();
        let stale: Vec<Forward> = self.active.difference(wanted).copied().collect();
        for forward in stale {
            // QEMU 8 and later confirm a removal: "host forwarding rule for
            // tcp:0.0.0.0:8080 removed".
            let removed = hmp(&self.qmp_socket, &forward.remove_command()).and_then(|output| {
                match output.is_empty() || output.ends_with(" removed") {
                    true => Ok(()),
                    false => Err(anyhow::anyhow!("QEMU: {output}")),
                }
            });
            if let Err(err) = removed {
                failures.push(format!("cannot remove the forward of {forward}: {err:#}"));
            }
            self.active.remove(&forward);
        }
        let missing: Vec<Forward> = wanted.difference(&self.active).copied().collect();
        for forward in missing {
            match hmp(&self.qmp_socket, &forward.add_command()) {
                Ok(output) if output.is_empty() => {
                    self.active.insert(forward);
                }
                Ok(output) => failures.push(format!(
                    "cannot publish host port {}:{}/{} from the hull machine: QEMU: {output}",
                    forward.host_ip, forward.host_port, forward.protocol
                )),
                Err(err) => failures.push(format!(
                    "cannot publish host port {}:{}/{} from the hull machine: {err:#}",
                    forward.host_ip, forward.host_port, forward.protocol
                )),
            }
        }
        failures
    }
}

/// Runs one human-monitor command through QMP and returns its output,
/// where QEMU reports how a hostfwd command went.
fn hmp(qmp_socket: &PathBuf, command: &str) -> Result<String> {
    let stream = UnixStream::connect(qmp_socket)
        .with_context(|| format!("cannot connect to QEMU's monitor {}", qmp_socket.display()))?;
    stream.set_read_timeout(Some(QMP_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)?; // The greeting.
    let mut output = String::new();
    for request in [
        json!({"execute": "qmp_capabilities"}),
        json!({"execute": "human-monitor-command", "arguments": {"command-line": command}}),
    ] {
        writeln!(writer, "{request}").context("cannot write to QEMU's monitor")?;
        let reply = read_reply(&mut reader)?;
        if let Some(error) = reply.get("error") {
            bail!("QEMU: {}", error["desc"].as_str().unwrap_or("error"));
        }
        output = reply["return"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_owned();
    }
    Ok(output)
}

/// The next reply or greeting, skipping asynchronous events.
fn read_reply(reader: &mut impl BufRead) -> Result<Value> {
    loop {
        let mut line = String::new();
        if reader
            .read_line(&mut line)
            .context("cannot read from QEMU's monitor")?
            == 0
        {
            bail!("QEMU's monitor closed the connection");
        }
        let message: Value =
            serde_json::from_str(&line).with_context(|| format!("QEMU's monitor sent {line:?}"))?;
        if message.get("event").is_none() {
            return Ok(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_become_qemu_hostfwd_commands() {
        let forward = Forward {
            protocol: Protocol::Udp,
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: 5353,
        };
        assert_eq!(
            forward.add_command(),
            "hostfwd_add net0 udp:127.0.0.1:5353-:5353"
        );
        assert_eq!(
            forward.remove_command(),
            "hostfwd_remove net0 udp:127.0.0.1:5353"
        );
        assert_eq!(forward.to_string(), "udp 127.0.0.1:5353");
    }

    #[test]
    fn monitor_replies_skip_events() {
        let mut input =
            BufReader::new(&b"{\"event\": \"NIC_RX_FILTER_CHANGED\"}\n{\"return\": \"\"}\n"[..]);
        assert_eq!(read_reply(&mut input).unwrap(), json!({"return": ""}));
        assert!(read_reply(&mut input).is_err());
    }
}
