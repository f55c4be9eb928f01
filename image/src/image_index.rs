//! Manifest documents, as a registry serves them and an OCI layout archive
//! holds them: an image index (OCI image index or Docker manifest list,
//! for a multi-platform image, possibly nesting further indexes), an
//! image manifest hull can run, or something else an index may list
//! beside images (BuildKit's attestation manifests, OCI artifacts), which
//! hull passes over. Image manifest schema 1 is refused in one line, as
//! Docker refuses it.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Context, Result};
use oci_client::manifest::{IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE};
use serde::Deserialize;

/// The platform of the images hull runs.
const OS: &str = "linux";
const ARCHITECTURE: &str = "amd64";

/// Most image indexes may nest before their image.
pub(crate) const MAX_INDEX_DEPTH: usize = 4;

/// BuildKit marks the attestation manifests it lists in an image's index
/// with this annotation (and the platform unknown/unknown).
const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";

/// The config media types of images (OCI's and Docker's).
const IMAGE_CONFIG_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// What every layer media type of an image starts with (OCI's tar,
/// tar+gzip, tar+zstd and non-distributable layers; Docker's).
const LAYER_MEDIA_TYPE_PREFIXES: &[&str] = &[
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
];

/// Why hull refuses an image manifest schema 1, as Docker does.
const SCHEMA_1: &str = "it is an image manifest schema 1, a format hull does not read (nor does \
    Docker, by default): push the image again with a current tool, as Docker's schema 2 or OCI";

/// A manifest document, as hull sees it.
pub(crate) enum Manifest {
    /// An image index: its manifests, each for a platform.
    Index(ImageIndex),
    /// An image manifest whose config and layers hull can use.
    Image,
    /// A manifest of something other than an image, and what it is.
    NotAnImage(String),
}

/// An image index.
#[derive(Deserialize)]
pub(crate) struct ImageIndex {
    #[serde(default, deserialize_with = "null_as_empty")]
    manifests: Vec<IndexEntry>,
}

/// One manifest of an index (or of an OCI layout's `index.json`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexEntry {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: Option<u64>,
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub(crate) struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// What tells the kinds of manifest apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    schema_version: Option<u64>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    artifact_type: Option<String>,
    config: Option<Typed>,
    #[serde(default, deserialize_with = "null_as_empty")]
    layers: Vec<Typed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typed {
    media_type: Option<String>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl Manifest {
    /// What `document` is: an index (by its media type, or, where it gives
    /// none, by its list of manifests), an image manifest, or another
    /// manifest. Schema 1 is an error.
    pub(crate) fn parse(document: &[u8]) -> Result<Manifest> {
        let shape: Shape =
            serde_json::from_slice(document).context("the manifest is not valid JSON")?;
        let media_type = shape.media_type.as_deref().unwrap_or_default();
        if shape.schema_version == Some(1)
            || media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            bail!("{SCHEMA_1}");
        }
        if shape.manifests.is_some()
            || matches!(
                media_type,
                OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE
            )
        {
            return serde_json::from_slice(document)
                .map(Manifest::Index)
                .context("the image index is invalid");
        }
        if let Some(artifact_type) = shape.artifact_type {
            return Ok(Manifest::NotAnImage(format!(
                "an artifact of type {artifact_type}"
            )));
        }
        let config_type = shape.config.and_then(|config| config.media_type);
        if let Some(config_type) = config_type {
            if !IMAGE_CONFIG_MEDIA_TYPES.contains(&config_type.as_str()) {
                return Ok(Manifest::NotAnImage(format!(
                    "an artifact whose config is {config_type}"
                )));
            }
        }
        let foreign_layer = shape
            .layers
            .into_iter()
            .filter_map(|layer| layer.media_type)
            .find(|media_type| {
                !LAYER_MEDIA_TYPE_PREFIXES
                    .iter()
                    .any(|prefix| media_type.starts_with(prefix))
            });
        Ok(match foreign_layer {
            Some(media_type) => {
                Manifest::NotAnImage(format!("an artifact with {media_type} layers"))
            }
            None => Manifest::Image,
        })
    }
}

impl ImageIndex {
    /// The entry to follow for the image hull runs: the linux/amd64 image,
    /// else an index nested without a platform (an index of indexes),
    /// which may hold it. Attestations are never followed.
    pub(crate) fn pick(&self) -> Option<&IndexEntry> {
        let candidates = || self.manifests.iter().filter(|e| !e.is_attestation());
        candidates()
            .find(|entry| entry.platform.as_ref().is_some_and(Platform::is_hulls))
            .or_else(|| candidates().find(|entry| entry.platform.is_none() && entry.is_index()))
    }

