//! `--user`: the app runs with the uid, gid, supplementary groups and HOME asked for, read from
//! /etc/passwd and /etc/group directly (I7). The tests bind-mount their own passwd and group
//! files over /etc in a private mount namespace of the test thread.

mod common;

use common::{fixtures, Mounts, TempDir};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
    app:x:1000:1000:App:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nvideo:x:44:app\naudio:x:29:\n";
const RESOLV: &str = fixtures::EMBEDDED_THEN_V6;

/// A private mount namespace whose /etc/passwd and /etc/group are ours, and a resolv.conf that
/// only root may write. Drop the mounts before the directory: keep the tuple's order.
fn private_etc() -> (TempDir, Mounts, PathBuf) {
    private_etc_with(PASSWD.as_bytes(), GROUP.as_bytes())
}

fn private_etc_with(passwd: &[u8], group: &[u8]) -> (TempDir, Mounts, PathBuf) {
    let dir = TempDir::new();
    let mut mounts = Mounts::private();
    for (name, content) in [("passwd", passwd), ("group", group)] {
        let file = dir.file(name, content);
        mounts.bind(&file, &Path::new("/etc").join(name));
    }
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    (dir, mounts, resolv)
}

/// uid, gid, groups and HOME as the app sees them.
fn run_as(resolv: &Path, user: &str) -> std::process::Output {
    let mut cmd = common::shim_command();
    cmd.arg("--resolv-conf")
        .arg(resolv)
        .args(["--user", user, "--"]);
    cmd.args(["/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G) $HOME"]);
    cmd.env("HOME", "/root");
    common::output(&mut cmd)
}

#[test]
fn the_app_runs_as_the_user_asked_for_after_the_fix() {
    if !common::require_root() {
        return;
    }
    let (_dir, _mounts, resolv) = private_etc();
    let cases = [
        ("nobody", "65534 65534 65534 /nonexistent"),
        ("65534:65534", "65534 65534 65534 /nonexistent"),
        ("app", "1000 1000 1000 44 /home/app"),
        ("app:audio", "1000 29 29 /home/app"),
        ("1000:44", "1000 44 44 /home/app"),
        ("4242", "4242 0 0 /"),
    ];
    for (user, expected) in cases {
        fs::write(&resolv, RESOLV).unwrap();
        let out = run_as(&resolv, user);
        assert!(out.status.success(), "{user}: {}", common::stderr(&out));
        assert_eq!(common::stdout(&out).trim(), expected, "--user {user}");
        // The fix ran as root, before the drop: a file only root may write was fixed.
        assert_eq!(
            fs::read_to_string(&resolv).unwrap(),
            "nameserver 2001:db8::53\n"
        );
    }
}

#[test]
fn an_unknown_user_stops_before_the_app() {
    if !common::require_root() {
        return;
    }
    let (_dir, _mounts, resolv) = private_etc();
    for user in ["ghost", "app:ghosts"] {
        let out = run_as(&resolv, user);
        assert_eq!(out.status.code(), Some(1), "--user {user}");
        assert_eq!(common::stdout(&out), "", "the app must not start");
        let err = common::stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(user.rsplit(':').next().unwrap()), "{err}");
    }
}

/// `run_as` with a deadline: shim still running after `limit` is killed and fails the test.
fn run_as_within(resolv: &Path, user: &str, limit: Duration) -> Output {
    let mut cmd = common::shim_command();
    cmd.arg("--resolv-conf")
        .arg(resolv)
        .args(["--user", user, "--", "true"]);
    common::output_within(&mut cmd, limit)
}

