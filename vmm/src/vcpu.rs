//! vCPUs: register setup before boot and the per-vCPU run loop that
//! dispatches port I/O and MMIO exits to the buses.
//!
//! Stopping: [`kick`] sends [`kick_signal`] to a vCPU thread. Its handler sets
//! `immediate_exit` in that thread's `kvm_run`, so KVM_RUN returns EINTR
//! whether the signal arrives during KVM_RUN or just before it; the loop
//! then sees [`StopSignal::is_stopping`] and returns.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use kvm_bindings::{kvm_run, CpuId, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};
use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

use crate::arch::x86_64::{cpuid, lapic, msr, regs};
use crate::boot::BootEntry;
use crate::devices::bus::Bus;
use crate::seccomp::ThreadFilter;
use crate::stop::{StopReason, StopSignal};
use crate::{Error, VmExit};

thread_local! {
    /// This thread's `kvm_run`, for the kick signal handler.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The real-time signal that kicks vCPU threads out of KVM_RUN.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

extern "C" fn handle_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: `run` is this thread's kvm_run mapping, set by the vCPU
        // loop and valid until the VcpuFd (which outlives the loop) drops.
        // A volatile byte store is what KVM expects of immediate_exit.
        unsafe { std::ptr::write_volatile(&raw mut (*run).immediate_exit, 1) };
    }
}

/// Installs the kick signal handler (process-wide, idempotent).
pub fn install_kick_handler() -> Result<(), Error> {
    register_signal_handler(kick_signal(), handle_kick).map_err(Error::KickSignal)
}

/// Interrupts a vCPU thread so it notices the stop request.
pub fn kick<T>(thread: &JoinHandle<T>) {
    // A thread that already returned cannot be kicked and needs no kick.
    let _ = thread.kill(kick_signal());
}

/// One vCPU, configured and ready to run.
pub struct Vcpu {
    index: u8,
    fd: VcpuFd,
}

impl Vcpu {
    /// Creates vCPU `index` with its CPUID, MSRs, FPU and LAPIC set up.
    /// The boot vCPU (index 0) also starts in long mode at `boot.entry`;
    /// the others wait for the kernel's INIT/SIPI.
    pub fn new(
        vm: &VmFd,
        index: u8,
        vcpus: u8,
        supported_cpuid: &CpuId,
        boot: &BootEntry,
    ) -> Result<Self, Error> {
        let setup = |op| move |source| Error::VcpuSetup { index, op, source };
        let fd = vm
            .create_vcpu(u64::from(index))
            .map_err(setup("KVM_CREATE_VCPU"))?;

        let cpuid = cpuid::vcpu_cpuid(supported_cpuid, index, vcpus)
            .map_err(|source| Error::Cpuid { index, source })?;
        fd.set_cpuid2(&cpuid).map_err(setup("KVM_SET_CPUID2"))?;

        let msrs = msr::boot_msrs().map_err(Error::Msrs)?;
        let written = fd.set_msrs(&msrs).map_err(setup("KVM_SET_MSRS"))?;
        if written != msrs.as_slice().len() {
            let failed = msrs.as_slice()[written].index;
            log::warn!("vCPU {index}: KVM refused boot MSR {failed:#x}");
        }

        fd.set_fpu(&regs::boot_fpu())
            .map_err(setup("KVM_SET_FPU"))?;
        let mut lapic_state = fd.get_lapic().map_err(setup("KVM_GET_LAPIC"))?;
        lapic::configure_lint(&mut lapic_state);
        fd.set_lapic(&lapic_state).map_err(setup("KVM_SET_LAPIC"))?;

        if index == 0 {
            let mut sregs = fd.get_sregs().map_err(setup("KVM_GET_SREGS"))?;
            regs::configure_long_mode(&mut sregs, boot.cr3);
            fd.set_sregs(&sregs).map_err(setup("KVM_SET_SREGS"))?;
            fd.set_regs(&regs::boot_regs(boot.entry.0))
                .map_err(setup("KVM_SET_REGS"))?;
        }
        Ok(Self { index, fd })
    }

    /// Runs the guest on this thread until the VM stops; reports this
    /// vCPU's reason for stopping (if it is the first) through `stop`.
    pub fn run(mut self, pio: &Bus, mmio: &Bus, stop: &StopSignal) {
        KVM_RUN.with(|run| run.set(self.fd.get_kvm_run()));
        while !stop.is_stopping() {
            if let Some(reason) = self.run_once(pio, mmio) {
                stop.request(reason);
            }
        }
        KVM_RUN.with(|run| run.set(std::ptr::null_mut()));
    }

