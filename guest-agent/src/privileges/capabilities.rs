//! The capabilities of a container's processes (`--cap-add`, `--cap-drop`,
//! `--privileged`), as Docker has runc set them: the capabilities given are
//! the process's bounding, effective and permitted sets; its inheritable
//! and ambient sets are empty (Docker has left the inheritable set empty
//! since 20.10.14, CVE-2022-24769). A process of root keeps the set across
//! `exec` (its bounding set); a process of another user ends up with none
//! effective or permitted, as under Docker.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

/// Parses capability names as Docker takes them: with or without `CAP_`,
/// in any case; `ALL` is every capability.
pub fn parse(names: &[String]) -> Result<CapsHashSet, String> {
    let mut set = CapsHashSet::new();
    for name in names {
        let upper = name.trim().to_ascii_uppercase();
        if upper == "ALL" || upper == "CAP_ALL" {
            set.extend(caps::all());
            continue;
        }
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let capability =
            Capability::from_str(&full).map_err(|_| format!("unknown capability {name:?}"))?;
        set.insert(capability);
    }
    Ok(set)
}

/// Limits the calling thread's bounding set to `keep` and empties its
/// inheritable and ambient sets. Takes CAP_SETPCAP: call it before the
/// identity changes. Capabilities the kernel does not know are skipped.
pub fn limit_bounding_set(keep: &CapsHashSet) -> Result<(), String> {
    for capability in caps::runtime::thread_all_supported() {
        if !keep.contains(&capability) {
            caps::drop(None, CapSet::Bounding, capability)
                .map_err(|err| format!("dropping {capability} from the bounding set: {err}"))?;
        }
    }
    caps::clear(None, CapSet::Inheritable)
        .map_err(|err| format!("clearing the inheritable capabilities: {err}"))?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|err| format!("clearing the ambient capabilities: {err}"))
}

/// Limits the calling thread's effective and permitted sets to `keep`
/// (what it still has of it: after a change to another user it has none).
pub fn limit_sets(keep: &CapsHashSet) -> Result<(), String> {
    let permitted = caps::read(None, CapSet::Permitted)
        .map_err(|err| format!("reading the permitted capabilities: {err}"))?;
    let kept: CapsHashSet = permitted.intersection(keep).copied().collect();
    // Effective first: it must stay within the permitted set.
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::set(None, set, &kept)
            .map_err(|err| format!("setting the {set:?} capabilities: {err}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn names_are_taken_with_or_without_cap_in_any_case() {
        let set = parse(&names(&["CHOWN", "cap_net_raw", "CAP_SYS_ADMIN", " kill "])).unwrap();
        let expected: CapsHashSet = [
            Capability::CAP_CHOWN,
            Capability::CAP_NET_RAW,
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_KILL,
        ]
        .into_iter()
        .collect();
        assert_eq!(set, expected);
        assert!(parse(&[]).unwrap().is_empty());
        assert_eq!(parse(&names(&["ALL"])).unwrap(), caps::all());
        assert_eq!(
            parse(&names(&["CHOWN", "all"])).unwrap().len(),
            caps::all().len()
        );
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(
            parse(&names(&["CHOWN", "FLY"])).unwrap_err(),
            "unknown capability \"FLY\""
        );
        assert!(parse(&names(&[""])).is_err());
        assert!(parse(&names(&["CAP_"])).is_err());
    }

    #[test]
    fn a_root_process_keeps_exactly_the_set_given() {
        if !nix::unistd::geteuid().is_root()
            || !caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false)
        {
            return;
        }
        let keep = parse(&names(&["CHOWN", "NET_BIND_SERVICE"])).unwrap();
        // SAFETY: the child only makes system calls, allocates (glibc's
        // malloc is fork-safe) and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = limit_bounding_set(&keep).is_ok()
                    && limit_sets(&keep).is_ok()
                    && caps::read(None, CapSet::Bounding).ok().as_ref() == Some(&keep)
                    && caps::read(None, CapSet::Effective).ok().as_ref() == Some(&keep)
                    && caps::read(None, CapSet::Permitted).ok().as_ref() == Some(&keep)
                    && caps::read(None, CapSet::Inheritable).is_ok_and(|set| set.is_empty());
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
