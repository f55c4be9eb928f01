//! The working directory of a container's main process, created when it is
//! missing, as Docker does for `docker run -w DIR` and an image's
//! `WORKDIR`: the daemon cleans the path lexically and creates it with its
//! missing parents in the container's root, mode 0755, owned by root
//! (moby's `Container.SetupWorkingDirectory`), and runc does the same
//! again inside the container's root after `pivot_root`, as root, before it
//! switches to the process's user (`os.MkdirAll(cwd, 0o755)` in
//! `prepareRootfs`). A path component that exists but is not a directory
//! fails the start. `docker exec -w DIR` creates nothing: a missing
//! directory fails the exec.

use std::fmt;
use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

pub use hull_protocol::container_path::clean;

/// Permission bits of the directories created, whatever the umask.
pub const MODE: u32 = 0o755;

/// The setgid bit, which a directory created in a setgid directory inherits.
const SETGID: u32 = 0o2000;

/// Why the working directory could not be created. Paths are the
/// container's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// `at` exists and is neither a directory nor a link to one.
    NotADirectory { at: PathBuf },
    /// A system call on `at` failed.
    Failed {
        call: &'static str,
        at: PathBuf,
        errno: Errno,
    },
}

impl CreateError {
    /// The error number the failure amounts to.
    pub fn errno(&self) -> Errno {
        match self {
            CreateError::NotADirectory { .. } => Errno::ENOTDIR,
            CreateError::Failed { errno, .. } => *errno,
        }
    }
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::NotADirectory { at } => {
                write!(f, "{} exists and is not a directory", at.display())
            }
            CreateError::Failed { call, at, errno } => {
                write!(f, "{call} {}: {}", at.display(), errno.desc())
            }
        }
    }
}

/// Creates the directory `cwd` (taken as [`clean`] takes it) and each of its
/// missing parents inside the root file system at `root`, mode [`MODE`],
/// owned by the caller; directories that exist are left as they are.
/// Symbolic links on the way are followed: the agent calls this with `root`
/// "/" from inside the container's root, where they resolve within it.
pub fn create_missing(root: &Path, cwd: &Path) -> Result<(), CreateError> {
    let cwd = clean(cwd);
    let mut inside = PathBuf::from("/");
    for component in cwd.components().skip(1) {
        inside.push(component);
        let path = root.join(inside.strip_prefix("/").unwrap_or(&inside));
        let failed = |call, err: io::Error| CreateError::Failed {
            call,
            at: inside.clone(),
            errno: errno_of(&err),
        };
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => return Err(CreateError::NotADirectory { at: inside }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(failed("stat", err)),
        }
        match DirBuilder::new().mode(MODE).create(&path) {
            Ok(()) => set_mode(&path).map_err(|err| failed("chmod", err))?,
            // Made by someone else meanwhile; a dangling link stays an error.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(err) => return Err(failed("mkdir", err)),
        }
    }
    Ok(())
}

/// Gives the directory at `path`, just created, [`MODE`] whatever the
/// umask, keeping the setgid bit mkdir(2) gives it in a setgid directory.
fn set_mode(path: &Path) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let wanted = MODE | (mode & SETGID);
    if mode != wanted {
        fs::set_permissions(path, Permissions::from_mode(wanted))?;
    }
    Ok(())
}

