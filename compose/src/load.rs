//! Loading a project: its files found, `.env` read, each file parsed,
//! interpolated and put in canonical form (and checked on its own, so that
//! an error names its file), the files merged, the result typed, named and
//! validated, and each service's environment resolved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::canonical::canonicalize;
use crate::dotenv;
use crate::error::{Error, Result};
use crate::files;
use crate::interpolate::Interpolator;
use crate::merge::{merge, strip_tags};
use crate::model::ComposeFile;
use crate::path::YamlPath;
use crate::project::Project;
use crate::project_name;
use crate::validate::validate;

/// What picks and shapes a project: Compose's global flags and the
/// environment it runs in.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files (default: found from `working_dir` up).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory` (default: the first file's directory).
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (default: the project directory's `.env`, if any).
    pub env_files: Vec<PathBuf>,
    /// `--profile`s (default: `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// Where relative paths given start from.
    pub working_dir: PathBuf,
    /// The caller's environment, over the `.env` file's variables.
    pub environment: BTreeMap<String, String>,
}

/// Loads the project `options` describe.
pub fn load(options: &LoadOptions) -> Result<Project> {
    let compose_file = options.environment.get("COMPOSE_FILE").map(String::as_str);
    let files =
        files::find(&options.files, compose_file, &options.working_dir).map_err(Error::NoFile)?;
    let directory = match &options.project_directory {
        Some(dir) => options.working_dir.join(dir),
        None => files[0]
            .parent()
            .map_or_else(|| options.working_dir.clone(), Path::to_path_buf),
    };
    let variables = variables(options, &directory)?;
    let lookup = |name: &str| variables.get(name).cloned();
    let mut warnings = Vec::new();
    let mut merged: Option<Value> = None;
    for file in &files {
        let mut interpolator = Interpolator::new(&lookup);
        let doc = read_file(file, &mut interpolator, &mut warnings)?;
        for name in interpolator.unset {
            warnings.push(format!(
                "{}: the {name:?} variable is not set; it stands for a blank string",
                file.display()
            ));
        }
        match &mut merged {
            None => merged = Some(doc),
            Some(base) => merge(base, doc),
        }
    }
    let mut merged = merged.expect("find gives at least one file");
    strip_tags(&mut merged);
    let first = files[0].display().to_string();
    let (file, _) = typed(merged, &first)?;
    let name = project_name::choose(
        options.project_name.as_deref(),
        variables.get("COMPOSE_PROJECT_NAME").map(String::as_str),
        file.name.as_deref(),
        &directory,
    )
    .map_err(Error::Config)?;
    let profiles = match options.profiles.is_empty() {
        false => options.profiles.clone(),
        true => variables
            .get("COMPOSE_PROFILES")
            .map(|list| {
                list.split(',')
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
    };
    validate(&file, &first)?;
    let project = Project::new(name, directory, files, file, profiles, variables, warnings)?;
    Ok(project)
}

/// The variables interpolation sees: the env files', under the caller's
/// environment.
fn variables(options: &LoadOptions, directory: &Path) -> Result<BTreeMap<String, String>> {
    let env_files: Vec<PathBuf> = match options.env_files.is_empty() {
        false => options
            .env_files
            .iter()
            .map(|file| options.working_dir.join(file))
            .collect(),
        true => Some(directory.join(".env"))
            .filter(|file| file.is_file())
            .into_iter()
            .collect(),
    };
    let environment = &options.environment;
    let mut variables = BTreeMap::new();
    for file in env_files {
        let lookup = |name: &str| environment.get(name).cloned();
        let entries = dotenv::read(&file, &lookup).map_err(Error::Config)?;
        for (key, value) in entries {
            if let Some(value) = value.or_else(|| environment.get(&key).cloned()) {
                variables.insert(key, value);
            }
        }
    }
    variables.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(variables)
}

/// One compose file parsed, interpolated and in canonical form, checked
/// on its own: its unknown keys are warned about, its errors name it.
fn read_file(
    file: &Path,
    interpolator: &mut Interpolator,
    warnings: &mut Vec<String>,
) -> Result<Value> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|err| Error::config(format!("{name}: cannot read it: {err}")))?;
    let mut doc: Value = serde_yaml::from_str(&text)
        .map_err(|err| Error::config(format!("{name}: not valid YAML: {err}")))?;
    doc.apply_merge()
        .map_err(|err| Error::config(format!("{name}: {err}")))?;
    if !doc.is_mapping() {
        return Err(Error::config(format!(
            "{name}: a compose file must be a mapping"
        )));
    }
    interpolator
        .value(&mut doc, &YamlPath::root())
        .map_err(|(path, err)| Error::config(format!("{name}: {path}: {err}")))?;
    canonicalize(&mut doc).map_err(|(path, reason)| located(&name, &path, &reason))?;
    let mut plain = doc.clone();
    strip_tags(&mut plain);
    let (_, unknown) = typed(plain, &name)?;
    warnings.extend(
        unknown
            .into_iter()
            .map(|key| format!("{name}: {key}: unknown or unsupported key, ignored")),
    );
    Ok(doc)
}

/// `doc` as the typed model, and the paths of the keys it left out
/// (`x-` extension keys aside); the error names `file` and the path.
fn typed(doc: Value, file: &str) -> Result<(ComposeFile, Vec<String>)> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| {
        let path = path.to_string();
        if !path.split('.').any(|part| part.starts_with("x-")) {
            unknown.push(path);
        }
    };
    let deserializer = serde_ignored::Deserializer::new(doc, &mut note);
    let typed: ComposeFile = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        Error::config(format!("{file}: {path}: {}", err.into_inner()))
    })?;
    Ok((typed, unknown))
}

