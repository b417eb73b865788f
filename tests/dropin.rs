//! What tini and dumb-init users rely on (issue 14): signal rewriting (`-r`), exit-code remapping
//! (`-e`), the parent-death signal (`-p`), job control under a shell (Ctrl-Z), dumb-init's end
//! (`--term-leftovers`). Each runs shim as PID 1 of a new PID namespace, under `--supervise`, and
//! where it matters without either; each asserts what the app (or the shell) saw.

mod common;

use common::pid1::{self, Pid1};
use common::process::{kill, status_field, wait_output, PidFileGuard};
use common::{wait_for, ChildGuard, TempDir};

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::libc;

/// How shim runs the app.
#[derive(Clone, Copy, Debug, PartialEq)]
enum As {
    /// PID 1 of a new PID namespace, as `docker run` starts it.
    Pid1,
    /// Not PID 1, `--supervise`.
    Supervised,
    /// Not PID 1, no `--supervise`: shim would exec the app unless an option needs a parent.
    Plain,
}

const EVERY_WAY: [As; 3] = [As::Pid1, As::Supervised, As::Plain];

/// A running shim, as PID 1 or not; its PID as seen from here.
enum Running {
    Pid1(Pid1),
    Child(ChildGuard),
}

impl Running {
    fn pid(&self) -> i32 {
        match self {
            Running::Pid1(p) => p.shim,
            Running::Child(c) => c.pid(),
        }
    }

    fn wait(self) -> Output {
        match self {
            Running::Pid1(p) => p.wait(),
            Running::Child(mut c) => wait_output(&mut c, Duration::from_secs(20)),
        }
    }
}

