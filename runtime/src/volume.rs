//! Volumes: directories under the state root that containers mount, named
//! (`-v data:/var/lib/db`) or anonymous (`-v /var/lib/db`, an image's
//! `VOLUME`), and kept when containers go unless removed with them.
//!
//! Each lives in `<root>/volumes/<name>/`: `volume.json` (what it is) and
//! `_data/` (what containers see), as Docker lays them out; or, bound to a
//! host directory of the user's (Docker's local driver options), only
//! `volume.json`: containers see that directory, which is never removed.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::events::{self, EventType};
use crate::fsutil::{lock_file, write_atomically};
use crate::root::{new_id, StateRoot};
use crate::timestamp::now;

/// A volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its name: given, or 64 hex digits for an anonymous one.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// Its labels (`volume create --label`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's `VOLUME`), and
    /// removed with it by `rm -v` and `run --rm`.
    #[serde(default)]
    pub anonymous: bool,
    /// Docker's local driver options it was made with (`volume create -o`,
    /// compose's `driver_opts`): `type=none,o=bind,device=PATH` makes it a
    /// host directory of the user's ([`bound_directory`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Where its files are on the host.
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

/// Whether a volume of `name` is anonymous: named by 64 hex digits, as
/// `-v /path` and an image's `VOLUME` make them.
pub fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())
}

/// The host directory Docker's local driver `options` bind
/// (`type=none,o=bind,device=PATH`); none for no options. Other options are
/// refused: a volume here is a host directory each VM shares, not a file
/// system mounted on the host.
pub fn bound_directory(options: &BTreeMap<String, String>) -> Result<Option<PathBuf>, String> {
    if options.is_empty() {
        return Ok(None);
    }
    if let Some(key) = options
        .keys()
        .find(|key| !matches!(key.as_str(), "type" | "o" | "device"))
    {
        return Err(format!(
            "volume option {key}: the local driver takes type, o and device"
        ));
    }
    let kind = options.get("type").map_or("", String::as_str);
    let flags: Vec<&str> = options
        .get("o")
        .map(|o| {
            o.split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let binds = flags.iter().any(|flag| matches!(*flag, "bind" | "rbind"));
    if !matches!(kind, "none" | "") || !binds {
        return Err(format!(
            "volume options type={kind} o={}: a volume here is a host directory each \
             container's VM shares; bind one with type=none,o=bind,device=/PATH (for a \
             tmpfs, use --tmpfs or --mount type=tmpfs)",
            flags.join(",")
        ));
    }
    if let Some(flag) = flags
        .iter()
        .find(|flag| !matches!(**flag, "bind" | "rbind"))
    {
        return Err(format!(
            "volume option o={flag}: a bound volume takes o=bind only (mount it with :ro to \
             make it read-only)"
        ));
    }
    let Some(device) = options.get("device") else {
        return Err(
            "volume options type=none,o=bind need device=/PATH, the host directory to bind".into(),
        );
    };
    let path = PathBuf::from(device);
    if !path.is_absolute() {
        return Err(format!(
            "volume option device={device}: give the host directory's absolute path"
        ));
    }
    Ok(Some(path))
}

/// What a volume's directory is renamed to while it is removed, before
/// its name.
const REMOVING_PREFIX: &str = ".removing-";

/// The longest volume name: its directory, renamed for removal, must still
/// be a file name (255 bytes).
const MAX_VOLUME_NAME_LEN: usize = 255 - REMOVING_PREFIX.len();

/// Checks a volume name as Docker does: a letter or digit, then letters,
/// digits, '_', '.' and '-'; and short enough to be a directory here.
pub fn parse_volume_name(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !chars.as_str().is_empty()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \
             [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ));
    }
    if name.len() > MAX_VOLUME_NAME_LEN {
        return Err(format!(
            "a volume name of {} characters is too long: at most {MAX_VOLUME_NAME_LEN}",
            name.len()
        ));
    }
    Ok(name.to_owned())
}

/// Where volumes are kept.
pub(crate) struct VolumeStore {
    /// The hull root, whose event log says what became of volumes.
    root: PathBuf,
    dir: PathBuf,
}

