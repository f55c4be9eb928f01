//! Emulated devices: the I/O buses and everything attached to them.

pub mod bus;
pub mod i8042;
pub mod serial;
pub mod virtio;
