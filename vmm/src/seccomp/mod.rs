//! Seccomp allow-lists, one per kind of VMM thread.
//!
//! Every thread of a VMM installs the filter of its kind before it touches
//! anything the guest controls: a vCPU before its first KVM_RUN, a device
//! worker before it is handed its queues, the main thread right after it
//! started the vCPUs. Filters stack and are inherited by threads created
//! later, so no thread is created after a filter is in place: device
//! workers are started before the guest runs and wait for their queues (see
//! `WorkerSlot` in the virtio module).
//!
//! A syscall outside a thread's list fails with EPERM
//! ([`SeccompMode::Errno`]) or kills the whole VMM ([`SeccompMode::Kill`]);
//! for bringing up a new device or libc, [`SeccompMode::Log`] lets it
//! through and has the kernel log it. Opening a file by path, on a thread
//! that may not, fails with EPERM in either of the first two
//! ([`file_opens`]).

mod file_opens;
mod rules;

use std::sync::Arc;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use serde::{Deserialize, Serialize};

pub use rules::ThreadKind;

/// What a thread's filter does with a syscall outside its allow-list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// Kill the VMM (SIGSYS).
    Kill,
    /// Fail the syscall with EPERM, as Docker's default profile does: the
    /// default. The syscall does not happen either way; a VMM path that
    /// makes one the list lacks fails one operation instead of killing
    /// the container.
    #[default]
    Errno,
    /// Allow the syscall and have the kernel log it (bring-up).
    Log,
    /// Install no filters.
    Off,
}

impl SeccompMode {
    /// The filter action for a syscall outside the allow-list; `None` when
    /// no filter is installed.
    fn mismatch_action(self) -> Option<SeccompAction> {
        match self {
            SeccompMode::Kill => Some(SeccompAction::KillProcess),
            SeccompMode::Errno => Some(SeccompAction::Errno(libc::EPERM as u32)),
            SeccompMode::Log => Some(SeccompAction::Log),
            SeccompMode::Off => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot build the seccomp filter of the {kind} threads: {source}")]
    Build {
        kind: ThreadKind,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("cannot install the seccomp filter of a {kind} thread: {source}")]
    Install {
        kind: ThreadKind,
        #[source]
        source: seccompiler::Error,
    },
}

/// One thread kind's compiled filter.
pub struct ThreadFilter {
    kind: ThreadKind,
    program: BpfProgram,
}

impl ThreadFilter {
    /// Compiles the allow-list of `kind` with `mismatch` for everything
    /// else.
    fn new(kind: ThreadKind, mismatch: SeccompAction) -> Result<Self, SeccompError> {
        let build = |source| SeccompError::Build { kind, source };
        let rules = kind.rules().map_err(build)?;
        let opens_files = rules.contains_key(&libc::SYS_openat);
        let refuse_opens = !opens_files && mismatch != SeccompAction::Log;
        let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
            .map_err(build)?;
        let program = BpfProgram::try_from(filter).map_err(build)?;
        let program = match refuse_opens {
            true => file_opens::refused_before(program),
            false => program,
        };
        Ok(Self { kind, program })
    }

    /// Installs the filter on the calling thread, for good.
    pub fn apply(&self) -> Result<(), SeccompError> {
        seccompiler::apply_filter(&self.program).map_err(|source| SeccompError::Install {
            kind: self.kind,
            source,
        })
    }

    pub fn kind(&self) -> ThreadKind {
        self.kind
    }
}

/// The filters of every thread kind of one VMM.
pub struct Filters {
    vmm: Arc<ThreadFilter>,
    vcpu: Arc<ThreadFilter>,
    device: Arc<ThreadFilter>,
    virtio_fs: Arc<ThreadFilter>,
}

impl Filters {
    /// Compiles every kind's filter for `mode`; `None` for
    /// [`SeccompMode::Off`].
    pub fn new(mode: SeccompMode) -> Result<Option<Self>, SeccompError> {
        let Some(mismatch) = mode.mismatch_action() else {
            return Ok(None);
        };
        let filter = |kind| ThreadFilter::new(kind, mismatch.clone()).map(Arc::new);
        Ok(Some(Self {
            vmm: filter(ThreadKind::Vmm)?,
            vcpu: filter(ThreadKind::Vcpu)?,
            device: filter(ThreadKind::Device)?,
            virtio_fs: filter(ThreadKind::VirtioFs)?,
        }))
    }

    /// The filter of `kind`'s threads.
    pub fn get(&self, kind: ThreadKind) -> Arc<ThreadFilter> {
        Arc::clone(match kind {
            ThreadKind::Vmm => &self.vmm,
            ThreadKind::Vcpu => &self.vcpu,
            ThreadKind::Device => &self.device,
            ThreadKind::VirtioFs => &self.virtio_fs,
        })
    }
}

#[cfg(test)]
mod tests;