/// shim's arguments for `how`, with an empty resolv.conf so that the fix has nothing to do.
fn shim_args(how: As, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--resolv-conf".to_owned(), "/dev/null".to_owned()];
    if how == As::Supervised {
        all.push("--supervise".to_owned());
    }
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

fn command(how: As, args: &[&str]) -> Command {
    match how {
        As::Pid1 => pid1::command(shim_args(how, args)),
        _ => {
            let mut cmd = common::shim_command();
            cmd.args(shim_args(how, args));
            cmd
        }
    }
}

fn start(how: As, args: &[&str]) -> Running {
    let cmd = command(how, args);
    match how {
        As::Pid1 => Running::Pid1(Pid1::start(cmd)),
        _ => {
            let mut cmd = cmd;
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            Running::Child(ChildGuard::spawn(&mut cmd))
        }
    }
}

/// An app that logs the signals it traps, one name a line, after `ready`; it exits 7 once
/// `log.stop` exists.
fn trapping_app(dir: &TempDir) -> String {
    dir.script(
        "app",
        "log=$1\n\
         for s in TERM QUIT INT HUP USR1 USR2; do trap \"echo $s >> $log\" $s; done\n\
         echo $$ > $log.pid\n\
         echo ready >> $log\n\
         while [ ! -e $log.stop ]; do sleep 0.02; done\n\
         exit 7\n",
    )
}

fn logged(dir: &TempDir) -> Vec<String> {
    dir.read("log").lines().map(str::to_owned).collect()
}

fn wait_logged(dir: &TempDir, line: &str) {
    wait_for(|| logged(dir).iter().any(|l| l == line).then_some(()), line);
}

#[test]
fn a_rewritten_signal_reaches_the_app_and_the_original_does_not() {
    if !common::require_root() {
        return;
    }
    for how in EVERY_WAY {
        let dir = TempDir::new();
        let app = trapping_app(&dir);
        let log = dir.path("log");
        let shim = start(
            how,
            &[
                "-r",
                "TERM:QUIT",
                "--rewrite=SIGHUP:usr2",
                "--",
                &app,
                log.to_str().unwrap(),
            ],
        );
        wait_logged(&dir, "ready");
        kill(shim.pid(), libc::SIGTERM);
        wait_logged(&dir, "QUIT");
        kill(shim.pid(), libc::SIGHUP);
        wait_logged(&dir, "USR2");
        // A signal not rewritten passes as it is.
        kill(shim.pid(), libc::SIGUSR1);
        wait_logged(&dir, "USR1");
        fs::write(dir.path("log.stop"), "").unwrap();
        let out = shim.wait();
        assert_eq!(
            out.status.code(),
            Some(7),
            "{how:?}: {}",
            common::stderr(&out)
        );
        assert_eq!(logged(&dir), ["ready", "QUIT", "USR2", "USR1"], "{how:?}");
    }
}

#[test]
fn rewriting_to_0_drops_the_signal() {
    if !common::require_root() {
        return;
    }
    for how in EVERY_WAY {
        let dir = TempDir::new();
        let app = trapping_app(&dir);
        let log = dir.path("log");
        let mut cmd = command(how, &["--", &app, log.to_str().unwrap()]);
        cmd.env("SHIM_REWRITE", "TERM:0, INT:0");
        let shim = match how {
            As::Pid1 => Running::Pid1(Pid1::start(cmd)),
            _ => Running::Child(ChildGuard::spawn(
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )),
        };
        wait_logged(&dir, "ready");
        kill(shim.pid(), libc::SIGTERM);
        kill(shim.pid(), libc::SIGINT);
        // Signals from one sender arrive in order: once USR1 is in, TERM and INT would be too.
        kill(shim.pid(), libc::SIGUSR1);
        wait_logged(&dir, "USR1");
        fs::write(dir.path("log.stop"), "").unwrap();
        let out = shim.wait();
        assert_eq!(
            out.status.code(),
            Some(7),
            "{how:?}: {}",
            common::stderr(&out)
        );
        assert_eq!(logged(&dir), ["ready", "USR1"], "{how:?}");
    }
}

#[test]
fn listed_exit_codes_become_0_and_others_pass() {
    if !common::require_root() {
        return;
    }
    // (script, shim's flags, expected status)
    let cases: [(&str, &[&str], i32); 6] = [
        ("kill -TERM $$", &[], 143),
        ("kill -TERM $$", &["-e", "143"], 0),
        ("kill -INT $$", &["-e", "143", "-e", "130"], 0),
        ("exit 143", &["--exit-zero=143"], 0),
        ("exit 3", &["-e", "143"], 3),
        ("kill -KILL $$", &["-e", "143"], 137),
    ];
    for how in EVERY_WAY {
        for (script, flags, expected) in cases {
            let args = [flags, &["--", "/bin/sh", "-c", script]].concat();
            let out = common::output_within(&mut command(how, &args), Duration::from_secs(20));
            // Without -e and not PID 1, shim execs the app: its death by a signal is its own.
            let status = out.status.code().or(out.status.signal().map(|n| 128 + n));
            assert_eq!(
                status,
                Some(expected),
                "{how:?} {flags:?} {script}: {}",
                common::stderr(&out)
            );
        }
        let mut cmd = command(how, &["--", "/bin/sh", "-c", "kill -TERM $$"]);
        cmd.env("SHIM_EXIT_ZERO", "1,143");
        let out = common::output_within(&mut cmd, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(0), "{how:?} SHIM_EXIT_ZERO");
    }
}

/// Kills a process that is no child of the test (shim orphaned by its parent's death).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn the_parent_death_signal_reaches_the_app_when_shims_parent_dies() {
    if !common::require_root() {
        return;
    }
    // With --user, the kernel clears the setting when shim switches users: shim asks again.
    for (how, user) in [
        (As::Pid1, None),
        (As::Supervised, None),
        (As::Plain, None),
        (As::Supervised, Some("65534")),
        (As::Plain, Some("65534")),
    ] {
        let dir = TempDir::new();
        let app = trapping_app(&dir);
        let log = dir.path("log");
        fs::write(&log, "").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
        let mut args = vec!["-p", "SIGUSR2"];
        if let Some(user) = user {
            args.extend(["--user", user]);
        }
        args.extend(["--", &app, log.to_str().unwrap()]);
        // The parent the test kills: unshare for PID 1; a shell that starts shim and waits.
        let (mut parent, shim) = match how {
            As::Pid1 => {
                let mut cmd = command(how, &args);
                let parent = ChildGuard::spawn(
                    cmd.stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                );
                let shim = wait_for(|| common::first_child(parent.pid()), "shim");
                (parent, shim)
            }
            _ => {
                let mut cmd = common::clean_command("sh");
                cmd.args(["-c", "\"$@\" & wait", "sh"])
                    .arg(common::shim())
                    .args(shim_args(how, &args))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let parent = ChildGuard::spawn(&mut cmd);
                let shim = wait_for(|| common::first_child(parent.pid()), "shim");
                (parent, shim)
            }
        };
        let _shim = KillOnDrop(shim);
        // Not PID 1, the app outlives shim's end; as PID 1 it dies with the namespace.
        let _app = (how != As::Pid1).then(|| PidFileGuard(dir.path("log.pid")));
        wait_logged(&dir, "ready");
        assert!(!dir.read("log").contains("USR2"));
        kill(parent.pid(), libc::SIGKILL);
        parent.wait().unwrap();
        wait_logged(&dir, "USR2");
        fs::write(dir.path("log.stop"), "").unwrap();
        wait_for(
            || (!Path::new(&format!("/proc/{shim}")).exists() || is_zombie(shim)).then_some(()),
            "shim to exit",
        );
        assert_eq!(logged(&dir), ["ready", "USR2"], "{how:?} {user:?}");
    }
}

fn is_zombie(pid: i32) -> bool {
    status_field(pid, "State:").is_some_and(|s| s.starts_with('Z'))
}

fn is_stopped(pid: i32) -> bool {
    status_field(pid, "State:").is_some_and(|s| s.starts_with('T'))
}

