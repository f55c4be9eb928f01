//! `--cpuset-cpus`: the host CPUs a container's VM runs on. The VMM
//! process is pinned to them before it runs (its vCPU and device threads
//! inherit that), and the VM gets one vCPU per CPU unless `--cpus` says
//! otherwise. The jailed VMM's seccomp filter has no `sched_setaffinity`,
//! so a guest that took the VMM over still cannot leave its CPUs.

use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet as AffinityMask};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The highest CPU number a list may name (Linux's default `NR_CPUS`
/// ceiling, and what one affinity mask holds).
const MAX_CPU: usize = 1023;

/// A set of host CPUs, as Docker's `--cpuset-cpus` lists them: `0-3,6`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuList {
    /// The CPUs, ascending, each once.
    cpus: Vec<usize>,
}

impl CpuList {
    /// Reads a list: CPU numbers and `FIRST-LAST` ranges, separated by
    /// commas.
    pub fn parse(value: &str) -> Result<CpuList, String> {
        let bad = |reason: &str| format!("--cpuset-cpus {value:?}: {reason}");
        let mut cpus = Vec::new();
        for item in value.split(',') {
            let number = |text: &str| match text.trim().parse::<usize>() {
                Ok(cpu) if cpu <= MAX_CPU => Ok(cpu),
                Ok(_) => Err(bad(&format!("CPUs are numbered 0 to {MAX_CPU}"))),
                Err(_) => Err(bad("expected CPU numbers and ranges, e.g. 0-3,6")),
            };
            let (first, last) = match item.split_once('-') {
                Some((first, last)) => (number(first)?, number(last)?),
                None => (number(item)?, number(item)?),
            };
            if first > last {
                return Err(bad(&format!("the range {item} runs backwards")));
            }
            cpus.extend(first..=last);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList { cpus })
    }

    /// How many CPUs it names.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    /// Whether it names none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    /// An error naming the CPUs of the list this process may not run on
    /// (Docker's check at create), with those it may.
    pub fn check_available(&self) -> Result<(), String> {
        let allowed = sched_getaffinity(Pid::from_raw(0))
            .map_err(|errno| format!("cannot read this process's CPUs: {}", errno.desc()))?;
        let available: Vec<usize> = (0..=MAX_CPU)
            .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
            .collect();
        match self.cpus.iter().all(|cpu| available.contains(cpu)) {
            true => Ok(()),
            false => Err(format!(
                "--cpuset-cpus {self}: requested CPUs are not available; this host has {}",
                CpuList { cpus: available }
            )),
        }
    }

    /// Pins the process `command` starts (and every thread and process it
    /// makes) to these CPUs before it runs.
    pub(crate) fn pin_on_exec(&self, command: &mut Command) -> io::Result<()> {
        let mut mask = AffinityMask::new();
        for &cpu in &self.cpus {
            mask.set(cpu).map_err(io::Error::from)?;
        }
        // SAFETY: the closure runs in the forked child before exec and only
        // calls sched_setaffinity(2), which is async-signal-safe, with a
        // mask made before the fork.
        unsafe {
            command.pre_exec(move || {
                sched_setaffinity(Pid::from_raw(0), &mask).map_err(io::Error::from)
            });
        }
        Ok(())
    }
}

impl fmt::Display for CpuList {
    /// The canonical form: ascending, runs as ranges (`0-3,6`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &cpu in &self.cpus {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == cpu => *last = cpu,
                _ => runs.push((cpu, cpu)),
            }
        }
        let runs: Vec<String> = runs
            .iter()
            .map(|&(first, last)| match first == last {
                true => first.to_string(),
                false => format!("{first}-{last}"),
            })
            .collect();
        f.write_str(&runs.join(","))
    }
}

impl TryFrom<String> for CpuList {
    type Error = String;

    fn try_from(value: String) -> Result<CpuList, String> {
        CpuList::parse(&value)
    }
}

impl From<CpuList> for String {
    fn from(list: CpuList) -> String {
        list.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_docker_writes_them() {
        let list = CpuList::parse("3,0-1,1").unwrap();
        assert_eq!(list.cpus, [0, 1, 3]);
        assert_eq!(list.to_string(), "0-1,3");
        assert_eq!(CpuList::parse("0-3,5,6-7").unwrap().to_string(), "0-3,5-7");
        assert_eq!(CpuList::parse(" 2 ").unwrap().len(), 1);
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, "\"0-1,3\"");
        assert_eq!(serde_json::from_str::<CpuList>(&json).unwrap(), list);
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        for (value, reason) in [
            ("", "expected CPU numbers"),
            ("a", "expected CPU numbers"),
            ("1,", "expected CPU numbers"),
            ("-1", "expected CPU numbers"),
            ("3-1", "the range 3-1 runs backwards"),
            ("0-4096", "CPUs are numbered 0 to 1023"),
        ] {
            let err = CpuList::parse(value).unwrap_err();
            assert!(err.contains(reason), "{value:?}: {err}");
        }
    }

    /// The first CPU this process may run on.
    fn first_cpu() -> usize {
        let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..=MAX_CPU)
            .find(|&cpu| allowed.is_set(cpu).unwrap())
            .unwrap()
    }

    #[test]
    fn only_cpus_this_process_has_are_available() {
        let first = first_cpu().to_string();
        assert_eq!(CpuList::parse(&first).unwrap().check_available(), Ok(()));
        let err = CpuList::parse("1000")
            .unwrap()
            .check_available()
            .unwrap_err();
        assert!(
            err.starts_with(&format!(
                "--cpuset-cpus 1000: requested CPUs are not available; this host has {first}"
            )),
            "{err}"
        );
    }

    #[test]
    fn a_pinned_child_runs_only_on_its_cpus() {
        let first = first_cpu();
        let mut command = Command::new("cat");
        command.arg("/proc/self/status");
        let cpus = CpuList::parse(&first.to_string()).unwrap();
        cpus.pin_on_exec(&mut command).unwrap();
        let status = String::from_utf8(command.output().unwrap().stdout).unwrap();
        assert!(
            status.contains(&format!("Cpus_allowed_list:\t{first}\n")),
            "{status}"
        );
    }
}
