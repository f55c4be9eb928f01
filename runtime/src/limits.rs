//! Docker's limit flags read into the agent's [`Limits`](hull_protocol::Limits)
//! fields: `--ulimit`, `--sysctl`, `--cpu-shares`; the VM's CPUs from
//! `--cpus`, `--cpu-quota`/`--cpu-period` and `--cpuset-cpus`; the
//! writable layer's `--storage-opt size=`; and `--memory-swap` and
//! `--memory-swappiness`, which are only checked.

use hull_protocol::Rlimit;

use crate::cpuset::CpuList;
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

/// The most vCPUs a container's VM has.
pub const MAX_VCPUS: u8 = 32;

/// The CFS period `--cpu-quota` is per when `--cpu-period` is not given.
const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// The CPU flags of a container, as Docker has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuFlags {
    /// `--cpus`: vCPUs (rounded up) and, for a fraction, a quota.
    pub cpus: Option<f64>,
    /// `--cpu-quota`: microseconds per period (-1 or 0: none).
    pub quota: Option<i64>,
    /// `--cpu-period`: the quota's period in microseconds.
    pub period: Option<u64>,
    /// `--cpuset-cpus`: the host CPUs the VM runs on.
    pub cpuset: Option<CpuList>,
}

/// A container's vCPUs and the CPU time it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuShare {
    /// Its VM's vCPUs.
    pub vcpus: u8,
    /// The CPU time it may use, in billionths of a CPU.
    pub nano_cpus: u64,
}

