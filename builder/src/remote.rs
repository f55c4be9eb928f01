//! `ADD <url>`: the file downloaded on this host (with
//! [`hull_image::download`]), made as BuildKit's HTTP source makes it:
//! named by the last component of the URL's path (`__unnamed__` without
//! one), mode 0600, its time the response's `Last-Modified` (else the
//! epoch), never unpacked, its digest checked against `--checksum`. It is
//! downloaded on every build, and the step's key names its URL and content,
//! so a changed file misses the cache and an unchanged one hits it.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use hull_image::{Digest, Limits};
use sha2::{Sha384, Sha512};
use tempfile::NamedTempFile;

/// A downloaded `ADD` source.
pub struct Remote {
    pub url: String,
    /// The file's name in the image.
    pub name: String,
    /// The bytes, in a temporary file removed when this drops.
    pub file: NamedTempFile,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    pub digest: Digest,
}

/// Whether an `ADD` source is a URL to download.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Whether an `ADD` source names a git repository, as BuildKit tells them
/// (`git@host:repo`, `git://`, an http(s) URL whose path ends in `.git`).
pub fn is_git(source: &str) -> bool {
    source.starts_with("git@")
        || source.starts_with("git://")
        || (is_url(source) && url_path(source).trim_end_matches('/').ends_with(".git"))
}

/// Downloads `url` into a temporary file under `tmp`, checked against
/// `checksum` (`sha256:`, `sha384:` or `sha512:` and hex) if given.
pub fn fetch(url: &str, checksum: Option<&str>, tmp: &Path, limits: &Limits) -> Result<Remote> {
    std::fs::create_dir_all(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let file = tempfile::Builder::new()
        .prefix("add-")
        .tempfile_in(tmp)
        .with_context(|| format!("cannot create a file in {}", tmp.display()))?;
    let mut out = BufWriter::new(file.as_file());
    let downloaded = hull_image::download(url, &mut out, limits)?;
    drop(out);
    if let Some(checksum) = checksum {
        verify(url, checksum, &downloaded.digest, file.path())?;
    }
    let mtime = downloaded
        .last_modified
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs());
    Ok(Remote {
        url: url.to_owned(),
        name: file_name(url),
        file,
        size: downloaded.size,
        mtime,
        digest: downloaded.digest,
    })
}

/// Checks the download of `url` (sha256 `digest`, bytes in `path`)
/// against `--checksum=ALGORITHM:HEX`.
fn verify(url: &str, checksum: &str, digest: &Digest, path: &Path) -> Result<()> {
    let Some((algorithm, expected)) = checksum.split_once(':') else {
        bail!("--checksum={checksum}: give ALGORITHM:HEX, such as sha256:<64 hex digits>");
    };
    let actual = match algorithm {
        "sha256" => digest.hex().to_owned(),
        "sha384" => hash_file::<Sha384>(path)?,
        "sha512" => hash_file::<Sha512>(path)?,
        other => bail!("--checksum={checksum}: unsupported digest algorithm {other}: use sha256, sha384 or sha512"),
    };
    if !actual.eq_ignore_ascii_case(expected) {
        bail!("{url}: digest mismatch: the download is {algorithm}:{actual}, --checksum gives {checksum}");
    }
    Ok(())
}

fn hash_file<H: sha2::Digest + io::Write>(path: &Path) -> Result<String> {
    let mut hasher = H::new();
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The name BuildKit gives the file of `url`: the last component of its
/// path (percent-decoded), or `__unnamed__`.
pub fn file_name(url: &str) -> String {
    let path = url_path(url);
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." => percent_decode(name),
        _ => "__unnamed__".to_owned(),
    }
}

/// The path of `scheme://host/path?query#fragment`.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    rest.find('/').map_or("", |slash| &rest[slash..])
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    use super::*;

    #[test]
    fn a_download_is_named_by_its_urls_path_as_buildkit_names_it() {
        assert_eq!(
            file_name("https://example.com/dl/tool.tar.gz?v=2#x"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("https://example.com/dl/dir/"), "dir");
        assert_eq!(file_name("https://example.com/my%20file"), "my file");
        assert_eq!(file_name("https://example.com"), "__unnamed__");
        assert_eq!(file_name("https://example.com/"), "__unnamed__");
        assert!(is_url("http://127.0.0.1:8000/x"));
        assert!(!is_url("src/http.rs"));
        assert!(is_git("https://github.com/moby/buildkit.git#v0.12"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/tool.tar.gz"));
    }

    #[test]
    fn checksums_are_checked_in_each_algorithm_buildkit_takes() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("file");
        std::fs::write(&path, b"hello").unwrap();
        let digest = Digest::of(b"hello");
        let url = "http://x/file";
        verify(url, digest.as_str(), &digest, &path).unwrap();
        let sha512 = format!("sha512:{}", hex::encode(Sha512::digest(b"hello")));
        verify(url, &sha512, &digest, &path).unwrap();
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = verify(url, &wrong, &digest, &path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("http://x/file: digest mismatch: the download is {digest}, --checksum gives {wrong}")
        );
        assert!(verify(url, "md5:abc", &digest, &path).is_err());
        assert!(verify(url, "abc", &digest, &path).is_err());
    }
}
