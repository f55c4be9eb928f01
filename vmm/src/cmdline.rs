//! Kernel command line assembly: the caller's arguments plus one
//! `virtio_mmio.device=` argument per virtio device.

use linux_loader::cmdline::{Cmdline, Error as CmdlineError};
use vm_memory::GuestAddress;

use crate::arch::x86_64::layout::{CMDLINE_MAX_SIZE, VIRTIO_MMIO_SIZE};

/// Where a virtio-mmio device sits and which GSI it interrupts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioSlot {
    pub base: u64,
    pub gsi: u32,
}

/// Builds the command line. Device arguments go before any `--` so the
/// kernel, not init, parses them.
pub fn kernel_cmdline(user: &str, devices: &[MmioSlot]) -> Result<Cmdline, CmdlineError> {
    let mut cmdline = if user.trim().is_empty() {
        Cmdline::new(CMDLINE_MAX_SIZE)?
    } else {
        Cmdline::try_from(user, CMDLINE_MAX_SIZE)?
    };
    for device in devices {
        cmdline.add_virtio_mmio_device(
            VIRTIO_MMIO_SIZE,
            GuestAddress(device.base),
            device.gsi,
            None,
        )?;
    }
    Ok(cmdline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(cmdline: &Cmdline) -> String {
        cmdline.as_cstring().unwrap().into_string().unwrap()
    }

    #[test]
    fn appends_one_argument_per_device() {
        let devices = [
            MmioSlot {
                base: 0xd000_0000,
                gsi: 5,
            },
            MmioSlot {
                base: 0xd000_1000,
                gsi: 6,
            },
        ];
        let cmdline = kernel_cmdline("console=ttyS0 reboot=k", &devices).unwrap();
        assert_eq!(
            render(&cmdline),
            "console=ttyS0 reboot=k virtio_mmio.device=4K@0xd0000000:5 \
             virtio_mmio.device=4K@0xd0001000:6"
        );
    }

    #[test]
    fn device_arguments_stay_before_init_arguments() {
        let devices = [MmioSlot {
            base: 0xd000_0000,
            gsi: 5,
        }];
        let cmdline = kernel_cmdline("quiet -- --agent-port 1024", &devices).unwrap();
        assert_eq!(
            render(&cmdline),
            "quiet virtio_mmio.device=4K@0xd0000000:5 -- --agent-port 1024"
        );
    }

    #[test]
    fn empty_user_cmdline_and_overlong_cmdline() {
        let cmdline = kernel_cmdline(
            "",
            &[MmioSlot {
                base: 0xd000_0000,
                gsi: 5,
            }],
        )
        .unwrap();
        assert_eq!(render(&cmdline), "virtio_mmio.device=4K@0xd0000000:5");
        assert!(kernel_cmdline(&"x".repeat(CMDLINE_MAX_SIZE), &[]).is_err());
    }
}
