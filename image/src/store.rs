//! The on-disk image store under `<hull root>/image/`:
//!
//! ```text
//! blobs/sha256/<hex>      manifests, configs and compressed layers, by digest
//! layers/<hex>/fs         one unpacked layer per diff_id, overlayfs format
//! layers/<hex>/size       its uncompressed tar size in bytes
//! layers/<hex>/verified/  the blobs (by digest hex) shown to hold it
//! index.json              images (by config digest) with their tags
//! tmp/                    downloads and unpacks in progress
//! pins/<hex>.<random>     images of running containers (flock(2)ed)
//! build-cache/<hex>.json  build cache entries (layers they keep)
//! index.lock, gc.lock     flock(2) locks
//! ```
//!
//! Everything becomes visible by `rename(2)` only when complete and
//! verified. `index.lock` serializes read-modify-write of `index.json`.
//! Adding content holds `gc.lock` shared and deleting it holds it exclusive,
//! so a pull never loses a blob it relies on to a concurrent `rmi`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use fs2::FileExt;
use oci_client::manifest::OciImageManifest;
use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::capped::Capped;
use crate::compression::decompress;
use crate::digest::{is_sha256_hex, Digest, HashingReader, HashingWriter};
use crate::docker_fields::{docker_fields, DockerFields};
use crate::limits::{limit_alone, LimitExceeded, Limits};
use crate::reference::ImageRef;
use crate::remove_tree::{remove_tree, Staging};
use crate::unpack::unpack_layer;

/// An image in the store, ready to run: its layers are unpacked.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image ID: the digest of its config, as Docker uses it.
    pub id: Digest,
    /// Full tagged names, e.g. `docker.io/library/alpine:latest`.
    pub repo_tags: Vec<String>,
    /// Full names pinned to the manifest digest they were pulled or pushed as.
    pub repo_digests: Vec<String>,
    /// The digest of the stored manifest.
    pub manifest_digest: Digest,
    pub manifest: OciImageManifest,
    /// The OCI image config (Entrypoint, Cmd, Env, WorkingDir, User, ...).
    pub config: ImageConfiguration,
    /// Docker's fields of the config, which the OCI one leaves out.
    pub docker: DockerFields,
    /// The unpacked layer directories, bottom to top, to stack as overlayfs
    /// lower layers (`lowerdir` lists them top first).
    pub layers: Vec<PathBuf>,
    /// The uncompressed size of each layer in bytes, as `layers`.
    pub layer_sizes: Vec<u64>,
    /// Uncompressed size of all layers in bytes.
    pub size: u64,
}

/// What `Store::remove` did, in Docker's words.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    Untagged(String),
    Deleted(Digest),
}

/// What [`Store::prune`] removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The removed images, by ID.
    pub images: Vec<PrunedImage>,
    /// The bytes freed: the blobs and unpacked layers deleted, as their
    /// files' sizes (a file linked several times counts once).
    pub reclaimed: u64,
}

/// An image [`Store::prune`] removed.
#[derive(Debug, PartialEq, Eq)]
pub struct PrunedImage {
    /// The image ID.
    pub id: Digest,
    /// The names it lost: full tagged names (`docker.io/library/alpine:latest`).
    pub repo_tags: Vec<String>,
    /// And full digest names (`docker.io/library/alpine@sha256:...`).
    pub repo_digests: Vec<String>,
    /// Its layers deleted with it, top first, by chain ID as Docker names
    /// layers (the bottom layer's is its diff_id). A layer that several
    /// removed images shared is listed with the last of them.
    pub layers: Vec<Digest>,
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    images: BTreeMap<Digest, ImageRecord>,
}

#[derive(Clone, Serialize, Deserialize)]
struct ImageRecord {
    manifest: Digest,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
}

/// No image in the store has this name, ID or ID prefix.
#[derive(Debug, thiserror::Error)]
#[error("no such image: {0}")]
pub struct NoSuchImage(pub String);

/// The image store. Cheap to open; every operation takes the locks it needs.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    limits: Limits,
}

