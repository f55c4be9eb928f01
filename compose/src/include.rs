//! `include`: other compose applications made part of this one. Each entry
//! (`- infra.yaml`, or `{path, project_directory, env_file}`) names files
//! loaded as a project of their own (relative paths from their own
//! directory, variables from their own env file too), whose services,
//! networks, volumes, secrets and configs are added to this file's; one
//! defined both here and there, differently, is an error.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::path::YamlPath;
use crate::relative::clean;

/// The sections an included application brings.
const SECTIONS: [&str; 5] = ["services", "networks", "volumes", "secrets", "configs"];

/// One `include` entry, its paths absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// Its compose files, merged in order.
    pub files: Vec<PathBuf>,
    /// Where its relative paths start (default: its first file's directory).
    pub project_directory: PathBuf,
    /// Its env files (default: the project directory's `.env`, if there).
    pub env_files: Vec<PathBuf>,
}

/// Loads an included application, as one canonical compose file.
pub type ReadInclude<'a> = dyn FnMut(&Include) -> Result<Value, String> + 'a;

/// Adds to `doc` (read from `file`, its relative paths from `base`) what
/// its `include` entries bring, and removes them.
pub fn apply(
    doc: &mut Value,
    file: &Path,
    base: &Path,
    read: &mut ReadInclude<'_>,
) -> Result<(), String> {
    let Some(entries) = doc.as_mapping_mut().and_then(|top| top.remove("include")) else {
        return Ok(());
    };
    let at = |path: YamlPath, reason: String| format!("{}: {path}: {reason}", file.display());
    let entries = match entries {
        Value::Sequence(entries) => entries,
        Value::Null => Vec::new(),
        _ => return Err(at("include".into(), "must be a list".into())),
    };
    for (index, entry) in entries.iter().enumerate() {
        let path = YamlPath::from("include").index(index);
        let include = parse(entry, base).map_err(|reason| at(path.clone(), reason))?;
        let included = read(&include).map_err(|reason| at(path.clone(), reason))?;
        add(doc, included).map_err(|reason| at(path, reason))?;
    }
    Ok(())
}

/// An entry as an [`Include`], its paths from `base`.
fn parse(entry: &Value, base: &Path) -> Result<Include, String> {
    let strings = |value: Option<&Value>, key: &str| -> Result<Vec<PathBuf>, String> {
        let bad = || format!("{key} must be a path or a list of paths");
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(path)) => Ok(vec![clean(&base.join(path))]),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(|path| clean(&base.join(path)))
                        .ok_or_else(bad)
                })
                .collect(),
            Some(_) => Err(bad()),
        }
    };
    let (files, directory, env_files) = match entry {
        Value::String(path) => (vec![clean(&base.join(path))], None, Vec::new()),
        Value::Mapping(entry) => (
            strings(entry.get("path"), "path")?,
            strings(entry.get("project_directory"), "project_directory")?
                .into_iter()
                .next(),
            strings(entry.get("env_file"), "env_file")?,
        ),
        _ => return Err("must be a path or {path, project_directory, env_file}".into()),
    };
    let first = files.first().ok_or("names no file: give it a path")?;
    let project_directory = match directory {
        Some(directory) => directory,
        None => first
            .parent()
            .map_or_else(|| base.to_path_buf(), Path::to_path_buf),
    };
    let env_files = match env_files.is_empty() {
        false => env_files,
        true => Some(project_directory.join(".env"))
            .filter(|file| file.is_file())
            .into_iter()
            .collect(),
    };
    Ok(Include {
        files,
        project_directory,
        env_files,
    })
}

/// `included`'s resources added to `doc`'s.
fn add(doc: &mut Value, included: Value) -> Result<(), String> {
    let Value::Mapping(mut included) = included else {
        return Ok(());
    };
    let Some(top) = doc.as_mapping_mut() else {
        return Ok(());
    };
    for section in SECTIONS {
        let Some(Value::Mapping(items)) = included.remove(section) else {
            continue;
        };
        let ours = top
            .entry(section.into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if ours.is_null() {
            *ours = Value::Mapping(Mapping::new());
        }
        let Some(ours) = ours.as_mapping_mut() else {
            continue;
        };
        for (name, item) in items {
            match ours.get(&name) {
                Some(existing) if *existing != item => {
                    let name = name.as_str().unwrap_or_default();
                    return Err(format!(
                        "{section}.{name} is defined both in this file and in the one included"
                    ));
                }
                _ => {
                    ours.insert(name, item);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn included_resources_join_this_files() {
        // docs.docker.com's include example.
        let mut doc = yaml(
            "include:\n  - infra.yaml\n  - {path: [../db/a.yaml, b.yaml], env_file: db.env}\n\
             services:\n  webapp:\n    image: webapp\n    depends_on: {redis: {condition: service_started}}\n",
        );
        let mut asked = Vec::new();
        let mut read = |include: &Include| {
            asked.push(include.clone());
            Ok(match asked.len() {
                1 => yaml("services:\n  redis: {image: redis}\nvolumes:\n  data: {}\n"),
                _ => yaml("services:\n  db: {image: postgres}\nvolumes:\n  data: {}\n"),
            })
        };
        apply(
            &mut doc,
            Path::new("/p/compose.yaml"),
            Path::new("/p"),
            &mut read,
        )
        .unwrap();
        assert_eq!(
            asked,
            [
                Include {
                    files: vec!["/p/infra.yaml".into()],
                    project_directory: "/p".into(),
                    env_files: Vec::new(),
                },
                Include {
                    files: vec!["/db/a.yaml".into(), "/p/b.yaml".into()],
                    project_directory: "/db".into(),
                    env_files: vec!["/p/db.env".into()],
                },
            ]
        );
        let services: Vec<&str> = doc["services"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(services, ["webapp", "redis", "db"]);
        assert!(doc.get("include").is_none());
        assert_eq!(doc["volumes"], yaml("{data: {}}"));
    }

    #[test]
    fn a_conflicting_resource_is_an_error() {
        let mut doc = yaml("include: [infra.yaml]\nservices:\n  redis: {image: redis:7}\n");
        let mut read = |_: &Include| Ok(yaml("services:\n  redis: {image: redis:6}\n"));
        let error = apply(
            &mut doc,
            Path::new("/p/compose.yaml"),
            Path::new("/p"),
            &mut read,
        )
        .unwrap_err();
        assert_eq!(
            error,
            "/p/compose.yaml: include[0]: services.redis is defined both in this file and in the one included"
        );
    }
}
