//! Boots a kernel with the serial console on stdout and prints how the VM
//! ended. For checking the boot path by hand on a host with working KVM:
//!
//! ```text
//! boot <vmlinux> <initramfs.cpio> <vcpus> <memory_mib> [cmdline] [vsock_uds_path]
//! ```
//!
//! `HULL_BOOT_DISK=<raw image>` attaches that image as `/dev/vda`.

use std::process::ExitCode;

use hull_vmm::{Console, Disk, VmConfig, VsockConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(4..=6).contains(&args.len()) {
        eprintln!(
            "usage: boot <vmlinux> <initramfs> <vcpus> <memory_mib> [cmdline] [vsock_uds_path]"
        );
        return ExitCode::from(2);
    }
    let (Ok(vcpus), Ok(memory_mib)) = (args[2].parse(), args[3].parse()) else {
        eprintln!("vcpus and memory_mib must be numbers");
        return ExitCode::from(2);
    };
    let config = VmConfig {
        kernel: args[0].clone().into(),
        initramfs: Some(args[1].clone().into()),
        cmdline: args
            .get(4)
            .cloned()
            .unwrap_or_else(|| "console=ttyS0 reboot=k panic=-1 tsc=reliable".into()),
        vcpus,
        memory_mib,
        console: Console::Stdout,
        vsock: args.get(5).map(|path| VsockConfig {
            guest_cid: 3,
            uds_path: path.into(),
        }),
        shares: Vec::new(),
        disks: std::env::var_os("HULL_BOOT_DISK")
            .map(|path| Disk {
                path: path.into(),
                read_only: false,
            })
            .into_iter()
            .collect(),
        net: Vec::new(),
        seccomp: Default::default(),
    };
    let started = std::time::Instant::now();
    match hull_vmm::run(config) {
        Ok(exit) => {
            println!("\nVM exit: {exit:?} after {:.1?}", started.elapsed());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nVM error: {e}");
            ExitCode::FAILURE
        }
    }
}
