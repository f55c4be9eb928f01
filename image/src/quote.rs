//! Names from images in error lines: an archive chooses them, up to the
//! header limit in length and with any bytes in them, so an error quotes
//! a short, escaped prefix.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The most bytes of a name an error line shows.
const SHOWN: usize = 64;

/// `name` quoted and escaped, cut to its first 64 bytes with its length
/// said when longer: `"usr/lib/x"`, `"aaaa…" (268435456 bytes)`. Bytes
/// that are not UTF-8 show as `\xff`, as Go's `%q` shows them.
pub(crate) fn quoted(name: impl AsRef<[u8]>) -> String {
    let bytes = name.as_ref();
    if bytes.len() <= SHOWN {
        return format!("\"{}\"", escaped(bytes));
    }
    let mut cut = SHOWN;
    // Cut between characters where the prefix is valid UTF-8.
    while cut > SHOWN - 4 && std::str::from_utf8(&bytes[..cut]).is_err() {
        cut -= 1;
    }
    format!("\"{}…\" ({} bytes)", escaped(&bytes[..cut]), bytes.len())
}

/// `bytes` with quotes, backslashes and control characters escaped as Rust
/// escapes them, and bytes that are not UTF-8 as `\xNN`.
fn escaped(bytes: &[u8]) -> String {
    let mut text = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' => text.push(c),
                c => text.extend(c.escape_debug()),
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// [`quoted`] for a path.
pub(crate) fn quoted_path(path: &Path) -> String {
    quoted(path.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_quoted_whole_and_long_ones_cut() {
        assert_eq!(quoted("etc/hosts"), "\"etc/hosts\"");
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        assert_eq!(quoted("it's \"x\""), "\"it's \\\"x\\\"\"");
        let long = "x".repeat(1 << 20);
        let shown = quoted(&long);
        assert_eq!(shown, format!("\"{}…\" (1048576 bytes)", "x".repeat(64)));
        // Bytes that are not UTF-8 are shown as bytes.
        assert_eq!(quoted(b"a\xff\xfeb"), "\"a\\xff\\xfeb\"");
        // A multi-byte character is not split.
        let accents = "é".repeat(100);
        assert!(quoted(&accents).starts_with(&format!("\"{}…", "é".repeat(32))));
    }
}
