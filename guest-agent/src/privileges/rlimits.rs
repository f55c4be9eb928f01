//! Resource limits (`docker run --ulimit NAME=SOFT:HARD`), by the names
//! Docker takes (go-units' table, plus `as`).

use nix::sys::resource::{setrlimit, Resource};

/// One resource limit to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub name: &'static str,
    pub resource: Resource,
    /// u64::MAX is unlimited (RLIM_INFINITY).
    pub soft: u64,
    pub hard: u64,
}

/// The `ulimit` names and the resources they limit.
const NAMES: [(&str, Resource); 16] = [
    ("as", Resource::RLIMIT_AS),
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

/// Checks one limit of the run spec: a known name (any case), and a soft
/// limit within the hard one, as Docker requires.
pub fn parse(limit: &hull_protocol::Rlimit) -> Result<Rlimit, String> {
    let lower = limit.name.to_ascii_lowercase();
    let &(name, resource) = NAMES
        .iter()
        .find(|(name, _)| *name == lower)
        .ok_or_else(|| format!("unknown ulimit {:?}", limit.name))?;
    if limit.soft > limit.hard {
        return Err(format!(
            "ulimit {name}: the soft limit {} is above the hard limit {}",
            shown(limit.soft),
            shown(limit.hard)
        ));
    }
    Ok(Rlimit {
        name,
        resource,
        soft: limit.soft,
        hard: limit.hard,
    })
}

impl Rlimit {
    /// Sets the limit for the calling process and its future children.
    /// Raising a hard limit takes CAP_SYS_RESOURCE: set it before the
    /// identity and capabilities change.
    pub fn apply(&self) -> Result<(), String> {
        setrlimit(self.resource, self.soft, self.hard).map_err(|errno| {
            format!(
                "setrlimit {}={}:{}: {}",
                self.name,
                shown(self.soft),
                shown(self.hard),
                errno.desc()
            )
        })
    }
}

fn shown(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, soft: u64, hard: u64) -> hull_protocol::Rlimit {
        hull_protocol::Rlimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn every_docker_name_maps_to_its_resource() {
        for (name, resource) in [
            ("core", Resource::RLIMIT_CORE),
            ("cpu", Resource::RLIMIT_CPU),
            ("data", Resource::RLIMIT_DATA),
            ("fsize", Resource::RLIMIT_FSIZE),
            ("locks", Resource::RLIMIT_LOCKS),
            ("memlock", Resource::RLIMIT_MEMLOCK),
            ("msgqueue", Resource::RLIMIT_MSGQUEUE),
            ("nice", Resource::RLIMIT_NICE),
            ("nofile", Resource::RLIMIT_NOFILE),
            ("nproc", Resource::RLIMIT_NPROC),
            ("rss", Resource::RLIMIT_RSS),
            ("rtprio", Resource::RLIMIT_RTPRIO),
            ("rttime", Resource::RLIMIT_RTTIME),
            ("sigpending", Resource::RLIMIT_SIGPENDING),
            ("stack", Resource::RLIMIT_STACK),
            ("as", Resource::RLIMIT_AS),
        ] {
            let parsed = parse(&limit(name, 1, 2)).unwrap();
            assert_eq!(parsed.resource, resource, "{name}");
            assert_eq!((parsed.soft, parsed.hard), (1, 2));
        }
        assert_eq!(
            parse(&limit("NOFILE", 1, 1)).unwrap().resource,
            Resource::RLIMIT_NOFILE
        );
    }

    #[test]
    fn unknown_names_and_soft_above_hard_are_refused() {
        assert_eq!(
            parse(&limit("files", 1, 1)).unwrap_err(),
            "unknown ulimit \"files\""
        );
        assert_eq!(
            parse(&limit("nofile", 2048, 1024)).unwrap_err(),
            "ulimit nofile: the soft limit 2048 is above the hard limit 1024"
        );
        assert!(parse(&limit("nofile", 1024, u64::MAX)).is_ok());
        assert!(parse(&limit("core", u64::MAX, u64::MAX)).is_ok());
    }

    #[test]
    fn a_limit_applies_to_the_calling_process() {
        // Lowering the soft core limit is allowed to anyone; done in a child
        // so that the test process keeps its own.
        let (_, hard) = nix::sys::resource::getrlimit(Resource::RLIMIT_CORE).unwrap();
        let core = parse(&limit("core", 0, hard)).unwrap();
        // SAFETY: the child only makes system calls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = core.apply().is_ok()
                    && nix::sys::resource::getrlimit(Resource::RLIMIT_CORE) == Ok((0, hard));
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
