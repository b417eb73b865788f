//! shim: fix /etc/resolv.conf for IPv6 DNS in Docker, then run the app as a correct PID 1.
//!
//! The order matters and is the whole story: parse the command line, fix the file, run the app.
//! Each step lives in its own module; this file only wires them.
//!
//! `no_main`: Rust's own start-up sets SIGPIPE to SIG_IGN, and an ignored signal survives exec, so
//! the app would inherit a disposition shim was not started with (I6). Entering at the C `main`
//! keeps every disposition as we found it, and skips work a user pays for on every start.
#![no_main]

#[global_allocator]
static ALLOCATOR: shim::arena::Arena = shim::arena::Arena;

use std::ffi::{CStr, OsStr, OsString};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::process::exit;

use shim::cli::{self, Invocation, Mode, Options, Usage};
use shim::fix::{self, Fixed};
use shim::{check, error, log, privileges, supervisor};

/// # Safety
/// Called by the C runtime with `argc` valid C strings in `argv` and a null-terminated `envp`.
#[no_mangle]
pub unsafe extern "C" fn main(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let argv = c_args(argc, argv);
    let args: Vec<&OsStr> = argv
        .iter()
        .map(|a| OsStr::from_bytes(a.to_bytes()))
        .collect();
    let Invocation { options, mode } = match cli::parse(&args, shim_env(envp)) {
        Ok(invocation) => invocation,
        Err(Usage(line)) => {
            eprintln!("shim: {line}");
            exit(2);
        }
    };
    log::set_level(options.log_level);
    match mode {
        Mode::Help(text) => print!("{text}"),
        // As tini prints it: Docker's `docker info` reads the commit after " - git." of its
        // init's (`init-path`) version line, and warns on any other shape.
        Mode::Version => println!(
            "shim version {} - git.{}",
            env!("CARGO_PKG_VERSION"),
            env!("BUILD_GIT_COMMIT")
        ),
        Mode::CheckDns { name, json } => exit(check::run(&options, &name, json)),
        // The command is argv's tail (see `cli::parse`): hand the app the C strings themselves.
        Mode::Run(command) => run(&options, &argv[argv.len() - command.len()..]),
    }
    0
}

/// shim's arguments without argv[0], borrowed: the C runtime keeps argv for the whole process and
/// nothing writes to it, so they need no copy.
///
/// # Safety
/// `argv` holds `argc` valid C strings, as the C runtime gives `main`.
unsafe fn c_args(argc: c_int, argv: *const *const c_char) -> Vec<&'static CStr> {
    (1..argc as usize)
        .map(|i| CStr::from_ptr(*argv.add(i)))
        .collect()
}

fn run(options: &Options, command: &[&CStr]) -> ! {
    let signals = supervisor::hold_signals();
    // --pdeathsig first: a parent that dies while we fix the file must be noticed (I12).
    let parent = options.pdeathsig.map(|_| nix::unistd::getppid());
    let watch = |orphaned: Option<i32>| {
        let (signo, parent) = options.pdeathsig.zip(parent)?;
        orphaned.or(supervisor::watch_parent(signo, parent).then_some(signo))
    };
    let mut orphaned = watch(None);
    // Who the app will run as is settled before anything is written: an unknown name or an
    // unreadable /etc/passwd stops shim with the file as it was. The switch itself comes after
    // the fix and the probe, which need root.
    let identity = options.user.as_ref().map(|spec| {
        privileges::resolve_user(spec).unwrap_or_else(|e| {
            error!("{e}; not starting the app");
            exit(1)
        })
    });
    let Fixed {
        fixed,
        servers,
        proxied,
    } = fix::fix_resolv_conf(options);
    let probed = fix::probe_dns(options, servers);
    if !(fixed && probed) && options.strict {
        error!("--strict: not starting the app");
        exit(1);
    }
    if let Some(identity) = &identity {
        if let Err(e) = privileges::become_user(identity) {
            error!("{e}; not starting the app");
            exit(1);
        }
        // The kernel clears the parent-death signal on a change of credentials (I12).
        orphaned = watch(orphaned);
    }
    let how = supervisor::Supervision {
        pgroup: options.pgroup,
        // The proxy lives in shim's process: shim stays as the app's parent while it runs (R8).
        supervise: options.needs_parent() || proxied,
        grace: options.grace,
        term_leftovers: options.term_leftovers,
        rewrite: &options.rewrite,
        exit_zero: options.exit_zero,
        orphaned,
    };
    if proxied {
        // The proxy's thread lives on and allocates for every query: from here on the system
        // allocator serves it, which reuses what is freed; the arena never does (DESIGN.md).
        shim::arena::seal();
    }
    supervisor::run(command, signals, how)
}

/// Our own variables, found in one pass over the environment, for `cli::parse` to look up; rather
/// than one `std::env::var_os` per SHIM_* name (a lock, a C string, a scan of the whole
/// environment and a copy each).
///
/// # Safety
/// `envp` is the null-terminated environment the C runtime gave `main`.
unsafe fn shim_env(mut envp: *const *const c_char) -> impl Fn(&str) -> Option<OsString> {
    let mut ours: Vec<&'static [u8]> = Vec::new();
    while !(*envp).is_null() {
        if is_shim_var(*envp) {
            ours.push(CStr::from_ptr(*envp).to_bytes());
        }
        envp = envp.add(1);
    }
    move |name: &str| {
        ours.iter().find_map(|var| {
            var.strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
                .map(|value| OsStr::from_bytes(value).to_owned())
        })
    }
}

/// Does the variable start with `SHIM_`? Looked at before measuring it: most of the environment
/// is not ours, and its long values (PATH) need not be scanned for their end.
///
/// # Safety
/// `var` is a valid C string. The comparison stops at the first byte that differs, at the latest
/// at its NUL, so it never reads past the string.
unsafe fn is_shim_var(var: *const c_char) -> bool {
    b"SHIM_"
        .iter()
        .enumerate()
        .all(|(i, &prefix)| *var.add(i) as u8 == prefix)
}
