//! shim as an init (rules I1..I9): run as PID 1 of a new PID namespace, as `docker run` does,
//! and not as PID 1 (exec, or --supervise). Each test asserts what the app or the kernel saw.

mod common;

use common::pid1::{self, Pid1, NEW_PID_NAMESPACE};
use common::process::{kill, status_field, PidFileGuard};
use common::{first_child, output_within, wait_for, ChildGuard, TempDir};

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::libc;

/// shim's command line, with an empty resolv.conf so that the fix has nothing to do.
fn shim_args(args: &[&str]) -> Vec<String> {
    let mut all = vec![common::shim().to_str().unwrap().to_owned()];
    all.extend(["--resolv-conf", "/dev/null"].map(String::from));
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// `unshare --pid --fork --mount-proc shim ARGS`: shim is PID 1 of a new PID namespace.
fn as_pid1(args: &[&str]) -> Command {
    pid1::command(shim_args(args).into_iter().skip(1))
}

fn start_pid1(args: &[&str]) -> Pid1 {
    Pid1::start(as_pid1(args))
}

#[test]
fn the_exit_status_is_the_apps() {
    if !common::require_root() {
        return;
    }
    let cases = [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
    ];
    for (script, expected) in cases {
        let out = common::output(&mut as_pid1(&["--", "/bin/sh", "-c", script]));
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{script}: {}",
            common::stderr(&out)
        );
    }
    let out = common::output(&mut as_pid1(&["--", "/no/such/app"]));
    assert_eq!(out.status.code(), Some(127));
    let out = common::output(&mut as_pid1(&["--", "/proc/self/status"]));
    assert_eq!(out.status.code(), Some(126));
}

#[test]
fn every_signal_sent_to_shim_reaches_the_app() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let log = dir.path("log");
    let app = dir.script(
        "app",
        "log=$1\n\
         for s in TERM INT HUP QUIT USR1 USR2 WINCH; do trap \"echo $s >> $log\" $s; done\n\
         trap \"echo RT40 >> $log\" 40\n\
         echo ready >> $log\n\
         while [ ! -e $log.stop ]; do sleep 0.02; done\n\
         exit 7\n",
    );
    let shim = start_pid1(&["--", &app, log.to_str().unwrap()]);
    wait_for(
        || dir.read("log").contains("ready").then_some(()),
        "the app",
    );
    let sent = [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGWINCH, "WINCH"),
        (40, "RT40"),
    ];
    for (signo, name) in sent {
        shim.signal(signo);
        wait_for(
            || dir.read("log").lines().any(|l| l == name).then_some(()),
            name,
        );
    }
    fs::write(dir.path("log.stop"), "").unwrap();
    let out = shim.wait();
    assert_eq!(out.status.code(), Some(7), "{}", common::stderr(&out));
}

#[test]
fn the_app_inherits_the_mask_ignored_signals_and_fds_shim_was_started_with() {
    if !common::require_root() {
        return;
    }
    // Start everything with SIGUSR1 blocked and SIGHUP ignored, as a parent might. The apps are
    // not shells: dash clears the signal mask when it starts.
    let run = |with_shim: bool, pid1: bool, app: &[&str]| -> String {
        let mut cmd = if with_shim && pid1 {
            as_pid1(&[&["--"], app].concat())
        } else if with_shim {
            let mut cmd = common::shim_command();
            cmd.args(["--resolv-conf", "/dev/null", "--"]).args(app);
            cmd
        } else {
            let mut cmd = Command::new(app[0]);
            cmd.args(&app[1..]);
            cmd
        };
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
        let out = common::output(&mut cmd);
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out)
    };
    let signals = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
    let fds = ["ls", "/proc/self/fd"];
    let state = run(false, false, &signals);
    assert!(state.contains("SigBlk:\t0000000000000200"), "{state}");
    assert!(
        state
            .lines()
            .any(|l| l.starts_with("SigIgn") && l.ends_with('1')),
        "{state}"
    );
    let open = run(false, false, &fds);
    for pid1 in [false, true] {
        assert_eq!(
            run(true, pid1, &signals),
            state,
            "signal state, pid1={pid1}"
        );
        assert_eq!(run(true, pid1, &fds), open, "open fds, pid1={pid1}");
    }
}

#[test]
fn a_thousand_orphans_leave_no_zombie() {
    if !common::require_root() {
        return;
    }
    let script = "i=0; while [ $i -lt 1000 ]; do sh -c 'true &'; i=$((i+1)); done\n\
                  sleep 0.5\n\
                  z=0; for f in /proc/[0-9]*/stat; do\n\
                    set -- $(cat $f 2>/dev/null); [ \"$3\" = Z ] && z=$((z+1))\n\
                  done\n\
                  echo zombies=$z";
    let out = common::output(&mut as_pid1(&["--", "/bin/sh", "-c", script]));
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "zombies=0");
}

