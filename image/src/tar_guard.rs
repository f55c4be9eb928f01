//! A reader under the `tar` crate that refuses oversized header records
//! before `tar` reads them.
//!
//! `tar` 0.4 reads a GNU long name (`L`), long link (`K`) or PAX extended
//! header (`x`) whole into memory, however big its header says it is, and
//! has no option to cap it: a 261 KB gzip layer whose long name claims
//! 256 MiB of zeros costs ~1 GiB of memory. [`TarGuard`] follows the same
//! stream block by block, as `tar` parses it (with `tar`'s own header
//! types), and fails the read that would hand over a header whose record
//! is larger than [`Limits::max_header_bytes`] (Go's archive/tar: 1 MiB),
//! so `tar` never starts reading the record.
//!
//! To stay in step with `tar` it knows what moves entry boundaries: the
//! size field (octal or base-256), a PAX `size` record overriding the next
//! entry's size, GNU sparse extension blocks, and the first zero block
//! ending the archive. PAX records it keeps to find `size` are capped too.

use std::io::{self, Read};

use tar::{EntryType, GnuExtSparseHeader, Header, PaxExtensions};

use crate::limits::{LimitExceeded, Limits};
use crate::quote::quoted;

const BLOCK: u64 = 512;

/// Passes a tar stream through, checking its header records (see the
/// module documentation).
pub(crate) struct TarGuard<R> {
    inner: R,
    limits: Limits,
    state: State,
    /// The header block being gathered.
    header: Header,
    /// The sparse extension block being gathered.
    sparse: GnuExtSparseHeader,
    /// Bytes of `header` or `sparse` gathered so far.
    filled: usize,
    /// The `size` a PAX header set for the next entry.
    pax_size: Option<u64>,
    /// Bytes of the stream passed through.
    position: u64,
}

enum State {
    /// Gathering a header block.
    Header,
    /// Gathering a GNU sparse extension block; then the entry's data.
    SparseExtension { data: Data },
    /// Inside an entry's data and padding.
    Data(Data),
    /// After the end-of-archive block: nothing more to check.
    End,
}

/// The rest of one entry's data.
struct Data {
    /// Bytes of contents left.
    contents: u64,
    /// Bytes of padding after them left.
    padding: u64,
    /// The PAX header's records, kept to find `size`.
    pax: Option<Vec<u8>>,
}

impl<R: Read> TarGuard<R> {
    pub(crate) fn new(inner: R, limits: &Limits) -> TarGuard<R> {
        TarGuard {
            inner,
            limits: *limits,
            state: State::Header,
            header: Header::new_old(),
            sparse: GnuExtSparseHeader::new(),
            filled: 0,
            pax_size: None,
            position: 0,
        }
    }

