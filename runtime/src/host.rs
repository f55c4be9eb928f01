//! What this host offers hull: which KVM, and whether it is the hull
//! machine itself.

use std::fs::{self, OpenOptions};
use std::path::Path;

/// The KVM flavour found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kvm {
    /// VT-x/AMD-V backed /dev/kvm: guests run directly.
    Hardware,
    /// PVM (`kvm_pvm`): guest kernel mode is emulated and a stock kernel
    /// cannot boot, so hull's guest needs a KVM of its own (the hull
    /// machine).
    Pvm,
    /// No usable /dev/kvm; the reason says why.
    Missing(String),
}

impl Kvm {
    /// Looks at this host's KVM.
    pub fn detect() -> Kvm {
        if Path::new("/sys/module/kvm_pvm").exists() {
            return Kvm::Pvm;
        }
        match OpenOptions::new().read(true).write(true).open("/dev/kvm") {
            Ok(_) => Kvm::Hardware,
            Err(e) => Kvm::Missing(format!("/dev/kvm: {e}")),
        }
    }

    /// One line for the user: what it is, and what hull can do with it.
    pub fn describe(&self) -> String {
        match self {
            Kvm::Hardware => "hardware (/dev/kvm)".into(),
            Kvm::Pvm => "PVM (kvm_pvm): cannot run hull's guest kernel".into(),
            Kvm::Missing(reason) => format!("none ({reason})"),
        }
    }
}

/// Whether this process runs inside the hull machine: its kernel command
/// line says so.
pub fn inside_hull_machine() -> bool {
    fs::read_to_string("/proc/cmdline").is_ok_and(|cmdline| {
        cmdline
            .split_whitespace()
            .any(|word| word.starts_with("hull.machine="))
    })
}
