//! hull's images: Docker-style references, a content-addressed store of
//! unpacked layers, and pulling from / pushing to OCI registries.
//!
//! # Running an image
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let store = hull_image::Store::open(std::path::Path::new("/var/lib/hull"))?;
//! let image = store.resolve("alpine")?; // a name, `repo@sha256:...`, or an ID (prefix)
//! let config = image.config.config().clone().unwrap_or_default();
//! let (entrypoint, cmd) = (config.entrypoint(), config.cmd()); // also env(), working_dir(), user()
//! // Bottom to top; overlayfs wants `lowerdir=top:...:bottom`.
//! let lowerdir: Vec<_> = image.layers.iter().rev().map(|p| p.display().to_string()).collect();
//! # let _ = (entrypoint, cmd, lowerdir); Ok(()) }
//! ```
//!
//! Each layer is unpacked once, into `<root>/image/layers/<diff_id hex>/fs`,
//! in overlayfs format for the `userxattr` mount option (whiteouts are
//! character devices 0/0, opaque directories carry `user.overlay.opaque=y`),
//! shared by every image and container that uses it. Layer directories must
//! be mounted read-only.
//!
//! `Store::remove` and `Store::prune` take a predicate telling whether a
//! container uses an image, so images in use are kept.
//!
//! Network operations (`pull`, `push`, `check_login`, and `download` for a
//! build's `ADD <url>`) run their own tokio runtime; everything else is
//! plain blocking I/O. Every error is one line and leaves the store as it
//! was.

mod archive;
mod auth;
mod blob_upload;
mod build;
mod capped;
mod compression;
mod digest;
mod docker_fields;
mod download;
mod exposed;
mod flatten;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod image_index;
mod import;
mod limits;
mod pin;
mod platform;
mod progress;
mod quote;
mod reference;
mod registry;
mod remove_tree;
mod store;
mod tar_guard;
mod unpack;

pub use archive::{load, save};
pub use auth::AuthFile;
pub use build::{Adding, CacheEntry, CacheUsage, Layer, PrunedCache};
pub use digest::{Digest, InvalidDigest};
pub use docker_fields::{DockerFields, Healthcheck};
pub use download::{download, Downloaded};
pub use exposed::{check_port_spec, exposed_port_set, exposed_ports};
pub use flatten::{flatten, flatten_into};
pub use import::{import_tar, ConfigChange, ImportOptions};
pub use limits::{LimitExceeded, Limits};
pub use pin::Pin;
pub use platform::check_platform;
pub use progress::{ProgressStyle, Stream};
pub use reference::{ImageRef, InvalidReference};
pub use registry::{
    check_login, fetch_manifest_document, list_tags, pull, push, LoginRefused, Pulled, Pushed,
    RegistryOptions,
};
pub use store::{Image, NoSuchImage, Pruned, PrunedImage, Removal, Store};
