//! Removing a container: its files, then its network address.

use anyhow::Result;

use crate::container::Container;
use crate::network;
use crate::root::StateRoot;

/// Deletes everything `container` owns. Its monitor must be gone.
pub(crate) fn remove(root: &StateRoot, container: &Container) -> Result<()> {
    container.remove_files(root)?;
    network::release(root, container.id(), &container.config.boot.network)
}
