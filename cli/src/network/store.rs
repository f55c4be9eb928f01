//! Networks and their address leases, under `<root>/networks/<name>/`:
//!
//! ```text
//! network.json   the network's definition (written once)
//! leases.json    address -> its holder, rewritten under leases.lock
//! ```
//!
//! The default network, `bridge` (host bridge `hull0`), is defined on first
//! use.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::{lock_file, write_atomically};
use crate::state::StateRoot;

/// The network containers join unless told otherwise.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Its host bridge.
const DEFAULT_BRIDGE: &str = "hull0";
/// Its subnet: private, and apart from Docker's and Podman's defaults.
const DEFAULT_SUBNET: Subnet = Subnet {
    base: Ipv4Addr::new(10, 89, 0, 0),
    prefix_len: 16,
};

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix_len: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }

    /// The `index`th address of the subnet, if it is a host address.
    pub fn host(&self, index: u32) -> Option<Ipv4Addr> {
        let base = u32::from(self.base) & self.mask();
        let broadcast = base | !self.mask();
        let address = base.checked_add(index)?;
        (index > 0 && address < broadcast).then_some(Ipv4Addr::from(address))
    }

    /// Whether `address` is a host address of the subnet (neither its
    /// network nor its broadcast address).
    pub fn has_host(&self, address: Ipv4Addr) -> bool {
        let offset = u32::from(address).wrapping_sub(u32::from(self.base) & self.mask());
        self.host(offset) == Some(address)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix_len)
    }
}

/// A network containers can join: a host bridge with the gateway address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits, as Docker's network IDs.
    pub id: String,
    pub name: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// RFC 3339.
    pub created: String,
}

/// Who holds an address: a container, and while it is being created or
/// runs in the foreground, the `hull` process doing so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    pub container: String,
    pub pid: Option<u32>,
}

