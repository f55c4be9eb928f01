//! `run`: a one-off container of a service (its dependencies brought up
//! first), run with the caller's stdio; and `exec`: another process in one
//! of a service's running containers.

use hull_runtime::{
    capability_set, ConsoleTarget, ExecOptions, Mount, Outcome, RestartPolicy, Stdio, TerminalSize,
};
use rand::Rng;

use super::{Compose, Events, UpOptions};
use crate::error::Result;
use crate::graph::with_dependencies;
use crate::plan::{plan_container, Replica, ServiceImage};

/// `run`'s flags.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The command, instead of the service's.
    pub command: Vec<String>,
    /// The entrypoint, instead of the service's.
    pub entrypoint: Option<String>,
    /// More variables, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Another user.
    pub user: Option<String>,
    /// Another working directory.
    pub workdir: Option<String>,
    /// Its name (default `<project>-<service>-run-<random>`).
    pub name: Option<String>,
    /// Remove it once it exits.
    pub remove: bool,
    /// Publish the service's ports, as its own containers do.
    pub service_ports: bool,
    /// More ports to publish, as `run -p` takes them.
    pub publish: Vec<String>,
    /// More mounts (`run -v`, read by [`run_volume`](crate::run_volume)).
    pub mounts: Vec<Mount>,
    /// More labels.
    pub labels: Vec<(String, String)>,
    /// Capabilities added to the service's.
    pub cap_add: Vec<String>,
    /// Capabilities dropped from the service's.
    pub cap_drop: Vec<String>,
    /// Answer to the service's name and aliases on its networks, as its
    /// own containers do (without it, to its container name only).
    pub use_aliases: bool,
    /// Leave the dependencies alone.
    pub no_deps: bool,
    /// A terminal of this size for its process.
    pub tty: Option<TerminalSize>,
    /// Keep its stdin open.
    pub interactive: bool,
    /// Start it in the background instead.
    pub detach: bool,
}

/// How a `run` ended.
#[derive(Debug)]
pub enum RunEnd {
    /// Run attached, to this end.
    Ended(Outcome),
    /// Started in the background: its name.
    Detached(String),
}

impl Compose<'_> {
    /// Runs a one-off container of `service`, its dependencies brought up
    /// first (with `up`'s `dependencies` options, their images resolved).
    pub fn run(
        &self,
        service: &str,
        image: &ServiceImage,
        options: RunOptions,
        dependencies: &UpOptions,
        stdio: Stdio,
        events: Events,
    ) -> Result<RunEnd> {
        if !options.no_deps {
            let all = with_dependencies(&self.project.file.services, &[service.to_owned()], false)?;
            let needed: Vec<String> = all.into_iter().filter(|s| s != service).collect();
            if !needed.is_empty() {
                let up = UpOptions {
                    services: needed,
                    ..dependencies.clone()
                };
                self.up(&up, events)?;
            }
        }
        let suffix = hex::encode(rand::thread_rng().gen::<[u8; 6]>());
        let mut plan = plan_container(self.project, service, image, &Replica::OneOff(suffix))?;
        let create = &mut plan.options;
        if let Some(name) = options.name {
            create.name = Some(name);
        }
        if !options.command.is_empty() {
            create.command = options.command;
        }
        if let Some(entrypoint) = options.entrypoint {
            create.entrypoint = Some(entrypoint);
        }
        create.env.extend(options.env);
        create.user = options.user.or(create.user.take());
        create.workdir = options.workdir.or(create.workdir.take());
        create.auto_remove = options.remove;
        create.restart = RestartPolicy::No;
        create.tty = options.tty;
        create.interactive = options.interactive;
        if options.service_ports {
            let numbered = plan_container(self.project, service, image, &Replica::Number(1))?;
            create.network.publish = numbered.options.network.publish;
        }
        create.network.publish.extend(options.publish);
        create.mounts.extend(options.mounts);
        // Compose's own labels (project, service, one-off) are kept.
        for (key, value) in options.labels {
            create.labels.entry(key).or_insert(value);
        }
        if !options.cap_add.is_empty() || !options.cap_drop.is_empty() {
            let config = self.project.service(service)?;
            create.limits.capabilities = capability_set(
                config.privileged,
                &[&config.cap_add[..], &options.cap_add].concat(),
                &[&config.cap_drop[..], &options.cap_drop].concat(),
            )?;
        }
        if !options.use_aliases {
            create.network.network_alias.clear();
            for join in &mut plan.more_networks {
                join.aliases.clear();
            }
        }
        let name = self.create_and_start(plan, options.detach, events)?;
        match options.detach {
            true => Ok(RunEnd::Detached(name)),
            false => Ok(RunEnd::Ended(self.runtime.run_attached(
                &name,
                stdio,
                ConsoleTarget::Log,
            )?)),
        }
    }

    /// Runs `options`' process in container `index` of `service`.
    pub fn exec(
        &self,
        service: &str,
        index: u32,
        options: ExecOptions,
        stdio: Stdio,
    ) -> Result<Outcome> {
        let container = self.replica(service, index)?;
        Ok(self.runtime.exec(container.id(), options, stdio)?)
    }
}
