//! A build's secrets (`hull build --secret`, compose's `build.secrets`):
//! each read once, before the build starts, from a file or an environment
//! variable, and held in memory for the `RUN --mount=type=secret` steps
//! that ask for it by id. A secret's value reaches no cache key, layer,
//! history or image config.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The largest secret BuildKit takes (its `MaxSecretSize`).
pub const MAX_SECRET_BYTES: u64 = 500 * 1024;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file's content.
    File(PathBuf),
    /// An environment variable's value.
    Env(String),
}

/// The secrets a build is given, by id. Their values are never shown: its
/// `Debug` lists the ids only.
#[derive(Default)]
pub struct Secrets {
    values: BTreeMap<String, Vec<u8>>,
}

impl Secrets {
    /// Reads each of `given` (`id`, source; a later one of an id wins, as
    /// in BuildKit), variables looked up with `env`. A missing file, an
    /// unset variable or a value over [`MAX_SECRET_BYTES`] is an error
    /// naming the secret.
    pub fn read(
        given: &[(String, SecretSource)],
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Secrets> {
        let mut values = BTreeMap::new();
        for (id, source) in given {
            if id.is_empty() {
                bail!("a secret has no id: give it as id=NAME");
            }
            let value = match source {
                SecretSource::File(path) => read_file(path)
                    .with_context(|| format!("secret {id}: cannot read {}", path.display()))?,
                SecretSource::Env(var) => env(var)
                    .with_context(|| {
                        format!("secret {id}: the environment variable {var} is not set")
                    })?
                    .into_vec(),
            };
            if value.len() as u64 > MAX_SECRET_BYTES {
                bail!("secret {id} is too big: at most {MAX_SECRET_BYTES} bytes");
            }
            values.insert(id.clone(), value);
        }
        Ok(Secrets { values })
    }

    /// The value of secret `id`, if given.
    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.values.get(id).map(Vec::as_slice)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// A file's content, read no further than one byte past the limit.
fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut value = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_once_from_files_and_variables_and_never_shown() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("npmrc");
        std::fs::write(&file, "//registry/:_authToken=abc").unwrap();
        let env = |var: &str| (var == "TOKEN").then(|| OsString::from("s3cret"));
        let given = [
            ("npmrc".to_owned(), SecretSource::File(file.clone())),
            ("token".to_owned(), SecretSource::Env("TOKEN".into())),
        ];
        let secrets = Secrets::read(&given, env).unwrap();
        // Read once: the file may go now.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            secrets.get("npmrc"),
            Some(&b"//registry/:_authToken=abc"[..])
        );
        assert_eq!(secrets.get("token"), Some(&b"s3cret"[..]));
        assert_eq!(secrets.get("other"), None);
        assert_eq!(format!("{secrets:?}"), r#"{"npmrc", "token"}"#);

        let error = |given: (&str, SecretSource)| {
            let given = [(given.0.to_owned(), given.1)];
            format!("{:#}", Secrets::read(&given, env).unwrap_err())
        };
        assert!(error(("npmrc", SecretSource::File(file.clone())))
            .starts_with(&format!("secret npmrc: cannot read {}: ", file.display())));
        assert_eq!(
            error(("gh", SecretSource::Env("GITHUB_TOKEN".into()))),
            "secret gh: the environment variable GITHUB_TOKEN is not set"
        );
        assert_eq!(
            error(("", SecretSource::Env("TOKEN".into()))),
            "a secret has no id: give it as id=NAME"
        );
        let big = temp.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        assert_eq!(
            error(("big", SecretSource::File(big))),
            format!("secret big is too big: at most {MAX_SECRET_BYTES} bytes")
        );
    }
}