#[test]
fn pgroup_forwards_to_the_apps_children_too() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let log = dir.path("log");
    let app = dir.script(
        "app",
        "log=$1; shift\n\
         (trap \"echo child-got-term >> $log; exit 0\" TERM; echo child-armed >> $log;\n\
          while :; do sleep 0.02; done) &\n\
         bg=$!\n\
         trap \"$*\" TERM\n\
         until grep -q child-armed $log; do sleep 0.01; done\n\
         echo ready >> $log\n\
         while :; do sleep 0.02; done\n",
    );
    let log_arg = log.to_str().unwrap();
    // With -g the child in the app's group gets the TERM; the app waits for it, then exits.
    let shim = start_pid1(&["-g", "--", &app, log_arg, "wait $bg; exit 3"]);
    wait_for(
        || dir.read("log").contains("ready").then_some(()),
        "the app",
    );
    shim.signal(libc::SIGTERM);
    let out = shim.wait();
    assert_eq!(out.status.code(), Some(3));
    assert!(dir.read("log").contains("child-got-term"));

    // Without -g only the app gets it.
    fs::remove_file(&log).unwrap();
    let shim = start_pid1(&["--", &app, log_arg, "sleep 0.3; exit 4"]);
    wait_for(
        || dir.read("log").contains("ready").then_some(()),
        "the app",
    );
    shim.signal(libc::SIGTERM);
    let out = shim.wait();
    assert_eq!(out.status.code(), Some(4));
    assert!(!dir.read("log").contains("child-got-term"));
}

