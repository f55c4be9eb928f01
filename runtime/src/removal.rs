//! Removing a container: its files, its network addresses, a VMM cgroup
//! (its own or its files VM's) left behind and, if asked, its anonymous
//! volumes.

use anyhow::Result;

use crate::container::{self, Container, MountSource};
use crate::events;
use crate::files_vm;
use crate::network;
use crate::root::StateRoot;
use crate::vmm_jail;
use crate::volume::VolumeStore;

/// Removes the `--rm` containers whose monitor died before it could remove
/// them (a foreground `hull run` killed with SIGKILL leaves its scratch disk
/// and addresses behind otherwise): nothing else would.
pub(crate) fn sweep_abandoned(root: &StateRoot) -> Result<()> {
    for container in container::list(root)? {
        // One whose files a VM serves goes with the next sweep.
        if container.config.auto_remove
            && container.state()?.monitor_died()
            && container.try_lock_layer()?.is_some()
        {
            remove(root, &container, true)?;
        }
    }
    Ok(())
}

/// Deletes everything `container` owns; with `volumes`, its anonymous
/// volumes too, unless another container mounts them (`--volumes-from`).
/// Its monitor must be gone.
pub(crate) fn remove(root: &StateRoot, container: &Container, volumes: bool) -> Result<()> {
    // A VM serving its files (`cp` while it is stopped) finishes first.
    let _layer = match container.lock_layer() {
        Ok(layer) => Some(layer),
        // Removed already (by whoever else tore it down).
        Err(_) if !container.exists() => None,
        Err(err) => return Err(err),
    };
    container.remove_files(root)?;
    vmm_jail::cgroup::remove_left_behind(container.short_id());
    files_vm::remove_left_behind(root, container.id());
    network::release(root, container.id(), &container.config.boot.network)?;
    if volumes {
        remove_anonymous_volumes(root, container)?;
    }
    events::container_event(root.path(), &container.config, "destroy", &[]);
    Ok(())
}

fn remove_anonymous_volumes(root: &StateRoot, removed: &Container) -> Result<()> {
    let store = VolumeStore::open(root);
    let others = container::list(root)?;
    for mount in &removed.config.boot.mounts {
        let MountSource::Volume { name, .. } = &mount.source else {
            continue;
        };
        let shared = others.iter().any(|other| {
            other.config.boot.mounts.iter().any(|m| {
                matches!(&m.source, MountSource::Volume { name: other_name, .. } if other_name == name)
            })
        });
        if !shared && store.get(name).is_ok_and(|volume| volume.anonymous) {
            store.remove(name)?;
        }
    }
    Ok(())
}
