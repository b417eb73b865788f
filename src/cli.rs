//! The command line: flags first, each with its `SHIM_*` environment fallback, then the command.
//!
//! `parse` is pure: it takes the arguments and an environment lookup, so tests give both.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::log::Level;

/// Fix Docker's /etc/resolv.conf for IPv6 DNS, then run COMMAND as a correct PID 1.
#[derive(FromArgs, Debug)]
#[argh(
    example = "ENTRYPOINT [\"/shim\", \"--\"]   then   docker run IMAGE app --flag",
    example = "shim --check-dns --name example.com",
    note = "Each flag falls back to the environment variable named in its description.",
    error_code(0, "the app's own status; 128+N when the app was killed by signal N"),
    error_code(
        1,
        "a --strict failure, or a failure of shim before the app started; for --check-dns: no AAAA"
    ),
    error_code(2, "usage error"),
    error_code(126, "the command was found but is not executable"),
    error_code(127, "the command was not found")
)]
struct Flags {
    /// the resolv.conf to fix [SHIM_RESOLV_CONF, default /etc/resolv.conf]
    #[argh(option, arg_name = "PATH")]
    resolv_conf: Option<String>,

    /// what to do with 127.0.0.11 when other nameservers exist: drop, keep or auto [SHIM_EMBEDDED, default drop]
    #[argh(option, arg_name = "MODE")]
    embedded: Option<String>,

    /// after the fix, look NAME's AAAA up through each remaining nameserver and log it [SHIM_PROBE]
    #[argh(option, arg_name = "NAME")]
    probe: Option<String>,

    /// timeout of one DNS query in milliseconds [SHIM_PROBE_TIMEOUT_MS, default 1000]
    #[argh(option, arg_name = "MS")]
    probe_timeout: Option<String>,

    /// if the fix fails or the probe finds no AAAA, do not start the app: exit 1 [SHIM_STRICT=1]
    #[argh(switch)]
    strict: bool,

    /// forward signals to the app's whole process group [SHIM_PGROUP=1]
    #[argh(switch, short = 'g')]
    pgroup: bool,

    /// after the fix, run the app as USER[:GROUP], by name or number [SHIM_USER]
    #[argh(option, arg_name = "USER[:GROUP]")]
    user: Option<String>,

    /// when not PID 1, stay as a subreaper and supervise instead of exec [SHIM_SUPERVISE=1]
    #[argh(switch)]
    supervise: bool,

    /// once the app exits, SIGTERM what is left, wait up to MS, then SIGKILL [SHIM_GRACE_MS, default 0]
    #[argh(option, arg_name = "MS")]
    grace: Option<String>,

    /// log more: -v info, -vv debug [SHIM_LOG=debug|info|warn|error, default warn]
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// log only errors
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// debug mode: change nothing, explain what DNS looks like, exit 0 if AAAA for NAME resolves
    #[argh(switch)]
    check_dns: bool,

    /// the name --check-dns looks up [default example.com]
    #[argh(option, arg_name = "NAME")]
    name: Option<String>,

    /// with --check-dns, print one JSON object instead of text
    #[argh(switch)]
    json: bool,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    /// the app and its arguments
    #[argh(positional, greedy, arg_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    Drop,
    Keep,
    Auto,
}

