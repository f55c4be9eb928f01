//! File trees a build reads: the build context (a host directory less what
//! `.dockerignore` leaves out) and the merged view of a stage's or image's
//! unpacked layers (whiteouts and opaque directories applied). In both,
//! symbolic links resolve inside the tree as if it were the root, as
//! BuildKit resolves them (continuity's `RootPath`): an absolute target
//! starts from the tree's root and `..` stops there, so nothing outside
//! the context is ever read.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::pattern::{match_component, IgnoreRules};

/// How many symbolic links a path may pass through, as Linux allows.
const MAX_LINKS: usize = 40;
const OPAQUE_XATTRS: [&str; 2] = ["user.overlay.opaque", "trusted.overlay.opaque"];

/// A file of a tree: where it is on this host and what it is.
#[derive(Debug, Clone)]
pub struct Found {
    pub host: PathBuf,
    pub metadata: Metadata,
}

/// A tree of files, addressed by relative paths.
pub trait Tree {
    /// The entry at `path` itself (a link not followed), if any.
    fn entry(&self, path: &Path) -> Result<Option<Found>>;
    /// The names in directory `path`, sorted.
    fn list(&self, path: &Path) -> Result<Vec<OsString>>;
    /// Whether a path written to climb above the root (`COPY ../x`) is an
    /// error (the build context) rather than stopping at the root (an
    /// image).
    fn refuses_climbing(&self) -> bool;
    /// What the tree is, for errors.
    fn describe(&self) -> String;
}

/// The ignore file of the Dockerfile at `dockerfile`: `NAME.dockerignore`
/// beside it, which BuildKit takes over the context's `.dockerignore`.
pub fn dockerfile_ignore_file(dockerfile: &Path) -> PathBuf {
    let mut name = dockerfile.as_os_str().to_owned();
    name.push(".dockerignore");
    PathBuf::from(name)
}

/// The build context: a directory and its `.dockerignore`.
#[derive(Clone)]
pub struct ContextTree {
    root: PathBuf,
    ignore: IgnoreRules,
}

impl ContextTree {
    /// The context at `root`, with the `.dockerignore` found there.
    pub fn open(root: &Path) -> Result<ContextTree> {
        ContextTree::open_with(root, None)
    }

    /// The context at `root`, with `ignore_file` if it exists (a
    /// Dockerfile's own, as BuildKit takes it), else the `.dockerignore`
    /// found there.
    pub fn open_with(root: &Path, ignore_file: Option<&Path>) -> Result<ContextTree> {
        let root = root
            .canonicalize()
            .with_context(|| format!("build context {}", root.display()))?;
        if !root.is_dir() {
            bail!("build context {} is not a directory", root.display());
        }
        let context_file = root.join(".dockerignore");
        let file = ignore_file
            .filter(|file| file.is_file())
            .unwrap_or(&context_file);
        let ignore = match fs::read_to_string(file) {
            Ok(text) => IgnoreRules::parse(&text)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", file.display())),
        };
        Ok(ContextTree { root, ignore })
    }

    /// The context's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `.dockerignore` leaves anything out.
    pub fn ignores_anything(&self) -> bool {
        !self.ignore.is_empty()
    }

    fn ignored(&self, path: &Path) -> bool {
        self.ignore.ignores(&path.to_string_lossy())
    }
}

impl Tree for ContextTree {
    fn entry(&self, path: &Path) -> Result<Option<Found>> {
        if path.as_os_str().is_empty() {
            let metadata = fs::symlink_metadata(&self.root)?;
            return Ok(Some(Found {
                host: self.root.clone(),
                metadata,
            }));
        }
        let host = self.root.join(path);
        match fs::symlink_metadata(&host) {
            // An ignored directory stays if a `!` pattern may let in
            // something below it.
            Ok(metadata)
                if self.ignored(path)
                    && !(metadata.is_dir()
                        && self.ignore.may_let_in_below(&path.to_string_lossy())) =>
            {
                Ok(None)
            }
            Ok(metadata) => Ok(Some(Found { host, metadata })),
            Err(err) if missing(&err) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", host.display())),
        }
    }

