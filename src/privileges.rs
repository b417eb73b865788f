//! `--user USER[:GROUP]`: drop to another user after the fix (I7).
//!
//! Three steps, each as early as it can be: the spec is checked while the command line is read
//! (`UserSpec::parse`, a usage error), the identity is looked up before resolv.conf is touched
//! (`resolve_user`, so an unknown name stops shim with nothing written), and the switch itself
//! comes last, after the fix and the probe, which need root (`become_user`).
//!
//! A static binary has no NSS, so names come from /etc/passwd and /etc/group, read directly and
//! as bytes, as gosu and runc read them: a Latin-1 GECOS field in an old image is one byte that is
//! not UTF-8, and must not hide the rest of the file. A number is an id, never a name: like runc,
//! a uid with no passwd entry gets gid 0 and HOME=/.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};

use crate::cli::shown;
use crate::regular_file;

/// One side of `USER[:GROUP]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// All digits: the id itself, looked up only for what goes with it (gid, HOME, groups).
    Number(u32),
    Name(Vec<u8>),
}

/// `--user` as given: checked, not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: Id,
    pub group: Option<Id>,
}

impl UserSpec {
    /// Pure. On error, what is wrong with the spec, for the usage line.
    pub fn parse(spec: &[u8]) -> Result<UserSpec, &'static str> {
        let (user, group) = match spec.iter().position(|&b| b == b':') {
            None => (spec, None),
            Some(colon) => (&spec[..colon], Some(&spec[colon + 1..])),
        };
        if group.is_some_and(|g| g.contains(&b':')) {
            return Err("more than one ':'");
        }
        Ok(UserSpec {
            user: id(user, "the user is empty")?,
            group: group.map(|g| id(g, "the group is empty")).transpose()?,
        })
    }
}

fn id(part: &[u8], empty: &'static str) -> Result<Id, &'static str> {
    if part.is_empty() {
        return Err(empty);
    }
    if !part.iter().all(u8::is_ascii_digit) {
        return Ok(Id::Name(part.to_vec()));
    }
    // 4294967295 is (uid_t)-1, which setuid and setgid refuse: "no change".
    number(part)
        .filter(|&n| n != u32::MAX)
        .map(Id::Number)
        .ok_or("an id is a number from 0 to 4294967294")
}

/// A decimal field of /etc/passwd or /etc/group, or of the spec.
fn number(field: &[u8]) -> Option<u32> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Who the app runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
    pub home: OsString,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct PasswdEntry<'a> {
    name: &'a [u8],
    uid: u32,
    gid: u32,
    home: &'a [u8],
}

struct GroupEntry<'a> {
    name: &'a [u8],
    gid: u32,
    members: &'a [u8],
}

fn fields(file: &[u8], count: usize) -> impl Iterator<Item = Vec<&[u8]>> {
    file.split(|&b| b == b'\n')
        .map(|line| line.split(|&b| b == b':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= count)
}

fn passwd_entries(passwd: &[u8]) -> impl Iterator<Item = PasswdEntry<'_>> {
    fields(passwd, 7).filter_map(|f| {
        Some(PasswdEntry {
            name: f[0],
            uid: number(f[2])?,
            gid: number(f[3])?,
            home: f[5],
        })
    })
}

fn group_entries(group: &[u8]) -> impl Iterator<Item = GroupEntry<'_>> {
    fields(group, 4).filter_map(|f| {
        Some(GroupEntry {
            name: f[0],
            gid: number(f[2])?,
            members: f[3],
        })
    })
}

fn unknown(what: &str, name: &[u8], file: &str) -> UserError {
    UserError(format!(
        "--user: no {what} '{}' in {file}; use a number or add the {what} to the image",
        shown(OsStr::from_bytes(name))
    ))
}

