//! Which compose files a project is made of: those given (`-f`, or
//! `COMPOSE_FILE`), else the first of `compose.yaml`, `compose.yml`,
//! `docker-compose.yaml`, `docker-compose.yml` in the working directory or
//! the nearest directory above it, with its override file beside it.

use std::path::{Path, PathBuf};

/// The name of the compose file read from standard input (`-f -`).
pub const STDIN_FILE: &str = "-";

/// The file names looked for, in order of preference.
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The files `given` (`-f`) or else `compose_file` (`COMPOSE_FILE`) list,
/// as written; none if neither lists any, and the files are to be found.
pub fn listed(given: &[PathBuf], compose_file: Option<&str>) -> Option<Vec<PathBuf>> {
    match (given.is_empty(), compose_file) {
        (false, _) => Some(given.to_vec()),
        (true, Some(list)) if !list.is_empty() => {
            Some(list.split(':').map(PathBuf::from).collect())
        }
        _ => None,
    }
}

/// The compose files to load, first the base, then those merged onto it.
///
/// `given` are `-f` files, relative to `working_dir`; `compose_file` is
/// `COMPOSE_FILE` (paths joined by `:`), used when none are given.
pub fn find(
    given: &[PathBuf],
    compose_file: Option<&str>,
    working_dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    let Some(listed) = listed(given, compose_file) else {
        return discover(working_dir);
    };
    if listed
        .iter()
        .filter(|file| *file == Path::new(STDIN_FILE))
        .count()
        > 1
    {
        return Err("-f -: the compose file on stdin is given twice".into());
    }
    listed
        .into_iter()
        .map(|file| {
            if file == Path::new(STDIN_FILE) {
                return Ok(file);
            }
            let file = working_dir.join(file);
            if file.is_dir() {
                return Err(format!(
                    "{}: is a directory: give the compose file in it with -f",
                    file.display()
                ));
            }
            match file.is_file() {
                true => Ok(file),
                false => Err(format!("{}: no such file", file.display())),
            }
        })
        .collect()
}

/// The compose file of `dir` or the nearest directory above, with its
/// override file.
fn discover(dir: &Path) -> Result<Vec<PathBuf>, String> {
    for dir in dir.ancestors() {
        let Some(name) = FILE_NAMES.iter().find(|name| dir.join(name).is_file()) else {
            continue;
        };
        let mut files = vec![dir.join(name)];
        let stem = name.rsplit_once('.').map_or(*name, |(stem, _)| stem);
        let overrides = ["yaml", "yml"].map(|ext| dir.join(format!("{stem}.override.{ext}")));
        files.extend(overrides.into_iter().find(|file| file.is_file()));
        return Ok(files);
    }
    Err(format!(
        "no configuration file provided: none of {} in {} or above; name one with -f",
        FILE_NAMES.join(", "),
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_is_a_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let stdin = PathBuf::from(STDIN_FILE);
        assert_eq!(
            find(std::slice::from_ref(&stdin), None, dir.path()),
            Ok(vec![stdin.clone()])
        );
        assert_eq!(find(&[], Some("-"), dir.path()), Ok(vec![stdin.clone()]));
        let err = find(&[stdin.clone(), stdin], None, dir.path()).unwrap_err();
        assert!(err.contains("given twice"), "{err}");
    }

    #[test]
    fn found_upwards_with_its_override() {
        let top = tempfile::tempdir().unwrap();
        let nested = top.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(top.path().join("docker-compose.yml"), "services: {}").unwrap();
        std::fs::write(top.path().join("a/compose.yaml"), "services: {}").unwrap();
        std::fs::write(top.path().join("a/compose.override.yml"), "services: {}").unwrap();
        assert_eq!(
            find(&[], None, &nested).unwrap(),
            [
                top.path().join("a/compose.yaml"),
                top.path().join("a/compose.override.yml")
            ]
        );
        assert_eq!(
            find(&[], None, top.path()).unwrap(),
            [top.path().join("docker-compose.yml")]
        );
    }

    #[test]
    fn given_files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("one.yaml"), "services: {}").unwrap();
        let one = PathBuf::from("one.yaml");
        assert_eq!(
            find(std::slice::from_ref(&one), None, dir.path()).unwrap(),
            [dir.path().join("one.yaml")]
        );
        assert_eq!(
            find(&[], Some("one.yaml"), dir.path()).unwrap(),
            [dir.path().join("one.yaml")]
        );
        let error = find(&[PathBuf::from("two.yaml")], None, dir.path()).unwrap_err();
        assert!(error.ends_with("two.yaml: no such file"), "{error}");
        let error = find(&[PathBuf::from(".")], None, dir.path()).unwrap_err();
        assert!(error.ends_with(": is a directory: give the compose file in it with -f"));
        assert!(find(&[], None, dir.path())
            .unwrap_err()
            .contains("no configuration file"));
    }
}