/// `{file}: {path}: {reason}`.
fn located(file: &str, path: &YamlPath, reason: &str) -> Error {
    Error::config(format!("{file}: {path}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> LoadOptions {
        LoadOptions {
            working_dir: dir.to_path_buf(),
            ..LoadOptions::default()
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn interpolates_from_the_environment_over_dot_env() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            ".env",
            "TAG=1.0\nPORT=8080\nCOMPOSE_PROJECT_NAME=fromdotenv\n",
        );
        write(
            dir.path(),
            "compose.yaml",
            "services:\n  web:\n    image: web:${TAG}\n    ports: ['${PORT}:80']\n    \
             environment:\n      GREETING: ${GREETING:-hello}\n      COST: $$5\n    \
             deploy:\n      replicas: ${REPLICAS:-2}\n",
        );
        let mut options = options(dir.path());
        options.environment.insert("PORT".into(), "9090".into());
        let project = load(&options).unwrap();
        assert_eq!(project.name, "fromdotenv");
        let web = &project.file.services["web"];
        assert_eq!(web.image.as_deref(), Some("web:1.0"));
        assert_eq!(web.ports[0].published, Some(9090));
        assert_eq!(web.environment["GREETING"].as_deref(), Some("hello"));
        assert_eq!(web.environment["COST"].as_deref(), Some("$5"));
        assert_eq!(web.deploy.as_ref().unwrap().replicas, Some(2));
        assert!(project.warnings.is_empty(), "{:?}", project.warnings);
    }

    #[test]
    fn env_file_flag_replaces_dot_env_and_required_variables_fail() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".env", "TAG=from-dot-env\n");
        write(dir.path(), "other.env", "TAG=from-other\n");
        write(
            dir.path(),
            "compose.yaml",
            "services:\n  web:\n    image: web:${TAG:?set TAG}\n",
        );
        let mut with_flag = options(dir.path());
        with_flag.env_files = vec!["other.env".into()];
        let web = &load(&with_flag).unwrap().file.services["web"];
        assert_eq!(web.image.as_deref(), Some("web:from-other"));
        std::fs::remove_file(dir.path().join(".env")).unwrap();
        let error = load(&options(dir.path())).unwrap_err().to_string();
        assert!(
            error.ends_with("compose.yaml: services.web.image: required variable TAG is missing a value: set TAG"),
            "{error}"
        );
    }

    #[test]
    fn unset_variables_and_unknown_keys_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "compose.yaml",
            "x-common: &common {image: base}\nservices:\n  web:\n    <<: *common\n    \
             command: run $NOPE\n    imagee: typo\n    x-mine: 1\n",
        );
        let project = load(&options(dir.path())).unwrap();
        assert_eq!(project.file.services["web"].image.as_deref(), Some("base"));
        let warnings = project.warnings.join("\n");
        assert!(
            warnings.contains("\"NOPE\" variable is not set"),
            "{warnings}"
        );
        assert!(
            warnings.contains("services.web.imagee: unknown"),
            "{warnings}"
        );
        assert!(!warnings.contains("x-"), "{warnings}");
    }

    #[test]
    fn two_files_merge_and_the_override_file_is_found() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "compose.yaml",
            "name: shop\nservices:\n  web:\n    image: web:1\n    environment: [MODE=prod, A=1]\n  \
             db:\n    image: db:1\n",
        );
        write(
            dir.path(),
            "compose.override.yaml",
            "services:\n  web:\n    environment:\n      MODE: dev\n    ports: ['8080:80']\n",
        );
        let project = load(&options(dir.path())).unwrap();
        assert_eq!(project.files.len(), 2);
        let web = &project.file.services["web"];
        assert_eq!(web.environment["MODE"].as_deref(), Some("dev"));
        assert_eq!(web.environment["A"].as_deref(), Some("1"));
        assert_eq!(web.ports.len(), 1);
        write(
            dir.path(),
            "prod.yaml",
            "services:\n  db:\n    image: db:2\n",
        );
        let mut explicit = options(dir.path());
        explicit.files = vec!["compose.yaml".into(), "prod.yaml".into()];
        let project = load(&explicit).unwrap();
        assert_eq!(project.file.services["db"].image.as_deref(), Some("db:2"));
        assert!(project.file.services["web"].ports.is_empty());
    }

    #[test]
    fn invalid_files_name_file_path_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            (
                "services:\n  web:\n    image: [1]\n",
                "compose.yaml: services.web.image: invalid type",
            ),
            (
                "services:\n  web:\n    image: a\n    read_only: maybe\n",
                "compose.yaml: services.web.read_only: \"maybe\" is not true or false",
            ),
            (
                "services:\n  web:\n    image: a\n    ports: ['x:80']\n",
                "compose.yaml: services.web.ports[0]: \"x:80\": \"x\" is not a port number",
            ),
            (
                "services:\n  web: {image: a\n",
                "compose.yaml: not valid YAML",
            ),
            (
                "services:\n  web:\n    image: a\n    mem_limit: lots\n",
                "compose.yaml: services.web.mem_limit: \"lots\" is not a size",
            ),
        ] {
            write(dir.path(), "compose.yaml", text);
            let error = load(&options(dir.path())).unwrap_err().to_string();
            let file = dir.path().join(expected);
            assert!(
                error.starts_with(&file.display().to_string()),
                "{text}: {error}"
            );
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }
}
