//! Checks of the merged model that no single key shows: references
//! between services, networks and volumes, dependency rings, and values
//! hull parses (restart policies, signals, hosts, users) — each error one
//! line naming the file and path.

use hull_runtime::security::{parse_security_opts, Namespace};
use hull_runtime::{
    parse_container_name, parse_dns_option, parse_dns_search, parse_hostname, parse_user, signals,
    HostEntry, LogDriver, RestartPolicy,
};

use crate::error::{Error, Result};
use crate::graph::dependency_order;
use crate::model::{ComposeFile, MountKind, Service, CONTAINER_PREFIX};
use crate::project::DEFAULT_NETWORK;

/// Checks `model`, loaded from `file` (the first file, for messages).
pub fn validate(model: &ComposeFile, file: &str) -> Result<()> {
    for (name, network) in &model.networks {
        if let Some(driver) = network.driver.as_deref() {
            if !matches!(driver, "bridge" | "default") {
                return Err(Error::config(format!(
                    "{file}: networks.{name}.driver: {driver:?}: hull's networks are bridges; use bridge or leave driver out"
                )));
            }
        }
    }
    for (name, volume) in &model.volumes {
        if let Some(driver) = volume.driver.as_deref() {
            if driver != "local" {
                return Err(Error::config(format!(
                    "{file}: volumes.{name}.driver: {driver:?}: hull has no volume plugins; use local or leave driver out"
                )));
            }
        }
        if volume.keeps_tmpfs_on_disk() {
            continue;
        }
        if let Err(reason) = volume.bound_directory() {
            return Err(Error::config(format!(
                "{file}: volumes.{name}.driver_opts: {reason}"
            )));
        }
    }
    for (name, service) in &model.services {
        check_service(model, file, name, service)?;
    }
    dependency_order(&model.services)?;
    Ok(())
}

fn check_service(model: &ComposeFile, file: &str, name: &str, service: &Service) -> Result<()> {
    let at = |key: &str, reason: String| {
        Error::config(format!("{file}: services.{name}.{key}: {reason}"))
    };
    // The compose-spec's pattern; the name is part of container names.
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || !name.chars().all(plain) {
        return Err(Error::config(format!(
            "{file}: services.{name:?}: a service name may hold only letters, digits, '.', '_' \
             and '-'"
        )));
    }
    if service.image.as_deref().is_none_or(str::is_empty) && service.build.is_none() {
        return Err(Error::config(format!(
            "{file}: services.{name}: neither an image nor a build context is given"
        )));
    }
    // Checked before depends_on, which they are part of (load implies
    // them), so that an error names the key written.
    let referenced = service.links.iter().map(|link| ("links", link)).chain(
        service
            .volumes_from
            .iter()
            .filter(|from| !from.starts_with(CONTAINER_PREFIX))
            .map(|from| ("volumes_from", from)),
    );
    for (key, reference) in referenced {
        let target = reference.split(':').next().unwrap_or_default();
        if !model.services.contains_key(target) {
            return Err(at(
                key,
                format!("{reference:?}: no such service in the project"),
            ));
        }
    }
    for (dependency, condition) in &service.depends_on {
        if condition.required && !model.services.contains_key(dependency) {
            return Err(at(
                &format!("depends_on.{dependency}"),
                "no such service in the project".into(),
            ));
        }
    }
    for network in service.networks.keys() {
        if network != DEFAULT_NETWORK && !model.networks.contains_key(network) {
            return Err(at(
                &format!("networks.{network}"),
                "not defined in the top-level networks".into(),
            ));
        }
    }
    if let Some(mode) = &service.network_mode {
        if mode != "none" && mode != "bridge" {
            return Err(at(
                "network_mode",
                format!("{mode:?}: hull gives every container a VM of its own; use none, bridge or networks"),
            ));
        }
        if !service.networks.is_empty() {
            return Err(at(
                "network_mode",
                "cannot be combined with networks".into(),
            ));
        }
    }
    for (index, volume) in service.volumes.iter().enumerate() {
        let source = volume.source.as_deref().filter(|s| !s.is_empty());
        match (volume.kind, source) {
            (MountKind::Volume, Some(source)) if !model.volumes.contains_key(source) => {
                return Err(at(
                    &format!("volumes[{index}]"),
                    format!("volume {source:?} is not defined in the top-level volumes"),
                ));
            }
            (MountKind::Bind, None) => {
                return Err(at(
                    &format!("volumes[{index}]"),
                    "a bind mount needs a source".into(),
                ))
            }
            _ => {}
        }
        if !volume.target.starts_with('/') {
            return Err(at(
                &format!("volumes[{index}].target"),
                format!("{:?} is not an absolute path", volume.target),
            ));
        }
    }
    let build_secrets = service
        .build
        .as_ref()
        .map_or(&[][..], |build| &build.secrets);
    for (kind, refs, defined) in [
        ("secrets", &service.secrets[..], &model.secrets),
        ("configs", &service.configs, &model.configs),
        ("build.secrets", build_secrets, &model.secrets),
    ] {
        for (index, used) in refs.iter().enumerate() {
            if !defined.contains_key(&used.source) {
                return Err(at(
                    &format!("{kind}[{index}]"),
                    format!(
                        "{:?} is not defined in the top-level {}",
                        used.source,
                        kind.trim_start_matches("build.")
                    ),
                ));
            }
        }
    }
    for (index, port) in service.ports.iter().enumerate() {
        if port.protocol != "tcp" && port.protocol != "udp" {
            return Err(at(
                &format!("ports[{index}].protocol"),
                format!("{:?}: only tcp and udp", port.protocol),
            ));
        }
    }
    for (index, entry) in service.extra_hosts.iter().enumerate() {
        HostEntry::parse(entry).map_err(|reason| at(&format!("extra_hosts[{index}]"), reason))?;
    }
    if let Some(restart) = &service.restart {
        restart
            .parse::<RestartPolicy>()
            .map_err(|err| at("restart", err.to_string()))?;
    }
    if let Some(signal) = &service.stop_signal {
        signals::signal_number(signal)
            .ok_or_else(|| at("stop_signal", format!("{signal:?} is not a signal")))?;
    }
    if let Some(test) = service.healthcheck.as_ref().and_then(|h| h.test.as_ref()) {
        let well_formed = match test.first().map(String::as_str) {
            Some("NONE") => true,
            Some("CMD") => test.len() > 1,
            Some("CMD-SHELL") => test.len() == 2,
            _ => false,
        };
        if !well_formed {
            return Err(at(
                "healthcheck.test",
                format!("{test:?}: expected a command string, [CMD, args...], [CMD-SHELL, command] or [NONE]"),
            ));
        }
    }
    if let Some(user) = &service.user {
        parse_user(user).map_err(|reason| at("user", reason))?;
    }
    if let Some(hostname) = &service.hostname {
        parse_hostname(hostname).map_err(|reason| at("hostname", reason))?;
    }
    if let Some(container_name) = &service.container_name {
        parse_container_name(container_name).map_err(|reason| at("container_name", reason))?;
        if model_replicas(service) > 1 {
            return Err(at(
                "container_name",
                "a service with a container_name cannot have more than one container".into(),
            ));
        }
    }
    if let Some(working_dir) = &service.working_dir {
        if !working_dir.starts_with('/') {
            return Err(at(
                "working_dir",
                format!("{working_dir:?} is not an absolute path"),
            ));
        }
    }
    check_run_options(service).map_err(|(key, reason)| at(&key, reason))
}

