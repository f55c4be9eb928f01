//! `-v`, `--mount` and `--tmpfs`, read as Docker reads them into the
//! runtime's mounts.

use std::path::PathBuf;

use hull_runtime::units::parse_size_bytes;
use hull_runtime::{parse_volume_name, Mount, MountSource};

/// `-v [SOURCE:]TARGET[:OPTIONS]`: a host path (absolute) or a volume
/// name as the source, none for an anonymous volume; options `ro`, `rw`,
/// `nocopy` (and Docker's `z`, `Z`, `cached`, `delegated`, `consistent`,
/// propagation modes, which change nothing here).
pub fn parse_volume(value: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, options] => (Some(*source), *target, *options),
        _ => return Err("expected [SOURCE:]TARGET[:OPTIONS]".to_owned()),
    };
    let (mut read_only, mut copy) = (false, true);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => copy = false,
            "z" | "Z" | "cached" | "delegated" | "consistent" | "private" | "rprivate"
            | "shared" | "rshared" | "slave" | "rslave" => {}
            _ => return Err(format!("unknown option {option:?}")),
        }
    }
    let source = match source {
        None => MountSource::Volume {
            name: String::new(),
            copy,
            subpath: None,
        },
        Some(path) if path.starts_with('/') => MountSource::Bind {
            path: PathBuf::from(path),
            create: true,
        },
        Some(path) if path.starts_with('.') || path.contains('/') => {
            return Err(format!(
                "{path} is a relative path: give the host path absolute (\"$PWD/{}\")",
                path.trim_start_matches("./")
            ))
        }
        Some(name) => MountSource::Volume {
            name: parse_volume_name(name)?,
            copy,
            subpath: None,
        },
    };
    Ok(Mount {
        target: target.to_owned(),
        source,
        read_only,
    })
}

/// `--mount type=bind|volume|tmpfs,source=,target=,readonly,...`.
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let bad = |why: String| why;
    let (mut kind, mut source, mut target) = ("volume", None, None);
    let (mut read_only, mut copy) = (false, true);
    let (mut size_bytes, mut mode, mut subpath) = (None, None, None);
    for field in value.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((key, val)) => (key, Some(val)),
            None => (field, None),
        };
        let flag = || match val {
            None | Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(bad(format!("{key}={other}: expected true or false"))),
        };
        let given = || val.ok_or_else(|| bad(format!("{key} needs a value")));
        match key {
            "type" => kind = given()?,
            "source" | "src" => source = Some(given()?),
            "target" | "destination" | "dst" => target = Some(given()?),
            "readonly" | "ro" => read_only = flag()?,
            "volume-nocopy" => copy = !flag()?,
            "volume-subpath" => subpath = Some(given()?.to_owned()),
            "tmpfs-size" => size_bytes = Some(parse_size_bytes(given()?).map_err(bad)?),
            "tmpfs-mode" => {
                let octal = given()?;
                mode = Some(
                    u32::from_str_radix(octal, 8)
                        .map_err(|_| bad(format!("tmpfs-mode={octal}: expected an octal mode")))?,
                );
            }
            "bind-propagation" | "consistency" => {}
            "volume-driver" if val == Some("local") => {}
            _ => return Err(bad(format!("unexpected key {key:?}"))),
        }
    }
    let target = target.ok_or_else(|| bad("target is required".into()))?;
    if subpath.is_some() && kind != "volume" {
        return Err(bad(format!(
            "volume-subpath is for volume mounts, not type={kind}"
        )));
    }
    if subpath.is_some() && source.is_none() {
        return Err(bad(
            "volume-subpath needs a named volume (source=NAME): a new anonymous one is empty"
                .into(),
        ));
    }
    let source = match (kind, source) {
        ("bind", Some(path)) if path.starts_with('/') => MountSource::Bind {
            path: PathBuf::from(path),
            create: false,
        },
        ("bind", Some(path)) => return Err(bad(format!("bind source {path} must be absolute"))),
        ("bind", None) => return Err(bad("a bind mount needs a source".into())),
        ("volume", source) => MountSource::Volume {
            name: source
                .map(parse_volume_name)
                .transpose()?
                .unwrap_or_default(),
            copy,
            subpath,
        },
        ("tmpfs", None) => MountSource::Tmpfs { size_bytes, mode },
        ("tmpfs", Some(_)) => return Err(bad("a tmpfs mount takes no source".into())),
        (other, _) => return Err(bad(format!("type {other:?} is not bind, volume or tmpfs"))),
    };
    Ok(Mount {
        target: target.to_owned(),
        source,
        read_only,
    })
}

