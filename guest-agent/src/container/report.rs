//! Answers to the host's queries about the container: its resource use
//! from its cgroup (network and disk traffic from the guest's counters:
//! the container is the guest's only tenant), its processes from /proc.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;

use anyhow::{bail, Context};
use hull_protocol::{Answer, ContainerStats, ProcessInfo, Query};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

use super::cgroup::CONTAINER;
use crate::identity::user_names;

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;
/// The guest's page size in KiB (x86-64), /proc/PID/stat's unit of rss.
const PAGE_KIB: u64 = 4;

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

/// What every process's figures are measured against.
struct Machine {
    /// Milliseconds since boot, as /proc/uptime says.
    uptime_ms: u64,
    memory_kib: u64,
}

fn processes() -> anyhow::Result<Vec<ProcessInfo>> {
    let uptime = fs::read_to_string("/proc/uptime").context("reading /proc/uptime")?;
    let machine = Machine {
        uptime_ms: parse_uptime_ms(&uptime).context("malformed /proc/uptime")?,
        memory_kib: guest_memory_bytes()? / 1024,
    };
    let mut users = Users::default();
    let seen: Vec<Seen> = read("cgroup.procs")?
        .lines()
        .filter_map(|pid| pid.trim().parse().ok())
        // A process that ended since the list was read is left out.
        .filter_map(|pid| read_process(pid, &machine, &mut users).ok())
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

/// `/proc/uptime`'s first number (seconds, with hundredths) in
/// milliseconds.
fn parse_uptime_ms(uptime: &str) -> Option<u64> {
    let seconds = uptime.split_whitespace().next()?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, "0"));
    let fraction_ms: u64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    Some(whole.parse::<u64>().ok()?.checked_mul(1000)? + fraction_ms)
}

/// User names by uid, read from each process's own `/etc/passwd` (a
/// container's processes share one root, so it is read once per root).
#[derive(Default)]
struct Users {
    by_root: HashMap<(u64, u64), HashMap<u32, String>>,
}

/// The most of an `/etc/passwd` read: a name is a nicety.
const PASSWD_MAX_BYTES: u64 = 1 << 20;

impl Users {
    fn name(&mut self, pid: u32, uid: u32) -> Option<String> {
        let root = fs::File::open(format!("/proc/{pid}/root")).ok()?;
        let metadata = root.metadata().ok()?;
        let key = (metadata.dev(), metadata.ino());
        let names = self
            .by_root
            .entry(key)
            .or_insert_with(|| user_names(&read_passwd(&root).unwrap_or_default()));
        names.get(&uid).cloned()
    }
}

