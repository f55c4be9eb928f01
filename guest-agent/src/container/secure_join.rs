//! Container paths resolved inside the container's root from outside it,
//! as runc's `securejoin.SecureJoin` resolves mount targets: before the
//! pivot the agent reaches the container's root at a directory of its own,
//! where an image's symbolic link `/data -> /` or `../../..` would lead
//! into the agent's file system. Here every symbolic link on the way is
//! read and resolved as the container would resolve it (absolute targets
//! from the container's root), and `..` never climbs above that root.
//!
//! Nothing untrusted runs in the container yet when the agent resolves a
//! path, so nothing can swap a component for a link between the resolution
//! and its use. (A volume's subpath, which another container may be
//! changing from its own VM, is not resolved here but opened with openat2
//! and mounted from that descriptor: see `mounts`.)

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Most symbolic links followed in one resolution (securejoin's limit);
/// more is a loop (ELOOP).
const MAX_LINKS: usize = 255;

/// `path` (a container path; relative paths are taken from its root) as a
/// path under `root` with every existing component resolved within `root`.
/// Components that do not exist are kept as named, so that the result is
/// where they would be created.
pub fn secure_join(root: &Path, path: &Path) -> io::Result<PathBuf> {
    // Components still to resolve, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            // At the root, `..` is the root itself.
            resolved.pop();
            continue;
        }
        let next = resolved.join(&part);
        let full = root.join(&next);
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(&full)?;
                if target.has_root() {
                    resolved = PathBuf::new();
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => resolved = next,
            // What is missing (or below a file) is taken as named.
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                resolved = next;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(root.join(resolved))
}

/// Pushes the names and `..` of `path` so that its first one is popped
/// first; `.` and the root are dropped.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn join(root: &Path, path: &str) -> PathBuf {
        secure_join(root, Path::new(path)).unwrap()
    }

    #[test]
    fn plain_and_missing_paths_are_joined_as_named() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("var/lib")).unwrap();
        assert_eq!(join(root, "/var/lib"), root.join("var/lib"));
        assert_eq!(join(root, "/var/lib/new/dir"), root.join("var/lib/new/dir"));
        assert_eq!(join(root, "var//./lib/"), root.join("var/lib"));
        assert_eq!(join(root, "/"), root);
        assert_eq!(join(root, ""), root);
    }

    #[test]
    fn dot_dot_never_climbs_above_the_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        assert_eq!(join(root, "/../../etc"), root.join("etc"));
        assert_eq!(join(root, "/a/b/../../../../x"), root.join("x"));
        assert_eq!(join(root, "/a/missing/../b"), root.join("a/b"));
    }

    #[test]
    fn absolute_links_resolve_from_the_container_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("srv/data")).unwrap();
        symlink("/srv/data", root.join("data")).unwrap();
        symlink("/", root.join("escape")).unwrap();
        symlink("/etc/passwd", root.join("passwd")).unwrap();
        assert_eq!(join(root, "/data"), root.join("srv/data"));
        assert_eq!(join(root, "/data/sub"), root.join("srv/data/sub"));
        assert_eq!(join(root, "/escape/etc"), root.join("etc"));
        // A dangling link's target is where the mount point will be made.
        assert_eq!(join(root, "/passwd"), root.join("etc/passwd"));
    }

    #[test]
    fn relative_links_climbing_out_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("var/run")).unwrap();
        symlink("../../../../../tmp", root.join("var/run/out")).unwrap();
        symlink("./run", root.join("var/lnk")).unwrap();
        // From /var, `../run` is /run.
        symlink("../run", root.join("var/up")).unwrap();
        assert_eq!(join(root, "/var/up/out"), root.join("run/out"));
        assert_eq!(join(root, "/var/run/out/x"), root.join("tmp/x"));
        assert_eq!(join(root, "/var/lnk/out"), root.join("tmp"));
        // Links in the middle of a chain resolve from where they are.
        symlink("lnk/out", root.join("var/chain")).unwrap();
        assert_eq!(join(root, "/var/chain/y"), root.join("tmp/y"));
    }

    #[test]
    fn link_loops_are_errors() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let err = secure_join(root, Path::new("/a/x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn a_path_below_a_file_is_taken_as_named() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::write(root.join("file"), "x").unwrap();
        assert_eq!(join(root, "/file/below"), root.join("file/below"));
    }
}