impl Store {
    /// The hull root the store is under.
    pub fn hull_root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Opens (creating it if needed) the store under `<hull_root>/image`,
    /// with the [`Limits`] `<hull_root>/config.json` sets.
    pub fn open(hull_root: &Path) -> Result<Store> {
        let limits = Limits::load(hull_root)?;
        let dir = hull_root.join("image");
        // Layers hold set-id binaries and device nodes of images: private.
        let created = fs::create_dir_all(hull_root)
            .and_then(|()| fs::DirBuilder::new().mode(0o700).create(&dir));
        match created {
            Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(err).with_context(|| {
                    format!(
                        "cannot create {}: is the state root writable?",
                        dir.display()
                    )
                });
            }
            _ => {}
        }
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).with_context(|| {
                format!(
                    "cannot create {}: is the state root writable?",
                    path.display()
                )
            })?;
        }
        Ok(Store { dir, limits })
    }

    /// The same store, holding what it adds to `limits` instead.
    pub fn with_limits(self, limits: Limits) -> Store {
        Store { limits, ..self }
    }

    /// The limits what this store adds is held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The image named by a reference (`alpine`, `me/app:v1`,
    /// `repo@sha256:...`), a full ID (`sha256:<hex>` or `<hex>`) or a
    /// unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        self.find(name_or_id)?
            .ok_or_else(|| NoSuchImage(name_or_id.to_owned()).into())
    }

    /// Like [`Store::resolve`], but an image that is not in the store is
    /// `None` rather than an error.
    pub fn find(&self, name_or_id: &str) -> Result<Option<Image>> {
        let index = self.read_index()?;
        match find(&index, name_or_id)? {
            Some(id) => self.image(&id, &index.images[&id]).map(Some),
            None => Ok(None),
        }
    }

    /// All images, newest first by config creation time.
    pub fn images(&self) -> Result<Vec<Image>> {
        let index = self.read_index()?;
        let mut images = index
            .images
            .iter()
            .map(|(id, record)| self.image(id, record))
            .collect::<Result<Vec<_>>>()?;
        images.sort_by(|a, b| b.config.created().cmp(a.config.created()));
        Ok(images)
    }

    /// Gives the image `source` the additional name `target`.
    pub fn tag(&self, source: &str, target: &ImageRef) -> Result<()> {
        let tag = target
            .tagged()
            .ok_or_else(|| anyhow!("cannot tag with a digest reference {target}"))?;
        self.update_index(|index| {
            let id = lookup(index, source)?;
            add_tag(index, &id, tag);
            Ok(())
        })
    }

    /// Removes the name `name_or_id`, and the image when no name is left or
    /// it was named by ID. An image `in_use` by a container, or one with
    /// several names named by ID, is refused unless `force`; forced, an
    /// image in use loses its names but stays for its containers, as in
    /// Docker. Layers and blobs no image needs any more are deleted.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<Removal>> {
        let _gc = self.lock("gc.lock")?;
        let removals = self.update_index(|index| {
            let id = lookup(index, name_or_id)?;
            let record = index.images.get_mut(&id).expect("find returns stored IDs");
            let mut removals = Vec::new();
            // A name goes alone while the image has others, as Docker's.
            if let Some(names) = names_going(record, name_or_id) {
                let left = record.repo_tags.iter().chain(&record.repo_digests);
                if left.filter(|name| !names.contains(name)).count() > 0 {
                    record.repo_tags.retain(|name| !names.contains(name));
                    record.repo_digests.retain(|name| !names.contains(name));
                    removals.extend(names.into_iter().map(Removal::Untagged));
                    return Ok(removals);
                }
            }
            if self.is_pinned(&id)? {
                bail!("image {} is in use by a running container", id.short());
            }
            if in_use(&id) {
                if !force {
                    bail!(
                        "image {} is in use by a container (use -f to remove it anyway)",
                        id.short()
                    );
                }
                // Its names go; the image stays for its containers.
                let tags = std::mem::take(&mut record.repo_tags);
                let digests = std::mem::take(&mut record.repo_digests);
                removals.extend(tags.into_iter().chain(digests).map(Removal::Untagged));
                return Ok(removals);
            }
            if !force && record.repo_tags.len() > 1 {
                bail!(
                    "image {} is referenced in multiple repositories (use -f to remove it anyway)",
                    id.short()
                );
            }
            // As Docker's: its digest names go with it, and say so.
            let record = index.images.remove(&id).expect("present");
            let names = record.repo_tags.into_iter().chain(record.repo_digests);
            removals.extend(names.map(Removal::Untagged));
            removals.push(Removal::Deleted(id));
            Ok(removals)
        })?;
        self.collect_garbage()?;
        Ok(removals)
    }

    /// Removes images without tags (with `all`, every image not `in_use`),
    /// then unreferenced layers and blobs. Reports what went and the bytes
    /// that freed.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&Digest) -> bool) -> Result<Pruned> {
        let _gc = self.lock("gc.lock")?;
        let removed = self.update_index(|index| {
            let doomed: Vec<Digest> = index
                .images
                .iter()
                .filter(|(id, record)| {
                    (all || record.repo_tags.is_empty())
                        && !in_use(id)
                        && !self.is_pinned(id).unwrap_or(true)
                })
                .map(|(id, _)| id.clone())
                .collect();
            Ok(doomed
                .into_iter()
                .map(|id| {
                    let record = index.images.remove(&id).expect("listed from the index");
                    (id, record)
                })
                .collect::<Vec<_>>())
        })?;
        // Read while the configs are still stored. An image whose config
        // cannot be read is removed all the same, its layers unlisted.
        let layers: Vec<Vec<LayerIds>> = removed
            .iter()
            .map(|(id, _)| self.layer_ids(id).unwrap_or_default())
            .collect();
        let garbage = self.collect_garbage()?;
        let mut images: Vec<PrunedImage> = removed
            .into_iter()
            .map(|(id, record)| PrunedImage {
                id,
                repo_tags: record.repo_tags,
                repo_digests: record.repo_digests,
                layers: Vec::new(),
            })
            .collect();
        list_deleted_layers(&mut images, &layers, &garbage.layers);
        Ok(Pruned {
            images,
            reclaimed: garbage.bytes,
        })
    }

    /// The diff_ids and chain IDs of image `id`'s layers, bottom first.
    fn layer_ids(&self, id: &Digest) -> Result<Vec<LayerIds>> {
        let config: ImageConfiguration = serde_json::from_slice(&self.read_blob(id)?)
            .with_context(|| format!("image config {id} is invalid"))?;
        let mut ids: Vec<LayerIds> = Vec::new();
        for diff_id in config.rootfs().diff_ids() {
            let diff_id = Digest::parse(diff_id)?;
            let chain_id = match ids.last() {
                None => diff_id.clone(),
                Some(below) => chain_id(&below.chain_id, &diff_id),
            };
            ids.push(LayerIds { diff_id, chain_id });
        }
        Ok(ids)
    }

    /// Where running containers pin their images (see `pin.rs`).
    pub(crate) fn pins_dir(&self) -> PathBuf {
        self.dir.join("pins")
    }

    /// Where the build cache's entries live (see `build.rs`).
    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.dir.join("build-cache")
    }

    /// Where work in progress lives (same file system as the store).
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// The path of a stored blob.
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// The length of the stored blob `digest`.
    pub(crate) fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        let metadata = fs::metadata(&path)
            .with_context(|| format!("blob {digest} is not in the store ({})", path.display()))?;
        Ok(metadata.len())
    }

    pub(crate) fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The stored image config `digest`, checked to list `layers` layers
    /// (as the manifest being added has).
    pub(crate) fn read_config(&self, digest: &Digest, layers: usize) -> Result<ImageConfiguration> {
        let config: ImageConfiguration = serde_json::from_slice(&self.read_blob(digest)?)
            .context("the image config is invalid")?;
        let listed = config.rootfs().diff_ids().len();
        if listed != layers {
            bail!("the image config lists {listed} layers, the manifest {layers}");
        }
        Ok(config)
    }

    /// Reads a whole stored blob (manifests and configs).
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).with_context(|| format!("blob {digest} is missing from the store"))
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub(crate) fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).context("cannot write blob")?;
        let digest = Digest::of(bytes);
        self.commit_blob(writer, &digest, None)?;
        Ok(digest)
    }

    /// A temporary file in the store to write a blob into.
    pub(crate) fn blob_writer(&self) -> Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(self.dir.join("tmp"))
            .context("cannot create a temporary blob")?;
        Ok(BlobWriter {
            inner: HashingWriter::new(file),
        })
    }

    /// Verifies what was written against `expected` (and `expected_size`)
    /// and moves it into place; a mismatch leaves the store as it was.
    pub(crate) fn commit_blob(
        &self,
        writer: BlobWriter,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<()> {
        let (file, actual, size) = writer.inner.finish();
        if let Some(expected_size) = expected_size.filter(|s| *s != size) {
            bail!("blob {expected} is truncated or oversized: got {size} bytes, expected {expected_size}");
        }
        if actual != *expected {
            bail!("digest mismatch: expected {expected}, got {actual}");
        }
        file.as_file().sync_all().context("cannot sync blob")?;
        file.persist(self.blob_path(expected))
            .context("cannot store blob")?;
        Ok(())
    }

    /// The directory holding every unpacked layer: [`Image::layers`] are
    /// `<hex>/fs` below it, one `<hex>` directory per layer.
    pub fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// The directory layer `diff_id` is (or will be) unpacked in.
    pub(crate) fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex()).join("fs")
    }

    pub(crate) fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// Whether layer `diff_id` is stored and was shown to be what the
    /// blob `blob` holds, so a pull that has `blob` can skip both.
    pub(crate) fn has_layer_from(&self, blob: &Digest, diff_id: &Digest) -> bool {
        self.has_layer(diff_id) && self.verified_path(diff_id, blob).is_file()
    }

    /// Where the store notes that `blob` was shown to hold layer `diff_id`.
    fn verified_path(&self, diff_id: &Digest, blob: &Digest) -> PathBuf {
        self.layers_dir()
            .join(diff_id.hex())
            .join("verified")
            .join(blob.hex())
    }

    /// Unpacks the stored blob `blob` as layer `diff_id`: into a temporary
    /// directory, verified against `diff_id`, then renamed into place.
    ///
    /// A layer already stored is reused only for a blob shown to hold it:
    /// otherwise anyone who knows a private image's diff_id could name it
    /// in a config of their own and get the layer without its content. A
    /// blob not yet shown to is decompressed and hashed (not unpacked).
    pub(crate) fn unpack_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<()> {
        if self.has_layer_from(blob, diff_id) {
            return Ok(());
        }
        if self.has_layer(diff_id) {
            let (actual, _) = self.hash_layer_blob(blob, |_| Ok(()))?;
            check_diff_id(blob, diff_id, &actual)?;
            return self.note_verified(diff_id, blob);
        }
        let staging = Staging::new_in(&self.tmp_dir(), "layer-")
            .context("cannot create a temporary layer directory")?;
        let fs_dir = staging.path().join("fs");
        fs::create_dir(&fs_dir)?;
        let (actual, size) = self.hash_layer_blob(blob, |tar: &mut dyn Read| {
            unpack_layer(tar, &fs_dir, &self.limits)
        })?;
        check_diff_id(blob, diff_id, &actual)?;
        fs::write(staging.path().join("size"), size.to_string())?;
        fs::create_dir(staging.path().join("verified"))?;
        File::create(staging.path().join("verified").join(blob.hex()))?;
        let target = self.dir.join("layers").join(diff_id.hex());
        match fs::rename(staging.path(), &target) {
            Ok(()) => {
                // The directory now lives on under its final name.
                staging.keep();
                Ok(())
            }
            // Another pull unpacked the same layer first.
            Err(_) if self.has_layer(diff_id) => self.note_verified(diff_id, blob),
            Err(err) => {
                Err(err).with_context(|| format!("cannot move layer into {}", target.display()))
            }
        }
    }

    /// Passes the uncompressed tar of the stored blob `blob` to `consume`,
    /// hashing what it reads; returns its digest and length after reading
    /// it to the end.
    fn hash_layer_blob(
        &self,
        blob: &Digest,
        consume: impl FnOnce(&mut dyn Read) -> Result<()>,
    ) -> Result<(Digest, u64)> {
        let file =
            File::open(self.blob_path(blob)).with_context(|| format!("blob {blob} is missing"))?;
        let stream = Capped::new(
            decompress(BufReader::new(file))?,
            self.limits.max_layer_bytes,
            || LimitExceeded::layer_bytes("its uncompressed tar", None, &self.limits),
        );
        let mut tar = HashingReader::new(stream);
        let read = consume(&mut tar)
            .and_then(|()| Ok(io::copy(&mut tar, &mut io::sink())?))
            .map_err(limit_alone);
        read.with_context(|| format!("cannot unpack layer {}", blob.short()))?;
        Ok(tar.finish())
    }

    /// Notes that `blob` holds the stored layer `diff_id`.
    fn note_verified(&self, diff_id: &Digest, blob: &Digest) -> Result<()> {
        let path = self.verified_path(diff_id, blob);
        let dir = path.parent().expect("under the layer's directory");
        fs::create_dir_all(dir)
            .and_then(|()| File::create(&path).map(drop))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Records an image whose manifest, config and layers are stored, naming
    /// it `tags` (taken from any other image) and `repo_digests`.
    pub(crate) fn add_image(
        &self,
        manifest: &Digest,
        tags: &[String],
        repo_digests: &[String],
    ) -> Result<Digest> {
        let parsed = self.load_manifest(manifest)?;
        let id = Digest::parse(&parsed.config.digest)?;
        self.update_index(|index| {
            let record = index
                .images
                .entry(id.clone())
                .or_insert_with(|| ImageRecord {
                    manifest: manifest.clone(),
                    repo_tags: Vec::new(),
                    repo_digests: Vec::new(),
                });
            record.manifest = manifest.clone();
            for digest in repo_digests {
                if !record.repo_digests.contains(digest) {
                    record.repo_digests.push(digest.clone());
                }
            }
            for tag in tags {
                add_tag(index, &id, tag.clone());
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// After a failed pull or import: deletes what no image refers to,
    /// unless another process is adding content right now (then the next
    /// `remove` or `prune` does).
    pub(crate) fn discard_unreferenced(&self) -> Result<()> {
        let gc = self.lock_file("gc.lock")?;
        if gc.try_lock_exclusive().is_ok() {
            self.collect_garbage()?;
        }
        Ok(())
    }

    /// Holds `gc.lock` shared while content is being added.
    pub(crate) fn adding(&self) -> Result<File> {
        let file = self.lock_file("gc.lock")?;
        file.lock_shared().context("cannot lock the image store")?;
        Ok(file)
    }

    /// [`Store::adding`] for a pull, load or import, which first sweeps
    /// what one that died left in tmp/ if no other process adds or
    /// removes content. Only for these, which run where the store's locks
    /// are this host's own: a container's boot in the hull machine, whose
    /// locks do not reach here, must not sweep this host's work.
    pub(crate) fn adding_after_sweep(&self) -> Result<File> {
        let file = self.lock_file("gc.lock")?;
        if file.try_lock_exclusive().is_ok() {
            if let Err(err) = sweep(&self.tmp_dir(), &BTreeSet::new()) {
                log::warn!("cannot sweep the store's work in progress: {err:#}");
            }
        }
        file.lock_shared().context("cannot lock the image store")?;
        Ok(file)
    }

    /// Holds `gc.lock` exclusive, as removals do: nothing is added to or
    /// removed from the store meanwhile by another process that locks it
    /// here. For removals that run where these locks do not reach (the hull
    /// machine, through 9p): their caller here holds this for them.
    pub fn exclude_changes(&self) -> Result<File> {
        self.lock("gc.lock")
    }

    /// Parses a stored manifest.
    pub(crate) fn load_manifest(&self, digest: &Digest) -> Result<OciImageManifest> {
        serde_json::from_slice(&self.read_blob(digest)?)
            .with_context(|| format!("manifest {digest} is not a valid image manifest"))
    }

    fn image(&self, id: &Digest, record: &ImageRecord) -> Result<Image> {
        let manifest = self.load_manifest(&record.manifest)?;
        let blob = self.read_blob(id)?;
        let config: ImageConfiguration = serde_json::from_slice(&blob)
            .with_context(|| format!("image config {id} is invalid"))?;
        let docker = docker_fields(&blob);
        let mut layers = Vec::new();
        let mut layer_sizes = Vec::new();
        for diff_id in config.rootfs().diff_ids() {
            let diff_id = Digest::parse(diff_id)?;
            let dir = self.layer_dir(&diff_id);
            if !dir.is_dir() {
                bail!(
                    "layer {} of image {} is missing from the store",
                    diff_id.short(),
                    id.short()
                );
            }
            let size_file = dir.with_file_name("size");
            layer_sizes.push(
                fs::read_to_string(&size_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(0),
            );
            layers.push(dir);
        }
        Ok(Image {
            id: id.clone(),
            repo_tags: record.repo_tags.clone(),
            repo_digests: record.repo_digests.clone(),
            manifest_digest: record.manifest.clone(),
            manifest,
            config,
            docker,
            layers,
            size: layer_sizes.iter().sum(),
            layer_sizes,
        })
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.dir.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is corrupt", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Read-modify-write of the index under `index.lock`; `change` failing
    /// leaves it untouched.
    fn update_index<T>(&self, change: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = self.lock("index.lock")?;
        let mut index = self.read_index()?;
        let result = change(&mut index)?;
        // Beside index.json, not in tmp/, which garbage collection sweeps.
        let mut file = tempfile::Builder::new()
            .prefix(".index-")
            .tempfile_in(&self.dir)
            .context("cannot write the image index")?;
        file.write_all(&serde_json::to_vec_pretty(&index)?)
            .context("cannot write the image index")?;
        file.as_file().sync_all()?;
        file.persist(self.dir.join("index.json"))
            .context("cannot write the image index")?;
        Ok(result)
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.dir.join(name);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    fn lock(&self, name: &str) -> Result<File> {
        let file = self.lock_file(name)?;
        file.lock_exclusive()
            .context("cannot lock the image store")?;
        Ok(file)
    }

    /// Deletes blobs and layers no image or build cache entry refers to,
    /// and leftovers in tmp/. The caller holds `gc.lock` exclusive.
    pub(crate) fn collect_garbage(&self) -> Result<Garbage> {
        let index = self.read_index()?;
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for (id, record) in &index.images {
            blobs.insert(id.hex().to_owned());
            blobs.insert(record.manifest.hex().to_owned());
            if let Ok(manifest) = self.load_manifest(&record.manifest) {
                for layer in &manifest.layers {
                    blobs.insert(layer.digest.trim_start_matches("sha256:").to_owned());
                }
            }
            if let Ok(config) = serde_json::from_slice::<ImageConfiguration>(&self.read_blob(id)?) {
                for diff_id in config.rootfs().diff_ids() {
                    layers.insert(diff_id.trim_start_matches("sha256:").to_owned());
                }
            }
        }
        self.cache_references(&mut blobs, &mut layers);
        let blobs = sweep(&self.dir.join("blobs/sha256"), &blobs)?;
        let layers = sweep(&self.dir.join("layers"), &layers)?;
        // Work in progress of processes that died.
        let leftovers = sweep(&self.tmp_dir(), &BTreeSet::new())?;
        Ok(Garbage {
            bytes: blobs.bytes + layers.bytes + leftovers.bytes,
            layers: layers.names,
        })
    }
}

/// What [`Store::collect_garbage`] deleted.
pub(crate) struct Garbage {
    /// The layers, by diff_id hex.
    layers: BTreeSet<String>,
    /// The bytes of the blobs, layers and leftovers.
    pub(crate) bytes: u64,
}

/// A layer's two names: its content's digest, and its chain ID (the
/// layer together with the ones below it).
struct LayerIds {
    diff_id: Digest,
    chain_id: Digest,
}

/// The chain ID of layer `diff_id` on the layers whose chain ID is `below`,
/// as the OCI image spec defines it.
fn chain_id(below: &Digest, diff_id: &Digest) -> Digest {
    Digest::of(format!("{below} {diff_id}").as_bytes())
}

/// Fails unless the layer blob `blob` held the tar `actual` is the digest of.
fn check_diff_id(blob: &Digest, diff_id: &Digest, actual: &Digest) -> Result<()> {
    if actual != diff_id {
        bail!(
            "layer {} does not match its diff_id: expected {diff_id}, got {actual}",
            blob.short()
        );
    }
    Ok(())
}

/// Fills in [`PrunedImage::layers`]: of each image's layers (`layers[i]`
/// for `images[i]`), the ones whose diff_id hex is in `deleted`, each chain
/// ID with the last image that has it, as Docker releases a layer with the
/// last image using it.
fn list_deleted_layers(
    images: &mut [PrunedImage],
    layers: &[Vec<LayerIds>],
    deleted: &BTreeSet<String>,
) {
    let mut listed = BTreeSet::new();
    for (image, ids) in images.iter_mut().zip(layers).rev() {
        image.layers = ids
            .iter()
            .rev()
            .filter(|ids| deleted.contains(ids.diff_id.hex()))
            .filter(|ids| listed.insert(ids.chain_id.clone()))
            .map(|ids| ids.chain_id.clone())
            .collect();
    }
}

/// A blob being written into the store's temporary directory.
pub(crate) struct BlobWriter {
    inner: HashingWriter<tempfile::NamedTempFile>,
}

impl BlobWriter {
    /// The digest and length of what was written so far.
    pub(crate) fn digest(&self) -> (Digest, u64) {
        self.inner.digest()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What [`sweep`] deleted from a directory.
struct Swept {
    /// The entries' names.
    names: BTreeSet<String>,
    /// Their bytes, as [`size_on_disk`] counts them.
    bytes: u64,
}

/// Removes every entry of `dir` whose name is not in `keep`. One that
/// cannot be removed is left for the next sweep, with a warning, and does
/// not stop the others.
fn sweep(dir: &Path, keep: &BTreeSet<String>) -> Result<Swept> {
    let mut swept = Swept {
        names: BTreeSet::new(),
        bytes: 0,
    };
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        let path = entry.path();
        let bytes = size_on_disk(&path);
        match remove_tree(&path) {
            Ok(()) => {
                swept.bytes += bytes;
                swept.names.insert(name);
            }
            Err(err) => log::warn!("cannot remove {}: {err}", path.display()),
        }
    }
    Ok(swept)
}

/// The sizes of the files at and below `path`, a file with several links
/// below it counted once, as Docker measures a layer. Only reported, so
/// what cannot be measured counts as nothing rather than failing a removal.
fn size_on_disk(path: &Path) -> u64 {
    let mut counted = BTreeSet::new();
    let mut pending = vec![path.to_owned()];
    let mut bytes = 0;
    while let Some(path) = pending.pop() {
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                pending.extend(entries.filter_map(|entry| Some(entry.ok()?.path())));
            }
        } else if metadata.nlink() == 1 || counted.insert((metadata.dev(), metadata.ino())) {
            bytes += metadata.len();
        }
    }
    bytes
}

/// Moves `tag` to image `id`, from whichever image had it.
fn add_tag(index: &mut Index, id: &Digest, tag: String) {
    for record in index.images.values_mut() {
        record.repo_tags.retain(|t| *t != tag);
    }
    let record = index.images.get_mut(id).expect("tagging a stored image");
    record.repo_tags.push(tag);
}

/// The ID of the image `name_or_id` names, which must be in `index`.
fn lookup(index: &Index, name_or_id: &str) -> Result<Digest> {
    find(index, name_or_id)?.ok_or_else(|| NoSuchImage(name_or_id.to_owned()).into())
}

/// The names of `record` that removing the name `name_or_id` takes (none
/// if it is no name of it, but an ID): that name, and with a tag the
/// digest names of its repository when no other tag of it is left, as
/// Docker's `rmi` has it.
fn names_going(record: &ImageRecord, name_or_id: &str) -> Option<Vec<String>> {
    let reference = ImageRef::parse(name_or_id).ok()?;
    let name = match (reference.digest(), reference.tagged()) {
        (Some(digest), _) => format!("{}@{digest}", reference.name()),
        (None, Some(tag)) => tag,
        (None, None) => return None,
    };
    let of_repository =
        |other: &String| ImageRef::parse(other).is_ok_and(|other| other.name() == reference.name());
    if record.repo_digests.contains(&name) {
        return Some(vec![name]);
    }
    if !record.repo_tags.contains(&name) {
        return None;
    }
    let tags_left = record.repo_tags.iter().filter(|tag| **tag != name);
    let mut going = vec![];
    if !tags_left.clone().any(of_repository) {
        going.extend(
            record
                .repo_digests
                .iter()
                .filter(|d| of_repository(d))
                .cloned(),
        );
    }
    going.insert(0, name);
    Some(going)
}

/// The ID of the image `name_or_id` names in `index`, if any.
fn find(index: &Index, name_or_id: &str) -> Result<Option<Digest>> {
    let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
    if is_sha256_hex(hex) {
        let id = Digest::parse(&format!("sha256:{hex}"))?;
        if index.images.contains_key(&id) {
            return Ok(Some(id));
        }
    }
    if let Ok(reference) = ImageRef::parse(name_or_id) {
        let found = match (reference.digest(), reference.tagged()) {
            (Some(digest), _) => {
                let pinned = format!("{}@{digest}", reference.name());
                index
                    .images
                    .iter()
                    .find(|(_, r)| r.repo_digests.contains(&pinned))
            }
            (None, Some(tag)) => index
                .images
                .iter()
                .find(|(_, r)| r.repo_tags.contains(&tag)),
            (None, None) => None,
        };
        if let Some((id, _)) = found {
            return Ok(Some(id.clone()));
        }
    }
    if !hex.is_empty() && hex.len() < 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let matches: Vec<&Digest> = index
            .images
            .keys()
            .filter(|id| id.hex().starts_with(hex))
            .collect();
        match matches.as_slice() {
            [id] => return Ok(Some((*id).clone())),
            [] => {}
            _ => bail!("image ID prefix {hex} is ambiguous"),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_IN_USE: &dyn Fn(&Digest) -> bool = &|_| false;

    #[test]
    fn removing_a_name_takes_what_dockers_rmi_takes() {
        let pin = |name: &str| format!("docker.io/library/{name}@sha256:{}", "d".repeat(64));
        let record = ImageRecord {
            manifest: Digest::of(b"manifest"),
            repo_tags: ["a:1", "a:2", "b:1"]
                .map(|tag| format!("docker.io/library/{tag}"))
                .to_vec(),
            repo_digests: vec![pin("a"), pin("b")],
        };
        let going = |name: &str| names_going(&record, name);
        // Another tag of its repository is left: the tag alone.
        assert_eq!(going("a:1"), Some(vec!["docker.io/library/a:1".to_owned()]));
        // Its repository's last tag: its digest names too.
        assert_eq!(
            going("b:1"),
            Some(vec!["docker.io/library/b:1".to_owned(), pin("b")])
        );
        assert_eq!(going(&pin("a")), Some(vec![pin("a")]));
        assert_eq!(going("c:1"), None);
        assert_eq!(going(&format!("sha256:{}", "e".repeat(64))), None);
    }

    use crate::import::one_file_tar as tar_of;

    /// Imports `tar` as a one-layer image named `tag`.
    fn import(store: &Store, tar: &[u8], tag: &str) -> Digest {
        let tag = ImageRef::parse(tag).unwrap();
        crate::import::import_tagged(store, tar, &tag).unwrap()
    }

    /// The bytes of every file in the store's blobs and layers.
    fn stored_bytes(root: &Path) -> u64 {
        fn walk(path: &Path) -> u64 {
            let metadata = fs::symlink_metadata(path).unwrap();
            if !metadata.is_dir() {
                return metadata.len();
            }
            fs::read_dir(path)
                .unwrap()
                .map(|entry| walk(&entry.unwrap().path()))
                .sum()
        }
        walk(&root.join("image/blobs")) + walk(&root.join("image/layers"))
    }

    fn digest(byte: char) -> Digest {
        Digest::parse(&format!("sha256:{}", byte.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn prune_reports_the_images_layers_and_bytes_it_deleted() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let old = tar_of("old", &[b'o'; 5000]);
        let dangling = import(&store, &old, "app:v1");
        let kept = import(&store, &tar_of("new", &[b'n'; 3000]), "app:v1");

        let before = stored_bytes(root.path());
        let pruned = store.prune(false, NOT_IN_USE).unwrap();
        let after = stored_bytes(root.path());
        assert_eq!(
            pruned.images,
            [PrunedImage {
                id: dangling,
                repo_tags: Vec::new(),
                repo_digests: Vec::new(),
                // One layer: its chain ID is its diff_id.
                layers: vec![Digest::of(&old)],
            }]
        );
        assert_eq!(pruned.reclaimed, before - after);
        assert!(pruned.reclaimed > 5000, "{}", pruned.reclaimed);

        let pruned = store.prune(true, NOT_IN_USE).unwrap();
        assert_eq!(pruned.images.len(), 1);
        assert_eq!(pruned.images[0].id, kept);
        assert_eq!(pruned.images[0].repo_tags, ["docker.io/library/app:v1"]);
        assert_eq!(pruned.reclaimed, after);
        assert_eq!(stored_bytes(root.path()), 0);
    }

    #[test]
    fn a_layer_another_image_keeps_is_neither_listed_nor_counted() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let tar = tar_of("shared", &[b's'; 5000]);
        let dangling = import(&store, &tar, "app:v1");
        import(&store, &tar, "app:v1");

        let before = stored_bytes(root.path());
        let pruned = store.prune(false, NOT_IN_USE).unwrap();
        assert_eq!(pruned.images.len(), 1);
        assert_eq!(pruned.images[0].id, dangling);
        assert!(pruned.images[0].layers.is_empty());
        // Its config and manifest only.
        assert_eq!(pruned.reclaimed, before - stored_bytes(root.path()));
        assert!(pruned.reclaimed < 5000, "{}", pruned.reclaimed);
    }

    /// The names in `<root>/image/DIR`.
    fn names_in(root: &Path, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join("image").join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A docker-archive (`hull save` format) of one image tagged `tag`
    /// whose config names the layers `diff_ids` and whose layer files
    /// hold `layers`, whatever those hold.
    fn docker_archive(tag: &str, diff_ids: &[&Digest], layers: &[&[u8]]) -> Vec<u8> {
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let names: Vec<String> = (0..layers.len()).map(|i| format!("{i}.tar")).collect();
        let manifest =
            serde_json::json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": names }]);
        let mut files = vec![
            (
                "manifest.json".to_owned(),
                manifest.to_string().into_bytes(),
            ),
            ("config.json".to_owned(), config.to_string().into_bytes()),
        ];
        files.extend(names.into_iter().zip(layers.iter().map(|l| l.to_vec())));
        let mut archive = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            archive
                .append_data(&mut header, name, &content[..])
                .unwrap();
        }
        archive.into_inner().unwrap()
    }

    #[test]
    fn a_stored_layer_is_reused_only_for_a_blob_shown_to_hold_it() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let secret = tar_of("secret", b"a private image's data");
        import(&store, &secret, "private:v1");
        let diff_id = Digest::of(&secret);
        let ids = |store: &Store| -> Vec<Digest> {
            store
                .images()
                .unwrap()
                .into_iter()
                .map(|image| image.id)
                .collect()
        };
        let before = (names_in(root.path(), "blobs/sha256"), ids(&store));

        // Someone who knows the diff_id names it in a config of their own,
        // with any layer file: refused, and nothing of theirs is kept.
        let decoy = tar_of("decoy", b"x");
        let stolen = docker_archive("stolen:v1", &[&diff_id], &[&decoy]);
        let err = format!("{:#}", crate::load(&store, &stolen[..]).unwrap_err());
        assert!(err.contains("does not match its diff_id"), "{err}");
        assert_eq!(ids(&store), before.1);
        assert_eq!(names_in(root.path(), "blobs/sha256"), before.0);
        assert_eq!(names_in(root.path(), "tmp"), Vec::<String>::new());
        assert_eq!(
            names_in(root.path(), &format!("layers/{}/verified", diff_id.hex())).len(),
            1,
            "only the imported blob is noted"
        );

        // The same content in another blob (here uncompressed) is hashed,
        // not unpacked again, and noted as holding the layer.
        let genuine = docker_archive("copy:v1", &[&diff_id], &[&secret]);
        crate::load(&store, &genuine[..]).unwrap();
        let copy = store.resolve("copy:v1").unwrap();
        assert_eq!(
            fs::read(copy.layers[0].join("secret")).unwrap(),
            b"a private image's data"
        );
        assert_eq!(names_in(root.path(), "layers"), [diff_id.hex()]);
        let verified = names_in(root.path(), &format!("layers/{}/verified", diff_id.hex()));
        assert_eq!(verified.len(), 2, "{verified:?}");
        // The uncompressed blob's digest is the diff_id.
        assert!(verified.contains(&diff_id.hex().to_owned()), "{verified:?}");
    }

    #[test]
    fn a_layer_failing_its_diff_id_leaves_no_staging_directory() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        // Deeper than `remove_dir_all` can remove under a low descriptor
        // limit: staging is removed as the store removes layers.
        let deep = tar_of(&format!("{}/f", vec!["d"; 3000].join("/")), b"");
        let claimed = digest('c');
        let archive = docker_archive("wrong:v1", &[&claimed], &[&deep]);
        let err = format!("{:#}", crate::load(&store, &archive[..]).unwrap_err());
        assert!(err.contains("does not match its diff_id"), "{err}");
        for dir in ["tmp", "layers", "blobs/sha256"] {
            assert_eq!(names_in(root.path(), dir), Vec::<String>::new(), "{dir}");
        }
    }

    /// A gzip layer of 261 KB whose GNU long name claims 256 MiB, and
    /// holds it: one gzip member for the header, then 256 of 1 MiB of 'a'.
    fn header_bomb() -> Vec<u8> {
        use flate2::{write::GzEncoder, Compression};
        let gzip = |data: &[u8]| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        };
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(256 << 20);
        header.set_cksum();
        let mut bomb = gzip(header.as_bytes());
        let mebibyte = gzip(&vec![b'a'; 1 << 20]);
        for _ in 0..256 {
            bomb.extend_from_slice(&mebibyte);
        }
        bomb.extend_from_slice(&gzip(&[0; 1024]));
        bomb
    }

    #[test]
    fn a_header_bomb_is_refused_at_once_in_one_short_line() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let bomb = header_bomb();
        assert!(bomb.len() < 300 << 10, "{} bytes", bomb.len());
        let tag = ImageRef::parse("bomb:v1").unwrap();
        let err = crate::import::import_tagged(&store, &bomb[..], &tag).unwrap_err();
        let line = format!("{err:#}");
        assert_eq!(
            line,
            "a tar header record (GNU long name) claims 268435456 bytes, over the limit of \
             1048576 (image-limits.max-header-bytes in <hull root>/config.json)"
        );
        for dir in ["tmp", "layers", "blobs/sha256"] {
            assert_eq!(names_in(root.path(), dir), Vec::<String>::new(), "{dir}");
        }
    }

    /// A tree deeper than the descriptor limit and the sweep after it.
    #[test]
    fn a_layer_deeper_than_the_descriptor_limit_is_removed_with_the_others() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let deep = tar_of(&format!("{}/f", vec!["d"; 10_000].join("/")), b"");
        import(&store, &deep, "deep:v1");
        import(&store, &tar_of("small", b"s"), "small:v1");
        assert_eq!(names_in(root.path(), "layers").len(), 2);
        // `remove_dir_all` needs a descriptor per level: 10000 > 64.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::tests::child_prunes_under_a_low_fd_limit"])
            .args(["--ignored", "--test-threads=1", "--nocapture"])
            .env("HULL_TEST_ROOT", root.path())
            .status()
            .unwrap();
        assert!(status.success());
        for dir in ["tmp", "layers", "blobs/sha256"] {
            assert_eq!(names_in(root.path(), dir), Vec::<String>::new(), "{dir}");
        }
    }

    /// The child of the test above.
    #[test]
    #[ignore = "run by a_layer_deeper_than_the_descriptor_limit_is_removed_with_the_others"]
    fn child_prunes_under_a_low_fd_limit() {
        let root = std::env::var_os("HULL_TEST_ROOT").expect("run by its parent test");
        let limit = libc::rlimit {
            rlim_cur: 64,
            rlim_max: 64,
        };
        // SAFETY: a valid rlimit struct that outlives the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let store = Store::open(Path::new(&root)).unwrap();
        let pruned = store.prune(true, NOT_IN_USE).unwrap();
        assert_eq!(pruned.images.len(), 2);
    }

    #[test]
    fn layers_are_named_by_chain_id() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let (bottom, top) = (digest('a'), digest('b'));
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": [bottom, top] },
        });
        let id = store.write_blob(config.to_string().as_bytes()).unwrap();
        let chain_ids: Vec<Digest> = store
            .layer_ids(&id)
            .unwrap()
            .into_iter()
            .map(|ids| ids.chain_id)
            .collect();
        let above = Digest::of(format!("{bottom} {top}").as_bytes());
        assert_eq!(chain_ids, [bottom, above]);
    }

    #[test]
    fn a_deleted_layer_is_listed_once_with_the_last_image_using_it() {
        let image = |byte| PrunedImage {
            id: digest(byte),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            layers: Vec::new(),
        };
        let layer = |byte| LayerIds {
            diff_id: digest(byte),
            chain_id: digest(byte),
        };
        let mut images = [image('1'), image('2')];
        let layers = [vec![layer('a'), layer('b')], vec![layer('a'), layer('c')]];
        let deleted: BTreeSet<String> = ['a', 'b', 'c']
            .map(|byte| digest(byte).hex().to_owned())
            .into();
        list_deleted_layers(&mut images, &layers, &deleted);
        assert_eq!(images[0].layers, [digest('b')]);
        assert_eq!(images[1].layers, [digest('c'), digest('a')]);
    }
}
