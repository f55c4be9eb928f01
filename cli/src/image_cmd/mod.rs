//! Image commands: `pull`, `push`, `images`, `rmi`, `tag`, `image inspect`,
//! `image prune`, `history`, `import`, `save`, `load`, `login`, `logout`, `manifest inspect`, on the `hull-image` store
//! under `<root>/image`.

mod archive;
mod auth;
mod history;
mod list;
mod manage;
mod manifest;
mod transfer;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use hull_image::{Digest, ImageRef, ProgressStyle, RegistryOptions, Store, Stream};
use hull_runtime::{Event, EventType, Runtime};
use serde::Deserialize;

pub use archive::{load, save, LoadArgs, SaveArgs};
pub use auth::{login, logout, LoginArgs, LogoutArgs};
pub use history::{history, HistoryArgs};
pub use list::{images, since, ImagesArgs};
pub use manage::{
    describe as describe_image, inspect, prune, prune_images, rmi, tag, InspectArgs, PruneArgs,
    RmiArgs, TagArgs,
};
pub use manifest::{manifest, ManifestCommand};
pub use transfer::{import, pull, pull_image, push, push_image, ImportArgs, PullArgs, PushArgs};

/// Whether a container of the hull root at `root` was created from image
/// `id`: the store keeps it for the container (running ones also pin their
/// image, see `Store::pin`).
fn in_use(root: &Path) -> Result<impl Fn(&Digest) -> bool> {
    let used = hull_runtime::Runtime::new(root).images_in_use()?;
    Ok(move |id: &Digest| used.contains(&id.to_string()))
}

/// `<root>/config.json`, Docker daemon.json style: `{"insecure-registries": [...]}`.
#[derive(Default, Deserialize)]
struct Config {
    #[serde(default, rename = "insecure-registries")]
    insecure_registries: Vec<String>,
}

/// The archive file `path` (`hull load -i`, `hull import FILE`), opened:
/// one that is not there, a directory or a URL (which `load` does not
/// fetch, as Docker's does not) refused naming the path and what to give
/// instead.
fn open_archive(path: &Path) -> Result<std::fs::File> {
    let text = path.to_string_lossy();
    if text.starts_with("http://") || text.starts_with("https://") {
        anyhow::bail!(
            "{text}: hull load reads archives from files or stdin, not URLs: \
             curl -fsSL {text} | hull load"
        );
    }
    if path.is_dir() {
        anyhow::bail!("{}: is a directory: give a tar archive", path.display());
    }
    std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// Stdin, from which `command` reads an archive; a terminal is refused (an
/// archive is never typed: a file or a redirection, as in `example`, was
/// forgotten).
fn archive_stdin(command: &str, example: &str) -> Result<std::io::StdinLock<'static>> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        anyhow::bail!(
            "requested {command} from stdin, but stdin is a terminal: \
             give a file or redirect one ({example})"
        );
    }
    Ok(stdin.lock())
}

/// Logs `action` of an image in the hull root's event log, as Docker's
/// daemon does: `id` (the image's ID, or the reference pulled, pushed or
/// saved) with its `name`, both as Docker shows them (`alpine:latest`).
fn image_event(store: &Store, action: &str, id: &str, name: &str) {
    let attributes = BTreeMap::from([("name".to_owned(), name.to_owned())]);
    let event = Event::now(EventType::Image, action, id, attributes);
    Runtime::new(store.hull_root()).record_event(&event);
}

/// A stored name (`docker.io/library/alpine:latest`) or ID as Docker shows
/// it (`alpine:latest`).
fn shown_name(name: &str) -> String {
    match ImageRef::parse(name) {
        Ok(reference) if !name.starts_with("sha256:") => familiar_string(&reference),
        _ => name.to_owned(),
    }
}

/// A `--platform` value: one naming linux/amd64.
pub fn parse_platform(value: &str) -> Result<String, String> {
    hull_image::check_platform(value).map(|()| value.to_owned())
}

/// Registry settings from `<root>/config.json` plus `insecure`, with
/// progress on stdout.
pub fn registry_options(root: &Path, insecure: &[String]) -> Result<RegistryOptions> {
    let path = root.join("config.json");
    let config: Config = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is invalid", path.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Config::default(),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut insecure_registries = config.insecure_registries;
    insecure_registries.extend(insecure.iter().cloned());
    Ok(RegistryOptions {
        insecure_registries,
        auth_file: auth_file(root),
        progress: ProgressStyle::on(Stream::Stdout),
    })
}