/// Everything shim was asked to do, with defaults and environment applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub resolv_conf: PathBuf,
    pub embedded: Embedded,
    pub probe: Option<String>,
    pub probe_timeout: Duration,
    pub strict: bool,
    pub pgroup: bool,
    pub user: Option<String>,
    pub supervise: bool,
    pub grace: Duration,
    pub log_level: Level,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode<'a> {
    /// The app and its arguments, borrowed from `parse`'s `args`.
    Run(Vec<&'a OsStr>),
    CheckDns {
        name: String,
        json: bool,
    },
    Version,
    /// `--help`: the text to print on stdout.
    Help(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation<'a> {
    pub options: Options,
    pub mode: Mode<'a>,
}

/// A usage error: one line for stderr; shim exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

/// `args` is argv without argv[0]; `env` looks a variable up. Nothing is copied out of `args`:
/// the command in `Mode::Run` borrows from it.
pub fn parse<'a>(
    args: &[&'a OsStr],
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Invocation<'a>, Usage> {
    // argh reads UTF-8; an app's arguments need not be. The command is always argv's tail (a
    // greedy positional takes everything after it), so we take it back from argv as it was.
    // An argument that is UTF-8 already, as almost all are, is borrowed rather than copied.
    let text: Vec<Cow<str>> = args.iter().map(|a| a.to_string_lossy()).collect();
    let refs: Vec<&str> = text.iter().map(Cow::as_ref).collect();
    let flags = match Flags::from_args(&["shim"], &refs) {
        Ok(flags) => flags,
        Err(early) if early.status.is_ok() => {
            return Ok(Invocation {
                options: options(&Flags::none(), &|_| None)?,
                mode: Mode::Help(early.output),
            })
        }
        Err(early) => {
            let first = early.output.lines().next().unwrap_or("invalid arguments");
            return Err(Usage(format!(
                "{} (see shim --help)",
                first.trim_end_matches('.')
            )));
        }
    };
    let options = options(&flags, &env)?;
    let command = args[args.len() - flags.command.len()..].to_vec();
    let mode = if flags.version {
        Mode::Version
    } else if flags.check_dns {
        if !command.is_empty() {
            return Err(Usage(
                "--check-dns takes no command (see shim --help)".into(),
            ));
        }
        Mode::CheckDns {
            name: flags.name.clone().unwrap_or_else(|| "example.com".into()),
            json: flags.json,
        }
    } else if command.is_empty() {
        return Err(Usage(
            "no command given: use shim [OPTIONS] -- COMMAND [ARG...] (see shim --help)".into(),
        ));
    } else {
        if flags.name.is_some() || flags.json {
            return Err(Usage(
                "--name and --json go with --check-dns (see shim --help)".into(),
            ));
        }
        Mode::Run(command)
    };
    Ok(Invocation { options, mode })
}

impl Flags {
    /// No flag given: the defaults, for `--help`, which needs no other option.
    fn none() -> Flags {
        Flags::from_args(&["shim"], &[]).expect("no arguments always parse")
    }
}

fn options(flags: &Flags, env: &impl Fn(&str) -> Option<OsString>) -> Result<Options, Usage> {
    let text = |flag: &Option<String>, var: &str| -> Result<Option<String>, Usage> {
        match flag {
            Some(value) => Ok(Some(value.clone())),
            None => env(var)
                .map(|v| {
                    v.into_string()
                        .map_err(|_| Usage(format!("{var} is not valid UTF-8")))
                })
                .transpose(),
        }
    };
    let switch = |flag: bool, var: &str| -> Result<bool, Usage> {
        if flag {
            return Ok(true);
        }
        match env(var).as_deref().map(OsStr::to_str) {
            None => Ok(false),
            Some(Some("1" | "true" | "yes")) => Ok(true),
            Some(Some("0" | "false" | "no" | "")) => Ok(false),
            Some(_) => Err(Usage(format!("{var} must be 1 or 0"))),
        }
    };
    let millis = |flag: &Option<String>, name: &str, var: &str, default: u64| {
        let (value, source) = match flag {
            Some(v) => (Some(v.clone()), name),
            None => (text(&None, var)?, var),
        };
        match value {
            None => Ok(Duration::from_millis(default)),
            Some(v) => v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                Usage(format!(
                    "{source} takes a whole number of milliseconds, got '{v}'"
                ))
            }),
        }
    };

    let embedded = match text(&flags.embedded, "SHIM_EMBEDDED")?.as_deref() {
        None | Some("drop") => Embedded::Drop,
        Some("keep") => Embedded::Keep,
        Some("auto") => Embedded::Auto,
        Some(other) => {
            let source = if flags.embedded.is_some() {
                "--embedded"
            } else {
                "SHIM_EMBEDDED"
            };
            return Err(Usage(format!(
                "{source} takes drop, keep or auto, got '{other}'"
            )));
        }
    };
    let log_level = if flags.quiet {
        Level::Error
    } else if flags.verbose >= 2 {
        Level::Debug
    } else if flags.verbose == 1 {
        Level::Info
    } else {
        match env("SHIM_LOG").as_deref().map(OsStr::to_str) {
            None => Level::Warn,
            Some(name) => name
                .and_then(Level::from_name)
                .ok_or_else(|| Usage("SHIM_LOG takes debug, info, warn or error".into()))?,
        }
    };
    let probe_timeout = millis(
        &flags.probe_timeout,
        "--probe-timeout",
        "SHIM_PROBE_TIMEOUT_MS",
        1000,
    )?;
    if probe_timeout.is_zero() {
        return Err(Usage("--probe-timeout must be at least 1 ms".into()));
    }
    Ok(Options {
        resolv_conf: text(&flags.resolv_conf, "SHIM_RESOLV_CONF")?
            .unwrap_or_else(|| "/etc/resolv.conf".into())
            .into(),
        embedded,
        probe: text(&flags.probe, "SHIM_PROBE")?.filter(|p| !p.is_empty()),
        probe_timeout,
        strict: switch(flags.strict, "SHIM_STRICT")?,
        pgroup: switch(flags.pgroup, "SHIM_PGROUP")?,
        user: text(&flags.user, "SHIM_USER")?.filter(|u| !u.is_empty()),
        supervise: switch(flags.supervise, "SHIM_SUPERVISE")?,
        grace: millis(&flags.grace, "--grace", "SHIM_GRACE_MS", 0)?,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(o.grace, Duration::from_millis(2000));
        assert_eq!(o.user.as_deref(), Some("nobody"));
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
        ] {
            assert!(text.contains(flag), "help lacks {flag}");
        }
        assert_eq!(run(&["--version"], &[]).unwrap().mode, Mode::Version);
    }
}
