//! Unit tests of the command line: `parse` on arguments and environments.

use super::*;
use nix::libc;
use std::collections::HashMap;
use std::os::unix::ffi::OsStringExt;

fn run<'a>(args: &[&'a str], env: &[(&str, &str)]) -> Result<Invocation<'a>, Usage> {
    let env: HashMap<String, OsString> = env
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    let args: Vec<&OsStr> = args.iter().map(|&a| OsStr::new(a)).collect();
    parse(&args, |k| env.get(k).cloned())
}

fn command<'a>(inv: &Invocation<'a>) -> Vec<&'a str> {
    match &inv.mode {
        Mode::Run(c) => c.iter().map(|&a| a.to_str().unwrap()).collect(),
        other => panic!("not a run: {other:?}"),
    }
}

#[test]
fn defaults() {
    let inv = run(&["--", "app"], &[]).unwrap();
    let o = inv.options;
    assert_eq!(o.resolv_conf, PathBuf::from("/etc/resolv.conf"));
    assert_eq!(o.embedded, Embedded::Drop);
    assert_eq!(o.probe, None);
    assert_eq!(o.probe_timeout, Duration::from_millis(1000));
    assert!(!o.probe_timeout_given);
    assert!(!o.strict && !o.pgroup && !o.supervise);
    assert_eq!(o.grace, Duration::ZERO);
    assert_eq!(o.log_level, Level::Warn);
}

#[test]
fn the_command_keeps_its_own_flags() {
    let inv = run(&["--strict", "--", "ls", "-la", "--", "x"], &[]).unwrap();
    assert_eq!(command(&inv), ["ls", "-la", "--", "x"]);
    let inv = run(&["-g", "sh", "-c", "echo --strict"], &[]).unwrap();
    assert_eq!(command(&inv), ["sh", "-c", "echo --strict"]);
    assert!(inv.options.pgroup && !inv.options.strict);
}

#[test]
fn a_non_utf8_argument_reaches_the_app_unchanged() {
    use std::os::unix::ffi::OsStringExt;
    let odd = OsString::from_vec(vec![b'a', 0xff, b'b']);
    let args = [OsStr::new("--"), OsStr::new("echo"), &odd];
    let inv = parse(&args, |_| None).unwrap();
    assert_eq!(inv.mode, Mode::Run(vec![OsStr::new("echo"), &odd]));
}

#[test]
fn flags_win_over_the_environment() {
    let env = [
        ("SHIM_EMBEDDED", "keep"),
        ("SHIM_RESOLV_CONF", "/tmp/r"),
        ("SHIM_STRICT", "1"),
        ("SHIM_PROBE_TIMEOUT_MS", "250"),
        ("SHIM_GRACE_MS", "2000"),
        ("SHIM_USER", "nobody"),
        ("SHIM_PROBE", "example.org"),
        ("SHIM_LOG", "debug"),
        ("SHIM_PGROUP", "1"),
        ("SHIM_SUPERVISE", "1"),
    ];
    let o = run(&["--", "app"], &env).unwrap().options;
    assert_eq!(o.embedded, Embedded::Keep);
    assert_eq!(o.resolv_conf, PathBuf::from("/tmp/r"));
    assert!(o.strict && o.pgroup && o.supervise);
    assert_eq!(o.probe_timeout, Duration::from_millis(250));
    assert!(o.probe_timeout_given);
    assert_eq!(o.grace, Duration::from_millis(2000));
    assert_eq!(o.user, UserSpec::parse(b"nobody").ok());
    assert_eq!(o.probe.as_deref(), Some("example.org"));
    assert_eq!(o.log_level, Level::Debug);
    let o = run(
        &[
            "--embedded",
            "auto",
            "--probe-timeout",
            "5",
            "-q",
            "--",
            "app",
        ],
        &env,
    )
    .unwrap()
    .options;
    assert_eq!(o.embedded, Embedded::Auto);
    assert_eq!(o.probe_timeout, Duration::from_millis(5));
    assert_eq!(o.log_level, Level::Error);
}

#[test]
fn verbosity_counts() {
    assert_eq!(
        run(&["-v", "--", "a"], &[]).unwrap().options.log_level,
        Level::Info
    );
    assert_eq!(
        run(&["-v", "-v", "--", "a"], &[])
            .unwrap()
            .options
            .log_level,
        Level::Debug
    );
}

