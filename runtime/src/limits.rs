//! Docker's limit flags read into the agent's [`Limits`](hull_protocol::Limits)
//! fields: `--ulimit`, `--sysctl`, `--cpu-shares`; and `--memory-swap`,
//! which is only checked.

use hull_protocol::Rlimit;

use crate::units::parse_size_bytes;

/// The resource limits `--ulimit` may name, as `ulimit`(1) and Docker
/// call them.
const ULIMIT_NAMES: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `NAME=SOFT[:HARD]` (`-1`: unlimited; no HARD: the same as SOFT).
pub fn parse_ulimit(value: &str) -> Result<Rlimit, String> {
    let bad = |why: &str| why.to_owned();
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SOFT[:HARD], e.g. nofile=1024:4096"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(bad(&format!(
            "unknown limit {name:?} (one of {})",
            ULIMIT_NAMES.join(", ")
        )));
    }
    let number = |text: &str| match text {
        "-1" | "unlimited" => Ok(u64::MAX),
        _ => text
            .parse::<u64>()
            .map_err(|_| bad(&format!("{text:?} is not a number or -1"))),
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => (number(limits)?, number(limits)?),
    };
    if soft > hard {
        return Err(bad("the soft limit is above the hard one"));
    }
    Ok(Rlimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

/// `KEY=VALUE`, the key a dotted path under /proc/sys. Any key is allowed,
/// not only Docker's namespaced ones: the kernel it sets is the
/// container's own.
pub fn parse_sysctl(value: &str) -> Result<(String, String), String> {
    let (key, setting) = value
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE, e.g. net.core.somaxconn=1024".to_owned())?;
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    };
    if !key.split(['.', '/']).all(valid) {
        return Err(format!("{key:?} is not a kernel parameter name"));
    }
    Ok((key.replace('/', "."), setting.to_owned()))
}

/// Billionths of a CPU in one CPU (`--cpus` as Docker's NanoCpus).
pub const NANOS_PER_CPU: u64 = 1_000_000_000;

/// The cgroup cpu.max quota, in microseconds per 100 ms period, that holds
/// a VM of `vcpus` to `nano_cpus` billionths of a CPU; `None` when that is
/// all of its vCPUs (no quota).
pub fn cpu_quota_usec(nano_cpus: u64, vcpus: u8) -> Option<u64> {
    (nano_cpus < u64::from(vcpus) * NANOS_PER_CPU).then_some(nano_cpus / 10_000)
}

/// cgroup v2's cpu.weight for Docker's `--cpu-shares` (2 to 262144,
/// default 1024): the default share the default weight, 100.
pub fn cpu_weight(shares: u64) -> Result<u64, String> {
    if !(2..=262_144).contains(&shares) {
        return Err("expected 2 to 262144 (default 1024)".to_owned());
    }
    Ok((shares * 100 / 1024).clamp(1, 10_000))
}

/// `--memory-swap`: memory plus swap. A VM has no swap, so it limits
/// nothing; it is checked as Docker checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySwap {
    /// `-1` (unlimited) or `0` (unset): no bound to check.
    Unbounded,
    /// This many bytes, which must be at least the memory.
    Bytes(u64),
}

impl MemorySwap {
    /// `-1`, `0`, or a size (`1g`).
    pub fn parse(value: &str) -> Result<MemorySwap, String> {
        if value == "-1" {
            return Ok(MemorySwap::Unbounded);
        }
        match parse_size_bytes(value)? {
            0 => Ok(MemorySwap::Unbounded),
            bytes => Ok(MemorySwap::Bytes(bytes)),
        }
    }

    /// Fails, as Docker does, if it is less than a memory of `memory_mib`.
    pub fn check(self, memory_mib: u64) -> Result<(), String> {
        match self {
            MemorySwap::Bytes(bytes) if bytes < memory_mib << 20 => Err(format!(
                "--memory-swap: memory plus swap ({}) must be at least the memory ({memory_mib}m)",
                size_text(bytes)
            )),
            _ => Ok(()),
        }
    }
}

/// `bytes` in the largest of g, m, k that divides it (`512m`), else bytes.
fn size_text(bytes: u64) -> String {
    for (unit, size) in [("g", 1u64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_read_as_dockers() {
        let nofile = parse_ulimit("nofile=1024:4096").unwrap();
        assert_eq!((nofile.soft, nofile.hard), (1024, 4096));
        let core = parse_ulimit("core=-1").unwrap();
        assert_eq!((core.soft, core.hard), (u64::MAX, u64::MAX));
        for bad in ["nofile", "files=10", "nofile=ten", "nofile=10:5"] {
            assert!(parse_ulimit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sysctls_and_cpu_shares() {
        assert_eq!(
            parse_sysctl("net/ipv4/ip_forward=1").unwrap(),
            ("net.ipv4.ip_forward".into(), "1".into())
        );
        for bad in ["net.core.somaxconn", "=1", "a..b=1", "../x=1"] {
            assert!(parse_sysctl(bad).is_err(), "{bad}");
        }
        assert_eq!(cpu_weight(1024).unwrap(), 100);
        assert_eq!(cpu_weight(2).unwrap(), 1);
        assert_eq!(cpu_weight(262_144).unwrap(), 10_000);
        assert!(cpu_weight(1).is_err());
    }

    #[test]
    fn memory_swap_is_at_least_the_memory_or_unbounded() {
        assert_eq!(MemorySwap::parse("-1"), Ok(MemorySwap::Unbounded));
        assert_eq!(MemorySwap::parse("0"), Ok(MemorySwap::Unbounded));
        assert_eq!(MemorySwap::parse("1g"), Ok(MemorySwap::Bytes(1 << 30)));
        assert!(MemorySwap::parse("-2").is_err());
        assert!(MemorySwap::parse("lots").is_err());
        assert!(MemorySwap::Unbounded.check(4096).is_ok());
        assert!(MemorySwap::Bytes(256 << 20).check(256).is_ok());
        let short = MemorySwap::Bytes(128 << 20).check(256).unwrap_err();
        assert_eq!(
            short,
            "--memory-swap: memory plus swap (128m) must be at least the memory (256m)"
        );
    }
}