    fn list(&self, path: &Path) -> Result<Vec<OsString>> {
        let dir = self.root.join(path);
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            let child = path.join(&name);
            // The entry's own type: a link is not followed.
            let keep = !self.ignored(&child)
                || (entry.file_type()?.is_dir()
                    && self.ignore.may_let_in_below(&child.to_string_lossy()));
            if keep {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn refuses_climbing(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "the build context".into()
    }
}

/// The merged view of unpacked layers (overlayfs format, as the store
/// keeps them).
#[derive(Clone)]
pub struct LayerTree {
    /// Top first.
    layers: Vec<PathBuf>,
    what: String,
}

impl LayerTree {
    /// The view of `layers`, bottom first; `what` names it in errors.
    pub fn new(layers: &[PathBuf], what: &str) -> LayerTree {
        LayerTree {
            layers: layers.iter().rev().cloned().collect(),
            what: what.to_owned(),
        }
    }

    /// Whether `path` is visible in layer `layer` and the ones above it
    /// let it through: `Hidden` if something above deletes or covers it.
    fn layer_entry(&self, layer: &Path, path: &Path) -> Result<LayerLookup> {
        let mut current = layer.to_owned();
        let components: Vec<_> = path.components().collect();
        let mut opaque = false;
        for (index, component) in components.iter().enumerate() {
            current.push(component);
            let metadata = match fs::symlink_metadata(&current) {
                Ok(metadata) => metadata,
                Err(err) if missing(&err) => return Ok(LayerLookup::Absent { opaque }),
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot read {}", current.display()))
                }
            };
            if is_whiteout(&metadata) {
                return Ok(LayerLookup::Hidden);
            }
            if index + 1 == components.len() {
                return Ok(LayerLookup::Found(Found {
                    host: current,
                    metadata,
                }));
            }
            if !metadata.is_dir() {
                return Ok(LayerLookup::Hidden);
            }
            opaque |= is_opaque(&current);
        }
        Ok(LayerLookup::Absent { opaque })
    }
}

enum LayerLookup {
    Found(Found),
    /// Deleted or covered here: no layer below counts.
    Hidden,
    /// Not here; with `opaque`, a directory above it here hides the layers
    /// below.
    Absent {
        opaque: bool,
    },
}

impl Tree for LayerTree {
    fn entry(&self, path: &Path) -> Result<Option<Found>> {
        for layer in &self.layers {
            if path.as_os_str().is_empty() {
                let metadata = fs::symlink_metadata(layer)?;
                return Ok(Some(Found {
                    host: layer.clone(),
                    metadata,
                }));
            }
            match self.layer_entry(layer, path)? {
                LayerLookup::Found(found) => return Ok(Some(found)),
                LayerLookup::Hidden | LayerLookup::Absent { opaque: true } => return Ok(None),
                LayerLookup::Absent { opaque: false } => {}
            }
        }
        Ok(None)
    }

    fn list(&self, path: &Path) -> Result<Vec<OsString>> {
        let mut seen = std::collections::BTreeMap::new();
        for layer in &self.layers {
            let dir = match path.as_os_str().is_empty() {
                true => Some(layer.clone()),
                false => match self.layer_entry(layer, path)? {
                    LayerLookup::Found(found) if found.metadata.is_dir() => Some(found.host),
                    LayerLookup::Found(_) | LayerLookup::Hidden => break,
                    LayerLookup::Absent { opaque: true } => break,
                    LayerLookup::Absent { opaque: false } => None,
                },
            };
            let Some(dir) = dir else { continue };
            for entry in
                fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
            {
                let entry = entry?;
                let metadata = entry.metadata()?;
                seen.entry(entry.file_name())
                    .or_insert(!is_whiteout(&metadata));
            }
            if !path.as_os_str().is_empty() && is_opaque(&dir) {
                break;
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|(name, visible)| visible.then_some(name))
            .collect())
    }

