//! `hull version`.

use anyhow::Result;

use crate::assets;
use crate::kvm::{Backend, Kvm};

pub fn print() -> Result<u8> {
    println!("hull {}", env!("CARGO_PKG_VERSION"));
    match assets::guest_kernel(None) {
        Ok(kernel) => {
            let release = kernel
                .parent()
                .and_then(|dir| std::fs::read_to_string(dir.join("release")).ok())
                .map(|r| r.trim().to_owned())
                .unwrap_or_else(|| "release unknown".into());
            println!("kernel:  {} ({release})", kernel.display());
        }
        Err(err) => println!("kernel:  missing ({err:#})"),
    }
    let kvm = Kvm::detect();
    println!("kvm:     {}", kvm.describe());
    let backend = match Backend::select(&kvm) {
        Ok(Backend::Direct) => "direct (VMs run on this host's /dev/kvm)".to_owned(),
        Ok(Backend::TestHost) => {
            "test host (VMs run inside QEMU TCG with nested SVM, ~15x slower)".to_owned()
        }
        Err(err) => err,
    };
    println!("backend: {backend}");
    Ok(0)
}
