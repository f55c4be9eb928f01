//! A loaded project: its name, directory, files, merged model, active
//! profiles and each service's resolved environment; what its resources
//! are called in hull.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::dotenv;
use crate::error::{Error, Result};
use crate::model::{ComposeFile, Service};

/// The network a service without `networks` joins.
pub const DEFAULT_NETWORK: &str = "default";

/// A compose project, loaded and validated.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its name.
    pub name: String,
    /// Where relative paths in its files start.
    pub directory: PathBuf,
    /// Its files, in the order they were merged.
    pub files: Vec<PathBuf>,
    /// The merged, interpolated model.
    pub file: ComposeFile,
    /// Active profiles.
    pub profiles: Vec<String>,
    /// Each service's environment, `KEY=VALUE`: its `env_file`s, then its
    /// `environment` (as the model's `environment`, which holds them
    /// resolved, but only the variables that have a value).
    pub environments: IndexMap<String, Vec<String>>,
    /// What loading noticed: unset variables, unknown keys.
    pub warnings: Vec<String>,
    /// The variables its files were interpolated with (the caller's
    /// environment over the `.env` file's): where secrets with
    /// `environment:` take their values.
    pub variables: BTreeMap<String, String>,
}

impl Project {
    /// The project, with each service's environment resolved from its env
    /// files and `variables` into its `environment`, as Compose does.
    pub(crate) fn new(
        name: String,
        directory: PathBuf,
        files: Vec<PathBuf>,
        mut file: ComposeFile,
        profiles: Vec<String>,
        variables: BTreeMap<String, String>,
        warnings: Vec<String>,
    ) -> Result<Project> {
        let mut environments = IndexMap::new();
        for (service_name, service) in &mut file.services {
            service.environment = environment(service, &directory, &variables)
                .map_err(|reason| Error::config(format!("service {service_name}: {reason}")))?;
            service.env_file.clear();
            let set = service
                .environment
                .iter()
                .filter_map(|(key, value)| Some(format!("{key}={}", value.as_ref()?)))
                .collect();
            environments.insert(service_name.clone(), set);
        }
        Ok(Project {
            name,
            directory,
            files,
            file,
            profiles,
            environments,
            warnings,
            variables,
        })
    }

    /// The service `name`.
    pub fn service(&self, name: &str) -> Result<&Service> {
        self.file
            .services
            .get(name)
            .ok_or_else(|| Error::NoSuchService(name.to_owned()))
    }

    /// Whether `service` is enabled by the active profiles (one without
    /// profiles always is).
    pub fn is_active(&self, service: &Service) -> bool {
        service.profiles.is_empty() || service.profiles.iter().any(|p| self.profiles.contains(p))
    }

    /// The names of the services enabled by the active profiles; refused,
    /// as Compose refuses it, if one of them needs a service they leave
    /// out.
    pub fn active_services(&self) -> Result<Vec<String>> {
        self.check_active_dependencies()?;
        Ok(self
            .file
            .services
            .iter()
            .filter(|(_, service)| self.is_active(service))
            .map(|(name, _)| name.clone())
            .collect())
    }

    /// Refuses an active service that needs (`depends_on`, not `required:
    /// false`) one the active profiles leave out.
    pub fn check_active_dependencies(&self) -> Result<()> {
        let services = &self.file.services;
        for (name, service) in services.iter().filter(|(_, s)| self.is_active(s)) {
            let left_out = service
                .depends_on
                .iter()
                .find_map(|(dependency, condition)| {
                    let needed = services.get(dependency).filter(|_| condition.required)?;
                    (!self.is_active(needed)).then_some((dependency, &needed.profiles))
                });
            if let Some((dependency, profiles)) = left_out {
                return Err(Error::config(format!(
                    "service {name:?} depends on service {dependency:?}, which no active \
                     profile enables: activate one of its profiles ({}) with --profile or \
                     COMPOSE_PROFILES",
                    profiles.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The active services as Compose lists them (`config --services`):
    /// by name, each after the services it depends on.
    pub fn listed_services(&self) -> Result<Vec<String>> {
        let mut active: IndexMap<String, Service> = self
            .active_services()?
            .into_iter()
            .map(|name| {
                let service = self.file.services[&name].clone();
                (name, service)
            })
            .collect();
        active.sort_keys();
        crate::graph::dependency_order(&active)
    }

    /// The hull name of the project network `key`.
    pub fn network_name(&self, key: &str) -> String {
        match self.file.networks.get(key).and_then(|n| n.name.clone()) {
            Some(name) => name,
            None => format!("{}_{key}", self.name),
        }
    }

    /// The hull name of the project volume `key`.
    pub fn volume_name(&self, key: &str) -> String {
        match self.file.volumes.get(key).and_then(|v| v.name.clone()) {
            Some(name) => name,
            None => format!("{}_{key}", self.name),
        }
    }

    /// The networks (keys) `service` joins, in order.
    pub fn service_networks(&self, service: &Service) -> Vec<String> {
        if service.network_mode.is_some() {
            return Vec::new();
        }
        match service.networks.is_empty() {
            true => vec![DEFAULT_NETWORK.to_owned()],
            false => service.networks.keys().cloned().collect(),
        }
    }

    /// How many containers `service` has unless told otherwise.
    pub fn replicas(&self, service: &Service) -> u32 {
        service
            .deploy
            .as_ref()
            .and_then(|deploy| deploy.replicas)
            .or(service.scale)
            .unwrap_or(1)
    }
}

/// A service's environment: its env files in order, then `environment`
/// over them. A variable without a value takes the one of `variables`, or
/// stays without one (and is not set in the container).
fn environment(
    service: &Service,
    directory: &std::path::Path,
    variables: &BTreeMap<String, String>,
) -> std::result::Result<IndexMap<String, Option<String>>, String> {
    let lookup = |name: &str| variables.get(name).cloned();
    let mut env: IndexMap<String, Option<String>> = IndexMap::new();
    for env_file in &service.env_file {
        let path = directory.join(&env_file.path);
        if !env_file.required && !path.exists() {
            continue;
        }
        for (key, value) in dotenv::read(&path, &lookup)? {
            if let Some(value) = value.or_else(|| lookup(&key)) {
                env.insert(key, Some(value));
            }
        }
    }
    for (key, value) in &service.environment {
        env.insert(key.clone(), value.clone().or_else(|| lookup(key)));
    }
    Ok(env)
}
