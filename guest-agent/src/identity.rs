//! Who the user's process runs as: `docker run --user` semantics, resolved
//! against the container's own `/etc/passwd` and `/etc/group`.
//!
//! - `USER` is a name or a numeric id. A name must exist in `/etc/passwd`;
//!   a number need not, and then runs with group 0 and home `/`.
//! - A user found in `/etc/passwd` brings its primary group and home, and,
//!   unless a `GROUP` is given, every group of `/etc/group` that lists it.
//! - `GROUP` is a name (must exist in `/etc/group`) or a numeric id.
//! - Additional groups (`--group-add`), names or numeric ids as `GROUP`,
//!   join the supplementary groups whatever the user.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// The resolved identity of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub supplementary_gids: Vec<u32>,
    /// For `HOME` when the environment does not set it.
    pub home: String,
}

/// One line of `/etc/passwd`.
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One line of `/etc/group`.
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Resolves `user` (`USER[:GROUP]`, empty for root) with the
/// `additional_groups` inside the root file system at `root`. Missing
/// `/etc/passwd` or `/etc/group` files count as empty, as in Docker.
pub fn resolve(user: &str, additional_groups: &[String], root: &Path) -> Result<Identity, String> {
    let read = |name: &str| fs::read_to_string(root.join(name)).unwrap_or_default();
    let group = read("etc/group");
    let mut identity = resolve_in(user, &read("etc/passwd"), &group)?;
    let groups: Vec<GroupEntry> = group.lines().filter_map(parse_group_line).collect();
    for name in additional_groups {
        let gid = group_id(name, &groups)?;
        if !identity.supplementary_gids.contains(&gid) {
            identity.supplementary_gids.push(gid);
        }
    }
    Ok(identity)
}

/// The id of group `name_or_id`: a numeric id as it is, a name as
/// `/etc/group` has it.
fn group_id(name_or_id: &str, groups: &[GroupEntry]) -> Result<u32, String> {
    match name_or_id.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) => groups
            .iter()
            .find(|entry| entry.name == name_or_id)
            .map(|entry| entry.gid)
            .ok_or_else(|| {
                format!("unable to find group {name_or_id}: no matching entries in group file")
            }),
    }
}

fn resolve_in(user: &str, passwd: &str, group: &str) -> Result<Identity, String> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric_uid = user_part.parse::<u32>().ok();
    let users: Vec<PasswdEntry> = passwd.lines().filter_map(parse_passwd_line).collect();
    let found = users.iter().find(|entry| match numeric_uid {
        Some(uid) => entry.uid == uid,
        None => entry.name == user_part,
    });
    let mut identity = match (found, numeric_uid) {
        (Some(entry), _) => Identity {
            uid: entry.uid,
            gid: entry.gid,
            supplementary_gids: Vec::new(),
            home: entry.home.to_owned(),
        },
        (None, Some(uid)) => Identity {
            uid,
            gid: 0,
            supplementary_gids: Vec::new(),
            home: "/".to_owned(),
        },
        (None, None) => {
            return Err(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ))
        }
    };
    let groups: Vec<GroupEntry> = group.lines().filter_map(parse_group_line).collect();
    match group_part {
        Some(group_part) => identity.gid = group_id(group_part, &groups)?,
        None => {
            if let Some(entry) = found {
                identity.supplementary_gids = groups
                    .iter()
                    .filter(|group| group.members.contains(&entry.name))
                    .map(|group| group.gid)
                    .collect();
            }
        }
    }
    Ok(identity)
}

/// The names of the uids `passwd` lists, each named by its first line as
/// getpwuid finds it (`hull top`'s user column).
pub fn user_names(passwd: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for entry in passwd.lines().filter_map(parse_passwd_line) {
        if !entry.name.is_empty() {
            names
                .entry(entry.uid)
                .or_insert_with(|| entry.name.to_owned());
        }
    }
    names
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn parse_passwd_line(line: &str) -> Option<PasswdEntry<'_>> {
    let fields: Vec<&str> = line.split(':').collect();
    if line.starts_with('#') || fields.len() < 7 {
        return None;
    }
    Some(PasswdEntry {
        name: fields[0],
        uid: fields[2].parse().ok()?,
        gid: fields[3].parse().ok()?,
        home: fields[5],
    })
}

