//! Docker Compose's exit codes: 14 when no compose file is found, 15 for a
//! file that cannot be used (services depending on each other in a ring
//! included), 16 for a bad command line, 17 when a service's
//! image fails to build, 18 when one fails to pull, and 1 for the rest
//! (where `docker` itself says 125); a command in a container that is not
//! there or cannot run keeps 127 and 126.

/// No compose file given or found.
const FILE_NOT_FOUND: u8 = 14;
/// A compose or env file that cannot be used.
const PARSE_FAILURE: u8 = 15;
/// A command line Compose cannot read.
pub const COMMAND_SYNTAX_FAILURE: u8 = 16;
/// A service's image did not build.
const BUILD_FAILURE: u8 = 17;
/// A service's image could not be pulled.
const PULL_FAILURE: u8 = 18;

/// A service's image that did not build.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BuildFailed(pub anyhow::Error);

/// A service's image that could not be pulled.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct PullFailed(pub anyhow::Error);

/// The exit code of a `hull compose` command that failed with `err`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<hull_compose::Error>() {
        Some(hull_compose::Error::NoFile(_)) => return FILE_NOT_FOUND,
        Some(hull_compose::Error::Config(_) | hull_compose::Error::DependencyCycle(_)) => {
            return PARSE_FAILURE
        }
        _ => {}
    }
    if err.is::<BuildFailed>() {
        return BUILD_FAILURE;
    }
    if err.is::<PullFailed>() {
        return PULL_FAILURE;
    }
    crate::error_code(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_failure_has_compose_code() {
        let no_file = anyhow::Error::from(hull_compose::Error::NoFile("none here".into()));
        assert_eq!(exit_code(&no_file), 14);
        let bad_file = anyhow::Error::from(hull_compose::Error::config("compose.yaml: bad"));
        assert_eq!(exit_code(&bad_file.context("loading")), 15);
        let build = anyhow::Error::from(BuildFailed(anyhow::anyhow!("RUN false: exit 1")));
        assert_eq!(exit_code(&build.context("service web")), 17);
        let pull = anyhow::Error::from(PullFailed(anyhow::anyhow!("registry down")));
        assert_eq!(exit_code(&pull), 18);
        let other: anyhow::Error = Err::<(), _>(std::io::Error::other("disk full"))
            .context("writing")
            .unwrap_err();
        assert_eq!(exit_code(&other), 1);
        let missing = anyhow::Error::from(hull_compose::Error::Runtime(
            hull_runtime::Error::CommandNotFound("nosuch".into()),
        ));
        assert_eq!(exit_code(&missing), 127);
    }
}
