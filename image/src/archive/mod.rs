//! `hull save` / `hull load`: image archives.
//!
//! `save` writes what Docker 25+ writes: one tar that is both an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/*`) and a docker-archive
//! (`manifest.json` pointing into the same blobs). `load` reads the
//! docker-archives every `docker save` wrote (and skopeo, buildah and crane
//! write), OCI image layouts (`layout`) and skopeo's `dir:` layout, all as
//! tars; docker-archive first, as Docker does. It verifies every blob by
//! digest (and size, where a descriptor gives one) and leaves the store as
//! it was if anything is wrong. The archive is held to the store's
//! [`Limits`](crate::Limits): its header records, its number of entries
//! (`max_layer_entries`), each file to `max_layer_bytes` and each JSON
//! document to `max_document_bytes`.

mod extracted;
mod layout;

use std::fs::File;
use std::io::{self, Read, Write};

use anyhow::{anyhow, bail, Context, Result};
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE, IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
    IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::extracted::Extracted;
use crate::capped::Capped;
use crate::compression::{decompress, Compression};
use crate::digest::Digest;
use crate::limits::{limit_alone, LimitExceeded};
use crate::quote::quoted;
use crate::reference::ImageRef;
use crate::remove_tree::Staging;
use crate::store::{Image, Store};

const ZSTD_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// One image of a docker-archive `manifest.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    /// Docker writes `null` for an image saved by its ID.
    #[serde(default, deserialize_with = "null_as_empty")]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Option::<Vec<String>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Writes the images `names` select to `out` as one archive, each image
/// once with the tags its names keep, as `docker save` does (see
/// [`saved_images`]).
pub fn save(store: &Store, names: &[String], out: impl Write) -> Result<()> {
    let mut selected: Vec<(Image, Vec<String>)> = Vec::new();
    for name in names {
        for (image, tags) in saved_images(store, name)? {
            match selected.iter_mut().find(|(known, _)| known.id == image.id) {
                Some((_, known_tags)) => {
                    for tag in tags {
                        if !known_tags.contains(&tag) {
                            known_tags.push(tag);
                        }
                    }
                }
                None => selected.push((image, tags)),
            }
        }
    }
    let mut tar = tar::Builder::new(out);
    let mut entries = Vec::new();
    let mut index = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    for (image, tags) in &selected {
        let (manifest_digest, manifest) = layout_manifest(store, image)?;
        if written.insert(manifest_digest.clone()) {
            append_bytes(
                &mut tar,
                &format!("blobs/sha256/{}", manifest_digest.hex()),
                &manifest,
            )?;
        }
        let mut blobs = vec![image.id.clone()];
        for layer in &image.manifest.layers {
            blobs.push(Digest::parse(&layer.digest)?);
        }
        for blob in &blobs {
            if written.insert(blob.clone()) {
                let path = store.blob_path(blob);
                let mut file =
                    File::open(&path).with_context(|| format!("blob {blob} is missing"))?;
                tar.append_file(format!("blobs/sha256/{}", blob.hex()), &mut file)?;
            }
        }
        entries.push(ArchiveEntry {
            config: format!("blobs/sha256/{}", image.id.hex()),
            repo_tags: tags.iter().map(|t| familiar_tag(t)).collect(),
            layers: blobs[1..]
                .iter()
                .map(|d| format!("blobs/sha256/{}", d.hex()))
                .collect(),
        });
        let size = manifest.len();
        let names: Vec<Option<&String>> = if tags.is_empty() {
            vec![None]
        } else {
            tags.iter().map(Some).collect()
        };
        for tag in names {
            let mut entry = json!({ "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": manifest_digest, "size": size });
            if let Some(tag) = tag {
                let short_tag = tag.rsplit(':').next().unwrap_or(tag);
                entry["annotations"] =
                    json!({ IMAGE_NAME_ANNOTATION: tag, REF_NAME_ANNOTATION: short_tag });
            }
            index.push(entry);
        }
    }
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({ "schemaVersion": 2, "manifests": index });
    append_bytes(&mut tar, "index.json", &serde_json::to_vec(&index)?)?;
    append_bytes(&mut tar, "manifest.json", &serde_json::to_vec(&entries)?)?;
    tar.into_inner()?.flush()?;
    Ok(())
}

