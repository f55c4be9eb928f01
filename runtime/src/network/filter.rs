//! Anti-spoofing: what a container's VM may send into its network.
//!
//! The guest owns its kernel, so it can put any address on what it sends.
//! Each tap gets a chain in the nftables table `bridge hull` that passes
//! only frames from the container's own MAC address carrying IPv4 from its
//! own address, or ARP naming its own MAC and address as the sender.
//! Everything else (another's MAC or IP, forged ARP, IPv6 and with it
//! router advertisements, VLAN tags, other protocols) is dropped where the
//! frame enters the bridge: before the bridge learns its source MAC, and
//! before it reaches a neighbour or the host. hull gives containers no
//! IPv6, and no DHCP (the agent sets the address), so nothing else is
//! needed.
//!
//! The base chain hands each tap's frames to its chain through a verdict
//! map and drops those of any other hull tap, so a tap without rules sends
//! nothing. A tap's rules are added right after the tap is, before its VM
//! starts, and removed when the VM has ended ([`TapFilter`]); those of taps
//! that went away without that (their holder killed) are swept at the next
//! change and by `rm`, and the table goes with the last tap's rules. The
//! table is the host's, shared by every state root, so its changes take a
//! host-wide lock ([`TABLE_LOCK`]) besides the root's.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::Result;
use hull_netlink::Netlink;
use nix::fcntl::Flock;

use super::nft;
use super::store::NetworkStore;
use super::tap;
use super::MacAddress;
use crate::fsutil::lock_file;

const FAMILY: &str = "bridge";
const TABLE: &str = "hull";
/// What the errors say is being set up.
const WHAT: &str = "anti-spoofing rules for containers";
/// Serialises changes to the table among all hull processes of the host,
/// whatever their state root: one root's sweep must not delete the table
/// while another's tap is being given its rules (that tap would then send
/// unfiltered).
const TABLE_LOCK: &str = "/run/hull-bridge-filter.lock";

/// The rules of one tap; dropping it removes them.
pub struct TapFilter {
    tap: String,
    store: NetworkStore,
}

impl TapFilter {
    /// Lets `tap` send only as `mac` with `address` from now on (and
    /// sweeps the rules of taps that are gone). The caller holds `store`'s
    /// host-side lock.
    pub fn install(
        store: &NetworkStore,
        tap: &str,
        mac: MacAddress,
        address: Ipv4Addr,
    ) -> Result<TapFilter> {
        let _table = lock_table()?;
        let listing = nft::list_table(FAMILY, TABLE)?.unwrap_or_default();
        let gone: Vec<String> = filtered_taps(&listing)
            .into_iter()
            .filter(|other| other != tap && Netlink::link_index(other).is_none())
            .collect();
        nft::apply(&install_script(tap, mac, address, &gone), WHAT)?;
        Ok(TapFilter {
            tap: tap.to_owned(),
            store: store.clone(),
        })
    }
}

impl Drop for TapFilter {
    fn drop(&mut self) {
        let removed = self
            .store
            .lock_host_side()
            .and_then(|_host_side| sweep(Some(&self.tap)));
        if let Err(err) = removed {
            tracing::warn!("cannot remove the rules of tap {}: {err:#}", self.tap);
        }
    }
}

/// Removes the rules of `removing` (if given) and of every tap that no
/// longer exists; the table too once no tap has rules. The caller holds
/// the host-side lock.
pub fn sweep(removing: Option<&str>) -> Result<()> {
    let _table = lock_table()?;
    let Some(listing) = nft::list_table(FAMILY, TABLE)? else {
        return Ok(());
    };
    let (gone, kept): (Vec<String>, Vec<String>) = filtered_taps(&listing)
        .into_iter()
        .partition(|tap| Some(tap.as_str()) == removing || Netlink::link_index(tap).is_none());
    let script = match kept.is_empty() {
        true => format!("delete table {FAMILY} {TABLE}\n"),
        false => removal_script(&gone),
    };
    match script.is_empty() {
        true => Ok(()),
        false => nft::apply(&script, WHAT),
    }
}

/// Holds [`TABLE_LOCK`] until dropped.
fn lock_table() -> Result<Flock<File>> {
    lock_file(Path::new(TABLE_LOCK))
}

/// The taps with a chain in the table, from `nft list table`'s output.
fn filtered_taps(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("chain ")?.strip_suffix(" {"))
        .filter(|chain| chain.starts_with(tap::NAME_PREFIX))
        .map(str::to_owned)
        .collect()
}

