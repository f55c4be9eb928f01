//! Relative paths in a compose file made absolute, as Compose does when it
//! loads one: build contexts, env files, bind mount sources, `extends`
//! files and the files of secrets and configs. Each file's paths start
//! from its own base: the project directory for the files given (`-f`,
//! overrides too), the file's own directory for one that is extended or
//! included. `~` is the home directory.

use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

use crate::canonical::untagged;

/// Where the relative paths of one file start, and the home directory.
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    /// The directory relative paths start from.
    pub dir: &'a Path,
    /// `$HOME`, for `~`; unknown leaves `~` as written.
    pub home: Option<&'a Path>,
}

impl Base<'_> {
    /// `given` as an absolute path, lexically cleaned as Go's
    /// `filepath.Join` does (`./a/../b` is `b`); `~/...` stays as written
    /// when the home directory is unknown.
    pub fn absolute(&self, given: &str) -> String {
        let joined = match given.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => match self.home {
                Some(home) => home.join(rest.trim_start_matches('/')),
                None => return given.to_owned(),
            },
            _ => self.dir.join(given),
        };
        clean(&joined).display().to_string()
    }
}

/// `path` without `.` components, each `..` taking the one before it.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !out.has_root() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Makes the relative paths in the canonical compose file `doc` absolute
/// from `base`.
pub fn resolve(doc: &mut Value, base: Base<'_>) {
    if let Some(Value::Mapping(services)) = doc.get_mut("services").map(untagged) {
        for (_, service) in services.iter_mut() {
            resolve_service(untagged(service), base);
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Value::Mapping(items)) = doc.get_mut(section).map(untagged) {
            for (_, item) in items.iter_mut() {
                resolve_at(untagged(item), "file", base);
            }
        }
    }
    if let Some(Value::Mapping(volumes)) = doc.get_mut("volumes").map(untagged) {
        for (_, volume) in volumes.iter_mut() {
            resolve_bound_device(untagged(volume), base);
        }
    }
}

/// The device of a local volume bound to a host directory
/// (`driver_opts: {type: none, o: bind, device: ./data}`), made absolute as
/// Compose makes it.
fn resolve_bound_device(volume: &mut Value, base: Base<'_>) {
    let local = volume
        .get("driver")
        .and_then(Value::as_str)
        .is_none_or(|driver| driver == "local");
    let Some(options) = volume.get_mut("driver_opts").map(untagged) else {
        return;
    };
    let binds = options
        .get("o")
        .and_then(Value::as_str)
        .is_some_and(|flags| flags.split(',').any(|flag| flag.trim() == "bind"));
    if local && binds {
        resolve_at(options, "device", base);
    }
}

/// One service's paths; a `!reset` or `!override` value's too.
fn resolve_service(service: &mut Value, base: Base<'_>) {
    if let Some(build) = service.get_mut("build").map(untagged) {
        if let Some(Value::String(context)) = build.get_mut("context").map(untagged) {
            if !is_remote(context) {
                *context = base.absolute(context);
            }
        }
    }
    if let Some(Value::Sequence(files)) = service.get_mut("env_file").map(untagged) {
        for file in files {
            resolve_at(untagged(file), "path", base);
        }
    }
    if let Some(Value::Sequence(volumes)) = service.get_mut("volumes").map(untagged) {
        for volume in volumes.iter_mut().map(untagged) {
            if volume.get("type").and_then(Value::as_str) == Some("bind") {
                resolve_at(volume, "source", base);
            }
        }
    }
    if let Some(extends) = service.get_mut("extends").map(untagged) {
        resolve_at(extends, "file", base);
    }
}

/// The string at `key` of the mapping `value` made absolute.
fn resolve_at(value: &mut Value, key: &str, base: Base<'_>) {
    if let Some(Value::String(path)) = value.get_mut(key).map(untagged) {
        if !path.is_empty() {
            *path = base.absolute(path);
        }
    }
}

