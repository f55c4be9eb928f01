//! Answers to the host's queries about the container: its resource use
//! from its cgroup (network and disk traffic from the guest's counters:
//! the container is the guest's only tenant), its processes from /proc.

use std::collections::HashMap;
use std::fs;

use anyhow::{bail, Context};
use hull_protocol::{Answer, ContainerStats, ProcessInfo, Query};

use super::cgroup::CONTAINER;

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

pub fn answer(query: Query) -> anyhow::Result<Answer> {
    Ok(match query {
        Query::Stats => Answer::Stats(stats()?),
        Query::Processes => Answer::Processes(processes()?),
    })
}

fn read(file: &str) -> anyhow::Result<String> {
    let path = format!("{CONTAINER}/{file}");
    fs::read_to_string(&path).with_context(|| format!("reading {path}"))
}

fn stats() -> anyhow::Result<ContainerStats> {
    let memory_limit_bytes = match read("memory.max")?.trim() {
        "max" => guest_memory_bytes()?,
        limit => limit.parse().context("parsing memory.max")?,
    };
    // Traffic is a nicety: without the counters, none is shown.
    let (net_rx_bytes, net_tx_bytes) =
        network_bytes(&fs::read_to_string("/proc/net/dev").unwrap_or_default());
    let (block_read_bytes, block_write_bytes) =
        disk_bytes(&fs::read_to_string("/proc/diskstats").unwrap_or_default());
    Ok(ContainerStats {
        cpu_usage_usec: keyed_value(&read("cpu.stat")?, "usage_usec")?,
        memory_bytes: read("memory.current")?
            .trim()
            .parse()
            .context("parsing memory.current")?,
        memory_limit_bytes,
        pids: read("pids.current")?
            .trim()
            .parse()
            .context("parsing pids.current")?,
        oom_kills: keyed_value(&read("memory.events")?, "oom_kill")?,
        net_rx_bytes,
        net_tx_bytes,
        block_read_bytes,
        block_write_bytes,
    })
}

/// Bytes received and sent by every interface but loopback, from
/// /proc/net/dev (two header lines, then `name: rx_bytes ... tx_bytes ...`
/// with transmit counters from the ninth number on).
fn network_bytes(dev: &str) -> (u64, u64) {
    dev.lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .filter_map(|(_, counters)| {
            let counters: Vec<u64> = counters
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            Some((*counters.first()?, *counters.get(8)?))
        })
        .fold((0u64, 0u64), |(rx, tx), (r, t)| {
            (rx.saturating_add(r), tx.saturating_add(t))
        })
}

/// Bytes read from and written to the guest's virtio disks (whole disks,
/// `vda`, `vdb`, ...), from /proc/diskstats, whose sector counts are in
/// 512-byte units.
fn disk_bytes(diskstats: &str) -> (u64, u64) {
    const SECTOR: u64 = 512;
    diskstats
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields.get(2)?;
            let whole_disk = name
                .strip_prefix("vd")
                .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_lowercase()));
            if !whole_disk {
                return None;
            }
            let read: u64 = fields.get(5)?.parse().ok()?;
            let written: u64 = fields.get(9)?.parse().ok()?;
            Some((read.saturating_mul(SECTOR), written.saturating_mul(SECTOR)))
        })
        .fold((0u64, 0u64), |(r, w), (read, written)| {
            (r.saturating_add(read), w.saturating_add(written))
        })
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn keyed_value(text: &str, key: &str) -> anyhow::Result<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .with_context(|| format!("no {key} in {text:?}"))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {key}"))
}

fn guest_memory_bytes() -> anyhow::Result<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    Ok(kib * 1024)
}

/// A process as the agent reads it, with pids of the agent's namespace.
struct Seen {
    pid: u32,
    ppid: u32,
    info: ProcessInfo,
}

fn processes() -> anyhow::Result<Vec<ProcessInfo>> {
    let seen: Vec<Seen> = read("cgroup.procs")?
        .lines()
        .filter_map(|pid| pid.trim().parse().ok())
        // A process that ended since the list was read is left out.
        .filter_map(|pid| read_process(pid).ok())
        .collect();
    let in_container: HashMap<u32, u32> = seen.iter().map(|p| (p.pid, p.info.pid)).collect();
    let mut processes: Vec<ProcessInfo> = seen
        .into_iter()
        .map(|seen| ProcessInfo {
            ppid: in_container.get(&seen.ppid).copied().unwrap_or(0),
            ..seen.info
        })
        .collect();
    processes.sort_by_key(|process| process.pid);
    Ok(processes)
}

