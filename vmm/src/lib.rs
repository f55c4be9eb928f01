//! hull's virtual machine monitor.
//!
//! One process runs one guest: [`run`] builds a KVM virtual machine from a
//! [`VmConfig`], boots the kernel directly, serves its devices and returns
//! when the guest asks to stop.

pub mod arch;
mod boot;
mod cmdline;
mod config;
mod console_log;
mod device_manager;
pub mod devices;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod memory;
mod seccomp;
mod stop;
mod vcpu;
mod vm;

pub use config::{Console, Disk, FsShare, NetConfig, VmConfig, VsockConfig, MAX_VCPUS};
/// A size-bounded log file, for the VMM's own log too.
pub use console_log::RotatingLog;
pub use device_manager::MAX_VIRTIO_DEVICES;
pub use error::Error;
pub use seccomp::SeccompMode;

/// How the guest ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    /// The guest asked to reboot (0xFE written to the i8042 command port,
    /// as `reboot=k` and `panic=-1` do).
    Reset,
    /// The guest powered the machine off, or halted a vCPU.
    Shutdown,
}

/// Boots the guest described by `config` and serves it until it resets or
/// shuts down, or a vCPU fails. Returns promptly after that: every vCPU
/// thread is stopped and joined, then the devices are dropped, which stops
/// and joins their worker threads.
pub fn run(config: VmConfig) -> Result<VmExit, Error> {
    vm::run(config)
}
