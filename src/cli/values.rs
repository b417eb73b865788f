//! The values of the command line: how each kind is read from a flag or its variable (the
//! one rule for empty values, milliseconds, switches, signal names, lists), and how a bad one is
//! shown in a usage error.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use nix::libc::{self, c_int};

use super::Usage;

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
pub(super) fn given(
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

pub(super) fn text(value: OsString, source: &str) -> Result<String, Usage> {
    value
        .into_string()
        .map_err(|v| Usage(format!("{source} '{}' is not valid UTF-8", shown(&v))))
}

pub(super) fn switch(
    flag: bool,
    var: &str,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<bool, Usage> {
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

pub(super) fn millis(given: Option<(OsString, &str)>, default: u64) -> Result<Duration, Usage> {
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
pub(super) fn list(
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
pub(super) fn rewrite(item: &OsStr, source: &str) -> Result<(c_int, c_int), Usage> {
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

pub(super) fn exit_code(item: &OsStr, source: &str) -> Result<u8, Usage> {
    item.to_str()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            Usage(format!(
                "{source} takes an exit status 0-255, got '{}'",
                shown(item)
            ))
        })
}
