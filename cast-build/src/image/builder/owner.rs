//! `--chown=user[:group]` and `USER user[:group]`: names are looked up in the
//! image's own `/etc/passwd` and `/etc/group` (never the host's), numbers are
//! taken as they are. As Docker documents, `--chown` with a user and no group
//! uses the user's numeric id as the group id too; for USER the group is the
//! user's primary group from `/etc/passwd` (root's when the user has no entry).

use std::io::Read;

use cast_rootfs::ImageTree;

/// Resolves a `--chown` value against the image tree; the error is a short
/// message for the caller to locate.
pub fn resolve_chown(tree: &ImageTree, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(format!("--chown={spec}: missing user"));
    }
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(tree, "/etc/passwd", user)
            .map_err(|why| format!("unable to find user {user}: {why}"))?,
    };
    let gid = match group {
        None => uid,
        Some("") => return Err(format!("--chown={spec}: missing group")),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(tree, "/etc/group", g)
                .map_err(|why| format!("unable to find group {g}: {why}"))?,
        },
    };
    Ok((uid, gid))
}

/// Resolves a USER value to the owner of what the user creates.
pub fn resolve_user(tree: &ImageTree, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read(tree, "/etc/passwd").unwrap_or_default();
    let numeric = user.parse::<u32>().ok();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user || (numeric.is_some() && f[2] == user)));
    let uid = match (numeric, &entry) {
        (Some(n), _) => n,
        (None, Some(f)) => f[2]
            .parse()
            .map_err(|_| format!("bad /etc/passwd entry for {user}"))?,
        (None, None) => {
            return Err(format!(
                "unable to find user {user}: no matching entries in /etc/passwd"
            ))
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(tree, "/etc/group", g)
                .map_err(|why| format!("unable to find group {g}: {why}"))?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    Ok((uid, gid))
}

/// The text of a file in the tree.
fn read(tree: &ImageTree, file: &str) -> Result<String, String> {
    let id = tree
        .lookup_follow(file)
        .map_err(|_| format!("no {file} in the image"))?;
    let mut text = String::new();
    tree.open_content(id)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {file}: {e}"))?;
    Ok(text)
}

/// The id (third field) of `name` in a passwd/group style file of the tree.
fn lookup(tree: &ImageTree, file: &str, name: &str) -> Result<u32, String> {
    let text = read(tree, file)?;
    find_id(&text, name).ok_or_else(|| format!("no matching entries in {file}"))
}

/// Finds `name` in `name:x:id:...` lines.
pub fn find_id(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 3 && fields[0] == name)
        .and_then(|fields| fields[2].trim().parse().ok())
}
