//! shim as PID 1 of a new PID namespace, as `docker run` starts it: `unshare --pid --fork
//! --mount-proc -- shim ARGS`. unshare forks, and its child, PID 1 inside, execs shim; /proc is
//! the namespace's own. The namespace dies with its PID 1.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::libc;

use super::process::{first_child, kill, wait_for, wait_output, ChildGuard};

/// The unshare(1) flags that make a new PID namespace whose PID 1 is the command.
pub const NEW_PID_NAMESPACE: [&str; 3] = ["--pid", "--fork", "--mount-proc"];

/// `unshare --pid --fork --mount-proc -- shim ARGS`, with none of this process's `SHIM_*`.
pub fn command<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = super::clean_command("unshare");
    cmd.args(NEW_PID_NAMESPACE)
        .arg("--")
        .arg(super::shim())
        .args(args);
    cmd
}

/// A running shim as PID 1, with its PID as seen from here; killed on drop.
pub struct Pid1 {
    unshare: ChildGuard,
    /// shim's PID in the test's PID namespace.
    pub shim: i32,
}

impl Pid1 {
    /// Start `cmd` (from [`command`]) with stdout and stderr piped, and wait for shim to run.
    pub fn start(mut cmd: Command) -> Pid1 {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let unshare = ChildGuard::spawn(&mut cmd);
        let shim = wait_for(|| first_child(unshare.pid()), "shim to start");
        Pid1 { unshare, shim }
    }

    pub fn signal(&self, signo: i32) {
        kill(self.shim, signo);
    }

    /// shim's exit and output, within 20 s.
    pub fn wait(self) -> Output {
        self.wait_within(Duration::from_secs(20))
    }

    pub fn wait_within(mut self, limit: Duration) -> Output {
        wait_output(&mut self.unshare, limit)
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        // While unshare runs, shim's PID is still shim's (unshare has not reaped it); after, it
        // may be anyone's. The namespace dies with its PID 1; the guard then kills and waits.
        if self.unshare.try_wait().ok().flatten().is_none() {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(self.shim, libc::SIGKILL) };
        }
    }
}