    /// One KVM_RUN and the handling of its exit; `Some` ends the VM.
    fn run_once(&mut self, pio: &Bus, mmio: &Bus) -> Option<StopReason> {
        let index = self.index;
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.fd.set_kvm_immediate_exit(0);
                return None;
            }
            Err(source) => return Some(Err(Error::VcpuRun { index, source })),
        };
        match exit {
            VcpuExit::IoIn(port, data) => {
                if !pio.read(u64::from(port), data) {
                    data.fill(0xff);
                }
            }
            VcpuExit::IoOut(port, data) => {
                pio.write(u64::from(port), data);
            }
            VcpuExit::MmioRead(addr, data) => {
                if !mmio.read(addr, data) {
                    data.fill(0xff);
                }
            }
            VcpuExit::MmioWrite(addr, data) => {
                mmio.write(addr, data);
            }
            VcpuExit::Intr => {}
            VcpuExit::Hlt => return Some(Ok(VmExit::Shutdown)),
            VcpuExit::Shutdown => return Some(Err(Error::TripleFault { index })),
            VcpuExit::SystemEvent(KVM_SYSTEM_EVENT_SHUTDOWN, _) => {
                return Some(Ok(VmExit::Shutdown))
            }
            VcpuExit::SystemEvent(KVM_SYSTEM_EVENT_RESET, _) => return Some(Ok(VmExit::Reset)),
            VcpuExit::FailEntry(reason, _) => return Some(Err(Error::FailEntry { index, reason })),
            VcpuExit::InternalError => return Some(Err(self.internal_error())),
            other => {
                return Some(Err(Error::UnhandledExit {
                    index,
                    exit: format!("{other:?}"),
                }))
            }
        }
        None
    }

    fn internal_error(&mut self) -> Error {
        // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so `internal`
        // is the union member KVM filled in.
        let internal = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal };
        let ndata = (internal.ndata as usize).min(internal.data.len());
        Error::KvmInternal {
            index: self.index,
            suberror: internal.suberror,
            data: internal.data[..ndata].to_vec(),
        }
    }

    pub fn index(&self) -> u8 {
        self.index
    }
}

/// Starts each vCPU on its own thread, which installs `filter` before it
/// runs the guest. A thread that cannot be started or filtered stops the VM
/// through `stop`; the threads started so far are returned.
pub fn spawn_all(
    vcpus: Vec<Vcpu>,
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    stop: Arc<StopSignal>,
    filter: Option<Arc<ThreadFilter>>,
) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::with_capacity(vcpus.len());
    for vcpu in vcpus {
        let index = vcpu.index();
        let (pio, mmio, thread_stop) = (pio.clone(), mmio.clone(), stop.clone());
        let filter = filter.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || {
                if let Some(Err(e)) = filter.map(|filter| filter.apply()) {
                    thread_stop.request(Err(Error::Seccomp(e)));
                    return;
                }
                stop_vm_on_panic(index, &thread_stop, || vcpu.run(&pio, &mmio, &thread_stop))
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(source) => {
                stop.request(Err(Error::SpawnVcpu { index, source }));
                break;
            }
        }
    }
    threads
}

/// Runs vCPU `index`'s `body`. If it panics, the VM stops with an error
/// naming the vCPU, rather than running on without it; the panic then goes
/// on, so that joining the thread reports it too.
fn stop_vm_on_panic(index: u8, stop: &StopSignal, body: impl FnOnce()) {
    // AssertUnwindSafe: after a panic nothing of the vCPU is used again; the
    // devices it shares are behind mutexes, which the panic poisons.
    if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(body)) {
        stop.request(Err(Error::VcpuPanicked { index }));
        panic::resume_unwind(panic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_vcpu_stops_the_vm_naming_itself() {
        let (stop, reasons) = StopSignal::new();
        let stop = Arc::new(stop);
        let thread_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            stop_vm_on_panic(3, &thread_stop, || panic!("vCPU bug"));
        });
        assert!(thread.join().is_err(), "the panic reaches join");
        assert!(stop.is_stopping());
        match reasons.try_recv() {
            Ok(Err(Error::VcpuPanicked { index: 3 })) => {}
            other => panic!("unexpected stop reason {other:?}"),
        }
    }
}
