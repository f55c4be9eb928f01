//! A project known only by its name (`compose -p NAME down` with no file
//! at hand), made as Compose v2 makes it: from the labels of what the
//! project left on the host, its services from its containers', its
//! networks and volumes from theirs.

use std::collections::BTreeMap;
use std::path::Path;

use hull_runtime::Runtime;

use crate::error::{Error, Result};
use crate::labels;
use crate::model::{ComposeFile, NetworkDef, Service, VolumeDef};
use crate::project::Project;
use crate::project_name;

/// The project `name` as its containers, networks and volumes on `runtime`
/// describe it (its directory `working_dir` unless they record one):
/// empty if nothing of it is there.
pub fn project_from_resources(
    runtime: &Runtime,
    name: &str,
    working_dir: &Path,
) -> Result<Project> {
    let name = project_name::choose(Some(name), None, None, working_dir).map_err(Error::Config)?;
    let name = name.as_str();
    let ours = |labels: &BTreeMap<String, String>| {
        labels.get(labels::PROJECT).map(String::as_str) == Some(name)
    };
    let mut file = ComposeFile::default();
    let mut directory = None;
    // As recorded: only their labels count, and their monitors may be
    // another host's (the hull machine's).
    for container in runtime.list_as_recorded()? {
        let labels = &container.config.labels;
        let Some(service) = labels.get(labels::SERVICE).filter(|_| ours(labels)) else {
            continue;
        };
        directory = directory.or_else(|| labels.get(labels::WORKING_DIR).cloned());
        file.services
            .entry(service.clone())
            .or_insert_with(|| Service {
                image: Some(container.config.image.clone()),
                ..Service::default()
            });
    }
    for network in runtime.list_networks()? {
        if let Some(key) = network
            .labels
            .get(labels::NETWORK)
            .filter(|_| ours(&network.labels))
        {
            let def = NetworkDef {
                name: Some(network.name.clone()),
                ..NetworkDef::default()
            };
            file.networks.insert(key.clone(), def);
        }
    }
    for info in runtime.list_volumes()? {
        let volume = info.volume;
        if let Some(key) = volume
            .labels
            .get(labels::VOLUME)
            .filter(|_| ours(&volume.labels))
        {
            let def = VolumeDef {
                name: Some(volume.name.clone()),
                ..VolumeDef::default()
            };
            file.volumes.insert(key.clone(), def);
        }
    }
    let directory = directory.map_or_else(|| working_dir.to_owned(), Into::into);
    Project::new(
        name.to_owned(),
        directory,
        Vec::new(),
        file,
        Vec::new(),
        BTreeMap::new(),
        Vec::new(),
    )
}