#[test]
fn a_malformed_user_is_a_usage_error_before_anything_is_written() {
    // No root needed: the spec is refused while the command line is read.
    let dir = TempDir::new();
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    let cases = [
        "",
        ":",
        "app:",
        ":audio",
        "a:b:c",
        "app:audio:",
        "99999999999",
    ];
    for user in cases {
        let out = run_as(&resolv, user);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--user '{user}': {err}");
        assert_eq!(
            common::stdout(&out),
            "",
            "--user '{user}': the app must not start"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--user"), "{err}");
        assert_eq!(
            fs::read(&resolv).unwrap(),
            RESOLV.as_bytes(),
            "--user '{user}'"
        );
    }
    let mut cmd = common::shim_command();
    cmd.arg("--resolv-conf")
        .arg(&resolv)
        .args(["--", "echo", "ran"]);
    cmd.env("SHIM_USER", ":");
    let out = common::output(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("SHIM_USER"));
    assert_eq!(fs::read(&resolv).unwrap(), RESOLV.as_bytes());
}

#[test]
fn an_unknown_user_stops_before_anything_is_written() {
    if !common::require_root() {
        return;
    }
    let (_dir, _mounts, resolv) = private_etc();
    for user in ["ghost", "app:ghosts"] {
        let out = run_as(&resolv, user);
        assert_eq!(out.status.code(), Some(1), "--user {user}");
        assert_eq!(
            fs::read(&resolv).unwrap(),
            RESOLV.as_bytes(),
            "--user {user}"
        );
    }
}

/// `José`, `café`, a home with such a byte: Latin-1, as old images have them.
const PASSWD_LATIN1: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
    app:x:1000:1000:Jos\xe9:/home/app:/bin/sh\n\
    jose:x:1001:1001::/home/jos\xe9:/bin/sh\n";
const GROUP_LATIN1: &[u8] = b"root:x:0:\ncaf\xe9:x:50:app\napp:x:1000:\nvideo:x:44:app\n";

#[test]
fn passwd_and_group_are_read_as_bytes() {
    if !common::require_root() {
        return;
    }
    let (_dir, _mounts, resolv) = private_etc_with(PASSWD_LATIN1, GROUP_LATIN1);
    // `id -G` lists the groups as the kernel keeps them: sorted.
    for (user, expected) in [
        ("app", &b"1000 1000 1000 44 50 /home/app"[..]),
        ("1000", b"1000 1000 1000 44 50 /home/app"),
        ("jose", b"1001 1001 1001 /home/jos\xe9"),
    ] {
        fs::write(&resolv, RESOLV).unwrap();
        let out = run_as(&resolv, user);
        assert!(out.status.success(), "{user}: {}", common::stderr(&out));
        assert_eq!(out.stdout.trim_ascii(), expected, "--user {user}");
    }
}

#[test]
fn a_numeric_user_or_group_is_an_id_not_a_name() {
    if !common::require_root() {
        return;
    }
    // A user named "1000" (uid 2000) and a group named "44" (gid 45) come first: they are not
    // the ids 1000 and 44.
    let passwd = format!("1000:x:2000:2000::/home/named:/bin/sh\n{PASSWD}");
    let group = format!("44:x:45:app\n{GROUP}");
    let (_dir, _mounts, resolv) = private_etc_with(passwd.as_bytes(), group.as_bytes());
    for (user, expected) in [
        ("1000", "1000 1000 1000 44 45 /home/app"),
        ("1000:44", "1000 44 44 /home/app"),
        ("2000", "2000 2000 2000 /home/named"),
    ] {
        let out = run_as(&resolv, user);
        assert!(out.status.success(), "{user}: {}", common::stderr(&out));
        assert_eq!(common::stdout(&out).trim(), expected, "--user {user}");
    }
}

#[test]
fn a_fifo_in_place_of_passwd_or_group_stops_at_once() {
    if !common::require_root() {
        return;
    }
    for name in ["passwd", "group"] {
        let (dir, mut mounts, resolv) = private_etc();
        let fifo = dir.path("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        mounts.bind(&fifo, &Path::new("/etc").join(name));
        for user in ["app", "1000"] {
            // A hang fails the test, naming the command.
            let out = run_as_within(&resolv, user, Duration::from_secs(5));
            let err = common::stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(1),
                "/etc/{name}, --user {user}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(&format!("/etc/{name}")), "{err}");
            assert_eq!(fs::read(&resolv).unwrap(), RESOLV.as_bytes());
        }
        drop(mounts);
    }
}

#[test]
fn a_missing_group_or_passwd_file() {
    if !common::require_root() {
        return;
    }
    // An /etc of our own: with passwd and no group, then with neither.
    let dir = TempDir::new();
    let etc = dir.path("etc");
    fs::create_dir(&etc).unwrap();
    fs::write(etc.join("passwd"), PASSWD).unwrap();
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    let mut mounts = Mounts::private();
    mounts.bind(&etc, Path::new("/etc"));
    for (user, expected) in [("app", "1000 1000 1000 /home/app"), ("4242", "4242 0 0 /")] {
        let out = run_as(&resolv, user);
        assert!(out.status.success(), "{user}: {}", common::stderr(&out));
        assert_eq!(common::stdout(&out).trim(), expected, "--user {user}");
    }
    fs::remove_file(etc.join("passwd")).unwrap();
    let out = run_as(&resolv, "4242");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "4242 0 0 /");
    let out = run_as(&resolv, "app");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("/etc/passwd"),
        "{}",
        common::stderr(&out)
    );
    drop(mounts);
}
