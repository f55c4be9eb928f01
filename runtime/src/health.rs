//! Healthchecks: how a container tells whether it is healthy (its image's
//! `HEALTHCHECK`, changed by `--health-*` flags), and the health its
//! monitor records from the checks it runs (see `health_checker`), as
//! Docker's: `starting` until the first success (failures in the start
//! period do not count), `healthy`, and `unhealthy` after `retries`
//! failures in a row.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;

/// Results kept in [`Health::log`], as Docker keeps.
const LOG_LENGTH: usize = 5;

/// Bytes of a check's output kept, as Docker keeps.
pub(crate) const OUTPUT_LIMIT: usize = 4096;

/// A healthcheck, or the changes to one (unset fields are inherited, from
/// the image or Docker's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// Docker's form: `["CMD", args...]`, `["CMD-SHELL", command]`, or
    /// `["NONE"]` for no healthcheck; empty inherits.
    #[serde(default)]
    pub test: Vec<String>,
    /// Between checks (default 30 s).
    pub interval: Option<Duration>,
    /// How long a check may take before it counts as failed (default 30 s).
    pub timeout: Option<Duration>,
    /// How long after the start failures do not count (default none).
    pub start_period: Option<Duration>,
    /// Between checks during the start period (default 5 s).
    pub start_interval: Option<Duration>,
    /// Failures in a row that make the container unhealthy (default 3).
    pub retries: Option<u32>,
}

impl HealthConfig {
    /// The image's healthcheck with `changes` over it, field by field as
    /// Docker merges `--health-*` flags; `None` when there is no test or it
    /// is `NONE`.
    pub(crate) fn merged(
        image: Option<&hull_image::Healthcheck>,
        changes: Option<&HealthConfig>,
    ) -> Option<HealthConfig> {
        let nanos = |n: u64| (n > 0).then(|| Duration::from_nanos(n));
        let base = image.map_or_else(HealthConfig::default, |image| HealthConfig {
            test: image.test.clone(),
            interval: nanos(image.interval),
            timeout: nanos(image.timeout),
            start_period: nanos(image.start_period),
            start_interval: nanos(image.start_interval),
            retries: (image.retries > 0).then_some(image.retries),
        });
        let merged = match changes {
            None => base,
            Some(changes) => HealthConfig {
                test: match changes.test.is_empty() {
                    true => base.test,
                    false => changes.test.clone(),
                },
                interval: changes.interval.or(base.interval),
                timeout: changes.timeout.or(base.timeout),
                start_period: changes.start_period.or(base.start_period),
                start_interval: changes.start_interval.or(base.start_interval),
                retries: changes.retries.or(base.retries),
            },
        };
        match merged.test.first().map(String::as_str) {
            None | Some("NONE") => None,
            Some(_) => Some(merged),
        }
    }

    /// Checks `test`'s form: `CMD` with a command, `CMD-SHELL` with one, or
    /// `NONE`.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self.test.first().map(String::as_str) {
            None | Some("NONE") => Ok(()),
            Some("CMD") if self.test.len() > 1 => Ok(()),
            Some("CMD-SHELL") if self.test.len() == 2 => Ok(()),
            _ => Err(format!(
                "healthcheck test {:?}: expected [\"CMD\", args...], [\"CMD-SHELL\", command] or [\"NONE\"]",
                self.test
            )),
        }
    }

    /// The command line a check runs.
    pub(crate) fn argv(&self) -> Vec<String> {
        match self.test.split_first() {
            Some((kind, shell)) if kind == "CMD-SHELL" => {
                let mut argv = vec!["/bin/sh".to_owned(), "-c".to_owned()];
                argv.extend(shell.iter().cloned());
                argv
            }
            Some((_, command)) => command.to_vec(),
            None => Vec::new(),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub(crate) fn start_period(&self) -> Duration {
        self.start_period.unwrap_or_default()
    }

    pub(crate) fn start_interval(&self) -> Duration {
        self.start_interval.unwrap_or(DEFAULT_START_INTERVAL)
    }

    pub(crate) fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }
}

/// Where a container's health stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No check has passed yet since it started.
    Starting,
    /// The last check passed.
    Healthy,
    /// `retries` checks in a row failed.
    Unhealthy,
}

