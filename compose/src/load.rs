//! Loading a project: its files found, `.env` read, each file parsed,
//! interpolated, put in canonical form with its relative paths made
//! absolute, the services it extends and the applications it includes
//! brought in (and checked on its own, so that an error names its file),
//! the files merged, the result typed, named and validated, and each
//! service's environment resolved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::canonical::canonicalize;
use crate::dotenv;
use crate::error::{Error, Result};
use crate::extends;
use crate::files::{self, STDIN_FILE};
use crate::include::{self, Include};
use crate::interpolate::Interpolator;
use crate::merge::{merge, strip_tags};
use crate::merge_keys;
use crate::model::ComposeFile;
use crate::path::YamlPath;
use crate::project::Project;
use crate::project_name;
use crate::relative;
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
    /// The text of the file `-` names in `files` (`-f -`), which the
    /// caller read from its standard input.
    pub stdin: Option<String>,
}

/// Loads the project `options` describe.
pub fn load(options: &LoadOptions) -> Result<Project> {
    let compose_file = options.environment.get("COMPOSE_FILE").map(String::as_str);
    let files =
        files::find(&options.files, compose_file, &options.working_dir).map_err(Error::NoFile)?;
    let directory = match &options.project_directory {
        Some(dir) => relative::clean(&options.working_dir.join(dir)),
        // `-f -` has the working directory for its own.
        None if files[0] == Path::new(STDIN_FILE) => options.working_dir.clone(),
        None => files[0]
            .parent()
            .map_or_else(|| options.working_dir.clone(), Path::to_path_buf),
    };
    let variables = variables(options, &directory)?;
    let home = options.environment.get("HOME").map(PathBuf::from);
    let mut reader = Reader {
        home: home.as_deref(),
        stdin: options.stdin.as_deref(),
        warnings: Vec::new(),
        including: Vec::new(),
    };
    let mut merged: Option<Value> = None;
    for file in &files {
        let doc = reader.given_file(file, &directory, &variables)?;
        match &mut merged {
            None => merged = Some(doc),
            Some(base) => merge(base, doc),
        }
    }
    let mut warnings = reader.warnings;
    let mut merged = merged.expect("find gives at least one file");
    strip_tags(&mut merged);
    let first = files[0].display().to_string();
    let extensions = extensions(&merged);
    let (mut file, _) = typed(merged, &first)?;
    file.extensions = extensions.top;
    for (name, service) in &mut file.services {
        // `image: ${UNSET}` names no image, as Compose reads it: a build
        // names its own.
        service.image = service.image.take().filter(|image| !image.is_empty());
        service.extensions = extensions.services.get(name).cloned().unwrap_or_default();
        service.imply_dependencies();
    }
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
    for (name, volume) in &mut file.volumes {
        if volume.keeps_tmpfs_on_disk() {
            volume.driver_opts.clear();
            warnings.push(format!(
                "volumes.{name}.driver_opts: type=tmpfs: hull keeps this volume on disk (each \
                 container's VM shares it); for memory-backed storage, give the service tmpfs:"
            ));
        }
    }
    warnings.extend(
        file.services
            .iter()
            .filter(|(_, service)| service.oom_kill_disable)
            .map(|(name, _)| {
                format!(
                    "services.{name}.oom_kill_disable: the kernel does not support it \
                     (cgroup v2); discarded, as Docker does"
                )
            }),
    );
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
    under_env_files(&options.environment, &env_files)
}

/// `over` with the variables of `env_files` (in order, each over the
/// ones before) under it.
fn under_env_files(
    over: &BTreeMap<String, String>,
    env_files: &[PathBuf],
) -> Result<BTreeMap<String, String>> {
    let mut variables = BTreeMap::new();
    for file in env_files {
        let lookup = |name: &str| over.get(name).cloned();
        let entries = dotenv::read(file, &lookup).map_err(Error::Config)?;
        for (key, value) in entries {
            if let Some(value) = value.or_else(|| over.get(&key).cloned()) {
                variables.insert(key, value);
            }
        }
    }
    variables.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(variables)
}

/// Reads compose files, and those they extend and include, noting what
/// the caller should be warned about.
struct Reader<'a> {
    /// `$HOME`, for `~` in paths.
    home: Option<&'a Path>,
    /// The text of `-f -`.
    stdin: Option<&'a str>,
    /// Unset variables, unknown keys.
    warnings: Vec<String>,
    /// The files being read, each included by the one before.
    including: Vec<PathBuf>,
}

