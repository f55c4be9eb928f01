//! Image references with Docker's rules: `alpine` is
//! `docker.io/library/alpine:latest`, a first component with a `.` or `:`
//! (or `localhost`) names a registry, and `@sha256:` pins a digest.

use std::fmt;
use std::str::FromStr;

use oci_client::Reference;

use crate::quote::quoted;

const DOCKER_HUB: &str = "docker.io";
const OFFICIAL_NAMESPACE: &str = "library/";

/// A fully qualified image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(Reference);

/// A string that is not a valid image reference.
#[derive(Debug, thiserror::Error)]
#[error("invalid reference format {text}: {reason}")]
pub struct InvalidReference {
    text: String,
    reason: String,
}

impl ImageRef {
    /// Parses a reference as `docker pull` does.
    pub fn parse(text: &str) -> Result<ImageRef, InvalidReference> {
        let invalid = |reason: String| InvalidReference {
            text: quoted(text),
            reason,
        };
        let lowercase = || "repository name must be lowercase".to_owned();
        let reference = Reference::from_str(text).map_err(|err| {
            match Reference::from_str(&text.to_ascii_lowercase()) {
                Ok(_) => invalid(lowercase()),
                Err(_) => invalid(err.to_string()),
            }
        })?;
        // The registry's name may have capitals; the repository's may not,
        // which the parser lets through where it reads them as a path.
        if reference
            .repository()
            .chars()
            .any(|c| c.is_ascii_uppercase())
        {
            return Err(invalid(lowercase()));
        }
        Ok(ImageRef(reference))
    }

    /// Parses a name to give an image (`tag`, `import`, `commit`,
    /// `build -t`): Docker refuses one pinned to a digest, which a name
    /// given here could not keep.
    pub fn parse_new_name(text: &str) -> Result<ImageRef, InvalidReference> {
        let reference = ImageRef::parse(text)?;
        match reference.digest() {
            Some(_) => Err(InvalidReference {
                text: quoted(text),
                reason: "refusing to create a tag with a digest reference: name the image \
                         NAME[:TAG]"
                    .to_owned(),
            }),
            None => Ok(reference),
        }
    }

    /// The registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The repository path inside the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// `registry/repository`, e.g. `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The name as Docker shows it: `alpine`, `me/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry() == DOCKER_HUB {
            let repo = self.repository();
            repo.strip_prefix(OFFICIAL_NAMESPACE)
                .unwrap_or(repo)
                .to_owned()
        } else {
            self.name()
        }
    }

    /// `registry/repository:tag` when the reference has a tag.
    pub fn tagged(&self) -> Option<String> {
        self.tag().map(|tag| format!("{}:{tag}", self.name()))
    }

    /// The oci-client form, for talking to the registry.
    pub(crate) fn as_oci(&self) -> &Reference {
        &self.0
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        // With both a tag and a digest, the digest decides; show both.
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = self.digest() {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ImageRef {
    type Err = InvalidReference;
    fn from_str(text: &str) -> Result<ImageRef, InvalidReference> {
        ImageRef::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> String {
        ImageRef::parse(text).unwrap().to_string()
    }

    #[test]
    fn short_names_resolve_like_docker() {
        assert_eq!(full("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(
            full("python:3.12-slim"),
            "docker.io/library/python:3.12-slim"
        );
        assert_eq!(full("me/app"), "docker.io/me/app:latest");
        assert_eq!(full("docker.io/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(
            full("index.docker.io/library/alpine:3"),
            "docker.io/library/alpine:3"
        );
    }

    #[test]
    fn registries_need_a_dot_a_port_or_localhost() {
        let r = ImageRef::parse("registry.example:5000/me/app:v1").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("registry.example:5000", "me/app", Some("v1"))
        );
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        // Without a dot, port or `localhost`, the first part is a Hub namespace.
        assert_eq!(full("myhost/app"), "docker.io/myhost/app:latest");
    }

    #[test]
    fn digests_pin_the_image() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = ImageRef::parse(&format!("alpine@{digest}")).unwrap();
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{digest}"));
        assert!(ImageRef::parse("alpine@sha256:abc").is_err());
    }

    #[test]
    fn capitals_are_refused_in_repositories_only() {
        let upper = ImageRef::parse("UPPER/x").unwrap_err().to_string();
        assert!(
            upper.contains("repository name must be lowercase"),
            "{upper}"
        );
        assert!(ImageRef::parse("Registry.Example:5000/app").is_ok());
    }

    #[test]
    fn a_new_name_is_not_pinned_to_a_digest() {
        let digest = format!("sha256:{}", "0".repeat(64));
        for pinned in [format!("x@{digest}"), format!("x:t@{digest}")] {
            let err = ImageRef::parse_new_name(&pinned).unwrap_err().to_string();
            assert!(
                err.contains("refusing to create a tag with a digest"),
                "{err}"
            );
        }
        assert_eq!(
            ImageRef::parse_new_name("x:t").unwrap().tagged().unwrap(),
            "docker.io/library/x:t"
        );
    }

    #[test]
    fn familiar_names_drop_the_hub_and_library() {
        assert_eq!(ImageRef::parse("alpine").unwrap().familiar_name(), "alpine");
        assert_eq!(ImageRef::parse("me/app").unwrap().familiar_name(), "me/app");
        assert_eq!(
            ImageRef::parse("localhost:5000/app")
                .unwrap()
                .familiar_name(),
            "localhost:5000/app"
        );
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "Alpine",
            "me/App:v1",
            "UPPER/x",
            "localhost:5000/Me/app",
            "alpine:",
            ":tag",
            "a b",
            "alpine:-bad",
            "/alpine",
            "alpine/",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be invalid");
        }
        assert!(ImageRef::parse("Registry.Example:5000/app:V1").is_ok());
    }
}
