//! Bounds on what an image may make hull read, hold in memory and write:
//! images come from people hull's users do not trust, and a small archive
//! can claim (or expand to) anything.
//!
//! The defaults suit real images; `<hull root>/config.json` overrides
//! them, Docker `daemon.json` style:
//!
//! ```json
//! {"image-limits": {"max-layer-bytes": 137438953472, "max-layer-entries": 4000000}}
//! ```

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The key of `<hull root>/config.json` that holds the limits.
pub(crate) const CONFIG_KEY: &str = "image-limits";

/// The bounds every pull, load and import holds each image to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// One tar header record, read whole before its entry: a GNU long
    /// name or link, a PAX extended header (Go's archive/tar: 1 MiB).
    pub max_header_bytes: u64,
    /// One layer uncompressed: its tar stream, which bounds the file
    /// contents it writes too (GNU sparse entries are not unpacked). Its
    /// compressed blob may not be larger either.
    pub max_layer_bytes: u64,
    /// One layer's entries, counting the directories made for them.
    pub max_layer_entries: u64,
    /// A JSON document read whole: a manifest, an index, an image config,
    /// an archive's `manifest.json` (registries cap manifests at 4 MiB).
    pub max_document_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 1 << 20,
            max_layer_bytes: 64 << 30,
            max_layer_entries: 1_000_000,
            max_document_bytes: 8 << 20,
        }
    }
}

impl Limits {
    /// The limits `<hull root>/config.json` sets (defaults for what it
    /// does not, or without the file).
    pub(crate) fn load(hull_root: &Path) -> Result<Limits> {
        let path = hull_root.join("config.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Limits::default()),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        #[derive(Deserialize)]
        struct Config {
            #[serde(default, rename = "image-limits")]
            limits: Limits,
        }
        let config: Config = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is invalid (\"{CONFIG_KEY}\" takes max-header-bytes, max-layer-bytes, \
                 max-layer-entries, max-document-bytes as numbers)",
                path.display()
            )
        })?;
        Ok(config.limits)
    }
}

/// What went over a limit, as an error that names the limit and where to
/// raise it.
#[derive(Debug, thiserror::Error)]
#[error("{what} {amount} ({CONFIG_KEY}.{key} in <hull root>/config.json)")]
pub struct LimitExceeded {
    /// What was too big, e.g. `a tar header record (GNU long name)`.
    what: String,
    amount: Amount,
    /// The config key, e.g. `max-header-bytes`.
    key: &'static str,
}

/// How much of something there was, against its limit.
#[derive(Debug)]
enum Amount {
    /// A size known up front (a header or a descriptor claimed it).
    Claimed { bytes: u64, limit: u64 },
    /// A running count of bytes that went past the limit.
    MoreBytes { limit: u64 },
    /// A running count of entries that went past the limit.
    MoreEntries { limit: u64 },
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Claimed { bytes, limit } => {
                write!(f, "claims {bytes} bytes, over the limit of {limit}")
            }
            Amount::MoreBytes { limit } => write!(f, "is over the limit of {limit} bytes"),
            Amount::MoreEntries { limit } => write!(f, "has over the limit of {limit} entries"),
        }
    }
}

impl LimitExceeded {
    /// `what` claims `bytes`, over `max-header-bytes`.
    pub(crate) fn header(what: impl Into<String>, bytes: u64, limits: &Limits) -> LimitExceeded {
        LimitExceeded {
            what: what.into(),
            amount: Amount::Claimed {
                bytes,
                limit: limits.max_header_bytes,
            },
            key: "max-header-bytes",
        }
    }

    /// `what` claims `bytes`, or grew past `max-layer-bytes` (`None`).
    pub(crate) fn layer_bytes(
        what: impl Into<String>,
        bytes: Option<u64>,
        limits: &Limits,
    ) -> LimitExceeded {
        let limit = limits.max_layer_bytes;
        LimitExceeded {
            what: what.into(),
            amount: match bytes {
                Some(bytes) => Amount::Claimed { bytes, limit },
                None => Amount::MoreBytes { limit },
            },
            key: "max-layer-bytes",
        }
    }

    /// `what` has more than `max-layer-entries` entries.
    pub(crate) fn layer_entries(what: impl Into<String>, limits: &Limits) -> LimitExceeded {
        LimitExceeded {
            what: what.into(),
            amount: Amount::MoreEntries {
                limit: limits.max_layer_entries,
            },
            key: "max-layer-entries",
        }
    }

    /// `what` claims `bytes`, or grew past `max-document-bytes` (`None`).
    pub(crate) fn document(
        what: impl Into<String>,
        bytes: Option<u64>,
        limits: &Limits,
    ) -> LimitExceeded {
        let limit = limits.max_document_bytes;
        LimitExceeded {
            what: what.into(),
            amount: match bytes {
                Some(bytes) => Amount::Claimed { bytes, limit },
                None => Amount::MoreBytes { limit },
            },
            key: "max-document-bytes",
        }
    }
}

/// The [`LimitExceeded`] somewhere in `err`'s chain (also inside an I/O
/// error a reader returned), to report it alone rather than under the
/// contexts that read it ("corrupt layer tar").
fn limit_in(err: &anyhow::Error) -> Option<&LimitExceeded> {
    err.chain().find_map(|cause| {
        cause.downcast_ref::<LimitExceeded>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<LimitExceeded>())
        })
    })
}

/// `err`, or the [`LimitExceeded`] in its chain alone.
pub(crate) fn limit_alone(err: anyhow::Error) -> anyhow::Error {
    match limit_in(&err) {
        Some(limit) => anyhow::anyhow!("{limit}"),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_overrides_some_limits_and_keeps_the_other_defaults() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Limits::load(root.path()).unwrap(), Limits::default());
        std::fs::write(
            root.path().join("config.json"),
            r#"{"insecure-registries": [], "image-limits": {"max-layer-entries": 7}}"#,
        )
        .unwrap();
        let limits = Limits::load(root.path()).unwrap();
        assert_eq!(limits.max_layer_entries, 7);
        assert_eq!(limits.max_header_bytes, 1 << 20);

        std::fs::write(
            root.path().join("config.json"),
            r#"{"image-limits": {"max-layer-entry": 7}}"#,
        )
        .unwrap();
        let err = format!("{:#}", Limits::load(root.path()).unwrap_err());
        assert!(err.contains("config.json is invalid"), "{err}");
        assert!(err.contains("max-layer-entry"), "{err}");
    }

    #[test]
    fn a_limit_names_its_key_also_from_inside_an_io_error() {
        let limits = Limits::default();
        let io = std::io::Error::other(LimitExceeded::header("a GNU long name", 9 << 20, &limits));
        let err = anyhow::Error::from(io).context("corrupt layer tar");
        let found = limit_alone(err).to_string();
        assert_eq!(
            found,
            "a GNU long name claims 9437184 bytes, over the limit of 1048576 \
             (image-limits.max-header-bytes in <hull root>/config.json)"
        );
    }
}
