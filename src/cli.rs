//! The command line: flags first, each with its `SHIM_*` environment fallback, then the command.
//!
//! The conventions of Unix tools (getopt_long's): `--flag value` and `--flag=value`, short flags
//! alone or combined (`-vv`, `-gq`), `-h`/`--help`, `-V`/`--version`, and `--` to end the options.
//! The first argument that is not an option starts the command, and everything from there on is
//! the app's, its own flags included. `lexopt` splits the arguments (argh refuses `-vv`, `--flag=value`,
//! `-h` and `-V`) and works on `OsString`, so paths and the command stay bytes.
//!
//! One rule for the environment: an empty SHIM_* variable counts as unset (`docker run -e VAR=`
//! and a compose file's `VAR:` give empty values where a user means "not set"). A flag written with an
//! empty value is a usage error instead: `--user ''` must not quietly mean "stay root".
//!
//! `parse` is pure: it takes the arguments and an environment lookup, so tests give both.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::log::Level;
use crate::privileges::UserSpec;

/// `--help`. One line a flag, with its variable and default: written out rather than generated,
/// so that printing it is one write.
pub const HELP: &str = "\
Usage: shim [OPTIONS] [--] COMMAND [ARG...]
       shim --check-dns [--name NAME] [--json] [OPTIONS]
       shim -h | --help | -V | --version

Fix Docker's /etc/resolv.conf for IPv6 DNS, then run COMMAND as a correct PID 1.
Options end at -- or at the first argument that is not one: the rest is the app's.

Options [environment variable used when the flag is absent; an empty one counts as unset]:
      --resolv-conf PATH   the file to fix [SHIM_RESOLV_CONF, default /etc/resolv.conf]
      --embedded MODE      127.0.0.11 beside other nameservers: drop, keep, proxy or auto [SHIM_EMBEDDED, default drop]
      --probe NAME         after the fix, look NAME's AAAA up through each nameserver left and log it [SHIM_PROBE, default none]
      --probe-timeout MS   timeout of one DNS query [SHIM_PROBE_TIMEOUT_MS, default 1000]
      --strict             if the fix fails or the probe finds no AAAA, do not start the app: exit 1 [SHIM_STRICT=1, default off]
  -g, --pgroup             forward signals to the app's whole process group [SHIM_PGROUP=1, default off]
      --user USER[:GROUP]  after the fix, run the app as USER (and GROUP), each a name or a number [SHIM_USER, default none]
      --supervise          when not PID 1, stay as a subreaper and supervise instead of exec [SHIM_SUPERVISE=1, default off]
      --grace MS           once the app exits, SIGTERM what is left, wait up to MS, then SIGKILL [SHIM_GRACE_MS, default 0]
  -v, --verbose            log more: -v info, -vv debug [SHIM_LOG=debug|info|warn|error, default warn]
  -q, --quiet              log errors only
      --check-dns          change nothing, explain what DNS looks like; exit 0 if AAAA for NAME resolves
      --name NAME          the name --check-dns looks up [default example.com]
      --json               with --check-dns, print one JSON object instead of text
  -h, --help               print this help and exit
  -V, --version            print the version and exit

Exit status:
  any     the app's own status, whatever it is
  128+N   the app was killed by signal N
  127     the command was not found
  126     the command was found but is not executable
  2       usage error
  1       a --strict failure, or shim failed before the app started; --check-dns: no AAAA
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    Drop,
    Keep,
    /// R8: a forwarder in shim asks 127.0.0.11 for names and the upstreams for the rest.
    Proxy,
    Auto,
}

/// Everything shim was asked to do, with defaults and environment applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub resolv_conf: PathBuf,
    pub embedded: Embedded,
    pub probe: Option<String>,
    pub probe_timeout: Duration,
    /// Whether `--probe-timeout` (or its variable) was given: `--check-dns` sizes its own default
    /// for Docker >= 26's embedded resolver, and a given value wins over it.
    pub probe_timeout_given: bool,
    pub strict: bool,
    pub pgroup: bool,
    pub user: Option<UserSpec>,
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
    Help(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation<'a> {
    pub options: Options,
    pub mode: Mode<'a>,
}

/// A usage error: one line for stderr; shim exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

/// The flags as written, before the environment and the defaults.
#[derive(Default)]
struct Flags {
    resolv_conf: Option<OsString>,
    embedded: Option<OsString>,
    probe: Option<OsString>,
    probe_timeout: Option<OsString>,
    user: Option<OsString>,
    grace: Option<OsString>,
    name: Option<OsString>,
    strict: bool,
    pgroup: bool,
    supervise: bool,
    verbose: u8,
    quiet: bool,
    check_dns: bool,
    json: bool,
}