/// Where `hull login` keeps credentials (Docker's config.json format).
fn auth_file(root: &Path) -> std::path::PathBuf {
    root.join("auth.json")
}

/// `docker.io/library/alpine:latest` as Docker shows it: (`alpine`, `latest`).
pub fn familiar(tagged: &str) -> (String, String) {
    match ImageRef::parse(tagged) {
        Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        Err(_) => (tagged.to_owned(), "<none>".to_owned()),
    }
}

/// A reference as Docker shows it: `alpine:latest`, `alpine@sha256:...`,
/// `localhost:5000/app:v1`.
fn familiar_string(reference: &ImageRef) -> String {
    let mut text = reference.familiar_name();
    if let Some(tag) = reference.tag() {
        text = format!("{text}:{tag}");
    }
    if let Some(digest) = reference.digest() {
        text = format!("{text}@{digest}");
    }
    text
}

/// Decimal units, as Docker's `units.HumanSizeWithPrecision` writes sizes.
const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `bytes` as Docker writes sizes: in the largest decimal unit that keeps
/// the number at 1 or more, with `precision` significant digits and no
/// trailing zeros, as Go's `%.{precision}g` (`0B`, `3.4MB`, `1.235GB`).
/// Docker uses a precision of 4 (`units.HumanSize`) but for `images`'
/// `Size`, 3.
pub fn human_size(bytes: u64, precision: usize) -> String {
    // Repeated division, as Docker's, so that rounding agrees.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(value, precision), UNITS[unit])
}

/// `value`, 0 or at least 1, as Go's `%.{digits}g` writes it.
pub fn significant(value: f64, digits: usize) -> String {
    let whole_digits = if value < 1.0 {
        1
    } else {
        value.log10().floor() as usize + 1
    };
    let decimals = digits.saturating_sub(whole_digits);
    let text = format!("{value:.decimals$}");
    let rounded: f64 = text.parse().expect("a formatted number");
    // Rounded up to a power of ten with more digits than `digits`: Go
    // switches to its exponent form (999.7 with 3 digits is `1e+03`).
    if rounded >= 10f64.powi(digits as i32) {
        return format!("1e+{:02}", rounded.log10().round() as i32);
    }
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_archive(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with(": is a directory: give a tar archive"),
            "{err}"
        );
        let err = open_archive(Path::new("https://x.org/r.tar")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://x.org/r.tar: hull load reads archives from files or stdin, not URLs: \
             curl -fsSL https://x.org/r.tar | hull load"
        );
        let missing = dir.path().join("missing.tar");
        let err = format!("{:#}", open_archive(&missing).unwrap_err());
        assert!(
            err.starts_with(&format!("cannot open {}: ", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn sizes_read_like_docker() {
        let cases: [(u64, usize, &str); 14] = [
            (0, 4, "0B"),
            (512, 4, "512B"),
            (999, 3, "999B"),
            (1000, 4, "1kB"),
            (3_400_000, 4, "3.4MB"),
            (1_234_567, 4, "1.235MB"),
            (1_234_567, 3, "1.23MB"),
            (5_577_000, 3, "5.58MB"),
            (123_456_789, 3, "123MB"),
            (123_456_789, 4, "123.5MB"),
            (999_999, 4, "1000kB"),
            (999_700, 3, "1e+03kB"),
            (1_000_000_000, 3, "1GB"),
            (9_996_000_000_000, 3, "10TB"),
        ];
        for (bytes, precision, expected) in cases {
            assert_eq!(human_size(bytes, precision), expected, "{bytes} bytes");
        }
    }

    #[test]
    fn references_read_like_docker() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for (full, shown) in [
            (
                "docker.io/library/alpine:latest",
                "alpine:latest".to_owned(),
            ),
            ("docker.io/me/app:v1", "me/app:v1".to_owned()),
            ("localhost:5000/app:v1", "localhost:5000/app:v1".to_owned()),
            (
                &format!("docker.io/library/alpine@{digest}"),
                format!("alpine@{digest}"),
            ),
        ] {
            assert_eq!(familiar_string(&ImageRef::parse(full).unwrap()), shown);
        }
    }
}