/// The table with its base chain as it must be, the rules of the taps in
/// `gone` removed, and `tap`'s rules (re)made.
fn install_script(tap: &str, mac: MacAddress, address: Ipv4Addr, gone: &[String]) -> String {
    let table = format!("{FAMILY} {TABLE}");
    let prefix = tap::NAME_PREFIX;
    let mut script = format!(
        "table {table} {{\n\
         \tmap taps {{ type ifname : verdict; }}\n\
         \tchain prerouting {{ type filter hook prerouting priority filter; policy accept; }}\n\
         }}\n\
         flush chain {table} prerouting\n\
         add rule {table} prerouting iifname vmap @taps\n\
         add rule {table} prerouting iifname \"{prefix}*\" drop\n"
    );
    script.push_str(&removal_script(gone));
    script.push_str(&format!(
        "add chain {table} {tap}\n\
         flush chain {table} {tap}\n\
         add rule {table} {tap} ether saddr != {mac} drop\n\
         add rule {table} {tap} arp htype 1 arp ptype ip arp hlen 6 arp plen 4 \
         arp saddr ether {mac} arp saddr ip {address} accept\n\
         add rule {table} {tap} ip saddr {address} accept\n\
         add rule {table} {tap} drop\n\
         add element {table} taps {{ \"{tap}\" : jump {tap} }}\n"
    ));
    script
}

/// Deletes the rules of the taps in `gone` (the map's element first: it
/// refers to the chain).
fn removal_script(gone: &[String]) -> String {
    gone.iter()
        .map(|tap| {
            format!(
                "delete element {FAMILY} {TABLE} taps {{ \"{tap}\" }}\n\
                 delete chain {FAMILY} {TABLE} {tap}\n"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::StateRoot;

    /// Runs `body` on a thread of its own in a new network namespace, where
    /// the `nft` it runs sees only what the test makes.
    fn in_network_namespace(body: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            body();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn each_tap_gets_rules_that_go_with_it_and_the_table_with_the_last() {
        in_network_namespace(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = NetworkStore::open(&StateRoot::new(dir.path().to_owned()));
            let mut netlink = Netlink::open().unwrap();
            netlink.create_bridge("br0").unwrap();
            let mac: MacAddress = "02:68:0a:59:00:02".parse().unwrap();
            let first_tap = tap::create("htapaaa", "br0", &mut netlink).unwrap();
            let first = TapFilter::install(&store, "htapaaa", mac, Ipv4Addr::new(10, 89, 0, 2));
            let first = first.unwrap();
            let second_tap = tap::create("htapbbb", "br0", &mut netlink).unwrap();
            let other: MacAddress = "02:68:0a:59:00:03".parse().unwrap();
            let second = TapFilter::install(&store, "htapbbb", other, Ipv4Addr::new(10, 89, 0, 3));
            let second = second.unwrap();
            let listing = nft::list_table(FAMILY, TABLE).unwrap().unwrap();
            assert_eq!(filtered_taps(&listing), ["htapaaa", "htapbbb"], "{listing}");
            assert!(
                listing.contains("ip saddr 10.89.0.3 accept")
                    && listing.contains("ether saddr != 02:68:0a:59:00:02 drop")
                    && listing.contains("iifname \"htap*\" drop"),
                "{listing}"
            );
            // Installing again (a restarted container) keeps one set of
            // rules.
            let again = TapFilter::install(&store, "htapaaa", mac, Ipv4Addr::new(10, 89, 0, 2));
            std::mem::forget(again.unwrap());
            let listing = nft::list_table(FAMILY, TABLE).unwrap().unwrap();
            assert_eq!(listing.matches("ip saddr 10.89.0.2 accept").count(), 1);
            // A tap gone without its filter (a holder killed): swept by the
            // next install, or by a sweep.
            drop(first_tap);
            std::mem::forget(first);
            drop(second);
            let listing = nft::list_table(FAMILY, TABLE).unwrap();
            assert_eq!(listing, None, "the table outlived its last tap");
            drop(second_tap);
            let third_tap = tap::create("htapccc", "br0", &mut netlink).unwrap();
            let third = TapFilter::install(&store, "htapccc", mac, Ipv4Addr::new(10, 89, 0, 2));
            drop(third_tap);
            sweep(None).unwrap();
            assert_eq!(nft::list_table(FAMILY, TABLE).unwrap(), None);
            drop(third);
        });
    }

    #[test]
    fn a_tap_sends_only_its_own_addresses_and_no_ipv6() {
        let mac: MacAddress = "02:68:0a:59:00:02".parse().unwrap();
        let script = install_script("htapx", mac, Ipv4Addr::new(10, 89, 0, 2), &["htapy".into()]);
        let tap_rules: Vec<&str> = script
            .lines()
            .filter(|line| line.starts_with("add rule bridge hull htapx "))
            .map(|line| line.trim_start_matches("add rule bridge hull htapx "))
            .collect();
        assert_eq!(
            tap_rules,
            [
                "ether saddr != 02:68:0a:59:00:02 drop",
                "arp htype 1 arp ptype ip arp hlen 6 arp plen 4 \
                 arp saddr ether 02:68:0a:59:00:02 arp saddr ip 10.89.0.2 accept",
                "ip saddr 10.89.0.2 accept",
                "drop",
            ]
        );
        let stale = script.find("delete chain bridge hull htapy").unwrap();
        assert!(stale < script.find("add chain bridge hull htapx").unwrap());
    }
}
