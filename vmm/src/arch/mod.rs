//! Architecture-specific VM setup. hull runs on x86_64 only.

#[cfg(not(target_arch = "x86_64"))]
compile_error!("hull-vmm supports x86_64 only");

pub mod x86_64;
