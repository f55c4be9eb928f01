//! `compose up` (attached: the containers' logs multiplexed with
//! `service-N |` prefixes until Ctrl-C stops them all) and `compose run`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hull_compose::{run_volume, Compose, Project, RunEnd, RunOptions, UpOptions};
use hull_runtime::signals::Signals;
use hull_runtime::{parse_user, Mount};

use super::attach::{attach, AttachOptions};
use super::images::{resolved, BuildPolicy, ImageRequest};
use super::{print_event, service_stdio, DockerTerminalFlags};
use crate::machine::ForwardedStdio;
use crate::run::{label_pair, parse_label, PullPolicy};
use crate::terminal::{self, Terminal};

/// `compose up`'s flags.
#[derive(Args)]
pub struct UpArgs {
    /// Start in the background and return.
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    making: MakeFlags,
    /// Leave the services' dependencies alone.
    #[arg(long)]
    no_deps: bool,
    /// Make the containers, do not start them.
    #[arg(long)]
    no_start: bool,
    /// Give recreated containers new anonymous volumes instead of those
    /// of the containers they replace.
    #[arg(short = 'V', long)]
    renew_anon_volumes: bool,
    /// Return once every container runs (implies -d).
    #[arg(long)]
    wait: bool,
    /// Seconds --wait waits at most.
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    wait_timeout: Option<u64>,
    /// Seconds each container's stop waits when Ctrl-C stops them.
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Stop every container once one of those attached exits, and exit
    /// with its code.
    #[arg(long, conflicts_with_all = ["detach", "wait", "no_start"])]
    abort_on_container_exit: bool,
    /// Exit with the code of this service's container (implies
    /// --abort-on-container-exit).
    #[arg(long, value_name = "SERVICE", conflicts_with_all = ["detach", "wait", "no_start"])]
    exit_code_from: Option<String>,
    /// Print the output of these services only (default: all).
    #[arg(long = "attach", value_name = "SERVICE")]
    attach: Vec<String>,
    /// Do not print the output of these services.
    #[arg(long = "no-attach", value_name = "SERVICE")]
    no_attach: Vec<String>,
    /// Print the output without the `service |` prefixes.
    #[arg(long)]
    no_log_prefix: bool,
    /// Print each line's time.
    #[arg(long)]
    timestamps: bool,
    /// Accepted: hull prints no colours.
    #[arg(long = "no-color")]
    _no_color: bool,
    /// The services (default: all of the active profiles).
    services: Vec<String>,
}

/// The flags of `up` and `create` that shape what is made.
#[derive(Args)]
struct MakeFlags {
    /// Build the images of services with build: first, even if they are
    /// here.
    #[arg(long, conflicts_with = "no_build")]
    build: bool,
    /// Build no image: those of services with build: must be here.
    #[arg(long)]
    no_build: bool,
    /// Pull images: always, missing (default: each service's pull_policy)
    /// or never.
    #[arg(long, value_enum, value_name = "POLICY")]
    pull: Option<PullPolicy>,
    /// Pull images without printing progress.
    #[arg(long)]
    quiet_pull: bool,
    /// Recreate containers even if their configuration is unchanged.
    #[arg(long, conflicts_with = "no_recreate")]
    force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long)]
    no_recreate: bool,
    /// Make N containers of SERVICE: SERVICE=N (over deploy.replicas).
    #[arg(long, value_name = "SERVICE=N", value_parser = parse_scale)]
    scale: Vec<(String, u32)>,
    /// Remove containers of services the file no longer has.
    #[arg(long)]
    remove_orphans: bool,
}

impl MakeFlags {
    /// The images `services` (without their dependencies if `no_deps`)
    /// need.
    fn image_request(&self, services: &[String], no_deps: bool) -> ImageRequest {
        ImageRequest {
            services: services.to_vec(),
            no_deps,
            pull: self.pull,
            build: BuildPolicy::from_flags(self.build, self.no_build),
            quiet_pull: self.quiet_pull,
        }
    }

    /// Refuses a `--scale` of a service `project` does not have.
    fn check(&self, project: &Project) -> Result<()> {
        for (service, _) in &self.scale {
            project.service(service)?;
        }
        Ok(())
    }

    /// `up`'s options for `services`, the images resolved (found, pulled
    /// or built) here.
    fn up_options(
        &self,
        compose: &Compose,
        services: &[String],
        no_deps: bool,
    ) -> Result<UpOptions> {
        self.check(compose.project())?;
        let request = self.image_request(services, no_deps);
        Ok(UpOptions {
            services: services.to_vec(),
            no_deps,
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            scale: self.scale.iter().cloned().collect::<BTreeMap<_, _>>(),
            remove_orphans: self.remove_orphans,
            images: resolved(compose, compose.runtime().root(), &request)?,
            ..UpOptions::default()
        })
    }
}

