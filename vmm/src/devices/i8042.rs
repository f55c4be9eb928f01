//! The part of the i8042 keyboard controller Linux uses to reboot
//! (`reboot=k`): the "pulse reset line" command 0xFE on port 0x64 ends the
//! VM with [`VmExit::Reset`]. Nothing else is emulated: the controller
//! always reports empty buffers.

use std::sync::Arc;

use super::bus::BusDevice;
use crate::stop::StopSignal;
use crate::VmExit;

/// Offset of the command/status port (0x64) from the data port (0x60).
const COMMAND_PORT_OFFSET: u64 = 4;
const CMD_PULSE_RESET: u8 = 0xfe;

pub struct I8042 {
    stop: Arc<StopSignal>,
}

impl I8042 {
    pub fn new(stop: Arc<StopSignal>) -> Self {
        Self { stop }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // Status: output buffer empty, input buffer empty. Data: nothing.
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == COMMAND_PORT_OFFSET && data == [CMD_PULSE_RESET] {
            self.stop.request(Ok(VmExit::Reset));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulse_reset_command_requests_reset_and_nothing_else_does() {
        let (stop, reasons) = StopSignal::new();
        let mut i8042 = I8042::new(Arc::new(stop));
        i8042.write(0, &[CMD_PULSE_RESET]);
        i8042.write(COMMAND_PORT_OFFSET, &[0xad]);
        assert!(reasons.try_recv().is_err());

        let mut status = [0xffu8];
        i8042.read(COMMAND_PORT_OFFSET, &mut status);
        assert_eq!(status, [0]);

        i8042.write(COMMAND_PORT_OFFSET, &[CMD_PULSE_RESET]);
        assert!(matches!(reasons.try_recv(), Ok(Ok(VmExit::Reset))));
    }
}
