//! Builds the devices of a VM and attaches them: the serial port and i8042
//! on the port-I/O bus, one virtio-mmio window per virtio device on the
//! MMIO bus, each with its irqfd and per-queue ioeventfds registered with
//! KVM.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use kvm_ioctls::{IoEventAddress, VmFd};
use virtio_bindings::virtio_mmio::VIRTIO_MMIO_QUEUE_NOTIFY;
use vmm_sys_util::eventfd::EventFd;

use crate::arch::x86_64::layout::{
    I8042_PORT_BASE, I8042_PORT_LEN, IOAPIC_PINS, SERIAL_GSI, SERIAL_PORT_BASE, SERIAL_PORT_LEN,
    VIRTIO_GSI_START, VIRTIO_MMIO_END, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_START,
};
use crate::cmdline::MmioSlot;
use crate::config::{format_mac, Console, NetConfig, VmConfig};
use crate::console_log::{RotatingLog, CONSOLE_LOG_LIMIT};
use crate::devices::bus::{Bus, SharedBusDevice};
use crate::devices::i8042::I8042;
use crate::devices::serial::SerialDevice;
use crate::devices::virtio::block::Block;
use crate::devices::virtio::fs::Fs;
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::net::{check_tun_fd, Net, NetError, Tap};
use crate::devices::virtio::vsock::Vsock;
use crate::devices::virtio::{device_type, GuestMemory, Interrupt, VirtioDevice, WorkerSlot};
use crate::seccomp::{Filters, ThreadKind};
use crate::stop::StopSignal;
use crate::Error;

/// The VM's buses and where its virtio devices are, for the command line.
pub struct Devices {
    pub pio: Bus,
    pub mmio: Bus,
    pub virtio_slots: Vec<MmioSlot>,
}

/// One GSI each, from [`VIRTIO_GSI_START`] to the last IOAPIC pin.
pub const MAX_VIRTIO_DEVICES: usize = (IOAPIC_PINS - VIRTIO_GSI_START) as usize;

/// The MMIO window and GSI of the `index`th virtio device, if one is left.
pub fn virtio_slot(index: usize) -> Option<MmioSlot> {
    let base = VIRTIO_MMIO_START + VIRTIO_MMIO_SIZE * u64::try_from(index).ok()?;
    let gsi = VIRTIO_GSI_START + u32::try_from(index).ok()?;
    (base < VIRTIO_MMIO_END && gsi < IOAPIC_PINS).then_some(MmioSlot { base, gsi })
}

/// Creates and attaches every device `config` asks for, starting each
/// virtio device's worker thread under its kind's filter from `filters`.
pub fn create(
    vm: &VmFd,
    mem: &GuestMemory,
    config: &VmConfig,
    stop: Arc<StopSignal>,
    filters: Option<&Filters>,
) -> Result<Devices, Error> {
    let mut pio = Bus::new();
    let serial = SerialDevice::new(
        irqfd(vm, SERIAL_GSI, "the serial port")?,
        console(&config.console)?,
    );
    attach(
        &mut pio,
        Arc::new(Mutex::new(serial)),
        SERIAL_PORT_BASE,
        SERIAL_PORT_LEN,
        "the serial port",
    )?;
    let i8042 = I8042::new(stop);
    attach(
        &mut pio,
        Arc::new(Mutex::new(i8042)),
        I8042_PORT_BASE,
        I8042_PORT_LEN,
        "the i8042",
    )?;

    let count = usize::from(config.vsock.is_some())
        + config.shares.len()
        + config.disks.len()
        + config.net.len();
    if count > MAX_VIRTIO_DEVICES {
        return Err(Error::TooManyDevices {
            count,
            max: MAX_VIRTIO_DEVICES,
        });
    }
    let mut mmio = Bus::new();
    let virtio = virtio_devices(config)?;
    let mut virtio_slots = Vec::with_capacity(virtio.len());
    for (index, (name, device)) in virtio.into_iter().enumerate() {
        let slot = virtio_slot(index).ok_or(Error::TooManyDevices {
            count,
            max: MAX_VIRTIO_DEVICES,
        })?;
        let worker = worker_slot(device.as_ref(), filters).map_err(|source| Error::Device {
            device: name.clone(),
            source: Box::new(source),
        })?;
        attach_virtio(vm, mem, &mut mmio, slot, &name, device, worker)?;
        virtio_slots.push(slot);
    }
    Ok(Devices {
        pio,
        mmio,
        virtio_slots,
    })
}

/// A virtio device and its name for error messages.
type NamedDevice = (String, Box<dyn VirtioDevice>);