/// `--tmpfs PATH[:OPTIONS]`: mount(8)'s tmpfs options; `size=` and `mode=`
/// are applied, `ro` too, the others accepted as Docker does.
pub fn parse_tmpfs(value: &str) -> Result<Mount, String> {
    let (target, options) = value.split_once(':').unwrap_or((value, ""));
    let (mut size_bytes, mut mode, mut read_only) = (None, None, false);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", size)) => size_bytes = Some(parse_size_bytes(size)?),
            Some(("mode", octal)) => {
                mode = Some(
                    u32::from_str_radix(octal, 8)
                        .map_err(|_| format!("mode={octal} is not octal"))?,
                );
            }
            None if option == "ro" => read_only = true,
            None if matches!(
                option,
                "rw" | "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev"
            ) => {}
            _ => return Err(format!("unknown option {option:?}")),
        }
    }
    Ok(Mount {
        target: target.to_owned(),
        source: MountSource::Tmpfs { size_bytes, mode },
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_read_as_dockers() {
        let bind = parse_volume("/srv/app:/app:ro").unwrap();
        assert_eq!(bind.target, "/app");
        assert!(bind.read_only);
        assert!(matches!(
            bind.source,
            MountSource::Bind { create: true, .. }
        ));
        let named = parse_volume("data:/var/lib/db:nocopy,z").unwrap();
        assert!(
            matches!(named.source, MountSource::Volume { ref name, copy: false, .. } if name == "data")
        );
        let anonymous = parse_volume("/cache").unwrap();
        assert!(
            matches!(anonymous.source, MountSource::Volume { ref name, copy: true, .. } if name.is_empty())
        );
        for bad in [
            "./src:/app",
            "src/x:/app",
            "data:/db:rx",
            "a:b:c:d",
            "bad name:/x",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_flags_read_as_dockers() {
        let bind = parse_mount("type=bind,src=/etc/hosts,dst=/etc/hosts,readonly").unwrap();
        assert!(bind.read_only);
        assert!(matches!(
            bind.source,
            MountSource::Bind { create: false, .. }
        ));
        let tmpfs = parse_mount("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1700").unwrap();
        assert!(matches!(
            tmpfs.source,
            MountSource::Tmpfs {
                size_bytes: Some(67108864),
                mode: Some(0o1700)
            }
        ));
        let volume = parse_mount("source=data,target=/data,volume-nocopy").unwrap();
        assert!(matches!(
            volume.source,
            MountSource::Volume { copy: false, .. }
        ));
        let part = parse_mount("source=data,target=/db,volume-subpath=pg/data").unwrap();
        assert!(
            matches!(part.source, MountSource::Volume { subpath: Some(ref sub), .. } if sub == "pg/data")
        );
        for bad in [
            "type=bind,target=/x",
            "type=bind,source=rel,target=/x",
            "source=data",
            "type=nfs,target=/x",
            "type=volume,target=/x,color=blue",
            "type=tmpfs,source=x,target=/x",
            "type=bind,source=/srv,target=/x,volume-subpath=a",
            "type=volume,target=/x,volume-subpath=a",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_and_volumes_from_flags() {
        let tmpfs = parse_tmpfs("/tmp:rw,noexec,size=1m,mode=1777").unwrap();
        assert!(matches!(
            tmpfs.source,
            MountSource::Tmpfs {
                size_bytes: Some(1048576),
                mode: Some(0o1777)
            }
        ));
        assert!(parse_tmpfs("/tmp:huge").is_err());
    }
}
