//! Loading OCI image layouts (as Docker 25+, skopeo, buildah, umoci,
//! BuildKit and containerd write them) and skopeo's `dir:` layout.
//!
//! Each entry of a layout's `index.json` is an image, or an image index
//! whose linux/amd64 image is loaded (through nested indexes); entries
//! for other platforms, attestations and artifacts (a Helm chart, an SBOM)
//! are passed over, and only a layout with no linux/amd64 image at all is
//! refused.

use anyhow::{bail, Context, Result};
use oci_client::manifest::OciImageManifest;

use super::extracted::Extracted;
use super::{
    names_or_id, read_document, store_document, store_file, IMAGE_NAME_ANNOTATION,
    REF_NAME_ANNOTATION,
};
use crate::digest::Digest;
use crate::image_index::{ImageIndex, IndexEntry, Manifest, MAX_INDEX_DEPTH};
use crate::reference::ImageRef;
use crate::store::Store;

/// Where an OCI layout keeps the blob `digest`.
fn layout_blob(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Where skopeo's `dir:` layout keeps the blob `digest`.
fn directory_blob(digest: &Digest) -> String {
    digest.hex().to_owned()
}

/// Loads the linux/amd64 images the layout's `index.json` lists; returns
/// their names (or IDs).
pub(super) fn load_layout(store: &Store, archive: &Extracted) -> Result<Vec<String>> {
    let bytes = read_document(store, archive, "index.json")?;
    let index: ImageIndex =
        serde_json::from_slice(&bytes).context("index.json of the archive is invalid")?;
    let mut names = Vec::new();
    let mut passed_over = None;
    for entry in index.entries() {
        let why = match entry.skipped_because() {
            Some(why) => why,
            None => match image_manifest(store, archive, entry)? {
                Found::Image(digest, size) => {
                    let tags: Vec<String> = layout_entry_name(entry).into_iter().collect();
                    let name = layout_blob(&digest);
                    names.extend(load_image(
                        store,
                        archive,
                        (&name, &digest, size),
                        layout_blob,
                        tags,
                    )?);
                    continue;
                }
                Found::NotAnImage(what) => format!("{} is {what}", entry.digest),
            },
        };
        passed_over.get_or_insert(why);
    }
    if names.is_empty() {
        match passed_over {
            Some(why) => bail!("the archive holds no linux/amd64 image: {why}"),
            None => bail!("the archive holds no image: its index.json lists none"),
        }
    }
    Ok(names)
}

/// Loads the image of skopeo's `dir:` layout, whose `manifest.json` is
/// `manifest`; it has no name.
pub(super) fn load_directory(
    store: &Store,
    archive: &Extracted,
    manifest: &[u8],
) -> Result<Vec<String>> {
    let what = "the manifest.json of the archive's dir: layout";
    match Manifest::parse(manifest).with_context(|| format!("cannot load {what}"))? {
        Manifest::Image => {}
        Manifest::Index(_) => bail!(
            "{what} is an image index: copy the image to an oci-archive: instead \
             (skopeo copy --all dir:DIR oci-archive:FILE)"
        ),
        Manifest::NotAnImage(kind) => bail!("{what} is not an image: it is {kind}"),
    }
    let digest = Digest::of(manifest);
    load_image(
        store,
        archive,
        ("manifest.json", &digest, Some(manifest.len() as u64)),
        directory_blob,
        Vec::new(),
    )
}

/// What an `index.json` entry leads to.
enum Found {
    /// The image manifest to load, and its size where a descriptor says.
    Image(Digest, Option<u64>),
    /// Not an image, and what it is.
    NotAnImage(String),
}

/// The image manifest an `index.json` entry names: the entry's own, or,
/// when it names an image index (a multi-platform image, as `docker buildx
/// build --output type=oci` or `skopeo copy --all` write it), its
/// linux/amd64 image's, through nested indexes.
fn image_manifest(store: &Store, archive: &Extracted, entry: &IndexEntry) -> Result<Found> {
    let mut digest = Digest::parse(&entry.digest)?;
    let mut size = entry.size;
    for _ in 0..=MAX_INDEX_DEPTH {
        let document = read_document(store, archive, &layout_blob(&digest))?;
        let actual = Digest::of(&document);
        if actual != digest {
            bail!("digest mismatch: the archive's document {digest} is {actual}");
        }
        let manifest = Manifest::parse(&document)
            .with_context(|| format!("cannot load the archive's manifest {}", digest.short()))?;
        let index = match manifest {
            Manifest::Image => return Ok(Found::Image(digest, size)),
            Manifest::NotAnImage(what) => return Ok(Found::NotAnImage(what)),
            Manifest::Index(index) => index,
        };
        // An index of other platforms' images is passed over as they are.
        let Some(image) = index.pick() else {
            return Ok(Found::NotAnImage(format!(
                "an image index {} with no linux/amd64 image",
                digest.short()
            )));
        };
        digest = Digest::parse(&image.digest)?;
        size = image.size;
    }
    bail!("the archive's image indexes nest more than {MAX_INDEX_DEPTH} deep")
}

/// Stores the image manifest (archive name, digest and size where known)
/// and the config and layers it names (where `blob` says the archive keeps
/// them), each verified; adds the image as `tags`. Returns its names (or
/// ID).
fn load_image(
    store: &Store,
    archive: &Extracted,
    (name, manifest_digest, manifest_size): (&str, &Digest, Option<u64>),
    blob: fn(&Digest) -> String,
    tags: Vec<String>,
) -> Result<Vec<String>> {
    store_document(store, archive, name, manifest_digest, manifest_size)?;
    let manifest: OciImageManifest = store.load_manifest(manifest_digest)?;
    let config_digest = Digest::parse(&manifest.config.digest)?;
    let config_size = u64::try_from(manifest.config.size).ok();
    store_document(
        store,
        archive,
        &blob(&config_digest),
        &config_digest,
        config_size,
    )?;
    let config = store.read_config(&config_digest, manifest.layers.len())?;
    let diff_ids = config.rootfs().diff_ids();
    for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
        let digest = Digest::parse(&layer.digest)?;
        let size = u64::try_from(layer.size).with_context(|| {
            format!(
                "the manifest gives layer {} a negative size",
                digest.short()
            )
        })?;
        store_file(store, archive, &blob(&digest), Some(&digest), Some(size))?;
        store.unpack_layer(&digest, &Digest::parse(diff_id)?)?;
    }
    let id = store.add_image(manifest_digest, &tags, &[])?;
    Ok(names_or_id(tags, &id))
}

/// The name an index.json entry gives its image: containerd's annotation
/// with the whole name, else the OCI reference name when it is a whole
/// reference (skopeo, buildah and podman write `name:tag` there; a bare
/// tag, as other tools write, names no repository).
fn layout_entry_name(entry: &IndexEntry) -> Option<String> {
    let tagged = |name: &str| ImageRef::parse(name).ok().and_then(|r| r.tagged());
    if let Some(name) = entry.annotations.get(IMAGE_NAME_ANNOTATION) {
        return tagged(name);
    }
    entry
        .annotations
        .get(REF_NAME_ANNOTATION)
        .filter(|name| name.contains(':') || name.contains('/'))
        .and_then(|name| tagged(name))
}