/// A build context Compose hands to the builder as it is: a URL or a Git
/// repository.
fn is_remote(context: &str) -> bool {
    context.contains("://")
        || ["git@", "github.com/"]
            .iter()
            .any(|prefix| context.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;

    #[test]
    fn paths_become_absolute_from_the_base() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  web:\n    build: ./app\n    env_file: [web.env, {path: /etc/x.env}]\n    \
             volumes: ['./data:/data', '~/cache:/cache', 'named:/n', '/abs/../abs2:/a',\n      \
             {type: bind, source: ../conf, target: /conf}]\n    extends: {file: common.yml, service: base}\n  \
             remote:\n    build: {context: 'https://github.com/docker/app.git#main'}\n\
             secrets:\n  pw: {file: ./secrets/pw.txt}\n  env: {environment: PW}\n\
             configs:\n  conf: {file: conf.txt}\n\
             volumes:\n  bound: {driver_opts: {type: none, o: bind, device: ./data}}\n  \
             tmp: {driver_opts: {type: tmpfs, device: tmpfs, uid: 1000}}\n",
        )
        .unwrap();
        canonicalize(&mut doc).unwrap();
        let base = Base {
            dir: Path::new("/srv/shop"),
            home: Some(Path::new("/home/ann")),
        };
        resolve(&mut doc, base);
        let web = &doc["services"]["web"];
        assert_eq!(web["build"]["context"], Value::from("/srv/shop/app"));
        assert_eq!(web["env_file"][0]["path"], Value::from("/srv/shop/web.env"));
        assert_eq!(web["env_file"][1]["path"], Value::from("/etc/x.env"));
        let sources: Vec<&Value> = web["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| &v["source"])
            .collect();
        assert_eq!(
            sources,
            [
                "/srv/shop/data",
                "/home/ann/cache",
                "named",
                "/abs2",
                "/srv/conf"
            ]
            .map(Value::from)
            .iter()
            .collect::<Vec<_>>()
        );
        assert_eq!(web["extends"]["file"], Value::from("/srv/shop/common.yml"));
        assert_eq!(
            doc["services"]["remote"]["build"]["context"],
            Value::from("https://github.com/docker/app.git#main")
        );
        assert_eq!(
            doc["secrets"]["pw"]["file"],
            Value::from("/srv/shop/secrets/pw.txt")
        );
        assert!(doc["secrets"]["env"].get("file").is_none());
        // A bound volume's device as Compose resolves it; a tmpfs's is no
        // path (and its numbers are strings).
        let volumes = &doc["volumes"];
        assert_eq!(
            volumes["bound"]["driver_opts"]["device"],
            Value::from("/srv/shop/data")
        );
        assert_eq!(
            volumes["tmp"]["driver_opts"]["device"],
            Value::from("tmpfs")
        );
        assert_eq!(volumes["tmp"]["driver_opts"]["uid"], Value::from("1000"));
        assert_eq!(
            doc["configs"]["conf"]["file"],
            Value::from("/srv/shop/conf.txt")
        );
    }

    #[test]
    fn paths_under_override_tags_are_resolved_too() {
        // docs.docker.com's merge example: `volumes: !override [...]`.
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  app:\n    volumes: !override ['./data:/data']\n    \
             build: !override {context: ./app}\n",
        )
        .unwrap();
        canonicalize(&mut doc).unwrap();
        let base = Base {
            dir: Path::new("/srv"),
            home: None,
        };
        resolve(&mut doc, base);
        let app = &doc["services"]["app"];
        let Value::Tagged(volumes) = &app["volumes"] else {
            panic!("{app:?}")
        };
        assert_eq!(volumes.value[0]["source"], Value::from("/srv/data"));
        let Value::Tagged(build) = &app["build"] else {
            panic!("{app:?}")
        };
        assert_eq!(build.value["context"], Value::from("/srv/app"));
    }

    #[test]
    fn tilde_without_a_home_stays_and_dot_dot_stops_at_the_root() {
        let base = Base {
            dir: Path::new("/p"),
            home: None,
        };
        assert_eq!(base.absolute("~/x"), "~/x");
        assert_eq!(base.absolute("~x"), "/p/~x");
        assert_eq!(base.absolute("../../.."), "/");
    }
}
