//! Running the app: exec it, or stay as its init (rules I1..I9 of DESIGN.md).
//!
//! Like tini and catatonit, shim blocks every signal it can from its first instruction and reads
//! them synchronously from a signalfd: no handler runs at an arbitrary point, nothing is lost
//! while the resolv.conf fix or the probe runs (I5), and between signals shim sleeps in one
//! blocking read, with no timer (I9).

use std::ffi::CStr;
use std::os::fd::AsFd;
use std::process::exit;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc::{self, c_int, pid_t};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{execvp, fork, getpid, isatty, setpgid, tcsetpgrp, ForkResult, Pid};

use crate::{debug, error, warn};

/// The kernel's fault signals stay unblocked: a fault in shim itself must still kill shim, and
/// a blocked synchronous fault would loop or be forced through anyway.
const FAULTS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// Signals held (blocked and left pending) since start-up, and the mask shim was started with.
pub struct HeldSignals {
    held: SigSet,
    original: SigSet,
}

/// How to run the app once it is spawned.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// Forward signals to the app's whole process group (`-g`).
    pub pgroup: bool,
    /// Stay as a subreaper even when not PID 1 (`--supervise`).
    pub supervise: bool,
    /// After the app exits, how long leftovers get between SIGTERM and SIGKILL (`--grace`).
    pub grace: Duration,
}

/// Block every catchable signal except the faults. Call this first: what arrives from now on
/// waits for the app (I5).
pub fn hold_signals() -> HeldSignals {
    let mut held = SigSet::all();
    for fault in FAULTS {
        held.remove(fault);
    }
    let original = held
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .expect("sigprocmask cannot fail with a valid set");
    HeldSignals { held, original }
}

/// Run the app and never return: exec it, or spawn and supervise it as the design says.
///
/// `argv` is the app's command as C strings: shim's own argv already holds them, so nothing is
/// copied to make them.
pub fn run(argv: &[&CStr], signals: HeldSignals, how: Supervision) -> ! {
    let pid1 = getpid().as_raw() == 1;
    if !pid1 && !how.supervise {
        // Not an init: become the app (I4). Restoring the start-up mask first lets a terminating
        // signal that arrived while we fixed DNS take its effect on shim now, before the exec (I5).
        // A SIGPIPE that our own log line raised (stderr a pipe nobody reads) is not one of those:
        // it would kill shim before the app starts (R5).
        let sigpipe_from_outside = discard_own_sigpipe();
        signals
            .original
            .thread_set_mask()
            .expect("restore signal mask");
        if sigpipe_from_outside {
            // SAFETY: plain kill(2) to ourselves, as the sender did.
            unsafe { libc::kill(getpid().as_raw(), libc::SIGPIPE) };
        }
        exec(argv);
    }
    if !pid1 {
        // Orphans of the app are re-parented to us rather than to the real PID 1, so we can reap
        // them and the app's whole tree is ours to end with --grace.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            warn!("--supervise: cannot become a child subreaper ({e}); orphans go to PID 1");
        }
    }
    let fd = SignalFd::with_flags(&signals.held, SfdFlags::SFD_CLOEXEC).unwrap_or_else(|e| {
        error!("cannot read signals (signalfd: {e}); not starting the app");
        exit(1)
    });
    let app = spawn(argv, &signals.original);
    shed_startup_pages();
    let status = supervise(&fd, app, how.pgroup);
    if !how.grace.is_zero() {
        end_leftovers(&fd, app, pid1, how.grace);
    }
    exit(status)
}

/// Take a pending SIGPIPE off (it is blocked); returns whether another process sent it.
fn discard_own_sigpipe() -> bool {
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    let no_wait = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut from_outside = false;
    loop {
        // SAFETY: zeroed siginfo_t is a valid out-parameter; the set and timespec are valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigtimedwait(set.as_ref(), &mut info, &no_wait) } < 0 {
            // EAGAIN: nothing (more) pending.
            return from_outside;
        }
        // SAFETY: SIGPIPE from write(2) or kill(2) carries the sender's pid.
        from_outside |= unsafe { info.si_pid() } != getpid().as_raw();
    }
}

/// Replace this process with the app. Returns only through exit: 127 not found, 126 not runnable.
fn exec(argv: &[&CStr]) -> ! {
    let err = execvp(argv[0], argv).unwrap_err();
    let name = argv[0].to_string_lossy();
    match err {
        Errno::ENOENT | Errno::ENOTDIR => {
            error!("{name}: command not found (is it in the image and on PATH?)");
            exit(127)
        }
        other => {
            error!("{name}: cannot execute: {}", other.desc());
            exit(126)
        }
    }
}

fn spawn(argv: &[&CStr], original_mask: &SigSet) -> Pid {
    // SAFETY: shim is single-threaded here (the probe's threads have been joined), so the child
    // may run any code before exec.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // Its own process group, so that -g reaches its children and a terminal can make it
            // the foreground group (I8). SIGTTOU is still blocked, so tcsetpgrp cannot stop us.
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let stdin = std::io::stdin();
            if isatty(stdin.as_fd()).unwrap_or(false) {
                let _ = tcsetpgrp(stdin.as_fd(), getpid());
            }
            // The app starts with the mask shim was started with (I6); handlers and the signalfd
            // do not survive exec.
            let _ = original_mask.thread_set_mask();
            exec(argv)
        }
        Ok(ForkResult::Parent { child }) => {
            // Both sides set the group, so a -g signal forwarded at once cannot miss it.
            let _ = setpgid(child, child);
            debug!("started {} as pid {child}", argv[0].to_string_lossy());
            child
        }
        Err(e) => {
            error!("cannot start the app: fork: {e}");
            exit(1)
        }
    }
}

