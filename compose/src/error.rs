//! The compose library's error: no compose file, bad files and projects (one line naming
//! the file, the path in it and the reason), services that are not there,
//! dependency cycles, and the runtime's errors.

/// An error of the compose library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No compose file given or found, with where it was looked for.
    #[error("{0}")]
    NoFile(String),
    /// A compose file, env file or project that cannot be used, with the
    /// file, where in it and why.
    #[error("{0}")]
    Config(String),
    /// No service of that name in the project.
    #[error("no such service: {0}")]
    NoSuchService(String),
    /// Services that depend on each other in a ring.
    #[error("dependency cycle between services: {}", .0.join(" -> "))]
    DependencyCycle(Vec<String>),
    /// A service did not come up as its dependents need.
    #[error("{0}")]
    Failed(String),
    /// The runtime's error.
    #[error(transparent)]
    Runtime(#[from] hull_runtime::Error),
    /// The image store's error.
    #[error(transparent)]
    Image(#[from] anyhow::Error),
}

/// The compose library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A configuration error: `{file}: {path}: {reason}`.
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }
}
