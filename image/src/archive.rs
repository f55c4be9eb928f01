//! `hull save` / `hull load`: image archives.
//!
//! `save` writes what Docker 25+ writes: one tar that is both an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/*`) and a docker-archive
//! (`manifest.json` pointing into the same blobs). `load` reads either
//! format (docker-archive first, as Docker does), verifies every blob by
//! digest (and size, where a descriptor gives one) and leaves the store as
//! it was if anything is wrong. The archive is held to the store's
//! [`Limits`](crate::Limits): its header records, its number of entries
//! (`max_layer_entries`), each file to `max_layer_bytes` and each JSON
//! document to `max_document_bytes`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_client::manifest::{
    OciImageManifest, IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::compression::decompress;
use crate::digest::Digest;
use crate::image_index::ImageIndex;
use crate::limits::{limit_alone, LimitExceeded, Limits};
use crate::quote::{quoted, quoted_path};
use crate::reference::ImageRef;
use crate::remove_tree::Staging;
use crate::store::Store;
use crate::tar_guard::TarGuard;

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

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<LayoutEntry>,
}

#[derive(Deserialize)]
struct LayoutEntry {
    digest: String,
    size: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Writes the images `names` (names or IDs) to `out` as one archive.
pub fn save(store: &Store, names: &[String], out: impl Write) -> Result<()> {
    // All found before a byte is written: a name that is not there leaves
    // no partial archive (nor the end blocks a dropped builder writes).
    let images = names
        .iter()
        .map(|name| Ok((name, store.resolve(name)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut tar = tar::Builder::new(out);
    let mut entries = Vec::new();
    let mut index = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    for (name, image) in images {
        let mut blobs = vec![image.manifest_digest.clone(), image.id.clone()];
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
        let explicit_tag = ImageRef::parse(name)
            .ok()
            .and_then(|r| r.tagged())
            .filter(|t| image.repo_tags.contains(t));
        let tags: Vec<String> = match explicit_tag {
            Some(tag) => vec![tag],
            None => image.repo_tags.clone(),
        };
        entries.push(ArchiveEntry {
            config: format!("blobs/sha256/{}", image.id.hex()),
            repo_tags: tags.iter().map(|t| familiar_tag(t)).collect(),
            layers: blobs[2..]
                .iter()
                .map(|d| format!("blobs/sha256/{}", d.hex()))
                .collect(),
        });
        let size = store.read_blob(&image.manifest_digest)?.len();
        let names: Vec<Option<&String>> = if tags.is_empty() {
            vec![None]
        } else {
            tags.iter().map(Some).collect()
        };
        for tag in names {
            let mut entry = json!({ "mediaType": OCI_IMAGE_MEDIA_TYPE, "digest": image.manifest_digest, "size": size });
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

/// Loads every image in the archive `input` (a tar, or one compressed with
/// gzip, zstd, xz or bzip2, as `docker load` takes) into `store`; returns
/// their names (or IDs when untagged).
pub fn load(store: &Store, input: impl Read) -> Result<Vec<String>> {
    let result = load_verified(store, input);
    if result.is_err() {
        store.discard_unreferenced()?;
    }
    result
}

fn load_verified(store: &Store, input: impl Read) -> Result<Vec<String>> {
    let _adding = store.adding()?;
    let staging = Staging::new_in(&store.tmp_dir(), "load-")
        .context("cannot create a temporary directory")?;
    let input = decompress(input).context("cannot read the archive")?;
    extract_files(input, staging.path(), store.limits()).map_err(limit_alone)?;
    let dir = staging.path();
    if dir.join("manifest.json").is_file() {
        let bytes = read_document(store, dir, "manifest.json")?;
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(&bytes).context("manifest.json of the archive is invalid")?;
        entries
            .iter()
            .map(|entry| load_docker_entry(store, dir, entry))
            .collect()
    } else if dir.join("index.json").is_file() {
        let bytes = read_document(store, dir, "index.json")?;
        let index: LayoutIndex =
            serde_json::from_slice(&bytes).context("index.json of the archive is invalid")?;
        index
            .manifests
            .iter()
            .map(|entry| load_layout_entry(store, dir, entry))
            .collect()
    } else {
        bail!("not an image archive: it has neither manifest.json nor index.json")
    }
}

fn load_docker_entry(store: &Store, dir: &Path, entry: &ArchiveEntry) -> Result<String> {
    let config_bytes = read_document(store, dir, &entry.config)?;
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
        let path = archive_path(dir, layer)?;
        let (digest, size) = store_file(store, &path, None, None)?;
        store.unpack_layer(&digest, &Digest::parse(diff_id)?)?;
        layers
            .push(json!({ "mediaType": layer_media_type(&path)?, "digest": digest, "size": size }));
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
    Ok(tags.first().cloned().unwrap_or_else(|| id.to_string()))
}

fn load_layout_entry(store: &Store, dir: &Path, entry: &LayoutEntry) -> Result<String> {
    let (manifest_digest, manifest_size) = platform_manifest(store, dir, entry)?;
    let blob = |digest: &Digest| dir.join("blobs/sha256").join(digest.hex());
    store_document(
        store,
        &blob(&manifest_digest),
        &manifest_digest,
        manifest_size,
    )?;
    let manifest: OciImageManifest = store.load_manifest(&manifest_digest)?;
    let config_digest = Digest::parse(&manifest.config.digest)?;
    let config_size = u64::try_from(manifest.config.size).ok();
    store_document(store, &blob(&config_digest), &config_digest, config_size)?;
    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&config_digest)?)
        .context("image config is invalid")?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers.len() {
        bail!(
            "the image config lists {} layers, the manifest {}",
            diff_ids.len(),
            manifest.layers.len()
        );
    }
    for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
        let digest = Digest::parse(&layer.digest)?;
        let size = u64::try_from(layer.size).with_context(|| {
            format!(
                "the manifest gives layer {} a negative size",
                digest.short()
            )
        })?;
        store_file(store, &blob(&digest), Some(&digest), Some(size))?;
        store.unpack_layer(&digest, &Digest::parse(diff_id)?)?;
    }
    let tags: Vec<String> = layout_entry_name(entry).into_iter().collect();
    let id = store.add_image(&manifest_digest, &tags, &[])?;
    Ok(tags.first().cloned().unwrap_or_else(|| id.to_string()))
}

/// Most image indexes an index.json entry may nest before its image.
const MAX_INDEX_DEPTH: usize = 4;

/// The digest and size of the image manifest an index.json entry names:
/// the entry's own, or, when it names an image index (a multi-platform
/// image, as `docker buildx build --output type=oci` or `skopeo copy
/// --all` write it), its linux/amd64 image's.
fn platform_manifest(
    store: &Store,
    dir: &Path,
    entry: &LayoutEntry,
) -> Result<(Digest, Option<u64>)> {
    let mut digest = Digest::parse(&entry.digest)?;
    let mut size = entry.size;
    for _ in 0..MAX_INDEX_DEPTH {
        let document = read_document(store, dir, &format!("blobs/sha256/{}", digest.hex()))?;
        let actual = Digest::of(&document);
        if actual != digest {
            bail!("digest mismatch: the archive's document {digest} is {actual}");
        }
        let Some(index) = ImageIndex::parse(&document)
            .with_context(|| format!("the archive's manifest {} is invalid", digest.short()))?
        else {
            return Ok((digest, size));
        };
        let image = index.linux_amd64().with_context(|| {
            format!(
                "the archive's image index {} has no linux/amd64 image",
                digest.short()
            )
        })?;
        digest = Digest::parse(&image.digest)?;
        size = image.size;
    }
    bail!("the archive's image indexes nest more than {MAX_INDEX_DEPTH} deep")
}

/// The name an index.json entry gives its image: containerd's annotation
/// with the whole name, else the OCI reference name when it is a whole
/// reference (skopeo, buildah and podman write `name:tag` there; a bare
/// tag, as other tools write, names no repository).
fn layout_entry_name(entry: &LayoutEntry) -> Option<String> {
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

/// Copies `path` into the store as a blob, verified against `expected` and
/// `expected_size` when given. No blob may be larger than a layer.
fn store_file(
    store: &Store,
    path: &Path,
    expected: Option<&Digest>,
    expected_size: Option<u64>,
) -> Result<(Digest, u64)> {
    let mut file = File::open(path)
        .with_context(|| format!("the archive lacks {}", quoted_path(archive_name(path))))?;
    let len = file.metadata()?.len();
    let limits = store.limits();
    if len > limits.max_layer_bytes {
        let what = format!("blob {}", quoted_path(archive_name(path)));
        return Err(LimitExceeded::layer_bytes(what, Some(len), limits).into());
    }
    let mut writer = store.blob_writer()?;
    io::copy(&mut file, &mut writer)?;
    let (actual, size) = writer.digest();
    store.commit_blob(writer, expected.unwrap_or(&actual), expected_size)?;
    Ok((actual, size))
}

/// Stores the JSON document at `path` as [`store_file`] does, up to
/// `max_document_bytes`.
fn store_document(
    store: &Store,
    path: &Path,
    expected: &Digest,
    expected_size: Option<u64>,
) -> Result<()> {
    // A missing file is store_file's to report.
    let len = fs::metadata(path).map_or(0, |metadata| metadata.len());
    let what = format!("document {}", expected.short());
    check_document_size(store, &what, expected_size.max(Some(len)))?;
    store_file(store, path, Some(expected), expected_size)?;
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

/// The JSON document `name` of the extracted archive in `dir`, up to
/// `max_document_bytes`.
fn read_document(store: &Store, dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = archive_path(dir, name)?;
    let lacks = || format!("the archive lacks {}", quoted(name));
    let len = fs::metadata(&path).with_context(lacks)?.len();
    check_document_size(store, &quoted(name), Some(len))?;
    fs::read(&path).with_context(lacks)
}

/// The part of `path` (under the staging directory) the archive named.
fn archive_name(path: &Path) -> &Path {
    path.file_name().map_or(path, Path::new)
}

fn layer_media_type(path: &Path) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let n = File::open(path)?.read(&mut head)?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => IMAGE_LAYER_GZIP_MEDIA_TYPE,
        [0x28, 0xb5, 0x2f, 0xfd] => ZSTD_LAYER_MEDIA_TYPE,
        _ => IMAGE_LAYER_MEDIA_TYPE,
    })
}

/// Extracts the regular files of the archive under `dest`; anything else
/// (links, devices) is not part of an image archive and is skipped. Held
/// to `limits` (see the module documentation).
fn extract_files(input: impl Read, dest: &Path, limits: &Limits) -> Result<()> {
    let mut archive = tar::Archive::new(TarGuard::new(input, limits));
    let mut entries = 0u64;
    for entry in archive.entries().context("cannot read the archive")? {
        let mut entry = entry.context("corrupt archive")?;
        entries += 1;
        if entries > limits.max_layer_entries {
            return Err(LimitExceeded::layer_entries("the archive", limits).into());
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let size = entry.size();
        if size > limits.max_layer_bytes {
            let what = format!("file {}", quoted(&name));
            return Err(LimitExceeded::layer_bytes(what, Some(size), limits).into());
        }
        let path = archive_path(dest, &name)?;
        let cannot = || format!("cannot extract {}", quoted(&name));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(cannot)?;
        }
        let mut file = File::create(&path).with_context(cannot)?;
        io::copy(&mut entry, &mut file).with_context(cannot)?;
    }
    Ok(())
}

/// `name` (a path inside the archive) under `dir`, refusing escapes.
fn archive_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let mut path = dir.to_owned();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => bail!("archive path {} is not a plain relative path", quoted(name)),
        }
    }
    Ok(path)
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
    use oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE;

    use super::*;

    /// A one-layer image made from a tiny tar.
    fn sample(store: &Store, tag: &str) -> Digest {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, "etc/hello", &b"hello"[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        crate::import_tar(store, &tar[..], Some(&ImageRef::parse(tag).unwrap())).unwrap()
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

        // An index without linux/amd64 is refused, naming it.
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
            format!("{err:#}").contains("has no linux/amd64 image"),
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

    #[test]
    fn an_image_docker_saved_by_its_id_loads_untagged() {
        let (_source, _store, id, archive) = saved_sample();
        let mut manifest = Vec::new();
        tar::Archive::new(&archive[..])
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|entry| entry.path().unwrap().to_str() == Some("manifest.json"))
            .unwrap()
            .read_to_end(&mut manifest)
            .unwrap();
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
