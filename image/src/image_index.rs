//! Image indexes (OCI image indexes and Docker manifest lists), as a
//! registry serves them for a multi-platform image and as an OCI layout
//! archive may hold them: whether a document is one, and which of its
//! images hull runs (linux/amd64).

use anyhow::{Context, Result};
use oci_client::manifest::{IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE};
use serde::Deserialize;

/// The platform of the images hull runs.
const OS: &str = "linux";
const ARCHITECTURE: &str = "amd64";

/// An image index: its manifests, each for a platform.
#[derive(Deserialize)]
pub(crate) struct ImageIndex {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

/// One manifest of an index.
#[derive(Deserialize)]
pub(crate) struct IndexEntry {
    pub digest: String,
    pub size: Option<u64>,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    os: String,
    architecture: String,
}

/// Just what tells an index from an image manifest.
#[derive(Deserialize)]
struct MediaTyped {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

impl ImageIndex {
    /// `document` as an index, if it is one (by its media type, or, where
    /// it gives none, by its list of manifests); `None` for an image
    /// manifest.
    pub(crate) fn parse(document: &[u8]) -> Result<Option<ImageIndex>> {
        let typed: MediaTyped =
            serde_json::from_slice(document).context("the manifest is not valid JSON")?;
        let is_index = typed.manifests.is_some()
            || matches!(
                typed.media_type.as_deref(),
                Some(OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE)
            );
        if !is_index {
            return Ok(None);
        }
        serde_json::from_slice(document)
            .map(Some)
            .context("the image index is invalid")
    }

    /// The entry of the image hull runs (linux/amd64), if there is one.
    pub(crate) fn linux_amd64(&self) -> Option<&IndexEntry> {
        self.manifests.iter().find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|p| p.os == OS && p.architecture == ARCHITECTURE)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_told_from_manifests_and_give_their_linux_amd64_image() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[
              {"digest":"sha256:arm","size":1,"platform":{"os":"linux","architecture":"arm64"}},
              {"digest":"sha256:att","size":2,"platform":{"os":"unknown","architecture":"unknown"}},
              {"digest":"sha256:amd","size":3,"platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let parsed = ImageIndex::parse(index).unwrap().unwrap();
        let entry = parsed.linux_amd64().unwrap();
        assert_eq!((entry.digest.as_str(), entry.size), ("sha256:amd", Some(3)));

        // A Docker manifest list without a media type still has manifests.
        let list = br#"{"manifests":[{"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64"}}]}"#;
        assert!(ImageIndex::parse(list)
            .unwrap()
            .unwrap()
            .linux_amd64()
            .is_none());

        let manifest =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"digest":"sha256:c","size":1},"layers":[]}"#;
        assert!(ImageIndex::parse(manifest).unwrap().is_none());
        assert!(ImageIndex::parse(b"not json").is_err());
    }
}
