//! Running the app: exec it, or stay as its init (rules I1..I9 of DESIGN.md).
//!
//! Like tini and catatonit, shim blocks every signal it can from its first instruction and reads
//! them synchronously from a signalfd: no handler runs at an arbitrary point, nothing is lost
//! while the resolv.conf fix or the probe runs (I5), and between signals shim sleeps in one
//! blocking read, with no timer (I9). Only after the app has exited does shim wait with a
//! deadline (`--grace`), and every such wait has one.

use std::ffi::CStr;
use std::os::fd::AsFd;
use std::process::exit;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc::{self, c_int, pid_t};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{
    execvp, fork, getpgrp, getpid, isatty, setpgid, tcgetpgrp, tcsetpgrp, ForkResult, Pid,
};

use crate::cli::Codes;
use crate::{debug, error, warn};

/// The kernel's fault signals. Held and read like every other signal: when the kernel raises one
/// for a fault of shim itself, it never reaches the signalfd (see `hold_signals`).
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
pub struct Supervision<'a> {
    /// Forward signals to the app's whole process group (`-g`).
    pub pgroup: bool,
    /// Stay as a subreaper even when not PID 1 (`--supervise`, and what needs a parent).
    pub supervise: bool,
    /// After the app exits, how long leftovers get between SIGTERM and SIGKILL (`--grace`).
    pub grace: Duration,
    /// After the app exits, SIGTERM to leftovers and no wait (`--term-leftovers`).
    pub term_leftovers: bool,
    /// Signals forwarded as another, 0 for none (`-r`).
    pub rewrite: &'a [(c_int, c_int)],
    /// The app's statuses reported as 0 (`-e`).
    pub exit_zero: Codes,
    /// The parent-death signal, when the parent was gone before the kernel could send it.
    pub orphaned: Option<c_int>,
}

/// Block every catchable signal. Call this first: what arrives from now on waits for the app (I5).
///
/// The fault signals are blocked too, so that one sent with kill(2) (`docker kill -s ABRT` for a
/// core dump) waits in the signalfd and is forwarded, instead of killing shim and orphaning the
/// app (or being dropped by the kernel when we are PID 1). A real fault of shim still ends shim
/// with its default action: for a synchronous fault (bad pointer, division by zero, illegal
/// instruction, seccomp) the kernel's force_sig_info unblocks the signal and resets it to
/// SIG_DFL, and clears PID 1's protection against it, before delivering it; abort() unblocks
/// SIGABRT itself, in musl and in glibc. Neither ever waits in the signalfd.
pub fn hold_signals() -> HeldSignals {
    let held = SigSet::all();
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
        if let Some(signo) = how.orphaned {
            // I12: pending until the mask is restored, it takes its effect on shim as on the app.
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(signo) };
        }
        signals
            .original
            .thread_set_mask()
            .expect("restore signal mask");
        if sigpipe_from_outside {
            let _ = nix::sys::signal::raise(Signal::SIGPIPE);
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
    let sigchld_ignored = take_sigchld();
    let app = spawn(argv, &signals.original, sigchld_ignored);
    shed_startup_pages();
    if let Some(signo) = how.orphaned {
        // Our parent died before the kernel was asked to tell us: it is told now, as if it had
        // (I12).
        pass_on(signo, app, &how);
    }
    // Job control is a shell's, for a shim under a shell; as PID 1 none of it applies (I1, I13).
    let jobs = (!pid1).then(|| Jobs {
        tty: isatty(std::io::stdin().as_fd()).unwrap_or(false),
    });
    let status = supervise(&fd, app, &how, jobs);
    if !how.grace.is_zero() {
        end_leftovers(&fd, app, pid1, how.grace);
    } else if how.term_leftovers {
        // dumb-init's end (H2): every leftover is told, none is waited for. As PID 1, our exit then
        // makes the kernel SIGKILL the rest of the namespace, as it does after dumb-init.
        leftovers(app, pid1).signal(Signal::SIGTERM, &mut Vec::new());
    }
    if how.exit_zero.contains(status) {
        // I11: tini's -e, for an app whose stop by SIGTERM (143) is no failure.
        debug!("the app's status {status} is reported as 0 (--exit-zero)");
        exit(0)
    }
    exit(status)
}