/// Checks the values `hull run`'s flags would check: security options,
/// namespace modes, platform, logging, resolver settings, exposed ports;
/// an error names the key.
fn check_run_options(service: &Service) -> std::result::Result<(), (String, String)> {
    let key = |key: &str| {
        let key = key.to_owned();
        move |reason: String| (key, reason)
    };
    parse_security_opts(&service.security_opt).map_err(key("security_opt"))?;
    for (name, namespace, mode) in [
        ("ipc", Namespace::Ipc, &service.ipc),
        ("pid", Namespace::Pid, &service.pid),
        ("uts", Namespace::Uts, &service.uts),
        ("userns_mode", Namespace::User, &service.userns_mode),
        ("cgroup", Namespace::Cgroup, &service.cgroup),
    ] {
        if let Some(mode) = mode {
            namespace.check_mode(mode).map_err(key(name))?;
        }
    }
    if let Some(platform) = &service.platform {
        hull_image::check_platform(platform).map_err(key("platform"))?;
    }
    if let Some(logging) = &service.logging {
        let driver = logging
            .driver
            .as_deref()
            .map_or(Ok(LogDriver::default()), LogDriver::parse);
        driver
            .and_then(|driver| driver.limits(&logging.log_opts()))
            .map_err(|err| (String::from("logging"), err.to_string()))?;
    }
    for (index, domain) in service.dns_search.iter().enumerate() {
        parse_dns_search(domain).map_err(key(&format!("dns_search[{index}]")))?;
    }
    for (index, option) in service.dns_opt.iter().enumerate() {
        parse_dns_option(option).map_err(key(&format!("dns_opt[{index}]")))?;
    }
    for (index, ports) in service.expose.iter().enumerate() {
        hull_image::check_port_spec(ports).map_err(key(&format!("expose[{index}]")))?;
    }
    Ok(())
}

