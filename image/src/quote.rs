//! Names from images in error lines: an archive chooses them, up to the
//! header limit in length and with any bytes in them, so an error quotes
//! a short, escaped prefix.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The most bytes of a name an error line shows.
const SHOWN: usize = 64;

/// `name` quoted and escaped, cut to its first 64 bytes with its length
/// said when longer: `"usr/lib/x"`, `"aaaa…" (268435456 bytes)`.
pub(crate) fn quoted(name: impl AsRef<[u8]>) -> String {
    let bytes = name.as_ref();
    if bytes.len() <= SHOWN {
        return format!("{:?}", String::from_utf8_lossy(bytes));
    }
    let mut cut = SHOWN;
    // Cut between characters where the prefix is valid UTF-8.
    while cut > SHOWN - 4 && std::str::from_utf8(&bytes[..cut]).is_err() {
        cut -= 1;
    }
    let prefix = format!("{:?}", String::from_utf8_lossy(&bytes[..cut]));
    format!("{}…\" ({} bytes)", &prefix[..prefix.len() - 1], bytes.len())
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
        let long = "x".repeat(1 << 20);
        let shown = quoted(&long);
        assert_eq!(shown, format!("\"{}…\" (1048576 bytes)", "x".repeat(64)));
        // A multi-byte character is not split.
        let accents = "é".repeat(100);
        assert!(quoted(&accents).starts_with(&format!("\"{}…", "é".repeat(32))));
    }
}