/// `args` is argv without argv[0]; `env` looks a variable up. Nothing is copied out of `args`:
/// the command in `Mode::Run` borrows from it.
pub fn parse<'a>(
    args: &[&'a OsStr],
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Invocation<'a>, Usage> {
    use lexopt::Arg::{Long, Short, Value};
    let mut flags = Flags::default();
    let mut command: &[&OsStr] = &[];
    let mut parser = lexopt::Parser::from_args(args.iter().copied());
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(at_once(Mode::Help(HELP))),
            Short('V') | Long("version") => return Ok(at_once(Mode::Version)),
            Long("resolv-conf") => flags.resolv_conf = Some(parser.value()?),
            Long("embedded") => flags.embedded = Some(parser.value()?),
            Long("probe") => flags.probe = Some(parser.value()?),
            Long("probe-timeout") => flags.probe_timeout = Some(parser.value()?),
            Long("user") => flags.user = Some(parser.value()?),
            Long("grace") => flags.grace = Some(parser.value()?),
            Long("name") => flags.name = Some(parser.value()?),
            Long("strict") => flags.strict = true,
            Short('g') | Long("pgroup") => flags.pgroup = true,
            Long("supervise") => flags.supervise = true,
            Short('v') | Long("verbose") => flags.verbose = flags.verbose.saturating_add(1),
            Short('q') | Long("quiet") => flags.quiet = true,
            Long("check-dns") => flags.check_dns = true,
            Long("json") => flags.json = true,
            Value(_) => {
                // The command: argv's tail as it was (lexopt holds copies; the app gets the
                // originals), from this argument, which lexopt has taken, to the end.
                let rest = parser.try_raw_args().map_or(0, |raw| raw.as_slice().len());
                command = &args[args.len() - rest - 1..];
                break;
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let check_dns = flags.check_dns;
    let json = flags.json;
    let name = given(flags.name.take(), "--name", None, &env)?;
    let options = options(flags, &env)?;
    let mode = if check_dns {
        if !command.is_empty() {
            return Err(Usage(
                "--check-dns takes no command (see shim --help)".into(),
            ));
        }
        let name = match name {
            Some((name, source)) => text(name, source)?,
            None => "example.com".into(),
        };
        Mode::CheckDns { name, json }
    } else if command.is_empty() {
        return Err(Usage(
            "no command given: use shim [OPTIONS] -- COMMAND [ARG...] (see shim --help)".into(),
        ));
    } else {
        if name.is_some() || json {
            return Err(Usage(
                "--name and --json go with --check-dns (see shim --help)".into(),
            ));
        }
        Mode::Run(command.to_vec())
    };
    Ok(Invocation { options, mode })
}

/// `--help` and `--version` need nothing else, not even a valid environment.
fn at_once(mode: Mode<'static>) -> Invocation<'static> {
    Invocation {
        options: Options {
            resolv_conf: PathBuf::new(),
            embedded: Embedded::Drop,
            probe: None,
            probe_timeout: Duration::ZERO,
            probe_timeout_given: false,
            strict: false,
            pgroup: false,
            user: None,
            supervise: false,
            grace: Duration::ZERO,
            log_level: Level::Warn,
        },
        mode,
    }
}

impl From<lexopt::Error> for Usage {
    fn from(e: lexopt::Error) -> Usage {
        use lexopt::Error::{MissingValue, UnexpectedOption, UnexpectedValue};
        let line = match e {
            MissingValue {
                option: Some(option),
            } => format!("{option} needs a value"),
            UnexpectedOption(option) => format!(
                "unknown option '{}'; the app's own options go after its name",
                shown(OsStr::new(&option))
            ),
            UnexpectedValue { option, value } => {
                format!("{option} takes no value, got '{}'", shown(&value))
            }
            // Not made by the calls above (no value is converted, no free argument refused).
            _ => "invalid arguments".into(),
        };
        Usage(format!("{line} (see shim --help)"))
    }
}

/// A value as an error line shows it: cut after 60 characters, so that a 100 KB value gives a
/// short line, not a flood in the log.
pub fn shown(value: &OsStr) -> String {
    const MAX: usize = 60;
    let head = &value.as_bytes()[..value.len().min(4 * MAX)];
    let text = String::from_utf8_lossy(head);
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None if head.len() < value.len() => format!("{text}..."),
        None => text.into_owned(),
    }
}

/// A value and where it came from (the flag, or the variable standing in for it). A flag wins
/// over its variable; an empty variable is unset; an empty flag is refused.
fn given(
    flag: Option<OsString>,
    name: &'static str,
    var: Option<&'static str>,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Option<(OsString, &'static str)>, Usage> {
    match flag {
        Some(value) if value.is_empty() => Err(Usage(format!(
            "{name} needs a value, not an empty one; leave the flag out for its default (see shim --help)"
        ))),
        Some(value) => Ok(Some((value, name))),
        None => Ok(var.and_then(|var| Some((env(var).filter(|v| !v.is_empty())?, var)))),
    }
}

fn text(value: OsString, source: &str) -> Result<String, Usage> {
    value
        .into_string()
        .map_err(|v| Usage(format!("{source} '{}' is not valid UTF-8", shown(&v))))
}

fn switch(flag: bool, var: &str, env: &impl Fn(&str) -> Option<OsString>) -> Result<bool, Usage> {
    if flag {
        return Ok(true);
    }
    match env(var).filter(|v| !v.is_empty()) {
        None => Ok(false),
        Some(v) => match v.as_bytes() {
            b"1" | b"true" | b"yes" => Ok(true),
            b"0" | b"false" | b"no" => Ok(false),
            _ => Err(Usage(format!("{var} takes 1 or 0, got '{}'", shown(&v)))),
        },
    }
}

fn millis(given: Option<(OsString, &str)>, default: u64) -> Result<Duration, Usage> {
    let Some((value, source)) = given else {
        return Ok(Duration::from_millis(default));
    };
    match value.to_str().and_then(|v| v.parse().ok()) {
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Err(Usage(format!(
            "{source} takes a whole number of milliseconds, got '{}'",
            shown(&value)
        ))),
    }
}

fn options(flags: Flags, env: &impl Fn(&str) -> Option<OsString>) -> Result<Options, Usage> {
    let embedded = match given(flags.embedded, "--embedded", Some("SHIM_EMBEDDED"), env)? {
        None => Embedded::Drop,
        Some((mode, source)) => match mode.as_bytes() {
            b"drop" => Embedded::Drop,
            b"keep" => Embedded::Keep,
            b"proxy" => Embedded::Proxy,
            b"auto" => Embedded::Auto,
            _ => {
                return Err(Usage(format!(
                    "{source} takes drop, keep, proxy or auto, got '{}'",
                    shown(&mode)
                )))
            }
        },
    };
    let log_level = if flags.quiet {
        Level::Error
    } else if flags.verbose >= 2 {
        Level::Debug
    } else if flags.verbose == 1 {
        Level::Info
    } else {
        match env("SHIM_LOG").filter(|v| !v.is_empty()) {
            None => Level::Warn,
            Some(name) => name.to_str().and_then(Level::from_name).ok_or_else(|| {
                Usage(format!(
                    "SHIM_LOG takes debug, info, warn or error, got '{}'",
                    shown(&name)
                ))
            })?,
        }
    };
    let timeout = given(
        flags.probe_timeout,
        "--probe-timeout",
        Some("SHIM_PROBE_TIMEOUT_MS"),
        env,
    )?;
    let timeout_source = timeout.as_ref().map(|(_, source)| *source);
    let probe_timeout = millis(timeout, 1000)?;
    if probe_timeout.is_zero() {
        return Err(Usage(format!(
            "{} must be at least 1 ms",
            timeout_source.unwrap_or("--probe-timeout")
        )));
    }
    let user = match given(flags.user, "--user", Some("SHIM_USER"), env)? {
        None => None,
        Some((spec, source)) => Some(UserSpec::parse(spec.as_bytes()).map_err(|why| {
            Usage(format!(
                "{source} '{}': {why}; expected USER or USER:GROUP, each a name or a number",
                shown(&spec)
            ))
        })?),
    };
    let probe = match given(flags.probe, "--probe", Some("SHIM_PROBE"), env)? {
        None => None,
        Some((name, source)) => Some(text(name, source)?),
    };
    let resolv_conf = given(
        flags.resolv_conf,
        "--resolv-conf",
        Some("SHIM_RESOLV_CONF"),
        env,
    )?;
    Ok(Options {
        resolv_conf: resolv_conf.map_or_else(|| "/etc/resolv.conf".into(), |(path, _)| path.into()),
        embedded,
        probe,
        probe_timeout,
        probe_timeout_given: timeout_source.is_some(),
        strict: switch(flags.strict, "SHIM_STRICT", env)?,
        pgroup: switch(flags.pgroup, "SHIM_PGROUP", env)?,
        user,
        supervise: switch(flags.supervise, "SHIM_SUPERVISE", env)?,
        grace: millis(
            given(flags.grace, "--grace", Some("SHIM_GRACE_MS"), env)?,
            0,
        )?,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
