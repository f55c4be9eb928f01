//! The `Healthcheck` of an image's config: Docker's extension of the OCI
//! config (`HEALTHCHECK` in a Dockerfile), which the OCI types leave out.

use serde::{Deserialize, Serialize};

/// How to tell whether a container of the image is healthy, as Docker's
/// image config says it: durations in nanoseconds, 0 for the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["CMD", args...]`, `["CMD-SHELL", command]`, or `["NONE"]`; empty
    /// inherits.
    #[serde(default)]
    pub test: Vec<String>,
    /// Between checks.
    #[serde(default)]
    pub interval: u64,
    /// How long a check may take.
    #[serde(default)]
    pub timeout: u64,
    /// How long after the start failures do not count.
    #[serde(default)]
    pub start_period: u64,
    /// Between checks during the start period.
    #[serde(default)]
    pub start_interval: u64,
    /// Consecutive failures that make the container unhealthy.
    #[serde(default)]
    pub retries: u32,
}

/// The part of a config blob that holds it.
#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(default, rename = "Healthcheck")]
    healthcheck: Option<Healthcheck>,
}

/// The healthcheck of the image config `blob`, if it has one (an invalid
/// one is taken as none: the config's own parse checks the rest).
pub(crate) fn healthcheck_of(blob: &[u8]) -> Option<Healthcheck> {
    let blob: ConfigBlob = serde_json::from_slice(blob).ok()?;
    blob.config?.healthcheck
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_healthcheck_is_read_from_the_config() {
        let blob = br#"{"config":{"Cmd":["x"],"Healthcheck":{"Test":["CMD-SHELL","curl -f localhost"],"Interval":5000000000,"Retries":2}}}"#;
        let check = healthcheck_of(blob).unwrap();
        assert_eq!(check.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(
            (check.interval, check.timeout, check.retries),
            (5_000_000_000, 0, 2)
        );
        assert_eq!(healthcheck_of(br#"{"config":{"Cmd":["x"]}}"#), None);
        assert_eq!(healthcheck_of(b"not json"), None);
    }
}