/// `name:password:gid:member,member`; malformed lines are skipped.
fn parse_group_line(line: &str) -> Option<GroupEntry<'_>> {
    let fields: Vec<&str> = line.split(':').collect();
    if line.starts_with('#') || fields.len() < 4 {
        return None;
    }
    Some(GroupEntry {
        name: fields[0],
        gid: fields[2].parse().ok()?,
        members: fields[3].split(',').filter(|m| !m.is_empty()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # a comment\n\
                          broken line\n\
                          www:x:33:33:www:/var/www:/sbin/nologin\n\
                          bob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
                         wheel:x:10:bob,root\n\
                         www:x:33:\n\
                         bob:x:1000:\n\
                         video:x:44:alice,bob\n";

    fn resolve(user: &str) -> Result<Identity, String> {
        resolve_in(user, PASSWD, GROUP)
    }

    #[test]
    fn uids_are_named_by_their_first_line() {
        let names = user_names(&format!(
            "{PASSWD}toor:x:0:0::/root:/bin/sh\n:x:5:5::/:/bin/sh\n"
        ));
        assert_eq!(names.get(&0).map(String::as_str), Some("root"));
        assert_eq!(names.get(&33).map(String::as_str), Some("www"));
        assert_eq!(names.get(&1000).map(String::as_str), Some("bob"));
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn empty_means_root_with_roots_home_and_groups() {
        let identity = resolve("").unwrap();
        assert_eq!(
            (identity.uid, identity.gid, identity.home.as_str()),
            (0, 0, "/root")
        );
        assert_eq!(identity.supplementary_gids, [10]);
    }

    #[test]
    fn names_bring_primary_group_home_and_memberships() {
        let identity = resolve("bob").unwrap();
        assert_eq!(
            identity,
            Identity {
                uid: 1000,
                gid: 1000,
                supplementary_gids: vec![10, 44],
                home: "/home/bob".into()
            }
        );
        assert_eq!(resolve("1000").unwrap(), identity);
    }

    #[test]
    fn an_explicit_group_replaces_the_memberships() {
        let by_name = resolve("bob:www").unwrap();
        assert_eq!((by_name.uid, by_name.gid), (1000, 33));
        assert!(by_name.supplementary_gids.is_empty());
        let by_id = resolve("www:4321").unwrap();
        assert_eq!(
            (by_id.uid, by_id.gid, by_id.home.as_str()),
            (33, 4321, "/var/www")
        );
    }

    #[test]
    fn unknown_numeric_ids_run_with_group_zero_and_root_home() {
        let identity = resolve("4242").unwrap();
        assert_eq!(
            (identity.uid, identity.gid, identity.home.as_str()),
            (4242, 0, "/")
        );
        assert!(identity.supplementary_gids.is_empty());
        assert_eq!(resolve("4242:77").unwrap().gid, 77);
        assert_eq!(resolve_in("7:8", "", "").unwrap().gid, 8);
    }

    #[test]
    fn additional_groups_join_the_memberships_by_name_or_id() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(root.path().join("etc/group"), GROUP).unwrap();
        let extra = ["www".to_owned(), "10".to_owned(), "5000".to_owned()];
        let bob = super::resolve("bob", &extra, root.path()).unwrap();
        assert_eq!(bob.supplementary_gids, [10, 44, 33, 5000]);
        let explicit_group = super::resolve("bob:www", &extra, root.path()).unwrap();
        assert_eq!(explicit_group.supplementary_gids, [33, 10, 5000]);
        assert_eq!(
            super::resolve("bob", &["nogroup".to_owned()], root.path()).unwrap_err(),
            "unable to find group nogroup: no matching entries in group file"
        );
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        assert_eq!(
            resolve("mallory").unwrap_err(),
            "unable to find user mallory: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("bob:nogroup").unwrap_err(),
            "unable to find group nogroup: no matching entries in group file"
        );
    }
}
