//! A share's tag: the name the guest mounts it by, which the device's
//! configuration space holds.

/// Longest tag the configuration space holds (virtio spec 5.11.4).
pub(super) const MAX_TAG_LEN: usize = 36;

/// Whether `tag` can name a share: 1 to [`MAX_TAG_LEN`] bytes of UTF-8
/// without NUL.
pub(super) fn is_valid(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= MAX_TAG_LEN && !tag.contains('\0')
}
