//! Pins: a running container's claim on its image, so that `rmi` (even
//! with `-f`) and `image prune` cannot delete layers from under a VM.
//!
//! A pin is a file `pins/<image hex>.<random>` that its holder keeps
//! `flock`ed exclusively for as long as it runs; the kernel drops the lock
//! when the holder dies, however it dies. A pin whose lock can be taken is
//! stale and is deleted by whoever finds it.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::{Context, Result};
use fs2::FileExt;

use crate::digest::Digest;
use crate::store::{NoSuchImage, Store};

/// Held while a container runs image `id`; dropping it releases the image.
#[derive(Debug)]
pub struct Pin {
    /// `None` where the store is read-only to this process (the KVM test
    /// host sees the host's store that way): nothing here can delete from
    /// it, and the process that started the test host holds the pin.
    held: Option<(File, PathBuf)>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.held {
            let _ = fs::remove_file(path);
        }
    }
}

impl Store {
    /// Pins image `id`, which must be in the store.
    pub fn pin(&self, id: &Digest) -> Result<Pin> {
        // Shared with pulls, exclusive with removals: the image cannot go
        // between the check below and the pin taking hold.
        let _adding = match self.adding() {
            Ok(lock) => lock,
            Err(err) if is_read_only(&err) => return Ok(Pin { held: None }),
            Err(err) => return Err(err),
        };
        if !self.images()?.iter().any(|image| image.id == *id) {
            return Err(NoSuchImage(id.to_string()).into());
        }
        let dir = self.pins_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (file, path) = tempfile::Builder::new()
            .prefix(&format!("{}.", id.hex()))
            .tempfile_in(&dir)
            .and_then(|file| file.keep().map_err(|err| err.error))
            .with_context(|| format!("cannot create a pin in {}", dir.display()))?;
        file.try_lock_exclusive()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Pin {
            held: Some((file, path)),
        })
    }

    /// Whether a running container holds a pin on image `id`. Stale pins
    /// found on the way are deleted.
    pub fn is_pinned(&self, id: &Digest) -> Result<bool> {
        let dir = self.pins_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", dir.display())),
        };
        let prefix = format!("{}.", id.hex());
        let mut pinned = false;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else {
                continue; // Released and removed meanwhile.
            };
            if file.try_lock_exclusive().is_ok() {
                let _ = fs::remove_file(entry.path());
            } else {
                pinned = true;
            }
        }
        Ok(pinned)
    }
}

fn is_read_only(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.raw_os_error() == Some(libc::EROFS))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A store holding one imported image; returns its ID.
    fn store_with_image() -> (tempfile::TempDir, Store, Digest) {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let bytes = crate::import::one_file_tar("hello", b"hi");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        let reference = crate::ImageRef::parse("pinned:v1").unwrap();
        let id = crate::import::import_tagged(&store, File::open(file.path()).unwrap(), &reference)
            .unwrap();
        (root, store, id)
    }

    #[test]
    fn a_pinned_image_cannot_be_removed_even_by_force() {
        let (_root, store, id) = store_with_image();
        let pin = store.pin(&id).unwrap();
        assert!(store.is_pinned(&id).unwrap());
        let never_in_use = |_: &Digest| false;
        for force in [false, true] {
            let error = store.remove("pinned:v1", force, &never_in_use).unwrap_err();
            assert!(error.to_string().contains("running container"), "{error}");
        }
        assert!(store.prune(true, &never_in_use).unwrap().images.is_empty());
        drop(pin);
        assert!(!store.is_pinned(&id).unwrap());
        assert_eq!(
            store
                .remove("pinned:v1", false, &never_in_use)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn an_image_a_container_uses_loses_only_its_names_when_forced() {
        let (_root, store, id) = store_with_image();
        let used = |image: &Digest| *image == id;
        let refused = store.remove("pinned:v1", false, &used).unwrap_err();
        assert!(
            refused.to_string().contains("in use by a container"),
            "{refused}"
        );
        let removals = store.remove("pinned:v1", true, &used).unwrap();
        assert!(
            matches!(removals.as_slice(), [crate::store::Removal::Untagged(_)]),
            "{removals:?}"
        );
        assert!(store.resolve(&id.to_string()).unwrap().repo_tags.is_empty());
        // Untagged, it is still kept by prune while the container is there.
        assert!(store.prune(false, &used).unwrap().images.is_empty());
        assert!(store.prune(true, &used).unwrap().images.is_empty());
        let pruned = store.prune(false, &|_: &Digest| false).unwrap();
        assert_eq!(pruned.images.len(), 1);
        assert_eq!(pruned.images[0].id, id);
    }

    #[test]
    fn pins_of_dead_holders_are_stale_and_swept() {
        let (_root, store, id) = store_with_image();
        let pin = store.pin(&id).unwrap();
        let (file, path) = pin.held.as_ref().unwrap();
        // What the kernel does when the holder dies: the lock goes, the
        // file stays.
        file.unlock().unwrap();
        assert!(!store.is_pinned(&id).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn only_stored_images_can_be_pinned() {
        let (_root, store, _) = store_with_image();
        let absent = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert!(store.pin(&absent).is_err());
    }
}
