//! `COPY` and `ADD`: a layer made on this host from the files of a tree
//! (the build context, another stage or an image), placed as Docker
//! places them: a directory's contents into the destination, a file into
//! a destination directory (one ending in `/`, one that exists, or any for
//! several sources) or as the destination, a local tar archive unpacked by
//! `ADD`. What is copied is planned first ([`plan`]): its key names every
//! file's path, kind, owner, mode and content (not times); the layer is
//! written only on a cache miss.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use crate::chmod::Chmod;
use crate::pattern::IgnoreRules;
use crate::tree::{self, Found, LayerTree, Tree};

/// Mode of directories a copy creates.
const NEW_DIR_MODE: u32 = 0o755;

/// How a copy treats what it copies.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `--chown`: the owner of everything copied and made.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`: the mode of everything copied, or how it changes.
    pub mode: Option<Chmod>,
    /// Keep the files' owners (copies from a stage or image; the
    /// context's files become root's).
    pub keep_owner: bool,
    /// `ADD`: local tar archives are unpacked.
    pub unpack_archives: bool,
    /// `--exclude`: what is left out below each source directory, matched
    /// against paths relative to it as `.dockerignore` patterns (BuildKit's
    /// exclude patterns), and a wildcard source's matches, matched against
    /// their paths in the tree.
    pub exclude: IgnoreRules,
    /// `COPY --parents`: each path source is a pattern matched below its
    /// pivot (the part before `/./`, else the root), what matches landing
    /// under the destination at its path from the pivot.
    pub parents: bool,
}

/// One thing a copy writes, at a path relative to the image's root.
#[derive(Debug, Clone)]
pub struct Item {
    pub dest: PathBuf,
    pub kind: ItemKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

#[derive(Debug, Clone)]
pub enum ItemKind {
    Dir,
    File {
        host: PathBuf,
        size: u64,
    },
    Symlink(PathBuf),
    /// Bytes given in the Dockerfile (a here-document).
    Data(Vec<u8>),
    /// A tar archive whose entries go below `dest`.
    Archive(PathBuf),
}

/// What a copy will write.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
}

/// A source of a copy, as resolved.
pub enum Source {
    /// A path (or glob) in the source tree.
    Path(String),
    /// A here-document's contents (already expanded), as the file `name`.
    Inline { name: String, data: Vec<u8> },
    /// A downloaded file (`ADD <url>`) at `host`, as the file `name`:
    /// mode 0600 unless `--chmod`, time `mtime`, never unpacked.
    Remote {
        name: String,
        host: PathBuf,
        size: u64,
        mtime: u64,
    },
}

/// The mode BuildKit gives a downloaded file.
const REMOTE_MODE: u32 = 0o600;

