//! The command line a user expects from a Unix tool: combined short flags, `--flag=value`,
//! `-h`/`-V`, one rule for empty SHIM_* variables, short error lines, and paths as bytes.
//! Each test runs the built binary against a resolv.conf of its own.

mod common;

use common::{fixtures, Mounts, TempDir};

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

const RESOLV: &str = fixtures::EMBEDDED_THEN_V6;
const FIXED: &str = fixtures::V6_ONLY;

/// shim with the given arguments and SHIM_* variables (none of the caller's) and the app
/// `sh -c 'echo ran'`, so that stdout says whether the app started.
fn shim(args: &[&OsStr], env: &[(&str, &OsStr)]) -> Output {
    let mut cmd = common::shim_command();
    cmd.args(args).envs(env.iter().copied());
    common::output(&mut cmd)
}

fn os(args: &[&'static str]) -> Vec<&'static OsStr> {
    args.iter().map(|&a| OsStr::new(a)).collect()
}

const APP: [&str; 4] = ["--", "sh", "-c", "echo ran"];

fn with_app(mut args: Vec<&OsStr>) -> Vec<&OsStr> {
    args.extend(APP.iter().map(OsStr::new));
    args
}

#[test]
fn unix_conventions_are_accepted() {
    let dir = TempDir::new();
    let resolv = dir.path("resolv.conf");
    let eq = format!("--resolv-conf={}", resolv.display());
    let cases: &[(&[&str], &str)] = &[
        (&["-vv"], FIXED),
        (&["-v", "-v"], FIXED),
        (&["-gv"], FIXED),
        (&["-qg", "--strict"], FIXED),
        (&["--embedded=keep"], RESOLV),
        (&["--embedded", "keep"], RESOLV),
        (&["--pgroup", "--verbose", "--quiet"], FIXED),
    ];
    for (flags, expected) in cases {
        fs::write(&resolv, RESOLV).unwrap();
        let mut args = vec![OsStr::new(&eq)];
        args.extend(flags.iter().map(OsStr::new));
        let out = shim(&with_app(args), &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            common::stderr(&out)
        );
        assert_eq!(common::stdout(&out), "ran\n", "{flags:?}");
        assert_eq!(fs::read_to_string(&resolv).unwrap(), *expected, "{flags:?}");
    }
    // -vv is debug: the line about a file with 127.0.0.11 kept is a debug line.
    fs::write(&resolv, RESOLV).unwrap();
    let args = vec![
        OsStr::new(&eq),
        OsStr::new("--embedded=keep"),
        OsStr::new("-vv"),
    ];
    let out = shim(&with_app(args), &[]);
    assert!(
        common::stderr(&out).contains("kept"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn h_and_capital_v_print_help_and_version() {
    for flag in ["-h", "--help"] {
        let out = shim(&os(&[flag]), &[]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(common::stdout(&out).contains("--resolv-conf"), "{flag}");
        assert_eq!(common::stderr(&out), "", "{flag}");
    }
    for flag in ["-V", "--version"] {
        let out = shim(&os(&[flag]), &[]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(common::stdout(&out), common::version_line(), "{flag}");
    }
}

#[test]
fn help_names_every_variable_and_the_apps_status_as_any_status() {
    let out = shim(&os(&["--help"]), &[]);
    let help = common::stdout(&out);
    for var in [
        "SHIM_RESOLV_CONF",
        "SHIM_EMBEDDED",
        "SHIM_PROBE",
        "SHIM_PROBE_TIMEOUT_MS",
        "SHIM_STRICT",
        "SHIM_PGROUP",
        "SHIM_USER",
        "SHIM_SUPERVISE",
        "SHIM_GRACE_MS",
        "SHIM_LOG",
        "-vv",
        "-h, --help",
        "-V, --version",
    ] {
        assert!(help.contains(var), "--help lacks {var}:\n{help}");
    }
    let status = help
        .lines()
        .find(|l| l.contains("the app's own status"))
        .unwrap_or_else(|| panic!("no line for the app's status:\n{help}"));
    assert!(
        !status.trim_start().starts_with('0'),
        "the app's status is any status, not 0: {status}"
    );
}

#[test]
fn an_empty_variable_is_unset() {
    let dir = TempDir::new();
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    let empty = OsStr::new("");
    let env: Vec<(&str, &OsStr)> = [
        "SHIM_EMBEDDED",
        "SHIM_PROBE",
        "SHIM_PROBE_TIMEOUT_MS",
        "SHIM_STRICT",
        "SHIM_PGROUP",
        "SHIM_USER",
        "SHIM_SUPERVISE",
        "SHIM_GRACE_MS",
        "SHIM_LOG",
    ]
    .into_iter()
    .map(|var| (var, empty))
    .collect();
    let out = shim(
        &with_app(vec![OsStr::new("--resolv-conf"), resolv.as_os_str()]),
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out), "ran\n");
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        FIXED,
        "the default is drop"
    );
}

#[test]
fn an_empty_shim_resolv_conf_is_unset_too() {
    if !common::require_root() {
        return;
    }
    let etc = Path::new("/etc/resolv.conf");
    if !common::require(etc.is_file(), "/etc/resolv.conf to mount over") {
        return;
    }
    // The default file is ours: a file bind-mounted over /etc/resolv.conf in a private mount
    // namespace, so the machine's own is never touched.
    let dir = TempDir::new();
    let mut mounts = Mounts::private();
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    mounts.bind(&resolv, etc);
    let out = shim(&os(&APP), &[("SHIM_RESOLV_CONF", OsStr::new(""))]);
    drop(mounts);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        FIXED,
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn an_empty_flag_value_is_a_usage_error_and_nothing_is_written() {
    let dir = TempDir::new();
    let resolv = dir.file("resolv.conf", RESOLV.as_bytes());
    for flag in [
        "--embedded",
        "--probe",
        "--probe-timeout",
        "--user",
        "--grace",
        "--name",
    ] {
        for form in [
            vec![flag.to_owned(), String::new()],
            vec![format!("{flag}=")],
        ] {
            let mut args = vec![OsStr::new("--resolv-conf"), resolv.as_os_str()];
            args.extend(form.iter().map(OsStr::new));
            let out = shim(&with_app(args), &[]);
            usage_error(&out, flag, &form);
            assert_eq!(fs::read_to_string(&resolv).unwrap(), RESOLV, "{form:?}");
        }
    }
    // An empty --resolv-conf would otherwise open "": the app would start with nothing fixed.
    for form in [vec!["--resolv-conf", ""], vec!["--resolv-conf="]] {
        let out = shim(&with_app(os(&form)), &[]);
        usage_error(&out, "--resolv-conf", &form);
    }
}

fn usage_error<T: std::fmt::Debug>(out: &Output, culprit: &str, args: &T) {
    let err = common::stderr(out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(common::stdout(out), "", "{args:?}: the app must not start");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.starts_with("shim: ") && err.contains(culprit),
        "{args:?}: {err}"
    );
}

#[test]
fn a_long_value_is_shortened_in_the_error_line() {
    let huge = "x".repeat(100 * 1024);
    let bogus = format!("--{huge}");
    // One argument may be at most 128 KiB (MAX_ARG_STRLEN).
    let part = &huge[..40 * 1024];
    let user = format!("{part}:{part}:{part}");
    let flags: [(&str, &str); 4] = [
        ("--embedded", &huge),
        ("--grace", &huge),
        ("--probe-timeout", &huge),
        ("--user", &user),
    ];
    for (flag, value) in flags {
        let out = shim(&with_app(vec![OsStr::new(flag), OsStr::new(value)]), &[]);
        short_usage_error(&out, flag);
    }
    let out = shim(&with_app(vec![OsStr::new(&bogus)]), &[]);
    short_usage_error(&out, "--xxxx");
    let out = shim(
        &with_app(vec![OsStr::new(&format!("--strict={huge}"))]),
        &[],
    );
    short_usage_error(&out, "--strict");
    for var in ["SHIM_EMBEDDED", "SHIM_GRACE_MS", "SHIM_STRICT", "SHIM_LOG"] {
        let out = shim(&os(&APP), &[(var, OsStr::new(&huge))]);
        short_usage_error(&out, var);
    }
}

fn short_usage_error(out: &Output, culprit: &str) {
    let err = common::stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{culprit}: {}",
        &err[..err.len().min(300)]
    );
    assert!(
        err.len() < 300,
        "{culprit}: a {} byte error line",
        err.len()
    );
    assert_eq!(err.lines().count(), 1, "{culprit}: {err}");
    assert!(err.contains(culprit) && err.contains("..."), "{err}");
}

#[test]
fn a_non_utf8_resolv_conf_path_is_the_file_fixed() {
    let dir = TempDir::new();
    // "resolv\xff.conf": a lossy conversion would make it "resolv\u{fffd}.conf", another file.
    let name = OsStr::from_bytes(b"resolv\xff.conf");
    let resolv: PathBuf = dir.0.join(name);
    fs::write(&resolv, RESOLV).unwrap();
    let out = shim(
        &with_app(vec![OsStr::new("--resolv-conf"), resolv.as_os_str()]),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        FIXED,
        "{}",
        common::stderr(&out)
    );

    fs::write(&resolv, RESOLV).unwrap();
    let out = shim(&os(&APP), &[("SHIM_RESOLV_CONF", resolv.as_os_str())]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        FIXED,
        "{}",
        common::stderr(&out)
    );
    assert_eq!(
        fs::read_dir(&dir.0).unwrap().count(),
        1,
        "no other file was made"
    );
}
