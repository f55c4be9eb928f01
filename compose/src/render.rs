//! The project as `compose config` prints it, normalised as Docker
//! Compose v2 prints it: named, only the services the active profiles
//! enable, defaults filled in (a build's context and Dockerfile, a port's
//! mode, the `default` network a service joins, the names of networks and
//! volumes), `x-` extension fields kept, every mapping of names in order (services, their keys,
//! environments, labels, networks), and each `$` as `$$` so that the text
//! reads back as the same model.

use serde_yaml::{Mapping, Value};

use crate::emit;
use crate::error::{Error, Result};
use crate::model::{ComposeFile, NetworkDef, ServiceNetwork};
use crate::project::{Project, DEFAULT_NETWORK};

/// Service keys whose values are mappings of names, printed in order.
const NAMED_MAPPINGS: [&str; 8] = [
    "environment",
    "labels",
    "networks",
    "depends_on",
    "sysctls",
    "storage_opt",
    "ulimits",
    "extra_hosts",
];

/// `project`'s model as `config` prints it: YAML, or JSON if `json`.
pub fn config(project: &Project, json: bool) -> Result<String> {
    project.check_active_dependencies()?;
    let model = normalised(project);
    let mut value = serde_yaml::to_value(&model).map_err(cannot_write)?;
    with_extensions(&mut value, &model);
    order(&mut value);
    escape_dollars(&mut value);
    match json {
        true => serde_json::to_string_pretty(&value)
            .map(|text| text + "\n")
            .map_err(cannot_write),
        false => Ok(emit::to_string(&value)),
    }
}

fn cannot_write(reason: impl std::fmt::Display) -> Error {
    Error::Failed(format!("cannot write the model: {reason}"))
}

/// The model with Compose's defaults filled in.
fn normalised(project: &Project) -> ComposeFile {
    let mut model = project.file.clone();
    model.name = Some(project.name.clone());
    model
        .services
        .retain(|_, service| project.is_active(service));
    let mut uses_default = false;
    for service in model.services.values_mut() {
        if let Some(build) = &mut service.build {
            build
                .context
                .get_or_insert_with(|| project.directory.display().to_string());
            if build.dockerfile_inline.is_none() {
                build.dockerfile.get_or_insert_with(|| "Dockerfile".into());
            }
        }
        for port in &mut service.ports {
            port.mode.get_or_insert_with(|| "ingress".into());
        }
        if service.network_mode.is_none() && service.networks.is_empty() {
            service
                .networks
                .insert(DEFAULT_NETWORK.into(), ServiceNetwork::default());
        }
        uses_default |= service.networks.contains_key(DEFAULT_NETWORK);
    }
    if uses_default && !model.networks.contains_key(DEFAULT_NETWORK) {
        model
            .networks
            .insert(DEFAULT_NETWORK.into(), NetworkDef::default());
    }
    for (key, network) in &mut model.networks {
        let name = match network.external {
            true => key.clone(),
            false => project.network_name(key),
        };
        network.name.get_or_insert(name);
    }
    for (key, volume) in &mut model.volumes {
        let name = match volume.external {
            true => key.clone(),
            false => project.volume_name(key),
        };
        volume.name.get_or_insert(name);
    }
    model
}

/// `model`'s `x-` extension fields put back, at the end of the top level
/// (by name) and among each service's keys, as Compose prints them.
fn with_extensions(value: &mut Value, model: &ComposeFile) {
    let Some(top) = value.as_mapping_mut() else {
        return;
    };
    if let Some(Value::Mapping(services)) = top.get_mut("services") {
        for (name, service) in &model.services {
            if let Some(Value::Mapping(printed)) = services.get_mut(name.as_str()) {
                printed.extend(service.extensions.clone());
            }
        }
    }
    let mut extensions = model.extensions.clone();
    sort(&mut extensions);
    top.extend(extensions);
}

/// The mappings of names in order; a service's network without settings
/// as `null`, as Compose prints it.
fn order(value: &mut Value) {
    let Some(top) = value.as_mapping_mut() else {
        return;
    };
    for (section, item) in top.iter_mut() {
        let Some(items) = item.as_mapping_mut() else {
            continue;
        };
        sort(items);
        if section.as_str() != Some("services") {
            continue;
        }
        for (_, service) in items.iter_mut() {
            let Some(service) = service.as_mapping_mut() else {
                continue;
            };
            sort(service);
            for key in NAMED_MAPPINGS {
                if let Some(Value::Mapping(named)) = service.get_mut(key) {
                    sort(named);
                }
            }
            if let Some(Value::Mapping(networks)) = service.get_mut("networks") {
                for (_, settings) in networks.iter_mut() {
                    if settings.as_mapping().is_some_and(Mapping::is_empty) {
                        *settings = Value::Null;
                    }
                }
            }
        }
    }
}