/// Set SIGCHLD to its default for shim; returns whether it was ignored.
///
/// SIG_IGN survives exec, so a parent that ignores SIGCHLD (some shells, daemons, `env
/// --ignore-signal`) hands it to us. Then the kernel reaps our children itself and queues no
/// SIGCHLD, even blocked: shim would wait for the app forever. Blocked and SIG_DFL, SIGCHLD waits
/// in the signalfd. The app gets SIG_IGN back before its exec (I6).
fn take_sigchld() -> bool {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: no handler is installed, only the default disposition.
    unsafe { sigaction(Signal::SIGCHLD, &default) }
        .is_ok_and(|old| old.handler() == SigHandler::SigIgn)
}

/// Take a pending SIGPIPE off (it is blocked); returns whether another process sent it. A
/// non-blocking signalfd reads the pending signal with its sender, as sigtimedwait would.
fn discard_own_sigpipe() -> bool {
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    let Ok(fd) = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) else {
        return false;
    };
    let me = getpid().as_raw();
    let mut from_outside = false;
    // Ok(None): nothing (more) pending.
    while let Ok(Some(info)) = fd.read_signal() {
        from_outside |= info.ssi_pid as pid_t != me;
    }
    from_outside
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

fn spawn(argv: &[&CStr], original_mask: &SigSet, sigchld_ignored: bool) -> Pid {
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
            // The app starts with the mask and the ignored signals shim was started with (I6);
            // handlers and the signalfd do not survive exec.
            if sigchld_ignored {
                // SAFETY: SIG_IGN installs no handler.
                let _ = unsafe { nix::sys::signal::signal(Signal::SIGCHLD, SigHandler::SigIgn) };
            }
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
fn supervise(fd: &SignalFd, app: Pid, how: &Supervision, jobs: Option<Jobs>) -> i32 {
    let me = getpid().as_raw();
    loop {
        let Some(info) = next_signal(fd) else {
            continue;
        };
        let signo = info.ssi_signo as c_int;
        if signo == libc::SIGCHLD {
            // Before the reaping: a stop is reported only to a wait that asks for stops.
            let exited = jobs
                .as_ref()
                .filter(|jobs| jobs.tty)
                .and_then(|jobs| jobs.follow_the_app(app));
            if let Some(status) = reap(Some(app)).or(exited) {
                return status;
            }
        } else if is_for_the_app(signo, info.ssi_code, info.ssi_pid as pid_t, me) {
            pass_on(signo, app, how);
            if let Some(jobs) = &jobs {
                if matches!(signo, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) {
                    // dumb-init's rule: a stop meant for the job stops shim too.
                    jobs.stop_with(app);
                }
            }
        } else {
            debug!("signal {signo} (code {}) is not for the app", info.ssi_code);
        }
    }
}

/// Whether a signal shim received (not SIGCHLD) is meant for the app.
///
/// Not when shim sent it itself: a SIGPIPE from our own write to a closed stderr. A fault signal
/// only when a process sent it (kill, sigqueue, tgkill: si_code <= 0); one the kernel raised
/// without forcing it (SIGBUS BUS_MCEERR_AO: a memory error in a page we map but are not using)
/// is about shim's memory, not the app's, and is harmless: touching the page raises a forced one.
fn is_for_the_app(signo: c_int, code: i32, sender: pid_t, me: pid_t) -> bool {
    if sender == me {
        return false;
    }
    let fault = FAULTS.iter().any(|&f| f as c_int == signo);
    !fault || code <= 0
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

/// Forward a signal shim received, rewritten as `-r` asks (I10).
fn pass_on(signo: c_int, app: Pid, how: &Supervision) {
    match how.rewrite.iter().find(|&&(from, _)| from == signo) {
        None => forward(signo, app, how.pgroup),
        Some(&(_, 0)) => debug!("signal {signo} dropped (--rewrite)"),
        Some(&(_, to)) => forward(to, app, how.pgroup),
    }
}

/// Job control for a shim that a shell started (not PID 1, I13): the shell waits for shim, not
/// for the app, so shim's state is what the shell shows.
struct Jobs {
    /// stdin is a terminal: the app's group is its foreground group while it runs (I8).
    tty: bool,
}

impl Jobs {
    /// On a SIGCHLD: if the app has stopped (Ctrl-Z sends SIGTSTP to the terminal's foreground
    /// group, which is the app's, not ours), stop with it. Returns the app's status if this wait
    /// found it exited instead.
    fn follow_the_app(&self, app: Pid) -> Option<i32> {
        let mut status: c_int = 0;
        // SAFETY: status is a valid out-pointer.
        let pid =
            unsafe { libc::waitpid(app.as_raw(), &mut status, libc::WUNTRACED | libc::WNOHANG) };
        if pid != app.as_raw() {
            return None;
        }
        if libc::WIFSTOPPED(status) {
            self.stop_with(app);
            return None;
        }
        Some(exit_status(status))
    }

    /// Stop shim, so that the shell sees its job stopped and takes the terminal back; once
    /// continued, hand the terminal back to the app if the shell gave it to us (`fg`, not `bg`),
    /// and continue the app's group, which the shell does not know of.
    fn stop_with(&self, app: Pid) {
        debug!("the app stopped: stopping too, for the shell");
        // SIGSTOP cannot be blocked; kill returns once we have been continued.
        let _ = nix::sys::signal::kill(getpid(), Signal::SIGSTOP);
        if self.tty {
            let stdin = std::io::stdin();
            if tcgetpgrp(stdin.as_fd()) == Ok(getpgrp()) {
                // SIGTTOU is blocked: a background tcsetpgrp cannot stop us here.
                let _ = tcsetpgrp(stdin.as_fd(), app);
            }
        }
        let _ = nix::sys::signal::killpg(app, Signal::SIGCONT);
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
    let leftovers = leftovers(app, pid1);
    let mut signalled = Vec::new();
    let term = || leftovers.signal(Signal::SIGTERM, &mut signalled);
    if reap_all_within(fd, grace, term) {
        return;
    }
    warn!(
        "--grace: processes still running after {} ms; killing them",
        grace.as_millis()
    );
    let kill = || leftovers.signal(Signal::SIGKILL, &mut Vec::new());
    if reap_all_within(fd, AFTER_SIGKILL, kill) {
        return;
    }
    let (n, them) = match leftovers.children().map(|c| c.len()) {
        Some(1) => ("1 process".to_owned(), "it"),
        Some(n) => (format!("{n} processes"), "them"),
        None => ("processes".to_owned(), "them"),
    };
    warn!(
        "--grace: {n} still running after SIGKILL and {} ms (not shim's to signal, or stuck in \
         the kernel); exiting without {them}",
        AFTER_SIGKILL.as_millis()
    );
}

/// How long shim waits for its children once it has sent them SIGKILL. SIGKILL takes effect at
/// once wherever it is allowed; what outlives it is a process shim may not signal (another
/// user's, e.g. a root `docker exec` orphaned to a shim running as `--user`) or one in
/// uninterruptible sleep (a hung NFS or FUSE request, a core dump being written). Waiting longer
/// changes neither; 1 s lets the kernel tear the killed ones down (even gigabytes of memory take
/// far less) and stays well within Docker's 10 s stop timeout. As PID 1, our exit then makes the
/// kernel kill whatever is left of the namespace.
const AFTER_SIGKILL: Duration = Duration::from_secs(1);

/// Reap children until none is left (true) or `limit` has passed (false), sleeping in poll(2) on
/// the signalfd between SIGCHLDs. `nudge` runs before each wait: it signals the orphans
/// re-parented to us meanwhile.
fn reap_all_within(fd: &SignalFd, limit: Duration, mut nudge: impl FnMut()) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        nudge();
        if reap(None).is_some() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let timeout = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if let Ok(1..) = poll(&mut fds, timeout) {
            next_signal(fd);
        }
    }
}

fn leftovers(app: Pid, pid1: bool) -> Leftovers {
    Leftovers {
        app,
        pid1,
        proc_is_ours: proc_is_ours(),
    }
}

/// Who `--grace` and `--term-leftovers` signal.
struct Leftovers {
    app: Pid,
    pid1: bool,
    /// /proc lists PIDs of our own namespace: its children of ours are ours to signal.
    proc_is_ours: bool,
}

impl Leftovers {
    fn signal(&self, signal: Signal, signalled: &mut Vec<pid_t>) {
        // A process we may not signal (another user's, under --user) or one gone meanwhile is
        // no error here: the deadline after SIGKILL bounds the wait for it.
        let send = |pid: pid_t| {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        };
        if self.pid1 {
            // As PID 1, -1 means every process of the namespace but ourselves.
            if signalled.is_empty() || signal == Signal::SIGKILL {
                send(-1);
                signalled.push(-1);
            }
            return;
        }
        // The app's group (its background children), then orphans re-parented to us; each
        // once, so that a process running its TERM handler is not interrupted by another TERM.
        let group = -self.app.as_raw();
        let children = self.children().unwrap_or_default();
        for child in std::iter::once(group).chain(children) {
            if !signalled.contains(&child) {
                send(child);
                signalled.push(child);
            }
        }
    }

    /// Our direct children, from /proc; None when no /proc of our namespace is mounted.
    fn children(&self) -> Option<Vec<pid_t>> {
        if !self.proc_is_ours {
            return None;
        }
        let list = std::fs::read_to_string("/proc/thread-self/children").ok()?;
        Some(
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
        )
    }
}

/// Whether /proc belongs to our own PID namespace. A /proc mounted for another one (a container
/// sharing the host's /proc, a PID namespace made without remounting it) names other processes
/// by the numbers we use for ours: signalling its PIDs would hit strangers. /proc/thread-self
/// resolves to us as the /proc's namespace sees us (ENOENT if it does not see us at all), and its
/// NSpid line lists our PID in each namespace from that one down to ours.
fn proc_is_ours() -> bool {
    std::fs::read("/proc/thread-self/status")
        .is_ok_and(|status| nspid_is_only(&status, getpid().as_raw()))
}

/// Whether a /proc/<pid>/status text's NSpid line names exactly one namespace, with `pid` in it.
fn nspid_is_only(status: &[u8], pid: pid_t) -> bool {
    let Some(line) = status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"NSpid:"))
    else {
        return false;
    };
    let mut pids = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    pids.next() == Some(pid.to_string().as_bytes()) && pids.next().is_none()
}