impl Reader<'_> {
    /// A file of the project (`-f`, an override file), whole: its relative
    /// paths from `base`, what it extends and includes in it, its unknown
    /// keys warned about, its errors naming it.
    fn given_file(
        &mut self,
        file: &Path,
        base: &Path,
        variables: &BTreeMap<String, String>,
    ) -> Result<Value> {
        let doc = self.application_file(file, base, variables)?;
        let name = file.display().to_string();
        if doc.get("version").is_some() {
            self.warnings.push(format!(
                "{name}: the attribute `version` is obsolete, it will be ignored, \
                 please remove it to avoid potential confusion"
            ));
        }
        let mut plain = doc.clone();
        strip_tags(&mut plain);
        let (_, unknown) = typed(plain, &name)?;
        self.warnings.extend(
            unknown
                .into_iter()
                .map(|key| format!("{name}: {key}: unknown or unsupported key, ignored")),
        );
        Ok(doc)
    }

    /// `file` with the services it extends and the applications it
    /// includes in it; a file that includes itself, however indirectly, is
    /// an error.
    fn application_file(
        &mut self,
        file: &Path,
        base: &Path,
        variables: &BTreeMap<String, String>,
    ) -> Result<Value> {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.to_owned());
        if self.including.contains(&canonical) {
            let chain: Vec<String> = self
                .including
                .iter()
                .chain([&canonical])
                .map(|file| file.display().to_string())
                .collect();
            return Err(Error::config(format!(
                "{}: includes itself through {}",
                file.display(),
                chain.join(" -> ")
            )));
        }
        self.including.push(canonical);
        let doc = self.extended_and_included(file, base, variables);
        self.including.pop();
        doc
    }

    /// What [`Reader::application_file`] reads, once it knows `file` is
    /// not being read already.
    fn extended_and_included(
        &mut self,
        file: &Path,
        base: &Path,
        variables: &BTreeMap<String, String>,
    ) -> Result<Value> {
        let mut doc = self.layer(file, base, variables)?;
        extends::apply(&mut doc, file, &mut |other| {
            let dir = other.parent().unwrap_or(Path::new("/"));
            self.layer(other, dir, variables)
                .map_err(|err| err.to_string())
        })
        .map_err(Error::Config)?;
        include::apply(&mut doc, file, base, &mut |include| {
            self.included(include, variables)
                .map_err(|err| err.to_string())
        })
        .map_err(Error::Config)?;
        Ok(doc)
    }

    /// An included application's files, merged: its variables from its
    /// env files under the project's.
    fn included(
        &mut self,
        include: &Include,
        variables: &BTreeMap<String, String>,
    ) -> Result<Value> {
        let variables = under_env_files(variables, &include.env_files)?;
        let mut merged: Option<Value> = None;
        for file in &include.files {
            if !file.is_file() {
                return Err(Error::config(format!("{}: no such file", file.display())));
            }
            let doc = self.application_file(file, &include.project_directory, &variables)?;
            match &mut merged {
                None => merged = Some(doc),
                Some(base) => merge(base, doc),
            }
        }
        let mut merged = merged.unwrap_or(Value::Null);
        strip_tags(&mut merged);
        Ok(merged)
    }

    /// One compose file parsed, its merge keys applied, interpolated, in
    /// canonical form and its relative paths made absolute from `base`.
    fn layer(
        &mut self,
        file: &Path,
        base: &Path,
        variables: &BTreeMap<String, String>,
    ) -> Result<Value> {
        let name = file.display().to_string();
        let text = match (file == Path::new(STDIN_FILE), self.stdin) {
            (true, Some(text)) => text.to_owned(),
            (true, None) => return Err(Error::config("-f -: nothing was read from stdin")),
            (false, _) => std::fs::read_to_string(file)
                .map_err(|err| Error::config(format!("{name}: cannot read it: {err}")))?,
        };
        let mut doc: Value = serde_yaml::from_str(&text)
            .map_err(|err| Error::config(format!("{name}: not valid YAML: {err}")))?;
        if !doc.is_mapping() {
            return Err(Error::config(format!(
                "{name}: a compose file must be a mapping"
            )));
        }
        merge_keys::apply(&mut doc, &YamlPath::root())
            .map_err(|(path, reason)| located(&name, &path, &reason))?;
        let lookup = |key: &str| variables.get(key).cloned();
        let mut interpolator = Interpolator::new(&lookup);
        interpolator
            .value(&mut doc, &YamlPath::root())
            .map_err(|(path, err)| Error::config(format!("{name}: {path}: {err}")))?;
        for variable in interpolator.unset {
            self.warnings.push(format!(
                "{name}: the {variable:?} variable is not set; it stands for a blank string"
            ));
        }
        canonicalize(&mut doc).map_err(|(path, reason)| located(&name, &path, &reason))?;
        relative::resolve(
            &mut doc,
            relative::Base {
                dir: base,
                home: self.home,
            },
        );
        Ok(doc)
    }
}

