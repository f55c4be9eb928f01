//! Images: what the services need (found, pulled or built by the front
//! end, where the image store can be written), the images the containers
//! run (`compose images`), and their removal (`down --rmi`).

use std::collections::BTreeMap;

use hull_image::{ImageRef, Removal, Store};

use super::{event, Compose, Events, Kind};
use crate::error::Result;
use crate::model::{Build, PullPolicy};
use crate::plan::ServiceImage;

/// The images of the services, by service name, as the front end found,
/// pulled or built them.
pub type ServiceImages = BTreeMap<String, ServiceImage>;

/// The image one service needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageNeed {
    /// The service.
    pub service: String,
    /// The image's name: the service's `image:`, else (it has `build:`
    /// only) `<project>-<service>`, as Compose v2 names what it builds.
    pub name: String,
    /// Whether `image:` gave the name, so it can be pulled.
    pub named: bool,
    /// Its `build:`.
    pub build: Option<Build>,
    /// When to pull (default `missing`).
    pub pull_policy: PullPolicy,
}

/// The name Compose v2 gives the image it builds for `service`, which
/// has no `image:`.
fn built_image_name(project: &str, service: &str) -> String {
    format!("{project}-{service}")
}

/// An image a container runs, as `compose images` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// The container's name.
    pub container: String,
    /// The image's repository, as Docker shows it (`redis`).
    pub repository: String,
    /// Its tag.
    pub tag: String,
    /// Its ID (`sha256:...`).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Compose<'_> {
    /// The images `services` (with what they need, in dependency order)
    /// need.
    pub fn image_needs(&self, services: &[String]) -> Result<Vec<ImageNeed>> {
        let mut needs = Vec::new();
        for name in services {
            let service = self.project.service(name)?;
            let pull_policy = match service.pull_policy {
                None | Some(PullPolicy::IfNotPresent) => PullPolicy::Missing,
                Some(policy) => policy,
            };
            needs.push(ImageNeed {
                service: name.clone(),
                name: service
                    .image
                    .clone()
                    .unwrap_or_else(|| built_image_name(&self.project.name, name)),
                named: service.image.is_some(),
                build: service.build.clone(),
                pull_policy,
            });
        }
        Ok(needs)
    }

    /// The images the project's containers run.
    pub fn images(&self, services: &[String]) -> Result<Vec<ContainerImage>> {
        let store = Store::open(self.runtime.root())?;
        let mut rows = Vec::new();
        for container in self.service_containers(services, true)? {
            let config = &container.config;
            let image = store.find(&config.image)?;
            let (repository, tag) = familiar(&config.image);
            rows.push(ContainerImage {
                container: config.name.clone(),
                repository,
                tag,
                id: image.as_ref().map(|i| i.id.to_string()).unwrap_or_default(),
                size: image.map_or(0, |i| i.size),
            });
        }
        Ok(rows)
    }

    /// Removes the images of the services (`down --rmi all`); `local`:
    /// only those without an `image:` name of their own (built ones).
    pub(super) fn remove_images(&self, local: bool, events: Events) -> Result<()> {
        let store = Store::open(self.runtime.root())?;
        let in_use = self.runtime.images_in_use()?;
        let used = |id: &hull_image::Digest| in_use.contains(&id.to_string());
        let mut names: Vec<String> = Vec::new();
        for (name, service) in &self.project.file.services {
            let image = match (&service.image, local) {
                (Some(_), true) => continue,
                (Some(image), false) => image.clone(),
                (None, _) => built_image_name(&self.project.name, name),
            };
            if !names.contains(&image) {
                names.push(image);
            }
        }
        for name in names {
            if store.find(&name)?.is_none() {
                continue;
            }
            for removal in store.remove(&name, false, &used)? {
                let text = match removal {
                    Removal::Untagged(tag) => tag,
                    Removal::Deleted(id) => id.to_string(),
                };
                events(event(Kind::Image, &text, super::Action::Removed));
            }
        }
        Ok(())
    }
}

/// `docker.io/library/redis:7` as (`redis`, `7`).
fn familiar(name: &str) -> (String, String) {
    match ImageRef::parse(name) {
        Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        Err(_) => (name.to_owned(), "<none>".to_owned()),
    }
}
