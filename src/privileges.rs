//! `--user USER[:GROUP]`: drop to another user after the fix (I7).
//!
//! A static binary has no NSS, so names come from /etc/passwd and /etc/group, read directly.
//! Numbers need no entry; like Docker (runc), a uid that has no passwd entry gets gid 0 and
//! HOME=/.

use std::fmt;

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};

/// Who the app runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7).then_some(())?;
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

/// (name, gid, members) of each /etc/group line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4).then_some(())?;
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolve `USER[:GROUP]` against the contents of /etc/passwd and /etc/group. Pure.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity, UserError> {
    let (user, group_spec) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group_spec == Some("") {
        return Err(UserError(format!(
            "--user '{spec}': expected USER or USER:GROUP, by name or number"
        )));
    }
    let entry = passwd_entries(passwd).find(|e| e.name == user).or_else(|| {
        let uid: u32 = user.parse().ok()?;
        passwd_entries(passwd).find(|e| e.uid == uid)
    });
    let (uid, primary, home, name) = match (&entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_owned(), Some(e.name)),
        (None, Ok(uid)) => (uid, 0, "/".to_owned(), None),
        (None, Err(_)) => {
            return Err(UserError(format!(
                "--user: no user '{user}' in /etc/passwd; use a number or add the user to the image"
            )))
        }
    };
    let (gid, groups) = match group_spec {
        Some(g) => {
            let gid = group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, gid, _)| gid)
                .or_else(|| g.parse().ok())
                .ok_or_else(|| {
                    UserError(format!(
                        "--user: no group '{g}' in /etc/group; use a number or add the group to the image"
                    ))
                })?;
            (gid, vec![gid])
        }
        None => {
            let mut groups = vec![primary];
            if let Some(name) = name {
                for (_, gid, members) in group_entries(group) {
                    if members.contains(&name) && !groups.contains(&gid) {
                        groups.push(gid);
                    }
                }
            }
            (primary, groups)
        }
    };
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}

/// Become `spec` for good: supplementary groups, then gid, then uid (the order that still has
/// the privilege each step needs), and HOME.
pub fn become_user(spec: &str) -> Result<Identity, UserError> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let id = resolve(spec, &read("/etc/passwd"), &read("/etc/group"))?;
    let fail = |what: &str, e: nix::Error| {
        UserError(format!(
            "--user {spec}: {what} failed: {e}; shim must start as root to change user"
        ))
    };
    let groups: Vec<Gid> = id.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    setgroups(&groups).map_err(|e| fail("setgroups", e))?;
    setgid(Gid::from_raw(id.gid)).map_err(|e| fail("setgid", e))?;
    setuid(Uid::from_raw(id.uid)).map_err(|e| fail("setuid", e))?;
    std::env::set_var("HOME", &id.home);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        broken line\n";
    const GROUP: &str =
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nvideo:x:44:app,other\naudio:x:29:other\n";

    fn id(spec: &str) -> Result<Identity, UserError> {
        resolve(spec, PASSWD, GROUP)
    }

    #[test]
    fn by_name_takes_primary_and_member_groups_and_home() {
        assert_eq!(
            id("app").unwrap(),
            Identity {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 44],
                home: "/home/app".into()
            }
        );
        assert_eq!(id("nobody").unwrap().groups, vec![65534]);
    }

    #[test]
    fn numbers_need_no_entry() {
        assert_eq!(
            id("65534:65534").unwrap(),
            Identity {
                uid: 65534,
                gid: 65534,
                groups: vec![65534],
                home: "/nonexistent".into()
            }
        );
        assert_eq!(
            id("4242").unwrap(),
            Identity {
                uid: 4242,
                gid: 0,
                groups: vec![0],
                home: "/".into()
            }
        );
        assert_eq!(id("4242:4343").unwrap().groups, vec![4343]);
    }

    #[test]
    fn an_explicit_group_replaces_the_memberships() {
        let i = id("app:audio").unwrap();
        assert_eq!((i.uid, i.gid, i.groups), (1000, 29, vec![29]));
    }

    #[test]
    fn unknown_names_are_errors_that_say_what_to_do() {
        let UserError(e) = id("ghost").unwrap_err();
        assert!(e.contains("ghost") && e.contains("/etc/passwd"), "{e}");
        let UserError(e) = id("app:ghosts").unwrap_err();
        assert!(e.contains("ghosts") && e.contains("/etc/group"), "{e}");
        assert!(id("").is_err() && id("app:").is_err());
    }
}
