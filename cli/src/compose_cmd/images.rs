//! The services' images found in the store, pulled, or built from their
//! `build:` as `hull build` builds, here, on this host, before a command
//! goes to the hull machine, which gets their IDs in its environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hull_builder::tree::dockerfile_ignore_file;
use hull_builder::{BuildOptions, SecretSource, Secrets};
use hull_compose::model::{Build, PullPolicy as ServicePolicy};
use hull_compose::{Compose, ImageNeed, Project, ServiceImage, ServiceImages};
use hull_image::{Image, ImageRef, Store, Stream};

use super::failure::{BuildFailed, PullFailed};
use crate::build_cmd::{build_image, build_registry, ProgressMode};
use crate::image_cmd::{push_image, registry_options};
use crate::run::{image_for_run, PullPolicy};

/// Set for the `hull compose` in the hull machine by the one outside: the
/// images it found or pulled, as JSON.
const RESOLVED_IMAGES_ENV: &str = "HULL_COMPOSE_IMAGES";

/// Which services' images to find, and how.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The services named (none: all active ones).
    pub services: Vec<String>,
    /// Without their dependencies.
    pub no_deps: bool,
    /// `--pull`, over each service's `pull_policy`.
    pub pull: Option<PullPolicy>,
    /// What to do with services that have `build:`.
    pub build: BuildPolicy,
    /// Pull without printing progress (`--quiet-pull`).
    pub quiet_pull: bool,
}

/// `compose build`'s flags, over each service's `build:`.
#[derive(Debug, Clone, Default)]
pub struct BuildFlags {
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `--build-arg`s, over the services' `args:`.
    pub build_args: BTreeMap<String, String>,
}

/// When a service with `build:` has its image built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPolicy {
    /// When it is not in the store (`up`, `run`).
    Missing,
    /// Always (`up --build`, `compose build`).
    Always,
    /// Never: a missing one is an error (`--no-build`).
    Never,
    /// Leave services without `image:` out and pull the rest
    /// (`compose pull`).
    Skip,
}

impl BuildPolicy {
    /// The policy of `--build` and `--no-build`.
    pub fn from_flags(build: bool, no_build: bool) -> BuildPolicy {
        match (build, no_build) {
            (true, _) => BuildPolicy::Always,
            (false, true) => BuildPolicy::Never,
            (false, false) => BuildPolicy::Missing,
        }
    }
}

/// The images `request` needs, found, pulled or built.
pub fn resolve(compose: &Compose, root: &Path, request: &ImageRequest) -> Result<ServiceImages> {
    let services = compose.selected(&request.services, request.no_deps)?;
    let store = Store::open(root)?;
    let mut images = ServiceImages::new();
    for need in compose.image_needs(&services)? {
        let name = need.name.clone();
        let image = match (&need.build, request.build) {
            (Some(_), BuildPolicy::Skip) if !need.named => continue,
            (Some(build), BuildPolicy::Always) => {
                build_service(compose, root, &need, build, &BuildFlags::default())?
            }
            (Some(build), BuildPolicy::Missing) => match store.find(&name)? {
                Some(image) => image,
                None => build_service(compose, root, &need, build, &BuildFlags::default())?,
            },
            (Some(_), BuildPolicy::Never) => store.find(&name)?.with_context(|| {
                format!(
                    "service {}: image {name} is not built (--no-build); \
                     build it with `hull compose build {}`",
                    need.service, need.service
                )
            })?,
            (_, _) => pulled(&store, root, &need, request)?,
        };
        images.insert(
            need.service.clone(),
            ServiceImage {
                name,
                id: image.id.to_string(),
            },
        );
    }
    Ok(images)
}

/// Builds the images of `services` (all active ones if none) that have
/// `build:`, for `compose build`.
pub fn build_services(
    compose: &Compose,
    root: &Path,
    services: &[String],
    flags: &BuildFlags,
) -> Result<()> {
    let services = compose.selected(services, true)?;
    for need in compose.image_needs(&services)? {
        if let Some(build) = &need.build {
            build_service(compose, root, &need, build, flags)?;
        }
    }
    Ok(())
}