    /// Every entry, in order.
    pub(crate) fn entries(&self) -> &[IndexEntry] {
        &self.manifests
    }
}

impl IndexEntry {
    /// Why hull passes this entry of an OCI layout's `index.json` over
    /// without reading what it names: an attestation, or an image for
    /// another platform.
    pub(crate) fn skipped_because(&self) -> Option<String> {
        if self.is_attestation() {
            return Some(format!("{} is an attestation", self.digest));
        }
        match &self.platform {
            Some(platform) if !platform.is_hulls() => {
                Some(format!("{} is for {platform}", self.digest))
            }
            _ => None,
        }
    }

    fn is_attestation(&self) -> bool {
        self.annotations.contains_key(REFERENCE_TYPE_ANNOTATION)
    }

    fn is_index(&self) -> bool {
        matches!(
            self.media_type.as_deref(),
            Some(OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE)
        )
    }
}

impl Platform {
    /// Whether hull runs this platform's images: linux/amd64.
    fn is_hulls(&self) -> bool {
        self.os == OS && self.architecture == ARCHITECTURE
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(document: &[u8]) -> ImageIndex {
        match Manifest::parse(document).unwrap() {
            Manifest::Index(index) => index,
            _ => panic!("not an index"),
        }
    }

    fn not_an_image(document: &str) -> String {
        match Manifest::parse(document.as_bytes()).unwrap() {
            Manifest::NotAnImage(what) => what,
            _ => panic!("taken for an image or index: {document}"),
        }
    }

    #[test]
    fn indexes_are_told_from_manifests_and_give_their_linux_amd64_image() {
        // As BuildKit writes it: the attestation comes first here.
        let parsed = index(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[
              {"digest":"sha256:arm","size":1,"platform":{"os":"linux","architecture":"arm64"}},
              {"digest":"sha256:att","size":2,"platform":{"os":"unknown","architecture":"unknown"},
               "annotations":{"vnd.docker.reference.type":"attestation-manifest"}},
              {"digest":"sha256:amd","size":3,"platform":{"os":"linux","architecture":"amd64"}}]}"#,
        );
        let entry = parsed.pick().unwrap();
        assert_eq!((entry.digest.as_str(), entry.size), ("sha256:amd", Some(3)));

        // A Docker manifest list without a media type still has manifests.
        let list = br#"{"manifests":[{"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64"}}]}"#;
        assert!(index(list).pick().is_none());
        // Docker 25's index.json of an image saved by its ID.
        assert!(index(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#
        )
            .pick()
            .is_none());

        let manifest =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":1},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:l","size":1},
                      {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:m","size":1}]}"#;
        assert!(matches!(
            Manifest::parse(manifest).unwrap(),
            Manifest::Image
        ));
        assert!(Manifest::parse(b"not json").is_err());
    }

    #[test]
    fn an_index_of_indexes_is_followed_but_not_into_other_platforms() {
        let nested = index(
            br#"{"manifests":[
              {"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:arm",
               "platform":{"os":"linux","architecture":"arm64"}},
              {"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:all"}]}"#,
        );
        assert_eq!(nested.pick().unwrap().digest, "sha256:all");
    }

    #[test]
    fn attestations_and_artifacts_are_not_images() {
        // BuildKit's attestation manifest.
        let attestation = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":1},
            "layers":[{"mediaType":"application/vnd.in-toto+json","digest":"sha256:s","size":1}]}"#;
        assert_eq!(
            not_an_image(attestation),
            "an artifact with application/vnd.in-toto+json layers"
        );
        // A Helm chart, and an OCI 1.1 artifact.
        let chart = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json",
            "digest":"sha256:c","size":1},"layers":[]}"#;
        assert_eq!(
            not_an_image(chart),
            "an artifact whose config is application/vnd.cncf.helm.config.v1+json"
        );
        let artifact = r#"{"schemaVersion":2,"artifactType":"application/spdx+json",
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:c","size":2},"layers":[]}"#;
        assert_eq!(
            not_an_image(artifact),
            "an artifact of type application/spdx+json"
        );

        let entry: IndexEntry = serde_json::from_str(
            r#"{"digest":"sha256:a","platform":{"os":"linux","architecture":"arm","variant":"v7"}}"#,
        )
        .unwrap();
        assert_eq!(
            entry.skipped_because().unwrap(),
            "sha256:a is for linux/arm/v7"
        );
    }

    #[test]
    fn schema_1_is_refused_in_one_line() {
        for document in [
            r#"{"schemaVersion":1,"name":"library/old","tag":"v1","fsLayers":[],"history":[]}"#,
            r#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#,
        ] {
            let err = format!("{:#}", Manifest::parse(document.as_bytes()).err().unwrap());
            assert!(err.contains("image manifest schema 1"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
