//! Networks: made, listed, inspected, removed and pruned; stopped
//! containers connected to and disconnected from them.

use std::net::Ipv4Addr;

use crate::container::{self, Container, Records, Status};
use crate::error::{Error, Hint, Result};
use crate::events::{self, EventType};
use crate::network::DEFAULT_NETWORK;
use crate::network::{self, Endpoint, NetworkStore};
use crate::network::{Network, NewNetwork};
use crate::Runtime;

/// A network and the containers on it.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    /// The network.
    pub network: Network,
    /// The containers recorded on it.
    pub members: Vec<NetworkMember>,
}

/// A container on a network.
#[derive(Debug, Clone)]
pub struct NetworkMember {
    /// The container's ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its place there.
    pub endpoint: Endpoint,
    /// Whether it runs (and so is on the network now, as Docker counts
    /// endpoints).
    pub running: bool,
}

impl Runtime {
    /// Defines the network `name`: its own bridge and subnet (`new`'s, or
    /// the first free /24 of 10.90.0.0/16) with the host at its gateway (or
    /// the subnet's first address), internal or not, labelled.
    pub fn create_network(&self, name: &str, new: &NewNetwork) -> Result<Network> {
        let store = self.networks()?;
        let network = store.create(name, new)?;
        self.network_event(&network, "create", &[]);
        Ok(network)
    }

    /// Every network, the default one included.
    pub fn list_networks(&self) -> Result<Vec<Network>> {
        Ok(self.networks()?.list()?)
    }

    /// The network `name` and the containers on it.
    pub fn inspect_network(&self, name: &str) -> Result<NetworkInfo> {
        let network = self.networks()?.get(name)?;
        let mut members = Vec::new();
        for container in container::list(&self.root)? {
            let Some(endpoint) = container.config.boot.network.on(&network.name).cloned() else {
                continue;
            };
            // One removed meanwhile is on no network.
            let running = container
                .state()
                .is_ok_and(|state| state.status == Status::Running);
            let config = container.config;
            members.push(NetworkMember {
                endpoint,
                id: config.id,
                name: config.name,
                running,
            });
        }
        Ok(NetworkInfo { network, members })
    }

    /// Removes the network `name` and its bridge: refused for the default
    /// network and while containers are on it.
    pub fn remove_network(&self, name: &str) -> Result<()> {
        let network = self.networks()?.get(name)?;
        network::remove(&self.root, &Records::new(&self.root), name)?;
        self.network_event(&network, "destroy", &[]);
        Ok(())
    }

    /// Removes every network no container is on that `selected` picks
    /// (the caller's `--filter`s) but the default, whose host side (bridge
    /// and rules) goes while no container uses it; returns the removed
    /// networks' names.
    pub fn prune_networks(&self, selected: &dyn Fn(&Network) -> bool) -> Result<Vec<String>> {
        let before = self.networks()?.list()?;
        let pruned = network::prune(&self.root, &Records::new(&self.root), selected)?;
        for network in before.iter().filter(|n| pruned.contains(&n.name)) {
            self.network_event(network, "destroy", &[]);
        }
        Ok(pruned)
    }

    /// Puts the stopped container `container` on network `network` too
    /// (its first network if it is on none), at `ip` if given, with
    /// `aliases` for its name server.
    pub fn connect(
        &self,
        network: &str,
        container: &str,
        ip: Option<Ipv4Addr>,
        aliases: Vec<String>,
    ) -> Result<()> {
        self.networks()?;
        let mut container = container::find(&self.root, container)?;
        let current = container.config.boot.network.clone();
        let container_name = container.config.name.clone();
        if current.on(network).is_some() {
            return Err(Error::invalid(format!(
                "container {container_name} is already on network {network}"
            )));
        }
        refuse_while_running(&container, "connect")?;
        let id = container.id().to_owned();
        let records = Records::new(&self.root);
        let endpoint = network::join(
            &self.root,
            &records,
            (&id, &container_name),
            network,
            ip,
            aliases,
        )?;
        let mut connected = current;
        connected.endpoints.push(endpoint.clone());
        if let Err(err) = container.set_network(&self.root, connected) {
            let _ = network::release_endpoint(&self.root, &id, &endpoint);
            return Err(err.into());
        }
        let joined = self.networks()?.get(network)?;
        self.network_event(&joined, "connect", &[("container", &id)]);
        Ok(())
    }

    /// Takes the stopped `container` off network `network`; off its last
    /// one, its published ports go too.
    pub fn disconnect(&self, network: &str, container: &str) -> Result<()> {
        self.networks()?;
        let mut container = container::find(&self.root, container)?;
        let mut current = container.config.boot.network.clone();
        let Some(endpoint) = current.on(network).cloned() else {
            return Err(Error::invalid(format!(
                "container {} is not on network {network}",
                container.config.name
            )));
        };
        refuse_while_running(&container, "disconnect")?;
        current.endpoints.retain(|e| e.network != network);
        if current.endpoints.is_empty() {
            current.ports.clear();
        }
        container.set_network(&self.root, current)?;
        network::release_endpoint(&self.root, container.id(), &endpoint)?;
        let left = self.networks()?.get(network)?;
        self.network_event(&left, "disconnect", &[("container", container.id())]);
        Ok(())
    }

    /// Logs `action` of `network`, with Docker's attributes (its name and
    /// type) and `extra`.
    fn network_event(&self, network: &Network, action: &str, extra: &[(&str, &str)]) {
        let mut attributes = vec![("name", network.name.as_str()), ("type", "bridge")];
        attributes.extend_from_slice(extra);
        events::object_event(
            self.root.path(),
            EventType::Network,
            action,
            &network.id,
            &attributes,
        );
    }

    /// The network store, with the default network defined (it is listed
    /// even before any container has used it).
    fn networks(&self) -> Result<NetworkStore> {
        let store = NetworkStore::open(&self.root);
        store.get(DEFAULT_NETWORK)?;
        Ok(store)
    }
}

/// Fails while a monitor holds `container`'s VM: its network device is
/// fixed while it runs.
fn refuse_while_running(container: &Container, what: &str) -> Result<()> {
    if container.state()?.monitor_pid().is_some() {
        return Err(Error::Running {
            name: container.config.name.clone(),
            hint: Hint::new(format!(
                "hull cannot {what} a running VM's network; `hull stop {}` first",
                container.config.name
            )),
        });
    }
    Ok(())
}
