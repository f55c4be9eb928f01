//! What `/proc/PID/stat` says of a process.

use std::fs;
use std::time::Duration;

use nix::unistd::{sysconf, SysconfVar};

/// The fields of `/proc/PID/stat` after the command name (its third field
/// first); `None` if the process is gone or a zombie.
fn fields_after_name(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces and parentheses.
    let fields: Vec<String> = stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    match fields.first()?.as_str() {
        "Z" | "X" => None,
        _ => Some(fields),
    }
}

/// Field `number` (counted from 1, as proc(5) does) of `fields`.
fn field(fields: &[String], number: usize) -> Option<u64> {
    fields.get(number - 3)?.parse().ok()
}

/// When process `pid` started, in clock ticks after boot (field 22).
pub fn start_time(pid: u32) -> Option<u64> {
    field(&fields_after_name(pid)?, 22)
}

/// The CPU time process `pid` has used, all its threads, in user and
/// kernel mode (fields 14 and 15; a VMM's guest time is in the first).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let fields = fields_after_name(pid)?;
    let ticks = field(&fields, 14)? + field(&fields, 15)?;
    let per_second = sysconf(SysconfVar::CLK_TCK).ok()??;
    let per_second = u64::try_from(per_second).ok().filter(|&n| n > 0)?;
    Some(Duration::from_millis(ticks * 1000 / per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time_and_uses_cpu() {
        let pid = std::process::id();
        assert!(start_time(pid).is_some());
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0);
        }
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
    }

    #[test]
    fn a_process_that_is_gone_has_no_stat() {
        assert_eq!(cpu_time(u32::MAX), None);
        assert_eq!(start_time(u32::MAX), None);
    }
}
