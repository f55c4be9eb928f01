//! What confines a VMM process from outside the VMM: its resource limits
//! ([`rlimits`], set by the `__vmm` helper on itself before it builds the
//! VM) and, where cgroup v2 is mounted, a cgroup of its own ([`cgroup`],
//! made by the runtime around the VMM it spawns). The VMM's threads then
//! filter their own syscalls (`hull_vmm`'s seccomp allow-lists).

pub(crate) mod cgroup;
pub(crate) mod rlimits;
