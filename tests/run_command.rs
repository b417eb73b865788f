//! Running the app after the fix: exit codes for a missing or non-executable command, and
//! usage errors.

mod common;

use common::TempDir;

fn shim(args: &[&str]) -> std::process::Output {
    let mut cmd = common::shim_command();
    cmd.args(["--resolv-conf", "/nonexistent/resolv.conf", "-q"])
        .args(args);
    common::output(&mut cmd)
}

#[test]
fn the_app_gets_its_arguments_and_its_exit_status_is_shims() {
    let out = shim(&[
        "--",
        "/bin/sh",
        "-c",
        "echo \"$0 $1\"; exit 42",
        "zero",
        "one",
    ]);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(common::stdout(&out), "zero one\n");
}

#[test]
fn a_missing_command_exits_127() {
    let out = shim(&["--", "/no/such/app"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(common::stderr(&out).contains("/no/such/app"));
    let out = shim(&["--", "no-such-app-on-path"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn a_command_that_is_not_executable_exits_126() {
    let dir = TempDir::new();
    let file = dir.file("noexec", b"#!/bin/sh\necho ran\n");
    let out = shim(&["--", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("cannot execute"));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [
        &["--bogus", "--", "true"][..],
        &[],
        &["--embedded", "sometimes", "--", "true"],
    ] {
        let out = shim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = common::stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("shim: "), "{err}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let out = shim(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(common::stdout(&out).contains("--resolv-conf"));
    let out = shim(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(common::stdout(&out), common::version_line());
}
