//! `hull version` and `hull info`.

use anyhow::Result;

use crate::assets;
use crate::kvm::Kvm;
use crate::machine;
use crate::state::StateRoot;

pub fn print(root: &StateRoot) -> Result<u8> {
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
    println!("vms:     {}", machine::describe_path(root));
    Ok(0)
}

/// `hull info`: what `hull version` says, plus the root and the machine.
pub fn info(root: &StateRoot) -> Result<u8> {
    print(root)?;
    println!("root:    {}", root.path().display());
    machine::print_status(root)?;
    Ok(0)
}
