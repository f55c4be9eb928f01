//! Address-space dispatch for guest port I/O and MMIO exits.
//!
//! A [`Bus`] maps non-overlapping address ranges to devices. A vCPU thread that
//! takes an I/O or MMIO exit looks up the device covering the address and calls
//! it with the offset into the device's range.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A device reachable through a [`Bus`]. `offset` is relative to the start of
/// the range the device was inserted at.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bus range {base:#x}+{len:#x} is empty or overlaps an existing device")]
    Overlap { base: u64, len: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    base: u64,
    len: u64,
}

/// Shared handle to a device on a bus.
pub type SharedBusDevice = Arc<Mutex<dyn BusDevice>>;

#[derive(Default, Clone)]
pub struct Bus {
    devices: BTreeMap<Range, SharedBusDevice>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, device: SharedBusDevice, base: u64, len: u64) -> Result<(), BusError> {
        let end = base.checked_add(len).filter(|_| len > 0);
        let Some(end) = end else {
            return Err(BusError::Overlap { base, len });
        };
        let overlaps = self
            .devices
            .keys()
            .any(|r| base < r.base + r.len && r.base < end);
        if overlaps {
            return Err(BusError::Overlap { base, len });
        }
        self.devices.insert(Range { base, len }, device);
        Ok(())
    }

    fn resolve(&self, addr: u64) -> Option<(u64, &SharedBusDevice)> {
        let probe = Range {
            base: addr,
            len: u64::MAX,
        };
        let (range, device) = self.devices.range(..=probe).next_back()?;
        let offset = addr - range.base;
        (offset < range.len).then_some((offset, device))
    }

    /// Dispatches a read; returns false (leaving `data` untouched) when no
    /// device covers `addr`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.resolve(addr) {
            Some((offset, device)) => {
                device
                    .lock()
                    .expect("bus device lock poisoned")
                    .read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Dispatches a write; returns false when no device covers `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.resolve(addr) {
            Some((offset, device)) => {
                device
                    .lock()
                    .expect("bus device lock poisoned")
                    .write(offset, data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        last_write: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.last_write = Some((offset, data.to_vec()));
        }
    }

    #[test]
    fn dispatches_by_offset_and_rejects_overlaps() {
        let device = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(device.clone(), 0x100, 0x10).unwrap();
        assert!(bus.insert(device.clone(), 0x10f, 1).is_err());
        assert!(bus.insert(device.clone(), 0xf8, 0x9).is_err());
        assert!(bus.insert(device.clone(), 0x0, 0).is_err());
        bus.insert(device.clone(), 0x110, 0x10).unwrap();

        let mut data = [0u8; 2];
        assert!(bus.read(0x104, &mut data));
        assert_eq!(data, [4, 4]);
        assert!(!bus.read(0x120, &mut data));
        assert!(!bus.read(0xff, &mut data));
        assert!(bus.write(0x10f, &[9]));
        assert_eq!(device.lock().unwrap().last_write, Some((0xf, vec![9])));
    }
}
