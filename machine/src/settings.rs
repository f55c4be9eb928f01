//! The machine's size, idle timeout and writable host paths (`hull machine
//! set`), kept in `<root>/machine/settings.json` and applied when it starts.

use std::env;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use hull_runtime::fsutil::write_atomically;

/// Host paths shared writable with the machine unless `hull machine set`
/// changes the list: besides the user's home, these.
const DEFAULT_SHARES: [&str; 2] = ["/tmp", "/var/tmp"];

/// The machine's size, idle timeout and writable host paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory.
    pub memory_mib: u64,
    /// How long the machine stays up with no container running and no
    /// command using it; 0: forever.
    pub idle_timeout_secs: u64,
    /// The host directories the machine may write besides the hull root
    /// (the rest of the host it reads only), as Docker Desktop's file
    /// sharing. Absent from settings saved before it existed: the defaults.
    #[serde(default = "default_shares")]
    pub shares: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            // One vCPU: see `testhost::vm::DEFAULT_CPUS`.
            cpus: 1,
            memory_mib: 4096,
            idle_timeout_secs: 300,
            shares: default_shares(),
        }
    }
}

/// The user's home (`$HOME`), `/tmp` and `/var/tmp`.
fn default_shares() -> Vec<PathBuf> {
    env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute() && home != Path::new("/"))
        .into_iter()
        .chain(DEFAULT_SHARES.iter().map(PathBuf::from))
        .collect()
}

/// What `hull machine set` changes; `None` and empty lists keep what is.
#[derive(Debug, Default)]
pub struct Changes {
    pub cpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    /// Directories to share writable.
    pub share: Vec<PathBuf>,
    /// Directories to share no longer.
    pub unshare: Vec<PathBuf>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none()
            && self.memory_mib.is_none()
            && self.idle_timeout_secs.is_none()
            && self.share.is_empty()
            && self.unshare.is_empty()
    }
}

impl Settings {
    pub(crate) fn load(layout: &Layout) -> Result<Settings> {
        let path = layout.settings();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is corrupt: fix it or reset it with `hull machine rm`",
                    path.display()
                )
            }),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(Settings::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub(crate) fn save(&self, layout: &Layout) -> Result<()> {
        write_atomically(&layout.settings(), &serde_json::to_vec_pretty(self)?)
    }

    /// How long it stays up idle; `None`: forever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }

    /// The shared directories that are no directories (any more).
    pub(crate) fn gone_shares(&self) -> impl Iterator<Item = &Path> {
        self.shares
            .iter()
            .map(PathBuf::as_path)
            .filter(|share| !share.is_dir())
    }

    /// These settings with `changes` made: a directory to share must
    /// exist; one to unshare must be shared.
    pub(crate) fn changed(mut self, changes: Changes) -> Result<Settings> {
        self.cpus = changes.cpus.unwrap_or(self.cpus);
        self.memory_mib = changes.memory_mib.unwrap_or(self.memory_mib);
        self.idle_timeout_secs = changes.idle_timeout_secs.unwrap_or(self.idle_timeout_secs);
        for path in &changes.unshare {
            let before = self.shares.len();
            let resolved = path.canonicalize().ok();
            self.shares
                .retain(|shared| shared != path && Some(shared) != resolved.as_ref());
            if self.shares.len() == before {
                bail!(
                    "hull machine set --unshare {}: it is not shared (shared: {})",
                    path.display(),
                    list(&self.shares)
                );
            }
        }
        for path in &changes.share {
            let path = shareable(path)?;
            if !self.shares.contains(&path) {
                self.shares.push(path);
            }
        }
        Ok(self)
    }
}

/// `path` resolved, if the machine can share it writable: an existing
/// directory other than `/`, whose path the kernel command line and QEMU's
/// options can carry.
fn shareable(path: &Path) -> Result<PathBuf> {
    let shown = path.display();
    if !path.is_absolute() {
        bail!("hull machine set --share {shown}: give the path absolute");
    }
    let resolved = path
        .canonicalize()
        .with_context(|| format!("hull machine set --share {shown}: cannot resolve it"))?;
    if !resolved.is_dir() {
        bail!("hull machine set --share {shown}: not a directory: share the directory it is in");
    }
    if resolved == Path::new("/") {
        bail!(
            "hull machine set --share {shown}: the host's whole root is never shared writable: \
             share the directories you bind"
        );
    }
    match resolved.to_str() {
        Some(text) if !text.contains(char::is_whitespace) => Ok(resolved),
        _ => bail!(
            "hull machine set --share {shown}: the machine can share only UTF-8 paths without \
             spaces: share a directory above it, or bind it read-only"
        ),
    }
}

/// Paths as a comma-separated list, or `none`.
pub fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".to_owned();
    }
    let shown: Vec<String> = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_until_saved_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert_eq!(Settings::load(&layout).unwrap(), Settings::default());
        let changed = Settings {
            cpus: 2,
            memory_mib: 1024,
            idle_timeout_secs: 0,
            shares: vec![PathBuf::from("/srv")],
        };
        changed.save(&layout).unwrap();
        assert_eq!(Settings::load(&layout).unwrap(), changed);
        assert_eq!(changed.idle_timeout(), None);

        fs::write(layout.settings(), b"{").unwrap();
        let err = Settings::load(&layout).unwrap_err();
        assert!(format!("{err:#}").contains("hull machine rm"), "{err:#}");
    }

    #[test]
    fn settings_saved_before_shares_existed_get_the_default_shares() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        fs::create_dir_all(layout.settings().parent().unwrap()).unwrap();
        fs::write(
            layout.settings(),
            br#"{"cpus": 2, "memory_mib": 1024, "idle_timeout_secs": 5}"#,
        )
        .unwrap();
        let settings = Settings::load(&layout).unwrap();
        assert_eq!(settings.cpus, 2);
        assert_eq!(settings.shares, default_shares());
        assert!(settings.shares.contains(&PathBuf::from("/tmp")));
    }

    #[test]
    fn shares_are_added_resolved_and_removed_by_either_name() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap().join("data");
        fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let none = Settings {
            shares: Vec::new(),
            ..Settings::default()
        };

        let shared = none
            .clone()
            .changed(Changes {
                share: vec![link.clone(), real.clone()],
                ..Changes::default()
            })
            .unwrap();
        assert_eq!(shared.shares, vec![real.clone()]);
        let unshared = shared
            .clone()
            .changed(Changes {
                unshare: vec![link],
                ..Changes::default()
            })
            .unwrap();
        assert!(unshared.shares.is_empty());

        let refuse = |changes: Changes, expected: &str| {
            let err = none.clone().changed(changes).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{err:#}");
        };
        let share = |path: &Path| Changes {
            share: vec![path.to_owned()],
            ..Changes::default()
        };
        refuse(share(Path::new("/")), "whole root");
        refuse(share(Path::new("relative")), "absolute");
        refuse(share(&dir.path().join("missing")), "cannot resolve");
        let file = real.join("file");
        fs::write(&file, b"").unwrap();
        refuse(share(&file), "not a directory");
        let spaced = real.join("a b");
        fs::create_dir(&spaced).unwrap();
        refuse(share(&spaced), "without spaces");
        refuse(
            Changes {
                unshare: vec![real],
                ..Changes::default()
            },
            "not shared",
        );
    }
}
