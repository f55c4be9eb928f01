//! Volumes: made, listed, inspected, removed and pruned, as Docker's
//! `volume` commands do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::container::{self, MountSource};
use crate::error::{Error, Result};
use crate::volume::{Volume, VolumeStore};
use crate::Runtime;

/// A volume and who uses it.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    /// The volume.
    pub volume: Volume,
    /// The names of the containers that mount it, in any state.
    pub users: Vec<String>,
}

/// What `prune_volumes` removed.
#[derive(Debug, Clone, Default)]
pub struct PrunedVolumes {
    /// Their names.
    pub names: Vec<String>,
    /// Bytes of their files, as Docker counts them.
    pub bytes: u64,
}

/// What a new volume is made with.
#[derive(Debug, Clone, Default)]
pub struct CreateVolumeOptions {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Docker's local driver options (`-o type=none -o o=bind -o
    /// device=/PATH` binds a host directory; nothing else is taken).
    pub driver_options: BTreeMap<String, String>,
}

impl Runtime {
    /// Makes the volume `name` (a fresh anonymous one without a name), or
    /// returns the one of that name that exists, as Docker does.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        options: CreateVolumeOptions,
    ) -> Result<Volume> {
        let store = VolumeStore::open(&self.root);
        Ok(store
            .get_or_create(name, options.labels, options.driver_options)?
            .0)
    }

    /// Every volume with the containers that use it, by name.
    pub fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        let users = self.volume_users()?;
        let volumes = VolumeStore::open(&self.root).list()?;
        Ok(volumes
            .into_iter()
            .map(|volume| VolumeInfo {
                users: users.get(&volume.name).cloned().unwrap_or_default(),
                volume,
            })
            .collect())
    }

    /// The volume `name` and the containers that use it.
    pub fn inspect_volume(&self, name: &str) -> Result<VolumeInfo> {
        let volume = VolumeStore::open(&self.root).get(name)?;
        let users = self.volume_users()?.remove(name).unwrap_or_default();
        Ok(VolumeInfo { volume, users })
    }

    /// Where the files of the volume `name` are on the host (or would be).
    pub fn volume_mountpoint(&self, name: &str) -> PathBuf {
        VolumeStore::open(&self.root).mountpoint(name)
    }

    /// Bytes of the volume `name`'s files, as Docker counts them.
    pub fn volume_size(&self, name: &str) -> Result<u64> {
        let store = VolumeStore::open(&self.root);
        Ok(store.size(&store.get(name)?))
    }

    /// Removes the volume `name` and the files hull keeps for it (a bound
    /// volume's directory stays); refused while a container
    /// uses it. With `force`, one that is not there is no error.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let store = VolumeStore::open(&self.root);
        if let Err(err) = store.get(name) {
            return match (force, Error::from(err)) {
                (true, Error::NoSuchVolume(_)) => Ok(()),
                (_, err) => Err(err),
            };
        }
        if let Some(users) = self.volume_users()?.get(name) {
            return Err(Error::InUse(format!(
                "volume {name} is in use by {}: remove {} first",
                users.join(", "),
                match users.len() {
                    1 => "it",
                    _ => "them",
                }
            )));
        }
        Ok(store.remove(name)?)
    }

    /// Removes the anonymous volumes no container uses (with `all`, every
    /// volume no container uses), as Docker 23+ does.
    pub fn prune_volumes(&self, all: bool) -> Result<PrunedVolumes> {
        let store = VolumeStore::open(&self.root);
        let users = self.volume_users()?;
        let mut pruned = PrunedVolumes::default();
        for volume in store.list()? {
            if users.contains_key(&volume.name) || !(all || volume.anonymous) {
                continue;
            }
            pruned.bytes += store.size(&volume);
            store.remove(&volume.name)?;
            pruned.names.push(volume.name);
        }
        Ok(pruned)
    }

    /// For each volume a container mounts, the names of those containers.
    fn volume_users(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for container in container::list(&self.root)? {
            for mount in &container.config.boot.mounts {
                if let MountSource::Volume { name, .. } = &mount.source {
                    users
                        .entry(name.clone())
                        .or_default()
                        .push(container.config.name.clone());
                }
            }
        }
        Ok(users)
    }
}
