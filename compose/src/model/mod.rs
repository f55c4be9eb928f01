//! The compose file, typed: what hull reads of the compose-spec, in the
//! canonical (long) forms the loader makes, so that `config` prints
//! it normalised. Keys hull does not know are left out of these types and
//! reported by the loader as warnings.

mod service;
pub mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use service::{
    BindOptions, Build, Condition, Dependency, Deploy, EnvFile, FileObjectRef, Healthcheck,
    Logging, MountKind, Port, PullPolicy, ResourceAmounts, Resources, RestartPolicy, Service,
    ServiceNetwork, ServiceVolume, TmpfsOptions, Ulimit, VolumeOptions, CONTAINER_PREFIX,
};

/// A compose file, or several merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComposeFile {
    /// The project's name, unless `-p` or `COMPOSE_PROJECT_NAME` say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ignored, as by Compose v2.
    #[serde(default, skip_serializing)]
    pub version: Option<serde_yaml::Value>,
    /// The services, in the file's order.
    #[serde(default)]
    pub services: IndexMap<String, Service>,
    /// Networks the services join.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, NetworkDef>,
    /// Named volumes the services mount.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, VolumeDef>,
    /// Secrets the services mount under `/run/secrets`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub secrets: IndexMap<String, FileObjectDef>,
    /// Configuration files the services mount.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub configs: IndexMap<String, FileObjectDef>,
    /// `x-` extension fields, kept for `config` (the loader fills them in).
    #[serde(skip)]
    pub extensions: serde_yaml::Mapping,
}

/// `secrets.NAME` or `configs.NAME`: where its text comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileObjectDef {
    /// Its name in the platform (documentation here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A host file (absolute once loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A variable of the environment compose runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The text itself (configs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Kept by the platform (a swarm's): hull has none.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub external: bool,
}

/// `networks.NAME`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkDef {
    /// Its name in hull (default `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `bridge` (or `default`): the only kind hull makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Made elsewhere: used, never made or removed.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub external: bool,
    /// Its addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// Its labels.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, Option<String>>,
    /// Its containers reach each other and the host only.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub internal: bool,
    /// Accepted: any container can join any network.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub attachable: bool,
}

/// `networks.NAME.ipam`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ipam {
    /// Only the first entry counts: hull's networks have one subnet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamConfig {
    /// `10.5.0.0/24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The host's address on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<std::net::Ipv4Addr>,
}

/// `volumes.NAME`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeDef {
    /// Its name in hull (default `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `local`: the only kind hull has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The local driver's options: `type: none`, `o: bind`, `device: PATH`
    /// make the volume that host directory.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    /// Made elsewhere: used, never made or removed.
    #[serde(
        default,
        deserialize_with = "values::boolean",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub external: bool,
    /// Its labels.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, Option<String>>,
}

impl VolumeDef {
    /// Its driver options as the runtime takes them.
    pub fn driver_options(&self) -> BTreeMap<String, String> {
        self.driver_opts.clone().into_iter().collect()
    }

    /// The host directory its driver options bind it to, if they do; an
    /// error for options hull does not take.
    pub fn bound_directory(&self) -> Result<Option<PathBuf>, String> {
        hull_runtime::bound_directory(&self.driver_options())
    }

    /// Whether its driver options ask for a tmpfs, which hull gives as an
    /// ordinary volume (a tmpfs on one host cannot be shared by VMs).
    pub fn keeps_tmpfs_on_disk(&self) -> bool {
        self.driver_opts.get("type").map(String::as_str) == Some("tmpfs")
    }
}
