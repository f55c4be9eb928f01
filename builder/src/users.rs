//! `USER[:GROUP]` as an image names them: numbers, or names looked up in
//! the image's `/etc/passwd` and `/etc/group`, as BuildKit's file
//! operations read them (a numeric user without a group is also that
//! group; a named user brings its primary group).

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};

use crate::tree::{self, LayerTree};

/// The uid and gid of `--chown=USER[:GROUP]`: a name must be in the
/// image.
pub fn chown_owner(image: &LayerTree, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = split(spec);
    let Some((uid, primary_gid)) = user_ids(image, user)? else {
        bail!("--chown={spec}: no user {user} in the image's /etc/passwd");
    };
    let gid = match group {
        None => primary_gid,
        Some(group) => match group_id(image, group)? {
            Some(gid) => gid,
            None => bail!("--chown={spec}: no group {group} in the image's /etc/group"),
        },
    };
    Ok((uid, gid))
}

/// The owner of the directories `WORKDIR` makes for the stage's `USER`
/// `spec`: BuildKit's mkdir, where a name the image does not have counts
/// as root (user) or leaves the user's group (group).
pub fn workdir_owner(image: &LayerTree, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = split(spec);
    let (uid, primary_gid) = user_ids(image, user)?.unwrap_or((0, 0));
    let gid = match group {
        None => primary_gid,
        Some(group) => group_id(image, group)?.unwrap_or(primary_gid),
    };
    Ok((uid, gid))
}

fn split(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    }
}

/// `user`'s uid and primary gid: a number (also its gid), or a name in
/// `/etc/passwd`.
fn user_ids(image: &LayerTree, user: &str) -> Result<Option<(u32, u32)>> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(Some((uid, uid)));
    }
    Ok(entry(image, "etc/passwd", user, 4)?
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?))))
}

/// `group`'s gid: a number, or a name in `/etc/group`.
fn group_id(image: &LayerTree, group: &str) -> Result<Option<u32>> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(Some(gid));
    }
    Ok(entry(image, "etc/group", group, 3)?.and_then(|fields| fields[2].parse().ok()))
}

/// The fields of `name`'s line in the image's colon-separated `file`, if
/// it has at least `fields` of them.
fn entry(image: &LayerTree, file: &str, name: &str, fields: usize) -> Result<Option<Vec<String>>> {
    let text = match tree::resolve(image, Path::new(file), true)? {
        Some((_, found)) if found.metadata.is_file() => {
            fs::read_to_string(&found.host).unwrap_or_default()
        }
        _ => return Ok(None),
    };
    Ok(text
        .lines()
        .map(|line| line.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|parts| parts.len() >= fields && parts[0] == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with_users() -> (tempfile::TempDir, LayerTree) {
        let temp = tempfile::tempdir().unwrap();
        let layer = temp.path().join("layer");
        fs::create_dir_all(layer.join("etc")).unwrap();
        fs::write(
            layer.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(layer.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let image = LayerTree::new(&[layer], "the image");
        (temp, image)
    }

    #[test]
    fn chown_takes_numbers_and_names_and_refuses_unknown_names() {
        let (_temp, image) = image_with_users();
        assert_eq!(chown_owner(&image, "app").unwrap(), (1000, 1001));
        assert_eq!(chown_owner(&image, "app:staff").unwrap(), (1000, 50));
        assert_eq!(chown_owner(&image, "42").unwrap(), (42, 42));
        assert_eq!(chown_owner(&image, "42:7").unwrap(), (42, 7));
        let err = chown_owner(&image, "nobody").unwrap_err().to_string();
        assert_eq!(
            err,
            "--chown=nobody: no user nobody in the image's /etc/passwd"
        );
        assert!(chown_owner(&image, "app:wheel").is_err());
    }

    #[test]
    fn workdir_owners_count_unknown_names_as_buildkit_does() {
        let (_temp, image) = image_with_users();
        assert_eq!(workdir_owner(&image, "app").unwrap(), (1000, 1001));
        assert_eq!(workdir_owner(&image, "1234").unwrap(), (1234, 1234));
        assert_eq!(workdir_owner(&image, "ghost").unwrap(), (0, 0));
        assert_eq!(workdir_owner(&image, "app:ghosts").unwrap(), (1000, 1001));
    }
}
