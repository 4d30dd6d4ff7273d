//! Resolving the run config's user inside the image, as Docker (runc) does.
//!
//! `name`, `uid`, `name:group`, `uid:gid` (and mixed) are looked up in the image's
//! `/etc/passwd` and `/etc/group`. A numeric uid missing from passwd is allowed (gid 0,
//! home `/`); a missing name is an error. Supplementary groups are the groups that list
//! the user as a member.

use std::io;

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Home directory (for `HOME` when the run config has none).
    pub home: String,
}

/// Resolves `spec` (or root for `None`) with the image's passwd and group files.
pub fn resolve(spec: Option<&str>) -> io::Result<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_in(spec.unwrap_or("0"), &passwd, &group).map_err(io::Error::other)
}

fn resolve_in(spec: &str, passwd: &str, group: &str) -> Result<User, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .find(|f| f[0] == user_part || (user_part.parse::<u32>().is_ok() && f[2] == user_part));
    let (name, mut user) = match (entry, user_part.parse::<u32>()) {
        (Some(f), _) => (
            Some(f[0].to_owned()),
            User {
                uid: f[2]
                    .parse()
                    .map_err(|_| format!("bad uid in /etc/passwd for {}", f[0]))?,
                gid: f[3]
                    .parse()
                    .map_err(|_| format!("bad gid in /etc/passwd for {}", f[0]))?,
                groups: Vec::new(),
                home: f[5].to_owned(),
            },
        ),
        (None, Ok(uid)) => (
            None,
            User {
                uid,
                gid: 0,
                groups: Vec::new(),
                home: "/".into(),
            },
        ),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user_part}: no matching entries in the image's /etc/passwd"
            ))
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = group_part {
        user.gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2]
                .parse()
                .map_err(|_| format!("bad gid in /etc/group for {g}"))?,
            None => g.parse().map_err(|_| {
                format!("unable to find group {g}: no matching entries in the image's /etc/group")
            })?,
        };
    }
    if let Some(name) = name {
        for f in &groups {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(gid) = f[2].parse() {
                    if !user.groups.contains(&gid) {
                        user.groups.push(gid);
                    }
                }
            }
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\n";

    #[test]
    fn names_ids_and_groups_resolve() {
        let alice = resolve_in("alice", PASSWD, GROUP).unwrap();
        assert_eq!(
            (alice.uid, alice.gid, alice.groups.clone()),
            (1000, 1000, vec![10, 29])
        );
        assert_eq!(alice.home, "/home/alice");
        assert_eq!(resolve_in("1000", PASSWD, GROUP).unwrap(), alice);
        let u = resolve_in("alice:wheel", PASSWD, GROUP).unwrap();
        assert_eq!(u.gid, 10);
        let u = resolve_in("4242:77", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 77, "/"));
        assert_eq!(resolve_in("0", PASSWD, GROUP).unwrap().home, "/root");
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(resolve_in("mallory", PASSWD, GROUP)
            .unwrap_err()
            .contains("mallory"));
        assert!(resolve_in("alice:nogroup", PASSWD, GROUP)
            .unwrap_err()
            .contains("nogroup"));
    }
}
