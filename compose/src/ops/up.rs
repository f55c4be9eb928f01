//! `up`: the project's networks and volumes made, then its services
//! brought to what the file says, in dependency order, each after what it
//! depends on is started, healthy or completed: containers made that are
//! missing, remade whose configuration changed (config hash), started that
//! are stopped, removed beyond the scale.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hull_image::Store;
use hull_runtime::{
    same_target, ContainerInfo, CreateVolumeOptions, Mount, MountSource, NewNetwork, RemoveOptions,
    StopOptions, Subnet,
};

use super::{event, number_of, service_of, Action, Compose, Events, Kind, ServiceImages};
use crate::error::{Error, Result};
use crate::graph::{dependents, with_dependencies};
use crate::labels;
use crate::model::Condition;
use crate::plan::{config_hash, plan_container, ContainerPlan, Replica, ServiceImage};

/// `up`'s flags.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// The services to bring up (none: all the active profiles enable),
    /// with what they depend on unless `no_deps`.
    pub services: Vec<String>,
    /// Leave the services' dependencies alone.
    pub no_deps: bool,
    /// Remake containers even if up to date.
    pub force_recreate: bool,
    /// Never remake containers, even if out of date.
    pub no_recreate: bool,
    /// Give remade containers new anonymous volumes instead of their
    /// predecessors' (`-V`, `--renew-anon-volumes`).
    pub renew_anon_volumes: bool,
    /// Containers per service, over the file's `deploy.replicas`/`scale`.
    pub scale: BTreeMap<String, u32>,
    /// Remove containers of services the file no longer has.
    pub remove_orphans: bool,
    /// Make the containers but do not start them (`create`).
    pub no_start: bool,
    /// Return only once every container runs (and is healthy, if it has a
    /// healthcheck).
    pub wait: bool,
    /// How long `wait` waits at most.
    pub wait_timeout: Option<Duration>,
    /// The services' images, as the front end resolved them.
    pub images: ServiceImages,
}

/// What `up` brought up.
#[derive(Debug, Clone, Default)]
pub struct UpReport {
    /// The services' containers' names, in dependency order.
    pub containers: Vec<String>,
}