/// Pushes the images of `services` (all active ones if none; with their
/// dependencies' if `with_dependencies`) that have `build:` and `image:`,
/// as Compose v2 does; with `ignore_failures`, a failed push is reported
/// and the others still go.
pub fn push_services(
    compose: &Compose,
    root: &Path,
    services: &[String],
    with_dependencies: bool,
    ignore_failures: bool,
    quiet: bool,
) -> Result<()> {
    let services = compose.selected(services, !with_dependencies)?;
    let store = Store::open(root)?;
    let options = registry_options(root, &[])?;
    for need in compose.image_needs(&services)? {
        if need.build.is_none() || !need.named {
            continue;
        }
        let pushed = ImageRef::parse(&need.name)
            .map_err(anyhow::Error::from)
            .and_then(|reference| push_image(&store, &reference, &options, quiet, Stream::Stdout))
            .with_context(|| format!("service {}: cannot push {}", need.service, need.name));
        match (pushed, ignore_failures) {
            (Ok(()), _) => {}
            (Err(err), true) => eprintln!("hull: {err:#}"),
            (Err(err), false) => return Err(err),
        }
    }
    Ok(())
}

/// `need`'s image from the store or its registry.
fn pulled(store: &Store, root: &Path, need: &ImageNeed, request: &ImageRequest) -> Result<Image> {
    let policy = request.pull.unwrap_or(match need.pull_policy {
        ServicePolicy::Always => PullPolicy::Always,
        ServicePolicy::Never => PullPolicy::Never,
        _ => PullPolicy::Missing,
    });
    image_for_run(store, root, &need.name, policy, request.quiet_pull)
        .with_context(|| format!("service {}: image {}", need.service, need.name))
        .map_err(|err| PullFailed(err).into())
}

/// Builds `need`'s image from its `build:` and names it.
fn build_service(
    compose: &Compose,
    root: &Path,
    need: &ImageNeed,
    build: &Build,
    flags: &BuildFlags,
) -> Result<Image> {
    let service = &need.service;
    let context_text = build.context.as_deref().unwrap_or(".");
    if context_text.contains("://") || context_text.starts_with("git@") {
        bail!("service {service}: build context {context_text}: only local directories are built");
    }
    let context = compose.project().directory.join(context_text);
    if !context.is_dir() {
        bail!(
            "service {service}: build context {} is not a directory",
            context.display()
        );
    }
    let dockerfile_path = context.join(build.dockerfile.as_deref().unwrap_or("Dockerfile"));
    let (dockerfile, ignore_file) = match &build.dockerfile_inline {
        Some(text) => (text.clone(), None),
        None => {
            let text = std::fs::read_to_string(&dockerfile_path).with_context(|| {
                format!(
                    "service {service}: cannot read the Dockerfile {}",
                    dockerfile_path.display()
                )
            })?;
            (text, Some(dockerfile_ignore_file(&dockerfile_path)))
        }
    };
    let tag = ImageRef::parse_new_name(&need.name)
        .with_context(|| format!("service {service}: invalid image name {:?}", need.name))?;
    // An argument without a value takes the environment's, if any.
    let mut build_args: BTreeMap<String, String> = build
        .args
        .iter()
        .filter_map(|(key, value)| {
            let value = value.clone().or_else(|| std::env::var(key).ok())?;
            Some((key.clone(), value))
        })
        .collect();
    build_args.extend(flags.build_args.clone());
    let network = match build.network.as_deref() {
        None | Some("default" | "bridge" | "host") => true,
        Some("none") => false,
        Some(other) => bail!("service {service}: build network {other}: use default or none"),
    };
    let secrets =
        build_secrets(compose.project(), build).with_context(|| format!("service {service}"))?;
    let options = BuildOptions {
        root: root.to_owned(),
        context,
        dockerfile,
        ignore_file,
        tags: vec![tag],
        build_args,
        target: build.target.clone(),
        no_cache: build.no_cache || flags.no_cache,
        pull: build.pull || flags.pull,
        labels: BTreeMap::new(),
        network,
        platform: None,
        registry: Some(build_registry(root, ProgressMode::Auto)?),
        secrets,
    };
    eprintln!(" Service {service}  Building");
    let built = build_image(&options, ProgressMode::Auto)
        .with_context(|| format!("service {service}: cannot build its image"))
        .map_err(BuildFailed)?;
    eprintln!(" Service {service}  Built");
    let store = Store::open(root)?;
    store
        .find(&built.id.to_string())?
        .with_context(|| format!("service {service}: the built image {} is gone", built.id))
}