#[test]
fn grace_lets_leftovers_run_their_term_handler() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let log = dir.path("log");
    let app = dir.script(
        "app",
        "log=$1\n\
         (trap \"sleep 0.2; echo cleaned-up >> $log; exit 0\" TERM; echo armed >> $log;\n\
          while :; do sleep 0.02; done) &\n\
         until grep -q armed $log; do sleep 0.01; done\n\
         exit 5\n",
    );
    let out = common::output(&mut as_pid1(&[
        "--grace",
        "2000",
        "--",
        &app,
        log.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(5), "{}", common::stderr(&out));
    assert_eq!(dir.read("log"), "armed\ncleaned-up\n");

    // Without --grace, PID 1 exits at once and the kernel kills the rest: no handler runs.
    fs::remove_file(&log).unwrap();
    let out = common::output(&mut as_pid1(&["--", &app, log.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dir.read("log"), "armed\n");
}

#[test]
fn grace_kills_what_ignores_sigterm() {
    if !common::require_root() {
        return;
    }
    let app = "(trap '' TERM; exec sleep 60) & sleep 0.1; exit 6";
    let started = Instant::now();
    let out = common::output(&mut as_pid1(&[
        "--grace", "300", "--", "/bin/sh", "-c", app,
    ]));
    assert_eq!(out.status.code(), Some(6));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "shim waited for the sleep"
    );
    assert!(
        common::stderr(&out).contains("--grace"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn shim_sleeps_while_the_app_runs() {
    if !common::require_root() {
        return;
    }
    let shim = start_pid1(&["--", "/bin/sleep", "2.5"]);
    std::thread::sleep(Duration::from_millis(400));
    let before = status_field(shim.shim, "voluntary_ctxt_switches:").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let after = status_field(shim.shim, "voluntary_ctxt_switches:").unwrap();
    assert_eq!(before, after, "shim woke up while the app slept");
    assert_eq!(shim.wait().status.code(), Some(0));
}

#[test]
fn not_pid1_shim_becomes_the_app_silently() {
    let mut cmd = common::shim_command();
    cmd.args([
        "--resolv-conf",
        "/nonexistent",
        "--",
        "/bin/sh",
        "-c",
        "echo $$",
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        common::stdout(&out).trim(),
        pid.to_string(),
        "the app runs under shim's PID"
    );
    assert!(
        common::stderr(&out).lines().all(|l| !l.contains("PID 1")),
        "no warning about not being PID 1: {}",
        common::stderr(&out)
    );
}

#[test]
fn supervise_stays_reaps_and_forwards() {
    let dir = TempDir::new();
    let log = dir.path("log");
    // The app leaves an orphan that exits soon; shim, its subreaper, must reap it. Then the app
    // lists its parent's children: itself only, no zombie.
    let app = dir.script(
        "app",
        "log=$1\n\
         trap \"echo got-term >> $log; exit 9\" TERM\n\
         sh -c 'sleep 0.1 &'\n\
         sleep 0.5\n\
         echo parent=$PPID children=$(cat /proc/$PPID/task/$PPID/children) self=$$ >> $log\n\
         echo ready >> $log\n\
         while :; do sleep 0.02; done\n",
    );
    let mut cmd = common::shim_command();
    cmd.args([
        "-q",
        "--resolv-conf",
        "/nonexistent",
        "--supervise",
        "--",
        &app,
    ])
    .arg(&log)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut cmd);
    let shim_pid = child.pid();
    wait_for(
        || dir.read("log").contains("ready").then_some(()),
        "the app",
    );
    let report = dir.read("log");
    let line = report.lines().find(|l| l.starts_with("parent=")).unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(
        fields[0],
        format!("parent={shim_pid}"),
        "the app is shim's child"
    );
    let self_pid = fields[2].trim_start_matches("self=");
    assert_eq!(
        fields[1],
        format!("children={self_pid}"),
        "the orphan was reaped"
    );
    kill(shim_pid, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(9));
    assert!(dir.read("log").contains("got-term"));
}

#[test]
fn under_a_terminal_the_app_is_the_foreground_group() {
    if !common::require(Path::new("/usr/bin/script").exists(), "script(1)") {
        return;
    }
    let inner = shim_args(&["--", "/bin/sh", "-c", "read -r pid comm state ppid pgrp session tty tpgid rest < /proc/$$/stat; echo pgrp=$pgrp tpgid=$tpgid"]);
    let quoted: Vec<String> = inner
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let out = common::output(common::clean_command("script").args([
        "-qec",
        &quoted.join(" "),
        "/dev/null",
    ]));
    let text = common::stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("pgrp="))
        .unwrap_or_else(|| panic!("{text}"));
    let (pgrp, tpgid) = line.trim().split_once(' ').unwrap();
    assert_eq!(
        pgrp.trim_start_matches("pgrp="),
        tpgid.trim_start_matches("tpgid="),
        "{line}"
    );
}

/// shim started with a start-up that lasts its `--probe-timeout` (3 s): in a network namespace
/// of its own, a DNS query to 192.0.2.53 waits for an ARP answer that never comes (a veth pair
/// with both ends in the namespace, nobody holding the address). Killed on drop.
struct SlowStart {
    unshare: ChildGuard,
    shim: i32,
}

impl SlowStart {
    /// `unshare --net UNSHARE_FLAGS -- sh -c SETUP shim --probe ... SHIM_ARGS`.
    fn start(dir: &TempDir, unshare_flags: &[&str], shim_args: &[&str]) -> SlowStart {
        let resolv = dir.path("resolv.conf");
        fs::write(&resolv, "nameserver 192.0.2.53\n").unwrap();
        let setup = "ip link set lo up && ip link add v0 type veth peer name v1 && \
                     ip addr add 192.0.2.1/24 dev v0 && ip link set v0 up && ip link set v1 up && \
                     exec \"$0\" \"$@\"";
        let mut cmd = common::clean_command("unshare");
        cmd.arg("--net")
            .args(unshare_flags)
            .args(["--", "sh", "-c", setup]);
        cmd.arg(common::shim())
            .args(["-q", "--resolv-conf"])
            .arg(&resolv);
        cmd.args(["--probe", "example.com", "--probe-timeout", "3000"]);
        cmd.args(shim_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let unshare = ChildGuard::spawn(&mut cmd);
        let pid = unshare.pid();
        // Without --fork the shell execs shim in unshare's own process; with it, in its child.
        let shim = wait_for(
            || {
                std::iter::once(pid)
                    .chain(first_child(pid))
                    .find(|&p| is_shim(p))
            },
            "shim",
        );
        SlowStart { unshare, shim }
    }

    /// SIGTERM to shim while it is still waiting for the probe.
    fn terminate_during_start(&self) {
        self.signal_during_start(libc::SIGTERM);
    }

    fn signal_during_start(&self, signo: i32) {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2).
        unsafe { libc::kill(self.shim, signo) };
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.unshare.wait().unwrap()
    }
}

fn is_shim(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "shim")
}

#[test]
fn a_sigterm_during_a_slow_start_reaches_the_app() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let mut start = SlowStart::start(&dir, &NEW_PID_NAMESPACE, &["--", "/bin/sleep", "20"]);
    start.terminate_during_start();
    assert!(
        first_child(start.shim).is_none(),
        "the app started before the probe ended"
    );
    let started = Instant::now();
    // The app (sleep 20) died of the SIGTERM shim held for it: 128 + 15, long before 20 s.
    assert_eq!(start.wait().code(), Some(143));
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_sigterm_during_a_slow_start_reaches_the_app_under_supervise() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let args = ["--supervise", "--", "/bin/sleep", "20"];
    let mut start = SlowStart::start(&dir, &[], &args);
    start.terminate_during_start();
    assert_eq!(start.wait().code(), Some(143));
}

#[test]
fn a_sigterm_during_a_slow_start_ends_shim_before_the_exec() {
    use std::os::unix::process::ExitStatusExt;
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let marker = dir.path("app-ran");
    let app = format!("touch {}", marker.display());
    let mut start = SlowStart::start(&dir, &[], &["--", "/bin/sh", "-c", &app]);
    start.terminate_during_start();
    let status = start.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(
        !marker.exists(),
        "the app ran although shim was told to terminate"
    );
}

#[test]
fn started_with_sigchld_ignored_shim_still_sees_the_app_exit() {
    if !common::require_root() {
        return;
    }
    // With SIGCHLD ignored the kernel reaps children itself and queues no SIGCHLD: shim must
    // reset it for itself, and still hand the app the disposition it found (I6). The app prints
    // its ignored set and exits 7 (GNU sed's `q` takes an exit code).
    let app = [
        "sed",
        "-n",
        "-e",
        "/^SigIgn/p",
        "-e",
        "$q7",
        "/proc/self/status",
    ];
    let sigchld_ignored = |out: &Output| {
        let text = common::stdout(out);
        let mask = text
            .trim()
            .strip_prefix("SigIgn:")
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no SigIgn line: {text:?}"));
        mask & (1 << (libc::SIGCHLD - 1)) != 0
    };

    // --kill-child: a shim that hangs dies with unshare when the time is up.
    let mut cmd = common::clean_command("unshare");
    cmd.args(NEW_PID_NAMESPACE)
        .args(["--kill-child", "--"])
        .args(["env", "--ignore-signal=CHLD"])
        .args(shim_args(&[&["--"], &app[..]].concat()));
    let out = output_within(&mut cmd, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(7), "{}", common::stderr(&out));
    assert!(sigchld_ignored(&out), "PID 1: the app lost SIG_IGN");

    let mut cmd = common::clean_command("env");
    cmd.arg("--ignore-signal=CHLD")
        .args(shim_args(&[&["--supervise", "--"], &app[..]].concat()));
    let out = output_within(&mut cmd, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(7), "{}", common::stderr(&out));
    assert!(sigchld_ignored(&out), "--supervise: the app lost SIG_IGN");
}

/// An app that logs each fault signal it gets, then exits 7 once told to (or once its log is
/// gone: a shim killed by the signal must not leave it running).
fn fault_trapping_app(dir: &TempDir) -> String {
    dir.script(
        "app",
        "log=$1\n\
         for s in ABRT SEGV BUS FPE ILL TRAP SYS; do trap \"echo $s >> $log\" $s; done\n\
         echo ready >> $log\n\
         while [ ! -e $log.stop ] && [ -e $log ]; do sleep 0.02; done\n\
         exit 7\n",
    )
}

const FAULT_SIGNALS: [(i32, &str); 7] = [
    (libc::SIGABRT, "ABRT"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGSYS, "SYS"),
];

fn send_faults_and_see_them_arrive(dir: &TempDir, shim: i32) {
    wait_for(
        || dir.read("log").contains("ready").then_some(()),
        "the app",
    );
    for (signo, name) in FAULT_SIGNALS {
        // As `docker kill -s` sends it.
        kill(shim, signo);
        wait_for(
            || dir.read("log").lines().any(|l| l == name).then_some(()),
            name,
        );
    }
    fs::write(dir.path("log.stop"), "").unwrap();
}

#[test]
fn fault_signals_sent_with_kill_reach_the_app() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let log = dir.path("log");
    let app = fault_trapping_app(&dir);

    let shim = start_pid1(&["--", &app, log.to_str().unwrap()]);
    send_faults_and_see_them_arrive(&dir, shim.shim);
    let out = shim.wait();
    assert_eq!(out.status.code(), Some(7), "{}", common::stderr(&out));

    fs::remove_file(&log).unwrap();
    fs::remove_file(dir.path("log.stop")).unwrap();
    let mut cmd = common::shim_command();
    cmd.args(["--resolv-conf", "/dev/null", "--supervise", "--", &app])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut cmd);
    send_faults_and_see_them_arrive(&dir, child.pid());
    let out = common::process::wait_output(&mut child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(7), "{}", common::stderr(&out));
}

