//! A compose file's short forms turned into their long ones, on the YAML
//! value before it is typed: lists of `KEY=VALUE` become mappings, port and
//! volume strings become their long syntax, a string command becomes its
//! words, `depends_on` and `networks` lists become mappings. Files are
//! merged in this one form, and the typed model and `config` see only it.

use serde_yaml::{Mapping, Value};

use crate::path::YamlPath;

/// What was wrong with a value, and where.
pub type Invalid = (YamlPath, String);

/// Turns the short forms of the compose file `doc` (interpolated) into long
/// ones.
pub fn canonicalize(doc: &mut Value) -> Result<(), Invalid> {
    let root = YamlPath::root();
    let Value::Mapping(top) = doc else {
        return Err((root, "a compose file must be a mapping".into()));
    };
    for section in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Mapping(items)) = top.get_mut(section) {
            for (name, item) in items.iter_mut() {
                null_to_mapping(item);
                // Labels as a list (`[tier=db]`) or a mapping, as a service's;
                // driver options with numbers (`uid: 1000`) as strings.
                if let Value::Mapping(item) = untagged(item) {
                    for key in ["labels", "driver_opts"] {
                        if let Some(values) = item.get_mut(key).filter(|l| !l.is_null()) {
                            let path = root.field(section).key(name).field(key);
                            key_values(untagged(values), &path)?;
                        }
                    }
                }
            }
        }
    }
    let Some(services) = top.get_mut("services") else {
        return Ok(());
    };
    let path = root.field("services");
    let Value::Mapping(services) = untagged(services) else {
        return Err((
            path,
            "must be a mapping of service names to services".into(),
        ));
    };
    for (name, service) in services.iter_mut() {
        let path = path.key(name);
        null_to_mapping(service);
        let Value::Mapping(service) = untagged(service) else {
            return Err((path, "a service must be a mapping".into()));
        };
        canonical_service(service, &path)?;
    }
    Ok(())
}

/// One service's keys in their long forms.
fn canonical_service(service: &mut Mapping, path: &YamlPath) -> Result<(), Invalid> {
    for (key, value) in service.iter_mut() {
        let Some(key) = key.as_str() else { continue };
        let path = path.field(key);
        let value = untagged(value);
        if value.is_null() {
            continue;
        }
        match key {
            "command" | "entrypoint" => command(value, &path)?,
            "environment" | "labels" | "sysctls" | "annotations" | "storage_opt" => {
                key_values(value, &path)?
            }
            "env_file" => env_files(value, &path)?,
            "ports" => ports(value, &path)?,
            "expose" | "tmpfs" | "dns" | "dns_search" | "dns_opt" | "profiles" | "cap_add"
            | "cap_drop" | "group_add" | "security_opt" | "links" | "external_links"
            | "volumes_from" => string_list(value, &path)?,
            "logging" => logging(value, &path)?,
            "volumes" => volumes(value, &path)?,
            "extra_hosts" => extra_hosts(value, &path)?,
            "depends_on" => depends_on(value, &path)?,
            "networks" => service_networks(value, &path)?,
            "healthcheck" => healthcheck(value, &path)?,
            "ulimits" => ulimits(value, &path)?,
            "build" => build(value, &path)?,
            "secrets" | "configs" => file_object_refs(value, &path)?,
            _ => {}
        }
    }
    Ok(())
}

/// The value under a `!reset` or `!override` tag, or the value itself.
pub fn untagged(value: &mut Value) -> &mut Value {
    match value {
        Value::Tagged(tagged) => untagged(&mut tagged.value),
        value => value,
    }
}

fn null_to_mapping(value: &mut Value) {
    if value.is_null() {
        *value = Value::Mapping(Mapping::new());
    }
}