/// The virtio devices in slot order: vsock first, then the shares, then the
/// disks in config order, then the net devices. Linux probes virtio-mmio
/// devices in command-line order, so the disks become `/dev/vda`,
/// `/dev/vdb`, ... as listed, and the net devices `eth0`, `eth1`, ...
fn virtio_devices(config: &VmConfig) -> Result<Vec<NamedDevice>, Error> {
    let mut devices: Vec<NamedDevice> = Vec::new();
    if let Some(vsock) = &config.vsock {
        let name = format!(
            "virtio-vsock (guest CID {}, {})",
            vsock.guest_cid,
            vsock.uds_path.display()
        );
        match Vsock::new(vsock.guest_cid, vsock.uds_path.clone()) {
            Ok(device) => devices.push((name, Box::new(device))),
            Err(e) => return Err(device_error(name, e)),
        }
    }
    for share in &config.shares {
        let name = format!(
            "virtio-fs share {:?} of {}",
            share.tag,
            share.host_dir.display()
        );
        let (tag, dir) = (&share.tag, &share.host_dir);
        let entries = share.visible_entries.as_deref();
        let device = match entries {
            _ if share.read_only && share.changes_elsewhere => {
                Fs::changing_elsewhere(tag, dir, entries)
            }
            Some(entries) => Fs::subset(tag, dir, share.read_only, entries),
            None => Fs::new(tag, dir, share.read_only),
        };
        match device {
            Ok(device) => devices.push((name, Box::new(device))),
            Err(e) => return Err(device_error(name, e)),
        }
    }
    for disk in &config.disks {
        let mode = if disk.read_only {
            "read-only"
        } else {
            "read-write"
        };
        let name = format!("virtio-blk disk {} ({mode})", disk.path.display());
        match Block::new(&disk.path, disk.read_only) {
            Ok(device) => devices.push((name, Box::new(device))),
            Err(e) => return Err(device_error(name, e)),
        }
    }
    for net in &config.net {
        let name = format!("virtio-net device with MAC {}", format_mac(&net.mac));
        match net_device(net) {
            Ok(device) => devices.push((name, Box::new(device))),
            Err(e) => return Err(device_error(name, e)),
        }
    }
    Ok(devices)
}

/// The device on `net.tap_fd`, which it takes over.
fn net_device(net: &NetConfig) -> Result<Net, NetError> {
    check_tun_fd(net.tap_fd)?;
    // SAFETY: the config hands `tap_fd` over to the VMM, which owns it from
    // then on (see `NetConfig::tap_fd`), and `VmConfig::validate` refuses a
    // config that hands one fd to two devices, so this is its only owner.
    // It is open and a /dev/net/tun file, which the VMM never opens
    // itself, so no other part of this process uses it.
    let fd = unsafe { OwnedFd::from_raw_fd(net.tap_fd) };
    Ok(Net::new(Tap::new(fd)?, net.mac))
}

fn device_error(device: String, source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Device {
        device,
        source: Box::new(source),
    }
}

/// The worker thread of `device`, started now, before the guest runs,
/// under the filter of its kind: the FUSE server's own or the one all other
/// devices share.
fn worker_slot(
    device: &dyn VirtioDevice,
    filters: Option<&Filters>,
) -> std::io::Result<WorkerSlot> {
    let (name, kind) = match device.device_type() {
        device_type::FS => ("virtio-fs", ThreadKind::VirtioFs),
        device_type::BLOCK => ("virtio-blk", ThreadKind::Device),
        device_type::NET => ("virtio-net", ThreadKind::Device),
        _ => ("vsock", ThreadKind::Device),
    };
    WorkerSlot::spawn(name, filters.map(|filters| filters.get(kind)))
}

fn attach_virtio(
    vm: &VmFd,
    mem: &GuestMemory,
    mmio: &mut Bus,
    slot: MmioSlot,
    name: &str,
    device: Box<dyn VirtioDevice>,
    worker: WorkerSlot,
) -> Result<(), Error> {
    let interrupt = Interrupt::new(irqfd(vm, slot.gsi, name)?);
    let transport =
        MmioTransport::new(device, mem.clone(), interrupt, worker).map_err(|source| {
            Error::Transport {
                device: name.to_owned(),
                source,
            }
        })?;
    let notify_address = IoEventAddress::Mmio(slot.base + u64::from(VIRTIO_MMIO_QUEUE_NOTIFY));
    for (queue, event) in transport.queue_notify_events() {
        vm.register_ioevent(event, &notify_address, queue)
            .map_err(|source| Error::Kvm {
                op: "KVM_IOEVENTFD",
                source,
            })?;
    }
    attach(
        mmio,
        Arc::new(Mutex::new(transport)),
        slot.base,
        VIRTIO_MMIO_SIZE,
        name,
    )
}

