//! Docker's security and namespace options read for a container in its own
//! VM: `--security-opt`, `--ipc`, `--pid`, `--uts`, `--userns`,
//! `--cgroupns` (and their compose keys). What they isolate from the host
//! in Docker, the container's VM isolates in hull; what they do inside the
//! container, hull does inside the VM; what would reach out of the VM is
//! refused.

/// What `--security-opt` asks of the container's processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// `no-new-privileges`: no process gains privileges through `execve`.
    pub no_new_privileges: bool,
}

/// Reads `--security-opt` values (`KEY=VALUE`, or Docker's older
/// `KEY:VALUE`), the last of a key winning: `no-new-privileges[=BOOL]`,
/// `seccomp=unconfined`, `apparmor=PROFILE` and `label=...` (accepted as a
/// Docker host without AppArmor or SELinux accepts them: the guest kernel
/// has neither), `systempaths=unconfined` (no /proc path is masked: the
/// kernel is the container's own). A seccomp profile is refused: hull
/// does not filter system calls inside the VM.
pub fn parse_security_opts(values: &[String]) -> Result<SecurityOptions, String> {
    let mut options = SecurityOptions::default();
    for value in values {
        let (key, setting) = match value.split_once(['=', ':']) {
            Some((key, setting)) => (key, Some(setting)),
            None => (value.as_str(), None),
        };
        match (key, setting) {
            ("no-new-privileges", None) => options.no_new_privileges = true,
            ("no-new-privileges", Some(setting)) => {
                options.no_new_privileges = setting.parse().map_err(|_| {
                    format!("security option {value}: no-new-privileges takes true or false")
                })?;
            }
            ("seccomp", Some("unconfined")) => {}
            ("seccomp", Some(_)) => {
                return Err(format!(
                    "security option {value}: seccomp profiles are not applied in hull's VMs \
                     (the container's kernel is its own); leave it out or use seccomp=unconfined"
                ))
            }
            ("apparmor" | "label", Some(setting)) if !setting.is_empty() => {}
            ("systempaths", Some("unconfined")) => {}
            _ => {
                return Err(format!(
                    "invalid security option {value:?}: hull takes no-new-privileges, \
                     seccomp=unconfined, apparmor=, label= and systempaths=unconfined"
                ))
            }
        }
    }
    Ok(options)
}

/// A namespace Docker lets a container share, as `--ipc` and the like name
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `--ipc`: System V IPC and POSIX message queues.
    Ipc,
    /// `--pid`: process ids.
    Pid,
    /// `--uts`: host and domain name.
    Uts,
    /// `--userns`: user and group ids.
    User,
    /// `--cgroupns`: the cgroup tree seen.
    Cgroup,
}

impl Namespace {
    /// The modes a container in its own VM has already: its namespaces
    /// are its VM's, private; user namespaces are never remapped.
    fn modes(self) -> &'static [&'static str] {
        match self {
            Namespace::Ipc => &["private", "shareable"],
            Namespace::Pid | Namespace::Uts | Namespace::Cgroup => &["private"],
            Namespace::User => &["host"],
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Namespace::Ipc => "--ipc",
            Namespace::Pid => "--pid",
            Namespace::Uts => "--uts",
            Namespace::User => "--userns",
            Namespace::Cgroup => "--cgroupns",
        }
    }

    /// Accepts `mode` (empty: the default) if it is one the container has.
    pub fn check_mode(self, mode: &str) -> Result<(), String> {
        match mode.is_empty() || self.modes().contains(&mode) {
            true => Ok(()),
            false => Err(format!(
                "{} {mode} is not supported: each container has its own VM, whose namespaces \
                 cannot be shared with the host or another container (use {})",
                self.flag(),
                self.modes().join(" or ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(values: &[&str]) -> Result<SecurityOptions, String> {
        parse_security_opts(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn no_new_privileges_in_each_of_dockers_spellings() {
        for on in [
            "no-new-privileges",
            "no-new-privileges:true",
            "no-new-privileges=true",
        ] {
            assert!(opts(&[on]).unwrap().no_new_privileges, "{on}");
        }
        let off = opts(&["no-new-privileges", "no-new-privileges=false"]).unwrap();
        assert!(!off.no_new_privileges);
        assert!(opts(&["no-new-privileges=yes"]).is_err());
    }

    #[test]
    fn confinement_the_guest_lacks_is_accepted_and_profiles_refused() {
        let accepted = [
            "seccomp=unconfined",
            "seccomp:unconfined",
            "apparmor=unconfined",
            "apparmor=docker-default",
            "label=disable",
            "label:type:svirt_apache_t",
            "systempaths=unconfined",
        ];
        assert_eq!(opts(&accepted).unwrap(), SecurityOptions::default());
        let profile = opts(&["seccomp=/etc/profile.json"]).unwrap_err();
        assert!(
            profile.contains("seccomp profiles are not applied"),
            "{profile}"
        );
        for bad in ["selinux=x", "apparmor=", "seccomp", "writable-cgroups=true"] {
            let err = opts(&[bad]).unwrap_err();
            assert!(err.starts_with("invalid security option"), "{bad}: {err}");
        }
    }

    #[test]
    fn namespaces_are_the_containers_own() {
        assert_eq!(Namespace::Ipc.check_mode("shareable"), Ok(()));
        assert_eq!(Namespace::Pid.check_mode(""), Ok(()));
        let err = Namespace::Ipc.check_mode("host").unwrap_err();
        assert!(err.starts_with("--ipc host is not supported"), "{err}");
        assert!(Namespace::Pid.check_mode("container:db").is_err());
        assert!(Namespace::User.check_mode("host").is_ok());
        assert!(Namespace::Cgroup.check_mode("host").is_err());
    }
}
