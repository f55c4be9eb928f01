//! The files a container's /etc gets from its network, as Docker writes
//! them: `hosts`, `resolv.conf` and `hostname`.

use std::net::{IpAddr, Ipv4Addr};

use hull_protocol::EtcFile;

use super::HostEntry;

/// Where the host's resolver configuration is, and where systemd-resolved
/// keeps the upstream servers when the first names only its local stub.
const HOST_RESOLV_CONF: [&str; 2] = ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];
/// What Docker falls back to when the host has no server a container can
/// use.
const FALLBACK_RESOLV_CONF: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

/// What a container's `resolv.conf` is to say; empty fields take the
/// host's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolver<'a> {
    /// The name servers (`--dns`).
    pub servers: &'a [IpAddr],
    /// The search domains (`--dns-search`; `.` alone: none).
    pub search: &'a [String],
    /// The resolver options (`--dns-option ndots:2`).
    pub options: &'a [String],
}

/// `hosts`, `resolv.conf` and `hostname` for a container named `hostname`
/// at `address` (none with `--network none`).
pub fn render(
    hostname: &str,
    address: Option<Ipv4Addr>,
    extra_hosts: &[HostEntry],
    resolver: Resolver,
) -> Vec<EtcFile> {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for entry in extra_hosts {
        hosts.push_str(&format!("{}\t{}\n", entry.address, entry.name));
    }
    if let Some(address) = address {
        hosts.push_str(&format!("{address}\t{hostname}\n"));
    }
    let resolv_conf = if resolver.servers.is_empty() {
        host_resolv_conf()
    } else {
        let host = std::fs::read_to_string(HOST_RESOLV_CONF[0]).unwrap_or_default();
        with_name_servers(&host, resolver.servers)
    };
    vec![
        file("hosts", hosts),
        file(
            "resolv.conf",
            with_settings(&resolv_conf, resolver.search, resolver.options),
        ),
        file("hostname", format!("{hostname}\n")),
    ]
}

fn file(name: &str, contents: String) -> EtcFile {
    EtcFile {
        name: name.into(),
        contents,
    }
}

/// The host's resolver configuration with only the name servers the
/// container can reach (the first file that has one), or Docker's fallback.
fn host_resolv_conf() -> String {
    HOST_RESOLV_CONF
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| usable_resolv_conf(&text))
        .find(|conf| conf.lines().any(|line| name_server(line).is_some()))
        .unwrap_or_else(|| FALLBACK_RESOLV_CONF.into())
}

/// A resolver configuration asking `servers`, with the search domains and
/// options of the host's `host_conf`, as Docker writes it.
fn with_name_servers(host_conf: &str, servers: &[IpAddr]) -> String {
    let servers = servers
        .iter()
        .map(|server| format!("nameserver {server}\n"));
    let settings = host_conf
        .lines()
        .filter(|line| {
            let keyword = line.split_whitespace().next();
            matches!(keyword, Some("search" | "domain" | "options"))
        })
        .map(|line| format!("{line}\n"));
    servers.chain(settings).collect()
}

/// `conf` with `search` domains and `options` instead of its own, where
/// given, as Docker's `--dns-search` and `--dns-option` replace the
/// host's; a search of `.` alone leaves none.
fn with_settings(conf: &str, search: &[String], options: &[String]) -> String {
    let replaced = |keyword: &str| match keyword {
        "search" | "domain" => !search.is_empty(),
        "options" => !options.is_empty(),
        _ => false,
    };
    let mut text: String = conf
        .lines()
        .filter(|line| !replaced(line.split_whitespace().next().unwrap_or_default()))
        .map(|line| format!("{line}\n"))
        .collect();
    if !search.is_empty() && search != ["."] {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    text
}

/// The name servers of the host's resolver configuration, loopback ones
/// included (whoever asks them runs on the host), else Docker's fallback.
pub fn host_name_servers() -> Vec<IpAddr> {
    let conf = std::fs::read_to_string(HOST_RESOLV_CONF[0]).unwrap_or_default();
    let servers: Vec<IpAddr> = name_servers(&conf);
    match servers.is_empty() {
        true => name_servers(FALLBACK_RESOLV_CONF),
        false => servers,
    }
}

fn name_servers(conf: &str) -> Vec<IpAddr> {
    conf.lines()
        .filter_map(|line| name_server(line)?.parse().ok())
        .collect()
}

/// The server a `nameserver` line names.
fn name_server(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next() == Some("nameserver"))
        .then(|| words.next())
        .flatten()
}

/// `text` without the name servers a container cannot reach: on loopback
/// addresses, or IPv6 (containers have IPv4 only).
fn usable_resolv_conf(text: &str) -> String {
    text.lines()
        .filter(|line| match name_server(line) {
            Some(server) => server
                .parse::<IpAddr>()
                .is_ok_and(|server| server.is_ipv4() && !server.is_loopback()),
            None => true,
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::HostAddress;

    #[test]
    fn hosts_names_localhost_extra_hosts_and_the_container() {
        let extra = [HostEntry {
            name: "db".into(),
            address: HostAddress::Ip("10.0.0.9".parse().unwrap()),
        }];
        let files = render(
            "web",
            Some(Ipv4Addr::new(10, 89, 0, 2)),
            &extra,
            Resolver::default(),
        );
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["hosts", "resolv.conf", "hostname"]);
        let hosts = &files[0].contents;
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
        assert!(hosts.ends_with("10.0.0.9\tdb\n10.89.0.2\tweb\n"), "{hosts}");
        assert_eq!(files[2].contents, "web\n");
        let offline = render("box", None, &[], Resolver::default());
        assert!(!offline[0].contents.contains("box"));
    }

    #[test]
    fn given_servers_replace_the_hosts_but_keep_its_search_domains_and_options() {
        let dns = [
            "10.0.0.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ];
        let host = "# from DHCP\nnameserver 192.0.2.1\nsearch corp.example\n\
                    options ndots:2 edns0\ndomain example\n";
        assert_eq!(
            with_name_servers(host, &dns),
            "nameserver 10.0.0.53\nnameserver 2001:db8::53\nsearch corp.example\n\
             options ndots:2 edns0\ndomain example\n"
        );
        assert_eq!(with_name_servers("", &dns[..1]), "nameserver 10.0.0.53\n");
    }

    #[test]
    fn given_search_domains_and_options_replace_the_hosts() {
        let conf = "nameserver 10.0.0.53\nsearch corp.example\ndomain example\n\
                    options ndots:2 edns0\n";
        let words = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(with_settings(conf, &[], &[]), conf);
        assert_eq!(
            with_settings(conf, &words(&["a.example", "b.example"]), &[]),
            "nameserver 10.0.0.53\noptions ndots:2 edns0\nsearch a.example b.example\n"
        );
        assert_eq!(
            with_settings(conf, &words(&["."]), &words(&["ndots:0", "timeout:1"])),
            "nameserver 10.0.0.53\noptions ndots:0 timeout:1\n"
        );
    }

    #[test]
    fn loopback_name_servers_of_the_host_are_left_out() {
        let text = "# nameserver 192.0.2.7\nnameserver 127.0.0.53\nnameserver ::1\n\
                    nameserver 2001:db8::1\nnameserver 192.0.2.1\nsearch example.org\n\
                    options edns0\n";
        assert_eq!(
            usable_resolv_conf(text),
            "# nameserver 192.0.2.7\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n"
        );
        assert_eq!(name_server("# nameserver 192.0.2.7"), None);
        let all: Vec<IpAddr> = ["127.0.0.53", "::1", "2001:db8::1", "192.0.2.1"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        assert_eq!(name_servers(text), all);
    }
}
