//! shim: fix /etc/resolv.conf for IPv6 DNS in Docker, then run the app as a correct PID 1.
//!
//! The order matters and is the whole story: parse the command line, fix the file, run the app.
//! Each step lives in its own module; this file only wires them.

use std::ffi::OsString;
use std::process::exit;

use shim::cli::{self, Embedded, Invocation, Mode, Options, Usage};
use shim::resolv_conf::{self, Outcome, Policy};
use shim::{debug, error, info, log, supervisor, warn};

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Invocation { options, mode } = match cli::parse(&args, |name| std::env::var_os(name)) {
        Ok(invocation) => invocation,
        Err(Usage(line)) => {
            eprintln!("shim: {line}");
            exit(2);
        }
    };
    log::set_level(options.log_level);
    match mode {
        Mode::Help(text) => print!("{text}"),
        Mode::Version => println!("shim {}", env!("CARGO_PKG_VERSION")),
        Mode::CheckDns { .. } => {
            eprintln!("shim: --check-dns is not yet supported");
            exit(2);
        }
        Mode::Run(command) => run(&options, &command),
    }
}

fn run(options: &Options, command: &[OsString]) -> ! {
    reject_unsupported(options);
    let fixed = fix_resolv_conf(options);
    let probed = probe_dns(options);
    if !(fixed && probed) && options.strict {
        error!("--strict: not starting the app");
        exit(1);
    }
    supervisor::exec(command)
}

/// `--probe NAME`: returns false when no remaining nameserver gave an AAAA record.
fn probe_dns(options: &Options) -> bool {
    options.probe.is_none()
}

/// Flags whose feature is not built yet are parsed, but refused rather than silently ignored.
fn reject_unsupported(options: &Options) {
    let unsupported = [
        (options.embedded == Embedded::Auto, "--embedded auto"),
        (options.probe.is_some(), "--probe"),
        (options.user.is_some(), "--user"),
        (options.supervise, "--supervise"),
        (options.pgroup, "--pgroup"),
        (!options.grace.is_zero(), "--grace"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(given, _)| *given) {
        eprintln!("shim: {flag} is not yet supported");
        exit(2);
    }
}

/// Returns whether the file is now as it should be; a failure is logged, never fatal here.
fn fix_resolv_conf(options: &Options) -> bool {
    let policy = match options.embedded {
        Embedded::Keep => Policy::Keep,
        Embedded::Drop | Embedded::Auto => Policy::Drop,
    };
    let path = options.resolv_conf.display();
    match resolv_conf::fix(&options.resolv_conf, policy) {
        Ok(fixed) => {
            match fixed.outcome {
                Outcome::Drop(lines) => info!(
                    "removed {} line(s) 'nameserver 127.0.0.11' from {path}: names of other containers no longer resolve; pass --embedded keep (or auto) to keep them",
                    lines.len()
                ),
                Outcome::OnlyNameserver => debug!(
                    "{path}: 127.0.0.11 is the only nameserver (Docker >= 26 forwards to the upstreams itself); kept"
                ),
                Outcome::Kept => debug!("{path}: 127.0.0.11 kept (--embedded keep)"),
                Outcome::NoEmbedded => debug!("{path}: no 127.0.0.11; left untouched"),
            }
            true
        }
        Err(e) => {
            if options.strict {
                error!("{e}");
            } else {
                warn!("{e}");
            }
            false
        }
    }
}