/// The manifest the OCI layout lists for `image`, with its digest: the
/// stored one if it is OCI's; a Docker v2 one given OCI's media types (the
/// same config and layers), as Docker 25 writes them and OCI tools (umoci,
/// skopeo's `oci:`) require of a layout.
fn layout_manifest(store: &Store, image: &Image) -> Result<(Digest, Vec<u8>)> {
    if image.manifest.config.media_type == IMAGE_CONFIG_MEDIA_TYPE {
        let stored = store.read_blob(&image.manifest_digest)?;
        return Ok((image.manifest_digest.clone(), stored));
    }
    let mut manifest = image.manifest.clone();
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_owned());
    manifest.config.media_type = IMAGE_CONFIG_MEDIA_TYPE.to_owned();
    for layer in &mut manifest.layers {
        layer.media_type = match layer.media_type.as_str() {
            IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE => IMAGE_LAYER_GZIP_MEDIA_TYPE,
            IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE => IMAGE_LAYER_MEDIA_TYPE,
            other => other,
        }
        .to_owned();
    }
    let bytes = serde_json::to_vec(&manifest)?;
    Ok((Digest::of(&bytes), bytes))
}

/// The images `docker save NAME` writes, each with the tags it keeps:
/// `NAME:TAG` that tag; a bare repository name (`app`) every tag of that
/// repository, of however many images; an image ID or a digest reference
/// no tag, so that the image loads untagged.
fn saved_images(store: &Store, name: &str) -> Result<Vec<(Image, Vec<String>)>> {
    let reference = ImageRef::parse(name).ok();
    let last_part = name.rsplit('/').next().unwrap_or(name);
    let repository_only = !name.contains('@') && !last_part.contains(':');
    if let Some(reference) = reference.as_ref().filter(|_| repository_only) {
        let repository = reference.name();
        let in_repository =
            |tag: &String| ImageRef::parse(tag).is_ok_and(|tag| tag.name() == repository);
        let images: Vec<(Image, Vec<String>)> = store
            .images()?
            .into_iter()
            .filter_map(|image| {
                let tags: Vec<String> = image
                    .repo_tags
                    .iter()
                    .filter(|t| in_repository(t))
                    .cloned()
                    .collect();
                (!tags.is_empty()).then_some((image, tags))
            })
            .collect();
        if !images.is_empty() {
            return Ok(images);
        }
    }
    let image = store.resolve(name)?;
    let tag = reference
        .filter(|r| r.digest().is_none() && !repository_only)
        .and_then(|r| r.tagged())
        .filter(|tag| image.repo_tags.contains(tag));
    Ok(vec![(image, tag.into_iter().collect())])
}

/// Loads every image in the archive `input` (a tar, or one compressed with
/// gzip, zstd, xz or bzip2, as `docker load` takes) into `store`; returns
/// the names it gave them, each once, in order (an image's ID when it has
/// none), as `docker load` reports them.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<String>> {
    let result = load_verified(store, input);
    if result.is_err() {
        store.discard_unreferenced()?;
    }
    result
}

fn load_verified(store: &Store, input: impl Read) -> Result<Vec<String>> {
    let _adding = store.adding_after_sweep()?;
    let staging = Staging::new_in(&store.tmp_dir(), "load-")
        .context("cannot create a temporary directory")?;
    let input = decompress(input).context("cannot read the archive")?;
    let archive = Extracted::new(input, staging, store.limits()).map_err(limit_alone)?;
    let names = if archive.has_file("manifest.json") {
        let bytes = read_document(store, &archive, "manifest.json")?;
        if bytes.trim_ascii_start().starts_with(b"{") {
            layout::load_directory(store, &archive, &bytes)?
        } else {
            let entries: Vec<ArchiveEntry> = serde_json::from_slice(&bytes)
                .context("manifest.json of the archive is invalid")?;
            let mut names = Vec::new();
            for entry in &entries {
                names.extend(load_docker_entry(store, &archive, entry)?);
            }
            names
        }
    } else if archive.has_file("index.json") {
        layout::load_layout(store, &archive)?
    } else if archive.has_file("repositories") {
        bail!(
            "the archive is in Docker's image format v1 (a repositories file, no manifest.json), \
             which hull does not load: save the image again with Docker 1.10 or later"
        )
    } else {
        bail!("not an image archive: it has neither manifest.json nor index.json")
    };
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}