/// Each `$` of a string value as `$$`, as Compose writes the model so that
/// it reads back as the same one.
fn escape_dollars(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('$') => *text = text.replace('$', "$$"),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, item)| escape_dollars(item)),
        Value::Sequence(items) => items.iter_mut().for_each(escape_dollars),
        Value::Tagged(tagged) => escape_dollars(&mut tagged.value),
        _ => {}
    }
}

/// `map`'s entries by key.
fn sort(map: &mut Mapping) {
    let mut entries: Vec<(Value, Value)> = std::mem::take(map).into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.as_str().cmp(&b.as_str()));
    map.extend(entries);
}

#[cfg(test)]
mod tests {
    use crate::load::{load, LoadOptions};

    #[test]
    fn config_prints_what_compose_prints() {
        // awesome-compose's react-rust-postgres, cut down, with a build
        // and a secret.
        let dir = tempfile::tempdir().unwrap();
        let shop = dir.path().join("shop");
        std::fs::create_dir(&shop).unwrap();
        std::fs::write(
            shop.join("compose.yaml"),
            "services:\n  frontend:\n    build: {context: frontend, target: development}\n    \
             networks: [client-side]\n    ports: ['3000:3000']\n  \
             db:\n    image: postgres:12-alpine\n    environment: [POSTGRES_PASSWORD=x$$y, A=1]\n    \
             volumes: ['db-data:/var/lib/postgresql/data']\n    secrets: [pw]\n    x-tier: data\n\
             networks:\n  client-side: {}\n\
             volumes:\n  db-data: {}\n\
             secrets:\n  pw: {file: pw.txt}\nx-note: {by: hand}\n",
        )
        .unwrap();
        let options = LoadOptions {
            working_dir: shop.clone(),
            ..LoadOptions::default()
        };
        let project = load(&options).unwrap();
        let shop = shop.display();
        let expected = format!(
            r#"name: shop
services:
  db:
    environment:
      A: "1"
      POSTGRES_PASSWORD: x$$y
    image: postgres:12-alpine
    networks:
      default: null
    secrets:
      - source: pw
    volumes:
      - type: volume
        source: db-data
        target: /var/lib/postgresql/data
    x-tier: data
  frontend:
    build:
      context: {shop}/frontend
      dockerfile: Dockerfile
      target: development
    networks:
      client-side: null
    ports:
      - mode: ingress
        target: 3000
        published: "3000"
        protocol: tcp
networks:
  client-side:
    name: shop_client-side
  default:
    name: shop_default
volumes:
  db-data:
    name: shop_db-data
secrets:
  pw:
    file: {shop}/pw.txt
x-note:
  by: hand
"#
        );
        assert_eq!(super::config(&project, false).unwrap(), expected);
        let json: serde_json::Value =
            serde_json::from_str(&super::config(&project, true).unwrap()).unwrap();
        assert_eq!(
            json["services"]["frontend"]["ports"][0]["published"],
            "3000"
        );
    }

    #[test]
    fn an_active_service_may_not_need_one_its_profiles_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web: {image: w, depends_on: [db]}\n  \
             db: {image: d, profiles: [dbp]}\n  \
             tool: {image: t, profiles: [tools], depends_on: {gone: {required: false}}}\n",
        )
        .unwrap();
        let load_with = |profiles: &[&str]| {
            load(&LoadOptions {
                working_dir: dir.path().to_owned(),
                profiles: profiles.iter().map(|p| p.to_string()).collect(),
                ..LoadOptions::default()
            })
            .unwrap()
        };
        let without = load_with(&[]);
        let err = super::config(&without, false).unwrap_err().to_string();
        assert!(
            err.contains("service \"web\" depends on service \"db\", which no active profile")
                && err.contains("(dbp)"),
            "{err}"
        );
        assert!(without.listed_services().is_err());
        let with = load_with(&["dbp", "tools"]);
        assert_eq!(with.active_services().unwrap(), ["web", "db", "tool"]);
        assert!(super::config(&with, false).is_ok());
    }
}
