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
use std::net::IpAddr;
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::process::exit;

use shim::cli::{self, Embedded, Invocation, Mode, Options, Usage};
use shim::dns::{self, Family};
use shim::resolv_conf::{self, Outcome, Policy, EMBEDDED};
use shim::{check, debug, error, info, log, policy, privileges, proxy, supervisor, warn};

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
    } = fix_resolv_conf(options);
    let probed = probe_dns(options, servers);
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
    supervisor::run(command, signals, how)
}

/// `--probe NAME`: asks `servers`, those of the text the app reads (or why there are none);
/// returns false when none gave an AAAA record.
fn probe_dns(options: &Options, servers: Result<Vec<IpAddr>, String>) -> bool {
    match (&options.probe, servers) {
        (None, _) => true,
        (Some(name), Ok(servers)) => dns::probe_and_log(&servers, name, options.probe_timeout),
        (Some(name), Err(e)) => {
            warn!("--probe {name}: {e}");
            false
        }
    }
}

/// What the fix left for the rest of the run.
struct Fixed {
    /// Is the file now as it should be? (A failure is logged, never fatal here.)
    fixed: bool,
    /// For `--probe`: the servers of the text the app will read (for the proxy, those it asks).
    servers: Result<Vec<IpAddr>, String>,
    /// Is shim's proxy running, and named by the file?
    proxied: bool,
}

/// Read the file once, decide (`--embedded auto` asks 127.0.0.11 here), start the proxy when the
/// plan needs it, write the file in place.
fn fix_resolv_conf(options: &Options) -> Fixed {
    let failed = |e: &resolv_conf::FixError| {
        if options.strict {
            error!("{e}");
        } else {
            warn!("{e}");
        }
    };
    let path = options.resolv_conf.display();
    let content = match resolv_conf::read(&options.resolv_conf) {
        Ok(content) => content,
        Err(e) => {
            if matches!(options.embedded, Embedded::Auto) {
                info!("--embedded auto: {path} cannot be read");
            }
            failed(&e);
            return Fixed {
                fixed: false,
                servers: Err(e.to_string()),
                proxied: false,
            };
        }
    };
    let conf = resolv_conf::parse(&content);
    // auto asks 127.0.0.11 for the probe's name, if there is one.
    let name = || options.probe.as_deref().unwrap_or(policy::DEFAULT_NAME);
    let stays_parent = supervisor::stays_parent(options.needs_parent());
    let mut decision = policy::decide(&conf, options.embedded, stays_parent, || {
        dns::query(EMBEDDED.into(), name(), Family::Aaaa, options.probe_timeout)
    });
    if let Some(auto) = &decision.auto {
        info!("--embedded auto: {}", auto.explain(name()));
    }
    // The proxy runs before the file names it: if it cannot, 127.0.0.11 is dropped instead, and
    // nothing points at a proxy that does not run.
    if let Outcome::Proxy {
        listen, upstreams, ..
    } = &decision.plan.outcome
    {
        if let Err(e) = proxy::start(*listen, upstreams) {
            warn!("--embedded proxy: cannot serve DNS on {listen}:53 ({e}); dropping 127.0.0.11 instead, so names of other containers no longer resolve");
            decision.policy = Policy::Drop;
            decision.plan = resolv_conf::plan(&conf, Policy::Drop);
        }
    }
    // For --probe: the lines the plan drops, before the plan goes to the writer.
    let dropped = options
        .probe
        .as_ref()
        .map(|_| decision.plan.dropped().to_vec());
    let written = resolv_conf::apply(
        &options.resolv_conf,
        decision.policy,
        &content,
        &conf,
        decision.plan,
    );
    let mut proxied = None;
    let fixed = match written {
        Ok(fixed) => {
            match fixed.outcome {
                Outcome::Drop(lines) => info!(
                    "removed {} line(s) 'nameserver 127.0.0.11' from {path}: names of other containers no longer resolve; pass --embedded proxy to keep them and IPv6 DNS (shim then stays as the app's parent), or --embedded keep",
                    lines.len()
                ),
                Outcome::Proxy { listen, upstreams, .. } => {
                    let names: Vec<String> = upstreams.iter().map(|a| a.to_string()).collect();
                    info!(
                        "{path} now names only shim's proxy, {listen}: names of other containers from 127.0.0.11, other names from {}",
                        names.join(", ")
                    );
                    proxied = Some(upstreams);
                }
                Outcome::OnlyNameserver => debug!(
                    "{path}: 127.0.0.11 is the only nameserver (Docker >= 26 forwards to the upstreams itself); kept"
                ),
                Outcome::Kept => debug!("{path}: 127.0.0.11 kept (--embedded keep)"),
                Outcome::NoEmbedded => debug!("{path}: no 127.0.0.11; left untouched"),
            }
            true
        }
        Err(e) => {
            failed(&e);
            false
        }
    };
    // The app reads the text written, or the file as read when the write failed; through the
    // proxy, it gets what the proxy's upstreams answer.
    let servers = match (&proxied, dropped) {
        (_, None) => Vec::new(),
        (Some(upstreams), _) => upstreams.clone(),
        (None, Some(dropped)) => {
            resolv_conf::servers_in_use(&conf, if fixed { &dropped } else { &[] })
        }
    };
    Fixed {
        fixed,
        servers: Ok(servers),
        proxied: proxied.is_some(),
    }
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
