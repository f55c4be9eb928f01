//! `RUN --mount=type=secret`: which secret (`id=`, or `source=`, or the
//! target's base name), where it goes (a file at `target=`, by default
//! `/run/secrets/<id>`, and, with `env=`, a variable; `env=` alone is the
//! variable only), the file's owner and mode (`uid=`, `gid=`, `mode=`:
//! root's, 0400), as BuildKit's Dockerfile frontend reads them; and the
//! files a step's secrets are written to while it runs: a private
//! directory (0700) under the hull root, each file owned and moded as
//! asked, shared read-only into the step's VM one file at a time and
//! removed when the step is over (or, if the build is killed first, by the
//! next build that writes secrets).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where a secret's file goes when `target=` does not say.
const DEFAULT_DIR: &str = "/run/secrets";
/// How the directories of steps' secret files are named, under the
/// build's temporary directory.
const DIR_PREFIX: &str = "secrets-";

/// The options a secret mount takes (BuildKit's).
const SECRET_OPTIONS: [&str; 16] = [
    "type",
    "id",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "env",
    "required",
    "uid",
    "gid",
    "mode",
    "ro",
    "readonly",
    "rw",
    "readwrite",
];

/// A secret file's owner and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOwner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// One `RUN --mount=type=secret`, read.
#[derive(Debug, PartialEq, Eq)]
pub struct SecretMount {
    /// The secret's id.
    pub id: String,
    /// The file's path in the step (absolute); none for a secret given
    /// only as a variable.
    pub target: Option<String>,
    /// The variable it is also (or only) given as.
    pub env: Option<String>,
    /// Whether a build not given it fails (else the mount is left out).
    pub required: bool,
    pub owner: FileOwner,
}

impl SecretMount {
    /// The mount `options` (expanded) describe; a target given is made
    /// absolute with `absolute`.
    pub fn parse(
        options: &BTreeMap<String, String>,
        absolute: impl Fn(&str) -> String,
    ) -> Result<SecretMount> {
        if let Some(other) = options
            .keys()
            .find(|key| !SECRET_OPTIONS.contains(&key.as_str()))
        {
            bail!("{other}= does not apply to a secret mount");
        }
        let given_target = ["target", "dst", "destination"]
            .iter()
            .find_map(|key| options.get(*key));
        let source = options.get("source").or_else(|| options.get("src"));
        let id = match (options.get("id"), source, given_target) {
            (Some(_), Some(_), _) => bail!("give the secret's id= or source=, not both"),
            (Some(id), None, _) | (None, Some(id), _) => id.clone(),
            (None, None, Some(target)) => base_name(target).to_owned(),
            (None, None, None) => bail!("give the secret's id= or its target="),
        };
        let env = match options.get("env") {
            Some(var) if var.is_empty() => bail!("env= needs a variable's name"),
            env => env.cloned(),
        };
        let target = match (given_target, &env) {
            (Some(target), _) => Some(absolute(target)),
            (None, Some(_)) => None,
            (None, None) => Some(format!("{DEFAULT_DIR}/{}", base_name(&id))),
        };
        let required = match options.get("required") {
            None => false,
            Some(value) => {
                go_bool(value).with_context(|| format!("required={value}: use true or false"))?
            }
        };
        let number = |key: &str, radix: u32, default: u32| {
            options.get(key).map_or(Ok(default), |value| {
                u32::from_str_radix(value, radix)
                    .with_context(|| format!("{key}={value} is no number"))
            })
        };
        let owner = FileOwner {
            uid: number("uid", 10, 0)?,
            gid: number("gid", 10, 0)?,
            mode: number("mode", 8, 0o400)?,
        };
        Ok(SecretMount {
            id,
            target,
            env,
            required,
            owner,
        })
    }

