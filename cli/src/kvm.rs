//! Which KVM this host offers, and therefore where hull's VMs run.

use std::fs::OpenOptions;
use std::path::Path;

/// The KVM flavour found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kvm {
    /// VT-x/AMD-V backed /dev/kvm: guests run directly.
    Hardware,
    /// PVM (`kvm_pvm`): guest kernel mode is emulated and a stock kernel
    /// cannot boot, so hull's guest needs the KVM test host.
    Pvm,
    /// No usable /dev/kvm; the reason says why.
    Missing(String),
}

impl Kvm {
    pub fn detect() -> Kvm {
        if Path::new("/sys/module/kvm_pvm").exists() {
            return Kvm::Pvm;
        }
        match OpenOptions::new().read(true).write(true).open("/dev/kvm") {
            Ok(_) => Kvm::Hardware,
            Err(e) => Kvm::Missing(format!("/dev/kvm: {e}")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Kvm::Hardware => "hardware (/dev/kvm)".into(),
            Kvm::Pvm => "PVM (kvm_pvm): cannot run hull's guest kernel".into(),
            Kvm::Missing(reason) => format!("none ({reason})"),
        }
    }
}

/// Where a VM is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// On this host's /dev/kvm.
    Direct,
    /// Inside the hull machine (QEMU TCG with nested SVM).
    Machine,
}

impl Backend {
    /// `HULL_BACKEND=direct|machine` forces a choice; otherwise hardware
    /// KVM runs guests directly and anything else uses the hull machine.
    pub fn select(kvm: &Kvm) -> Result<Backend, String> {
        match std::env::var(crate::machine::BACKEND_ENV).as_deref() {
            Ok("direct") => Ok(Backend::Direct),
            Ok("machine") => Ok(Backend::Machine),
            Ok(other) => Err(format!(
                "HULL_BACKEND={other} is not a backend: use direct or machine"
            )),
            Err(_) if *kvm == Kvm::Hardware => Ok(Backend::Direct),
            Err(_) => Ok(Backend::Machine),
        }
    }

    /// Why VMs run in the hull machine on this host.
    pub fn reason(self, kvm: &Kvm) -> String {
        match kvm {
            Kvm::Pvm => {
                "/dev/kvm here is PVM (kvm_pvm), which cannot run hull's guest kernel".into()
            }
            Kvm::Missing(reason) => format!("/dev/kvm here is unusable ({reason})"),
            Kvm::Hardware => "hardware KVM, but HULL_BACKEND=machine".into(),
        }
    }

    /// The line a user sees when a command starts the hull machine, or
    /// None where VMs run directly.
    pub fn notice(self, kvm: &Kvm) -> Option<String> {
        (self == Backend::Machine).then(|| {
            format!(
                "hull: {}; starting the hull machine (QEMU TCG with nested SVM, \
                 `hull machine --help`): about {MACHINE_START_SECS} s now, and work \
                 in its containers runs {MACHINE_SLOWDOWN} slower than natively here",
                self.reason(kvm)
            )
        })
    }
}

/// Measured on a 2-CPU PVM host (bench/RESULTS.md, "The hull machine"):
/// `hull machine start`, and a CPU-bound loop in a container against the
/// same loop run natively.
const MACHINE_START_SECS: u32 = 6;
const MACHINE_SLOWDOWN: &str = "~15x";
