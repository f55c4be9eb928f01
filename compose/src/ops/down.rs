//! `down`: the project's containers stopped and removed (its `run`
//! containers too), then its networks, and with `-v` its volumes, and with
//! `--rmi` its images.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::Duration;

use super::{event, is_oneoff, number_of, service_of, Action, Compose, Events, Kind};
use crate::error::Result;
use crate::graph::dependency_order;
use crate::project::DEFAULT_NETWORK;

/// `down`'s flags.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Remove the named volumes the file declares and the containers'
    /// anonymous ones.
    pub volumes: bool,
    /// Remove the services' images: `all`, or only built ones (`local`).
    pub remove_images: Option<ImageRemoval>,
    /// Remove containers of services the file no longer has.
    pub remove_orphans: bool,
    /// How long each container's stop waits before killing.
    pub timeout: Option<Duration>,
}

/// Which images `down --rmi` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRemoval {
    /// Every service's image.
    All,
    /// Only images with no `image:` name of their own.
    Local,
}

impl Compose<'_> {
    /// Takes the project down as `options` say: its containers stopped and
    /// removed dependents first (see [`teardown_rank`]).
    pub fn down(&self, options: &DownOptions, events: Events) -> Result<()> {
        let services = &self.project.file.services;
        let order = dependency_order(services)?;
        let mut containers = self.containers(true)?;
        containers
            .sort_by_key(|c| teardown_rank(&order, service_of(c), is_oneoff(c), number_of(c)));
        let mut orphans = Vec::new();
        for container in containers {
            let known = service_of(&container).is_some_and(|s| services.contains_key(s));
            if !known && !options.remove_orphans {
                orphans.push(container.name().to_owned());
                continue;
            }
            self.remove_container(&container, options.timeout, options.volumes, events)?;
        }
        if !orphans.is_empty() {
            let warning = format!(
                "found orphan containers ({}) for this project; run down with --remove-orphans to remove them",
                orphans.join(", ")
            );
            events(event(Kind::Container, "", Action::Warning(warning)));
        }
        self.remove_networks(events)?;
        if options.volumes {
            self.remove_volumes(events)?;
        }
        if let Some(which) = options.remove_images {
            self.remove_images(which == ImageRemoval::Local, events)?;
        }
        Ok(())
    }

    /// Removes the project's own networks (not external ones) that exist
    /// and no container is on.
    fn remove_networks(&self, events: Events) -> Result<()> {
        let mut keys: Vec<String> = self
            .project
            .file
            .networks
            .iter()
            .filter(|(_, n)| !n.external)
            .map(|(key, _)| key.clone())
            .collect();
        if !keys.iter().any(|k| k == DEFAULT_NETWORK) {
            keys.push(DEFAULT_NETWORK.to_owned());
        }
        let existing: BTreeSet<String> = self
            .runtime
            .list_networks()?
            .into_iter()
            .map(|n| n.name)
            .collect();
        for key in keys {
            let name = self.project.network_name(&key);
            if !existing.contains(&name) {
                continue;
            }
            match self.runtime.inspect_network(&name)?.members.is_empty() {
                true => {
                    self.runtime.remove_network(&name)?;
                    events(event(Kind::Network, &name, Action::Removed));
                }
                false => events(event(
                    Kind::Network,
                    &name,
                    Action::Warning("still in use by containers of other projects".into()),
                )),
            }
        }
        Ok(())
    }

    /// Removes the project's own named volumes (not external ones).
    fn remove_volumes(&self, events: Events) -> Result<()> {
        let existing: BTreeSet<String> = self
            .runtime
            .list_volumes()?
            .into_iter()
            .map(|v| v.volume.name)
            .collect();
        for (key, definition) in &self.project.file.volumes {
            let name = self.project.volume_name(key);
            if definition.external || !existing.contains(&name) {
                continue;
            }
            self.runtime.remove_volume(&name, false)?;
            events(event(Kind::Volume, &name, Action::Removed));
        }
        Ok(())
    }
}

/// Where a container comes in `down`'s teardown, as Compose v2 orders it:
/// service by service, dependents before what they depend on (each
/// service's `run` containers with it, before its numbered ones, highest
/// number first), then the orphans (services the file no longer has).
/// `order` is the services' dependency order.
fn teardown_rank(
    order: &[String],
    service: Option<&str>,
    oneoff: bool,
    number: u32,
) -> (bool, Reverse<Option<usize>>, bool, Reverse<u32>) {
    let position = service.and_then(|service| order.iter().position(|s| s == service));
    (
        position.is_none(),
        Reverse(position),
        !oneoff,
        Reverse(number),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_go_before_what_they_depend_on_and_orphans_last() {
        let order: Vec<String> = ["db", "cache", "web"].map(String::from).into();
        let mut containers = vec![
            ("db", false, 1),
            ("gone", false, 1),
            ("web", false, 1),
            ("cache", false, 1),
            ("web", false, 2),
            ("web", true, 0),
            ("db", true, 0),
        ];
        containers.sort_by_key(|&(service, oneoff, number)| {
            teardown_rank(&order, Some(service), oneoff, number)
        });
        assert_eq!(
            containers,
            [
                ("web", true, 0),
                ("web", false, 2),
                ("web", false, 1),
                ("cache", false, 1),
                ("db", true, 0),
                ("db", false, 1),
                ("gone", false, 1),
            ]
        );
    }
}
