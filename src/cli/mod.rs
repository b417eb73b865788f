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

use nix::libc::c_int;

use crate::log::Level;

mod values;

use crate::privileges::UserSpec;
use values::{exit_code, given, list, millis, rewrite, switch, text};
pub use values::{shown, signal_number};

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
mod tests;