#[test]
fn check_dns_mode() {
    let inv = run(&["--check-dns", "--json", "--name", "v6.test"], &[]).unwrap();
    assert_eq!(
        inv.mode,
        Mode::CheckDns {
            name: "v6.test".into(),
            json: true
        }
    );
    let inv = run(&["--check-dns"], &[]).unwrap();
    assert_eq!(
        inv.mode,
        Mode::CheckDns {
            name: "example.com".into(),
            json: false
        }
    );
}

#[test]
fn usage_errors_are_one_line_and_name_the_culprit() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--embedded", "maybe", "--", "a"], &[], "--embedded"),
        (&["--", "a"], &[("SHIM_EMBEDDED", "maybe")], "SHIM_EMBEDDED"),
        (&["--grace", "soon", "--", "a"], &[], "--grace"),
        (
            &["--", "a"],
            &[("SHIM_PROBE_TIMEOUT_MS", "x")],
            "SHIM_PROBE_TIMEOUT_MS",
        ),
        (&["--", "a"], &[("SHIM_STRICT", "maybe")], "SHIM_STRICT"),
        (&["--", "a"], &[("SHIM_LOG", "loud")], "SHIM_LOG"),
        (&["--bogus", "--", "a"], &[], "--bogus"),
        (&[], &[], "no command"),
        (&["--check-dns", "--", "a"], &[], "--check-dns"),
        (&["--json", "--", "a"], &[], "--json"),
        (&["--probe-timeout", "0", "--", "a"], &[], "--probe-timeout"),
    ];
    for (args, env, culprit) in cases {
        let Usage(line) = run(args, env).unwrap_err();
        assert!(line.contains(culprit), "{args:?}: {line}");
        assert!(!line.contains('\n'), "{args:?}: {line}");
    }
}