/// Resolve `spec` against the contents of /etc/passwd and /etc/group. Pure.
pub fn resolve(spec: &UserSpec, passwd: &[u8], group: &[u8]) -> Result<Identity, UserError> {
    let (uid, primary, home, name) = match &spec.user {
        Id::Number(uid) => match passwd_entries(passwd).find(|e| e.uid == *uid) {
            Some(e) => (e.uid, e.gid, e.home, Some(e.name)),
            // A uid the image does not list: runc's defaults.
            None => (*uid, 0, &b"/"[..], None),
        },
        Id::Name(name) => match passwd_entries(passwd).find(|e| e.name == &name[..]) {
            Some(e) => (e.uid, e.gid, e.home, Some(e.name)),
            None => return Err(unknown("user", name, "/etc/passwd")),
        },
    };
    let (gid, groups) = match &spec.group {
        Some(Id::Number(gid)) => (*gid, vec![*gid]),
        Some(Id::Name(name)) => {
            let gid = group_entries(group)
                .find(|g| g.name == &name[..])
                .map(|g| g.gid)
                .ok_or_else(|| unknown("group", name, "/etc/group"))?;
            (gid, vec![gid])
        }
        None => {
            let mut groups = vec![primary];
            if let Some(name) = name {
                for g in group_entries(group) {
                    let member = g.members.split(|&b| b == b',').any(|m| m == name);
                    if member && !groups.contains(&g.gid) {
                        groups.push(g.gid);
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
        home: OsString::from_vec(home.to_vec()),
    })
}

/// /etc/passwd and /etc/group are small; one past this is a mistake to name, not to load.
const LIMIT: u64 = 4 << 20;

/// A missing file has no entries (runc does the same): a number still works, a name is unknown.
/// Anything else that is not a readable regular file is an error, never a wait: a FIFO there
/// would block a plain open forever.
fn read(path: &str) -> Result<Vec<u8>, UserError> {
    match regular_file::read(Path::new(path), LIMIT) {
        Ok(content) => Ok(content),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(UserError(format!(
            "--user: cannot read {path}: {e}; it must be a regular file that root can read"
        ))),
    }
}

/// Look `spec` up in the image's /etc/passwd and /etc/group.
pub fn resolve_user(spec: &UserSpec) -> Result<Identity, UserError> {
    resolve(spec, &read("/etc/passwd")?, &read("/etc/group")?)
}

/// Become `id` for good: supplementary groups, then gid, then uid (the order that still has the
/// privilege each step needs), and HOME.
pub fn become_user(id: &Identity) -> Result<(), UserError> {
    let fail = |what: &str, e: nix::Error| {
        UserError(format!(
            "--user: {what} failed: {e}; shim must start as root to change user"
        ))
    };
    let groups: Vec<Gid> = id.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    setgroups(&groups).map_err(|e| fail("setgroups", e))?;
    setgid(Gid::from_raw(id.gid)).map_err(|e| fail("setgid", e))?;
    setuid(Uid::from_raw(id.uid)).map_err(|e| fail("setuid", e))?;
    std::env::set_var("HOME", &id.home);
    Ok(())
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

    fn spec(spec: &str) -> UserSpec {
        UserSpec::parse(spec.as_bytes()).unwrap()
    }

    fn id(s: &str) -> Result<Identity, UserError> {
        resolve(&spec(s), PASSWD.as_bytes(), GROUP.as_bytes())
    }

    fn name(n: &str) -> Id {
        Id::Name(n.as_bytes().to_vec())
    }

    #[test]
    fn a_spec_is_a_user_and_maybe_a_group_each_a_name_or_a_number() {
        let cases = [
            ("app", name("app"), None),
            ("1000", Id::Number(1000), None),
            ("app:44", name("app"), Some(Id::Number(44))),
            ("0:video", Id::Number(0), Some(name("video"))),
            ("4294967294", Id::Number(4294967294), None),
            ("1e3", name("1e3"), None),
        ];
        for (s, user, group) in cases {
            assert_eq!(spec(s), UserSpec { user, group }, "{s}");
        }
        let latin1 = UserSpec::parse(b"jos\xe9").unwrap();
        assert_eq!(latin1.user, Id::Name(b"jos\xe9".to_vec()));
    }

    #[test]
    fn a_malformed_spec_is_refused() {
        for bad in [
            "",
            ":",
            "app:",
            ":audio",
            "a:b:c",
            "app:audio:",
            "4294967295",
            "99999999999",
            "0:4294967295",
        ] {
            assert!(UserSpec::parse(bad.as_bytes()).is_err(), "'{bad}'");
        }
        assert_eq!(UserSpec::parse(b"a:b:c"), Err("more than one ':'"));
        assert_eq!(UserSpec::parse(b""), Err("the user is empty"));
        assert_eq!(UserSpec::parse(b"a:"), Err("the group is empty"));
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
        for (spec, (uid, gid, groups, home)) in [
            ("65534:65534", (65534, 65534, vec![65534], "/nonexistent")),
            ("4242", (4242, 0, vec![0], "/")),
        ] {
            let home = home.into();
            assert_eq!(
                id(spec).unwrap(),
                Identity {
                    uid,
                    gid,
                    groups,
                    home
                },
                "{spec}"
            );
        }
        assert_eq!(id("4242:4343").unwrap().groups, vec![4343]);
    }

    #[test]
    fn a_number_is_an_id_even_when_a_name_is_that_number() {
        let passwd = format!("1000:x:2000:2000::/home/named:/bin/sh\n{PASSWD}");
        let group = format!("44:x:45:app\n{GROUP}");
        let i = resolve(&spec("1000"), passwd.as_bytes(), group.as_bytes()).unwrap();
        // The entry with uid 1000 gives its gid, home and name (for its memberships).
        assert_eq!((i.uid, i.gid), (1000, 1000));
        assert_eq!(i.groups, vec![1000, 45, 44]);
        assert_eq!(i.home, "/home/app");
        let i = resolve(&spec("app:44"), passwd.as_bytes(), group.as_bytes()).unwrap();
        assert_eq!((i.gid, i.groups), (44, vec![44]));
    }

    #[test]
    fn bytes_that_are_not_utf8_hide_nothing() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\n\
            app:x:1000:1000:Jos\xe9:/home/app:/bin/sh\n\
            jos\xe9:x:1001:1001::/home/jos\xe9:/bin/sh\n";
        let group = b"caf\xe9:x:50:app,jos\xe9\napp:x:1000:\n";
        let i = resolve(&spec("app"), passwd, group).unwrap();
        assert_eq!((i.uid, i.gid, i.groups), (1000, 1000, vec![1000, 50]));
        let jose = UserSpec::parse(b"jos\xe9:caf\xe9").unwrap();
        let i = resolve(&jose, passwd, group).unwrap();
        assert_eq!((i.uid, i.gid), (1001, 50));
        assert_eq!(i.home, OsString::from_vec(b"/home/jos\xe9".to_vec()));
        let i = resolve(&UserSpec::parse(b"jos\xe9").unwrap(), passwd, group).unwrap();
        assert_eq!(i.groups, vec![1001, 50]);
    }

    #[test]
    fn an_explicit_group_replaces_the_memberships() {
        let i = id("app:audio").unwrap();
        assert_eq!((i.uid, i.gid, i.groups), (1000, 29, vec![29]));
    }

    #[test]
    fn without_files_a_number_still_works_and_a_name_does_not() {
        let i = resolve(&spec("1000"), b"", b"").unwrap();
        assert_eq!(
            (i.uid, i.gid, i.groups, i.home),
            (1000, 0, vec![0], "/".into())
        );
        let i = resolve(&spec("app"), PASSWD.as_bytes(), b"").unwrap();
        assert_eq!(i.groups, vec![1000]);
        assert!(resolve(&spec("app"), b"", b"").is_err());
    }

    #[test]
    fn unknown_names_are_errors_that_say_what_to_do() {
        let UserError(e) = id("ghost").unwrap_err();
        assert!(e.contains("ghost") && e.contains("/etc/passwd"), "{e}");
        let UserError(e) = id("app:ghosts").unwrap_err();
        assert!(e.contains("ghosts") && e.contains("/etc/group"), "{e}");
        assert!(UserSpec::parse(b"").is_err() && UserSpec::parse(b"app:").is_err());
        let long = "g".repeat(100_000);
        let UserError(e) = id(&long).unwrap_err();
        assert!(e.len() < 200, "a {} byte line", e.len());
    }
}