    fn refuses_climbing(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

fn missing(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

fn is_whiteout(metadata: &Metadata) -> bool {
    metadata.file_type().is_char_device() && metadata.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| {
        let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        let c_name = std::ffi::CString::new(*name).expect("no NUL");
        let mut value = [0u8; 4];
        // SAFETY: NUL-terminated strings and a buffer of `value.len()` bytes.
        let len = unsafe {
            libc::lgetxattr(
                c_path.as_ptr(),
                c_name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        len == 1 && value[0] == b'y'
    })
}

/// A path as the user wrote it, relative to the tree's root: `/` and `.`
/// dropped, `..` applied. Going above the root is an error in the build
/// context, and stays at the root otherwise.
pub fn clean(tree: &dyn Tree, path: &str) -> Result<PathBuf> {
    let mut clean = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir if !clean.pop() && tree.refuses_climbing() => bail!(
                "{path}: the path is outside {}; only files inside it can be copied",
                tree.describe()
            ),
            _ => {}
        }
    }
    Ok(clean)
}

/// Resolves `path` (cleaned, relative) through the symbolic links on the
/// way, and the last one too with `follow_last`, each inside the tree (an
/// absolute target from its root, `..` stopping there): its real path in
/// the tree and what is there, or `None` if nothing is.
pub fn resolve(
    tree: &dyn Tree,
    path: &Path,
    follow_last: bool,
) -> Result<Option<(PathBuf, Found)>> {
    let mut pending: Vec<OsString> = path
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut current = PathBuf::new();
    let mut links = 0;
    // An empty tree (`FROM scratch`) has no root either.
    let mut found = tree.entry(&current)?;
    while let Some(name) = pending.pop() {
        if name == ".." {
            current.pop();
            found = tree.entry(&current)?;
            continue;
        }
        let candidate = current.join(&name);
        let Some(entry) = tree.entry(&candidate)? else {
            return Ok(None);
        };
        let last = pending.is_empty();
        if entry.metadata.is_symlink() && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                bail!("{}: too many levels of symbolic links", path.display());
            }
            let target = fs::read_link(&entry.host)
                .with_context(|| format!("cannot read {}", entry.host.display()))?;
            if target.is_absolute() {
                current = PathBuf::new();
                found = tree.entry(&current)?;
            }
            pending.extend(target.components().rev().filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_owned()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            }));
            continue;
        }
        current = candidate;
        found = Some(entry);
    }
    Ok(found.map(|found| (current, found)))
}