/// A new eventfd registered with KVM as the irqfd of `gsi`.
fn irqfd(vm: &VmFd, gsi: u32, what: &str) -> Result<EventFd, Error> {
    let event = EventFd::new(libc::EFD_NONBLOCK).map_err(|source| Error::EventFd {
        what: format!("the interrupt of {what}"),
        source,
    })?;
    vm.register_irqfd(&event, gsi)
        .map_err(|source| Error::Kvm {
            op: "KVM_IRQFD",
            source,
        })?;
    Ok(event)
}

fn attach(
    bus: &mut Bus,
    device: SharedBusDevice,
    base: u64,
    len: u64,
    name: &str,
) -> Result<(), Error> {
    bus.insert(device, base, len).map_err(|source| Error::Bus {
        device: name.to_owned(),
        source,
    })
}

/// Where the serial output goes.
fn console(console: &Console) -> Result<Box<dyn Write + Send>, Error> {
    Ok(match console {
        Console::Off => Box::new(std::io::sink()),
        Console::Stdout => Box::new(std::io::stdout()),
        Console::File(path) => Box::new(RotatingLog::open(path, CONSOLE_LOG_LIMIT).map_err(
            |source| Error::ConsoleFile {
                path: path.clone(),
                source,
            },
        )?),
    })
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::fd::{AsRawFd, IntoRawFd};

    use super::*;
    use crate::config::Disk;
    use crate::devices::virtio::net::tests::open_tun;

    fn config_with(disks: Vec<Disk>, tap_fd: i32) -> VmConfig {
        VmConfig {
            kernel: "/k".into(),
            initramfs: None,
            cmdline: String::new(),
            vcpus: 1,
            memory_mib: 64,
            console: Console::Off,
            vsock: None,
            shares: Vec::new(),
            disks,
            net: vec![NetConfig {
                tap_fd,
                mac: [0x02, 0, 0, 0, 0, 0x07],
            }],
            seccomp: crate::SeccompMode::Off,
        }
    }

    /// The one-line error building the devices of `config` fails with.
    fn device_error_of(config: &VmConfig) -> String {
        match virtio_devices(config) {
            Err(e @ Error::Device { .. }) => e.to_string(),
            Err(e) => panic!("not a device error: {e}"),
            Ok(_) => panic!("devices built"),
        }
    }

    #[test]
    fn net_devices_refuse_fds_that_are_not_taps() {
        let null = File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        assert_eq!(
            device_error_of(&config_with(Vec::new(), fd)),
            format!(
                "cannot create virtio-net device with MAC 02:00:00:00:00:07: \
                 tap fd {fd} is not a tap: it is not a /dev/net/tun file"
            )
        );
        assert_eq!(
            device_error_of(&config_with(Vec::new(), 999_999)),
            "cannot create virtio-net device with MAC 02:00:00:00:00:07: tap fd 999999 is not open"
        );
        // Still open: the device manager did not take it over.
        assert!(nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok());
        drop(null);
    }

    #[test]
    fn net_devices_take_their_tap_and_come_after_the_disks() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        File::create(&image).unwrap().set_len(4096).unwrap();
        let disk = Disk {
            path: image,
            read_only: false,
        };
        let tap_fd = open_tun(libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR).into_raw_fd();
        let devices = virtio_devices(&config_with(vec![disk], tap_fd)).unwrap();
        let types: Vec<u32> = devices.iter().map(|(_, d)| d.device_type()).collect();
        assert_eq!(types, [device_type::BLOCK, device_type::NET]);
        assert_eq!(devices[1].0, "virtio-net device with MAC 02:00:00:00:00:07");
    }

    #[test]
    fn virtio_slots_are_consecutive_pages_and_gsis_up_to_the_last_ioapic_pin() {
        assert_eq!(
            virtio_slot(0),
            Some(MmioSlot {
                base: 0xd000_0000,
                gsi: 5
            })
        );
        assert_eq!(
            virtio_slot(2),
            Some(MmioSlot {
                base: 0xd000_2000,
                gsi: 7
            })
        );
        assert_eq!(
            virtio_slot(18),
            Some(MmioSlot {
                base: 0xd001_2000,
                gsi: 23
            })
        );
        assert_eq!(virtio_slot(MAX_VIRTIO_DEVICES - 1).map(|s| s.gsi), Some(23));
        assert_eq!(virtio_slot(MAX_VIRTIO_DEVICES), None);
    }
}
