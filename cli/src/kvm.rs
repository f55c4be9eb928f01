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
    /// Inside the KVM test host (QEMU TCG with nested SVM).
    TestHost,
}

impl Backend {
    /// `HULL_BACKEND=direct|testhost` forces a choice; otherwise hardware
    /// KVM runs guests directly and anything else uses the test host.
    pub fn select(kvm: &Kvm) -> Result<Backend, String> {
        match std::env::var("HULL_BACKEND").as_deref() {
            Ok("direct") => Ok(Backend::Direct),
            Ok("testhost") => Ok(Backend::TestHost),
            Ok(other) => Err(format!(
                "HULL_BACKEND={other} is not a backend: use direct or testhost"
            )),
            Err(_) if *kvm == Kvm::Hardware => Ok(Backend::Direct),
            Err(_) => Ok(Backend::TestHost),
        }
    }

    /// One line for the user explaining a test-host run, or None.
    pub fn notice(self, kvm: &Kvm) -> Option<String> {
        (self == Backend::TestHost).then(|| {
            format!(
                "hull: /dev/kvm here is {}; running the VM inside the KVM test host \
                 (QEMU TCG with nested SVM): about 5 s more to start and ~15x slower",
                match kvm {
                    Kvm::Pvm => "PVM (kvm_pvm), which cannot run hull's guest kernel".to_owned(),
                    Kvm::Missing(reason) => format!("unusable ({reason})"),
                    Kvm::Hardware => "hardware KVM, but HULL_BACKEND=testhost".to_owned(),
                }
            )
        })
    }
}