/// A scalar as text (`3` as `"3"`), or none for a mapping or sequence.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A command: a string is split into words as a shell would (no shell
/// runs it), a list is kept, its items as text.
fn command(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let words = match value {
        Value::String(text) => shell_words::split(text).map_err(|err| {
            (
                path.clone(),
                format!("cannot split {text:?} into words: {err}"),
            )
        })?,
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                scalar_text(item).ok_or_else(|| (path.index(index), "must be a string".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err((path.clone(), "must be a string or a list of strings".into())),
    };
    *value = Value::Sequence(words.into_iter().map(Value::String).collect());
    Ok(())
}

/// `[KEY=VALUE, KEY]` or `{KEY: VALUE}` as a mapping of text (or null).
fn key_values(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let mut map = Mapping::new();
    match value {
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let text = scalar_text(item)
                    .ok_or_else(|| (path.index(index), "must be KEY=VALUE".to_owned()))?;
                match text.split_once('=') {
                    Some((key, value)) => map.insert(key.into(), value.into()),
                    None => map.insert(text.into(), Value::Null),
                };
            }
        }
        Value::Mapping(items) => {
            for (key, item) in items.iter() {
                let text = match item {
                    Value::Null | Value::Tagged(_) => item.clone(),
                    item => Value::String(scalar_text(item).ok_or_else(|| {
                        (
                            path.key(key),
                            "must be a string, number or boolean".to_owned(),
                        )
                    })?),
                };
                let key = scalar_text(key).ok_or_else(|| (path.clone(), "bad key".to_owned()))?;
                map.insert(key.into(), text);
            }
        }
        _ => {
            return Err((
                path.clone(),
                "must be a list of KEY=VALUE or a mapping".into(),
            ))
        }
    }
    *value = Value::Mapping(map);
    Ok(())
}

/// `logging`: its `options` as a mapping of text (`max-file: 3`).
fn logging(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let Value::Mapping(logging) = value else {
        return Err((path.clone(), "must be a mapping".into()));
    };
    match logging.get_mut("options") {
        Some(options) if !options.is_null() => key_values(options, &path.field("options")),
        _ => Ok(()),
    }
}

/// A string or a list of them, as a list of text.
fn string_list(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let items = match &mut *value {
        Value::Sequence(items) => std::mem::take(items),
        single => vec![single.clone()],
    };
    let items = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            scalar_text(item)
                .map(Value::String)
                .ok_or_else(|| (path.index(index), "must be a string".to_owned()))
        })
        .collect::<Result<_, _>>()?;
    *value = Value::Sequence(items);
    Ok(())
}

/// `env_file`: each a mapping with `path` and `required`.
fn env_files(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    if !value.is_sequence() {
        *value = Value::Sequence(vec![value.clone()]);
    }
    let Value::Sequence(items) = value else {
        unreachable!("made a sequence above")
    };
    for item in items {
        if let Some(text) = scalar_text(item) {
            let mut long = Mapping::new();
            long.insert("path".into(), text.into());
            long.insert("required".into(), true.into());
            *item = Value::Mapping(long);
        } else if !item.is_mapping() {
            return Err((path.clone(), "must be a path or {path, required}".into()));
        }
    }
    Ok(())
}

/// `ports`: short strings (`[IP:][HOST:]CONTAINER[/PROTO]`, ranges
/// expanded) as long mappings; a range of host ports for one container
/// port (`8000-8002:80`, or `published: 8000-8002`) stays a range, of
/// which each container takes a free port.
fn ports(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let Value::Sequence(items) = value else {
        return Err((path.clone(), "must be a list".into()));
    };
    let mut long = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::Mapping(port) => {
                if let Some(range) = port
                    .get("published")
                    .and_then(scalar_text)
                    .filter(|text| text.contains('-'))
                {
                    port_range(&range)
                        .map_err(|reason| (path.index(index).field("published"), reason))?;
                }
                long.push(Value::Mapping(port.clone()));
            }
            item => {
                let text = scalar_text(item)
                    .ok_or_else(|| (path.index(index), "must be a port".to_owned()))?;
                let ports = short_port(&text)
                    .map_err(|reason| (path.index(index), format!("{text:?}: {reason}")))?;
                long.extend(ports.into_iter().map(Value::Mapping));
            }
        }
    }
    *items = long;
    Ok(())
}

/// The long forms of a short port `[IP:][HOST:]CONTAINER[/PROTO]`.
fn short_port(text: &str) -> Result<Vec<Mapping>, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, Some(protocol)),
        None => (text, None),
    };
    let (host_ip, host, container) = match spec.rsplitn(3, ':').collect::<Vec<_>>()[..] {
        [container] => (None, None, container),
        [container, host] => (None, Some(host), container),
        [container, host, ip] => (Some(ip.trim_matches(['[', ']'])), Some(host), container),
        _ => unreachable!("rsplitn gives one to three parts"),
    };
    let targets = port_range(container)?;
    let published: Option<Vec<String>> = match host.filter(|host| !host.is_empty()) {
        // One container port on any free port of the host's range.
        Some(host) if targets.len() == 1 => {
            port_range(host)?;
            Some(vec![host.to_owned()])
        }
        Some(host) => Some(port_range(host)?.iter().map(u16::to_string).collect()),
        None => None,
    };
    if let Some(published) = &published {
        if published.len() != targets.len() {
            return Err("the host and container port ranges differ in size".into());
        }
    }
    Ok(targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let mut port = Mapping::new();
            port.insert("target".into(), (*target).into());
            if let Some(published) = &published {
                port.insert("published".into(), published[index].clone().into());
            }
            if let Some(ip) = host_ip {
                port.insert("host_ip".into(), ip.into());
            }
            port.insert("protocol".into(), protocol.unwrap_or("tcp").into());
            port
        })
        .collect())
}