/// Where networks are defined.
pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub fn open(root: &StateRoot) -> NetworkStore {
        NetworkStore {
            dir: root.path().join("networks"),
        }
    }

    fn network_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The network `name`; the default network is defined on first use.
    pub fn get(&self, name: &str) -> Result<Network> {
        if name == "host" {
            bail!("--network host is not supported: a container's network is its own VM's");
        }
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            bail!("{name:?} is not a network name (letters, digits, '-', '_', '.')");
        }
        let path = self.network_dir(name).join("network.json");
        match fs::read(&path) {
            Ok(json) => serde_json::from_slice(&json)
                .with_context(|| format!("network {name}: {} is corrupt", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == DEFAULT_NETWORK => {
                let network = Network {
                    id: crate::state::new_id(),
                    name: DEFAULT_NETWORK.into(),
                    bridge: DEFAULT_BRIDGE.into(),
                    subnet: DEFAULT_SUBNET,
                    gateway: DEFAULT_SUBNET
                        .host(1)
                        .expect("the default subnet has hosts"),
                    created: crate::container::now(),
                };
                let json = serde_json::to_vec_pretty(&network)?;
                write_atomically(&path, &json)?;
                Ok(network)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no such network: {name}; see `hull network ls`")
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Every defined network.
    pub fn list(&self) -> Result<Vec<Network>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.dir.display())),
        };
        let mut networks = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(name) = name.to_str() {
                networks.push(self.get(name)?);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// Leases an address of `network` to `holder`: `requested` (`--ip`)
    /// if given and free, else the lowest free one. Leases whose holder is
    /// no longer `alive` are reclaimed first.
    pub fn lease(
        &self,
        network: &Network,
        holder: LeaseHolder,
        requested: Option<Ipv4Addr>,
        alive: impl Fn(&LeaseHolder) -> bool,
    ) -> Result<Ipv4Addr> {
        let dir = self.network_dir(&network.name);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let _lock = lock_file(&dir.join("leases.lock"))?;
        let mut leases = read_leases(&dir)?;
        leases.retain(|_, owner| alive(owner));
        let taken =
            |address: &Ipv4Addr| *address == network.gateway || leases.contains_key(address);
        let address = match requested {
            Some(address) => {
                if !network.subnet.has_host(address) {
                    bail!(
                        "--ip {address} is not a host address of network {}'s subnet {}",
                        network.name,
                        network.subnet
                    );
                }
                if taken(&address) {
                    bail!(
                        "--ip {address} is already in use on network {}",
                        network.name
                    );
                }
                address
            }
            None => (2..)
                .map_while(|index| network.subnet.host(index))
                .find(|address| !taken(address))
                .with_context(|| {
                    format!(
                        "network {} has no free address left in {}",
                        network.name, network.subnet
                    )
                })?,
        };
        leases.insert(address, holder);
        write_leases(&dir, &leases)?;
        Ok(address)
    }

    /// Gives back container `container`'s lease of `address`.
    pub fn release(&self, network: &str, address: Ipv4Addr, container: &str) -> Result<()> {
        let dir = self.network_dir(network);
        if !dir.exists() {
            return Ok(());
        }
        let _lock = lock_file(&dir.join("leases.lock"))?;
        let mut leases = read_leases(&dir)?;
        if leases.get(&address).map(|holder| holder.container.as_str()) == Some(container) {
            leases.remove(&address);
            write_leases(&dir, &leases)?;
        }
        Ok(())
    }
}

fn read_leases(dir: &Path) -> Result<BTreeMap<Ipv4Addr, LeaseHolder>> {
    let path = dir.join("leases.json");
    match fs::read(&path) {
        Ok(json) => {
            serde_json::from_slice(&json).with_context(|| format!("{} is corrupt", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_leases(dir: &Path, leases: &BTreeMap<Ipv4Addr, LeaseHolder>) -> Result<()> {
    write_atomically(
        &dir.join("leases.json"),
        &serde_json::to_vec_pretty(leases)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(container: &str) -> LeaseHolder {
        LeaseHolder {
            container: container.into(),
            pid: None,
        }
    }

    fn store() -> (tempfile::TempDir, NetworkStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = NetworkStore::open(&StateRoot::new(dir.path().to_owned()));
        (dir, store)
    }

    #[test]
    fn subnets_name_their_host_addresses() {
        let subnet = Subnet {
            base: Ipv4Addr::new(10, 1, 2, 0),
            prefix_len: 30,
        };
        assert_eq!(subnet.host(0), None);
        assert_eq!(subnet.host(1), Some(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(subnet.host(2), Some(Ipv4Addr::new(10, 1, 2, 2)));
        assert_eq!(subnet.host(3), None, "the broadcast address");
        assert!(subnet.has_host(Ipv4Addr::new(10, 1, 2, 2)));
        for outside in [[10, 1, 2, 0], [10, 1, 2, 3], [10, 1, 2, 4], [10, 1, 1, 255]] {
            assert!(!subnet.has_host(outside.into()), "{outside:?}");
        }
        assert_eq!(DEFAULT_SUBNET.to_string(), "10.89.0.0/16");
    }

    #[test]
    fn the_default_network_is_defined_once_and_others_must_exist() {
        let (_dir, store) = store();
        let network = store.get(DEFAULT_NETWORK).unwrap();
        assert_eq!(network.bridge, "hull0");
        assert_eq!(network.gateway, Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(store.get(DEFAULT_NETWORK).unwrap(), network);
        assert_eq!(store.list().unwrap(), vec![network]);
        let err = store.get("backend").unwrap_err().to_string();
        assert_eq!(err, "no such network: backend; see `hull network ls`");
        for bad in ["", "..", "../containers", "a/b"] {
            let err = store.get(bad).unwrap_err().to_string();
            assert!(err.contains("is not a network name"), "{bad:?}: {err}");
        }
        assert!(store.get("host").is_err());
    }

    #[test]
    fn leases_take_the_lowest_free_address_and_reclaim_dead_ones() {
        let (_dir, store) = store();
        let network = store.get(DEFAULT_NETWORK).unwrap();
        let all_alive = |_: &LeaseHolder| true;
        let a = store.lease(&network, holder("a"), None, all_alive).unwrap();
        let b = store.lease(&network, holder("b"), None, all_alive).unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3))
        );
        store.release(DEFAULT_NETWORK, a, "someone else").unwrap();
        assert_eq!(
            store.lease(&network, holder("c"), None, all_alive).unwrap(),
            Ipv4Addr::new(10, 89, 0, 4)
        );
        store.release(DEFAULT_NETWORK, a, "a").unwrap();
        assert_eq!(
            store.lease(&network, holder("d"), None, all_alive).unwrap(),
            a
        );
        let only_d = |owner: &LeaseHolder| owner.container == "d";
        assert_eq!(store.lease(&network, holder("e"), None, only_d).unwrap(), b);
    }

    #[test]
    fn requested_addresses_must_be_free_hosts_of_the_subnet() {
        let (_dir, store) = store();
        let network = store.get(DEFAULT_NETWORK).unwrap();
        let wanted = Ipv4Addr::new(10, 89, 3, 7);
        let alive = |_: &LeaseHolder| true;
        assert_eq!(
            store
                .lease(&network, holder("a"), Some(wanted), alive)
                .unwrap(),
            wanted
        );
        let err = store
            .lease(&network, holder("b"), Some(wanted), alive)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--ip 10.89.3.7 is already in use on network bridge"
        );
        for bad in [[10, 90, 0, 2], [10, 89, 0, 1], [10, 89, 0, 0]] {
            assert!(
                store
                    .lease(&network, holder("b"), Some(bad.into()), alive)
                    .is_err(),
                "{bad:?}"
            );
        }
    }
}