/// Whether `pattern` has glob characters.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The real paths `pattern` (cleaned, relative) matches in the tree,
/// sorted; each component may be a glob.
pub fn glob(tree: &dyn Tree, pattern: &Path) -> Result<Vec<PathBuf>> {
    let mut matches = vec![PathBuf::new()];
    for component in pattern.components() {
        let component = component.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for base in matches {
            if !is_glob(&component) {
                next.push(base.join(&component));
                continue;
            }
            let Some((dir, found)) = resolve(tree, &base, true)? else {
                continue;
            };
            if !found.metadata.is_dir() {
                continue;
            }
            for name in tree.list(&dir)? {
                if match_component(&component, &name.to_string_lossy())? {
                    next.push(dir.join(name));
                }
            }
        }
        matches = next;
    }
    let mut existing = Vec::new();
    for path in matches {
        // Resolved, not looked up as it is: a link on the way is followed
        // inside the tree.
        if resolve(tree, &path, false)?.is_some() {
            existing.push(path);
        }
    }
    existing.sort();
    existing.dedup();
    Ok(existing)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use nix_like::mknod_whiteout;

    use super::*;

    mod nix_like {
        use std::ffi::CString;
        use std::path::Path;

        pub fn mknod_whiteout(path: &Path) {
            let c_path = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path.
            let made = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR, 0) };
            assert_eq!(made, 0, "{}", std::io::Error::last_os_error());
        }
    }

    #[test]
    fn a_dockerfiles_own_ignore_file_takes_the_place_of_the_contexts() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        fs::create_dir_all(root.join("d2")).unwrap();
        fs::write(root.join(".dockerignore"), "a\n").unwrap();
        let dockerfile = root.join("d2/Dockerfile");
        let own = dockerfile_ignore_file(&dockerfile);
        assert_eq!(own, root.join("d2/Dockerfile.dockerignore"));
        // None beside the Dockerfile: the context's.
        let tree = ContextTree::open_with(root, Some(&own)).unwrap();
        assert!(tree.ignored(Path::new("a")) && !tree.ignored(Path::new("b")));
        fs::write(&own, "b\n").unwrap();
        let tree = ContextTree::open_with(root, Some(&own)).unwrap();
        assert!(!tree.ignored(Path::new("a")) && tree.ignored(Path::new("b")));
    }

    #[test]
    fn the_context_refuses_climbing_paths_and_resolves_links_inside_itself() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("ctx");
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(root.join("src/app.py"), "x").unwrap();
        fs::write(temp.path().join("secret"), "outside").unwrap();
        fs::create_dir_all(temp.path().join("etc")).unwrap();
        fs::write(temp.path().join("etc/passwd"), "outside").unwrap();
        symlink("../secret", root.join("out")).unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        symlink("../../../src", root.join("src/up")).unwrap();
        symlink("src", root.join("inside")).unwrap();
        fs::write(root.join(".dockerignore"), "*.log\n").unwrap();
        fs::write(root.join("debug.log"), "l").unwrap();
        let tree = ContextTree::open(&root).unwrap();

        assert!(clean(&tree, "../secret")
            .unwrap_err()
            .to_string()
            .contains("outside the build context"));
        // Links that climb out stop at the context's root, as BuildKit
        // resolves them: ../secret is the context's secret (none yet),
        // /etc/passwd the context's etc/passwd.
        assert!(resolve(&tree, Path::new("out"), true).unwrap().is_none());
        assert!(resolve(&tree, Path::new("abs"), true).unwrap().is_none());
        fs::write(root.join("secret"), "inside").unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "inside").unwrap();
        for (link, real) in [("out", "secret"), ("abs", "etc/passwd")] {
            let (path, found) = resolve(&tree, Path::new(link), true).unwrap().unwrap();
            assert_eq!(path, Path::new(real));
            assert_eq!(fs::read_to_string(found.host).unwrap(), "inside");
        }
        let (path, _) = resolve(&tree, Path::new("src/up/app.py"), true)
            .unwrap()
            .unwrap();
        assert_eq!(path, Path::new("src/app.py"));
        // Not followed when the last component is what is asked for.
        let (path, found) = resolve(&tree, Path::new("out"), false).unwrap().unwrap();
        assert_eq!(path, Path::new("out"));
        assert!(found.metadata.is_symlink());
        let (path, _) = resolve(&tree, Path::new("inside/app.py"), true)
            .unwrap()
            .unwrap();
        assert_eq!(path, Path::new("src/app.py"));
        assert!(resolve(&tree, Path::new("debug.log"), true)
            .unwrap()
            .is_none());
        assert_eq!(
            glob(&tree, Path::new("src/*.py")).unwrap(),
            [PathBuf::from("src/app.py")]
        );
        assert!(glob(&tree, Path::new("*.log")).unwrap().is_empty());
    }

    #[test]
    fn layers_merge_with_whiteouts_opaque_directories_and_scoped_links() {
        let temp = tempfile::tempdir().unwrap();
        let (bottom, top) = (temp.path().join("bottom"), temp.path().join("top"));
        fs::create_dir_all(bottom.join("app/old")).unwrap();
        fs::write(bottom.join("app/a"), "a").unwrap();
        fs::write(bottom.join("app/gone"), "g").unwrap();
        fs::write(bottom.join("app/old/x"), "x").unwrap();
        symlink("/app", bottom.join("link")).unwrap();
        fs::create_dir_all(top.join("app/old")).unwrap();
        fs::write(top.join("app/b"), "b").unwrap();
        mknod_whiteout(&top.join("app/gone"));
        let c_path =
            std::ffi::CString::new(top.join("app/old").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: NUL-terminated strings and a one-byte value.
        let set = unsafe {
            libc::lsetxattr(
                c_path.as_ptr(),
                c"user.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(set, 0);
        let tree = LayerTree::new(&[bottom, top], "stage builder");
        assert_eq!(tree.list(Path::new("app")).unwrap(), ["a", "b", "old"]);
        assert!(tree.entry(Path::new("app/gone")).unwrap().is_none());
        assert!(tree.list(Path::new("app/old")).unwrap().is_empty());
        assert!(tree.entry(Path::new("app/old/x")).unwrap().is_none());
        let (path, found) = resolve(&tree, Path::new("link/a"), true).unwrap().unwrap();
        assert_eq!(path, Path::new("app/a"));
        assert_eq!(fs::read_to_string(found.host).unwrap(), "a");
    }
}
