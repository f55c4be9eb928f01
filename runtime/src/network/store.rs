//! Networks and their address leases, under `<root>/networks/<name>/`:
//!
//! ```text
//! network.json   the network's definition (written once)
//! leases.json    address -> its holder, rewritten under leases.lock
//! ```
//!
//! `<root>/networks/.host.lock` is held while the host side changes:
//! bridges and taps made or removed, nft rules rewritten.
//!
//! The default network, `bridge` (host bridge `hull0`), is defined on first
//! use.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fsutil::{lock_file, write_atomically};
use crate::root::{new_id, StateRoot};
use crate::timestamp::now;

/// The network containers join unless told otherwise.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Its host bridge.
const DEFAULT_BRIDGE: &str = "hull0";
/// Its subnet: private, and apart from Docker's and Podman's defaults.
const DEFAULT_SUBNET: Subnet = Subnet {
    base: Ipv4Addr::new(10, 89, 0, 0),
    prefix_len: 16,
};
/// Where `hull network create` picks a subnet when given none: the first
/// free /24 of 10.90.0.0/16.
const USER_SUBNETS: Subnet = Subnet {
    base: Ipv4Addr::new(10, 90, 0, 0),
    prefix_len: 16,
};
/// Names a network cannot take.
const RESERVED_NAMES: [&str; 3] = [DEFAULT_NETWORK, "none", "host"];

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// The network address.
    pub base: Ipv4Addr,
    /// Bits of the network part.
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

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let shorter = if self.prefix_len < other.prefix_len {
            self
        } else {
            other
        };
        u32::from(self.base) & shorter.mask() == u32::from(other.base) & shorter.mask()
    }

    /// Whether `address` is a host address of the subnet (neither its
    /// network nor its broadcast address).
    pub fn has_host(&self, address: Ipv4Addr) -> bool {
        let offset = u32::from(address).wrapping_sub(u32::from(self.base) & self.mask());
        self.host(offset) == Some(address)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;

    /// `10.90.3.0/24`: an IPv4 network address and a prefix of 8 to 30 bits.
    fn from_str(value: &str) -> Result<Subnet, String> {
        let bad = || format!("{value:?} is not an IPv4 subnet like 10.90.3.0/24");
        let (base, prefix_len) = value.split_once('/').ok_or_else(bad)?;
        let subnet = Subnet {
            base: base.parse().map_err(|_| bad())?,
            prefix_len: prefix_len.parse().map_err(|_| bad())?,
        };
        if !(8..=30).contains(&subnet.prefix_len) {
            return Err(format!("{value}: the prefix must be 8 to 30 bits"));
        }
        let network = Ipv4Addr::from(u32::from(subnet.base) & subnet.mask());
        if network != subnet.base {
            return Err(format!(
                "{value} is not a network address: did you mean {network}/{}?",
                subnet.prefix_len
            ));
        }
        Ok(subnet)
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
    /// Its unique name.
    pub name: String,
    /// The host bridge's interface name.
    pub bridge: String,
    /// Its IPv4 subnet.
    pub subnet: Subnet,
    /// The host's address on it.
    pub gateway: Ipv4Addr,
    /// RFC 3339.
    pub created: String,
    /// Its containers reach each other and the host, nothing beyond
    /// (`--internal`).
    #[serde(default)]
    pub internal: bool,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What a new network is to be (`hull network create`'s flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewNetwork {
    /// Its subnet (default: the first free /24 of 10.90.0.0/16).
    pub subnet: Option<Subnet>,
    /// The host's address on it (default: the subnet's first).
    pub gateway: Option<Ipv4Addr>,
    /// No way out but to the host and the network's own containers.
    pub internal: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Who holds an address: a container, and while it is being created, the
/// process creating it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseHolder {
    pub container: String,
    pub pid: Option<u32>,
    /// The names the network's name server answers with the address: the
    /// container's name, its aliases and its short ID.
    #[serde(default)]
    pub names: Vec<String>,
}

/// Where networks are defined.
#[derive(Clone)]
pub(crate) struct NetworkStore {
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
        usable_name(name)?;
        let path = self.network_dir(name).join("network.json");
        match fs::read(&path) {
            Ok(json) => serde_json::from_slice(&json)
                .with_context(|| format!("network {name}: {} is corrupt", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == DEFAULT_NETWORK => {
                let network = Network {
                    id: new_id(),
                    name: DEFAULT_NETWORK.into(),
                    bridge: DEFAULT_BRIDGE.into(),
                    subnet: DEFAULT_SUBNET,
                    gateway: DEFAULT_SUBNET
                        .host(1)
                        .expect("the default subnet has hosts"),
                    created: now(),
                    internal: false,
                    labels: BTreeMap::new(),
                };
                let json = serde_json::to_vec_pretty(&network)?;
                write_atomically(&path, &json)?;
                Ok(network)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NoSuchNetwork(name.to_owned()).into())
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
            let entry = entry?;
            // A network being created has no definition yet.
            if !entry.path().join("network.json").is_file() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                networks.push(self.get(name)?);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// Defines the network `name` as `new` says.
    pub fn create(&self, name: &str, new: &NewNetwork) -> Result<Network> {
        let NewNetwork {
            subnet, gateway, ..
        } = *new;
        check_name(name)?;
        if RESERVED_NAMES.contains(&name) {
            bail!("network {name} is hull's own; choose another name");
        }
        // The default network's subnet counts even before its first use.
        self.get(DEFAULT_NETWORK)?;
        let _lock = lock_file(&self.dir.join(".create.lock"))?;
        let existing = self.list()?;
        if existing.iter().any(|network| network.name == name) {
            return Err(Error::NameInUse {
                name: name.to_owned(),
                message: format!("network {name} already exists"),
            }
            .into());
        }
        let subnet = match subnet {
            Some(subnet) => {
                if let Some(other) = existing.iter().find(|n| n.subnet.overlaps(&subnet)) {
                    bail!(
                        "--subnet {subnet} overlaps network {}'s {}",
                        other.name,
                        other.subnet
                    );
                }
                subnet
            }
            None => (0..=255u32)
                .map(|third| Subnet {
                    base: Ipv4Addr::from(u32::from(USER_SUBNETS.base) | third << 8),
                    prefix_len: 24,
                })
                .find(|candidate| !existing.iter().any(|n| n.subnet.overlaps(candidate)))
                .context("every /24 of 10.90.0.0/16 is taken; give a --subnet")?,
        };
        let gateway = match gateway {
            Some(gateway) if subnet.has_host(gateway) => gateway,
            Some(gateway) => bail!("--gateway {gateway} is not a host address of {subnet}"),
            None => subnet.host(1).context("the subnet has no host addresses")?,
        };
        let id = new_id();
        let network = Network {
            bridge: format!("hull-{}", &id[..10]),
            id,
            name: name.to_owned(),
            subnet,
            gateway,
            created: now(),
            internal: new.internal,
            labels: new.labels.clone(),
        };
        let path = self.network_dir(name).join("network.json");
        write_atomically(&path, &serde_json::to_vec_pretty(&network)?)?;
        Ok(network)
    }

    /// Serializes changes to the host side of every network (bridges,
    /// taps, nft rules) among hull processes, while the result is held: the
    /// rules are rebuilt from the bridges that exist, so two changes at once
    /// could drop each other's.
    pub fn lock_host_side(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        lock_file(&self.dir.join(".host.lock"))
    }

    /// Forgets the network `name` and its leases.
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = self.network_dir(name);
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
    }

    /// Whether any address of network `name` is leased to a holder that is
    /// still `alive`.
    pub fn in_use(&self, name: &str, alive: impl Fn(&LeaseHolder) -> bool) -> Result<bool> {
        let dir = self.network_dir(name);
        if !dir.exists() {
            return Ok(false);
        }
        let _lock = lock_file(&dir.join("leases.lock"))?;
        Ok(read_leases(&dir)?.values().any(alive))
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

    /// The leases of network `name`.
    pub fn leases(&self, name: &str) -> Result<BTreeMap<Ipv4Addr, LeaseHolder>> {
        let dir = self.network_dir(name);
        if !dir.exists() {
            return Ok(BTreeMap::new());
        }
        let _lock = lock_file(&dir.join("leases.lock"))?;
        read_leases(&dir)
    }

    /// Gives container `container`'s lease of `address` the names `names`.
    pub fn rename(
        &self,
        network: &str,
        address: Ipv4Addr,
        container: &str,
        names: Vec<String>,
    ) -> Result<()> {
        let dir = self.network_dir(network);
        let _lock = lock_file(&dir.join("leases.lock"))?;
        let mut leases = read_leases(&dir)?;
        if let Some(holder) = leases
            .get_mut(&address)
            .filter(|h| h.container == container)
        {
            holder.names = names;
            write_leases(&dir, &leases)?;
        }
        Ok(())
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

/// Fails for a name no network can have, and for `host`.
pub(crate) fn usable_name(name: &str) -> Result<()> {
    if name == "host" {
        return Err(Error::invalid(
            "--network host is not supported: a container's network is its own VM's",
        )
        .into());
    }
    check_name(name)
}

fn check_name(name: &str) -> Result<()> {
    parse_network_name(name)
        .map(drop)
        .map_err(|reason| Error::invalid(reason).into())
}

/// Checks a network name: letters, digits, '-', '_' and '.', not starting
/// with '.'.
pub fn parse_network_name(name: &str) -> Result<String, String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !plain {
        return Err(format!(
            "{name:?} is not a network name (letters, digits, '-', '_', '.')"
        ));
    }
    // Its directory's name.
    if name.len() > MAX_NETWORK_NAME_LEN {
        return Err(format!(
            "a network name of {} characters is too long: at most {MAX_NETWORK_NAME_LEN}",
            name.len()
        ));
    }
    Ok(name.to_owned())
}

/// The longest network name: a file name.
const MAX_NETWORK_NAME_LEN: usize = 255;

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
            names: Vec::new(),
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
        let err = store.get(&"n".repeat(100_000)).unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
        assert!(store.get("host").is_err());
    }

    #[test]
    fn subnets_parse_as_network_addresses_with_a_prefix() {
        let subnet: Subnet = "10.90.3.0/24".parse().unwrap();
        assert_eq!(subnet.to_string(), "10.90.3.0/24");
        assert_eq!(
            "10.90.3.1/24".parse::<Subnet>().unwrap_err(),
            "10.90.3.1/24 is not a network address: did you mean 10.90.3.0/24?"
        );
        for bad in [
            "10.90.3.0",
            "10.90.3.0/31",
            "10.90.3.0/7",
            "x/24",
            "10.90.3.0/x",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad:?}");
        }
        let wide: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(wide.overlaps(&subnet) && subnet.overlaps(&wide));
        assert!(!subnet.overlaps(&"10.90.4.0/24".parse().unwrap()));
    }

    #[test]
    fn created_networks_get_free_subnets_their_own_bridge_and_unique_names() {
        let (_dir, store) = store();
        let a = store.create("front", &NewNetwork::default()).unwrap();
        let b = store.create("back", &NewNetwork::default()).unwrap();
        assert_eq!(a.subnet.to_string(), "10.90.0.0/24");
        assert_eq!(a.gateway, Ipv4Addr::new(10, 90, 0, 1));
        assert_eq!(b.subnet.to_string(), "10.90.1.0/24");
        assert!(a.bridge.starts_with("hull-") && a.bridge.len() == 15 && a.bridge != b.bridge);
        let names: Vec<String> = store.list().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["back", "bridge", "front"]);
        let err = store
            .create("front", &NewNetwork::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "network front already exists");
        let err = store
            .create("none", &NewNetwork::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "network none is hull's own; choose another name");
        let overlapping = NewNetwork {
            subnet: Some("10.89.5.0/24".parse().unwrap()),
            ..NewNetwork::default()
        };
        let err = store.create("x", &overlapping).unwrap_err().to_string();
        assert_eq!(
            err,
            "--subnet 10.89.5.0/24 overlaps network bridge's 10.89.0.0/16"
        );
        let gateway = Ipv4Addr::new(192, 168, 7, 254);
        let own = NewNetwork {
            subnet: Some("192.168.7.0/24".parse().unwrap()),
            gateway: Some(gateway),
            ..NewNetwork::default()
        };
        assert_eq!(store.create("c", &own).unwrap().gateway, gateway);
        store.remove("front").unwrap();
        assert_eq!(
            store.create("d", &NewNetwork::default()).unwrap().subnet,
            a.subnet
        );
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
