//! Registry credentials in Docker's `config.json` format:
//! `{"auths": {"registry.example:5000": {"auth": base64("user:password")}}}`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Docker Hub's credentials live under this key in Docker's file.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A credentials file; unknown fields are kept.
#[derive(Default, Serialize, Deserialize)]
pub struct AuthFile {
    #[serde(skip)]
    path: PathBuf,
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    auth: String,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

impl AuthFile {
    /// Reads `path`; a missing file has no credentials.
    pub fn load(path: &Path) -> Result<AuthFile> {
        let mut file = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<AuthFile>(&bytes)
                .with_context(|| format!("{} is not a valid credentials file", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => AuthFile::default(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        file.path = path.to_owned();
        Ok(file)
    }

    /// The user and password stored for `registry`.
    pub fn get(&self, registry: &str) -> Result<Option<(String, String)>> {
        let Some(entry) = self.auths.get(key(registry)) else {
            return Ok(None);
        };
        if entry.auth.is_empty() {
            return Ok(None);
        }
        let decoded = STANDARD
            .decode(&entry.auth)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                anyhow!(
                    "credentials for {registry} in {} are corrupt",
                    self.path.display()
                )
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            anyhow!(
                "credentials for {registry} in {} are corrupt",
                self.path.display()
            )
        })?;
        Ok(Some((user.to_owned(), password.to_owned())))
    }

    pub fn set(&mut self, registry: &str, user: &str, password: &str) {
        let entry = self.auths.entry(key(registry).to_owned()).or_default();
        entry.auth = STANDARD.encode(format!("{user}:{password}"));
    }

    /// Forgets `registry`; false when nothing was stored.
    pub fn remove(&mut self, registry: &str) -> bool {
        self.auths.remove(key(registry)).is_some()
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let temp = self.path.with_extension("tmp");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("cannot write {}", temp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        fs::rename(&temp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn key(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_docker_format_keeping_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"dTpw"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let mut file = AuthFile::load(&path).unwrap();
        assert_eq!(file.get("other:1").unwrap(), Some(("u".into(), "p".into())));
        file.set("docker.io", "me", "se:cret");
        file.save().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json["auths"][DOCKER_HUB_KEY]["auth"],
            STANDARD.encode("me:se:cret")
        );
        assert_eq!(json["credsStore"], "x");
        let mut file = AuthFile::load(&path).unwrap();
        assert_eq!(
            file.get("docker.io").unwrap(),
            Some(("me".into(), "se:cret".into()))
        );
        assert!(file.remove("docker.io"));
        assert!(!file.remove("docker.io"));
        assert_eq!(file.get("docker.io").unwrap(), None);
    }
}
