//! `hull import`: a root filesystem tar becomes a one-layer image.

use std::io::{self, Read};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use crate::capped::Capped;
use crate::digest::{Digest, HashingReader};
use crate::limits::{limit_alone, LimitExceeded};
use crate::reference::ImageRef;
use crate::store::Store;
use crate::tar_guard::TarGuard;

/// A change to an imported image's config (`import -c`), given Docker's
/// JSON `config` object (`Env`, `Cmd`, ...); its error stops the import
/// before anything is stored.
pub type ConfigChange<'a> = &'a dyn Fn(&mut Map<String, Value>) -> Result<()>;

/// How to import a root filesystem tar.
pub struct ImportOptions<'a> {
    /// A name for the image (none: untagged).
    pub tag: Option<&'a ImageRef>,
    /// The image's comment, in its config and history entry (`-m`);
    /// Docker's `Imported from SOURCE` when empty.
    pub message: &'a str,
    /// Where the tar came from (`-`, a path or a URL), for that comment.
    pub source: &'a str,
    /// Applied to the empty config (`-c`).
    pub change: ConfigChange<'a>,
}

/// Stores the tar stream `rootfs` (plain, gzip, zstd, xz or bzip2) as a gzip layer of
/// a new linux/amd64 image whose config is what `options.change` makes of an empty
/// one; returns its ID. The tar is held to the store's [`Limits`](crate::Limits) as
/// it is read. On failure the store is left as it was.
pub fn import_tar(store: &Store, rootfs: impl Read, options: &ImportOptions<'_>) -> Result<Digest> {
    let mut settings = Map::new();
    (options.change)(&mut settings)?;
    let result = import(store, rootfs, settings, options);
    if result.is_err() {
        store.discard_unreferenced()?;
    }
    result
}

fn import(
    store: &Store,
    rootfs: impl Read,
    settings: Map<String, Value>,
    options: &ImportOptions<'_>,
) -> Result<Digest> {
    let _adding = store.adding_after_sweep()?;
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
    let comment = match options.message {
        "" => format!("Imported from {}", options.source),
        message => message.to_owned(),
    };
    let config = serde_json::to_vec(&json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "comment": comment,
        "config": settings,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "comment": comment }],
    }))?;
    let config_digest = store.write_blob(&config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": { "mediaType": IMAGE_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": IMAGE_LAYER_GZIP_MEDIA_TYPE, "digest": blob, "size": blob_size }],
    }))?;
    let manifest_digest = store.write_blob(&manifest)?;
    let tags: Vec<String> = options.tag.and_then(ImageRef::tagged).into_iter().collect();
    store.add_image(&manifest_digest, &tags, &[])
}

/// A tar of one file `name` holding `content`, owned by root, for tests.
#[cfg(test)]
pub(crate) fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_data(&mut header, name, content).unwrap();
    tar.into_inner().unwrap()
}

/// Imports `rootfs` as it is, tagged `tag`, for tests of what reads images.
#[cfg(test)]
pub(crate) fn import_tagged(store: &Store, rootfs: impl Read, tag: &ImageRef) -> Result<Digest> {
    fn unchanged(_: &mut Map<String, Value>) -> Result<()> {
        Ok(())
    }
    let options = ImportOptions {
        tag: Some(tag),
        message: "",
        source: "-",
        change: &unchanged,
    };
    import_tar(store, rootfs, &options)
}

#[cfg(test)]
mod tests {
    use anyhow::anyhow;

    use super::*;

    /// A tar of one empty file `name`.
    fn rootfs(name: &str) -> Vec<u8> {
        one_file_tar(name, b"")
    }

    fn set_cmd(config: &mut Map<String, Value>) -> Result<()> {
        config.insert("Cmd".into(), json!(["/bin/sh"]));
        Ok(())
    }

    #[test]
    fn changes_and_the_comment_shape_the_config() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let tag = ImageRef::parse("imported:v1").unwrap();
        let mut options = ImportOptions {
            tag: Some(&tag),
            message: "",
            source: "rootfs.tar",
            change: &set_cmd,
        };
        let id = import_tar(&store, &rootfs("a")[..], &options).unwrap();
        let config = store
            .image_config(&store.resolve(id.as_str()).unwrap())
            .unwrap();
        assert_eq!(config["config"], json!({ "Cmd": ["/bin/sh"] }));
        assert_eq!(config["comment"], "Imported from rootfs.tar");
        assert_eq!(config["history"][0]["comment"], "Imported from rootfs.tar");
        assert!(config["history"][0].get("created_by").is_none());

        options.message = "base system";
        let id = import_tar(&store, &rootfs("b")[..], &options).unwrap();
        let config = store
            .image_config(&store.resolve(id.as_str()).unwrap())
            .unwrap();
        assert_eq!(config["comment"], "base system");
        assert_eq!(config["history"][0]["comment"], "base system");
    }

    #[test]
    fn a_change_that_fails_stores_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let refuse = |_: &mut Map<String, Value>| -> Result<()> { Err(anyhow!("bad change")) };
        let options = ImportOptions {
            tag: None,
            message: "",
            source: "-",
            change: &refuse,
        };
        let err = import_tar(&store, &rootfs("a")[..], &options).unwrap_err();
        assert_eq!(err.to_string(), "bad change");
        assert!(store.images().unwrap().is_empty());
        let blobs = root.path().join("blobs/sha256");
        assert!(!blobs.exists() || blobs.read_dir().unwrap().next().is_none());
    }
}
