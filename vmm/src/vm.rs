//! Builds a VM from a [`VmConfig`] and runs it to its end.

use std::sync::Arc;

use kvm_bindings::{kvm_pit_config, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Cap, Kvm, VmFd};

use crate::arch::x86_64::cpuid;
use crate::arch::x86_64::layout::{ram_ranges, KVM_IDENTITY_MAP_ADDRESS, KVM_TSS_ADDRESS};
use crate::cmdline::kernel_cmdline;
use crate::config::VmConfig;
use crate::seccomp::{Filters, ThreadKind};
use crate::stop::StopSignal;
use crate::vcpu::{self, Vcpu};
use crate::{boot, device_manager, memory, Error, VmExit};

fn kvm_error(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { op, source }
}

/// Creates the VM with the in-kernel IOAPIC/PIC/LAPICs and PIT.
fn create_vm(kvm: &Kvm) -> Result<VmFd, Error> {
    let vm = kvm.create_vm().map_err(kvm_error("KVM_CREATE_VM"))?;
    vm.set_tss_address(KVM_TSS_ADDRESS as usize)
        .map_err(kvm_error("KVM_SET_TSS_ADDR"))?;
    vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDRESS)
        .map_err(kvm_error("KVM_SET_IDENTITY_MAP_ADDR"))?;
    vm.create_irq_chip()
        .map_err(kvm_error("KVM_CREATE_IRQCHIP"))?;
    let pit = kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    };
    vm.create_pit2(pit).map_err(kvm_error("KVM_CREATE_PIT2"))?;
    Ok(vm)
}

/// Boots the guest described by `config` and returns once it resets or
/// shuts down, or a vCPU fails.
pub fn run(config: VmConfig) -> Result<VmExit, Error> {
    config.validate().map_err(Error::InvalidConfig)?;

    // Guest memory is created first so that, as locals drop in reverse
    // order, it is unmapped last: after the vCPUs, the devices and their
    // workers (which hold clones of it), and the VM fd, whose KVM memory
    // slots point into it. Keep everything that maps or references guest
    // memory declared after `mem`.
    let ram = ram_ranges(config.memory_mib << 20);
    let mem = memory::create(&ram)?;

    let kvm = Kvm::new().map_err(Error::OpenKvm)?;
    let vm = create_vm(&kvm)?;
    memory::register(&vm, &mem)?;

    let filters = Filters::new(config.seccomp)?;
    let filter = |kind| filters.as_ref().map(|filters| filters.get(kind));
    let (stop, stop_reasons) = StopSignal::new();
    let stop = Arc::new(stop);
    let devices = device_manager::create(&vm, &mem, &config, stop.clone(), filters.as_ref())?;

    let cmdline = kernel_cmdline(&config.cmdline, &devices.virtio_slots).map_err(Error::Cmdline)?;
    log::debug!("kernel command line: {cmdline:?}");
    let boot_entry = boot::load(
        &mem,
        &ram,
        &config.kernel,
        config.initramfs.as_deref(),
        &cmdline,
        config.vcpus,
    )?;

    let mut supported_cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm_error("KVM_GET_SUPPORTED_CPUID"))?;
    if kvm.check_extension(Cap::TscDeadlineTimer) {
        cpuid::advertise_tsc_deadline_timer(supported_cpuid.as_mut_slice());
    }
    let vcpus = (0..config.vcpus)
        .map(|index| Vcpu::new(&vm, index, config.vcpus, &supported_cpuid, &boot_entry))
        .collect::<Result<Vec<_>, _>>()?;

    vcpu::install_kick_handler()?;
    // This thread keeps the buses (the devices) until the vCPUs are joined,
    // so that it, not the last vCPU to end, tears the devices down.
    let pio = Arc::new(devices.pio);
    let mmio = Arc::new(devices.mmio);
    let threads = vcpu::spawn_all(
        vcpus,
        Arc::clone(&pio),
        Arc::clone(&mmio),
        stop.clone(),
        filter(ThreadKind::Vcpu),
    );
    // Every thread is started: this one is filtered last.
    if let Some(Err(e)) = filter(ThreadKind::Vmm).map(|filter| filter.apply()) {
        stop.request(Err(Error::Seccomp(e)));
    }

    // `stop` is alive here, so the channel cannot close before a reason
    // arrives.
    let reason = stop_reasons
        .recv()
        .expect("stop signal sender is held by run");

    for thread in &threads {
        vcpu::kick(thread);
    }
    let mut panicked = None;
    for (index, thread) in threads.into_iter().enumerate() {
        if thread.join().is_err() {
            panicked.get_or_insert(index as u8);
        }
    }
    match (reason, panicked) {
        (Ok(_), Some(index)) => Err(Error::VcpuPanicked { index }),
        (reason, _) => reason,
    }
}