/// `80` or `8000-8002`, as the ports it names.
fn port_range(text: &str) -> Result<Vec<u16>, String> {
    let port = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| format!("{text:?} is not a port number"))
    };
    match text.split_once('-') {
        Some((first, last)) => {
            let (first, last) = (port(first)?, port(last)?);
            if first > last {
                return Err(format!("{text}: the range ends before it starts"));
            }
            Ok((first..=last).collect())
        }
        None => Ok(vec![port(text)?]),
    }
}

/// `volumes`: short strings `[SOURCE:]TARGET[:MODE]` as long mappings.
fn volumes(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let Value::Sequence(items) = value else {
        return Err((path.clone(), "must be a list".into()));
    };
    for (index, item) in items.iter_mut().enumerate() {
        if let Value::String(text) = item {
            let long = short_volume(text)
                .map_err(|reason| (path.index(index), format!("{text:?}: {reason}")))?;
            *item = Value::Mapping(long);
        } else if !item.is_mapping() {
            return Err((path.index(index), "must be a string or a mapping".into()));
        }
    }
    Ok(())
}

/// The long form of a short volume `[SOURCE:]TARGET[:MODE]`.
pub(crate) fn short_volume(text: &str) -> Result<Mapping, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts[..] {
        [target] => (None, target, None),
        [source, target] => (Some(source), target, None),
        [source, target, mode] => (Some(source), target, Some(mode)),
        _ => return Err("expected [SOURCE:]TARGET[:MODE]".into()),
    };
    if !target.starts_with('/') {
        return Err(format!("the container path {target:?} is not absolute"));
    }
    let bind = source.is_some_and(|s| s.starts_with(['/', '.', '~']));
    let mut long = Mapping::new();
    long.insert("type".into(), if bind { "bind" } else { "volume" }.into());
    if let Some(source) = source {
        long.insert("source".into(), source.into());
    }
    long.insert("target".into(), target.into());
    for option in mode.into_iter().flat_map(|mode| mode.split(',')) {
        match option {
            "ro" => {
                long.insert("read_only".into(), true.into());
            }
            "rw" | "z" | "Z" | "cached" | "delegated" | "consistent" => {}
            "nocopy" if !bind => {
                let mut volume = Mapping::new();
                volume.insert("nocopy".into(), true.into());
                long.insert("volume".into(), Value::Mapping(volume));
            }
            other => return Err(format!("unknown volume option {other:?}")),
        }
    }
    if bind {
        let mut options = Mapping::new();
        options.insert("create_host_path".into(), true.into());
        long.insert("bind".into(), Value::Mapping(options));
    }
    Ok(long)
}

/// `extra_hosts`: `NAME:IP` strings (`NAME=IP` and mappings accepted).
fn extra_hosts(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let mut entries = Vec::new();
    match value {
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let text = scalar_text(item)
                    .ok_or_else(|| (path.index(index), "must be NAME:IP".to_owned()))?;
                // `NAME=IP` is the form that leaves room for IPv6.
                let text = match text.split_once('=') {
                    Some((name, ip)) => format!("{name}:{ip}"),
                    None => text,
                };
                entries.push(Value::String(text));
            }
        }
        Value::Mapping(items) => {
            for (name, ips) in items.iter() {
                let name = scalar_text(name).unwrap_or_default();
                let ips = match ips {
                    Value::Sequence(ips) => ips.iter().filter_map(scalar_text).collect(),
                    ip => scalar_text(ip).into_iter().collect::<Vec<_>>(),
                };
                entries.extend(
                    ips.into_iter()
                        .map(|ip| Value::String(format!("{name}:{ip}"))),
                );
            }
        }
        _ => {
            return Err((
                path.clone(),
                "must be a list of NAME:IP or a mapping".into(),
            ))
        }
    }
    *value = Value::Sequence(entries);
    Ok(())
}

