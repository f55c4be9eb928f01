//! The capabilities a container's processes keep: Docker's default set,
//! changed by `--cap-add` and `--cap-drop`, or all of them
//! (`--privileged`). They hold inside the container's own VM only.

use crate::error::{Error, Result};

/// The capabilities a container's processes keep by default, as Docker's.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability Linux knows, in number order.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The set Docker gives a container with `add` and `drop` (names with or
/// without `CAP_`, any case; `ALL` for every one), or `None` for all of
/// them (`privileged`, or everything added and nothing dropped).
pub fn capability_set(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Option<Vec<String>>> {
    let add = canonical(add)?;
    let drop = canonical(drop)?;
    if privileged {
        return Ok(None);
    }
    let all = |names: &[String]| names.iter().any(|name| name == "ALL");
    if all(&add) && drop.is_empty() {
        return Ok(None);
    }
    let mut set: Vec<String> = match (all(&add), all(&drop)) {
        (true, _) => ALL_CAPABILITIES.map(String::from).to_vec(),
        (false, true) => Vec::new(),
        (false, false) => DEFAULT_CAPABILITIES.map(String::from).to_vec(),
    };
    set.retain(|cap| !drop.contains(cap));
    for cap in add.into_iter().filter(|cap| cap != "ALL") {
        if !set.contains(&cap) {
            set.push(cap);
        }
    }
    Ok(Some(set))
}

/// `names` upper-cased without `CAP_`, each a known capability or `ALL`.
fn canonical(names: &[String]) -> Result<Vec<String>> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned();
            match bare == "ALL" || ALL_CAPABILITIES.contains(&bare.as_str()) {
                true => Ok(bare),
                false => Err(Error::invalid(format!(
                    "unknown capability {name:?}: see capabilities(7)"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn sets_follow_dockers_rules() {
        let default = capability_set(false, &[], &[]).unwrap().unwrap();
        assert_eq!(default, DEFAULT_CAPABILITIES.map(String::from));
        let changed = capability_set(false, &names(&["cap_net_admin"]), &names(&["CHOWN"]))
            .unwrap()
            .unwrap();
        assert!(changed.contains(&"NET_ADMIN".into()) && !changed.contains(&"CHOWN".into()));
        let only = capability_set(false, &names(&["KILL"]), &names(&["all"])).unwrap();
        assert_eq!(only, Some(names(&["KILL"])));
        assert_eq!(capability_set(true, &[], &names(&["KILL"])).unwrap(), None);
        assert_eq!(capability_set(false, &names(&["ALL"]), &[]).unwrap(), None);
        let all_but = capability_set(false, &names(&["ALL"]), &names(&["SYS_ADMIN"])).unwrap();
        assert_eq!(all_but.unwrap().len(), ALL_CAPABILITIES.len() - 1);
        assert!(capability_set(false, &names(&["NOPE"]), &[]).is_err());
    }
}
