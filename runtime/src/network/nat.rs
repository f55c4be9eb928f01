//! Outbound NAT for hull's networks, and no way in from outside but the
//! published ports (whose proxy connects from the host itself): one
//! nftables table, `ip hull`,
//! replaced as a whole (atomically, by one `nft -f` transaction) whenever
//! the set of networks changes, so it never holds rules for a network
//! that is gone.

use anyhow::Result;

use super::nft;
use super::store::Network;

const TABLE: &str = "ip hull";

/// The ruleset for `networks`: containers' traffic leaving through any
/// other interface than their bridge is masqueraded as the host's (dropped
/// for an internal network: its containers reach each other and the host
/// only, as Docker's `--internal`), and traffic routed towards a bridge from
/// elsewhere passes only as replies.
fn ruleset(networks: &[Network]) -> String {
    let mut rules = format!("table {TABLE} {{}}\ndelete table {TABLE}\n");
    if networks.is_empty() {
        return rules;
    }
    rules.push_str(&format!(
        "table {TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept\n"
    ));
    for network in networks {
        let bridge = &network.bridge;
        rules.push_str(&format!(
            "\t\toifname \"{bridge}\" iifname != \"{bridge}\" drop\n"
        ));
        if network.internal {
            rules.push_str(&format!(
                "\t\tiifname \"{bridge}\" oifname != \"{bridge}\" drop\n"
            ));
        }
    }
    rules.push_str(
        "\t}\n\
         \tchain postrouting {\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    for network in networks.iter().filter(|network| !network.internal) {
        rules.push_str(&format!(
            "\t\tip saddr {} oifname != \"{}\" masquerade\n",
            network.subnet, network.bridge
        ));
    }
    rules.push_str("\t}\n}\n");
    rules
}

/// Replaces hull's table with the rules for `networks`.
pub fn apply(networks: &[Network]) -> Result<()> {
    nft::apply(&ruleset(networks), "NAT for hull's networks")
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::network::store::Subnet;

    fn network(bridge: &str, third_octet: u8, internal: bool) -> Network {
        Network {
            id: "0".repeat(64),
            name: bridge.into(),
            bridge: bridge.into(),
            subnet: Subnet {
                base: Ipv4Addr::new(10, 89, third_octet, 0),
                prefix_len: 24,
            },
            gateway: Ipv4Addr::new(10, 89, third_octet, 1),
            created: String::new(),
            internal,
            labels: Default::default(),
        }
    }

    #[test]
    fn each_network_is_masqueraded_when_it_leaves_its_bridge() {
        assert_eq!(
            ruleset(&[network("hull0", 0, false)]),
            "table ip hull {}\n\
             delete table ip hull\n\
             table ip hull {\n\
             \tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tct state established,related accept\n\
             \t\toifname \"hull0\" iifname != \"hull0\" drop\n\
             \t}\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr 10.89.0.0/24 oifname != \"hull0\" masquerade\n\
             \t}\n\
             }\n"
        );
        assert_eq!(ruleset(&[]), "table ip hull {}\ndelete table ip hull\n");
    }

    #[test]
    fn an_internal_networks_traffic_stays_on_its_bridge() {
        let rules = ruleset(&[network("hull0", 0, false), network("hull-in", 1, true)]);
        assert!(
            rules.contains("\t\tiifname \"hull-in\" oifname != \"hull-in\" drop\n"),
            "{rules}"
        );
        assert!(!rules.contains("10.89.1.0/24"), "{rules}");
        assert!(!rules.contains("iifname \"hull0\" oifname"), "{rules}");
    }
}
