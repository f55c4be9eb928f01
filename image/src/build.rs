//! What an image builder (`hull build`) adds to the store: layers from tar
//! streams, images from a config and their layers, and the build cache.
//!
//! The build cache is one file per entry, `build-cache/<key hex>.json`,
//! each a builder's state after one instruction (opaque JSON here) and the
//! layers it stands on. Garbage collection keeps what the entries name;
//! [`Store::prune_build_cache`] drops them.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::digest::{Digest, HashingReader};
use crate::reference::ImageRef;
use crate::store::{Image, Store};

/// A layer in the store, as an image's manifest and config name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The digest of its uncompressed tar (the config's `diff_ids`).
    pub diff_id: Digest,
    /// The digest of its stored, gzip-compressed blob.
    pub blob: Digest,
    /// The blob's size in bytes.
    pub blob_size: u64,
}

/// One build cache entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The builder's state after the instruction.
    pub state: serde_json::Value,
    /// The layers of that state, bottom first.
    pub layers: Vec<Layer>,
}

/// What [`Store::build_cache_usage`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    /// Cache entries.
    pub entries: usize,
    /// Bytes of the blobs and unpacked layers they name.
    pub bytes: u64,
    /// Of those, the bytes of the ones no image shares.
    pub exclusive_bytes: u64,
}

/// What [`Store::prune_build_cache`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PrunedCache {
    /// Cache entries.
    pub entries: usize,
    /// Bytes of blobs and layers only they kept.
    pub reclaimed: u64,
}