/// Loads one image of a docker-archive; returns its tags, or its ID.
fn load_docker_entry(
    store: &Store,
    archive: &Extracted,
    entry: &ArchiveEntry,
) -> Result<Vec<String>> {
    let config_bytes = read_document(store, archive, &entry.config)?;
    let config_digest = store.write_blob(&config_bytes)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).context("image config is invalid")?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        bail!(
            "the image config lists {} layers, manifest.json {}",
            diff_ids.len(),
            entry.layers.len()
        );
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in entry.layers.iter().zip(diff_ids) {
        let (digest, size, media_type) = store_layer(store, archive, layer)?;
        store.unpack_layer(&digest, &Digest::parse(diff_id)?)?;
        layers.push(json!({ "mediaType": media_type, "digest": digest, "size": size }));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MEDIA_TYPE,
        "config": { "mediaType": IMAGE_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_bytes.len() },
        "layers": layers,
    }))?;
    let manifest_digest = store.write_blob(&manifest)?;
    let tags = entry
        .repo_tags
        .iter()
        .map(|t| {
            ImageRef::parse(t)
                .map_err(anyhow::Error::from)
                .and_then(|r| {
                    r.tagged()
                        .ok_or_else(|| anyhow!("{} has no tag", quoted(t)))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let id = store.add_image(&manifest_digest, &tags, &[])?;
    Ok(names_or_id(tags, &id))
}

/// What `load` reports for an image: its names, or its ID.
fn names_or_id(tags: Vec<String>, id: &Digest) -> Vec<String> {
    if tags.is_empty() {
        vec![id.to_string()]
    } else {
        tags
    }
}

/// Copies the archive's file `name` into the store as a blob, verified
/// against `expected` and `expected_size` when given. No blob may be
/// larger than a layer.
fn store_file(
    store: &Store,
    archive: &Extracted,
    name: &str,
    expected: Option<&Digest>,
    expected_size: Option<u64>,
) -> Result<(Digest, u64)> {
    let mut file = archive.open(name)?;
    let len = file.metadata()?.len();
    let limits = store.limits();
    if len > limits.max_layer_bytes {
        let what = format!("blob {}", quoted(name));
        return Err(LimitExceeded::layer_bytes(what, Some(len), limits).into());
    }
    let mut writer = store.blob_writer()?;
    io::copy(&mut file, &mut writer)?;
    let (actual, size) = writer.digest();
    store.commit_blob(writer, expected.unwrap_or(&actual), expected_size)?;
    Ok((actual, size))
}

/// Stores the JSON document `name` as [`store_file`] does, up to
/// `max_document_bytes`.
fn store_document(
    store: &Store,
    archive: &Extracted,
    name: &str,
    expected: &Digest,
    expected_size: Option<u64>,
) -> Result<()> {
    // A missing file is store_file's to report.
    let len = archive
        .path(name)
        .ok()
        .and_then(|path| path.metadata().ok())
        .map_or(0, |metadata| metadata.len());
    let what = format!("document {}", expected.short());
    check_document_size(store, &what, expected_size.max(Some(len)))?;
    store_file(store, archive, name, Some(expected), expected_size)?;
    Ok(())
}

/// Fails when a JSON document is, or a descriptor says it is, more than
/// `max_document_bytes`.
fn check_document_size(store: &Store, what: &str, size: Option<u64>) -> Result<()> {
    let limits = store.limits();
    match size {
        Some(size) if size > limits.max_document_bytes => {
            Err(LimitExceeded::document(what, Some(size), limits).into())
        }
        _ => Ok(()),
    }
}

/// The archive's JSON document `name`, up to `max_document_bytes`.
fn read_document(store: &Store, archive: &Extracted, name: &str) -> Result<Vec<u8>> {
    let mut file = archive.open(name)?;
    let len = file.metadata()?.len();
    check_document_size(store, &quoted(name), Some(len))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", quoted(name)))?;
    Ok(bytes)
}

/// Stores the docker-archive layer `name` as a blob with its media type:
/// as it is when plain or compressed as a layer's media type allows (gzip,
/// zstd), else (xz or bzip2, which `docker load` also reads) as the plain
/// tar it holds, so that the image's manifest says what its blobs are.
fn store_layer(
    store: &Store,
    archive: &Extracted,
    name: &str,
) -> Result<(Digest, u64, &'static str)> {
    let mut head = [0u8; 6];
    let mut file = archive.open(name)?;
    let read = file.read(&mut head)?;
    let media_type = match Compression::of(&head[..read]) {
        Compression::None => IMAGE_LAYER_MEDIA_TYPE,
        Compression::Gzip => IMAGE_LAYER_GZIP_MEDIA_TYPE,
        Compression::Zstd => ZSTD_LAYER_MEDIA_TYPE,
        Compression::Xz | Compression::Bzip2 => {
            let limits = store.limits();
            let over =
                || LimitExceeded::layer_bytes(format!("layer {}", quoted(name)), None, limits);
            let mut tar = Capped::new(
                decompress(archive.open(name)?)?,
                limits.max_layer_bytes,
                over,
            );
            let mut writer = store.blob_writer()?;
            io::copy(&mut tar, &mut writer)
                .with_context(|| format!("cannot decompress layer {}", quoted(name)))
                .map_err(limit_alone)?;
            let (digest, size) = writer.digest();
            store.commit_blob(writer, &digest, None)?;
            return Ok((digest, size, IMAGE_LAYER_MEDIA_TYPE));
        }
    };
    let (digest, size) = store_file(store, archive, name, None, None)?;
    Ok((digest, size, media_type))
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

/// `docker.io/library/alpine:latest` as Docker writes it in archives.
fn familiar_tag(tagged: &str) -> String {
    match ImageRef::parse(tagged) {
        Ok(r) => format!("{}:{}", r.familiar_name(), r.tag().unwrap_or("latest")),
        Err(_) => tagged.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE;

    use super::*;

    /// The contents of the file `name` in the tar `archive`.
    fn file_of(archive: &[u8], name: &str) -> Vec<u8> {
        let mut contents = Vec::new();
        tar::Archive::new(archive)
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|entry| entry.path().unwrap().to_str() == Some(name))
            .unwrap()
            .read_to_end(&mut contents)
            .unwrap();
        contents
    }

    /// A one-layer image made from a tiny tar.
    fn sample(store: &Store, tag: &str) -> Digest {
        one_file_image(store, tag, "etc/hello", b"hello")
    }

    /// An image `tag` of one layer holding the file `path`.
    fn one_file_image(store: &Store, tag: &str, path: &str, contents: &[u8]) -> Digest {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder.append_data(&mut header, path, contents).unwrap();
        let tar = builder.into_inner().unwrap();
        crate::import::import_tagged(store, &tar[..], &ImageRef::parse(tag).unwrap()).unwrap()
    }

    /// A store holding `sample:v1`, the image's ID, and the store's
    /// `save` of it.
    fn saved_sample() -> (tempfile::TempDir, Store, Digest, Vec<u8>) {
        let source = tempfile::tempdir().unwrap();
        let store = Store::open(source.path()).unwrap();
        let id = sample(&store, "sample:v1");
        let mut archive = Vec::new();
        save(&store, &["sample:v1".to_owned()], &mut archive).unwrap();
        (source, store, id, archive)
    }

    /// The archive with `skip` left out.
    fn without(archive: &[u8], skip: &str) -> Vec<u8> {
        rewritten(archive, &[skip], &[])
    }

    #[test]
    fn a_save_naming_a_missing_image_writes_nothing() {
        let (_source, store, _id, _archive) = saved_sample();
        let mut archive = Vec::new();
        let names = ["sample:v1".to_owned(), "nope".to_owned()];
        let err = save(&store, &names, &mut archive).unwrap_err();
        assert!(err.is::<crate::NoSuchImage>(), "{err:#}");
        assert!(archive.is_empty(), "{} bytes written", archive.len());
    }

    #[test]
    fn saved_images_load_as_docker_archive_and_as_oci_layout() {
        let (_source, _store, id, archive) = saved_sample();

        for (format, bytes) in [
            ("docker-archive", archive.clone()),
            ("oci-layout", without(&archive, "manifest.json")),
        ] {
            let target = tempfile::tempdir().unwrap();
            let loaded_store = Store::open(target.path()).unwrap();
            let names = load(&loaded_store, &bytes[..]).unwrap();
            assert_eq!(
                names,
                vec!["docker.io/library/sample:v1".to_owned()],
                "{format}"
            );
            let image = loaded_store.resolve("sample:v1").unwrap();
            assert_eq!(image.id, id, "{format} keeps the image ID");
            assert_eq!(
                fs::read(image.layers[0].join("etc/hello")).unwrap(),
                b"hello",
                "{format}"
            );
        }
    }

    #[test]
    fn a_docker_v2_manifest_is_saved_with_ocis_media_types_for_oci_tools() {
        use oci_client::manifest::{IMAGE_DOCKER_CONFIG_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE};
        let (_source, store, id, _archive) = saved_sample();
        let oci = store.resolve("sample:v1").unwrap().manifest;
        let mut docker = oci.clone();
        docker.media_type = Some(IMAGE_MANIFEST_MEDIA_TYPE.into());
        docker.config.media_type = IMAGE_DOCKER_CONFIG_MEDIA_TYPE.into();
        for layer in &mut docker.layers {
            layer.media_type = match layer.media_type.as_str() {
                IMAGE_LAYER_GZIP_MEDIA_TYPE => IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
                _ => IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
            }
            .into();
        }
        let pulled = store
            .write_blob(&serde_json::to_vec(&docker).unwrap())
            .unwrap();
        let tag = "docker.io/library/pulled:v2".to_owned();
        store.add_image(&pulled, &[tag], &[]).unwrap();
        let mut archive = Vec::new();
        save(&store, &["pulled:v2".to_owned()], &mut archive).unwrap();

        let mut files = std::collections::HashMap::new();
        for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(name, bytes);
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let listed = Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap();
        let bytes = &files[&format!("blobs/sha256/{}", listed.hex())];
        assert_eq!(Digest::of(bytes), listed);
        let saved: oci_client::manifest::OciImageManifest = serde_json::from_slice(bytes).unwrap();
        assert_eq!(saved.media_type.as_deref(), Some(OCI_IMAGE_MEDIA_TYPE));
        assert_eq!(json!(saved.config), json!(oci.config));
        assert_eq!(json!(saved.layers), json!(oci.layers));
        let layout = without(&archive, "manifest.json");
        let target = tempfile::tempdir().unwrap();
        let loaded = Store::open(target.path()).unwrap();
        load(&loaded, &layout[..]).unwrap();
        assert_eq!(loaded.resolve("pulled:v2").unwrap().id, id);
    }

    /// The archive with `files` (name, bytes) in place of its own or added.
    fn with_files(archive: &[u8], files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
        rewritten(archive, &names, files)
    }

    /// The archive less its entries named in `drop`, then `add` (name,
    /// bytes) appended.
    fn rewritten(archive: &[u8], drop: &[&str], add: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        let mut input = tar::Archive::new(archive);
        for entry in input.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if !drop.contains(&path.as_str()) {
                let header = entry.header().clone();
                out.append(&header, &mut entry).unwrap();
            }
        }
        for (name, bytes) in add {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            out.append_data(&mut header, name, &bytes[..]).unwrap();
        }
        out.into_inner().unwrap()
    }

    /// What loading `archive` into a fresh store names.
    fn loaded_names(archive: &[u8]) -> Vec<String> {
        let target = tempfile::tempdir().unwrap();
        load(&Store::open(target.path()).unwrap(), archive).unwrap()
    }

    #[test]
    fn oci_layouts_from_other_tools_load_named_and_by_platform() {
        let (_source, store, id, archive) = saved_sample();
        let layout = without(&archive, "manifest.json");
        let manifest = store.resolve("sample:v1").unwrap().manifest_digest;
        let index = |annotations: serde_json::Value, digest: &Digest, media_type: &str| {
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "manifests": [{
                    "mediaType": media_type, "digest": digest, "size": null,
                    "annotations": annotations,
                }],
            }))
            .unwrap()
        };

        let loaded_with_ref_name = |ref_name: &str| {
            let annotations = json!({ REF_NAME_ANNOTATION: ref_name });
            let index_json = index(annotations, &manifest, OCI_IMAGE_MEDIA_TYPE);
            loaded_names(&with_files(&layout, &[("index.json", index_json)]))
        };
        // skopeo's, buildah's and podman's `name:tag` in the OCI ref name.
        assert_eq!(
            loaded_with_ref_name("other:v2"),
            ["docker.io/library/other:v2"]
        );
        // A bare tag names no repository: the image loads untagged.
        assert_eq!(loaded_with_ref_name("v2"), [id.to_string()]);

        // A multi-platform image: an index whose linux/amd64 image is ours.
        let platforms = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": [
                { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": Digest::of(b"arm"), "size": 3,
                  "platform": { "os": "linux", "architecture": "arm64" } },
                { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": manifest, "size": null,
                  "platform": { "os": "linux", "architecture": "amd64" } },
            ],
        }))
        .unwrap();
        let platforms_digest = Digest::of(&platforms);
        let nested = index(
            json!({ REF_NAME_ANNOTATION: "multi:v3" }),
            &platforms_digest,
            OCI_IMAGE_INDEX_MEDIA_TYPE,
        );
        let blob_name = format!("blobs/sha256/{}", platforms_digest.hex());
        let archive = with_files(
            &layout,
            &[("index.json", nested), (&blob_name, platforms.clone())],
        );
        assert_eq!(loaded_names(&archive), ["docker.io/library/multi:v3"]);

        // A layout whose only index has no linux/amd64 image is refused,
        // naming it (beside other images it is passed over, as other
        // platforms' are).
        let arm_only = String::from_utf8(platforms)
            .unwrap()
            .replace("amd64", "s390x")
            .into_bytes();
        let arm_digest = Digest::of(&arm_only);
        let blob_name = format!("blobs/sha256/{}", arm_digest.hex());
        let nested = index(json!({}), &arm_digest, OCI_IMAGE_INDEX_MEDIA_TYPE);
        let archive = with_files(&layout, &[("index.json", nested), (&blob_name, arm_only)]);
        let target = tempfile::tempdir().unwrap();
        let err = load(&Store::open(target.path()).unwrap(), &archive[..]).unwrap_err();
        assert!(
            format!("{err:#}").contains("with no linux/amd64 image"),
            "{err:#}"
        );
        assert!(
            format!("{err:#}").contains("holds no linux/amd64 image"),
            "{err:#}"
        );
    }

    #[test]
    fn compressed_archives_load_as_docker_loads_them() {
        let (_source, _store, _id, archive) = saved_sample();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&archive).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&archive).unwrap();
        for compressed in [gzip.finish().unwrap(), xz.finish().unwrap()] {
            assert_eq!(loaded_names(&compressed), ["docker.io/library/sample:v1"]);
        }
    }

    /// What loading `archive` into a fresh store fails with.
    fn load_error(archive: &[u8]) -> String {
        let target = tempfile::tempdir().unwrap();
        let err = load(&Store::open(target.path()).unwrap(), archive).unwrap_err();
        format!("{err:#}")
    }

    /// A tar of `files` (name, bytes) and `symlinks` (name, target).
    fn tar_of(files: &[(&str, Vec<u8>)], symlinks: &[(&str, &str)]) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            out.append_data(&mut header, name, &bytes[..]).unwrap();
        }
        for (name, target) in symlinks {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            out.append_link(&mut header, name, target).unwrap();
        }
        out.into_inner().unwrap()
    }

    /// The sample's manifest, config and layer blob, as stored.
    fn sample_blobs(store: &Store) -> (Digest, Vec<u8>, Vec<u8>, Vec<u8>) {
        let image = store.resolve("sample:v1").unwrap();
        let layer = Digest::parse(&image.manifest.layers[0].digest).unwrap();
        (
            image.manifest_digest.clone(),
            store.read_blob(&image.manifest_digest).unwrap(),
            store.read_blob(&image.id).unwrap(),
            store.read_blob(&layer).unwrap(),
        )
    }

    /// A JSON document's bytes and the archive name of its blob.
    fn json_blob(document: &serde_json::Value) -> (Vec<u8>, String) {
        let bytes = serde_json::to_vec(document).unwrap();
        let name = format!("blobs/sha256/{}", Digest::of(&bytes).hex());
        (bytes, name)
    }

    #[test]
    fn a_legacy_docker_save_with_a_layer_held_twice_loads_every_tag() {
        // docker save before v25: `<id>/layer.tar` per layer, a layer seen
        // before linked to its first copy, the config at `<id>.json`.
        let (_source, store, _id, _archive) = saved_sample();
        let (_, _, config, layer) = sample_blobs(&store);
        let mut config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        let diff_id = config["rootfs"]["diff_ids"][0].clone();
        config["rootfs"]["diff_ids"] = json!([diff_id, diff_id]);
        let config = serde_json::to_vec(&config).unwrap();
        let config_name = format!("{}.json", Digest::of(&config).hex());
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": ["legacy:v1", "me/legacy:latest"],
            "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"],
        }]);
        let archive = tar_of(
            &[
                (&config_name, config),
                ("aaaa/VERSION", b"1.0".to_vec()),
                ("aaaa/layer.tar", layer),
                ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
                ("repositories", br#"{"legacy":{"v1":"bbbb"}}"#.to_vec()),
            ],
            &[("bbbb/layer.tar", "../aaaa/layer.tar")],
        );
        let target = tempfile::tempdir().unwrap();
        let loaded_store = Store::open(target.path()).unwrap();
        assert_eq!(
            load(&loaded_store, &archive[..]).unwrap(),
            ["docker.io/library/legacy:v1", "docker.io/me/legacy:latest"]
        );
        assert_eq!(loaded_store.resolve("me/legacy").unwrap().layers.len(), 2);

        // Before manifest.json (Docker 1.9 and older): one clear line.
        let v1 = tar_of(&[("repositories", b"{}".to_vec())], &[]);
        assert!(load_error(&v1).contains("Docker's image format v1"));
    }

    #[test]
    fn xz_and_bzip2_layers_of_a_docker_archive_are_stored_as_plain_tars() {
        // docker load reads a layer.tar compressed with xz or bzip2; no
        // media type says either, so the layer is kept as its plain tar.
        let (_source, store, id, _archive) = saved_sample();
        let (_, _, config, layer) = sample_blobs(&store);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut tar)
            .unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).unwrap();
        let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bzip2.write_all(&tar).unwrap();
        for compressed in [xz.finish().unwrap(), bzip2.finish().unwrap()] {
            let manifest = json!([{
                "Config": "config.json", "RepoTags": ["packed:v1"], "Layers": ["l/layer.tar"],
            }]);
            let archive = tar_of(
                &[
                    ("config.json", config.clone()),
                    ("l/layer.tar", compressed),
                    ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
                ],
                &[],
            );
            let target = tempfile::tempdir().unwrap();
            let loaded_store = Store::open(target.path()).unwrap();
            load(&loaded_store, &archive[..]).unwrap();
            let image = loaded_store.resolve("packed:v1").unwrap();
            assert_eq!(image.id, id);
            let stored = &image.manifest.layers[0];
            assert_eq!(stored.media_type, IMAGE_LAYER_MEDIA_TYPE);
            assert_eq!(stored.digest, Digest::of(&tar).as_str());
            assert_eq!(
                fs::read(image.layers[0].join("etc/hello")).unwrap(),
                b"hello"
            );
        }
    }

    #[test]
    fn a_layout_index_passes_over_other_platforms_attestations_and_artifacts() {
        let (_source, store, _id, archive) = saved_sample();
        let layout = without(&archive, "manifest.json");
        let (manifest, manifest_bytes, _, _) = sample_blobs(&store);
        let (chart, chart_name) = json_blob(&json!({
            "schemaVersion": 2,
            "config": { "mediaType": "application/vnd.cncf.helm.config.v1+json",
                        "digest": Digest::of(b"{}"), "size": 2 },
            "layers": [],
        }));
        // Neither the arm64 image's nor the attestation's blobs are in the
        // archive (as containerd saves a single-platform pull): neither is
        // read.
        let index = json!({ "schemaVersion": 2, "manifests": [
            { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": Digest::of(b"arm"), "size": 3,
              "platform": { "os": "linux", "architecture": "arm64" },
              "annotations": { REF_NAME_ANNOTATION: "plat:v1" } },
            { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": Digest::of(b"att"), "size": 3,
              "platform": { "os": "unknown", "architecture": "unknown" },
              "annotations": { "vnd.docker.reference.type": "attestation-manifest" } },
            { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": Digest::of(&chart), "size": chart.len(),
              "annotations": { REF_NAME_ANNOTATION: "chart:v1" } },
            { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": manifest, "size": manifest_bytes.len(),
              "platform": { "os": "linux", "architecture": "amd64" },
              "annotations": { REF_NAME_ANNOTATION: "plat:v1" } },
        ]});
        let index = serde_json::to_vec(&index).unwrap();
        let files = [("index.json", index), (&chart_name, chart.clone())];
        assert_eq!(
            loaded_names(&with_files(&layout, &files)),
            ["docker.io/library/plat:v1"]
        );

        // A layout of nothing hull runs says why.
        let only_chart = json!({ "schemaVersion": 2, "manifests": [
            { "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": Digest::of(&chart), "size": chart.len() },
        ]});
        let files = [
            ("index.json", serde_json::to_vec(&only_chart).unwrap()),
            (&chart_name, chart),
        ];
        let err = load_error(&with_files(&layout, &files));
        assert!(
            err.starts_with("the archive holds no linux/amd64 image: sha256:")
                && err.ends_with(
                    "is an artifact whose config is application/vnd.cncf.helm.config.v1+json"
                ),
            "{err}"
        );
    }

    #[test]
    fn nested_indexes_lead_to_the_linux_amd64_image() {
        let (_source, store, _id, archive) = saved_sample();
        let layout = without(&archive, "manifest.json");
        let (manifest, manifest_bytes, _, _) = sample_blobs(&store);
        let (inner, inner_name) = json_blob(&json!({
            "schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": [{ "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": manifest,
                            "size": manifest_bytes.len(),
                            "platform": { "os": "linux", "architecture": "amd64" } }],
        }));
        let (outer, outer_name) = json_blob(&json!({
            "schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": [{ "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE, "digest": Digest::of(&inner),
                            "size": inner.len() }],
        }));
        let index = json!({ "schemaVersion": 2, "manifests": [
            { "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE, "digest": Digest::of(&outer), "size": outer.len(),
              "annotations": { REF_NAME_ANNOTATION: "nested:v1" } },
        ]});
        let files = [
            ("index.json", serde_json::to_vec(&index).unwrap()),
            (&inner_name, inner),
            (&outer_name, outer),
        ];
        assert_eq!(
            loaded_names(&with_files(&layout, &files)),
            ["docker.io/library/nested:v1"]
        );
    }

    #[test]
    fn a_schema_1_manifest_is_refused_in_one_line() {
        let (_source, _store, _id, archive) = saved_sample();
        let layout = without(&archive, "manifest.json");
        let (schema1, schema1_name) = json_blob(&json!({
            "schemaVersion": 1, "name": "library/old", "tag": "v1",
            "fsLayers": [], "history": [], "signatures": [],
        }));
        let index = json!({ "schemaVersion": 2, "manifests": [
            { "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws",
              "digest": Digest::of(&schema1), "size": schema1.len() },
        ]});
        let files = [
            ("index.json", serde_json::to_vec(&index).unwrap()),
            (&schema1_name, schema1),
        ];
        let err = load_error(&with_files(&layout, &files));
        assert!(
            err.starts_with("cannot load the archive's manifest")
                && err.contains("image manifest schema 1"),
            "{err}"
        );
    }

    #[test]
    fn a_skopeo_dir_layout_loads_untagged() {
        // `skopeo copy ... dir:DIR`, tarred: the manifest as manifest.json,
        // each blob by its hex digest, a version file.
        let (_source, store, id, _archive) = saved_sample();
        let (_, manifest, config, layer) = sample_blobs(&store);
        let archive = tar_of(
            &[
                ("manifest.json", manifest),
                (Digest::of(&config).hex(), config.clone()),
                (Digest::of(&layer).hex(), layer),
                ("version", b"Directory Transport Version: 1.1\n".to_vec()),
            ],
            &[],
        );
        assert_eq!(loaded_names(&archive), [id.to_string()]);
    }

    /// The `RepoTags` of each image `save` writes for `names`.
    fn saved_tags(store: &Store, names: &[&str]) -> Vec<Vec<String>> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut archive = Vec::new();
        save(store, &names, &mut archive).unwrap();
        let manifest = file_of(&archive, "manifest.json");
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&manifest).unwrap();
        entries.into_iter().map(|entry| entry.repo_tags).collect()
    }

    #[test]
    fn save_keeps_the_tags_docker_save_keeps() {
        let (_source, store, id, _archive) = saved_sample();
        for tag in ["sample:v2", "other:x"] {
            store
                .tag("sample:v1", &ImageRef::parse(tag).unwrap())
                .unwrap();
        }
        // A second image in the same repository.
        one_file_image(&store, "sample:v3", "two", b"two");

        assert_eq!(saved_tags(&store, &["sample:v1"]), [["sample:v1"]]);
        // By ID or a prefix of it: untagged, as Docker saves it.
        let no_tags: [[&str; 0]; 1] = [[]];
        assert_eq!(saved_tags(&store, &[id.as_str()]), no_tags);
        assert_eq!(saved_tags(&store, &[&id.hex()[..12]]), no_tags);
        // A repository: each of its images with its tags there.
        let mut by_repository = saved_tags(&store, &["sample"]);
        by_repository.sort();
        assert_eq!(
            by_repository,
            [vec!["sample:v1", "sample:v2"], vec!["sample:v3"]]
        );
        // One image named twice is written once, with both names.
        assert_eq!(
            saved_tags(&store, &["sample:v1", "other:x", "sample:v1"]),
            [["sample:v1", "other:x"]]
        );
    }

    #[test]
    fn an_image_docker_saved_by_its_id_loads_untagged() {
        let (_source, _store, id, archive) = saved_sample();
        let manifest = file_of(&archive, "manifest.json");
        let by_id = String::from_utf8(manifest)
            .unwrap()
            .replace(r#"["sample:v1"]"#, "null")
            .into_bytes();
        let archive = with_files(&archive, &[("manifest.json", by_id)]);
        assert_eq!(loaded_names(&archive), [id.to_string()]);
    }

    #[test]
    fn a_corrupt_archive_leaves_the_store_as_it_was() {
        let (_source, _store, _id, archive) = saved_sample();
        let layout = without(&archive, "manifest.json");
        // Flip one byte inside the first blob's data.
        let mut corrupt = layout.clone();
        corrupt[512 + 10] ^= 0xff;

        let target = tempfile::tempdir().unwrap();
        let loaded_store = Store::open(target.path()).unwrap();
        let err = format!("{:#}", load(&loaded_store, &corrupt[..]).unwrap_err());
        assert!(err.contains("digest mismatch"), "{err}");
        assert!(loaded_store.images().unwrap().is_empty());
        for dir in ["image/blobs/sha256", "image/layers", "image/tmp"] {
            assert_eq!(
                fs::read_dir(target.path().join(dir)).unwrap().count(),
                0,
                "{dir} is empty"
            );
        }
    }
}
