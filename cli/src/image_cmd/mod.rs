//! Image commands: `pull`, `push`, `images`, `rmi`, `tag`, `image inspect`,
//! `image prune`, `import`, `save`, `load`, `login`, `logout`, on the `hull-image` store
//! under `<root>/image`.

mod archive;
mod auth;
mod list;
mod manage;
mod transfer;

use std::path::Path;

use anyhow::{Context, Result};
use hull_image::{Digest, ProgressStyle, RegistryOptions, Stream};
use serde::Deserialize;

pub use archive::{load, save, LoadArgs, SaveArgs};
pub use auth::{login, logout, LoginArgs, LogoutArgs};
pub use list::{images, ImagesArgs};
pub use manage::{inspect, prune, rmi, tag, InspectArgs, PruneArgs, RmiArgs, TagArgs};
pub use transfer::{import, pull, push, ImportArgs, PullArgs, PushArgs};

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
fn familiar(tagged: &str) -> (String, String) {
    match hull_image::ImageRef::parse(tagged) {
        Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        Err(_) => (tagged.to_owned(), "<none>".to_owned()),
    }
}