#[test]
fn a_sigabrt_during_a_slow_start_reaches_the_app_under_supervise() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let args = ["--supervise", "--", "/bin/sleep", "20"];
    let mut start = SlowStart::start(&dir, &[], &args);
    start.signal_during_start(libc::SIGABRT);
    // The app (sleep 20) died of the SIGABRT shim held for it: 128 + 6.
    assert_eq!(start.wait().code(), Some(134));
}

#[test]
fn grace_without_proc_gives_up_on_a_leftover_in_its_own_session() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let pidfile = dir.path("leftover.pid");
    let _leftover = PidFileGuard(pidfile.clone());
    // The leftover leaves the app's process group (setsid) and /proc is hidden: shim can neither
    // find nor signal it, and must not wait for it forever.
    let app = "setsid sh -c 'echo $$ > \"$0\"; exec sleep 1000 >/dev/null 2>&1' \"$1\" &\n\
               until [ -s \"$1\" ]; do sleep 0.01; done\n\
               exit 4";
    let mut cmd = common::clean_command("unshare");
    cmd.args(["--mount", "--", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$@\"")
        .arg("sh")
        .args(shim_args(&[
            "--supervise",
            "--grace",
            "200",
            "--",
            "sh",
            "-c",
            app,
            "sh",
            pidfile.to_str().unwrap(),
        ]));
    let started = Instant::now();
    let out = output_within(&mut cmd, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(4), "{}", common::stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        common::stderr(&out).contains("still running after SIGKILL"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn as_pid1_with_user_a_leftover_it_may_not_signal_does_not_hold_it() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let go = dir.path("go");
    let app = format!("until [ -e {} ]; do sleep 0.02; done; exit 8", go.display());
    let shim = start_pid1(&[
        "--user",
        "65534:65534",
        "--grace",
        "200",
        "--",
        "/bin/sh",
        "-c",
        &app,
    ]);
    wait_for(|| first_child(shim.shim), "the app");
    // A root process joins the namespace, as `docker exec` does, and is orphaned to shim, which
    // now runs as nobody and may not signal it.
    let status = Command::new("nsenter")
        .args(["--target", &shim.shim.to_string(), "--pid", "--"])
        .args(["sh", "-c", "sleep 1000 &"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(
        || (common::children_of(shim.shim).len() == 2).then_some(()),
        "the root leftover to be shim's child",
    );
    fs::write(&go, "").unwrap();
    let out = shim.wait_within(Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(8), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("1 process still running after SIGKILL"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn grace_under_the_proc_of_another_pid_namespace_signals_no_stranger() {
    if !common::require_root() {
        return;
    }
    if !common::require(
        Path::new("/proc/sys/kernel/ns_last_pid").exists(),
        "/proc/sys/kernel/ns_last_pid",
    ) {
        return;
    }
    // X, a process of this namespace (the one /proc shows) with one child, C.
    let x = ChildGuard::spawn(Command::new("sh").args(["-c", "sleep 1000 & wait"]));
    let x_pid = x.pid();
    let c_pid = wait_for(|| first_child(x_pid), "X's child");
    // In a new PID namespace that keeps this /proc, shim gets X's number and a stranger (not
    // shim's) gets C's. A shim that trusts this /proc reads "its" children at /proc/<X>: C's
    // number, and signals the stranger.
    let inner = "x=$1 c=$2; shift 2\n\
                 echo $((c - 1)) > /proc/sys/kernel/ns_last_pid; sleep 1000 & v=$!\n\
                 echo $((x - 1)) > /proc/sys/kernel/ns_last_pid; \"$@\"; status=$?\n\
                 kill -0 $v 2>/dev/null && alive=yes || alive=no\n\
                 kill $v\n\
                 echo victim=$v alive=$alive status=$status\n";
    let out = common::output(
        common::clean_command("unshare")
            .args(["--pid", "--fork", "--", "sh", "-c", inner, "sh"])
            .args([x_pid.to_string(), c_pid.to_string()])
            .args(shim_args(&[
                "--supervise",
                "--grace",
                "300",
                "--",
                "sh",
                "-c",
                "echo shim=$PPID; sleep 1000 & exit 3",
            ])),
    );
    // SAFETY: plain kill(2) of our own child's child; the guard kills and waits for X.
    unsafe { libc::kill(c_pid, libc::SIGKILL) };
    drop(x);
    let text = common::stdout(&out);
    assert!(text.contains(&format!("shim={x_pid}\n")), "setup: {text}");
    assert!(text.contains(&format!("victim={c_pid} ")), "setup: {text}");
    assert!(
        text.contains("alive=yes status=3"),
        "{text}{}",
        common::stderr(&out)
    );
}
