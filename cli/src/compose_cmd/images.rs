//! The services' images found in the store or pulled, as `hull run`
//! finds its own: here, on this host, before a command goes to the hull
//! machine, which gets their IDs in its environment.

use std::path::Path;

use anyhow::{Context, Result};
use hull_compose::model::PullPolicy as ServicePolicy;
use hull_compose::{Compose, ServiceImage, ServiceImages};
use hull_image::Store;

use crate::run::{image_for_run, PullPolicy};

/// Set for the `hull compose` in the hull machine by the one outside: the
/// images it found or pulled, as JSON.
const RESOLVED_IMAGES_ENV: &str = "HULL_COMPOSE_IMAGES";

/// Which services' images to find, and the `--pull` flag.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The services named (none: all active ones).
    pub services: Vec<String>,
    /// Without their dependencies.
    pub no_deps: bool,
    /// `--pull`, over each service's `pull_policy`.
    pub pull: Option<PullPolicy>,
}

/// The images `request` needs, found or pulled.
pub fn resolve(compose: &Compose, root: &Path, request: &ImageRequest) -> Result<ServiceImages> {
    let services = compose.selected(&request.services, request.no_deps)?;
    let store = Store::open(root)?;
    let mut images = ServiceImages::new();
    for need in compose.image_needs(&services)? {
        let name = need.name()?;
        let policy = request.pull.unwrap_or(match need.pull_policy {
            ServicePolicy::Always => PullPolicy::Always,
            ServicePolicy::Never => PullPolicy::Never,
            _ => PullPolicy::Missing,
        });
        let image = image_for_run(&store, root, name, policy)
            .with_context(|| format!("service {}: image {name}", need.service))?;
        images.insert(
            need.service.clone(),
            ServiceImage {
                name: name.to_owned(),
                id: image.id.to_string(),
            },
        );
    }
    Ok(images)
}

/// The images given by the `hull compose` outside the machine, else
/// resolved here.
pub fn resolved(compose: &Compose, root: &Path, request: &ImageRequest) -> Result<ServiceImages> {
    match std::env::var(RESOLVED_IMAGES_ENV) {
        Ok(json) => serde_json::from_str(&json)
            .with_context(|| format!("{RESOLVED_IMAGES_ENV} is not the images' JSON")),
        Err(_) => resolve(compose, root, request),
    }
}

/// `images` as an environment entry for the command in the machine.
pub fn forwarded(images: &ServiceImages) -> Result<String> {
    Ok(format!(
        "{RESOLVED_IMAGES_ENV}={}",
        serde_json::to_string(images)?
    ))
}
