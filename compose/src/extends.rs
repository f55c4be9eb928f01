//! `extends`: a service made of another one, in the same file or another
//! (`extends: {file: common.yml, service: webapp}`), with its own keys
//! merged over it by the rules that merge files. The service extended may
//! extend another in turn; a ring of them is an error. The other file is
//! read as the caller reads files (interpolated, in canonical form, its
//! relative paths from its own directory).

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::merge::merge_service;

/// Reads the compose file at a path, for a service to extend.
pub type ReadFile<'a> = dyn FnMut(&Path) -> Result<Value, String> + 'a;

/// Replaces each service of `doc` (read from `file`) that has `extends`
/// by the service it extends with its own keys merged over.
pub fn apply(doc: &mut Value, file: &Path, read: &mut ReadFile<'_>) -> Result<(), String> {
    let Some(Value::Mapping(services)) = doc.get("services") else {
        return Ok(());
    };
    let extending: Vec<String> = services
        .iter()
        .filter(|(_, service)| service.get("extends").is_some())
        .filter_map(|(name, _)| name.as_str().map(String::from))
        .collect();
    let mut resolved = Vec::new();
    for name in extending {
        let service = extended(services, file, &name, read, &mut Vec::new())?;
        resolved.push((name, service));
    }
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (name, service) in resolved {
            services.insert(name.into(), service);
        }
    }
    Ok(())
}

/// The service `name` of `services` (from `file`) with what it extends
/// under it; `chain` holds the services being extended, for rings.
fn extended(
    services: &Mapping,
    file: &Path,
    name: &str,
    read: &mut ReadFile<'_>,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Value, String> {
    let mut service = services
        .get(name)
        .cloned()
        .ok_or_else(|| format!("{}: no service {name:?}", file.display()))?;
    let Some(extends) = service.as_mapping_mut().and_then(|s| s.remove("extends")) else {
        return Ok(service);
    };
    let at = || format!("{}: services.{name}.extends", file.display());
    let (base_name, base_file) = target(&extends)
        .ok_or_else(|| format!("{}: must be a service name or {{service, file}}", at()))?;
    let link = (file.to_path_buf(), name.to_owned());
    if chain.contains(&link) {
        let ring: Vec<&str> = chain.iter().map(|(_, name)| name.as_str()).collect();
        return Err(format!(
            "{}: extends itself through {} -> {name}",
            at(),
            ring.join(" -> ")
        ));
    }
    let other_doc;
    let (base_services, base_file) = match base_file {
        None => (services, file.to_path_buf()),
        Some(other) => {
            let other = PathBuf::from(other);
            other_doc = read(&other).map_err(|err| format!("{}: {err}", at()))?;
            match other_doc.get("services") {
                Some(Value::Mapping(other_services)) => (other_services, other),
                _ => return Err(format!("{}: {} has no services", at(), other.display())),
            }
        }
    };
    if !base_services.contains_key(base_name.as_str()) {
        return Err(format!(
            "{}: no service {base_name:?} in {}",
            at(),
            base_file.display()
        ));
    }
    chain.push(link);
    let mut base = extended(base_services, &base_file, &base_name, read, chain)?;
    chain.pop();
    merge_service(&mut base, service);
    Ok(base)
}

/// What `extends` names: a service, and the file it is in if not this one.
fn target(extends: &Value) -> Option<(String, Option<String>)> {
    match extends {
        Value::String(service) => Some((service.clone(), None)),
        Value::Mapping(_) => {
            let service = extends.get("service")?.as_str()?.to_owned();
            let file = match extends.get("file") {
                None | Some(Value::Null) => None,
                Some(file) => Some(file.as_str()?.to_owned()),
            };
            Some((service, file))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;

    fn doc(text: &str) -> Value {
        let mut value: Value = serde_yaml::from_str(text).unwrap();
        canonicalize(&mut value).unwrap();
        value
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn no_files(path: &Path) -> Result<Value, String> {
        Err(format!("{}: not found", path.display()))
    }

    #[test]
    fn a_service_extends_one_in_another_file_and_this_one() {
        // docs.docker.com's extends example.
        let common = doc(
            "services:\n  webapp:\n    build: /p\n    ports: ['8000:8000']\n    volumes: ['/data']\n    \
             environment: [A=1, B=1]\n",
        );
        let mut main = doc(
            "services:\n  web:\n    build: /p/alpine\n    command: echo\n    environment: {B: '2'}\n    \
             extends: {file: /p/common-services.yml, service: webapp}\n  \
             webapp:\n    environment: [DEBUG=1]\n    image: alpine\n  \
             queue:\n    image: redis\n    extends: {service: webapp}\n",
        );
        let mut reads = Vec::new();
        let mut read = |path: &Path| {
            reads.push(path.to_path_buf());
            Ok(common.clone())
        };
        apply(&mut main, Path::new("/p/compose.yaml"), &mut read).unwrap();
        assert_eq!(reads, [PathBuf::from("/p/common-services.yml")]);
        let web = &main["services"]["web"];
        assert_eq!(web["build"]["context"], Value::from("/p/alpine"));
        assert_eq!(web["ports"][0]["published"], Value::from("8000"));
        assert_eq!(web["volumes"][0]["target"], Value::from("/data"));
        assert_eq!(web["command"], yaml("[echo]"));
        assert_eq!(web["environment"], yaml("{A: '1', B: '2'}"));
        assert!(web.get("extends").is_none());
        let queue = &main["services"]["queue"];
        assert_eq!(queue["image"], Value::from("redis"));
        assert_eq!(queue["environment"], yaml("{DEBUG: '1'}"));
    }

    #[test]
    fn chains_resolve_and_rings_and_missing_services_fail() {
        let mut chain = doc(
            "services:\n  a:\n    image: a\n    extends: b\n  b:\n    extends: c\n    labels: [x=1]\n  \
             c:\n    image: c\n    user: '1'\n",
        );
        apply(&mut chain, Path::new("/p/compose.yaml"), &mut no_files).unwrap();
        let a = &chain["services"]["a"];
        assert_eq!(a["image"], Value::from("a"));
        assert_eq!(a["user"], Value::from("1"));
        assert_eq!(a["labels"], yaml("{x: '1'}"));

        let mut ring = doc("services:\n  a:\n    extends: b\n  b:\n    extends: a\n");
        let error = apply(&mut ring, Path::new("/p/compose.yaml"), &mut no_files).unwrap_err();
        assert!(
            error.contains("extends itself through a -> b -> a"),
            "{error}"
        );

        let mut missing = doc("services:\n  a:\n    extends: {file: /p/x.yml, service: b}\n");
        let error = apply(&mut missing, Path::new("/p/compose.yaml"), &mut no_files).unwrap_err();
        assert_eq!(
            error,
            "/p/compose.yaml: services.a.extends: /p/x.yml: not found"
        );
        let mut unknown = doc("services:\n  a:\n    extends: nope\n");
        let error = apply(&mut unknown, Path::new("/p/compose.yaml"), &mut no_files).unwrap_err();
        assert_eq!(
            error,
            "/p/compose.yaml: services.a.extends: no service \"nope\" in /p/compose.yaml"
        );
    }
}