    /// Its part of the step's cache key: where the secret goes, never its
    /// value (BuildKit keys a secret mount by id and target too).
    pub fn key(&self) -> String {
        let owner = self.owner;
        let named = serde_json::json!([
            self.id,
            self.target,
            self.env,
            self.required,
            owner.uid,
            owner.gid,
            owner.mode,
        ]);
        format!("secret:{named}")
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it (BuildKit's `required=`);
/// a bare option (`required`) is given as the empty string, true.
pub fn go_bool(value: &str) -> Option<bool> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The last element of `path`, as Go's `path.Base` takes it.
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        Some(base) if !base.is_empty() => base,
        _ if path.is_empty() => ".",
        _ => "/",
    }
}

/// A secret a step mounts as a file: the step mount it is, its value and
/// the file's owner and mode.
pub struct SecretFile {
    pub mount: usize,
    pub value: Vec<u8>,
    pub owner: FileOwner,
}

/// A step's secret files, in a directory of their own that this process
/// holds locked: removed with them when dropped.
pub struct SecretDir {
    path: PathBuf,
    _lock: File,
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        // Nothing to report to: a directory left is removed by the next
        // build that writes secrets, once no process holds it.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Writes `files` into a new directory under `tmp` that only its owner may
/// enter, each (named by its place in `files`) written, owned and moded
/// before anything may share it. Returns the directory, gone with its
/// files when dropped, and each file's path. First removes what builds
/// that died left of theirs.
pub fn write_files(files: &[SecretFile], tmp: &Path) -> Result<(SecretDir, Vec<PathBuf>)> {
    fs::create_dir_all(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    remove_abandoned(tmp);
    let path = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(tmp)
        .with_context(|| format!("cannot create a directory in {}", tmp.display()))?
        .keep();
    let lock = File::open(&path)
        .and_then(|lock| lock_exclusive(&lock, false).map(|()| lock))
        .with_context(|| format!("cannot lock {}", path.display()))?;
    let dir = SecretDir { path, _lock: lock };
    let mut paths = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let path = dir.path.join(index.to_string());
        write_file(&path, file).with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok((dir, paths))
}

/// Removes the secret directories under `tmp` that a build killed before
/// it could remove them left: those that hold files and that no process
/// holds locked. (An empty one may be another build's, made and not yet
/// locked: its maker writes into it only once it holds it.) What cannot be
/// read or removed is left for a later build.
fn remove_abandoned(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if lock_exclusive(&dir, true).is_err() {
            continue;
        }
        let holds_files = fs::read_dir(&path).is_ok_and(|mut files| files.next().is_some());
        if holds_files {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Takes an exclusive `flock` on `file`, waiting for it unless `or_fail`.
fn lock_exclusive(file: &File, or_fail: bool) -> std::io::Result<()> {
    let operation = match or_fail {
        true => libc::LOCK_EX | libc::LOCK_NB,
        false => libc::LOCK_EX,
    };
    // SAFETY: flock(2) on a descriptor `file` owns for the call.
    match unsafe { libc::flock(file.as_raw_fd(), operation) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn write_file(path: &Path, file: &SecretFile) -> std::io::Result<()> {
    let mut out = fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    out.write_all(&file.value)?;
    std::os::unix::fs::fchown(&out, Some(file.owner.uid), Some(file.owner.gid))?;
    out.set_permissions(fs::Permissions::from_mode(file.owner.mode & 0o7777))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// The secret mount `spec` (`key=value,...`, a bare key as `""`), its
    /// relative target under `/app`.
    fn parse(spec: &str) -> Result<SecretMount> {
        let options = spec
            .split(',')
            .map(|field| match field.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (field.to_owned(), String::new()),
            })
            .collect();
        SecretMount::parse(&options, |target| match target.starts_with('/') {
            true => target.to_owned(),
            false => format!("/app/{target}"),
        })
    }

    #[test]
    fn a_secret_mount_is_read_as_buildkits_dockerfile_frontend_reads_it() {
        let root = FileOwner {
            uid: 0,
            gid: 0,
            mode: 0o400,
        };
        assert_eq!(
            parse("type=secret,id=npmrc").unwrap(),
            SecretMount {
                id: "npmrc".into(),
                target: Some("/run/secrets/npmrc".into()),
                env: None,
                required: false,
                owner: root,
            }
        );
        // The id from source=, or from the target's base name.
        let by_source = parse("type=secret,source=tok,target=/root/.npmrc").unwrap();
        assert_eq!(
            (by_source.id.as_str(), by_source.target.as_deref()),
            ("tok", Some("/root/.npmrc"))
        );
        let by_target = parse("type=secret,dst=cfg/aws.json,required").unwrap();
        assert_eq!(
            (
                by_target.id.as_str(),
                by_target.target.as_deref(),
                by_target.required
            ),
            ("aws.json", Some("/app/cfg/aws.json"), true)
        );
        // env= alone is the variable only; with a target, both.
        let env = parse("type=secret,id=gh,env=GITHUB_TOKEN").unwrap();
        assert_eq!(
            (env.target, env.env.as_deref()),
            (None, Some("GITHUB_TOKEN"))
        );
        let both = parse("type=secret,id=gh,env=T,target=/t").unwrap();
        assert_eq!(
            (both.target.as_deref(), both.env.as_deref()),
            (Some("/t"), Some("T"))
        );
        let owned = parse("type=secret,id=k,uid=1000,gid=100,mode=0440,required=false").unwrap();
        assert_eq!(
            (owned.owner, owned.required),
            (
                FileOwner {
                    uid: 1000,
                    gid: 100,
                    mode: 0o440
                },
                false
            )
        );
        for (spec, error) in [
            (
                "type=secret,id=a,source=b",
                "give the secret's id= or source=, not both",
            ),
            (
                "type=secret,required",
                "give the secret's id= or its target=",
            ),
            (
                "type=secret,id=a,from=stage",
                "from= does not apply to a secret mount",
            ),
            (
                "type=secret,id=a,sharing=locked",
                "sharing= does not apply to a secret mount",
            ),
            ("type=secret,id=a,mode=9", "mode=9 is no number"),
            (
                "type=secret,id=a,required=maybe",
                "required=maybe: use true or false",
            ),
            ("type=secret,id=a,env=", "env= needs a variable's name"),
        ] {
            assert_eq!(parse(spec).unwrap_err().to_string(), error, "{spec}");
        }
    }

    #[test]
    fn the_key_names_where_a_secret_goes_but_not_its_value() {
        let key = |spec: &str| parse(spec).unwrap().key();
        assert_eq!(
            key("type=secret,id=tok"),
            r#"secret:["tok","/run/secrets/tok",null,false,0,0,256]"#
        );
        assert_ne!(
            key("type=secret,id=tok"),
            key("type=secret,id=tok,target=/t")
        );
        assert_ne!(key("type=secret,id=tok"), key("type=secret,id=tok,env=TOK"));
        assert_ne!(
            key("type=secret,id=tok"),
            key("type=secret,id=tok,mode=0444")
        );
    }

    #[test]
    fn go_bool_and_base_name_read_as_go_reads_them() {
        assert_eq!(go_bool(""), Some(true));
        assert_eq!(go_bool("False"), Some(false));
        assert_eq!(go_bool("yes"), None);
        assert_eq!(base_name("/run/secrets/tok"), "tok");
        assert_eq!(base_name("dir/"), "dir");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name(""), ".");
    }

    #[test]
    fn secret_files_are_private_owned_as_asked_and_gone_with_their_directory() {
        let temp = tempfile::tempdir().unwrap();
        let tmp = temp.path().join("tmp");
        let files = [
            SecretFile {
                mount: 3,
                value: b"s3cret".to_vec(),
                owner: FileOwner {
                    uid: 0,
                    gid: 0,
                    mode: 0o400,
                },
            },
            SecretFile {
                mount: 5,
                value: b"other".to_vec(),
                owner: FileOwner {
                    uid: 1000,
                    gid: 100,
                    mode: 0o440,
                },
            },
        ];
        let (dir, paths) = write_files(&files, &tmp).unwrap();
        assert_eq!(fs::metadata(&dir.path).unwrap().mode() & 0o7777, 0o700);
        let seen: Vec<_> = paths
            .iter()
            .map(|path| {
                let meta = fs::metadata(path).unwrap();
                (
                    fs::read(path).unwrap(),
                    meta.uid(),
                    meta.gid(),
                    meta.mode() & 0o7777,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (b"s3cret".to_vec(), 0, 0, 0o400),
                (b"other".to_vec(), 1000, 100, 0o440)
            ]
        );
        drop(dir);
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn what_a_killed_build_left_is_removed_by_the_next_but_not_what_one_holds() {
        let temp = tempfile::tempdir().unwrap();
        let tmp = temp.path();
        let secret = |value: &[u8]| SecretFile {
            mount: 0,
            value: value.to_vec(),
            owner: FileOwner {
                uid: 0,
                gid: 0,
                mode: 0o400,
            },
        };
        // A build killed while its step ran: its files, no lock.
        let dead = tmp.join("secrets-dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("0"), "old").unwrap();
        // One just made by another build, not locked yet; a layer file.
        let new = tmp.join("secrets-new");
        fs::create_dir(&new).unwrap();
        fs::write(tmp.join("layer-1.tar"), "").unwrap();
        let (held, _) = write_files(&[secret(b"one")], tmp).unwrap();
        assert!(!dead.exists());
        assert!(new.exists() && tmp.join("layer-1.tar").exists());
        // A live build's directory is left alone.
        let (other, paths) = write_files(&[secret(b"two")], tmp).unwrap();
        assert!(held.path.join("0").exists());
        assert_eq!(fs::read(&paths[0]).unwrap(), b"two");
        drop((held, other));
        let mut left: Vec<_> = fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["layer-1.tar", "secrets-new"]);
    }
}
