//! A reader that fails once more than a given number of bytes come
//! through it: for streams whose size a limit bounds.

use std::io::{self, Read};

use crate::limits::LimitExceeded;

/// Passes at most `left` bytes of `inner` on, then fails with the error
/// `over` makes rather than pass more (or quietly stop).
pub(crate) struct Capped<R, F> {
    inner: R,
    left: u64,
    over: F,
}

impl<R: Read, F: Fn() -> LimitExceeded> Capped<R, F> {
    pub(crate) fn new(inner: R, cap: u64, over: F) -> Capped<R, F> {
        Capped {
            inner,
            left: cap,
            over,
        }
    }
}

impl<R: Read, F: Fn() -> LimitExceeded> Read for Capped<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // At the cap: only the end of the stream may follow.
            return match self.inner.read(&mut [0u8])? {
                0 => Ok(0),
                _ => Err(io::Error::other((self.over)())),
            };
        }
        let max = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn read_capped(data: &[u8], cap: u64) -> io::Result<Vec<u8>> {
        let limits = Limits::default();
        let mut out = Vec::new();
        Capped::new(data, cap, || {
            LimitExceeded::document("the thing", None, &limits)
        })
        .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn passes_up_to_the_cap_and_fails_past_it() {
        assert_eq!(read_capped(b"12345", 5).unwrap(), b"12345");
        assert_eq!(read_capped(b"", 0).unwrap(), b"");
        let err = read_capped(b"123456", 5).unwrap_err().to_string();
        assert!(err.starts_with("the thing is over the limit of"), "{err}");
    }
}
