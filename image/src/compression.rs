//! Layer compression, recognized by its magic bytes.

use std::io::{self, BufRead, BufReader, Read};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Wraps `input` in the decompressor its first bytes call for (gzip, zstd),
/// or passes it through when it is a plain tar.
pub fn decompress<'a, R: Read + 'a>(input: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::new(input);
    let head = input.fill_buf()?;
    if head.starts_with(GZIP_MAGIC) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok(Box::new(zstd::Decoder::with_buffer(input)?))
    } else {
        Ok(Box::new(input))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompress(data).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn recognizes_gzip_zstd_and_plain() {
        let plain = b"plain tar bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        assert_eq!(roundtrip(&plain), plain);
        assert_eq!(roundtrip(&gz), plain);
        assert_eq!(roundtrip(&zst), plain);
    }
}