/// Forward signals and reap children until the app exits; returns its exit status (I1..I3).
fn supervise(fd: &SignalFd, app: Pid, pgroup: bool) -> i32 {
    let me = getpid().as_raw();
    loop {
        let Some(info) = next_signal(fd) else {
            continue;
        };
        let signo = info.ssi_signo as c_int;
        if signo == libc::SIGCHLD {
            if let Some(status) = reap(Some(app)) {
                return status;
            }
        } else if info.ssi_pid as pid_t != me {
            // A SIGPIPE from our own write to a closed stderr is ours, not the app's.
            forward(signo, app, pgroup);
        }
    }
}

fn next_signal(fd: &SignalFd) -> Option<libc::signalfd_siginfo> {
    match fd.read_signal() {
        Ok(info) => info,
        Err(Errno::EINTR) => None,
        Err(e) => {
            error!("reading signals failed: {e}");
            exit(1)
        }
    }
}

fn forward(signo: c_int, app: Pid, pgroup: bool) {
    let target = if pgroup { -app.as_raw() } else { app.as_raw() };
    // libc::kill, not nix's: nix's Signal cannot name real-time signals, which we forward too.
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(target, signo) } != 0 {
        debug!("forwarding signal {signo} to {target}: {}", Errno::last());
    }
}

/// Reap every child that has exited (orphans included, I2). Returns the app's status once the
/// app is among them; with `app` None, returns Some(0) when no child is left at all.
fn reap(app: Option<Pid>) -> Option<i32> {
    let mut app_status = None;
    loop {
        let mut status: c_int = 0;
        // libc::waitpid, not nix's: nix cannot represent a death by a real-time signal.
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == 0 {
            return app_status;
        }
        if pid < 0 {
            // ECHILD: nobody left.
            return app_status.or(app.is_none().then_some(0));
        }
        if Some(pid) == app.map(Pid::as_raw) {
            app_status = Some(exit_status(status));
        }
    }
}

fn exit_status(status: c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// `--grace`: what the app left behind gets SIGTERM and time to run its shutdown handlers, then
/// SIGKILL. As PID 1 that is every process of the namespace; under --supervise, the app's
/// process group and the orphans re-parented to us.
fn end_leftovers(fd: &SignalFd, app: Pid, pid1: bool, grace: Duration) {
    let deadline = Instant::now() + grace;
    let mut signalled = Vec::new();
    signal_leftovers(libc::SIGTERM, app, pid1, &mut signalled);
    loop {
        if reap(None).is_some() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Orphans re-parented to us meanwhile get their SIGTERM too.
        signal_leftovers(libc::SIGTERM, app, pid1, &mut signalled);
        let timeout = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if let Ok(1..) = poll(&mut fds, timeout) {
            next_signal(fd);
        }
    }
    warn!(
        "--grace: processes still running after {} ms; killing them",
        grace.as_millis()
    );
    loop {
        signal_leftovers(libc::SIGKILL, app, pid1, &mut Vec::new());
        // SAFETY: a null status pointer is allowed.
        if unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } < 0 {
            return;
        }
    }
}

fn signal_leftovers(signo: c_int, app: Pid, pid1: bool, signalled: &mut Vec<pid_t>) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        if pid1 {
            // As PID 1, -1 means every process of the namespace but ourselves.
            if signalled.is_empty() || signo == libc::SIGKILL {
                libc::kill(-1, signo);
                signalled.push(-1);
            }
            return;
        }
        // The app's group (its background children), then orphans re-parented to us; each
        // once, so that a process running its TERM handler is not interrupted by another TERM.
        let group = -app.as_raw();
        for child in std::iter::once(group).chain(children()) {
            if !signalled.contains(&child) {
                libc::kill(child, signo);
                signalled.push(child);
            }
        }
    }
}

/// Our direct children, from /proc (empty when /proc is not mounted).
fn children() -> Vec<pid_t> {
    let me = getpid();
    std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// While it waits, shim needs a few pages of its own code. Start-up touched many more, and the
/// kernel's fault-around mapped up to 16 neighbours for each: most of the binary ends up in our
/// RSS. Drop the read-only segments' pages from our page tables (they stay in the page cache:
/// nothing is lost) and turn fault-around off for them (MADV_RANDOM), so that only the pages the
/// wait loop runs come back, one at a time.
fn shed_startup_pages() {
    // SAFETY: AT_PHDR points at our own program headers, AT_PHNUM of them; the ranges advised are
    // our read-only PT_LOAD segments, whose pages can be dropped and faulted in again at will.
    unsafe {
        let phdr = libc::getauxval(libc::AT_PHDR) as *const libc::Elf64_Phdr;
        let phnum = libc::getauxval(libc::AT_PHNUM) as usize;
        if phdr.is_null() {
            return;
        }
        let headers = std::slice::from_raw_parts(phdr, phnum);
        // The load bias: 0 for a static executable, the load address for a static PIE.
        let bias = headers
            .iter()
            .find(|h| h.p_type == libc::PT_PHDR)
            .map_or(0, |h| phdr as usize - h.p_vaddr as usize);
        for h in headers {
            if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
                continue;
            }
            let start = (bias + h.p_vaddr as usize) & !4095;
            let end = (bias + (h.p_vaddr + h.p_memsz) as usize + 4095) & !4095;
            let addr = start as *mut libc::c_void;
            libc::madvise(addr, end - start, libc::MADV_RANDOM);
            libc::madvise(addr, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Does shim stay as the app's parent (and so can keep a proxy alive)? As PID 1 it always does
/// (I1); elsewhere only with `--supervise`, since it execs the app otherwise (I4).
pub fn stays_parent(supervise: bool) -> bool {
    supervise || getpid().as_raw() == 1
}