#[test]
fn a_stop_signal_sent_to_shim_stops_the_app_and_shim_until_continued() {
    let dir = TempDir::new();
    let app = trapping_app(&dir);
    let log = dir.path("log");
    let shim = start(As::Supervised, &["--", &app, log.to_str().unwrap()]);
    wait_logged(&dir, "ready");
    let app_pid = common::first_child(shim.pid()).unwrap();
    for signo in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
        kill(shim.pid(), signo);
        wait_for(
            || (is_stopped(shim.pid()) && is_stopped(app_pid)).then_some(()),
            "shim and the app stopped",
        );
        kill(shim.pid(), libc::SIGCONT);
        wait_for(
            || (!is_stopped(shim.pid()) && !is_stopped(app_pid)).then_some(()),
            "shim and the app running again",
        );
    }
    fs::write(dir.path("log.stop"), "").unwrap();
    let out = shim.wait();
    assert_eq!(out.status.code(), Some(7), "{}", common::stderr(&out));
}

/// An interactive bash on a terminal of its own (script(1) makes the pty), typed at through a
/// pipe; what it shows is collected by a thread.
struct Terminal {
    script: ChildGuard,
    input: std::process::ChildStdin,
    screen: Arc<Mutex<String>>,
}

impl Terminal {
    fn start() -> Terminal {
        let mut cmd = common::clean_command("script");
        cmd.args(["-qfec", "bash --norc --noprofile -i", "/dev/null"])
            .env("PS1", "$ ")
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut script = ChildGuard::spawn(&mut cmd);
        let input = script.stdin.take().unwrap();
        let mut output = script.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(String::new()));
        let shown = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = output.read(&mut buf) {
                shown
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            script,
            input,
            screen,
        }
    }

    fn type_in(&mut self, text: &str) {
        self.input.write_all(text.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Wait until `text` shows after what was shown at `from`; returns where it ends.
    fn expect(&self, from: usize, text: &str) -> usize {
        wait_for(
            || {
                let screen = self.screen.lock().unwrap();
                screen[from.min(screen.len())..]
                    .find(text)
                    .map(|at| from + at + text.len())
            },
            &format!(
                "{text:?} on the terminal; it shows: {:?}",
                self.screen.lock().unwrap()
            ),
        )
    }
}

#[test]
fn ctrl_z_stops_the_app_and_shim_and_fg_resumes_them() {
    let tools = Path::new("/usr/bin/script").exists() && Path::new("/bin/bash").exists();
    if !common::require(tools, "script(1) and bash") {
        return;
    }
    let dir = TempDir::new();
    let go = dir.path("go");
    let mut term = Terminal::start();
    term.type_in("echo shell-$((40+2))\n");
    let at = term.expect(0, "shell-42");
    let app = format!(
        "echo app-$((6*7)); while [ ! -e {} ]; do sleep 0.05; done; echo done-$((2+3))",
        go.display()
    );
    let line = format!(
        "{} -q --resolv-conf /dev/null --supervise -- sh -c '{app}'\n",
        common::shim().display()
    );
    term.type_in(&line);
    // What the app prints, not the echo of the line typed.
    let at = term.expect(at, "app-42");
    // Ctrl-Z: the terminal sends SIGTSTP to its foreground group, the app's.
    term.type_in("\x1a");
    let at = term.expect(at, "Stopped");
    // The shell has its terminal back and runs commands.
    term.type_in("echo alive-$((1+1))\n");
    let at = term.expect(at, "alive-2");
    fs::write(&go, "").unwrap();
    term.type_in("fg\n");
    let at = term.expect(at, "done-5");
    term.type_in("echo shim-status=$?\n");
    let at = term.expect(at, "shim-status=0");
    term.type_in("exit\n");
    let _ = at;
    let deadline = Instant::now() + Duration::from_secs(10);
    while term.script.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn term_leftovers_sends_sigterm_and_exits_without_waiting() {
    let dir = TempDir::new();
    let log = dir.path("log");
    // A leftover whose SIGTERM handler takes 5 s: --grace would wait for it; dumb-init does not.
    let app = dir.script(
        "app",
        "log=$1\n\
         (trap \"echo term >> $log; sleep 5; echo late >> $log; exit 0\" TERM\n\
          sh -c 'echo $PPID' > $log.pid\n\
          echo leftover-ready >> $log\n\
          while :; do sleep 0.05; done) >/dev/null 2>&1 &\n\
         while ! grep -q leftover-ready $log 2>/dev/null; do sleep 0.02; done\n\
         exit 5\n",
    );
    let _leftover = PidFileGuard(dir.path("log.pid"));
    let started = Instant::now();
    let shim = start(
        As::Supervised,
        &["--term-leftovers", "--", &app, log.to_str().unwrap()],
    );
    let out = shim.wait();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(5), "{}", common::stderr(&out));
    assert!(took < Duration::from_secs(4), "shim waited: {took:?}");
    wait_logged(&dir, "term");
    // Not killed: it is still running its handler.
    let pid: i32 = dir.read("log.pid").trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid));
    assert!(!dir.read("log").contains("late"));
}
