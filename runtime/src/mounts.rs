//! A new container's mounts, as Docker settles them at create: paths
//! checked, missing bind sources made (for `-v`), volumes made on first
//! use (a fresh anonymous one for each `-v /path` and image `VOLUME`), the
//! mounts of `--volumes-from` containers taken over.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use anyhow::{Context, Result};

use crate::container::{self, Mount, MountSource};
use crate::error::Error;
use crate::root::StateRoot;
use crate::volume::VolumeStore;

/// A container's mounts, ready to record; the anonymous volumes made for
/// it, to remove if the container is not made after all.
pub(crate) struct Settled {
    pub mounts: Vec<Mount>,
    pub made_volumes: Vec<String>,
}

/// Settles `requested` (a volume with an empty name is a new anonymous
/// one), then the mounts of the `volumes_from` containers (read-only where
/// asked), then an anonymous volume for each of `image_volumes` no mount
/// covers.
pub(crate) fn settle(
    root: &StateRoot,
    requested: &[Mount],
    volumes_from: &[(String, bool)],
    image_volumes: &[String],
) -> Result<Settled> {
    let mut settled = Settled {
        mounts: Vec::new(),
        made_volumes: Vec::new(),
    };
    let result = settle_into(root, requested, volumes_from, image_volumes, &mut settled);
    if result.is_err() {
        let store = VolumeStore::open(root);
        for name in &settled.made_volumes {
            let _ = store.remove(name);
        }
    }
    result.map(|()| settled)
}

fn settle_into(
    root: &StateRoot,
    requested: &[Mount],
    volumes_from: &[(String, bool)],
    image_volumes: &[String],
    settled: &mut Settled,
) -> Result<()> {
    check_mounts(requested)?;
    let volumes = VolumeStore::open(root);
    for mount in requested {
        let source = match &mount.source {
            MountSource::Bind { path, create } => {
                check_bind_source(path, *create)?;
                mount.source.clone()
            }
            MountSource::Volume {
                name,
                copy,
                subpath,
            } => {
                let name = (!name.is_empty()).then_some(name.as_str());
                let (volume, made) =
                    volumes.get_or_create(name, BTreeMap::new(), BTreeMap::new())?;
                if made && volume.anonymous {
                    settled.made_volumes.push(volume.name.clone());
                }
                MountSource::Volume {
                    name: volume.name,
                    copy: *copy,
                    subpath: subpath.clone(),
                }
            }
            MountSource::Tmpfs { .. } => mount.source.clone(),
        };
        add(
            settled,
            Mount {
                source,
                ..mount.clone()
            },
        )?;
    }
    for (name, read_only) in volumes_from {
        let other = container::find(root, name).map_err(|err| match Error::from(err) {
            Error::NoSuchContainer(_) => {
                Error::invalid(format!("--volumes-from {name}: no such container"))
            }
            err => err,
        })?;
        for mount in &other.config.boot.mounts {
            if matches!(mount.source, MountSource::Tmpfs { .. }) {
                continue;
            }
            add(
                settled,
                Mount {
                    read_only: mount.read_only || *read_only,
                    ..mount.clone()
                },
            )?;
        }
    }
    for target in image_volumes {
        if settled
            .mounts
            .iter()
            .any(|mount| same_target(&mount.target, target))
        {
            continue;
        }
        let (volume, _) = volumes.get_or_create(None, BTreeMap::new(), BTreeMap::new())?;
        settled.made_volumes.push(volume.name.clone());
        add(
            settled,
            Mount {
                target: target.clone(),
                source: MountSource::Volume {
                    name: volume.name,
                    copy: true,
                    subpath: None,
                },
                read_only: false,
            },
        )?;
    }
    Ok(())
}

/// Adds `mount`, refusing a second mount at the same place.
fn add(settled: &mut Settled, mount: Mount) -> Result<()> {
    let target = normalized(&mount.target);
    if settled
        .mounts
        .iter()
        .any(|m| normalized(&m.target) == target)
    {
        return Err(Error::invalid(format!("duplicate mount point: {target}")).into());
    }
    settled.mounts.push(mount);
    Ok(())
}

/// Refuses what is wrong in `requested` mounts themselves, as a front end
/// can ask before it pulls an image or makes anything: a target that is
/// not an absolute path other than the root, two mounts at one place.
pub fn check_mounts(requested: &[Mount]) -> Result<()> {
    let mut targets = BTreeSet::new();
    for mount in requested {
        check_target(&mount.target)?;
        if let MountSource::Volume {
            subpath: Some(subpath),
            ..
        } = &mount.source
        {
            check_subpath(subpath)?;
        }
        if !targets.insert(normalized(&mount.target)) {
            return Err(Error::invalid(format!("duplicate mount point: {}", mount.target)).into());
        }
    }
    Ok(())
}

/// Whether two mount targets are the same place (a trailing slash aside).
pub fn same_target(a: &str, b: &str) -> bool {
    normalized(a) == normalized(b)
}

/// `target` without a trailing slash.
fn normalized(target: &str) -> &str {
    match target.len() > 1 {
        true => target.trim_end_matches('/'),
        false => target,
    }
}

