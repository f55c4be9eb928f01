//! Docker's legacy links (`--link NAME[:ALIAS]`, compose's `links` and
//! `external_links`): the linked container answers to its alias and its
//! name in the new container's `/etc/hosts`, at its address on a network
//! the two share, as Docker writes a link into `/etc/hosts`.

use crate::container;
use crate::error::{Error, Result};
use crate::network::{HostAddress, HostEntry, NetworkOptions};
use crate::root::StateRoot;

/// A link to container `container` under `alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The linked container's name or ID.
    pub container: String,
    /// The name the linking container knows it by.
    pub alias: String,
}

impl Link {
    /// Parses `NAME[:ALIAS]` (no alias: the name).
    pub fn parse(value: &str) -> std::result::Result<Link, String> {
        let (container, alias) = value.split_once(':').unwrap_or((value, value));
        crate::network::parse_host_name(alias)
            .map_err(|reason| format!("--link {value}: the alias {reason}"))?;
        match container.is_empty() {
            true => Err(format!("--link {value}: expected NAME[:ALIAS]")),
            false => Ok(Link {
                container: container.to_owned(),
                alias: alias.to_owned(),
            }),
        }
    }
}

/// The `/etc/hosts` entries of `links` for a container on the networks of
/// `network`: each linked container's alias and name at its address on
/// the first of those networks it is on too.
pub(crate) fn host_entries(
    root: &StateRoot,
    links: &[Link],
    network: &NetworkOptions,
) -> Result<Vec<HostEntry>> {
    let networks = network.networks();
    let mut entries = Vec::new();
    for link in links {
        // Docker's run fails with its own code (125) for a missing one.
        let linked = container::find(root, &link.container)
            .map_err(|err| Error::invalid(format!("cannot link to {}: {err:#}", link.container)))?;
        let endpoints = &linked.config.boot.network.endpoints;
        let shared = networks
            .iter()
            .find_map(|name| endpoints.iter().find(|e| &e.network == name))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "cannot link to {}: it is on none of this container's networks ({})",
                    link.container,
                    networks.join(", ")
                ))
            })?;
        let address = HostAddress::Ip(shared.address.into());
        let mut names = vec![link.alias.clone()];
        if linked.config.name != link.alias {
            names.push(linked.config.name.clone());
        }
        entries.extend(names.into_iter().map(|name| HostEntry { name, address }));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_a_container_and_an_alias() {
        let link = Link::parse("db:database").unwrap();
        assert_eq!(
            (link.container.as_str(), link.alias.as_str()),
            ("db", "database")
        );
        assert_eq!(Link::parse("redis").unwrap().alias, "redis");
        assert!(Link::parse(":x").is_err());
        assert!(Link::parse("db:bad alias").is_err());
    }
}
