//! The host directories the hull machine may write: the hull root and the
//! settings' shares, each its own writable 9p share mounted over its path
//! in the machine, whose root is the host's root read-only.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// The directories a machine writes, resolved, none inside another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritableShares(Vec<PathBuf>);

impl WritableShares {
    /// What a machine of the hull root `root` started with `settings`
    /// shares writable. A shared directory that no longer exists is left
    /// out (see [`Settings::gone_shares`]).
    pub(crate) fn for_machine(root: &Path, settings: &Settings) -> Result<WritableShares> {
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot resolve the hull root {}", root.display()))?;
        let mut paths = vec![root];
        for share in &settings.shares {
            if let Ok(path) = share.canonicalize() {
                if path.is_dir() {
                    paths.push(path);
                }
            }
        }
        Ok(WritableShares::outermost(paths))
    }

    /// `paths` without those inside another (written through it already),
    /// sorted.
    fn outermost(mut paths: Vec<PathBuf>) -> WritableShares {
        paths.sort();
        paths.dedup();
        let mut kept: Vec<PathBuf> = Vec::new();
        for path in paths {
            // Sorted, so a directory comes right before what is inside it.
            if !kept.last().is_some_and(|outer| path.starts_with(outer)) {
                kept.push(path);
            }
        }
        WritableShares(kept)
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.0
    }

    /// Whether the machine can write `path` (absolute), resolved as the
    /// machine resolves it: through the symbolic links of the host's files,
    /// up to the part that does not exist yet.
    pub fn covers(&self, path: &Path) -> bool {
        let resolved = resolve(path);
        self.0.iter().any(|share| resolved.starts_with(share))
    }
}

/// `path` with `.` and `..` taken out and its longest existing prefix
/// resolved by the file system.
fn resolve(path: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut missing = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            return missing
                .iter()
                .rev()
                .fold(resolved, |path, name| path.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_inside_another_and_gone_ones_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let other = base.join("other");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(other.join("inner")).unwrap();
        let settings = Settings {
            shares: vec![other.join("inner"), other.clone(), base.join("gone")],
            ..Settings::default()
        };
        let shares = WritableShares::for_machine(&root, &settings).unwrap();
        assert_eq!(shares.paths(), [other.clone(), root.clone()]);

        let settings = Settings {
            shares: vec![base.clone()],
            ..Settings::default()
        };
        let shares = WritableShares::for_machine(&root, &settings).unwrap();
        assert_eq!(shares.paths(), [base]);
    }

    #[test]
    fn paths_are_covered_as_the_machine_resolves_them() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let shared = base.join("shared");
        let private = base.join("private");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::create_dir_all(&private).unwrap();
        let shares = WritableShares(vec![shared.clone()]);

        assert!(shares.covers(&shared));
        assert!(shares.covers(&shared.join("not/yet/made")));
        assert!(!shares.covers(&private));
        assert!(!shares.covers(&shared.join("../private/x")));
        assert!(!shares.covers(&base.join("sharedsibling")));
        // A link in a share that leads out of it writes outside.
        std::os::unix::fs::symlink(&private, shared.join("out")).unwrap();
        assert!(!shares.covers(&shared.join("out/file")));
        std::os::unix::fs::symlink(&shared, private.join("in")).unwrap();
        assert!(shares.covers(&private.join("in/file")));
    }
}
