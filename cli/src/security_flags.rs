//! The `hull run` flags of Docker's security and namespace options, read
//! by [`hull_runtime::security`].

use clap::Args;
use hull_runtime::security::{parse_security_opts, Namespace, SecurityOptions};

/// The security and namespace flags of `hull run` and `hull create`.
#[derive(Args, Debug)]
pub struct SecurityFlags {
    /// Add the container's processes to a group besides their user's: a
    /// name in the container's /etc/group, or a numeric id.
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,

    /// A security option, as Docker takes it: no-new-privileges[=true],
    /// seccomp=unconfined, apparmor=PROFILE and label=... (accepted: the
    /// guest kernel has no AppArmor or SELinux, as a Docker host without
    /// them), systempaths=unconfined.
    #[arg(long = "security-opt", value_name = "OPTION")]
    security_opt: Vec<String>,

    // The namespace flags: checked by their parsers; the modes they accept
    // are what every container has already.
    /// The IPC namespace: private or shareable, the container's VM's own.
    #[arg(long = "ipc", value_name = "MODE", value_parser = mode_of(Namespace::Ipc))]
    _ipc: Option<String>,

    /// The PID namespace: private, the container's VM's own.
    #[arg(long = "pid", value_name = "MODE", value_parser = mode_of(Namespace::Pid))]
    _pid: Option<String>,

    /// The UTS namespace: private, the container's VM's own.
    #[arg(long = "uts", value_name = "MODE", value_parser = mode_of(Namespace::Uts))]
    _uts: Option<String>,

    /// The user namespace: host (hull never remaps: root in the container
    /// is root of its own VM only).
    #[arg(long = "userns", value_name = "MODE", value_parser = mode_of(Namespace::User))]
    _userns: Option<String>,

    /// The cgroup namespace: private (the container's cgroup is its root).
    #[arg(long = "cgroupns", value_name = "MODE", value_parser = mode_of(Namespace::Cgroup))]
    _cgroupns: Option<String>,
}

impl SecurityFlags {
    /// The `--security-opt` values, checked.
    pub fn options(&self) -> anyhow::Result<SecurityOptions> {
        parse_security_opts(&self.security_opt).map_err(anyhow::Error::msg)
    }
}

/// A value parser for the flag of `namespace`.
fn mode_of(namespace: Namespace) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |mode: &str| namespace.check_mode(mode).map(|()| mode.to_owned())
}
