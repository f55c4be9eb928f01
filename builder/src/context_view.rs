//! What `RUN --mount=type=bind` shares of a directory in a tree of files
//! that is no directory on this host: the build context when
//! `.dockerignore` leaves something out (as in BuildKit, the step sees the
//! context it was sent, without the ignored files), or another stage or
//! image (`from=`), whose layers merge. The view is a temporary directory
//! under the hull root holding the directory's files as hard links (copies
//! when they are on another file system), its directories and links as
//! they are, made just before the step runs and removed after it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::copy::{self, CopyOptions, Item, ItemKind, Source};
use crate::tree::{LayerTree, Tree};

/// A view of directory `dir` (a real path in `tree`) in a new directory
/// under `under`, gone when the returned guard drops; with `keep_owner`,
/// its directories, links and copied files owned as in the tree (a linked
/// file is the tree's own, owner and all).
pub fn make(tree: &dyn Tree, dir: &Path, under: &Path, keep_owner: bool) -> Result<TempDir> {
    fs::create_dir_all(under).with_context(|| format!("cannot create {}", under.display()))?;
    let view = tempfile::Builder::new()
        .prefix("bind-")
        .tempdir_in(under)
        .with_context(|| format!("cannot create a directory in {}", under.display()))?;
    // The files a copy of `dir` would take: `.dockerignore` applied.
    let nowhere = LayerTree::new(&[], "the mount");
    let plan = copy::plan(
        tree,
        &[Source::Path(dir.display().to_string())],
        "/",
        &nowhere,
        CopyOptions {
            keep_owner,
            ..CopyOptions::default()
        },
    )?;
    for item in &plan.items {
        let target = view.path().join(&item.dest);
        let made = match &item.kind {
            ItemKind::Dir => {
                fs::create_dir_all(&target).and_then(|()| owner_and_mode(&target, item, keep_owner))
            }
            ItemKind::File { host, .. } => fs::hard_link(host, &target).or_else(|_| {
                fs::copy(host, &target).and_then(|_| owner_and_mode(&target, item, keep_owner))
            }),
            ItemKind::Symlink(link) => {
                std::os::unix::fs::symlink(link, &target).and_then(|()| match keep_owner {
                    true => std::os::unix::fs::lchown(&target, Some(item.uid), Some(item.gid)),
                    false => Ok(()),
                })
            }
            ItemKind::Data(_) | ItemKind::Archive(_) => {
                unreachable!("a directory's plan has no here-documents or archives")
            }
        };
        made.with_context(|| format!("cannot make {} for a bind mount", target.display()))?;
    }
    Ok(view)
}

/// Gives what the view made at `target` `item`'s owner (with
/// `keep_owner`), then its mode: in that order, since a change of owner
/// clears set-id bits.
fn owner_and_mode(target: &Path, item: &Item, keep_owner: bool) -> std::io::Result<()> {
    if keep_owner {
        std::os::unix::fs::lchown(target, Some(item.uid), Some(item.gid))?;
    }
    fs::set_permissions(target, fs::Permissions::from_mode(item.mode))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::tree::ContextTree;

    #[test]
    fn a_view_leaves_out_what_dockerignore_does_and_links_the_rest() {
        let temp = tempfile::tempdir().unwrap();
        let ctx = temp.path().join("ctx");
        fs::create_dir_all(ctx.join("src/secret")).unwrap();
        fs::write(ctx.join("src/app.py"), "app").unwrap();
        fs::write(ctx.join("src/debug.log"), "log").unwrap();
        fs::write(ctx.join("src/secret/key"), "key").unwrap();
        fs::write(ctx.join("src/secret/keep"), "keep").unwrap();
        std::os::unix::fs::symlink("app.py", ctx.join("src/link")).unwrap();
        fs::write(
            ctx.join(".dockerignore"),
            "**/*.log\nsrc/secret\n!src/secret/keep\n",
        )
        .unwrap();
        let context = ContextTree::open(&ctx).unwrap();
        let view = make(&context, Path::new("src"), &temp.path().join("tmp"), false).unwrap();

        let mut found = Vec::new();
        for entry in walk(view.path()) {
            found.push(
                entry
                    .strip_prefix(view.path())
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
        found.sort();
        assert_eq!(found, ["app.py", "link", "secret", "secret/keep"]);
        // A file is the context's own, linked; the view's root is readable.
        let linked = fs::metadata(view.path().join("app.py")).unwrap();
        assert_eq!(
            linked.ino(),
            fs::metadata(ctx.join("src/app.py")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(view.path().join("link")).unwrap(),
            Path::new("app.py")
        );
        let root_mode = fs::metadata(view.path()).unwrap().mode() & 0o777;
        assert_eq!(
            root_mode,
            fs::metadata(ctx.join("src")).unwrap().mode() & 0o777
        );
        let dir = view.path().to_owned();
        drop(view);
        assert!(!dir.exists());
    }

    #[test]
    fn a_view_that_keeps_owners_has_the_trees_owners_and_modes() {
        let temp = tempfile::tempdir().unwrap();
        let ctx = temp.path().join("ctx");
        fs::create_dir_all(ctx.join("home/app/private")).unwrap();
        fs::set_permissions(
            ctx.join("home/app/private"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink("private", ctx.join("home/app/link")).unwrap();
        for path in ["home/app", "home/app/private", "home/app/link"] {
            std::os::unix::fs::lchown(ctx.join(path), Some(1000), Some(1001)).unwrap();
        }
        let context = ContextTree::open(&ctx).unwrap();
        let view = make(&context, Path::new("home"), &temp.path().join("tmp"), true).unwrap();
        for path in ["app", "app/private", "app/link"] {
            let made = fs::symlink_metadata(view.path().join(path)).unwrap();
            assert_eq!((made.uid(), made.gid()), (1000, 1001), "{path}");
        }
        let private = fs::metadata(view.path().join("app/private")).unwrap();
        assert_eq!(private.mode() & 0o777, 0o700);
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut all = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            all.push(path.clone());
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                all.extend(walk(&path));
            }
        }
        all
    }
}