/// A mount's target must be an absolute path other than the root.
fn check_target(target: &str) -> Result<()> {
    if !target.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid mount target {target:?}: it must be an absolute path in the container"
        ))
        .into());
    }
    if normalized(target) == "/" {
        return Err(Error::invalid("invalid mount target \"/\": it cannot be the root").into());
    }
    Ok(())
}

/// A volume's subpath must be a relative path that stays in the volume
/// (Docker's rule: no `..`).
fn check_subpath(subpath: &str) -> Result<()> {
    let path = Path::new(subpath);
    let inside = !subpath.is_empty()
        && !subpath.contains('\0')
        && path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
    match inside {
        true => Ok(()),
        false => Err(Error::invalid(format!(
            "invalid volume subpath {subpath:?}: give a relative path in the volume, without \"..\""
        ))
        .into()),
    }
}

/// A bind source must be an absolute host path; a missing one is made
/// (`create`, as `-v` does) or refused (as `--mount type=bind` does).
fn check_bind_source(path: &Path, create: bool) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::invalid(format!(
            "invalid bind source {}: give an absolute host path (e.g. \"$PWD/{}\")",
            path.display(),
            path.display()
        ))
        .into());
    }
    if path.exists() {
        return Ok(());
    }
    if !create {
        return Err(Error::invalid(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            path.display()
        ))
        .into());
    }
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}

/// `--volumes-from CONTAINER[:ro|rw]` (compose's `volumes_from` too): the
/// container and whether read-only.
pub fn parse_volumes_from(value: &str) -> Result<(String, bool), String> {
    match value.split_once(':') {
        None => Ok((value.to_owned(), false)),
        Some((name, "ro")) => Ok((name.to_owned(), true)),
        Some((name, "rw")) => Ok((name.to_owned(), false)),
        Some(_) => Err("expected CONTAINER[:ro|rw]".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_from_name_a_container_and_a_mode() {
        assert_eq!(parse_volumes_from("db:ro").unwrap(), ("db".into(), true));
        assert_eq!(parse_volumes_from("db").unwrap(), ("db".into(), false));
        assert!(parse_volumes_from("db:rx").is_err());
    }

    fn mount(target: &str, source: MountSource) -> Mount {
        Mount {
            target: target.into(),
            source,
            read_only: false,
        }
    }

    #[test]
    fn mounts_are_settled_with_volumes_made_and_sources_checked() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().join("root"));
        let made = dir.path().join("made/here");
        let requested = [
            mount(
                "/data",
                MountSource::Volume {
                    name: "db".into(),
                    copy: true,
                    subpath: None,
                },
            ),
            mount(
                "/cache",
                MountSource::Volume {
                    name: String::new(),
                    copy: true,
                    subpath: None,
                },
            ),
            mount(
                "/src",
                MountSource::Bind {
                    path: made.clone(),
                    create: true,
                },
            ),
        ];
        let settled = settle(&root, &requested, &[], &["/data".into(), "/logs".into()]).unwrap();
        assert!(made.is_dir(), "-v makes a missing host directory");
        let targets: Vec<&str> = settled.mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["/data", "/cache", "/src", "/logs"]);
        // The anonymous ones are for this container alone.
        assert_eq!(settled.made_volumes.len(), 2);
        assert_eq!(VolumeStore::open(&root).list().unwrap().len(), 3);
    }

    #[test]
    fn bad_mounts_are_refused_and_leave_nothing_made() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().join("root"));
        let missing = dir.path().join("missing");
        let anonymous = mount(
            "/a",
            MountSource::Volume {
                name: String::new(),
                copy: true,
                subpath: None,
            },
        );
        for (bad, needle) in [
            (
                mount(
                    "rel",
                    MountSource::Tmpfs {
                        size_bytes: None,
                        mode: None,
                    },
                ),
                "absolute path",
            ),
            (
                mount(
                    "/",
                    MountSource::Tmpfs {
                        size_bytes: None,
                        mode: None,
                    },
                ),
                "root",
            ),
            (
                mount(
                    "/b",
                    MountSource::Bind {
                        path: "data".into(),
                        create: true,
                    },
                ),
                "absolute host path",
            ),
            (
                mount(
                    "/b",
                    MountSource::Bind {
                        path: missing.clone(),
                        create: false,
                    },
                ),
                "does not exist",
            ),
            (
                mount(
                    "/a/",
                    MountSource::Tmpfs {
                        size_bytes: None,
                        mode: None,
                    },
                ),
                "duplicate mount point",
            ),
            (
                mount(
                    "/b",
                    MountSource::Volume {
                        name: "a/b".into(),
                        copy: true,
                        subpath: None,
                    },
                ),
                "invalid characters",
            ),
            (
                mount(
                    "/b",
                    MountSource::Volume {
                        name: "db".into(),
                        copy: true,
                        subpath: Some("pg/../../x".into()),
                    },
                ),
                "invalid volume subpath",
            ),
            (
                mount(
                    "/b",
                    MountSource::Volume {
                        name: "db".into(),
                        copy: true,
                        subpath: Some("/abs".into()),
                    },
                ),
                "invalid volume subpath",
            ),
        ] {
            let err = settle(&root, &[anonymous.clone(), bad], &[], &[])
                .err()
                .unwrap();
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
        assert!(!missing.exists());
        assert!(VolumeStore::open(&root).list().unwrap().is_empty());
    }
}