impl CpuFlags {
    /// The vCPUs and CPU time these give: `--cpus` when given (it names the
    /// vCPUs), else one vCPU per `--cpuset-cpus` CPU, else as many as the
    /// quota needs, else one; the CPU time from `--cpus` or the quota, else
    /// all of the vCPUs.
    pub fn share(&self) -> Result<CpuShare, String> {
        if let Some(cpus) = self.cpus {
            if !(0.01..=f64::from(MAX_VCPUS)).contains(&cpus) {
                return Err(format!(
                    "--cpus {cpus}: expected a number of CPUs from 0.01 to {MAX_VCPUS}"
                ));
            }
            if self.quota.is_some() || self.period.is_some() {
                return Err("--cpus and --cpu-quota/--cpu-period cannot both be set".into());
            }
        }
        let period = self.period.unwrap_or(DEFAULT_CPU_PERIOD);
        if !(1_000..=1_000_000).contains(&period) {
            return Err(format!(
                "--cpu-period {period}: expected 1000 to 1000000 microseconds"
            ));
        }
        let quota = match self.quota {
            None | Some(-1) | Some(0) => None,
            Some(quota) if quota >= 1_000 => Some(quota as u64),
            Some(quota) => {
                return Err(format!(
                    "--cpu-quota {quota}: expected at least 1000 microseconds (-1: no quota)"
                ))
            }
        };
        let nano_cpus = match (self.cpus, quota) {
            (Some(cpus), _) => Some((cpus * 1e9).round() as u64),
            (None, Some(quota)) => {
                let nanos = u128::from(quota) * u128::from(NANOS_PER_CPU) / u128::from(period);
                Some(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            (None, None) => None,
        };
        let most = u64::from(MAX_VCPUS);
        let vcpus = match (self.cpus, &self.cpuset, nano_cpus) {
            (Some(cpus), _, _) => cpus.ceil() as u64,
            (None, Some(cpuset), _) => cpuset.len() as u64,
            (None, None, Some(nanos)) => nanos.div_ceil(NANOS_PER_CPU),
            (None, None, None) => 1,
        }
        .min(most) as u8;
        Ok(CpuShare {
            vcpus,
            nano_cpus: nano_cpus.unwrap_or(u64::from(vcpus) * NANOS_PER_CPU),
        })
    }
}

/// `--storage-opt KEY=VALUE`: `size=SIZE`, the writable layer's size in
/// bytes, the one option hull's writable layers have.
pub fn parse_storage_opt(value: &str) -> Result<u64, String> {
    let bytes = match value.split_once('=') {
        Some((key, size)) if key.eq_ignore_ascii_case("size") => parse_size_bytes(size)?,
        _ => {
            return Err(format!(
                "{value:?} is not a storage option hull has (size=SIZE: the writable layer's size)"
            ))
        }
    };
    check_writable_layer_size(bytes).map(|()| bytes)
}

/// The smallest writable layer `--storage-opt size=` may ask for: room for
/// an ext4 journal and the overlay's own directories.
const MIN_WRITABLE_LAYER_BYTES: u64 = 16 << 20;

/// The largest: what ext4 (the layer's file system, and the usual host's,
/// which holds it as one sparse file) takes as a file.
const MAX_WRITABLE_LAYER_BYTES: u64 = 16 << 40;

/// An error unless a writable layer of `bytes` is one hull can make.
pub fn check_writable_layer_size(bytes: u64) -> Result<(), String> {
    match bytes {
        MIN_WRITABLE_LAYER_BYTES..=MAX_WRITABLE_LAYER_BYTES => Ok(()),
        _ => Err(format!(
            "--storage-opt size={bytes}: a container's writable layer is {}m to {}t",
            MIN_WRITABLE_LAYER_BYTES >> 20,
            MAX_WRITABLE_LAYER_BYTES >> 40
        )),
    }
}

/// `--memory-swappiness`: 0 to 100, or -1 for the kernel's default. Only
/// checked: a container's VM has no swap.
pub fn check_swappiness(value: i64) -> Result<(), String> {
    match (-1..=100).contains(&value) {
        true => Ok(()),
        false => Err(format!(
            "--memory-swappiness {value}: expected 0 to 100 (-1: the kernel's default)"
        )),
    }
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
    fn cpu_flags_give_vcpus_and_cpu_time_as_docker_means_them() {
        let share = |flags: CpuFlags| flags.share().map(|s| (s.vcpus, s.nano_cpus));
        let cpuset = |list: &str| Some(CpuList::parse(list).unwrap());
        assert_eq!(share(CpuFlags::default()), Ok((1, NANOS_PER_CPU)));
        let cpus = |cpus| CpuFlags {
            cpus: Some(cpus),
            ..CpuFlags::default()
        };
        assert_eq!(share(cpus(1.5)), Ok((2, 1_500_000_000)));
        let quota = |quota, period| CpuFlags {
            quota: Some(quota),
            period,
            ..CpuFlags::default()
        };
        assert_eq!(share(quota(50_000, None)), Ok((1, 500_000_000)));
        assert_eq!(share(quota(250_000, Some(100_000))), Ok((3, 2_500_000_000)));
        assert_eq!(share(quota(20_000, Some(10_000))), Ok((2, 2_000_000_000)));
        assert_eq!(share(quota(-1, None)), Ok((1, NANOS_PER_CPU)));
        assert_eq!(share(quota(i64::MAX, Some(1_000))).unwrap().0, MAX_VCPUS);
        let pinned = CpuFlags {
            cpuset: cpuset("0-3"),
            ..CpuFlags::default()
        };
        assert_eq!(share(pinned.clone()), Ok((4, 4 * NANOS_PER_CPU)));
        let pinned_and_limited = CpuFlags {
            quota: Some(150_000),
            ..pinned.clone()
        };
        assert_eq!(share(pinned_and_limited), Ok((4, 1_500_000_000)));
        let pinned_with_cpus = CpuFlags {
            cpus: Some(1.0),
            ..pinned
        };
        assert_eq!(share(pinned_with_cpus), Ok((1, NANOS_PER_CPU)));
    }

    #[test]
    fn bad_cpu_flags_are_refused() {
        for (flags, reason) in [
            (
                CpuFlags {
                    cpus: Some(1.0),
                    quota: Some(50_000),
                    ..CpuFlags::default()
                },
                "cannot both be set",
            ),
            (
                CpuFlags {
                    quota: Some(999),
                    ..CpuFlags::default()
                },
                "at least 1000",
            ),
            (
                CpuFlags {
                    period: Some(999),
                    ..CpuFlags::default()
                },
                "expected 1000 to 1000000",
            ),
            (
                CpuFlags {
                    cpus: Some(33.0),
                    ..CpuFlags::default()
                },
                "from 0.01 to 32",
            ),
        ] {
            let err = flags.share().unwrap_err();
            assert!(err.contains(reason), "{flags:?}: {err}");
        }
    }

    #[test]
    fn storage_options_and_swappiness_are_checked() {
        assert_eq!(parse_storage_opt("size=1g"), Ok(1 << 30));
        assert_eq!(parse_storage_opt("SIZE=20m"), Ok(20 << 20));
        assert!(parse_storage_opt("dm.basesize=1g")
            .unwrap_err()
            .contains("not a storage option"));
        assert!(parse_storage_opt("size=lots").is_err());
        assert!(parse_storage_opt("size=1m")
            .unwrap_err()
            .contains("is 16m to 16t"));
        assert!(parse_storage_opt("size=17t").is_err());
        assert_eq!(parse_storage_opt("size=16t"), Ok(16 << 40));
        assert_eq!(check_swappiness(0), Ok(()));
        assert_eq!(check_swappiness(-1), Ok(()));
        assert!(check_swappiness(101).is_err());
    }

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
