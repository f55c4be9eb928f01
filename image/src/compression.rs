//! Compression of layers and archives, recognized by its magic bytes as
//! Docker recognizes it: gzip and zstd (layers' media types), and bzip2
//! and xz (archives `docker save | xz` made, `docker load` and `docker
//! import` read them).

use std::io::{self, BufRead, BufReader, Read};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: &[u8] = b"BZh";
/// The most memory an xz stream may make its decoder take: more than the
/// 65 MiB `xz -9` needs, far less than the 4 GiB a hostile header may ask.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// The compression a stream starting with `head` (its first bytes, at
    /// least 6 where it has them) is in.
    pub(crate) fn of(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(XZ_MAGIC) {
            Compression::Xz
        } else if is_bzip2(head) {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// Wraps `input` in the decompressor its first bytes call for (gzip, zstd,
/// xz, bzip2), or passes it through when it is a plain tar.
pub fn decompress<'a, R: Read + 'a>(input: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::new(input);
    Ok(match Compression::of(input.fill_buf()?) {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(input)?),
        Compression::Xz => {
            let stream =
                xz2::stream::Stream::new_stream_decoder(XZ_MEMORY_LIMIT, xz2::stream::CONCATENATED)
                    .map_err(io::Error::other)?;
            Box::new(xz2::bufread::XzDecoder::new_stream(input, stream))
        }
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::None => Box::new(input),
    })
}

/// `BZh` and a block size digit: a tar's first name is hardly that.
fn is_bzip2(head: &[u8]) -> bool {
    head.starts_with(BZIP2_MAGIC) && head.get(3).is_some_and(|size| (b'1'..=b'9').contains(size))
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
    fn recognizes_each_compression_and_plain_tar() {
        let plain = b"plain tar bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&plain).unwrap();
        let xz = xz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&plain).unwrap();
        let bz = bz.finish().unwrap();
        assert_eq!(roundtrip(&plain), plain);
        assert_eq!(roundtrip(&gz), plain);
        assert_eq!(roundtrip(&zst), plain);
        assert_eq!(roundtrip(&xz), plain);
        assert_eq!(roundtrip(&bz), plain);
        // Two xz streams back to back (as `cat a.xz b.xz`) read as one.
        assert_eq!(roundtrip(&[xz.clone(), xz].concat()), plain.repeat(2));
        // A tar whose first name starts with BZh but no block size.
        let mut named = b"BZh.txt".to_vec();
        named.resize(512, 0);
        assert_eq!(roundtrip(&named), named);
    }

    #[test]
    fn an_xz_stream_asking_for_more_memory_than_the_limit_fails() {
        // xz -9e with a 1 GiB dictionary: the decoder would need about as
        // much.
        let mut options = xz2::stream::LzmaOptions::new_preset(9).unwrap();
        options.dict_size(1 << 30);
        let mut filters = xz2::stream::Filters::new();
        filters.lzma2(&options);
        let stream =
            xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc64).unwrap();
        let mut xz = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
        xz.write_all(b"small").unwrap();
        let xz = xz.finish().unwrap();
        let mut out = Vec::new();
        let err = decompress(&xz[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