/// Plans copying `sources` from `from` to `dest` (absolute, as expanded)
/// in the image `image`.
pub fn plan(
    from: &dyn Tree,
    sources: &[Source],
    dest: &str,
    image: &LayerTree,
    options: CopyOptions,
) -> Result<Plan> {
    let mut matched: Vec<(PathBuf, Option<Found>, &Source)> = Vec::new();
    let mut with_parents = Vec::new();
    for source in sources {
        match source {
            Source::Path(pattern) if options.parents => with_parents.push(pattern),
            Source::Path(pattern) => {
                let cleaned = tree::clean(from, pattern)?;
                let paths = match tree::is_glob(pattern) {
                    true => tree::glob(from, &cleaned)?,
                    false => vec![cleaned.clone()],
                };
                // As BuildKit: a wildcard that matches nothing copies
                // nothing, but its directory must be there.
                if paths.is_empty() {
                    let parent = cleaned.parent().unwrap_or(Path::new(""));
                    let parent_text = parent.to_string_lossy();
                    if !parent_text.is_empty()
                        && !tree::is_glob(&parent_text)
                        && tree::resolve(from, parent, true)?.is_none()
                    {
                        bail!(
                            "{pattern}: no such file or directory in {}",
                            from.describe()
                        );
                    }
                }
                for path in paths {
                    let Some((_, found)) = tree::resolve(from, &path, true)? else {
                        bail!(
                            "{pattern}: no such file or directory in {}",
                            from.describe()
                        );
                    };
                    if tree::is_glob(pattern) && excludes_match(&options.exclude, &path, &found) {
                        continue;
                    }
                    matched.push((path, Some(found), source));
                }
            }
            Source::Inline { name, .. } | Source::Remote { name, .. } => {
                matched.push((PathBuf::from(name), None, source))
            }
        }
    }
    let dest_path = Path::new(dest);
    let dest_clean = tree::clean(image, dest)?;
    let dest_resolved = resolve_dest(image, &dest_clean)?;
    let dest_exists_as_dir =
        tree::resolve(image, &dest_clean, true)?.is_some_and(|(_, found)| found.metadata.is_dir());
    let into_dir = dest.ends_with('/')
        || dest_path.ends_with(".")
        || dest_clean.as_os_str().is_empty()
        || dest_exists_as_dir
        || matched.len() > 1;
    if matched.len() > 1 && !dest.ends_with('/') && !dest_exists_as_dir {
        bail!(
            "{dest}: with more than one source, the destination must be a directory and end with /"
        );
    }
    let given = |name: &Path, kind: ItemKind, default_mode: u32, mtime: u64| {
        let (uid, gid) = options.owner.unwrap_or((0, 0));
        Item {
            dest: match into_dir {
                true => dest_resolved.join(name),
                false => dest_resolved.clone(),
            },
            kind,
            mode: chmod(&options, default_mode, false),
            uid,
            gid,
            mtime,
        }
    };
    let mut plan = Plan::default();
    let owner = |metadata: &fs::Metadata| match (options.owner, options.keep_owner) {
        (Some(owner), _) => owner,
        (None, true) => (metadata.uid(), metadata.gid()),
        (None, false) => (0, 0),
    };
    for pattern in with_parents {
        plan_with_parents(from, pattern, &dest_resolved, &options, &owner, &mut plan)?;
    }
    for (path, found, source) in matched {
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        match (found, source) {
            // Given rather than found: named by the source, owned as
            // --chown says, else root's.
            (None, Source::Inline { data, .. }) => {
                plan.items
                    .push(given(&name, ItemKind::Data(data.clone()), 0o644, 0));
            }
            (
                None,
                Source::Remote {
                    host, size, mtime, ..
                },
            ) => {
                let kind = ItemKind::File {
                    host: host.clone(),
                    size: *size,
                };
                plan.items.push(given(&name, kind, REMOTE_MODE, *mtime));
            }
            (Some(found), _) if found.metadata.is_dir() => {
                let (uid, gid) = owner(&found.metadata);
                plan.items.push(Item {
                    dest: dest_resolved.clone(),
                    kind: ItemKind::Dir,
                    mode: chmod(&options, found.metadata.mode(), true),
                    uid,
                    gid,
                    mtime: mtime(&found.metadata),
                });
                let real = tree::resolve(from, &path, true)?
                    .map(|(real, _)| real)
                    .unwrap_or(path);
                let walk_from = Walk {
                    from,
                    options: &options,
                    owner: &owner,
                    include: None,
                };
                walk_from.walk(&real, Path::new(""), &dest_resolved, &mut plan)?;
            }
            (Some(found), _) => {
                let (uid, gid) = owner(&found.metadata);
                let archive = options.unpack_archives && is_archive(&found.host)?;
                let kind = match archive {
                    true => ItemKind::Archive(found.host.clone()),
                    false => ItemKind::File {
                        host: found.host.clone(),
                        size: found.metadata.len(),
                    },
                };
                let target = match (archive, into_dir) {
                    (true, _) => dest_resolved.clone(),
                    (false, true) => dest_resolved.join(&name),
                    (false, false) => dest_resolved.clone(),
                };
                plan.items.push(Item {
                    dest: target,
                    kind,
                    mode: chmod(&options, found.metadata.mode(), false),
                    uid,
                    gid,
                    mtime: mtime(&found.metadata),
                });
            }
            (None, Source::Path(_)) => unreachable!("paths are found or refused above"),
        }
    }
    Ok(plan)
}

/// Whether `--exclude` leaves out `path`, a wildcard's match (relative to
/// the tree's root, as a source is written), as the Dockerfile reference
/// says it does: the source pattern's matches are left out as what is
/// below a source directory is (BuildKit itself copies them all,
/// moby/buildkit#5489). A directory an exception reaches into is kept, to
/// be walked. A source named in full is always copied.
fn excludes_match(exclude: &IgnoreRules, path: &Path, found: &Found) -> bool {
    let path = path.to_string_lossy();
    exclude.ignores(&path) && !(found.metadata.is_dir() && exclude.may_let_in_below(&path))
}

