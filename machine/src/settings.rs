//! The machine's size and idle timeout (`hull machine set`), kept in
//! `<root>/machine/settings.json` and applied when it starts.

use std::fs;
use std::io::ErrorKind;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use hull_runtime::fsutil::write_atomically;

/// The machine's size and idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory.
    pub memory_mib: u64,
    /// How long the machine stays up with no container running and no
    /// command using it; 0: forever.
    pub idle_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            // One vCPU: see `testhost::vm::DEFAULT_CPUS`.
            cpus: 1,
            memory_mib: 4096,
            idle_timeout_secs: 300,
        }
    }
}

impl Settings {
    pub(crate) fn load(layout: &Layout) -> Result<Settings> {
        let path = layout.settings();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is corrupt: fix it or reset it with `hull machine rm`",
                    path.display()
                )
            }),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(Settings::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub(crate) fn save(&self, layout: &Layout) -> Result<()> {
        write_atomically(&layout.settings(), &serde_json::to_vec_pretty(self)?)
    }

    /// How long it stays up idle; `None`: forever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_until_saved_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert_eq!(Settings::load(&layout).unwrap(), Settings::default());
        let changed = Settings {
            cpus: 2,
            memory_mib: 1024,
            idle_timeout_secs: 0,
        };
        changed.save(&layout).unwrap();
        assert_eq!(Settings::load(&layout).unwrap(), changed);
        assert_eq!(changed.idle_timeout(), None);

        fs::write(layout.settings(), b"{").unwrap();
        let err = Settings::load(&layout).unwrap_err();
        assert!(format!("{err:#}").contains("hull machine rm"), "{err:#}");
    }
}