/// The container's `/etc/passwd` under its `root`, which its processes
/// may be changing as it is read: resolved inside that root whatever
/// links they made, opened without blocking, and read only if it is a
/// regular file (not a FIFO or a device to wait on).
fn read_passwd(root: &fs::File) -> Option<String> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), "etc/passwd", how).ok()?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    let file = unsafe { fs::File::from_raw_fd(fd) };
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(PASSWD_MAX_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The name of the terminal device `tty_nr` of /proc/PID/stat, as `ps`
/// shows it; none for no terminal or one `ps` would not name.
fn tty_name(tty_nr: u64) -> Option<String> {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match (major, minor) {
        (0, _) => None,
        (136..=143, _) => Some(format!("pts/{}", (major - 136) * 256 + minor)),
        (4, 0..=63) => Some(format!("tty{minor}")),
        (4, _) => Some(format!("ttyS{}", minor - 64)),
        (5, 1) => Some("console".into()),
        _ => None,
    }
}

fn read_process(pid: u32, machine: &Machine, users: &mut Users) -> anyhow::Result<Seen> {
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
    // Real, effective, saved, file system: ps shows the effective one.
    let uid = field("Uid:")?
        .nth(1)
        .and_then(|uid| uid.parse().ok())
        .context("unreadable Uid")?;
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
            uid,
            user: users.name(pid, uid),
            state: parsed.bsd_state(pid),
            cpu_time_ms: parsed.cpu_ticks * 1000 / TICKS_PER_SECOND,
            elapsed_ms: machine
                .uptime_ms
                .saturating_sub(parsed.start_ticks * 1000 / TICKS_PER_SECOND),
            tty: tty_name(parsed.tty_nr),
            vsz_kib: parsed.vsize_bytes / 1024,
            rss_kib: parsed.rss_pages * PAGE_KIB,
            memory_permille: (parsed.rss_pages * PAGE_KIB * 1000)
                .checked_div(machine.memory_kib)
                .and_then(|permille| u32::try_from(permille).ok())
                .unwrap_or(0),
            name: parsed.name,
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
    pgrp: u64,
    session: u64,
    tty_nr: u64,
    /// The foreground process group of its terminal (-1 without one).
    tpgid: i64,
    /// utime + stime.
    cpu_ticks: u64,
    nice: i64,
    threads: u64,
    /// When it started, in ticks since boot.
    start_ticks: u64,
    vsize_bytes: u64,
    rss_pages: u64,
}

impl Stat {
    /// ps's STAT for the process `pid`: the state letter, then `<` or `N`
    /// for a raised or lowered priority, `s` for a session leader, `l` for
    /// several threads, `+` in its terminal's foreground group.
    fn bsd_state(&self, pid: u32) -> String {
        let mut state = self.state.clone();
        match self.nice {
            nice if nice < 0 => state.push('<'),
            nice if nice > 0 => state.push('N'),
            _ => {}
        }
        if self.session == u64::from(pid) {
            state.push('s');
        }
        if self.threads > 1 {
            state.push('l');
        }
        if u64::try_from(self.tpgid).is_ok_and(|group| group == self.pgrp) {
            state.push('+');
        }
        state
    }
}

/// Parses /proc/PID/stat; the name (in parentheses) may hold spaces and
/// parentheses itself, so the fields are counted from its last `)`.
fn parse_stat(stat: &str) -> anyhow::Result<Stat> {
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        bail!("malformed stat {stat:?}");
    };
    let name = stat[open + 1..close].to_owned();
    // After the name: state (3), ppid (4), pgrp (5), session (6), tty_nr
    // (7), tpgid (8), ..., utime (14), stime (15), ..., nice (19),
    // num_threads (20), ..., starttime (22), vsize (23), rss (24).
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    fn parsed<T: std::str::FromStr>(
        fields: &[&str],
        index: usize,
        stat: &str,
    ) -> anyhow::Result<T> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("malformed stat {stat:?}"))
    }
    let number = |index: usize| parsed::<u64>(&fields, index, stat);
    let signed = |index: usize| parsed::<i64>(&fields, index, stat);
    Ok(Stat {
        name,
        state: fields.first().context("stat without a state")?.to_string(),
        ppid: u32::try_from(number(1)?)?,
        pgrp: number(2)?,
        session: number(3)?,
        tty_nr: number(4)?,
        tpgid: signed(5)?,
        cpu_ticks: number(11)?.saturating_add(number(12)?),
        nice: signed(16)?,
        threads: number(17)?,
        start_ticks: number(19)?,
        vsize_bytes: number(20)?,
        rss_pages: number(21)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let stat = "42 (my (odd) name) S 7 42 42 34816 -1 4194560 100 0 0 0 25 15 0 0 20 0 1 0 \
                    300 1000448 10 18446744073709551615";
        assert_eq!(
            parse_stat(stat).unwrap(),
            Stat {
                name: "my (odd) name".into(),
                state: "S".into(),
                ppid: 7,
                pgrp: 42,
                session: 42,
                tty_nr: 34816,
                tpgid: -1,
                cpu_ticks: 40,
                nice: 0,
                threads: 1,
                start_ticks: 300,
                vsize_bytes: 1000448,
                rss_pages: 10,
            }
        );
        assert!(parse_stat("42 no parens").is_err());
        assert!(parse_stat("42 (short) S").is_err());
    }

    #[test]
    fn states_carry_bsd_flags_as_ps_shows_them() {
        let stat = |line: &str| parse_stat(line).unwrap();
        // A session leader in its terminal's foreground group.
        let shell = stat("42 (sh) S 1 42 42 34816 42 0 0 0 0 0 1 1 0 0 20 0 1 0 5 100 10 0");
        assert_eq!(shell.bsd_state(42), "Ss+");
        // Niced, threaded, in the background of another session.
        let worker = stat("50 (w) R 42 42 42 34816 60 0 0 0 0 0 1 1 0 0 30 10 4 0 5 100 10 0");
        assert_eq!(worker.bsd_state(50), "RNl");
        let urgent = stat("51 (u) D 42 51 42 0 -1 0 0 0 0 0 1 1 0 0 10 -5 1 0 5 100 10 0");
        assert_eq!(urgent.bsd_state(51), "D<");
    }

    #[test]
    fn terminals_are_named_as_ps_names_them() {
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name(34816).as_deref(), Some("pts/0"));
        assert_eq!(tty_name((137 << 8) | 3).as_deref(), Some("pts/259"));
        assert_eq!(tty_name((4 << 8) | 1).as_deref(), Some("tty1"));
        assert_eq!(tty_name((4 << 8) | 64).as_deref(), Some("ttyS0"));
        assert_eq!(tty_name((5 << 8) | 1).as_deref(), Some("console"));
        // A large minor spills into the high bits.
        assert_eq!(tty_name((136 << 8) | (1 << 20)).as_deref(), Some("pts/256"));
    }

    #[test]
    fn uptime_reads_in_milliseconds() {
        assert_eq!(parse_uptime_ms("12.34 40.00\n"), Some(12_340));
        assert_eq!(parse_uptime_ms("7 1"), Some(7_000));
        assert_eq!(parse_uptime_ms("0.5 0"), Some(500));
        assert_eq!(parse_uptime_ms(""), None);
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
