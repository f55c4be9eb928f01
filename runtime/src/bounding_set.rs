//! A process's capabilities cut for good before it runs what a guest
//! controls (the VMM, the hull machine's QEMU): its bounding set limited,
//! so that nothing it or its children exec can gain more, and its
//! inheritable and ambient sets emptied.

use anyhow::{Context, Result};
use caps::{CapSet, CapsHashSet};

/// Limits the calling thread's bounding set to `keep` and empties its
/// inheritable and ambient sets. Takes CAP_SETPCAP. Capabilities the
/// kernel does not know are skipped.
pub fn limit(keep: &CapsHashSet) -> Result<()> {
    for capability in caps::runtime::thread_all_supported() {
        if !keep.contains(&capability) {
            caps::drop(None, CapSet::Bounding, capability)
                .with_context(|| format!("cannot drop {capability} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).context("cannot clear the ambient capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("cannot clear the inheritable capabilities")
}