/// `depends_on`: a mapping of services to `{condition, required}`.
fn depends_on(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let default = || {
        let mut long = Mapping::new();
        long.insert("condition".into(), "service_started".into());
        long
    };
    let mut map = Mapping::new();
    match value {
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                let name = scalar_text(item)
                    .ok_or_else(|| (path.index(index), "must be a service name".to_owned()))?;
                map.insert(name.into(), Value::Mapping(default()));
            }
        }
        Value::Mapping(items) => {
            for (name, item) in items.iter() {
                let mut long = default();
                match item {
                    Value::Mapping(given) => {
                        long.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())))
                    }
                    Value::Null => {}
                    _ => {
                        return Err((
                            path.key(name),
                            "must be {condition, restart, required}".into(),
                        ))
                    }
                }
                map.insert(name.clone(), Value::Mapping(long));
            }
        }
        _ => {
            return Err((
                path.clone(),
                "must be a list of services or a mapping".into(),
            ))
        }
    }
    *value = Value::Mapping(map);
    Ok(())
}

/// A service's `networks`: a mapping of networks to their settings.
fn service_networks(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    match value {
        Value::Sequence(items) => {
            let mut map = Mapping::new();
            for (index, item) in items.iter().enumerate() {
                let name = scalar_text(item)
                    .ok_or_else(|| (path.index(index), "must be a network name".to_owned()))?;
                map.insert(name.into(), Value::Mapping(Mapping::new()));
            }
            *value = Value::Mapping(map);
        }
        Value::Mapping(items) => {
            for (_, item) in items.iter_mut() {
                null_to_mapping(item);
            }
        }
        _ => {
            return Err((
                path.clone(),
                "must be a list of networks or a mapping".into(),
            ))
        }
    }
    Ok(())
}

/// `healthcheck.test`: a string is `CMD-SHELL` with it.
fn healthcheck(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let Value::Mapping(check) = value else {
        return Err((path.clone(), "must be a mapping".into()));
    };
    match check.get_mut("test") {
        Some(test @ Value::String(_)) => {
            let shell = test.as_str().unwrap_or_default().to_owned();
            *test = Value::Sequence(vec!["CMD-SHELL".into(), shell.into()]);
        }
        Some(test) => command(test, &path.field("test"))?,
        None => {}
    }
    Ok(())
}

/// A service's `secrets` or `configs`: names as `{source: NAME}`.
fn file_object_refs(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let Value::Sequence(items) = value else {
        return Err((path.clone(), "must be a list".into()));
    };
    for (index, item) in items.iter_mut().enumerate() {
        if let Some(source) = scalar_text(item) {
            let mut long = Mapping::new();
            long.insert("source".into(), source.into());
            *item = Value::Mapping(long);
        } else if !item.is_mapping() {
            return Err((
                path.index(index),
                "must be a name or {source, target}".into(),
            ));
        }
    }
    Ok(())
}

/// `ulimits`: `NAME: N` as `{soft: N, hard: N}`.
fn ulimits(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    let Value::Mapping(limits) = value else {
        return Err((path.clone(), "must be a mapping".into()));
    };
    for (_, limit) in limits.iter_mut() {
        if !limit.is_mapping() {
            let mut long = Mapping::new();
            long.insert("soft".into(), limit.clone());
            long.insert("hard".into(), limit.clone());
            *limit = Value::Mapping(long);
        }
    }
    Ok(())
}