/// The ELF program header of this machine's word size (i686's differs from x86_64's and arm64's).
#[cfg(target_pointer_width = "64")]
type ProgramHeader = libc::Elf64_Phdr;
#[cfg(target_pointer_width = "32")]
type ProgramHeader = libc::Elf32_Phdr;

/// While it waits, shim needs a few pages of its own code. Start-up touched many more, and the
/// kernel's fault-around mapped up to 16 neighbours for each: most of the binary ends up in our
/// RSS. Drop the read-only segments' pages from our page tables (they stay in the page cache:
/// nothing is lost), so that only what the wait loop runs comes back. MADV_RANDOM asks for no
/// readahead; it does not stop fault-around on current kernels, so each page the loop touches
/// still brings up to 16 neighbours (DESIGN.md, "Shedding start-up pages").
///
/// Never inlined: scripts/link-order profiles what runs from its call on, by its name.
#[inline(never)]
fn shed_startup_pages() {
    // WHY collect first: the program headers lie in the first read-only segment. Reading the next
    // header after that segment was dropped faulted its first 16 pages (64 KiB) back in.
    let mut ranges = [(0usize, 0usize); 4];
    let mut count = 0;
    // SAFETY: AT_PHDR points at our own program headers, AT_PHNUM of them.
    unsafe {
        let phdr = libc::getauxval(libc::AT_PHDR) as *const ProgramHeader;
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
        let read_only = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
        for (slot, h) in ranges.iter_mut().zip(read_only) {
            let (vaddr, memsz) = (h.p_vaddr as usize, h.p_memsz as usize);
            let start = (bias + vaddr) & !4095;
            let end = (bias + vaddr + memsz + 4095) & !4095;
            *slot = (start, end - start);
            count += 1;
        }
    }
    for &(start, length) in ranges.iter().take(count) {
        let addr = start as *mut libc::c_void;
        // SAFETY: the ranges are our read-only PT_LOAD segments, whose pages can be dropped and
        // faulted in again at will.
        unsafe {
            libc::madvise(addr, length, libc::MADV_RANDOM);
            libc::madvise(addr, length, libc::MADV_DONTNEED);
        }
    }
}

