//! `hull import`: a root filesystem tar becomes a one-layer image.

use std::io::{self, Read};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::capped::Capped;
use crate::digest::{Digest, HashingReader};
use crate::limits::{limit_alone, LimitExceeded};
use crate::reference::ImageRef;
use crate::store::Store;
use crate::tar_guard::TarGuard;

/// Stores the tar stream `rootfs` (plain, gzip, zstd, xz or bzip2) as a gzip layer of
/// a new linux/amd64 image with an empty config, tagged `tag`; returns its ID.
/// The tar is held to the store's [`Limits`](crate::Limits) as it is read.
/// On failure the store is left as it was.
pub fn import_tar(store: &Store, rootfs: impl Read, tag: Option<&ImageRef>) -> Result<Digest> {
    let result = import(store, rootfs, tag);
    if result.is_err() {
        store.discard_unreferenced()?;
    }
    result
}

fn import(store: &Store, rootfs: impl Read, tag: Option<&ImageRef>) -> Result<Digest> {
    let _adding = store.adding()?;
    let limits = store.limits();
    let stream = Capped::new(
        crate::compression::decompress(rootfs)?,
        limits.max_layer_bytes,
        || LimitExceeded::layer_bytes("the uncompressed tar", None, limits),
    );
    let mut tar = HashingReader::new(TarGuard::new(stream, limits));
    let mut gzip = GzEncoder::new(store.blob_writer()?, flate2::Compression::default());
    io::copy(&mut tar, &mut gzip)
        .context("cannot read the root filesystem tar")
        .map_err(limit_alone)?;
    let writer = gzip.finish().context("cannot compress the layer")?;
    let (diff_id, _) = tar.finish();
    let (blob, blob_size) = writer.digest();
    store.commit_blob(writer, &blob, None)?;
    store.unpack_layer(&blob, &diff_id)?;

    let created = time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .context("cannot format the time")?;
    let config = serde_json::to_vec(&json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "hull import" }],
    }))?;
    let config_digest = store.write_blob(&config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": { "mediaType": IMAGE_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": IMAGE_LAYER_GZIP_MEDIA_TYPE, "digest": blob, "size": blob_size }],
    }))?;
    let manifest_digest = store.write_blob(&manifest)?;
    let tags: Vec<String> = tag.and_then(ImageRef::tagged).into_iter().collect();
    store.add_image(&manifest_digest, &tags, &[])
}
