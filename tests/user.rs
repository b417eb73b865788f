//! `--user`: the app runs with the uid, gid, supplementary groups and HOME asked for, read from
//! /etc/passwd and /etc/group directly (I7). The tests bind-mount their own passwd and group
//! files over /etc in a private mount namespace of the test thread.

mod common;

use common::{Mounts, TempDir};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
    app:x:1000:1000:App:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nvideo:x:44:app\naudio:x:29:\n";
const RESOLV: &str = "nameserver 127.0.0.11\nnameserver 2001:db8::53\n";

/// A private mount namespace whose /etc/passwd and /etc/group are ours, and a resolv.conf that
/// only root may write. Drop the mounts before the directory: keep the tuple's order.
fn private_etc(test: &str) -> (TempDir, Mounts, PathBuf) {
    let dir = TempDir::new(test);
    let mut mounts = Mounts::private();
    for (name, content) in [("passwd", PASSWD), ("group", GROUP)] {
        let file = dir.file(name, content.as_bytes());
        mounts.bind(&file, &Path::new("/etc").join(name));
    }
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    (dir, mounts, resolv)
}

/// uid, gid, groups and HOME as the app sees them.
fn run_as(resolv: &Path, user: &str) -> std::process::Output {
    let mut cmd = Command::new(common::shim());
    cmd.arg("--resolv-conf")
        .arg(resolv)
        .args(["--user", user, "--"]);
    cmd.args(["/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G) $HOME"]);
    cmd.env("HOME", "/root");
    common::output(&mut cmd)
}

#[test]
fn the_app_runs_as_the_user_asked_for_after_the_fix() {
    if !common::require_root("the_app_runs_as_the_user_asked_for_after_the_fix") {
        return;
    }
    let (_dir, _mounts, resolv) = private_etc("ids");
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
    if !common::require_root("an_unknown_user_stops_before_the_app") {
        return;
    }
    let (_dir, _mounts, resolv) = private_etc("unknown");
    for user in ["ghost", "app:ghosts"] {
        let out = run_as(&resolv, user);
        assert_eq!(out.status.code(), Some(1), "--user {user}");
        assert_eq!(common::stdout(&out), "", "the app must not start");
        let err = common::stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(user.rsplit(':').next().unwrap()), "{err}");
    }
}
