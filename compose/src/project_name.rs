//! The project's name, as Compose v2 picks it: `-p`, else
//! `COMPOSE_PROJECT_NAME`, else the file's `name:`, else the project
//! directory's name made valid (lower case, only `a-z`, `0-9`, `_`, `-`,
//! starting with a letter or digit). A name given must be valid as it is.

use std::path::Path;

/// Where a name came from, for the error about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `-p`.
    Flag,
    /// `COMPOSE_PROJECT_NAME`.
    Environment,
    /// The file's `name:`.
    File,
}

/// The project name from what was given, in order of precedence.
pub fn choose(
    flag: Option<&str>,
    environment: Option<&str>,
    file: Option<&str>,
    directory: &Path,
) -> Result<String, String> {
    let given = [
        (flag, Source::Flag),
        (environment, Source::Environment),
        (file, Source::File),
    ];
    if let Some((name, source)) = given
        .into_iter()
        .find_map(|(name, source)| name.filter(|n| !n.is_empty()).map(|n| (n, source)))
    {
        return check(name).map_err(|reason| {
            let what = match source {
                Source::Flag => "-p",
                Source::Environment => "COMPOSE_PROJECT_NAME",
                Source::File => "name:",
            };
            format!("{what} {name:?}: {reason}")
        });
    }
    let base = directory
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = normalize(&base);
    match name.is_empty() {
        true => Err(format!(
            "the project directory {} gives no project name; give one with -p",
            directory.display()
        )),
        false => Ok(name),
    }
}

/// `name` made a valid project name.
pub fn normalize(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// Checks a project name given as is.
fn check(name: &str) -> Result<String, String> {
    match normalize(name) == name {
        true => Ok(name.to_owned()),
        false => Err(
            "a project name must consist only of lowercase letters, digits, '-' and '_', \
             and start with a letter or digit"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_normalization() {
        let dir = Path::new("/srv/My App.v2");
        assert_eq!(choose(Some("p"), Some("e"), Some("f"), dir).unwrap(), "p");
        assert_eq!(choose(None, Some("e"), Some("f"), dir).unwrap(), "e");
        assert_eq!(choose(None, Some(""), Some("f"), dir).unwrap(), "f");
        assert_eq!(choose(None, None, None, dir).unwrap(), "myappv2");
        assert_eq!(normalize("__-Web_Site-1"), "web_site-1");
        assert!(choose(Some("Bad"), None, None, dir)
            .unwrap_err()
            .starts_with("-p \"Bad\""));
        assert!(choose(None, None, None, Path::new("/srv/..._")).is_err());
    }
}