#[test]
fn help_and_version() {
    let Mode::Help(text) = run(&["--help"], &[]).unwrap().mode else {
        panic!()
    };
    for flag in [
        "--resolv-conf",
        "--embedded",
        "--probe-timeout",
        "--grace",
        "--check-dns",
        "SHIM_USER",
        "--rewrite",
        "SHIM_EXIT_ZERO",
        "--pdeathsig",
        "SHIM_TERM_LEFTOVERS",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
    assert_eq!(run(&["--version"], &[]).unwrap().mode, Mode::Version);
}

#[test]
fn unix_conventions() {
    let level = |args: &[&str]| run(args, &[]).unwrap().options.log_level;
    assert_eq!(level(&["-vv", "--", "a"]), Level::Debug);
    assert_eq!(level(&["-vvv", "a"]), Level::Debug);
    assert_eq!(level(&["--verbose", "a"]), Level::Info);
    assert_eq!(level(&["-vq", "a"]), Level::Error);
    let inv = run(&["-gv", "--embedded=keep", "--grace=5", "app", "-x"], &[]).unwrap();
    assert!(inv.options.pgroup);
    assert_eq!(inv.options.log_level, Level::Info);
    assert_eq!(inv.options.embedded, Embedded::Keep);
    assert_eq!(inv.options.grace, Duration::from_millis(5));
    assert_eq!(command(&inv), ["app", "-x"]);
    // `--` may itself be an argument of the app, and so may a lone `-`.
    assert_eq!(command(&run(&["--", "--", "x"], &[]).unwrap()), ["--", "x"]);
    assert_eq!(command(&run(&["-", "-v"], &[]).unwrap()), ["-", "-v"]);
    // Help and version win over everything after them, a bad environment included.
    let bad = [("SHIM_EMBEDDED", "maybe")];
    for help in ["-h", "--help"] {
        assert_eq!(
            run(&["-g", help, "--bogus"], &bad).unwrap().mode,
            Mode::Help(HELP)
        );
    }
    for version in ["-V", "--version"] {
        assert_eq!(run(&[version], &bad).unwrap().mode, Mode::Version);
    }
    // ... but not over the app's own -h.
    assert_eq!(command(&run(&["app", "-h"], &[]).unwrap()), ["app", "-h"]);
}

#[test]
fn an_empty_variable_is_unset() {
    let vars = [
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
        "SHIM_REWRITE",
        "SHIM_EXIT_ZERO",
        "SHIM_PDEATHSIG",
        "SHIM_TERM_LEFTOVERS",
    ];
    let empty: Vec<(&str, &str)> = vars.iter().map(|&v| (v, "")).collect();
    let defaults = run(&["--", "app"], &[]).unwrap();
    assert_eq!(run(&["--", "app"], &empty).unwrap(), defaults);
}

#[test]
fn an_empty_flag_value_is_a_usage_error() {
    for flag in [
        "--resolv-conf",
        "--embedded",
        "--probe",
        "--probe-timeout",
        "--user",
        "--grace",
        "--name",
        "--rewrite",
        "--exit-zero",
        "--pdeathsig",
    ] {
        let eq = format!("{flag}=");
        for args in [&[flag, "", "--", "app"][..], &[&eq, "--", "app"]] {
            let Usage(line) = run(args, &[]).unwrap_err();
            assert!(line.contains(flag) && line.contains("empty"), "{line}");
        }
    }
    let Usage(line) = run(&["--embedded"], &[]).unwrap_err();
    assert!(line.contains("--embedded needs a value"), "{line}");
}

#[test]
fn a_long_value_is_shown_shortened() {
    assert_eq!(shown(OsStr::new("keep")), "keep");
    let sixty = "é".repeat(60);
    assert_eq!(shown(OsStr::new(&sixty)), sixty);
    assert_eq!(
        shown(OsStr::new(&format!("{sixty}x"))),
        format!("{sixty}...")
    );
    let huge = "x".repeat(100_000);
    let odd = OsString::from_vec(vec![0xff; 100_000]);
    assert!(shown(&odd).ends_with("...") && shown(&odd).chars().count() == 63);
    let lines = [
        run(&["--embedded", &huge, "a"], &[]).unwrap_err(),
        run(&["--user", &format!("{huge}:{huge}:"), "a"], &[]).unwrap_err(),
        run(&[&format!("--{huge}"), "a"], &[]).unwrap_err(),
        run(&[&format!("--strict={huge}"), "a"], &[]).unwrap_err(),
        run(&["a"], &[("SHIM_GRACE_MS", &huge)]).unwrap_err(),
        run(&["a"], &[("SHIM_STRICT", &huge)]).unwrap_err(),
        run(&["a"], &[("SHIM_LOG", &huge)]).unwrap_err(),
    ];
    for Usage(line) in lines {
        assert!(
            line.len() < 200 && line.contains("..."),
            "{} bytes",
            line.len()
        );
    }
}

#[test]
fn a_path_goes_through_as_bytes() {
    let odd = OsString::from_vec(b"/tmp/resolv\xff.conf".to_vec());
    let args = [OsStr::new("--resolv-conf"), &odd, OsStr::new("app")];
    let inv = parse(&args, |_| None).unwrap();
    assert_eq!(inv.options.resolv_conf.as_os_str(), odd);
    let env = |var: &str| (var == "SHIM_RESOLV_CONF").then(|| odd.clone());
    let inv = parse(&[OsStr::new("app")], env).unwrap();
    assert_eq!(inv.options.resolv_conf.as_os_str(), odd);
}

#[test]
fn signals_by_name_or_number() {
    for text in ["TERM", "SIGTERM", "term", "SigTerm", "15"] {
        assert_eq!(
            signal_number(text.as_bytes()),
            Some(libc::SIGTERM),
            "{text}"
        );
    }
    assert_eq!(signal_number(b"WINCH"), Some(libc::SIGWINCH));
    assert_eq!(signal_number(b"64"), Some(64));
    for text in [
        "",
        "0",
        "65",
        "-1",
        "SIG",
        "TERMX",
        "SIGSIGTERM",
        " TERM",
        "1.5",
    ] {
        assert_eq!(signal_number(text.as_bytes()), None, "{text:?}");
    }
}

#[test]
fn rewrite_exit_zero_pdeathsig_and_term_leftovers() {
    let o = run(
        &[
            "-r",
            "TERM:QUIT",
            "--rewrite=2:0",
            "-e",
            "143",
            "--exit-zero=7",
            "-p",
            "SIGKILL",
            "--term-leftovers",
            "app",
        ],
        &[("SHIM_REWRITE", "HUP:USR1"), ("SHIM_EXIT_ZERO", "1")],
    )
    .unwrap()
    .options;
    assert_eq!(
        o.rewrite,
        [(libc::SIGTERM, libc::SIGQUIT), (libc::SIGINT, 0)]
    );
    assert!(o.exit_zero.contains(143) && o.exit_zero.contains(7));
    assert!(!o.exit_zero.contains(1) && !o.exit_zero.contains(0) && !o.exit_zero.contains(399));
    assert_eq!(o.pdeathsig, Some(libc::SIGKILL));
    assert!(o.term_leftovers && o.needs_parent() && !o.supervise);
    let env = [
        ("SHIM_REWRITE", "TERM:QUIT, INT:0\tUSR1:40"),
        ("SHIM_EXIT_ZERO", "143,130 0"),
        ("SHIM_PDEATHSIG", "hup"),
        ("SHIM_TERM_LEFTOVERS", "1"),
    ];
    let o = run(&["app"], &env).unwrap().options;
    assert_eq!(
        o.rewrite,
        [
            (libc::SIGTERM, libc::SIGQUIT),
            (libc::SIGINT, 0),
            (libc::SIGUSR1, 40)
        ]
    );
    assert!([143, 130, 0].iter().all(|&c| o.exit_zero.contains(c)));
    assert!(!o.exit_zero.contains(255));
    assert_eq!(o.pdeathsig, Some(libc::SIGHUP));
    assert!(o.term_leftovers);
    let o = run(&["-e", "255", "-e0", "app"], &[]).unwrap().options;
    assert!(o.exit_zero.contains(255) && o.exit_zero.contains(0) && !o.exit_zero.contains(254));
    // Nothing asked, nothing needing a parent.
    let o = run(&["app"], &[("SHIM_REWRITE", " , ")]).unwrap().options;
    assert!(o.rewrite.is_empty() && o.exit_zero.is_empty() && !o.needs_parent());
}

#[test]
fn bad_rewrites_exit_codes_and_signals_are_usage_errors() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["-r", "TERM", "a"],
            &[],
            "--rewrite 'TERM': expected FROM:TO",
        ),
        (&["-r", "TERM:", "a"], &[], "--rewrite 'TERM:'"),
        (&["-r", ":QUIT", "a"], &[], "--rewrite ':QUIT'"),
        (&["-r", "TERM:BOGUS", "a"], &[], "not a signal"),
        (&["-r", "0:TERM", "a"], &[], "not a signal"),
        (&["-r", "TERM:65", "a"], &[], "not a signal"),
        (&["-r", "KILL:TERM", "a"], &[], "cannot be caught"),
        (&["-r", "SIGSTOP:0", "a"], &[], "cannot be caught"),
        (&["-r", "19:0", "a"], &[], "cannot be caught"),
        (&["-r", "CHLD:TERM", "a"], &[], "SIGCHLD"),
        (&["-r", "TERM:CHLD", "a"], &[], "SIGCHLD"),
        (&["-r", "TERM:QUIT:HUP", "a"], &[], "not a signal"),
        (
            &["a"],
            &[("SHIM_REWRITE", "TERM:QUIT,KILL:0")],
            "SHIM_REWRITE 'KILL:0'",
        ),
        (
            &["-e", "256", "a"],
            &[],
            "--exit-zero takes an exit status 0-255, got '256'",
        ),
        (&["-e", "-1", "a"], &[], "--exit-zero"),
        (&["--exit-zero", "x", "a"], &[], "--exit-zero"),
        (
            &["a"],
            &[("SHIM_EXIT_ZERO", "143;130")],
            "SHIM_EXIT_ZERO takes",
        ),
        (&["-p", "BOGUS", "a"], &[], "--pdeathsig takes a signal"),
        (&["-p", "0", "a"], &[], "--pdeathsig"),
        (&["a"], &[("SHIM_PDEATHSIG", "99")], "SHIM_PDEATHSIG"),
        (
            &["a"],
            &[("SHIM_TERM_LEFTOVERS", "maybe")],
            "SHIM_TERM_LEFTOVERS",
        ),
        (
            &["--term-leftovers=1", "a"],
            &[],
            "--term-leftovers takes no value",
        ),
        (&["-r"], &[], "-r needs a value"),
    ];
    for (args, env, culprit) in cases {
        let Usage(line) = run(args, env).unwrap_err();
        assert!(line.contains(culprit), "{args:?} {env:?}: {line}");
        assert!(!line.contains('\n'), "{args:?}: {line}");
    }
    // A flag given wins over its variable, even a bad one.
    let o = run(&["-e", "1", "a"], &[("SHIM_EXIT_ZERO", "x")])
        .unwrap()
        .options;
    assert!(o.exit_zero.contains(1));
}

#[test]
fn a_malformed_user_is_a_usage_error() {
    for spec in ["", ":", "a:", ":b", "a:b:c", "4294967295"] {
        let Usage(line) = run(&["--user", spec, "--", "app"], &[]).unwrap_err();
        assert!(line.starts_with("--user "), "{line}");
        if !spec.is_empty() {
            let Usage(line) = run(&["--", "app"], &[("SHIM_USER", spec)]).unwrap_err();
            assert!(line.starts_with("SHIM_USER '"), "{line}");
        }
    }
    let o = run(&["--user=app:44", "app"], &[]).unwrap().options;
    assert_eq!(o.user, UserSpec::parse(b"app:44").ok());
}