    /// Follows `bytes`, the next ones of the stream.
    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::End => return Ok(()),
                State::Header => {
                    let taken = gather(self.header.as_mut_bytes(), &mut self.filled, bytes);
                    bytes = &bytes[taken..];
                    if self.filled == BLOCK as usize {
                        self.filled = 0;
                        self.state = self.header_read()?;
                    }
                }
                State::SparseExtension { .. } => {
                    let taken = gather(self.sparse.as_mut_bytes(), &mut self.filled, bytes);
                    bytes = &bytes[taken..];
                    if self.filled == BLOCK as usize {
                        self.filled = 0;
                        if !self.sparse.is_extended() {
                            let State::SparseExtension { data } =
                                std::mem::replace(&mut self.state, State::Header)
                            else {
                                unreachable!("matched above")
                            };
                            self.state = State::Data(data);
                            self.end_if_done();
                        }
                    }
                }
                State::Data(data) => {
                    let in_contents = usize::try_from(data.contents)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    if let Some(pax) = &mut data.pax {
                        pax.extend_from_slice(&bytes[..in_contents]);
                    }
                    data.contents -= in_contents as u64;
                    bytes = &bytes[in_contents..];
                    let in_padding = usize::try_from(data.padding)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    data.padding -= in_padding as u64;
                    bytes = &bytes[in_padding..];
                    self.end_if_done();
                }
            }
        }
        Ok(())
    }

    /// What follows the header block just gathered.
    fn header_read(&mut self) -> io::Result<State> {
        let header = &self.header;
        if header.as_bytes().iter().all(|&b| b == 0) {
            return Ok(State::End);
        }
        // As `tar` checks it, but said without the header's fields, which
        // `tar` quotes whole when its checksum is no number.
        if !checksum_matches(header) {
            return Err(not_a_tar());
        }
        let kind = header.entry_type();
        let record = match kind {
            EntryType::GNULongName => Some("GNU long name"),
            EntryType::GNULongLink => Some("GNU long link name"),
            EntryType::XHeader => Some("PAX extended header"),
            EntryType::XGlobalHeader => Some("PAX global header"),
            _ => None,
        };
        // `tar` applies extension records only from ustar or GNU headers;
        // from others it hands them on as entries.
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let size = match self.pax_size {
            Some(size) if record.is_none() => size,
            _ => header.entry_size().map_err(|_| invalid_size(header))?,
        };
        let sparse_extended =
            kind == EntryType::GNUSparse && header.as_gnu().is_some_and(|gnu| gnu.is_extended());
        if let Some(record) = record {
            if size > self.limits.max_header_bytes {
                let what = format!("a tar header record ({record})");
                return Err(io::Error::other(LimitExceeded::header(
                    what,
                    size,
                    &self.limits,
                )));
            }
        }
        let consumed_by_tar = recognized
            && matches!(
                kind,
                EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader
            );
        if !consumed_by_tar {
            // The entry these records described.
            self.pax_size = None;
        }
        let data = Data {
            contents: size,
            // `tar` fails on a size whose padding overflows: so does this.
            padding: size
                .checked_next_multiple_of(BLOCK)
                .ok_or_else(|| io::Error::other("tar entry size overflow"))?
                - size,
            // At most `max_header_bytes`, checked above.
            pax: (recognized && kind == EntryType::XHeader)
                .then(|| Vec::with_capacity(size as usize)),
        };
        if sparse_extended {
            return Ok(State::SparseExtension { data });
        }
        self.state = State::Data(data);
        self.end_if_done();
        Ok(std::mem::replace(&mut self.state, State::Header))
    }

    /// After the last byte of an entry: back to headers, with the `size`
    /// a PAX header set.
    fn end_if_done(&mut self) {
        let State::Data(data) = &mut self.state else {
            return;
        };
        if data.contents > 0 || data.padding > 0 {
            return;
        }
        if let Some(pax) = data.pax.take() {
            self.pax_size = pax_size(&pax);
        }
        self.state = State::Header;
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check_complete()?;
        }
        self.observe(&buf[..n])?;
        self.position += n as u64;
        Ok(n)
    }
}

impl<R> TarGuard<R> {
    /// At the end of the stream: refuses one cut inside a header or an
    /// entry's contents, where `tar` would say only "failed to read entire
    /// block" or "unexpected EOF during skip". (An archive may end without
    /// its end-of-archive blocks.)
    fn check_complete(&self) -> io::Result<()> {
        let inside = match &self.state {
            State::Header | State::SparseExtension { .. } if self.filled > 0 => "a header",
            State::Data(data) if data.contents > 0 || data.padding > 0 => "an entry",
            _ => return Ok(()),
        };
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "not a whole tar archive: it ends after {} bytes, inside {inside}",
                self.position
            ),
        ))
    }
}

/// A header whose size field is not a number: not a tar at all, most
/// likely (then its name is noise, not shown). The `tar` crate's own error
/// quotes the whole name field.
fn invalid_size(header: &Header) -> io::Error {
    let message = match checksum_matches(header) {
        true => format!(
            "not a valid tar archive: the size of entry {} is not a number",
            quoted(header.path_bytes())
        ),
        false => return not_a_tar(),
    };
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A header block whose checksum is not its sum: noise, not a tar.
fn not_a_tar() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "not a tar archive: a header's checksum does not match",
    )
}

/// Whether `header`'s checksum field is the sum of its bytes (with the
/// field itself counted as spaces), as in any tar header.
fn checksum_matches(header: &Header) -> bool {
    const FIELD: std::ops::Range<usize> = 148..156;
    let sum: u32 = header
        .as_bytes()
        .iter()
        .enumerate()
        .map(|(at, &b)| match FIELD.contains(&at) {
            true => u32::from(b' '),
            false => u32::from(b),
        })
        .sum();
    header.cksum().is_ok_and(|recorded| recorded == sum)
}