impl VolumeStore {
    pub fn open(root: &StateRoot) -> VolumeStore {
        VolumeStore {
            root: root.path().to_owned(),
            dir: root.path().join("volumes"),
        }
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where hull keeps the files of the volume `name`, unless it binds a
    /// directory of the user's.
    fn data_dir(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    /// Where the files of the volume `name` are (or would be, made now).
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.get(name)
            .map(|volume| volume.mountpoint)
            .unwrap_or_else(|_| self.data_dir(name))
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        parse_volume_name(name).map_err(|_| Error::NoSuchVolume(name.to_owned()))?;
        let path = self.volume_dir(name).join("volume.json");
        let json = match fs::read(&path) {
            Ok(json) => json,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(Error::NoSuchVolume(name.to_owned()).into())
            }
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let volume: Volume = serde_json::from_slice(&json)
            .with_context(|| format!("volume {name}: {} is corrupt", path.display()))?;
        // Options were checked when it was made; a record changed since to
        // hold others falls back to hull's own directory for it.
        let bound = bound_directory(&volume.options).ok().flatten();
        Ok(Volume {
            mountpoint: bound.unwrap_or_else(|| self.data_dir(name)),
            ..volume
        })
    }

    /// The volume `name`, made now with `labels` and the local driver's
    /// `options` if there is none (`created`: whether it was). An anonymous
    /// volume gets a fresh name when `name` is `None`.
    pub fn get_or_create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let _lock = lock_file(&self.dir.join(".lock"))?;
        let name = match name {
            Some(name) => parse_volume_name(name).map_err(Error::invalid)?,
            None => new_id(),
        };
        match self.get(&name) {
            Ok(volume) => return Ok((volume, false)),
            Err(err) if !matches!(err.downcast_ref(), Some(Error::NoSuchVolume(_))) => {
                return Err(err)
            }
            Err(_) => {}
        }
        let bound = bound_directory(&options).map_err(Error::invalid)?;
        if let Some(dir) = bound.as_ref().filter(|dir| !dir.is_dir()) {
            return Err(Error::invalid(format!(
                "volume option device={}: no such directory on this host; make it first",
                dir.display()
            ))
            .into());
        }
        let dir = self.volume_dir(&name);
        // A bound volume's files are the user's directory: hull keeps only
        // its definition.
        let (mountpoint, made_here) = match bound {
            Some(bound) => (bound, dir.clone()),
            None => (self.data_dir(&name), self.data_dir(&name)),
        };
        fs::create_dir_all(&made_here)
            .with_context(|| format!("cannot create {}", made_here.display()))?;
        let volume = Volume {
            anonymous: is_anonymous(&name),
            name,
            created: now(),
            labels,
            options,
            mountpoint,
        };
        write_atomically(
            &dir.join("volume.json"),
            &serde_json::to_vec_pretty(&volume)?,
        )?;
        self.log(&volume.name, "create");
        Ok((volume, true))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", self.dir.display()))
            }
        };
        let mut volumes = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", self.dir.display()))?;
            // A volume being made has no definition yet; one being removed
            // (renamed to `.removing-NAME`) has no volume's name.
            if !entry.path().join("volume.json").is_file() {
                continue;
            }
            match entry.file_name().to_str().map(parse_volume_name) {
                Some(Ok(name)) => volumes.push(self.get(&name)?),
                _ => continue,
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Deletes the volume `name` and the files hull keeps for it (not a
    /// bound volume's directory, which is the user's). Whether containers use it
    /// is the caller's business.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.get(name)?;
        let dir = self.volume_dir(name);
        // Renamed away first: a half-deleted volume is never found.
        let doomed = self.dir.join(format!("{REMOVING_PREFIX}{name}"));
        fs::rename(&dir, &doomed).with_context(|| format!("cannot remove {}", dir.display()))?;
        self.log(name, "destroy");
        fs::remove_dir_all(&doomed).with_context(|| format!("cannot remove {}", doomed.display()))
    }

    /// Logs `action` of the volume `name`, as Docker's (`driver=local`).
    fn log(&self, name: &str, action: &str) {
        let driver = [("driver", "local")];
        events::object_event(&self.root, EventType::Volume, action, name, &driver);
    }

    /// Bytes of the volume's files, as Docker counts them.
    pub fn size(&self, volume: &Volume) -> u64 {
        match volume.options.is_empty() {
            true => crate::fsutil::content_size(&volume.mountpoint),
            // The user's directory: removing the volume frees none of it.
            false => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(&StateRoot::new(dir.path().to_owned()));
        (dir, store)
    }

    #[test]
    fn volumes_are_made_once_found_listed_and_removed() {
        let (_dir, store) = store();
        let labels = BTreeMap::from([("app".to_owned(), "db".to_owned())]);
        let (made, created) = store
            .get_or_create(Some("data"), labels.clone(), BTreeMap::new())
            .unwrap();
        assert!(created && !made.anonymous && made.mountpoint.is_dir());
        assert!(made.mountpoint.ends_with("volumes/data/_data"));
        let (again, created) = store
            .get_or_create(Some("data"), BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(!created);
        assert_eq!(again.labels, labels);
        let (anonymous, _) = store
            .get_or_create(None, BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(anonymous.anonymous && anonymous.name.len() == 64);
        let names: Vec<String> = store.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names.len(), 2);
        store.remove("data").unwrap();
        let missing = store.get("data").unwrap_err();
        assert!(matches!(
            missing.downcast_ref(),
            Some(Error::NoSuchVolume(_))
        ));
        assert_eq!(store.list().unwrap().len(), 1);
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn bind_options_make_a_volume_of_a_host_directory_left_in_place_on_removal() {
        let (dir, store) = store();
        let host = dir.path().join("srv-data");
        fs::create_dir(&host).unwrap();
        fs::write(host.join("keep"), "mine").unwrap();
        let bind = options(&[
            ("type", "none"),
            ("o", "bind"),
            ("device", host.to_str().unwrap()),
        ]);
        let (made, _) = store
            .get_or_create(Some("bound"), BTreeMap::new(), bind.clone())
            .unwrap();
        assert_eq!(made.mountpoint, host);
        assert_eq!(store.get("bound").unwrap().options, bind);
        assert_eq!(store.mountpoint("bound"), host);
        assert!(!store.volume_dir("bound").join("_data").exists());
        // Removing it frees nothing of the user's directory.
        assert_eq!(store.size(&made), 0);
        store.remove("bound").unwrap();
        assert_eq!(fs::read_to_string(host.join("keep")).unwrap(), "mine");

        // A missing directory is refused, and nothing is made.
        let missing = options(&[("type", "none"), ("o", "bind"), ("device", "/no/such/dir")]);
        let err = store
            .get_or_create(Some("gone"), BTreeMap::new(), missing)
            .unwrap_err();
        assert!(format!("{err:#}").contains("/no/such/dir"), "{err:#}");
        assert!(store.get("gone").is_err());
    }

    #[test]
    fn other_local_driver_options_are_refused_by_name() {
        assert_eq!(bound_directory(&BTreeMap::new()), Ok(None));
        let cases: [(&[(&str, &str)], &str); 6] = [
            (
                &[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=100m")],
                "--tmpfs",
            ),
            (
                &[("type", "nfs"), ("o", "addr=10.0.0.1"), ("device", ":/x")],
                "type=nfs",
            ),
            (&[("type", "none"), ("o", "bind")], "device=/PATH"),
            (
                &[("type", "none"), ("o", "bind,uid=1000"), ("device", "/x")],
                "o=uid=1000",
            ),
            (
                &[("type", "none"), ("o", "bind"), ("device", "rel/dir")],
                "absolute",
            ),
            (&[("size", "1g")], "option size"),
        ];
        for (pairs, needle) in cases {
            let err = bound_directory(&options(pairs)).unwrap_err();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        let rbind = options(&[("type", "none"), ("o", "rbind"), ("device", "/srv")]);
        assert_eq!(bound_directory(&rbind), Ok(Some(PathBuf::from("/srv"))));
    }

    #[test]
    fn volume_names_follow_dockers_rule() {
        for good in ["data", "db_1", "a.b-c"] {
            assert!(parse_volume_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "a/b", "../x", "-x", "a b"] {
            assert!(parse_volume_name(bad).is_err(), "{bad}");
        }
        let (_dir, store) = store();
        assert!(store
            .get_or_create(Some("a/b"), BTreeMap::new(), BTreeMap::new())
            .is_err());
        // The longest name is made and removed again; a longer one is none.
        let longest = "v".repeat(MAX_VOLUME_NAME_LEN);
        store
            .get_or_create(Some(&longest), BTreeMap::new(), BTreeMap::new())
            .unwrap();
        store.remove(&longest).unwrap();
        let longer = "v".repeat(MAX_VOLUME_NAME_LEN + 1);
        assert!(parse_volume_name(&longer).unwrap_err().contains("too long"));
        let err = store.get(&"v".repeat(100_000)).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(Error::NoSuchVolume(_))),
            "{err:#}"
        );
    }

    #[test]
    fn a_volume_half_removed_is_not_listed() {
        let (_dir, store) = store();
        store
            .get_or_create(Some("kept"), BTreeMap::new(), BTreeMap::new())
            .unwrap();
        let doomed = store.dir.join(format!("{REMOVING_PREFIX}gone"));
        fs::create_dir_all(&doomed).unwrap();
        fs::write(doomed.join("volume.json"), "{}").unwrap();
        let names: Vec<String> = store.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["kept"]);
    }

    #[test]
    fn sizes_count_hard_links_once_and_a_volume_s_directories_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(crate::fsutil::content_size(dir.path()), 0);
        fs::create_dir(dir.path().join("d")).unwrap();
        let file = dir.path().join("d/f");
        fs::write(&file, vec![1u8; 64 * 1024]).unwrap();
        fs::hard_link(&file, dir.path().join("g")).unwrap();
        std::os::unix::fs::symlink("d/f", dir.path().join("link")).unwrap();
        let used = crate::fsutil::disk_usage(dir.path());
        assert!((64 * 1024..2 * 64 * 1024).contains(&used), "{used}");
        assert_eq!(crate::fsutil::content_size(dir.path()), 64 * 1024 + 3);
    }
}