/// Adds what `COPY --parents` copies for `pattern` to `plan`: what the
/// pattern matches below its pivot (BuildKit's include pattern: a matched
/// directory goes whole), at its path from the pivot under `dest`, with
/// the directories on the way. Nothing matching copies nothing, as in
/// BuildKit.
fn plan_with_parents(
    from: &dyn Tree,
    pattern: &str,
    dest: &Path,
    options: &CopyOptions,
    owner: &dyn Fn(&fs::Metadata) -> (u32, u32),
    plan: &mut Plan,
) -> Result<()> {
    let (pivot, pattern) = pattern.split_once("/./").unwrap_or(("", pattern));
    let include = IgnoreRules::parse(pattern)
        .with_context(|| format!("--parents {pattern}: not a pattern"))?;
    let pivot = tree::clean(from, pivot)?;
    let Some((pivot, found)) = tree::resolve(from, &pivot, true)? else {
        bail!(
            "{}: no such file or directory in {}",
            pivot.display(),
            from.describe()
        );
    };
    if !found.metadata.is_dir() {
        bail!("--parents: {} is not a directory", pivot.display());
    }
    let walk = Walk {
        from,
        options,
        owner,
        include: Some(&include),
    };
    walk.walk(&pivot, Path::new(""), dest, plan)
}

/// The mode of a file (or directory) whose own mode is `mode`, as
/// `--chmod` changes it.
fn chmod(options: &CopyOptions, mode: u32, is_dir: bool) -> u32 {
    match &options.mode {
        Some(chmod) => chmod.apply(mode, is_dir),
        None => mode & 0o7777,
    }
}

/// A source directory's walk: the tree it is in, the copy's options, and
/// the owner its entries get.
struct Walk<'a> {
    from: &'a dyn Tree,
    options: &'a CopyOptions,
    owner: &'a dyn Fn(&fs::Metadata) -> (u32, u32),
    /// `--parents`: only what this pattern matches (or is below a match).
    include: Option<&'a IgnoreRules>,
}

impl Walk<'_> {
    /// Adds what is below directory `dir` (at `below` under the source) to
    /// `plan`, under `dest`, less what `--exclude` leaves out. An excluded
    /// directory is walked when an exception may let something below it
    /// in, and kept only if something was.
    fn walk(&self, dir: &Path, below: &Path, dest: &Path, plan: &mut Plan) -> Result<()> {
        for name in self.from.list(dir)? {
            let path = dir.join(&name);
            let relative = below.join(&name);
            let Some(found) = self.from.entry(&path)? else {
                continue;
            };
            let relative_text = relative.to_string_lossy();
            let included = self
                .include
                .is_none_or(|include| include.ignores(&relative_text));
            let excluded = self.options.exclude.ignores(&relative_text);
            let (uid, gid) = (self.owner)(&found.metadata);
            let metadata = &found.metadata;
            let kind = if metadata.is_dir() {
                ItemKind::Dir
            } else if excluded || !included {
                continue;
            } else if metadata.is_symlink() {
                // Copied as the link it is, never followed.
                ItemKind::Symlink(fs::read_link(&found.host)?)
            } else if metadata.is_file() {
                ItemKind::File {
                    host: found.host.clone(),
                    size: metadata.len(),
                }
            } else {
                continue; // Sockets, devices, fifos: nothing a build copies.
            };
            let mode = match &kind {
                ItemKind::Symlink(_) => 0o777,
                kind => chmod(self.options, metadata.mode(), matches!(kind, ItemKind::Dir)),
            };
            let is_dir = matches!(kind, ItemKind::Dir);
            if is_dir && excluded && !self.options.exclude.may_let_in_below(&relative_text) {
                continue;
            }
            // Kept only if something below it is: a directory excluded
            // with exceptions, or one that --parents walks to its matches.
            let kept_for_below = excluded || !included;
            let at = plan.items.len();
            plan.items.push(Item {
                dest: dest.join(&name),
                kind,
                mode,
                uid,
                gid,
                mtime: mtime(metadata),
            });
            if is_dir {
                self.walk(&path, &relative, &dest.join(&name), plan)?;
                if kept_for_below && plan.items.len() == at + 1 {
                    plan.items.pop();
                }
            }
        }
        Ok(())
    }
}

/// The destination with the image's symbolic links on the way resolved
/// (inside the image), as far as it exists.
fn resolve_dest(image: &LayerTree, dest: &Path) -> Result<PathBuf> {
    let components: Vec<_> = dest.components().collect();
    for existing in (0..=components.len()).rev() {
        let prefix: PathBuf = components[..existing].iter().collect();
        if let Some((real, found)) = tree::resolve(image, &prefix, true)? {
            if existing < components.len() && !found.metadata.is_dir() {
                bail!(
                    "{}: {} is not a directory in the image",
                    dest.display(),
                    prefix.display()
                );
            }
            let rest: PathBuf = components[existing..].iter().collect();
            return Ok(real.join(rest));
        }
    }
    Ok(dest.to_owned())
}

