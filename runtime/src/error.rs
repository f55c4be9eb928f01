//! The runtime's error: the cases a caller must tell apart get a variant of
//! their own (a CLI maps them to Docker's exit codes, a containerd shim to
//! gRPC codes); everything else is [`Error::Other`], an `anyhow` error with
//! its context chain.

use std::fmt;

/// An error of the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No container has this name, ID or ID prefix.
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    /// No image in the store has this name or ID.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// No network has this name or ID.
    #[error("no such network: {0}; see `hull network ls`")]
    NoSuchNetwork(String),
    /// No volume has this name.
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    /// An ID prefix matches more than one object.
    #[error("{kind} ID prefix {prefix} is ambiguous: give more of it")]
    AmbiguousId {
        /// What the prefix was to name: "container", "network".
        kind: &'static str,
        /// The prefix as given.
        prefix: String,
    },
    /// Another object already has this name.
    #[error("{message}")]
    NameInUse {
        /// The name asked for.
        name: String,
        /// What to tell the user.
        message: String,
    },
    /// The operation needs a running container.
    #[error("container {name} is not running{hint}")]
    NotRunning {
        /// The container as the caller named it, or its short ID.
        name: String,
        /// How to get past it, starting with ": ", or empty.
        hint: Hint,
    },
    /// The operation needs a container that is not running.
    #[error("container {name} is running{hint}")]
    Running {
        /// The container as the caller named it, or its short ID.
        name: String,
        /// What to do first, starting with ": ", or empty.
        hint: Hint,
    },
    /// A host port to publish is taken.
    #[error("cannot publish {container_side}: host port {host} is already in use; choose another with -p")]
    PortInUse {
        /// The container's side of the mapping, e.g. `80/tcp`.
        container_side: String,
        /// The host address, port and protocol, e.g. `0.0.0.0:8080/tcp`.
        host: String,
    },
    /// Something the caller gave is not valid; the message says what and
    /// how to put it right.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something else uses what the operation would remove or change.
    #[error("{0}")]
    InUse(String),
    /// The container's command was not found (a shell's 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's command cannot be executed (a shell's 126).
    #[error("{0}")]
    CommandNotExecutable(String),
    /// Anything else, with its context.
    #[error(transparent)]
    Other(anyhow::Error),
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidArgument`] with this message.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument(message.into())
    }

    /// The error for a process the agent could not start with the shell's
    /// `code` for it (127: not found, 126: not executable).
    pub(crate) fn not_started(code: i32, reason: String) -> Error {
        match code {
            127 => Error::CommandNotFound(reason),
            126 => Error::CommandNotExecutable(reason),
            _ => Error::Other(anyhow::Error::msg(reason)),
        }
    }
}

impl From<anyhow::Error> for Error {
    /// A typed error that travelled inside an `anyhow` chain comes out as
    /// itself (the runtime's inner layers use `anyhow`); any other is
    /// [`Error::Other`].
    fn from(error: anyhow::Error) -> Error {
        match error.downcast::<Error>() {
            Ok(typed) => typed,
            Err(other) => Error::Other(other),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Other(error.into())
    }
}

/// An optional tail of an error message: how to get past it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint(Option<String>);

impl Hint {
    /// No hint.
    pub fn none() -> Hint {
        Hint(None)
    }

    /// `advice`, shown after a colon.
    pub fn new(advice: impl Into<String>) -> Hint {
        Hint(Some(advice.into()))
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(advice) => write!(f, ": {advice}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn typed_errors_survive_an_anyhow_chain() {
        let inner: anyhow::Result<()> = Err(Error::NoSuchContainer("web".into()).into());
        let error = Error::from(inner.context("cannot stop it").unwrap_err());
        assert!(matches!(error, Error::NoSuchContainer(ref name) if name == "web"));
        let other = Error::from(anyhow::anyhow!("disk full"));
        assert!(matches!(other, Error::Other(_)));
        assert_eq!(other.to_string(), "disk full");
    }

    #[test]
    fn hints_follow_a_colon_or_nothing() {
        let stopped = Error::NotRunning {
            name: "web".into(),
            hint: Hint::none(),
        };
        assert_eq!(stopped.to_string(), "container web is not running");
    }

    #[test]
    fn start_failures_map_to_the_shell_codes() {
        assert!(matches!(
            Error::not_started(127, "x".into()),
            Error::CommandNotFound(_)
        ));
        assert!(matches!(
            Error::not_started(126, "x".into()),
            Error::CommandNotExecutable(_)
        ));
        assert!(matches!(Error::not_started(1, "x".into()), Error::Other(_)));
    }
}
