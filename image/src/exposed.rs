//! The ports an image or container exposes, as its config's
//! `ExposedPorts` keys name them: `80/tcp`, `53/udp`.

/// A run of ports of one protocol, as a spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PortRange<'a> {
    protocol: &'a str,
    first: u16,
    last: u16,
}

/// Reads a spec as Docker's `nat.ParsePortSpecs` reads an `EXPOSE` word or
/// an `--expose` value: `80`, `53/udp`, a range `8000-8010/tcp`, the
/// container port of `ip:host:container`.
fn port_range(spec: &str) -> Result<PortRange<'static>, String> {
    let (ports, protocol) = match spec.split_once('/') {
        Some((ports, "")) => (ports, "tcp"),
        Some((ports, protocol)) => (ports, protocol),
        None => (spec, "tcp"),
    };
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => "tcp",
        "udp" => "udp",
        "sctp" => "sctp",
        other => return Err(format!("invalid proto: {other}")),
    };
    let ports = ports.rsplit(':').next().unwrap_or(ports);
    let number = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {port}"))
    };
    let (first, last) = match ports.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => (number(ports)?, number(ports)?),
    };
    if last < first {
        return Err(format!("invalid range: {ports}"));
    }
    Ok(PortRange {
        protocol,
        first,
        last,
    })
}

/// Checks a spec without spelling its ports out.
pub fn check_port_spec(spec: &str) -> Result<(), String> {
    port_range(spec).map(drop)
}

/// The ports one spec names (each port of a range), as `80/tcp`.
pub fn exposed_ports(spec: &str) -> Result<Vec<String>, String> {
    exposed_port_set([spec])
}

/// The ports `specs` name together, each once, by protocol and number.
/// Ranges are merged before they are spelled out, so that however many
/// specs overlap, the work is bounded by the ports there are.
pub fn exposed_port_set<'a>(
    specs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let mut ranges = specs
        .into_iter()
        .map(port_range)
        .collect::<Result<Vec<_>, _>>()?;
    ranges.sort_unstable();
    let mut merged: Vec<PortRange> = Vec::new();
    for range in ranges {
        match merged.last_mut() {
            Some(last) if last.protocol == range.protocol && range.first <= last.last => {
                last.last = last.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    Ok(merged
        .iter()
        .flat_map(|range| {
            (range.first..=range.last).map(move |port| format!("{port}/{}", range.protocol))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_each_port_as_docker_reads_them() {
        assert_eq!(exposed_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(exposed_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            exposed_ports("8000-8002/tcp").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(exposed_ports("127.0.0.1:8080:80").unwrap(), ["80/tcp"]);
        assert_eq!(exposed_ports("80/").unwrap(), ["80/tcp"]);
        assert_eq!(exposed_ports("0-65535/sctp").unwrap().len(), 65_536);
        for bad in ["http", "9-1", "70000", "", "80/http"] {
            assert!(exposed_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_specs_give_each_port_once_in_order() {
        let set = exposed_port_set(["81-82", "53/udp", "80-81/tcp", "82", "1/sctp"]).unwrap();
        assert_eq!(set, ["1/sctp", "80/tcp", "81/tcp", "82/tcp", "53/udp"]);
        // A hostile list of overlapping ranges costs what one range does.
        let specs: Vec<String> = (0..20_000).map(|first| format!("{first}-65535")).collect();
        let set = exposed_port_set(specs.iter().map(String::as_str)).unwrap();
        assert_eq!(set.len(), 65_536);
    }
}