fn errno_of(err: &io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_missing_chain_is_created_0755_and_owned_by_the_caller() {
        let root = tempfile::tempdir().unwrap();
        create_missing(root.path(), Path::new("/new/dir/deeper")).unwrap();
        for dir in ["new", "new/dir", "new/dir/deeper"] {
            let path = root.path().join(dir);
            assert!(path.is_dir(), "{dir}");
            assert_eq!(mode(&path), 0o755, "{dir}");
            let owner = fs::metadata(&path).unwrap();
            assert_eq!(
                (owner.uid(), owner.gid()),
                (
                    nix::unistd::geteuid().as_raw(),
                    nix::unistd::getegid().as_raw()
                )
            );
        }
    }

    #[test]
    fn created_directories_get_0755_whatever_the_umask_made_of_them() {
        let root = tempfile::tempdir().unwrap();
        let narrow = root.path().join("narrow");
        DirBuilder::new().mode(0o700).create(&narrow).unwrap();
        set_mode(&narrow).unwrap();
        assert_eq!(mode(&narrow), 0o755);
    }

    #[test]
    fn existing_directories_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let private = root.path().join("private");
        fs::create_dir(&private).unwrap();
        fs::set_permissions(&private, Permissions::from_mode(0o700)).unwrap();
        fs::write(private.join("kept"), "x").unwrap();
        create_missing(root.path(), Path::new("/private/work")).unwrap();
        assert_eq!(mode(&private), 0o700);
        assert_eq!(mode(&private.join("work")), 0o755);
        assert!(private.join("kept").is_file());
        // Nothing to do when the whole chain exists, the root included.
        create_missing(root.path(), Path::new("/private")).unwrap();
        create_missing(root.path(), Path::new("/")).unwrap();
        assert_eq!(mode(&private), 0o700);
    }

    #[test]
    fn dot_dot_is_resolved_before_anything_is_created() {
        let root = tempfile::tempdir().unwrap();
        create_missing(root.path(), Path::new("/a/../b/./c")).unwrap();
        assert!(root.path().join("b/c").is_dir());
        assert!(!root.path().join("a").exists());
        // It cannot climb out of the root either.
        create_missing(root.path(), Path::new("/../../escaped")).unwrap();
        assert!(root.path().join("escaped").is_dir());
    }

    #[test]
    fn a_file_in_the_way_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        for cwd in ["/etc/passwd", "/etc/passwd/sub/dir"] {
            let err = create_missing(root.path(), Path::new(cwd)).unwrap_err();
            assert_eq!(
                err,
                CreateError::NotADirectory {
                    at: "/etc/passwd".into()
                },
                "{cwd}"
            );
            assert_eq!(err.errno(), Errno::ENOTDIR);
            assert_eq!(err.to_string(), "/etc/passwd exists and is not a directory");
        }
        assert!(root.path().join("etc/passwd").is_file());
    }

    #[test]
    fn links_to_directories_are_followed_and_dangling_links_are_errors() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("run")).unwrap();
        fs::create_dir_all(root.path().join("var")).unwrap();
        symlink("../run", root.path().join("var/run")).unwrap();
        create_missing(root.path(), Path::new("/var/run/app")).unwrap();
        assert!(root.path().join("run/app").is_dir());

        symlink("nowhere", root.path().join("dangling")).unwrap();
        let err = create_missing(root.path(), Path::new("/dangling/dir")).unwrap_err();
        assert_eq!(
            err,
            CreateError::Failed {
                call: "mkdir",
                at: "/dangling".into(),
                errno: Errno::EEXIST
            }
        );
        assert_eq!(err.to_string(), "mkdir /dangling: File exists");
    }

    #[test]
    fn other_failures_name_the_directory_and_keep_their_errno() {
        let root = tempfile::tempdir().unwrap();
        let long = "x".repeat(300);
        let err = create_missing(root.path(), &Path::new("/a").join(&long)).unwrap_err();
        assert_eq!(
            err,
            CreateError::Failed {
                call: "stat",
                at: Path::new("/a").join(&long),
                errno: Errno::ENAMETOOLONG
            }
        );
        assert!(root.path().join("a").is_dir());
    }

    #[test]
    fn failures_of_mkdir_name_the_directory_and_keep_their_errno() {
        if nix::unistd::geteuid().is_root() {
            // Root writes into read-only directories anyway.
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let locked = root.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, Permissions::from_mode(0o555)).unwrap();
        let err = create_missing(root.path(), Path::new("/locked/dir")).unwrap_err();
        assert_eq!(err.errno(), Errno::EACCES);
        assert_eq!(err.to_string(), "mkdir /locked/dir: Permission denied");
    }
}