impl Compose<'_> {
    /// The services named (none: those the active profiles enable) and,
    /// unless `no_deps`, what they depend on, in dependency order.
    pub fn selected(&self, services: &[String], no_deps: bool) -> Result<Vec<String>> {
        let names = match services.is_empty() {
            true => self.project.active_services()?,
            false => services.to_vec(),
        };
        with_dependencies(&self.project.file.services, &names, no_deps)
    }

    /// Brings the project up as `options` say.
    pub fn up(&self, options: &UpOptions, events: Events) -> Result<UpReport> {
        let services = self.selected(&options.services, options.no_deps)?;
        self.orphans(options.remove_orphans, events)?;
        self.ensure_networks(&services, events)?;
        self.ensure_volumes(&services, events)?;
        let mut recreated: BTreeSet<String> = BTreeSet::new();
        let mut report = UpReport::default();
        for name in &services {
            if !options.no_start {
                self.wait_for_dependencies(name, &services, events)?;
            }
            let image = options.images.get(name).ok_or_else(|| {
                Error::Failed(format!(
                    "service {name}: no image was found or pulled for it"
                ))
            })?;
            let (containers, changed) = self.converge(name, image, options, events)?;
            if changed {
                recreated.insert(name.clone());
            }
            report.containers.extend(containers);
        }
        self.restart_dependents(&services, &recreated, options, events)?;
        if options.wait {
            self.wait_ready(&report.containers, options.wait_timeout, events)?;
        }
        Ok(report)
    }

    /// Containers of services the file no longer has: removed if
    /// `remove`, else warned about.
    fn orphans(&self, remove: bool, events: Events) -> Result<()> {
        let services = &self.project.file.services;
        let orphans: Vec<ContainerInfo> = self
            .containers(false)?
            .into_iter()
            .filter(|c| service_of(c).is_none_or(|s| !services.contains_key(s)))
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        if !remove {
            let names: Vec<&str> = orphans.iter().map(|c| c.name()).collect();
            let warning = format!(
                "found orphan containers ({}) for this project; if you removed or renamed their \
                 service in the compose file, run this command with --remove-orphans to clean them up",
                names.join(", ")
            );
            events(event(Kind::Container, "", Action::Warning(warning)));
            return Ok(());
        }
        for orphan in orphans {
            self.remove_container(&orphan, None, false, events)?;
        }
        Ok(())
    }

    /// Makes the project networks `services` join, and checks the external
    /// ones exist.
    fn ensure_networks(&self, services: &[String], events: Events) -> Result<()> {
        let mut keys: Vec<String> = Vec::new();
        for name in services {
            for key in self.project.service_networks(self.project.service(name)?) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let existing: BTreeSet<String> = self
            .runtime
            .list_networks()?
            .into_iter()
            .map(|n| n.name)
            .collect();
        for key in keys {
            let name = self.project.network_name(&key);
            let definition = self
                .project
                .file
                .networks
                .get(&key)
                .cloned()
                .unwrap_or_default();
            if existing.contains(&name) {
                continue;
            }
            if definition.external {
                return Err(Error::Failed(format!(
                    "network {name} is declared as external, but could not be found; \
                     make it with `hull network create {name}`"
                )));
            }
            let ipam = definition.ipam.as_ref().and_then(|i| i.config.first());
            let subnet = match ipam.and_then(|c| c.subnet.as_deref()) {
                Some(text) => Some(text.parse::<Subnet>().map_err(|reason| {
                    Error::config(format!("networks.{key}.ipam.config[0].subnet: {reason}"))
                })?),
                None => None,
            };
            let mut labels: BTreeMap<String, String> = definition
                .labels
                .iter()
                .map(|(key, value)| (key.clone(), value.clone().unwrap_or_default()))
                .collect();
            labels.insert(labels::PROJECT.into(), self.project.name.clone());
            labels.insert(labels::NETWORK.into(), key.clone());
            let new = NewNetwork {
                subnet,
                gateway: ipam.and_then(|c| c.gateway),
                internal: definition.internal,
                labels,
            };
            self.runtime.create_network(&name, &new)?;
            events(event(Kind::Network, &name, Action::Created));
        }
        Ok(())
    }

    /// Makes the project volumes `services` mount, labelled as Compose's,
    /// and checks the external ones exist.
    fn ensure_volumes(&self, services: &[String], events: Events) -> Result<()> {
        let existing: BTreeSet<String> = self
            .runtime
            .list_volumes()?
            .into_iter()
            .map(|v| v.volume.name)
            .collect();
        let mut keys: Vec<String> = Vec::new();
        for name in services {
            for volume in &self.project.service(name)?.volumes {
                if let Some(key) = volume
                    .source
                    .as_ref()
                    .filter(|_| volume.kind == crate::model::MountKind::Volume)
                {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
            }
        }
        for key in keys {
            let name = self.project.volume_name(&key);
            let definition = self
                .project
                .file
                .volumes
                .get(&key)
                .cloned()
                .unwrap_or_default();
            if existing.contains(&name) {
                continue;
            }
            if definition.external {
                return Err(Error::Failed(format!(
                    "volume {name} is declared as external, but could not be found; \
                     make it with `hull volume create {name}`"
                )));
            }
            let mut volume_labels: BTreeMap<String, String> = definition
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                .collect();
            volume_labels.insert(labels::PROJECT.to_owned(), self.project.name.clone());
            volume_labels.insert(labels::VOLUME.to_owned(), key.clone());
            let options = CreateVolumeOptions {
                labels: volume_labels,
                driver_options: definition.driver_options(),
            };
            self.runtime.create_volume(Some(&name), options)?;
            events(event(Kind::Volume, &name, Action::Created));
        }
        Ok(())
    }

    /// Waits until what `service` depends on (among `selected`) is as its
    /// `depends_on` conditions ask.
    fn wait_for_dependencies(
        &self,
        service: &str,
        selected: &[String],
        events: Events,
    ) -> Result<()> {
        for (dependency, needs) in &self.project.service(service)?.depends_on {
            if !selected.contains(dependency) {
                continue;
            }
            for container in self.service_containers(std::slice::from_ref(dependency), true)? {
                self.wait_condition(&container, needs.condition, events)?;
            }
        }
        Ok(())
    }

    /// Waits until `container` meets `condition`.
    fn wait_condition(
        &self,
        container: &ContainerInfo,
        condition: Condition,
        events: Events,
    ) -> Result<()> {
        let name = container.name();
        match condition {
            Condition::ServiceStarted => Ok(()),
            Condition::ServiceCompletedSuccessfully => {
                events(event(Kind::Container, name, Action::Waiting));
                let code = self.runtime.wait(container.id())?;
                if code != 0 {
                    return Err(Error::Failed(format!(
                        "service {} did not complete successfully: container {name} exited with {code}",
                        service_of(container).unwrap_or_default()
                    )));
                }
                events(event(Kind::Container, name, Action::Exited));
                Ok(())
            }
            Condition::ServiceHealthy => {
                events(event(Kind::Container, name, Action::Waiting));
                self.wait_healthy(name, None)?;
                events(event(Kind::Container, name, Action::Healthy));
                Ok(())
            }
        }
    }

    /// Brings `service`'s containers to what the file says; returns their
    /// names, and whether any was remade.
    fn converge(
        &self,
        service: &str,
        image: &ServiceImage,
        options: &UpOptions,
        events: Events,
    ) -> Result<(Vec<String>, bool)> {
        let hash = config_hash(self.project, service, image)?;
        let scale = match options.scale.get(service) {
            Some(scale) => *scale,
            None => self.project.replicas(self.project.service(service)?),
        };
        let existing = self.service_containers(&[service.to_owned()], true)?;
        let mut kept: BTreeMap<u32, ContainerInfo> = BTreeMap::new();
        for container in existing {
            let number = number_of(&container);
            if number == 0 || number > scale || kept.contains_key(&number) {
                self.remove_container(&container, None, false, events)?;
            } else {
                kept.insert(number, container);
            }
        }
        let mut names = Vec::new();
        let mut changed = false;
        for number in 1..=scale {
            let replica = Replica::Number(number);
            let name = match kept.remove(&number) {
                Some(old) => {
                    let stale = old.config.labels.get(labels::CONFIG_HASH) != Some(&hash);
                    if options.force_recreate || (stale && !options.no_recreate) {
                        events(event(Kind::Container, old.name(), Action::Recreate));
                        let plan = plan_container(self.project, service, image, &replica)?;
                        // Its anonymous volumes stay: the new container
                        // takes them over, or with -V they are left unused
                        // (for `volume prune`), as Compose v2 leaves them.
                        // Planned in full before the old one goes.
                        let plan = match options.renew_anon_volumes {
                            true => plan,
                            false => self.keep_anonymous_volumes(plan, image, &old)?,
                        };
                        self.remove_container(&old, None, false, events)?;
                        changed = true;
                        self.create_and_start(plan, !options.no_start, events)?
                    } else if old.state.monitor_pid().is_some() || options.no_start {
                        events(event(Kind::Container, old.name(), Action::Running));
                        old.name().to_owned()
                    } else {
                        self.runtime.start(old.id())?;
                        events(event(Kind::Container, old.name(), Action::Started));
                        old.name().to_owned()
                    }
                }
                None => {
                    let plan = plan_container(self.project, service, image, &replica)?;
                    self.create_and_start(plan, !options.no_start, events)?
                }
            };
            names.push(name);
        }
        Ok((names, changed))
    }

    /// Makes the container `plan` describes, joins its further networks
    /// and starts it (if `start`); nothing is left of it on failure.
    pub(super) fn create_and_start(
        &self,
        mut plan: ContainerPlan,
        start: bool,
        events: Events,
    ) -> Result<String> {
        let linked = plan
            .service_links
            .into_iter()
            .filter(|link| self.runtime.inspect(&link.container).is_ok());
        plan.options.links.extend(linked);
        let created = self.runtime.create(plan.options)?;
        let joined = plan.more_networks.iter().try_for_each(|join| {
            self.runtime
                .connect(&join.network, &created.id, join.ip, join.aliases.clone())
        });
        if let Err(err) = joined {
            let _ = self.runtime.remove(
                &created.id,
                RemoveOptions {
                    force: true,
                    volumes: true,
                },
            );
            return Err(err.into());
        }
        events(event(Kind::Container, &created.name, Action::Created));
        if start {
            self.runtime.start(&created.id)?;
            events(event(Kind::Container, &created.name, Action::Started));
        }
        Ok(created.name)
    }

    /// Stops (within `grace`) and removes `container`, with its anonymous
    /// volumes if `volumes`.
    pub(super) fn remove_container(
        &self,
        container: &ContainerInfo,
        grace: Option<Duration>,
        volumes: bool,
        events: Events,
    ) -> Result<()> {
        if container.state.monitor_pid().is_some() {
            self.runtime
                .stop(container.id(), StopOptions::within(grace))?;
            events(event(Kind::Container, container.name(), Action::Stopped));
        }
        self.runtime.remove(
            container.id(),
            RemoveOptions {
                force: true,
                volumes,
            },
        )?;
        events(event(Kind::Container, container.name(), Action::Removed));
        Ok(())
    }

    /// Restarts the containers of services whose `depends_on` asks for it
    /// (`restart: true`) on a dependency that was remade.
    fn restart_dependents(
        &self,
        selected: &[String],
        recreated: &BTreeSet<String>,
        options: &UpOptions,
        events: Events,
    ) -> Result<()> {
        if options.no_start {
            return Ok(());
        }
        let services = &self.project.file.services;
        for dependency in recreated {
            for dependent in dependents(services, dependency) {
                let restart = services[dependent].depends_on[dependency].restart;
                if !restart
                    || recreated.contains(dependent)
                    || !selected.iter().any(|s| s == dependent)
                {
                    continue;
                }
                for container in self.service_containers(&[dependent.to_owned()], false)? {
                    self.runtime
                        .restart(container.id(), StopOptions::default())?;
                    events(event(Kind::Container, container.name(), Action::Started));
                }
            }
        }
        Ok(())
    }

    /// `plan` with the anonymous volumes of `old`, the container it
    /// replaces, mounted where `old` had them, as Compose v2 carries them
    /// across a recreate: for the service's `volumes: [/path]` entries and
    /// `image`'s `VOLUME`s (those no mount of the plan, nor of its
    /// `volumes_from` containers, covers).
    fn keep_anonymous_volumes(
        &self,
        mut plan: ContainerPlan,
        image: &ServiceImage,
        old: &ContainerInfo,
    ) -> Result<ContainerPlan> {
        let mut covered: Vec<String> = Vec::new();
        for (name, _) in &plan.options.volumes_from {
            if let Ok(other) = self.runtime.inspect(name) {
                covered.extend(other.config.boot.mounts.iter().map(|m| m.target.clone()));
            }
        }
        let image_volumes: Vec<String> = image_volumes(self.runtime.root(), image)?
            .into_iter()
            .filter(|target| !covered.iter().any(|c| same_target(c, target)))
            .collect();
        inherit_anonymous_volumes(
            &mut plan.options.mounts,
            &old.config.boot.mounts,
            &image_volumes,
            |name| {
                self.runtime
                    .inspect_volume(name)
                    .is_ok_and(|v| v.volume.anonymous)
            },
        );
        Ok(plan)
    }
}

/// The `VOLUME`s `image` declares (none if it is gone from the store).
fn image_volumes(root: &std::path::Path, image: &ServiceImage) -> Result<Vec<String>> {
    let store = Store::open(root)?;
    Ok(store
        .find(&image.id)?
        .and_then(|found| found.config.config().as_ref()?.volumes().clone())
        .unwrap_or_default())
}

/// Names, in `mounts`, the anonymous volumes (as `anonymous` tells) that
/// `previous` mounts at the same targets: for each anonymous volume mount
/// (an empty name), and for each of `image_volumes` no mount covers, which
/// the runtime would otherwise give a fresh anonymous volume.
fn inherit_anonymous_volumes(
    mounts: &mut Vec<Mount>,
    previous: &[Mount],
    image_volumes: &[String],
    anonymous: impl Fn(&str) -> bool,
) {
    let previous_at = |target: &str| {
        previous.iter().find_map(|mount| match &mount.source {
            MountSource::Volume { name, .. }
                if same_target(&mount.target, target) && anonymous(name) =>
            {
                Some(name.clone())
            }
            _ => None,
        })
    };
    for mount in mounts.iter_mut() {
        let MountSource::Volume { name, .. } = &mut mount.source else {
            continue;
        };
        if name.is_empty() {
            if let Some(previous) = previous_at(&mount.target) {
                *name = previous;
            }
        }
    }
    for target in image_volumes {
        if mounts
            .iter()
            .any(|mount| same_target(&mount.target, target))
        {
            continue;
        }
        if let Some(name) = previous_at(target) {
            mounts.push(Mount {
                target: target.clone(),
                source: MountSource::Volume {
                    name,
                    copy: true,
                    subpath: None,
                },
                read_only: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(target: &str, name: &str) -> Mount {
        Mount {
            target: target.to_owned(),
            source: MountSource::Volume {
                name: name.to_owned(),
                copy: true,
                subpath: None,
            },
            read_only: false,
        }
    }

    #[test]
    fn a_replacement_takes_over_the_anonymous_volumes_at_its_targets() {
        let (data, image, gone) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let bind = Mount {
            target: "/src".into(),
            source: MountSource::Bind {
                path: "/home/src".into(),
                create: true,
            },
            read_only: false,
        };
        let mut mounts = vec![
            volume("/data", ""),
            volume("/named", "shop_x"),
            bind.clone(),
        ];
        let previous = [
            volume("/data", &data),
            volume("/var/lib/image/", &image),
            volume("/named", "shop_x"),
            volume("/dropped", &gone),
        ];
        let image_volumes = ["/var/lib/image", "/named", "/new"].map(String::from);
        inherit_anonymous_volumes(&mut mounts, &previous, &image_volumes, |name| {
            name.len() == 64
        });
        assert_eq!(
            mounts,
            [
                volume("/data", &data),
                volume("/named", "shop_x"),
                bind,
                volume("/var/lib/image", &image),
            ]
        );
    }
}
