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

use nix::libc::{self, c_int};

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
      --term-leftovers     once the app exits, SIGTERM what is left and exit at once, no wait, no SIGKILL (dumb-init's way; --grace wins) [SHIM_TERM_LEFTOVERS=1, default off]
  -r, --rewrite FROM:TO    forward signal FROM as TO (names or numbers; TO 0 drops it); repeatable; keeps shim as the app's parent [SHIM_REWRITE, a list, default none]
  -e, --exit-zero CODE     exit 0 when the app's status is CODE (143 = killed by SIGTERM); repeatable; keeps shim as the app's parent [SHIM_EXIT_ZERO, a list, default none]
  -p, --pdeathsig SIGNAL   receive SIGNAL when shim's parent dies (forwarded to the app; after an exec, the app's) [SHIM_PDEATHSIG, default none]
  -v, --verbose            log more: -v info, -vv debug [SHIM_LOG=debug|info|warn|error, default warn]
  -q, --quiet              log errors only
      --check-dns          change nothing, explain what DNS looks like; exit 0 if AAAA for NAME resolves
      --name NAME          the name --check-dns looks up [default example.com]
      --json               with --check-dns, print one JSON object instead of text
  -h, --help               print this help and exit
  -V, --version            print the version and exit

Exit status:
  any     the app's own status, whatever it is
  0       also when the app's status is one given to -e/--exit-zero
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
    /// `--term-leftovers`: dumb-init's end, SIGTERM to what is left and exit at once.
    pub term_leftovers: bool,
    /// `-r FROM:TO`: signals forwarded as another (TO 0: dropped), in the order given.
    pub rewrite: Vec<(c_int, c_int)>,
    /// `-e CODE`: the app's statuses that shim reports as 0.
    pub exit_zero: Codes,
    /// `-p SIGNAL`: the parent-death signal.
    pub pdeathsig: Option<c_int>,
    pub log_level: Level,
}

impl Options {
    /// Whether an option asks for work only a parent can do (rewrite a signal, remap a status):
    /// shim then stays as the app's parent even when not PID 1, as with `--supervise` (I4, I11).
    pub fn needs_parent(&self) -> bool {
        self.supervise || !self.rewrite.is_empty() || !self.exit_zero.is_empty()
    }
}

/// A set of exit statuses, 0..=255: one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Codes([u64; 4]);

impl Codes {
    pub fn insert(&mut self, code: u8) {
        self.0[usize::from(code / 64)] |= 1 << (code % 64);
    }

    pub fn contains(&self, status: i32) -> bool {
        u8::try_from(status).is_ok_and(|c| self.0[usize::from(c / 64)] & (1 << (c % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
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
    rewrite: Vec<OsString>,
    exit_zero: Vec<OsString>,
    pdeathsig: Option<OsString>,
    term_leftovers: bool,
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
            Short('r') | Long("rewrite") => flags.rewrite.push(parser.value()?),
            Short('e') | Long("exit-zero") => flags.exit_zero.push(parser.value()?),
            Short('p') | Long("pdeathsig") => flags.pdeathsig = Some(parser.value()?),
            Long("term-leftovers") => flags.term_leftovers = true,
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
            term_leftovers: false,
            rewrite: Vec::new(),
            exit_zero: Codes::default(),
            pdeathsig: None,
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

/// Signal names as `kill -l` lists them on Linux, without the SIG.
const SIGNALS: [(&str, c_int); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The kernel's highest signal number on x86 and arm (_NSIG - 1); real-time signals are numbers.
const SIGNAL_MAX: c_int = 64;

/// A signal as tini and dumb-init take one: `TERM`, `SIGTERM` (any case) or a number, 1..=64.
pub fn signal_number(text: &[u8]) -> Option<c_int> {
    if let Some(n) = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()) {
        return (1..=SIGNAL_MAX).contains(&n).then_some(n);
    }
    let name = match text.get(..3) {
        Some(sig) if sig.eq_ignore_ascii_case(b"SIG") => &text[3..],
        _ => text,
    };
    SIGNALS
        .iter()
        .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(_, n)| n)
}

/// The values of a repeatable flag, or else its variable as a list (commas or white space), with
/// where they came from; None when neither is given (the plain start pays one lookup, no more).
fn list(
    flags: Vec<OsString>,
    name: &'static str,
    var: &'static str,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Option<(Vec<OsString>, &'static str)>, Usage> {
    if !flags.is_empty() {
        if flags.iter().any(|value| value.is_empty()) {
            given(Some(OsString::new()), name, None, env)?;
        }
        return Ok(Some((flags, name)));
    }
    let Some(value) = env(var) else {
        return Ok(None);
    };
    let items = value
        .as_bytes()
        .split(|&b| b == b',' || b.is_ascii_whitespace())
        .filter(|item| !item.is_empty())
        .map(|item| OsStr::from_bytes(item).to_owned())
        .collect();
    Ok(Some((items, var)))
}

/// `-r FROM:TO` (I10). SIGKILL and SIGSTOP never reach shim, and SIGCHLD is how shim sees its
/// children end: none of them can be rewritten.
fn rewrite(item: &OsStr, source: &str) -> Result<(c_int, c_int), Usage> {
    let bad = |why: &str| Usage(format!("{source} '{}': {why}", shown(item)));
    let bytes = item.as_bytes();
    let colon = bytes
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("expected FROM:TO, each a signal name or number (TO 0 drops FROM)"))?;
    let (from, to) = (&bytes[..colon], &bytes[colon + 1..]);
    let signal =
        |text: &[u8]| signal_number(text).ok_or_else(|| bad("not a signal name or number 1-64"));
    let from = signal(from)?;
    let to = if to == b"0" { 0 } else { signal(to)? };
    if matches!(from, libc::SIGKILL | libc::SIGSTOP) {
        return Err(bad(
            "SIGKILL and SIGSTOP cannot be caught, so not rewritten",
        ));
    }
    if from == libc::SIGCHLD || to == libc::SIGCHLD {
        return Err(bad("SIGCHLD is shim's own (it reaps children by it)"));
    }
    Ok((from, to))
}

fn exit_code(item: &OsStr, source: &str) -> Result<u8, Usage> {
    item.to_str()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            Usage(format!(
                "{source} takes an exit status 0-255, got '{}'",
                shown(item)
            ))
        })
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
    let rewrite = match list(flags.rewrite, "--rewrite", "SHIM_REWRITE", env)? {
        None => Vec::new(),
        Some((items, source)) => items
            .iter()
            .map(|item| rewrite(item, source))
            .collect::<Result<_, _>>()?,
    };
    let mut exit_zero = Codes::default();
    if let Some((items, source)) = list(flags.exit_zero, "--exit-zero", "SHIM_EXIT_ZERO", env)? {
        for item in &items {
            exit_zero.insert(exit_code(item, source)?);
        }
    }
    let pdeathsig = match given(flags.pdeathsig, "--pdeathsig", Some("SHIM_PDEATHSIG"), env)? {
        None => None,
        Some((name, source)) => Some(signal_number(name.as_bytes()).ok_or_else(|| {
            Usage(format!(
                "{source} takes a signal name or number 1-64, got '{}'",
                shown(&name)
            ))
        })?),
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
        term_leftovers: switch(flags.term_leftovers, "SHIM_TERM_LEFTOVERS", env)?,
        rewrite,
        exit_zero,
        pdeathsig,
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
}
