//! What a container's processes are held to besides their cgroup: resource
//! limits, capabilities, additional groups, no-new-privileges and the OOM
//! killer's bias (`--ulimit`, `--cap-add`/`--cap-drop`, `--group-add`,
//! `--security-opt no-new-privileges`, `--oom-score-adj`). The
//! container's process and every `hull exec` process get the same, set in
//! the forked process right before `exec` (by the agent's `exec::Command`),
//! as Docker gives an exec the container's rlimits and capabilities. The
//! container's init keeps the agent's: it only forwards signals and reaps,
//! and needs CAP_KILL to signal a process of another user.

mod capabilities;
mod oom_score;
mod rlimits;

use caps::CapsHashSet;
use hull_protocol::Limits;

use oom_score::OomScoreAdj;
use rlimits::Rlimit;

/// The resource limits and capabilities of a container's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    rlimits: Vec<Rlimit>,
    /// The capabilities kept; `None`: all the agent has.
    capabilities: Option<CapsHashSet>,
    /// Groups the processes are in besides their user's: names or ids,
    /// looked up in the root each process runs in.
    additional_groups: Vec<String>,
    /// Set PR_SET_NO_NEW_PRIVS before `execve`.
    no_new_privileges: bool,
    /// Written to `/proc/self/oom_score_adj`.
    oom_score_adj: Option<OomScoreAdj>,
}

impl Privileges {
    /// Checks the rlimits and capabilities of `limits`.
    pub fn from_limits(limits: &Limits) -> Result<Privileges, String> {
        Ok(Privileges {
            rlimits: limits
                .rlimits
                .iter()
                .map(rlimits::parse)
                .collect::<Result<_, _>>()?,
            capabilities: limits
                .capabilities
                .as_deref()
                .map(capabilities::parse)
                .transpose()?,
            additional_groups: limits.additional_groups.clone(),
            no_new_privileges: limits.no_new_privileges,
            oom_score_adj: limits.oom_score_adj.map(OomScoreAdj::new).transpose()?,
        })
    }

    /// These, with every capability the agent has (`exec --privileged`).
    pub fn with_every_capability(self) -> Privileges {
        Privileges {
            capabilities: None,
            ..self
        }
    }

    /// The groups the processes are in besides their user's.
    pub fn additional_groups(&self) -> &[String] {
        &self.additional_groups
    }

    /// Sets what needs the agent's privileges, in the forked process before
    /// it takes the user's identity: the resource limits and a lowered OOM
    /// bias (both take CAP_SYS_RESOURCE) and the bounding set
    /// (CAP_SETPCAP).
    pub fn apply_before_identity(&self) -> Result<(), String> {
        for rlimit in &self.rlimits {
            rlimit.apply()?;
        }
        if let Some(adj) = &self.oom_score_adj {
            adj.apply()?;
        }
        match &self.capabilities {
            Some(keep) => capabilities::limit_bounding_set(keep),
            None => Ok(()),
        }
    }

    /// Sets the effective and permitted capabilities, once the process has
    /// its user's identity (which needs CAP_SETUID and CAP_SETGID), then
    /// no-new-privileges, the last change before `execve` (as runc sets it).
    pub fn apply_after_identity(&self) -> Result<(), String> {
        if let Some(keep) = &self.capabilities {
            capabilities::limit_sets(keep)?;
        }
        if self.no_new_privileges {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|errno| format!("setting no-new-privileges: {}", errno.desc()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limits_leave_everything_as_it_is() {
        assert_eq!(
            Privileges::from_limits(&Limits::default()).unwrap(),
            Privileges::default()
        );
    }

    #[test]
    fn bad_names_are_refused_before_anything_runs() {
        let limits = Limits {
            rlimits: vec![hull_protocol::Rlimit {
                name: "nofiles".into(),
                soft: 1,
                hard: 1,
            }],
            ..Limits::default()
        };
        assert_eq!(
            Privileges::from_limits(&limits).unwrap_err(),
            "unknown ulimit \"nofiles\""
        );
        let limits = Limits {
            capabilities: Some(vec!["CHOWN".into(), "NOPE".into()]),
            ..Limits::default()
        };
        assert_eq!(
            Privileges::from_limits(&limits).unwrap_err(),
            "unknown capability \"NOPE\""
        );
        let limits = Limits {
            oom_score_adj: Some(1001),
            ..Limits::default()
        };
        assert_eq!(
            Privileges::from_limits(&limits).unwrap_err(),
            "oom_score_adj 1001 is outside -1000 to 1000"
        );
        let limits = Limits {
            capabilities: Some(Vec::new()),
            ..Limits::default()
        };
        let privileges = Privileges::from_limits(&limits).unwrap();
        assert_eq!(privileges.capabilities, Some(CapsHashSet::new()));
    }
}