/// The `x-` extension fields of a merged file.
struct Extensions {
    /// The top level's.
    top: Mapping,
    /// Each service's.
    services: BTreeMap<String, Mapping>,
}

/// `doc`'s `x-` extension fields, which the typed model leaves out.
fn extensions(doc: &Value) -> Extensions {
    let of = |value: &Value| -> Mapping {
        value
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(key, _)| key.as_str().is_some_and(|key| key.starts_with("x-")))
            .map(|(key, item)| (key.clone(), item.clone()))
            .collect()
    };
    let services = doc
        .get("services")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(name, service)| Some((name.as_str()?.to_owned(), of(service))))
        .filter(|(_, found)| !found.is_empty())
        .collect();
    Extensions {
        top: of(doc),
        services,
    }
}

/// `doc` as the typed model, and the paths of the keys it left out
/// (`x-` extension keys aside); the error names `file` and the path.
fn typed(doc: Value, file: &str) -> Result<(ComposeFile, Vec<String>)> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| {
        // serde_ignored marks an `Option` it went through with `?`.
        let path = path.to_string().replace(".?", "");
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
    fn a_file_from_stdin_has_the_working_directory_for_its_own() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".env", "TAG=2.0\n");
        write(dir.path(), "web.env", "A=1\n");
        let options = LoadOptions {
            files: vec![PathBuf::from("-")],
            stdin: Some("services:\n  web:\n    image: web:${TAG}\n    env_file: web.env\n".into()),
            ..options(dir.path())
        };
        let project = load(&options).unwrap();
        assert_eq!(project.directory, dir.path());
        let web = &project.file.services["web"];
        assert_eq!(web.image.as_deref(), Some("web:2.0"));
        assert_eq!(web.environment["A"].as_deref(), Some("1"));
        let unread = LoadOptions {
            stdin: None,
            ..options
        };
        assert_eq!(
            load(&unread).unwrap_err().to_string(),
            "-f -: nothing was read from stdin"
        );
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
        assert_eq!(web.ports[0].published.unwrap().to_string(), "9090");
        assert_eq!(web.environment["GREETING"].as_deref(), Some("hello"));
        assert_eq!(web.environment["COST"].as_deref(), Some("$5"));
        assert_eq!(web.deploy.as_ref().unwrap().replicas, Some(2));
        assert!(project.warnings.is_empty(), "{:?}", project.warnings);
    }

    #[test]
    fn a_file_that_includes_itself_is_an_error_not_a_stack_overflow() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "compose.yaml",
            "include: [infra.yaml]\nservices:\n  web: {image: web}\n",
        );
        write(
            dir.path(),
            "infra.yaml",
            "include: [compose.yaml]\nservices:\n  db: {image: db}\n",
        );
        let error = load(&options(dir.path())).unwrap_err().to_string();
        assert!(error.contains("includes itself through"), "{error}");
        assert!(error.contains("infra.yaml -> "), "{error}");
        assert!(error.ends_with("compose.yaml"), "{error}");
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
        write(dir.path(), "compose.yaml", "version: '3.8'\nservices: {}\n");
        let old = load(&options(dir.path())).unwrap();
        assert_eq!(old.warnings.len(), 1, "{:?}", old.warnings);
        assert!(old.warnings[0].ends_with("the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"));
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
    fn tmpfs_volumes_are_kept_on_disk_with_a_warning_and_bound_ones_resolved() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "compose.yaml",
            "services: {}\nvolumes:\n  scratch:\n    driver_opts: {type: tmpfs, device: tmpfs, o: size=64m}\n  \
             data:\n    driver: local\n    driver_opts: {type: none, o: bind, device: ./data}\n",
        );
        let project = load(&options(dir.path())).unwrap();
        assert!(project.file.volumes["scratch"].driver_opts.is_empty());
        assert_eq!(project.warnings.len(), 1, "{:?}", project.warnings);
        assert!(project.warnings[0].starts_with("volumes.scratch.driver_opts: type=tmpfs"));
        let device = &project.file.volumes["data"].driver_opts["device"];
        assert_eq!(Path::new(device), dir.path().join("data"));
    }

    #[test]
    fn services_are_listed_by_name_after_their_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "compose.yaml",
            "services:\n  web: {image: w, depends_on: [db]}\n  db: {image: d}\n  \
             admin: {image: a, profiles: [debug]}\n  cache: {image: c}\n",
        );
        let project = load(&options(dir.path())).unwrap();
        assert_eq!(project.listed_services().unwrap(), ["cache", "db", "web"]);
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
    fn env_files_resolve_into_the_environment_and_paths_become_absolute() {
        // immich's docker-compose.yml, cut down: its .env is both the
        // interpolation variables and the service's env_file.
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            ".env",
            "UPLOAD_LOCATION=./library\nDB_PASSWORD=postgres\nIMMICH_VERSION=v1\n",
        );
        write(dir.path(), "extra.env", "DB_PASSWORD=other\nONLY_FILE=1\n");
        write(
            dir.path(),
            "compose.yaml",
            "name: immich\nservices:\n  immich-server:\n    \
             image: ghcr.io/immich-app/immich-server:${IMMICH_VERSION:-release}\n    \
             volumes:\n      - ${UPLOAD_LOCATION}:/data\n      - ~/cache:/cache\n    \
             env_file: [.env, {path: extra.env}, {path: missing.env, required: false}]\n    \
             environment: [ONLY_FILE=2, FROM_SHELL, NOWHERE]\n    build: ./server\n",
        );
        let mut options = options(dir.path());
        options
            .environment
            .insert("FROM_SHELL".into(), "yes".into());
        options
            .environment
            .insert("HOME".into(), "/home/ann".into());
        let project = load(&options).unwrap();
        let server = &project.file.services["immich-server"];
        assert!(server.env_file.is_empty());
        let env: Vec<(&str, Option<&str>)> = server
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            env,
            [
                ("UPLOAD_LOCATION", Some("./library")),
                ("DB_PASSWORD", Some("other")),
                ("IMMICH_VERSION", Some("v1")),
                ("ONLY_FILE", Some("2")),
                ("FROM_SHELL", Some("yes")),
                ("NOWHERE", None),
            ]
        );
        assert!(!project.environments["immich-server"]
            .iter()
            .any(|v| v.starts_with("NOWHERE")));
        let dir_text = dir.path().display().to_string();
        let sources: Vec<&str> = server
            .volumes
            .iter()
            .filter_map(|v| v.source.as_deref())
            .collect();
        assert_eq!(
            sources,
            [format!("{dir_text}/library").as_str(), "/home/ann/cache"]
        );
        let context = server.build.as_ref().unwrap().context.as_deref();
        assert_eq!(context, Some(format!("{dir_text}/server").as_str()));
    }

    #[test]
    fn extends_includes_and_nested_merge_keys_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("infra")).unwrap();
        // docs.docker.com's extends and include examples, with
        // getsentry/self-hosted's merge keys.
        write(
            dir.path(),
            "common-services.yml",
            "services:\n  webapp:\n    build: .\n    ports: ['8000:8000']\n    \
             volumes: ['./data:/data']\n    env_file: app.env\n",
        );
        write(dir.path(), "app.env", "APP_MODE=prod\n");
        write(
            &dir.path().join("infra"),
            "compose.yaml",
            "services:\n  redis:\n    image: redis:${REDIS_TAG}\n    volumes: ['./redis-data:/data']\n",
        );
        write(&dir.path().join("infra"), ".env", "REDIS_TAG=7\n");
        write(
            dir.path(),
            "compose.yaml",
            "include: [infra/compose.yaml]\n\
             x-restart: &restart\n  restart: unless-stopped\n\
             x-defaults: &defaults\n  <<: *restart\n  image: sentry\n\
             services:\n  web:\n    <<: *defaults\n    command: echo\n    \
             extends: {file: common-services.yml, service: webapp}\n    depends_on: [redis]\n",
        );
        let project = load(&options(dir.path())).unwrap();
        assert!(project.warnings.is_empty(), "{:?}", project.warnings);
        let kept: Vec<&str> = project
            .file
            .extensions
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(kept, ["x-restart", "x-defaults"]);
        let root = dir.path().display().to_string();
        let web = &project.file.services["web"];
        assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
        assert_eq!(web.image.as_deref(), Some("sentry"));
        assert_eq!(web.ports[0].published.unwrap().to_string(), "8000");
        assert_eq!(web.environment["APP_MODE"].as_deref(), Some("prod"));
        assert_eq!(
            web.volumes[0].source.as_deref(),
            Some(format!("{root}/data").as_str())
        );
        let redis = &project.file.services["redis"];
        assert_eq!(redis.image.as_deref(), Some("redis:7"));
        assert_eq!(
            redis.volumes[0].source.as_deref(),
            Some(format!("{root}/infra/redis-data").as_str())
        );
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
