//! Where hull's VMs run on this host: on its own KVM, or in the hull
//! machine.

use hull_runtime::host::Kvm;

/// The environment variable that picks where VMs run.
pub const BACKEND_ENV: &str = "HULL_BACKEND";

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
        match std::env::var(BACKEND_ENV).as_deref() {
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