/// `compose create`'s flags: `up`'s that shape what is made.
#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    making: MakeFlags,
    /// The services (default: all of the active profiles).
    services: Vec<String>,
}

impl CreateArgs {
    /// Refuses, before any image is pulled, flags naming services
    /// `project` does not have.
    pub fn check(&self, project: &Project) -> Result<()> {
        self.making.check(project)
    }

    /// The images this `create` needs.
    pub fn image_request(&self) -> ImageRequest {
        self.making.image_request(&self.services, false)
    }
}

/// `compose scale`'s arguments.
#[derive(Args)]
pub struct ScaleArgs {
    /// Leave the services' dependencies alone.
    #[arg(long)]
    no_deps: bool,
    /// How many containers each service runs: SERVICE=N.
    #[arg(required = true, value_name = "SERVICE=N", value_parser = parse_scale)]
    scale: Vec<(String, u32)>,
}

impl ScaleArgs {
    /// Refuses, before any image is pulled, a service `project` does not
    /// have.
    pub fn check(&self, project: &Project) -> Result<()> {
        for (service, _) in &self.scale {
            project.service(service)?;
        }
        Ok(())
    }

    /// The images the scaled services need.
    pub fn image_request(&self) -> ImageRequest {
        ImageRequest {
            services: self.services(),
            no_deps: self.no_deps,
            pull: None,
            build: BuildPolicy::from_flags(false, false),
            quiet_pull: false,
        }
    }

    fn services(&self) -> Vec<String> {
        self.scale
            .iter()
            .map(|(service, _)| service.clone())
            .collect()
    }
}

/// `compose scale`: those services brought to that many running
/// containers each, as `up -d --scale` brings them (with their
/// dependencies, unless --no-deps).
pub fn scale(args: ScaleArgs, compose: &Compose) -> Result<u8> {
    args.check(compose.project())?;
    let request = args.image_request();
    let options = UpOptions {
        services: args.services(),
        no_deps: args.no_deps,
        scale: args.scale.iter().cloned().collect(),
        images: resolved(compose, compose.runtime().root(), &request)?,
        ..UpOptions::default()
    };
    compose.up(&options, &mut print_event)?;
    Ok(0)
}

/// `compose create`: `up --no-start`.
pub fn create(args: CreateArgs, compose: &Compose) -> Result<u8> {
    let options = UpOptions {
        no_start: true,
        ..args.making.up_options(compose, &args.services, false)?
    };
    compose.up(&options, &mut print_event)?;
    Ok(0)
}

fn parse_scale(value: &str) -> Result<(String, u32), String> {
    let (service, count) = value
        .split_once('=')
        .ok_or_else(|| format!("{value}: expected SERVICE=N"))?;
    let count = count
        .parse()
        .map_err(|_| format!("{value}: {count:?} is not a number"))?;
    Ok((service.to_owned(), count))
}

impl UpArgs {
    /// Whether the containers are only made (`--no-start`).
    pub fn no_start(&self) -> bool {
        self.no_start
    }

    /// Refuses, before any image is pulled, flags naming services
    /// `project` does not have (`--scale`, `--attach`, `--no-attach`,
    /// `--exit-code-from`).
    pub fn check(&self, project: &Project) -> Result<()> {
        let named = self.attach.iter().chain(&self.no_attach);
        for service in named.chain(&self.exit_code_from) {
            project.service(service)?;
        }
        self.making.check(project)
    }

    /// The images this `up` needs.
    pub fn image_request(&self) -> ImageRequest {
        self.making.image_request(&self.services, self.no_deps)
    }

    /// Whether every container stops once one exits.
    fn cascades(&self) -> bool {
        self.abort_on_container_exit || self.exit_code_from.is_some()
    }
}

pub fn up(args: UpArgs, compose: &Compose) -> Result<u8> {
    args.check(compose.project())?;
    let options = UpOptions {
        no_start: args.no_start,
        renew_anon_volumes: args.renew_anon_volumes,
        wait: args.wait,
        wait_timeout: args.wait_timeout.map(Duration::from_secs),
        ..args
            .making
            .up_options(compose, &args.services, args.no_deps)?
    };
    let attached = !(args.detach || args.wait || args.no_start);
    // Caught before the first VM boots: a Ctrl-C then stops what started.
    let signals = match attached {
        true => Some(Signals::catch()?),
        false => None,
    };
    let report = compose.up(&options, &mut print_event)?;
    let Some(signals) = signals else {
        return Ok(0);
    };
    let options = AttachOptions {
        attach: args.attach.clone(),
        no_attach: args.no_attach.clone(),
        cascade: args.cascades(),
        exit_code_from: args.exit_code_from.clone(),
        grace: args.timeout.map(Duration::from_secs),
        no_log_prefix: args.no_log_prefix,
        timestamps: args.timestamps,
    };
    attach(compose, &report.containers, &options, &signals)
}

