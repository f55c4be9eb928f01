//! What Docker keeps in an image config beyond the OCI fields, which the
//! OCI types leave out: `config.Healthcheck` (`HEALTHCHECK` in a
//! Dockerfile), `config.OnBuild` (`ONBUILD`) and the top-level `comment`
//! (`import -m`, `commit -m`).

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

/// Docker's fields of one image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerFields {
    /// How to tell whether a container of the image is healthy.
    pub healthcheck: Option<Healthcheck>,
    /// Instructions a build `FROM` the image runs first.
    pub on_build: Option<Vec<String>>,
    /// What made the image, in its maker's words.
    pub comment: Option<String>,
}

/// The part of a config blob that holds them.
#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ContainerConfig>,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(default, rename = "Healthcheck")]
    healthcheck: Option<Healthcheck>,
    #[serde(default, rename = "OnBuild")]
    on_build: Option<Vec<String>>,
}

/// Docker's fields of the image config `blob`; an invalid one is taken as
/// absent (the config's own parse checks the rest).
pub(crate) fn docker_fields(blob: &[u8]) -> DockerFields {
    let Ok(blob) = serde_json::from_slice::<ConfigBlob>(blob) else {
        return DockerFields::default();
    };
    let (healthcheck, on_build) = match blob.config {
        Some(config) => (config.healthcheck, config.on_build),
        None => (None, None),
    };
    DockerFields {
        healthcheck,
        on_build,
        comment: blob.comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_fields_are_read_from_the_config() {
        let blob = br#"{"comment":"Imported from -","config":{"Cmd":["x"],"OnBuild":["RUN make"],"Healthcheck":{"Test":["CMD-SHELL","curl -f localhost"],"Interval":5000000000,"Retries":2}}}"#;
        let fields = docker_fields(blob);
        let check = fields.healthcheck.unwrap();
        assert_eq!(check.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(
            (check.interval, check.timeout, check.retries),
            (5_000_000_000, 0, 2)
        );
        assert_eq!(fields.on_build.unwrap(), ["RUN make"]);
        assert_eq!(fields.comment.as_deref(), Some("Imported from -"));
        assert_eq!(
            docker_fields(br#"{"config":{"Cmd":["x"]}}"#),
            DockerFields::default()
        );
        assert_eq!(docker_fields(b"not json"), DockerFields::default());
    }
}