/// Copies from `bytes` into `block` after its `filled` bytes; returns how
/// many it took.
fn gather(block: &mut [u8; BLOCK as usize], filled: &mut usize, bytes: &[u8]) -> usize {
    let taken = (block.len() - *filled).min(bytes.len());
    block[*filled..*filled + taken].copy_from_slice(&bytes[..taken]);
    *filled += taken;
    taken
}

/// The `size` record of PAX records, read as `tar` reads it: the first
/// one, and none past a malformed record.
fn pax_size(records: &[u8]) -> Option<u64> {
    for record in PaxExtensions::new(records) {
        let record = record.ok()?;
        if record.key() == Ok("size") {
            return record.value().ok()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream of `entries` (header, contents), ended as tar ends it.
    fn tar_of(entries: &[(Header, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (header, contents) in entries {
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(contents);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn header(kind: EntryType, name: &str, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    /// A PAX extended header holding `records`.
    fn pax(records: &[(&str, &str)]) -> (Header, Vec<u8>) {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = format!(" {key}={value}\n");
            let mut len = rest.len() + 1;
            while format!("{len}{rest}").len() != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len}{rest}").as_bytes());
        }
        (header(EntryType::XHeader, "pax", body.len() as u64), body)
    }

    /// The paths `tar` lists through the guard, or the error.
    fn list(stream: &[u8], limits: &Limits) -> io::Result<Vec<String>> {
        let mut archive = tar::Archive::new(TarGuard::new(stream, limits));
        let mut paths = Vec::new();
        for entry in archive.entries()? {
            paths.push(entry?.path()?.display().to_string());
        }
        Ok(paths)
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_long_name_claiming_256_mib_is_refused_before_tar_reads_it() {
        let claimed = 256 << 20;
        let stream = header(EntryType::GNULongName, "././@LongLink", claimed)
            .as_bytes()
            .to_vec();
        // Zeros as far as the claim, as the gzip bomb expands to.
        let mut source = Counting {
            inner: (&stream[..]).chain(io::repeat(0).take(claimed + 1024)),
            read: 0,
        };
        let mut archive = tar::Archive::new(TarGuard::new(&mut source, &Limits::default()));
        let err = archive
            .entries()
            .unwrap()
            .next()
            .unwrap()
            .err()
            .expect("refused");
        drop(archive);
        assert_eq!(
            err.to_string(),
            "a tar header record (GNU long name) claims 268435456 bytes, over the limit of \
             1048576 (image-limits.max-header-bytes in <hull root>/config.json)"
        );
        assert!(source.read < 64 << 10, "read {} bytes", source.read);
    }

    #[test]
    fn every_kind_of_header_record_is_capped() {
        let limits = Limits {
            max_header_bytes: 4096,
            ..Limits::default()
        };
        for kind in [
            EntryType::GNULongName,
            EntryType::GNULongLink,
            EntryType::XHeader,
            EntryType::XGlobalHeader,
        ] {
            let stream = tar_of(&[
                (header(kind, "ext", 4097), vec![b'a'; 4097]),
                (header(EntryType::Regular, "file", 0), Vec::new()),
            ]);
            let err = list(&stream, &limits).unwrap_err().to_string();
            assert!(err.contains("claims 4097 bytes"), "{kind:?}: {err}");
            // At the limit, it is read.
            let stream = tar_of(&[
                (header(kind, "ext", 4096), vec![b'a'; 4096]),
                (header(EntryType::Regular, "file", 0), Vec::new()),
            ]);
            assert!(list(&stream, &limits).is_ok(), "{kind:?}");
        }
    }

    #[test]
    fn follows_pax_sizes_so_a_record_hidden_in_a_file_is_not_taken_for_a_header() {
        let limits = Limits {
            max_header_bytes: 4096,
            ..Limits::default()
        };
        // A file whose real size (PAX) is 1024, its header saying 0: the
        // guard must skip its 1024 bytes, which look like a long-name
        // header claiming 1 MiB, as tar does.
        let decoy = header(EntryType::GNULongName, "decoy", 1 << 20);
        let mut contents = decoy.as_bytes().to_vec();
        contents.resize(1024, 0);
        let stream = tar_of(&[
            pax(&[("size", "1024"), ("path", "big")]),
            (header(EntryType::Regular, "big", 0), contents),
            (header(EntryType::Regular, "after", 3), b"abc".to_vec()),
        ]);
        assert_eq!(list(&stream, &limits).unwrap(), ["big", "after"]);

        // And the other way round: a header saying 1024 that PAX shrinks
        // to 0, followed at once by an oversized long name.
        let mut stream = Vec::new();
        let (pax_header, pax_body) = pax(&[("size", "0")]);
        stream.extend_from_slice(&tar_of(&[(pax_header, pax_body)])[..1024]);
        stream.extend_from_slice(header(EntryType::Regular, "empty", 1024).as_bytes());
        stream.extend_from_slice(header(EntryType::GNULongName, "x", 1 << 20).as_bytes());
        stream.resize(stream.len() + (1 << 20) + 2048, 0);
        let err = list(&stream, &limits).unwrap_err().to_string();
        assert!(err.contains("claims 1048576 bytes"), "{err}");
    }

    #[test]
    fn a_size_too_big_to_pad_is_an_error_not_an_overflow() {
        // Found by the layer_unpack fuzz target: a base-256 size of
        // u64::MAX - 1.
        let mut header = header(EntryType::Regular, "f", 0);
        header.as_mut_bytes()[124..136].copy_from_slice(&[
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        ]);
        header.set_cksum();
        assert_eq!(header.entry_size().unwrap(), u64::MAX - 1);
        let stream = tar_of(&[(header, Vec::new())]);
        assert!(list(&stream, &Limits::default()).is_err());
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_said_so_on_one_short_line() {
        let mut text = b"export X=1\nfor i in 1 2 3; do\n".repeat(40);
        text.resize(1024, b'\n');
        let err = list(&text, &Limits::default()).unwrap_err().to_string();
        // Its first 512 bytes are no header at all: their name is noise.
        assert_eq!(err, "not a tar archive: a header's checksum does not match");
        // Nor is one whose checksum field is no number.
        let mut garbage = header(EntryType::Regular, "f", 0);
        garbage.as_mut_bytes()[148..156].copy_from_slice(b"\xff\xfe\x01abc\0 ");
        let mut stream = garbage.as_bytes().to_vec();
        stream.resize(2048, 0);
        let err = list(&stream, &Limits::default()).unwrap_err().to_string();
        assert_eq!(err, "not a tar archive: a header's checksum does not match");
        // A header whose checksum holds but whose size is no number names
        // its entry.
        let mut bad_size = header(EntryType::Regular, "etc/x", 0);
        bad_size.as_mut_bytes()[124..136].copy_from_slice(b"zzzzzzzzzzz\0");
        bad_size.set_cksum();
        let mut stream = bad_size.as_bytes().to_vec();
        stream.resize(2048, 0);
        let err = list(&stream, &Limits::default()).unwrap_err().to_string();
        assert_eq!(
            err,
            "not a valid tar archive: the size of entry \"etc/x\" is not a number"
        );
    }

    #[test]
    fn an_archive_cut_short_says_where() {
        let whole = tar_of(&[(header(EntryType::Regular, "f", 1000), vec![7; 1000])]);
        for (cut, inside) in [(6, "a header"), (700, "an entry"), (1520, "an entry")] {
            let err = list(&whole[..cut], &Limits::default())
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!("not a whole tar archive: it ends after {cut} bytes, inside {inside}")
            );
        }
        // Without its end-of-archive blocks it is whole enough.
        assert_eq!(list(&whole[..1536], &Limits::default()).unwrap(), ["f"]);
    }

    #[test]
    fn ordinary_archives_pass_through_unchanged() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("{}/file", "d".repeat(300));
        let mut header = Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, &long, &b"hello"[..])
            .unwrap();
        let mut header = Header::new_ustar();
        header.set_size(700);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "short", &[7u8; 700][..])
            .unwrap();
        let stream = builder.into_inner().unwrap();
        assert_eq!(
            list(&stream, &Limits::default()).unwrap(),
            [long, "short".to_owned()]
        );
        let mut through = Vec::new();
        TarGuard::new(&stream[..], &Limits::default())
            .read_to_end(&mut through)
            .unwrap();
        assert_eq!(through, stream);
    }
}