fn model_replicas(service: &Service) -> u32 {
    service
        .deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(service.scale)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;

    fn check(yaml: &str) -> Result<()> {
        let mut doc: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        canonicalize(&mut doc).unwrap();
        let model: ComposeFile = serde_yaml::from_value(doc).unwrap();
        validate(&model, "compose.yaml")
    }

    #[test]
    fn run_options_are_checked_as_run_checks_its_flags() {
        for (key, value, message) in [
            (
                "security_opt",
                "[seccomp=./profile.json]",
                "seccomp profiles are not applied",
            ),
            (
                "security_opt",
                "[no-new-privileges=maybe]",
                "takes true or false",
            ),
            ("ipc", "host", "--ipc host is not supported"),
            ("pid", "'service:db'", "--pid service:db is not supported"),
            ("platform", "linux/arm64", "linux/amd64 images only"),
            (
                "logging",
                "{driver: syslog}",
                "log driver \"syslog\" is not supported",
            ),
            (
                "logging",
                "{driver: none, options: {max-size: 1m}}",
                "the none log driver takes no options",
            ),
            ("logging", "{options: {max-file: 0}}", "max-file=0"),
            ("dns_search", "'bad domain'", "is not a valid search domain"),
            ("expose", "[80/http]", "invalid proto: http"),
            ("links", "[nosuch]", "\"nosuch\": no such service"),
            (
                "volumes_from",
                "['nosuch:ro']",
                "\"nosuch:ro\": no such service",
            ),
        ] {
            let yaml = format!("services:\n  web:\n    image: a\n    {key}: {value}\n");
            let err = check(&yaml).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("compose.yaml: services.web.{key}")),
                "{err}"
            );
            assert!(err.contains(message), "{key}: {err}");
        }
    }

    #[test]
    fn references_must_resolve() {
        for (yaml, message) in [
            ("services:\n  web:\n    image: a\n    depends_on: [db]\n", "compose.yaml: services.web.depends_on.db: no such service in the project"),
            ("services:\n  web:\n    image: a\n    networks: [front]\n", "compose.yaml: services.web.networks.front: not defined in the top-level networks"),
            ("services:\n  web:\n    image: a\n    volumes: ['data:/d']\n", "compose.yaml: services.web.volumes[0]: volume \"data\" is not defined in the top-level volumes"),
            ("services:\n  web:\n    command: x\n", "compose.yaml: services.web: neither an image nor a build context is given"),
            ("services:\n  web:\n    image: ''\n", "compose.yaml: services.web: neither an image nor a build context is given"),
            ("services:\n  web:\n    image: a\n    hostname: 'a b'\n", "compose.yaml: services.web.hostname: \"a b\" is not a host name (letters, digits, '-', '.', '_')"),
            ("services:\n  'Bad Name!':\n    image: a\n", "compose.yaml: services.\"Bad Name!\": a service name may hold only letters, digits, '.', '_' and '-'"),
            ("services:\n  web:\n    image: a\n    restart: sometimes\n", "compose.yaml: services.web.restart: "),
            ("services:\n  web:\n    image: a\n    network_mode: host\n", "compose.yaml: services.web.network_mode: \"host\""),
            ("services:\n  web:\n    image: a\n    container_name: webby\n    deploy: {replicas: 2}\n", "compose.yaml: services.web.container_name: a service with"),
            ("services: {}\nnetworks:\n  overlay: {driver: overlay}\n", "compose.yaml: networks.overlay.driver: \"overlay\": hull's networks are bridges"),
            ("services: {}\nvolumes:\n  nfs: {driver: rexray}\n", "compose.yaml: volumes.nfs.driver: \"rexray\": hull has no volume plugins"),
            ("services: {}\nvolumes:\n  nfs: {driver_opts: {type: nfs, o: addr=10.0.0.2, device: ':/x'}}\n", "compose.yaml: volumes.nfs.driver_opts: volume options type=nfs"),
            ("services:\n  web:\n    image: a\n    secrets: [pw]\n", "compose.yaml: services.web.secrets[0]: \"pw\" is not defined in the top-level secrets"),
            ("services:\n  web:\n    build: {context: ., secrets: [npmrc]}\n", "compose.yaml: services.web.build.secrets[0]: \"npmrc\" is not defined in the top-level secrets"),
            ("services:\n  web:\n    image: a\n    configs: [{source: c, target: /c}]\nconfigs: {d: {file: d}}\n", "compose.yaml: services.web.configs[0]: \"c\" is not defined in the top-level configs"),
        ] {
            let error = check(yaml).unwrap_err().to_string();
            assert!(error.starts_with(message), "{yaml}: {error}");
        }
    }

    #[test]
    fn volumes_bound_to_host_directories_are_taken() {
        let yaml = "services: {}\nvolumes:\n  data:\n    driver: local\n    driver_opts: {type: none, o: bind, device: /srv/data}\n";
        check(yaml).unwrap();
    }

    #[test]
    fn a_dependency_ring_is_refused() {
        let error = check(
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
        )
        .unwrap_err();
        assert!(matches!(error, Error::DependencyCycle(_)), "{error}");
        assert_eq!(
            error.to_string(),
            "dependency cycle between services: a -> b -> a"
        );
    }

    #[test]
    fn optional_dependencies_and_defaults_pass() {
        check(
            "services:\n  a:\n    image: x\n    depends_on:\n      gone: {required: false}\n    \
             volumes: ['./d:/d', '/anon', 'v:/v']\n    extra_hosts: ['gw:host-gateway']\n    \
             deploy: {mode: replicated}\n\
             networks:\n  elastic: {driver: bridge}\nvolumes:\n  v: {driver: local}\n",
        )
        .unwrap();
    }
}