/// `build`: a string is the context; `args` as a mapping, `secrets` as
/// `{source: NAME}`.
fn build(value: &mut Value, path: &YamlPath) -> Result<(), Invalid> {
    if let Some(context) = scalar_text(value) {
        let mut long = Mapping::new();
        long.insert("context".into(), context.into());
        *value = Value::Mapping(long);
    }
    let Value::Mapping(build) = value else {
        return Err((path.clone(), "must be a path or a mapping".into()));
    };
    if let Some(args) = build.get_mut("args") {
        key_values(args, &path.field("args"))?;
    }
    if let Some(secrets) = build.get_mut("secrets") {
        file_object_refs(secrets, &path.field("secrets"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(yaml: &str) -> Value {
        let mut doc: Value = serde_yaml::from_str(yaml).unwrap();
        canonicalize(&mut doc).unwrap();
        doc
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn short_ports_become_long() {
        let doc = canonical(
            "services:\n  a:\n    ports: [80, '8080:80', '127.0.0.1:9000-9001:90-91/udp', {target: 5}]\n",
        );
        assert_eq!(
            doc["services"]["a"]["ports"],
            yaml(
                "- {target: 80, protocol: tcp}\n\
                 - {target: 80, published: '8080', protocol: tcp}\n\
                 - {target: 90, published: '9000', host_ip: 127.0.0.1, protocol: udp}\n\
                 - {target: 91, published: '9001', host_ip: 127.0.0.1, protocol: udp}\n\
                 - {target: 5}\n"
            )
        );
    }

    #[test]
    fn a_host_port_range_for_one_port_stays_a_range() {
        let doc = canonical(
            "services:\n  a:\n    ports: ['8000-8002:80', {target: 443, published: 8083-8085}]\n",
        );
        assert_eq!(
            doc["services"]["a"]["ports"],
            yaml(
                "- {target: 80, published: 8000-8002, protocol: tcp}\n\
                 - {target: 443, published: 8083-8085}\n"
            )
        );
        let mut bad: Value =
            serde_yaml::from_str("services:\n  a:\n    ports: [{target: 1, published: 9-8}]\n")
                .unwrap();
        let (at, _) = canonicalize(&mut bad).unwrap_err();
        assert_eq!(at.to_string(), "services.a.ports[0].published");
    }

    #[test]
    fn short_volumes_become_long() {
        let doc =
            canonical("services:\n  a:\n    volumes: ['./d:/d:ro', 'data:/data:nocopy', /anon]\n");
        assert_eq!(
            doc["services"]["a"]["volumes"],
            yaml(
                "- {type: bind, source: ./d, target: /d, read_only: true, bind: {create_host_path: true}}\n\
                 - {type: volume, source: data, target: /data, volume: {nocopy: true}}\n\
                 - {type: volume, target: /anon}\n"
            )
        );
    }

    #[test]
    fn top_level_labels_in_either_form_become_mappings() {
        let doc = canonical(
            "networks:\n  back: {internal: true, labels: [tier=db, owner]}\n\
             volumes:\n  data: {labels: {keep: 1}}\n",
        );
        assert_eq!(
            doc["networks"]["back"]["labels"],
            yaml("{tier: db, owner: null}")
        );
        assert_eq!(doc["volumes"]["data"]["labels"], yaml("{keep: '1'}"));
    }

    #[test]
    fn lists_of_pairs_and_names_become_mappings() {
        let doc = canonical(
            "services:\n  a:\n    environment: [A=1, B, C=x=y]\n    labels: {n: 1, t: true}\n    \
             depends_on: [db]\n    networks: [front]\n    extra_hosts: {h: 10.0.0.1}\n    \
             command: echo \"a b\" c\n    healthcheck: {test: curl x}\n    tmpfs: /run\n    \
             build: {context: ., secrets: [npmrc, {source: gh, target: token}]}\n",
        );
        let a = &doc["services"]["a"];
        assert_eq!(a["environment"], yaml("{A: '1', B: null, C: x=y}"));
        assert_eq!(a["labels"], yaml("{n: '1', t: 'true'}"));
        assert_eq!(a["depends_on"], yaml("{db: {condition: service_started}}"));
        assert_eq!(a["networks"], yaml("{front: {}}"));
        assert_eq!(a["extra_hosts"], yaml("['h:10.0.0.1']"));
        assert_eq!(a["command"], yaml("[echo, a b, c]"));
        assert_eq!(a["healthcheck"]["test"], yaml("[CMD-SHELL, curl x]"));
        assert_eq!(a["tmpfs"], yaml("[/run]"));
        assert_eq!(
            a["build"]["secrets"],
            yaml("[{source: npmrc}, {source: gh, target: token}]")
        );
    }

    #[test]
    fn bad_short_forms_name_their_place() {
        for (text, path) in [
            (
                "services:\n  a:\n    ports: ['80:x']\n",
                "services.a.ports[0]",
            ),
            (
                "services:\n  a:\n    volumes: ['d:rel']\n",
                "services.a.volumes[0]",
            ),
            (
                "services:\n  a:\n    ports: ['1-3:1-2']\n",
                "services.a.ports[0]",
            ),
            ("services: [a]\n", "services"),
        ] {
            let mut doc: Value = serde_yaml::from_str(text).unwrap();
            let (at, _) = canonicalize(&mut doc).unwrap_err();
            assert_eq!(at.to_string(), path, "{text}");
        }
    }
}
