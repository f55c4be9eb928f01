//! COM1: a 16550A UART (vm-superio) whose output goes to the console and
//! whose interrupt is injected through an irqfd.

use std::io::{self, Write};

use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::bus::BusDevice;

/// Raises the UART's interrupt by signalling an irqfd.
pub struct IrqfdTrigger(EventFd);

impl Trigger for IrqfdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// The serial port on the port-I/O bus. Guest input is not wired up.
pub struct SerialDevice {
    uart: Serial<IrqfdTrigger, NoEvents, Box<dyn Write + Send>>,
    /// Set after the first failure, so a broken console does not flood the
    /// log with one message per guest byte.
    failed: bool,
}

impl SerialDevice {
    /// `irq` must be registered with KVM as the irqfd of the UART's GSI.
    pub fn new(irq: EventFd, out: Box<dyn Write + Send>) -> Self {
        Self {
            uart: Serial::new(IrqfdTrigger(irq), out),
            failed: false,
        }
    }
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match (u8::try_from(offset), data) {
            (Ok(offset), [byte]) => *byte = self.uart.read(offset),
            (_, data) => data.fill(0xff),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let (Ok(offset), [value]) = (u8::try_from(offset), data) else {
            return;
        };
        if let Err(e) = self.uart.write(offset, *value) {
            if !self.failed {
                log::warn!("serial console: {e:?}; further errors are not logged");
                self.failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn transmitted_bytes_reach_the_console_and_raise_the_irq() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let out = Shared::default();
        let mut serial = SerialDevice::new(irq.try_clone().unwrap(), Box::new(out.clone()));
        // Enable the "transmitter holding register empty" interrupt.
        serial.write(1, &[0x02]);
        for byte in b"hi" {
            serial.write(0, &[*byte]);
        }
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hi");
        assert!(irq.read().unwrap() >= 1);

        // Line status: transmitter empty.
        let mut lsr = [0u8];
        serial.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
        let mut wide = [0u8; 2];
        serial.read(0, &mut wide);
        assert_eq!(wide, [0xff, 0xff]);
    }
}