fn mtime(metadata: &fs::Metadata) -> u64 {
    u64::try_from(metadata.mtime()).unwrap_or(0)
}

/// Whether the file at `path` is a tar archive, plain or gzip-compressed.
fn is_archive(path: &Path) -> Result<bool> {
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(512)
        .read_to_end(&mut head)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(true);
    }
    Ok(head.len() >= 262 && &head[257..262] == b"ustar")
}

impl Plan {
    /// The plan's content key: every item's path, kind, owner, mode and
    /// contents, not times.
    pub fn key(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        for item in &self.items {
            hasher.update(item.dest.as_os_str().as_encoded_bytes());
            hasher.update(format!("\0{:o}\0{}:{}\0", item.mode, item.uid, item.gid));
            match &item.kind {
                ItemKind::Dir => hasher.update(b"dir"),
                ItemKind::Symlink(target) => {
                    hasher.update(b"link\0");
                    hasher.update(target.as_os_str().as_encoded_bytes());
                }
                ItemKind::Data(data) => {
                    hasher.update(b"data\0");
                    hasher.update(data);
                }
                ItemKind::File { host, .. } | ItemKind::Archive(host) => {
                    hasher.update(b"file\0");
                    let mut file = File::open(host)
                        .with_context(|| format!("cannot read {}", host.display()))?;
                    io::copy(&mut file, &mut hasher)
                        .with_context(|| format!("cannot read {}", host.display()))?;
                }
            }
            hasher.update(b"\n");
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Writes the layer: the directories above each item as the image has
    /// them (or new, owned as `owner`), then the items.
    pub fn write(&self, image: &LayerTree, owner: (u32, u32), out: impl Write) -> Result<()> {
        let mut builder = tar::Builder::new(out);
        let mut written = BTreeSet::new();
        for item in &self.items {
            for parent in ancestors(&item.dest) {
                if written.insert(parent.clone()) {
                    parent_entry(&mut builder, image, &parent, owner)?;
                }
            }
            if matches!(item.kind, ItemKind::Dir) && !written.insert(item.dest.clone()) {
                continue;
            }
            item_entry(&mut builder, item)?;
            if let ItemKind::Archive(host) = &item.kind {
                unpack_into(&mut builder, host, &item.dest, &mut written)?;
            }
        }
        builder.into_inner()?.flush()?;
        Ok(())
    }
}

/// `WORKDIR`'s directory `path` (relative to the root) if the image lacks
/// it: made with 0755 and `owner` at `mtime`, and so are its missing
/// parents when the plan is written (BuildKit's `mkdir -p` as the user).
pub fn make_dir(
    image: &LayerTree,
    path: &Path,
    owner: (u32, u32),
    mtime: u64,
) -> Result<Option<Plan>> {
    if path.as_os_str().is_empty() || tree::resolve(image, path, true)?.is_some() {
        return Ok(None);
    }
    Ok(Some(Plan {
        items: vec![Item {
            dest: resolve_dest(image, path)?,
            kind: ItemKind::Dir,
            mode: NEW_DIR_MODE,
            uid: owner.0,
            gid: owner.1,
            mtime,
        }],
    }))
}

/// `a`, `a/b` for `a/b/c`.
fn ancestors(path: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_owned)
        .collect();
    all.reverse();
    all
}

fn header(kind: EntryType, mode: u32, uid: u32, gid: u32, mtime: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_mtime(mtime);
    header.set_size(0);
    header
}

/// A directory above an item: as the image has it, or new.
fn parent_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    image: &LayerTree,
    path: &Path,
    owner: (u32, u32),
) -> Result<()> {
    let mut header = match image.entry(path)? {
        Some(found) if found.metadata.is_dir() => header(
            EntryType::Directory,
            found.metadata.mode() & 0o7777,
            found.metadata.uid(),
            found.metadata.gid(),
            mtime(&found.metadata),
        ),
        _ => header(EntryType::Directory, NEW_DIR_MODE, owner.0, owner.1, now()),
    };
    builder.append_data(&mut header, path, io::empty())?;
    Ok(())
}

