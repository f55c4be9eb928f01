//! Container paths as both ends read them: the host predicts what the
//! agent makes of a path (a mount's target, a working directory) by
//! cleaning it the same way.

use std::path::{Component, Path, PathBuf};

/// `path` as an absolute path with `.`, `..` and repeated slashes resolved
/// lexically, as Go's `filepath.Clean` does (and Docker with it): `..` at
/// the root stays at the root, and an empty path is the root.
pub fn clean(path: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_like_docker_does() {
        for (path, cleaned) in [
            ("/new/dir", "/new/dir"),
            ("/a/./b/../c/", "/a/c"),
            ("//a//b", "/a/b"),
            ("/../../x", "/x"),
            ("relative/dir", "/relative/dir"),
            ("/", "/"),
            ("", "/"),
        ] {
            assert_eq!(clean(Path::new(path)), Path::new(cleaned), "{path:?}");
        }
    }
}