impl HealthStatus {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// The check's exit code; -1 when it timed out or could not run.
    pub exit_code: i32,
    /// The start of what it wrote (stdout and stderr), or why it failed.
    pub output: String,
}

/// A container's health since it last started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Where it stands.
    pub status: HealthStatus,
    /// Failed checks since the last that passed.
    pub failing_streak: u32,
    /// The last few checks, oldest first.
    pub log: VecDeque<HealthResult>,
}

impl Health {
    /// The health of a container that just started.
    pub(crate) fn starting() -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }

    /// This health after `result`, a check of `config` made `in_start_period`
    /// or after it.
    pub(crate) fn after(
        &self,
        result: HealthResult,
        retries: u32,
        in_start_period: bool,
    ) -> Health {
        let mut health = self.clone();
        if result.exit_code == 0 {
            health.status = HealthStatus::Healthy;
            health.failing_streak = 0;
        } else if !(in_start_period && health.status == HealthStatus::Starting) {
            health.failing_streak += 1;
            if health.failing_streak >= retries {
                health.status = HealthStatus::Unhealthy;
            }
        }
        health.log.push_back(result);
        while health.log.len() > LOG_LENGTH {
            health.log.pop_front();
        }
        health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(exit_code: i32) -> HealthResult {
        HealthResult {
            start: String::new(),
            end: String::new(),
            exit_code,
            output: String::new(),
        }
    }

    #[test]
    fn health_moves_as_dockers() {
        let start = Health::starting();
        // Failures in the start period leave it starting.
        let grace = start.after(result(1), 2, true).after(result(1), 2, true);
        assert_eq!(
            (grace.status, grace.failing_streak),
            (HealthStatus::Starting, 0)
        );
        let healthy = grace.after(result(0), 2, true);
        assert_eq!(healthy.status, HealthStatus::Healthy);
        // Past it, `retries` failures in a row; a pass resets the streak.
        let once = healthy.after(result(1), 2, false);
        assert_eq!(
            (once.status, once.failing_streak),
            (HealthStatus::Healthy, 1)
        );
        let twice = once.after(result(1), 2, false);
        assert_eq!(
            (twice.status, twice.failing_streak),
            (HealthStatus::Unhealthy, 2)
        );
        let back = twice.after(result(0), 2, false);
        assert_eq!(
            (back.status, back.failing_streak),
            (HealthStatus::Healthy, 0)
        );
        // Once healthy, a failure counts even in the start period.
        let counted = healthy.after(result(1), 1, true);
        assert_eq!(counted.status, HealthStatus::Unhealthy);
        let many = (0..9).fold(start, |h, _| h.after(result(0), 3, false));
        assert_eq!(many.log.len(), LOG_LENGTH);
    }

    #[test]
    fn flags_change_the_images_check_field_by_field() {
        let image = hull_image::Healthcheck {
            test: vec!["CMD".into(), "check".into()],
            interval: 5_000_000_000,
            retries: 7,
            ..Default::default()
        };
        let changes = HealthConfig {
            timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let merged = HealthConfig::merged(Some(&image), Some(&changes)).unwrap();
        assert_eq!(merged.argv(), ["check"]);
        assert_eq!(merged.interval(), Duration::from_secs(5));
        assert_eq!(merged.timeout(), Duration::from_secs(2));
        assert_eq!(merged.retries(), 7);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(HealthConfig::merged(Some(&image), Some(&none)), None);
        assert_eq!(HealthConfig::merged(None, None), None);
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -e /ok".into()],
            ..Default::default()
        };
        let merged = HealthConfig::merged(None, Some(&shell)).unwrap();
        assert_eq!(merged.argv(), ["/bin/sh", "-c", "test -e /ok"]);
        assert_eq!(merged.interval(), DEFAULT_INTERVAL);
        assert!(HealthConfig {
            test: vec!["CMD".into()],
            ..Default::default()
        }
        .check()
        .is_err());
        assert!(HealthConfig {
            test: vec!["TEST".into()],
            ..Default::default()
        }
        .check()
        .is_err());
    }
}
