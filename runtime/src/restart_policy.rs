//! `--restart`: when a detached container's monitor boots it again after
//! its process ended, and how long it waits first.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The first wait before a restart; it doubles with each restart in a row.
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the wait to [`FIRST_DELAY`].
const STABLE_RUN: Duration = Duration::from_secs(10);

/// When a container's monitor boots it again after its process ended
/// (`--restart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never.
    #[default]
    No,
    /// After a non-zero exit, at most `max_retries` times (no limit: `None`).
    OnFailure {
        /// How many times at most.
        max_retries: Option<u32>,
    },
    /// Whatever the exit code, until the user stops it.
    Always,
    /// As `Always`: without a daemon there is no daemon restart to tell
    /// them apart.
    UnlessStopped,
}

impl RestartPolicy {
    /// Fails if a container with this policy is to be removed as it exits
    /// (`--rm`): one that restarts is not.
    pub fn check_auto_remove(self, auto_remove: bool) -> crate::Result<()> {
        match self != RestartPolicy::No && auto_remove {
            true => Err(crate::Error::invalid(
                "--restart and --rm conflict: a container that restarts is not removed when it exits",
            )),
            false => Ok(()),
        }
    }

    /// Whether a container that ended with `exit_code`, restarted
    /// `restarts` times already and not stopped by the user, runs again.
    pub fn restarts_after(self, exit_code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max_retries } => {
                exit_code != 0 && max_retries.is_none_or(|max| restarts < max)
            }
            // Without a daemon there is no "daemon restart" to tell them
            // apart: both restart until the user stops the container.
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "{text:?} is not a restart policy: no, on-failure[:N], always or unless-stopped"
            )
        };
        match text.split_once(':') {
            None => match text {
                "no" => Ok(RestartPolicy::No),
                "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                _ => Err(invalid()),
            },
            Some(("on-failure", count)) => {
                let max = count.parse().map_err(|_| invalid())?;
                Ok(RestartPolicy::OnFailure {
                    max_retries: Some(max),
                })
            }
            Some(_) => Err(invalid()),
        }
    }
}

/// The waits between restarts: doubling while runs stay short.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// How long to wait before booting again after a run of `ran`.
    pub fn delay_after(&mut self, ran: Duration) -> Duration {
        let delay = match self.next {
            Some(next) if ran < STABLE_RUN => next,
            _ => FIRST_DELAY,
        };
        self.next = Some((delay * 2).min(MAX_DELAY));
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_like_docker() {
        let parsed = [
            "no",
            "on-failure",
            "on-failure:3",
            "always",
            "unless-stopped",
        ]
        .map(|text| text.parse::<RestartPolicy>().unwrap());
        assert_eq!(
            parsed,
            [
                RestartPolicy::No,
                RestartPolicy::OnFailure { max_retries: None },
                RestartPolicy::OnFailure {
                    max_retries: Some(3)
                },
                RestartPolicy::Always,
                RestartPolicy::UnlessStopped,
            ]
        );
        for bad in ["", "sometimes", "on-failure:", "on-failure:x", "always:2"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_policy_restarts_when_docker_does() {
        assert!(!RestartPolicy::No.restarts_after(1, 0));
        let unlimited = RestartPolicy::OnFailure { max_retries: None };
        assert!(unlimited.restarts_after(1, 1000));
        assert!(!unlimited.restarts_after(0, 0));
        let twice = RestartPolicy::OnFailure {
            max_retries: Some(2),
        };
        assert!(twice.restarts_after(3, 1));
        assert!(!twice.restarts_after(3, 2));
        assert!(RestartPolicy::Always.restarts_after(0, 50));
        assert!(RestartPolicy::UnlessStopped.restarts_after(1, 50));
    }

    #[test]
    fn waits_double_up_to_a_minute_and_reset_after_a_stable_run() {
        let mut backoff = Backoff::default();
        let short = Duration::from_secs(1);
        let waits: Vec<u128> = (0..12)
            .map(|_| backoff.delay_after(short).as_millis())
            .collect();
        assert_eq!(&waits[..4], [100, 200, 400, 800]);
        assert_eq!(waits[11], 60_000);
        assert_eq!(
            backoff.delay_after(Duration::from_secs(30)),
            Duration::from_millis(100)
        );
    }
}
