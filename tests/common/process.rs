//! Child processes of a test: a guard that kills them when the test fails, waits with a bound (a
//! test of a hang must fail, not hang the suite), and what /proc tells about a process.

use std::fs;
use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::libc;

/// How long [`wait_for`] waits for a state a test expects soon.
pub const SOON: Duration = Duration::from_secs(10);

/// A child killed and waited for on drop when it still runs, whatever happened to the test.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
        )
    }
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Kills the process whose PID a test's app wrote to a file (one that is no child of the test),
/// when the test ends.
pub struct PidFileGuard(pub PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        if let Some(pid) = fs::read_to_string(&self.0)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Poll `probe` until it gives a value, at most [`SOON`].
pub fn wait_for<T>(probe: impl FnMut() -> Option<T>, what: &str) -> T {
    wait_for_within(probe, what, SOON)
}

/// Poll `probe` until it gives a value, at most `limit`.
pub fn wait_for_within<T>(mut probe: impl FnMut() -> Option<T>, what: &str, limit: Duration) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The children of `pid`, oldest first (empty once it is gone).
pub fn children_of(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub fn first_child(pid: i32) -> Option<i32> {
    children_of(pid).first().copied()
}

/// A field of /proc/PID/status (`field` with its colon), trimmed.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
}

/// kill(2), which must succeed. A plain number: real-time signals have no name in nix.
pub fn kill(pid: i32, signo: i32) {
    // SAFETY: plain kill(2).
    assert_eq!(unsafe { libc::kill(pid, signo) }, 0, "kill({pid}, {signo})");
}

/// Run a command to completion, at most `limit`, with stdin empty and stdout and stderr captured.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = ChildGuard::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    collect(&mut child, limit, &format!("{cmd:?}"))
}

/// Wait for a running child at most `limit` and collect what it wrote to the pipes it was given
/// (a stream that is no pipe reads as empty). On time-out the child is killed and the test fails.
/// Both pipes are drained meanwhile, so a chatty child cannot block on a full pipe; and a
/// leftover that keeps them open after the child exits fails the test too, within the same bound.
pub fn wait_output(child: &mut Child, limit: Duration) -> Output {
    let what = format!("process {}", child.id());
    collect(child, limit, &what)
}

fn collect(child: &mut Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            let _ = sender.send(buf);
        });
        receiver
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let collect = |pipe: mpsc::Receiver<Vec<u8>>| {
        let left = deadline.saturating_duration_since(Instant::now());
        pipe.recv_timeout(left.max(Duration::from_secs(1)))
            .unwrap_or_else(|_| panic!("{what} exited; a leftover still holds its pipes"))
    };
    Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    }
}