/// `compose run`'s flags.
#[derive(Args)]
pub struct RunArgs {
    /// Remove the container once it exits.
    #[arg(long)]
    rm: bool,
    /// Run it in the background and print its name.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Its name.
    #[arg(long)]
    name: Option<String>,
    /// Another variable: KEY=VALUE.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = crate::run::parse_env)]
    env: Vec<String>,
    /// Another user: USER[:GROUP].
    #[arg(short = 'u', long, value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<String>,
    /// Another working directory.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Another entrypoint.
    #[arg(long, value_name = "COMMAND")]
    entrypoint: Option<String>,
    /// Leave the service's dependencies alone.
    #[arg(long)]
    no_deps: bool,
    /// Publish the service's ports, as its own containers do.
    #[arg(long)]
    service_ports: bool,
    /// No terminal for the process (default: one if this is a terminal).
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    #[command(flatten)]
    _terminal: DockerTerminalFlags,
    /// Publish a port: [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO], as `run -p`.
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// Mount a volume: [SOURCE:]TARGET[:ro], as in the service's volumes
    /// (relative host paths from the project directory).
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    volumes: Vec<String>,
    /// Another label: KEY=VALUE.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<String>,
    /// Give the process a capability beyond the service's.
    #[arg(long = "cap-add", value_name = "CAPABILITY")]
    cap_add: Vec<String>,
    /// Take a capability from the process.
    #[arg(long = "cap-drop", value_name = "CAPABILITY")]
    cap_drop: Vec<String>,
    /// Answer to the service's name and aliases on its networks, as the
    /// service's own containers do.
    #[arg(long)]
    use_aliases: bool,
    /// Pull images: always, missing or never.
    #[arg(long, value_enum, value_name = "POLICY")]
    pull: Option<PullPolicy>,
    /// Build the images of services with build: first, even if they are
    /// here.
    #[arg(long)]
    build: bool,
    /// Pull images without printing progress.
    #[arg(long)]
    quiet_pull: bool,
    /// The service.
    service: String,
    /// The command, instead of the service's.
    #[arg(trailing_var_arg = true)]
    command: Vec<String>,
}

impl RunArgs {
    /// Refuses, before any image is pulled, a service `project` does not
    /// have and a bad -v; gives the mounts -v adds.
    pub fn check(&self, project: &Project) -> Result<Vec<Mount>> {
        project.service(&self.service)?;
        let mounts = self.volumes.iter().map(|v| run_volume(project, v));
        Ok(mounts.collect::<Result<_, _>>()?)
    }

    /// What this `run` publishes, as `-p` values.
    pub fn published(&self, project: &Project) -> Result<Vec<String>> {
        let mut specs = self.publish.clone();
        if self.service_ports {
            specs.extend(hull_compose::service_publish(project, &self.service)?);
        }
        Ok(specs)
    }

    /// The images this `run` needs: its service's and its dependencies'.
    pub fn image_request(&self) -> ImageRequest {
        ImageRequest {
            services: vec![self.service.clone()],
            no_deps: self.no_deps,
            pull: self.pull,
            build: BuildPolicy::from_flags(self.build, false),
            quiet_pull: self.quiet_pull,
        }
    }

    /// What of this terminal the command uses in the machine.
    pub fn stdio(&self) -> ForwardedStdio {
        service_stdio(self.no_tty, self.detach)
    }
}

pub fn run(args: RunArgs, compose: &Compose) -> Result<u8> {
    let mounts = args.check(compose.project())?;
    let root = compose.runtime().root().to_path_buf();
    let images = resolved(compose, &root, &args.image_request())?;
    let image = images
        .get(&args.service)
        .cloned()
        .ok_or_else(|| hull_compose::Error::NoSuchService(args.service.clone()))?;
    let tty = args
        .stdio()
        .tty
        .then(|| terminal::size().unwrap_or(terminal::DEFAULT_SIZE));
    let dependencies = UpOptions {
        images,
        ..UpOptions::default()
    };
    let options = RunOptions {
        command: args.command,
        entrypoint: args.entrypoint,
        env: args.env,
        user: args.user,
        workdir: args.workdir,
        name: args.name,
        remove: args.rm,
        service_ports: args.service_ports,
        publish: args.publish,
        mounts,
        labels: args.labels.iter().map(|label| label_pair(label)).collect(),
        cap_add: args.cap_add,
        cap_drop: args.cap_drop,
        use_aliases: args.use_aliases,
        no_deps: args.no_deps,
        tty,
        interactive: !args.detach,
        detach: args.detach,
    };
    let signals = Signals::catch()?;
    let terminal = Terminal::new(tty.is_some(), !args.detach);
    let stdio = terminal.stdio(Some(signals))?;
    match compose.run(
        &args.service,
        &image,
        options,
        &dependencies,
        stdio,
        &mut print_event,
    )? {
        RunEnd::Detached(name) => {
            println!("{name}");
            Ok(0)
        }
        RunEnd::Ended(outcome) => Ok(outcome.exit_code()),
    }
}