fn item_entry<W: Write>(builder: &mut tar::Builder<W>, item: &Item) -> Result<()> {
    let name = &item.dest;
    // A directory or archive copied to `/` (`ADD rootfs.tar /`, `COPY
    // dir/ /`): the root is the image's own, and a tar has no entry for it.
    if name.as_os_str().is_empty() {
        return Ok(());
    }
    let new = |kind| header(kind, item.mode, item.uid, item.gid, item.mtime);
    match &item.kind {
        ItemKind::Dir => builder.append_data(&mut new(EntryType::Directory), name, io::empty())?,
        ItemKind::Symlink(target) => {
            builder.append_link(&mut new(EntryType::Symlink), name, target)?
        }
        ItemKind::Data(data) => {
            let mut header = new(EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mtime(now());
            builder.append_data(&mut header, name, data.as_slice())?;
        }
        ItemKind::File { host, size } => {
            let mut header = new(EntryType::Regular);
            header.set_size(*size);
            // No link may be followed here: opened without following.
            let file = open_nofollow(host)?;
            builder
                .append_data(&mut header, name, file.take(*size))
                .with_context(|| format!("cannot copy {}", host.display()))?;
        }
        ItemKind::Archive(_) => {
            let mut header = header(
                EntryType::Directory,
                NEW_DIR_MODE,
                item.uid,
                item.gid,
                now(),
            );
            builder.append_data(&mut header, name, io::empty())?;
        }
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// `ADD`'s unpacking of a tar archive below `dest`: each entry moved
/// there, paths kept inside it.
fn unpack_into<W: Write>(
    builder: &mut tar::Builder<W>,
    archive: &Path,
    dest: &Path,
    written: &mut BTreeSet<PathBuf>,
) -> Result<()> {
    let file = BufReader::new(open_nofollow(archive)?);
    let reader: Box<dyn Read> = match is_gzip(archive)? {
        true => Box::new(GzDecoder::new(file)),
        false => Box::new(file),
    };
    let mut tar = tar::Archive::new(reader);
    for entry in tar
        .entries()
        .with_context(|| format!("cannot read {}", archive.display()))?
    {
        let mut entry = entry.with_context(|| format!("corrupt archive {}", archive.display()))?;
        let path = entry.path()?.into_owned();
        let mut inside = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => inside.push(name),
                Component::ParentDir => {
                    inside.pop();
                }
                _ => {}
            }
        }
        if inside.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&inside);
        let mut header = entry.header().clone();
        match header.entry_type() {
            EntryType::Directory => {
                if !written.insert(target.clone()) {
                    continue;
                }
                builder.append_data(&mut header, &target, io::empty())?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()?
                    .context("a link without a target")?
                    .into_owned();
                builder.append_link(&mut header, &target, link)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()?
                    .context("a link without a target")?
                    .into_owned();
                builder.append_link(&mut header, &target, dest.join(link))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                builder.append_data(&mut header, &target, &mut entry)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 2];
    let read = open_nofollow(path)?.read(&mut magic)?;
    Ok(read == 2 && magic == [0x1f, 0x8b])
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::ContextTree;

    fn entries(tar: &[u8]) -> Vec<(String, EntryType, u32, u64)> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.entry_type(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_root_filesystem_tar_and_a_directory_copied_to_the_root_land_there() {
        // `tar -C root -c .` starts with `./`: a base image's rootfs tar.
        // Neither may write an entry for the root itself.
        let temp = tempfile::tempdir().unwrap();
        let ctx = temp.path().join("ctx");
        let root = temp.path().join("root");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/sh"), "sh").unwrap();
        fs::create_dir_all(ctx.join("etc")).unwrap();
        fs::write(ctx.join("etc/motd"), "hi").unwrap();
        let mut archive = tar::Builder::new(Vec::new());
        archive.append_dir_all(".", &root).unwrap();
        fs::write(ctx.join("rootfs.tar"), archive.into_inner().unwrap()).unwrap();
        let image = LayerTree::new(&[], "the image");
        let context = ContextTree::open(&ctx).unwrap();
        let names = |source: &str, unpack_archives: bool| {
            let options = CopyOptions {
                unpack_archives,
                ..CopyOptions::default()
            };
            let plan = plan(
                &context,
                &[Source::Path(source.into())],
                "/",
                &image,
                options,
            )
            .unwrap();
            let mut tar = Vec::new();
            plan.write(&image, (0, 0), &mut tar).unwrap();
            entries(&tar)
                .into_iter()
                .map(|(p, ..)| p)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("rootfs.tar", true), ["bin", "bin/sh"]);
        // A directory's contents, as Docker copies them.
        assert_eq!(names("etc", false), ["motd"]);
    }

    #[test]
    fn files_land_as_docker_places_them_with_parents_kept_as_the_image_has_them() {
        let temp = tempfile::tempdir().unwrap();
        let ctx = temp.path().join("ctx");
        fs::create_dir_all(ctx.join("src/pkg")).unwrap();
        fs::write(ctx.join("src/pkg/a.py"), "a").unwrap();
        fs::write(ctx.join("req.txt"), "flask").unwrap();
        let layer = temp.path().join("layer");
        fs::create_dir_all(layer.join("usr")).unwrap();
        fs::set_permissions(
            layer.join("usr"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let image = LayerTree::new(&[layer], "the image");
        let context = ContextTree::open(&ctx).unwrap();

        let plan = plan(
            &context,
            &[Source::Path("src".into()), Source::Path("req.txt".into())],
            "/usr/app/",
            &image,
            CopyOptions {
                owner: Some((1000, 1000)),
                ..CopyOptions::default()
            },
        )
        .unwrap();
        let mut tar = Vec::new();
        plan.write(&image, (1000, 1000), &mut tar).unwrap();
        let found = entries(&tar);
        let names: Vec<&str> = found.iter().map(|(p, ..)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "usr",
                "usr/app",
                "usr/app/pkg",
                "usr/app/pkg/a.py",
                "usr/app/req.txt"
            ]
        );
        // The image's /usr as it is; what the copy made, the --chown owner's.
        assert_eq!((found[0].2, found[0].3), (0o700, 0));
        assert_eq!(found[3].3, 1000);

        // A changed byte changes the key; a changed time does not.
        let key = plan.key().unwrap();
        let again = |dest: &str| {
            super::plan(
                &context,
                &[Source::Path("req.txt".into())],
                dest,
                &image,
                CopyOptions::default(),
            )
            .unwrap()
        };
        let before = again("/r").key().unwrap();
        filetime_touch(&ctx.join("req.txt"));
        assert_eq!(again("/r").key().unwrap(), before);
        fs::write(ctx.join("req.txt"), "flasK").unwrap();
        assert_ne!(again("/r").key().unwrap(), before);
        assert_ne!(key, before);
        assert_eq!(again("/r").items[0].dest, Path::new("r"));
    }

    fn filetime_touch(path: &Path) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
    }

    #[test]
    fn a_new_working_directory_and_its_missing_parents_are_the_users() {
        let temp = tempfile::tempdir().unwrap();
        let layer = temp.path().join("layer");
        fs::create_dir_all(layer.join("srv")).unwrap();
        fs::set_permissions(
            layer.join("srv"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let image = LayerTree::new(&[layer], "the image");
        assert!(make_dir(&image, Path::new("srv"), (1000, 1000), 0)
            .unwrap()
            .is_none());
        let plan = make_dir(&image, Path::new("srv/app/data"), (1000, 1001), 0)
            .unwrap()
            .unwrap();
        let mut tar = Vec::new();
        plan.write(&image, (1000, 1001), &mut tar).unwrap();
        let found: Vec<(String, u32, u64)> = entries(&tar)
            .into_iter()
            .map(|(path, _, mode, uid)| (path, mode, uid))
            .collect();
        // /srv as the image has it (root's); what WORKDIR made, the user's.
        assert_eq!(
            found,
            [
                (
                    "srv".to_owned(),
                    0o755,
                    u64::from(fs::metadata(temp.path().join("layer/srv")).unwrap().uid())
                ),
                ("srv/app".to_owned(), 0o755, 1000),
                ("srv/app/data".to_owned(), 0o755, 1000),
            ]
        );
    }

    #[test]
    fn a_named_link_is_followed_inside_the_context_and_links_below_are_copied_as_links() {
        let temp = tempfile::tempdir().unwrap();
        let ctx = temp.path().join("ctx");
        fs::create_dir_all(ctx.join("dir")).unwrap();
        fs::write(temp.path().join("secret"), "outside").unwrap();
        fs::write(ctx.join("secret"), "inside").unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("top")).unwrap();
        std::os::unix::fs::symlink("../../secret", ctx.join("dir/link")).unwrap();
        let image = LayerTree::new(&[], "the image");
        let context = ContextTree::open(&ctx).unwrap();
        let copy = |source: &str, dest: &str| {
            let plan = plan(
                &context,
                &[Source::Path(source.into())],
                dest,
                &image,
                CopyOptions::default(),
            )
            .unwrap();
            let mut tar = Vec::new();
            plan.write(&image, (0, 0), &mut tar).unwrap();
            let mut found = Vec::new();
            for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().display().to_string();
                let what = match entry.header().entry_type() {
                    EntryType::Symlink => {
                        format!("-> {}", entry.link_name().unwrap().unwrap().display())
                    }
                    _ => {
                        let mut text = String::new();
                        entry.read_to_string(&mut text).unwrap();
                        text
                    }
                };
                found.push((path, what));
            }
            found
        };
        // COPY top /x: the link followed, stopping at the context's root.
        assert_eq!(copy("top", "/x"), [("x".to_owned(), "inside".to_owned())]);
        // COPY dir /d: the link inside copied as the link it is.
        assert_eq!(
            copy("dir", "/d"),
            [
                ("d".to_owned(), String::new()),
                ("d/link".to_owned(), "-> ../../secret".to_owned())
            ]
        );
    }

    #[test]
    fn a_download_lands_as_docker_places_it_0600_and_never_unpacked() {
        let temp = tempfile::tempdir().unwrap();
        // A tar archive, downloaded: ADD keeps it as it is.
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, "inner", &b"hi"[..])
            .unwrap();
        let bytes = archive.into_inner().unwrap();
        let host = temp.path().join("add-download");
        fs::write(&host, &bytes).unwrap();
        let layer = temp.path().join("layer");
        fs::create_dir_all(layer.join("opt")).unwrap();
        let image = LayerTree::new(&[layer], "the image");
        let context = ContextTree::open(temp.path()).unwrap();
        let add = |dest: &str, mode: Option<u32>| {
            let source = Source::Remote {
                name: "tool.tar".into(),
                host: host.clone(),
                size: bytes.len() as u64,
                mtime: 784111777,
            };
            let options = CopyOptions {
                mode: mode.map(Chmod::Octal),
                owner: Some((1000, 1000)),
                unpack_archives: true,
                ..CopyOptions::default()
            };
            let plan = plan(&context, &[source], dest, &image, options).unwrap();
            let mut tar = Vec::new();
            plan.write(&image, (0, 0), &mut tar).unwrap();
            let mut found = Vec::new();
            for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
                let entry = entry.unwrap();
                let header = entry.header();
                found.push((
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.mtime().unwrap(),
                    header.size().unwrap(),
                ));
            }
            found.pop().unwrap()
        };
        let size = bytes.len() as u64;
        // Into a directory (one ending in / or one the image has): the
        // URL's name; else the destination itself.
        assert_eq!(
            add("/dl/", None),
            ("dl/tool.tar".into(), 0o600, 1000, 784111777, size)
        );
        assert_eq!(add("/opt", None).0, "opt/tool.tar");
        assert_eq!(add("/usr/bin/tool", Some(0o755)).0, "usr/bin/tool");
        assert_eq!(add("/usr/bin/tool", Some(0o755)).1, 0o755);
    }

    #[test]
    fn parents_keep_each_matchs_path_from_its_pivot_as_buildkit_does() {
        let temp = context_with(&[
            "packages/a/package.json",
            "packages/b/package.json",
            "packages/b/index.js",
            "tools/lint/cfg/rules.json",
            "tools/lint/x.txt",
        ]);
        let ctx = temp.path();
        let context = ContextTree::open(ctx).unwrap();
        let image = LayerTree::new(&[], "the image");
        let copied = |sources: &[&str]| -> Vec<String> {
            let options = CopyOptions {
                parents: true,
                ..CopyOptions::default()
            };
            let sources: Vec<Source> = sources
                .iter()
                .map(|s| Source::Path(s.to_string()))
                .collect();
            let plan = plan(&context, &sources, "/app/", &image, options).unwrap();
            let mut dests: Vec<String> = plan
                .items
                .iter()
                .map(|i| i.dest.display().to_string())
                .collect();
            dests.sort();
            dests
        };
        assert_eq!(
            copied(&["packages/*/package.json", "./tools/./lint"]),
            [
                "app/lint",
                "app/lint/cfg",
                "app/lint/cfg/rules.json",
                "app/lint/x.txt",
                "app/packages",
                "app/packages/a",
                "app/packages/a/package.json",
                "app/packages/b",
                "app/packages/b/package.json",
            ]
        );
        assert_eq!(copied(&["**/*.json"]).len(), 9);
        assert!(copied(&["missing/*.json"]).is_empty());
    }

    #[test]
    fn a_symbolic_chmod_changes_each_files_own_mode() {
        let temp = tempfile::tempdir().unwrap();
        let ctx = temp.path();
        fs::create_dir_all(ctx.join("bin")).unwrap();
        for (file, mode) in [("bin/run", 0o700), ("bin/notes", 0o600)] {
            fs::write(ctx.join(file), "x").unwrap();
            fs::set_permissions(
                ctx.join(file),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap();
        }
        fs::set_permissions(
            ctx.join("bin"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let context = ContextTree::open(ctx).unwrap();
        let image = LayerTree::new(&[], "the image");
        let options = CopyOptions {
            mode: Some(Chmod::parse("go+rX").unwrap()),
            ..CopyOptions::default()
        };
        let plan = plan(
            &context,
            &[Source::Path("bin".into())],
            "/opt/",
            &image,
            options,
        )
        .unwrap();
        let mut modes: Vec<(String, u32)> = plan
            .items
            .iter()
            .map(|item| (item.dest.display().to_string(), item.mode))
            .collect();
        modes.sort();
        assert_eq!(
            modes,
            [
                ("opt".into(), 0o755),
                ("opt/notes".into(), 0o644),
                ("opt/run".into(), 0o755)
            ]
        );
    }

    /// A context of `files`, each holding `x`.
    fn context_with(files: &[&str]) -> tempfile::TempDir {
        let temp = tempfile::tempdir().unwrap();
        for file in files {
            fs::create_dir_all(temp.path().join(file).parent().unwrap()).unwrap();
            fs::write(temp.path().join(file), "x").unwrap();
        }
        temp
    }

    /// Where `COPY --exclude=PATTERNS... SOURCES... DEST` of context `ctx`
    /// puts its files, sorted.
    fn copied_excluding(ctx: &Path, sources: &[&str], dest: &str, patterns: &str) -> Vec<String> {
        let context = ContextTree::open(ctx).unwrap();
        let image = LayerTree::new(&[], "the image");
        let options = CopyOptions {
            exclude: IgnoreRules::parse(patterns).unwrap(),
            ..CopyOptions::default()
        };
        let sources: Vec<Source> = sources
            .iter()
            .map(|s| Source::Path(s.to_string()))
            .collect();
        let plan = plan(&context, &sources, dest, &image, options).unwrap();
        let mut dests: Vec<String> = plan
            .items
            .iter()
            .map(|i| i.dest.display().to_string())
            .collect();
        dests.sort();
        dests
    }

    #[test]
    fn exclude_leaves_out_what_its_patterns_match_below_each_source_as_buildkit_does() {
        let temp = context_with(&[
            "README.md",
            "main.go",
            "docs/guide.md",
            "docs/keep.md",
            "testdata/x",
            "cmd/a.go",
        ]);
        let ctx = temp.path();
        let copied =
            |sources: &[&str], patterns: &str| copied_excluding(ctx, sources, "/src/", patterns);
        // *.md matches at the source's top only; a directory goes whole,
        // but for what an exception lets in.
        assert_eq!(
            copied(&["."], "*.md\ntestdata\ndocs\n!docs/keep.md"),
            [
                "src",
                "src/cmd",
                "src/cmd/a.go",
                "src/docs",
                "src/docs/keep.md",
                "src/main.go"
            ]
        );
        assert_eq!(copied(&["docs"], "**/*.md"), ["src"]);
        // A source named in full is never left out.
        assert_eq!(copied(&["README.md"], "*.md"), ["src/README.md"]);
    }

    #[test]
    fn exclude_leaves_out_a_wildcards_matches_as_the_dockerfile_reference_says() {
        let temp = context_with(&[
            "a.txt",
            "b.txt",
            "a.md",
            "b.md",
            "ab",
            "ba",
            "bin/x",
            "lib/y",
            "src/c.txt",
        ]);
        let ctx = temp.path();
        let copied =
            |sources: &[&str], patterns: &str| copied_excluding(ctx, sources, "/dst/", patterns);
        assert_eq!(
            copied(&["*.txt", "*.md"], "*.md"),
            ["dst/a.txt", "dst/b.txt"]
        );
        assert_eq!(copied(&["a*"], "b*\n*.md"), ["dst/a.txt", "dst/ab"]);
        // Matched by their paths in the context, as the sources are written.
        assert_eq!(copied(&["src/*"], "*.txt"), ["dst/c.txt"]);
        assert!(copied(&["src/*"], "src/*.txt").is_empty());
        // A matched directory goes whole, or not at all, or walked for
        // what an exception lets in.
        assert_eq!(copied(&["?i?"], "lib"), ["dst", "dst/x"]);
        assert_eq!(copied(&["?i?"], "bin\nlib\n!lib/y"), ["dst", "dst/y"]);
    }

    #[test]
    fn several_sources_need_a_directory_destination() {
        let temp = tempfile::tempdir().unwrap();
        fs::write(temp.path().join("a"), "a").unwrap();
        fs::write(temp.path().join("b"), "b").unwrap();
        let image = LayerTree::new(&[], "the image");
        let context = ContextTree::open(temp.path()).unwrap();
        let err = plan(
            &context,
            &[Source::Path("*".into())],
            "/dst",
            &image,
            CopyOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("must be a directory"), "{err}");
    }
}