/// Held while a build adds to the store: nothing it added but has not
/// recorded yet is collected meanwhile.
#[derive(Debug)]
pub struct Adding(#[allow(dead_code)] File);

impl Store {
    /// Holds off removals (they wait) until the guard is dropped, so that
    /// layers added one by one survive until an image or cache entry names
    /// them.
    pub fn hold_additions(&self) -> Result<Adding> {
        self.adding().map(Adding)
    }

    /// Stores the tar stream `tar` (plain) as a layer: compressed into a
    /// blob and unpacked, unless the store has it already.
    pub fn add_layer(&self, tar: impl Read) -> Result<Layer> {
        let _adding = self.adding()?;
        let mut tar = HashingReader::new(tar);
        let mut gzip = GzEncoder::new(self.blob_writer()?, flate2::Compression::fast());
        io::copy(&mut tar, &mut gzip).context("cannot read the layer tar")?;
        let writer = gzip.finish().context("cannot compress the layer")?;
        let (diff_id, _) = tar.finish();
        let (blob, blob_size) = writer.digest();
        self.commit_blob(writer, &blob, None)?;
        self.unpack_layer(&blob, &diff_id)?;
        Ok(Layer {
            diff_id,
            blob,
            blob_size,
        })
    }

    /// The unpacked directory of layer `diff_id`, which must be stored.
    pub fn layer(&self, diff_id: &Digest) -> Result<PathBuf> {
        match self.has_layer(diff_id) {
            true => Ok(self.layer_dir(diff_id)),
            false => anyhow::bail!("layer {} is missing from the store", diff_id.short()),
        }
    }

    /// The config of `image` as stored: Docker's JSON, with the fields hull
    /// does not model (`Healthcheck`, `OnBuild`, ...) kept.
    pub fn image_config(&self, image: &Image) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.read_blob(&image.id)?)
            .with_context(|| format!("image config {} is invalid", image.id))
    }

    /// Records an image of the stored `layers` (bottom first) whose config
    /// is `config` (its `rootfs` must name them), tagged `tags`; returns
    /// its ID. The same config and layers give the same ID.
    pub fn add_built_image(
        &self,
        config: &[u8],
        layers: &[Layer],
        tags: &[ImageRef],
    ) -> Result<Digest> {
        let _adding = self.adding()?;
        let config_digest = self.write_blob(config)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "config": {
                "mediaType": IMAGE_CONFIG_MEDIA_TYPE,
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers.iter().map(|layer| json!({
                "mediaType": IMAGE_LAYER_GZIP_MEDIA_TYPE,
                "digest": layer.blob,
                "size": layer.blob_size,
            })).collect::<Vec<_>>(),
        }))?;
        let manifest_digest = self.write_blob(&manifest)?;
        let tags: Vec<String> = tags.iter().filter_map(ImageRef::tagged).collect();
        self.add_image(&manifest_digest, &tags, &[])
    }

    /// The build cache entry under `key`, if there is one whose layers are
    /// all stored.
    pub fn cached(&self, key: &Digest) -> Result<Option<CacheEntry>> {
        let path = self.cache_dir().join(format!("{}.json", key.hex()));
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        // A corrupt entry is a miss: the step runs again and replaces it.
        let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes) else {
            return Ok(None);
        };
        let complete = entry
            .layers
            .iter()
            .all(|layer| self.has_layer(&layer.diff_id) && self.has_blob(&layer.blob));
        Ok(complete.then_some(entry))
    }

    /// Records `entry` under `key`, replacing what was there.
    pub fn cache(&self, key: &Digest, entry: &CacheEntry) -> Result<()> {
        let dir = self.cache_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut file = tempfile::Builder::new()
            .prefix(".entry-")
            .tempfile_in(&dir)
            .context("cannot write a build cache entry")?;
        // Serialized whole, then written at once: straight to the file
        // would be a write for every token.
        file.write_all(&serde_json::to_vec(entry)?)
            .context("cannot write a build cache entry")?;
        file.persist(dir.join(format!("{}.json", key.hex())))
            .context("cannot write a build cache entry")?;
        Ok(())
    }

    /// Drops every build cache entry, then the blobs and layers no image
    /// needs.
    pub fn prune_build_cache(&self) -> Result<PrunedCache> {
        let _gc = self.exclude_changes()?;
        let dir = self.cache_dir();
        let mut entries = 0;
        if dir.is_dir() {
            for entry in
                fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
            {
                let path = entry?.path();
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                entries += 1;
            }
        }
        let reclaimed = self.collect_garbage()?.bytes;
        Ok(PrunedCache { entries, reclaimed })
    }

    /// What the build cache holds: its entries, the bytes of the blobs and
    /// unpacked layers they name, and of those the bytes no image shares.
    pub fn build_cache_usage(&self) -> Result<CacheUsage> {
        let mut entries = 0;
        let mut layers = std::collections::BTreeMap::new();
        if let Ok(dir) = fs::read_dir(self.cache_dir()) {
            for entry in dir.flatten() {
                let Ok(bytes) = fs::read(entry.path()) else {
                    continue;
                };
                if let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes) {
                    entries += 1;
                    for layer in entry.layers {
                        layers.insert(layer.diff_id.to_string(), layer);
                    }
                }
            }
        }
        let mut imaged = BTreeSet::new();
        for image in self.images()? {
            imaged.extend(image.layers.iter().cloned());
        }
        let mut usage = CacheUsage {
            entries,
            ..CacheUsage::default()
        };
        for layer in layers.into_values() {
            let dir = self.layer_dir(&layer.diff_id);
            let bytes = layer.blob_size + dir_bytes(&dir);
            usage.bytes += bytes;
            if !imaged.contains(&dir) {
                usage.exclusive_bytes += bytes;
            }
        }
        Ok(usage)
    }

    /// The blobs and layers (hex digests) the build cache names, for
    /// garbage collection to keep.
    pub(crate) fn cache_references(
        &self,
        blobs: &mut BTreeSet<String>,
        layers: &mut BTreeSet<String>,
    ) {
        let Ok(entries) = fs::read_dir(self.cache_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(bytes) = fs::read(entry.path()) else {
                continue;
            };
            let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes) else {
                continue;
            };
            for layer in entry.layers {
                blobs.insert(layer.blob.hex().to_owned());
                layers.insert(layer.diff_id.hex().to_owned());
            }
        }
    }
}

/// Bytes of the files below `dir` (apparent sizes, hard links once).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        } else {
            total += meta.len();
        }
    }
    total
}