/// `--pdeathsig` (I12): ask the kernel for `signo` when our parent dies. Returns true when the parent
/// is already gone: one that died before the prctl is never reported by the kernel, but it left
/// us with another parent than the one seen first (`parent`).
///
/// The kernel clears the setting when the process's credentials change (`--user`), so it is
/// asked for again after the switch; an exec keeps it (but for a set-user-ID program).
pub fn watch_parent(signo: c_int, parent: Pid) -> bool {
    // libc's prctl, not nix's: nix's Signal cannot name a real-time signal.
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signo as libc::c_ulong) } != 0 {
        warn!("--pdeathsig: {}", Errno::last());
    }
    nix::unistd::getppid() != parent
}

/// Does shim stay as the app's parent (and so can keep a proxy alive)? As PID 1 it always does
/// (I1); elsewhere only with `--supervise`, since it execs the app otherwise (I4).
pub fn stays_parent(supervise: bool) -> bool {
    supervise || getpid().as_raw() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_signal_is_forwarded_only_when_a_process_sent_it() {
        let (me, other, outside_our_namespace) = (1, 42, 0);
        for fault in [libc::SIGSEGV, libc::SIGABRT, libc::SIGBUS, libc::SIGSYS] {
            assert!(is_for_the_app(fault, libc::SI_USER, other, me));
            assert!(is_for_the_app(
                fault,
                libc::SI_USER,
                outside_our_namespace,
                me
            ));
            assert!(is_for_the_app(fault, libc::SI_QUEUE, other, me));
            assert!(is_for_the_app(fault, libc::SI_TKILL, other, me));
            assert!(!is_for_the_app(fault, libc::SI_TKILL, me, me));
            // BUS_MCEERR_AO (5), SEGV_MAPERR (1), SI_KERNEL (0x80): the kernel's, about shim.
            assert!(!is_for_the_app(fault, 5, 0, me));
            assert!(!is_for_the_app(fault, 1, 0, me));
            assert!(!is_for_the_app(fault, 0x80, 0, me));
        }
    }

    #[test]
    fn other_signals_are_forwarded_unless_shim_sent_them() {
        assert!(is_for_the_app(libc::SIGTERM, libc::SI_USER, 0, 1));
        // SIGWINCH from the terminal driver: SI_KERNEL.
        assert!(is_for_the_app(libc::SIGWINCH, 0x80, 0, 1));
        assert!(is_for_the_app(40, libc::SI_QUEUE, 7, 1));
        // The SIGPIPE of our own write to a closed stderr: the kernel sends it as if from us.
        assert!(!is_for_the_app(libc::SIGPIPE, libc::SI_USER, 1, 1));
    }

    #[test]
    fn proc_is_ours_only_when_nspid_names_one_namespace_and_us() {
        let status = |nspid: &str| format!("Name:\tshim\nTgid:\t7\nNSpid:{nspid}\nPPid:\t1\n");
        assert!(nspid_is_only(status("\t7").as_bytes(), 7));
        assert!(nspid_is_only(status("\t1").as_bytes(), 1));
        // The /proc of an ancestor namespace: our PID there, then ours.
        assert!(!nspid_is_only(status("\t5210\t2").as_bytes(), 2));
        assert!(!nspid_is_only(status("\t2\t2").as_bytes(), 2));
        // Another process altogether, or a kernel without NSpid (before 4.1).
        assert!(!nspid_is_only(status("\t70").as_bytes(), 7));
        assert!(!nspid_is_only(b"Name:\tshim\nPid:\t7\n", 7));
        // A non-UTF-8 name does not hide the line.
        assert!(nspid_is_only(b"Name:\t\xff\nNSpid:\t9\n", 9));
    }
}