fn read_process(pid: u32) -> anyhow::Result<Seen> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))?;
    let parsed = parse_stat(&stat)?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::split_whitespace)
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    // The last NSpid is the pid in the innermost namespace: the container's.
    let container_pid = field("NSpid:")?.last().and_then(|p| p.parse().ok());
    let uid = field("Uid:")?.next().and_then(|uid| uid.parse().ok());
    let command = if cmdline.is_empty() {
        format!("[{}]", parsed.name)
    } else {
        let args: Vec<String> = cmdline
            .split(|byte| *byte == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        args.join(" ")
    };
    Ok(Seen {
        pid,
        ppid: parsed.ppid,
        info: ProcessInfo {
            pid: container_pid.context("unreadable NSpid")?,
            ppid: 0,
            uid: uid.context("unreadable Uid")?,
            state: parsed.state,
            cpu_time_ms: parsed.cpu_ticks * 1000 / TICKS_PER_SECOND,
            command,
        },
    })
}

/// The fields of /proc/PID/stat hull reports.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    name: String,
    state: String,
    ppid: u32,
    /// utime + stime.
    cpu_ticks: u64,
}

/// Parses /proc/PID/stat; the name (in parentheses) may hold spaces and
/// parentheses itself, so the fields are counted from its last `)`.
fn parse_stat(stat: &str) -> anyhow::Result<Stat> {
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        bail!("malformed stat {stat:?}");
    };
    let name = stat[open + 1..close].to_owned();
    // After the name: state (3), ppid (4), ..., utime (14), stime (15).
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let number = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("malformed stat {stat:?}"))
    };
    Ok(Stat {
        name,
        state: fields.first().context("stat without a state")?.to_string(),
        ppid: u32::try_from(number(1)?)?,
        cpu_ticks: number(11)? + number(12)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let stat = "42 (my (odd) name) S 7 42 42 0 -1 4194560 100 0 0 0 25 15 0 0 20 0 1 0 \
                    300 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(stat).unwrap(),
            Stat {
                name: "my (odd) name".into(),
                state: "S".into(),
                ppid: 7,
                cpu_ticks: 40,
            }
        );
        assert!(parse_stat("42 no parens").is_err());
        assert!(parse_stat("42 (short) S").is_err());
    }

    #[test]
    fn network_bytes_leave_loopback_out() {
        let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    9000      90    0    0    0     0          0         0     9000      90    0    0    0     0       0          0
  eth0:    1500      12    0    0    0     0          0         0      648       8    0    0    0     0       0          0
  eth1:     500       2    0    0    0     0          0         0      352       3    0    0    0     0       0          0
";
        assert_eq!(network_bytes(dev), (2000, 1000));
        assert_eq!(network_bytes(""), (0, 0));
    }

    #[test]
    fn disk_bytes_count_whole_virtio_disks() {
        let diskstats = " 254       0 vda 120 0 8 30 40 0 2048 90 0 100 120 0 0 0 0 0 0
 254       1 vda1 5 0 100 1 0 0 0 0 0 1 1 0 0 0 0 0 0
 254      16 vdb 2 0 16 1 0 0 0 0 0 1 1 0 0 0 0 0 0
   1       0 ram0 9 0 900 0 9 0 900 0 0 0 0 0 0 0 0 0 0
";
        assert_eq!(disk_bytes(diskstats), (24 * 512, 2048 * 512));
        assert_eq!(disk_bytes(""), (0, 0));
    }

    #[test]
    fn flat_keyed_cgroup_files_parse() {
        let cpu = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(keyed_value(cpu, "usage_usec").unwrap(), 1500);
        assert_eq!(keyed_value(cpu, "system_usec").unwrap(), 500);
        let events = "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill").unwrap(), 1);
        assert!(keyed_value(cpu, "missing").is_err());
    }
}