/// The top-level secrets `build.secrets` names, read as `--secret` reads
/// them: each by its `target` as id (default: its name), from its `file:`
/// or the project's variable its `environment:` names.
fn build_secrets(project: &Project, build: &Build) -> Result<Secrets> {
    let given = build
        .secrets
        .iter()
        .map(|used| {
            let name = &used.source;
            let defined = project.file.secrets.get(name).with_context(|| {
                format!("secret {name} is not defined in the top-level secrets")
            })?;
            let source = match (&defined.file, &defined.environment) {
                (Some(file), _) => SecretSource::File(file.into()),
                (None, Some(var)) => SecretSource::Env(var.clone()),
                (None, None) => {
                    bail!("secret {name}: a build takes one with file: or environment:")
                }
            };
            Ok((used.target.clone().unwrap_or_else(|| name.clone()), source))
        })
        .collect::<Result<Vec<_>>>()?;
    Secrets::read(&given, |var| project.variables.get(var).map(OsString::from))
}

/// The images given by the `hull compose` outside the machine, else
/// resolved here.
pub fn resolved(compose: &Compose, root: &Path, request: &ImageRequest) -> Result<ServiceImages> {
    match std::env::var(RESOLVED_IMAGES_ENV) {
        Ok(json) => serde_json::from_str(&json)
            .with_context(|| format!("{RESOLVED_IMAGES_ENV} is not the images' JSON")),
        Err(_) => resolve(compose, root, request),
    }
}

/// `images` as an environment entry for the command in the machine.
pub fn forwarded(images: &ServiceImages) -> Result<String> {
    Ok(format!(
        "{RESOLVED_IMAGES_ENV}={}",
        serde_json::to_string(images)?
    ))
}

#[cfg(test)]
mod tests {
    use hull_compose::LoadOptions;

    use super::*;

    #[test]
    fn build_secrets_come_from_files_and_the_projects_variables_by_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("npmrc"), "from-file").unwrap();
        std::fs::write(dir.path().join(".env"), "GH=from-dotenv\n").unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web:\n    build:\n      context: .\n      \
             secrets: [npmrc, {source: gh, target: token}]\n\
             secrets:\n  npmrc: {file: ./npmrc}\n  gh: {environment: GH}\n  \
             unset: {environment: NOT_SET}\n",
        )
        .unwrap();
        let project = hull_compose::load(&LoadOptions {
            working_dir: dir.path().to_owned(),
            ..LoadOptions::default()
        })
        .unwrap();
        let build = project.file.services["web"].build.clone().unwrap();
        let secrets = build_secrets(&project, &build).unwrap();
        assert_eq!(secrets.get("npmrc"), Some(&b"from-file"[..]));
        assert_eq!(secrets.get("token"), Some(&b"from-dotenv"[..]));
        assert_eq!(secrets.get("gh"), None);
        let unset = Build {
            secrets: vec![hull_compose::model::FileObjectRef {
                source: "unset".into(),
                target: None,
                uid: None,
                gid: None,
                mode: None,
            }],
            ..build
        };
        assert_eq!(
            build_secrets(&project, &unset).unwrap_err().to_string(),
            "secret unset: the environment variable NOT_SET is not set"
        );
    }
}
