//! The error [`crate::run`] returns.

use std::path::PathBuf;

use crate::boot::BootError;
use crate::devices::bus::BusError;
use crate::devices::virtio::mmio::MmioError;
use crate::memory::MemoryError;

/// Why a VM could not be built or did not run to a guest-requested exit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid VM configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(#[source] kvm_ioctls::Error),
    #[error("{op} failed: {source}")]
    Kvm {
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error("invalid kernel command line: {0}")]
    Cmdline(#[source] linux_loader::cmdline::Error),
    #[error("cannot open console file {path}: {source}")]
    ConsoleFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create eventfd for {what}: {source}")]
    EventFd {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {device}: {source}")]
    Device {
        device: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot attach {device}: {source}")]
    Transport {
        device: String,
        #[source]
        source: MmioError,
    },
    #[error("cannot place {device} on its bus: {source}")]
    Bus {
        device: String,
        #[source]
        source: BusError,
    },
    #[error("too many virtio devices ({count}); at most {max} fit")]
    TooManyDevices { count: usize, max: usize },
    #[error("cannot build CPUID of vCPU {index}: {source:?}")]
    Cpuid {
        index: u8,
        source: vmm_sys_util::fam::Error,
    },
    #[error("cannot build boot MSR list: {0:?}")]
    Msrs(vmm_sys_util::fam::Error),
    #[error("vCPU {index}: {op} failed: {source}")]
    VcpuSetup {
        index: u8,
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("cannot install the vCPU kick signal handler: {0}")]
    KickSignal(#[source] vmm_sys_util::errno::Error),
    #[error("cannot start thread of vCPU {index}: {source}")]
    SpawnVcpu {
        index: u8,
        #[source]
        source: std::io::Error,
    },
    #[error("vCPU {index}: KVM_RUN failed: {source}")]
    VcpuRun {
        index: u8,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("vCPU {index}: KVM internal error, suberror {suberror}, data {data:x?}")]
    KvmInternal {
        index: u8,
        suberror: u32,
        data: Vec<u64>,
    },
    #[error("vCPU {index}: VM entry failed, hardware reason {reason:#x}")]
    FailEntry { index: u8, reason: u64 },
    #[error("vCPU {index}: the guest triple-faulted (KVM_EXIT_SHUTDOWN)")]
    TripleFault { index: u8 },
    #[error("vCPU {index}: unhandled exit {exit}")]
    UnhandledExit { index: u8, exit: String },
    #[error("vCPU {index} thread panicked")]
    VcpuPanicked { index: u8 },
}
