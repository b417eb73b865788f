//! Helpers shared by the integration tests: where the binaries are, and how a test that needs
//! root or Docker skips visibly on a machine that lacks them (and fails instead under CI=true).
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod netns;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// The shim built by `cargo test` (debug profile, for the target in .cargo/config.toml).
pub fn shim() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shim"))
}

/// The shipped binary: static, musl, release profile. Built on first use, and found where Cargo
/// says it put it (never a path guessed under ./target, which could hold a stale binary).
pub fn static_shim() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--target",
                "x86_64-unknown-linux-musl",
                "--bin",
                "shim",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run cargo build for the static binary");
        assert!(
            output.status.success(),
            "building the static musl binary failed (is the target installed? rustup target add x86_64-unknown-linux-musl)"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "shim")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo named the shim executable it built")
    })
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A requirement the machine does not meet: under CI it is a failure, elsewhere a visible skip.
/// Returns false when the test should stop here.
pub fn require(met: bool, what: &str, test: &str) -> bool {
    if met {
        return true;
    }
    if in_ci() {
        panic!("{test}: {what} is required under CI=true");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests, and a skip
    // must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} is not available on this machine"
    );
    false
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For tests that need root (mount, PID and network namespaces).
pub fn require_root(test: &str) -> bool {
    require(is_root(), "root (for namespaces and mounts)", test)
}

/// Run a command to completion, failing the test with its stderr when it cannot be started.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A temporary directory removed on drop, even when the test fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("shim-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, content).unwrap();
        path
    }
    pub fn script(&self, name: &str, body: &str) -> String {
        let path = self.file(name, format!("#!/bin/sh\n{body}").as_bytes());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }
    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Mounts made in this thread's private mount namespace, undone (lazily) on drop, so that the
/// temporary directory under them can be removed. Declare it after the TempDir.
pub struct Mounts(Vec<PathBuf>);

impl Mounts {
    /// A private mount namespace for this test thread and the processes it starts.
    pub fn private() -> Mounts {
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make / private");
        Mounts(Vec::new())
    }
    pub fn bind(&mut self, source: &Path, target: &Path) {
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind mount");
        self.0.push(target.to_owned());
    }
    pub fn tmpfs(&mut self, target: &Path, options: &str, flags: MsFlags) {
        fs::create_dir_all(target).unwrap();
        mount(
            Some("shim-test"),
            target,
            Some("tmpfs"),
            flags,
            Some(options),
        )
        .expect("tmpfs");
        self.0.push(target.to_owned());
    }
    /// Make a bind mount read-only (only this mount, not the file system under it).
    pub fn bind_read_only(&self, target: &Path) {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>).expect("read-only bind");
    }
    /// Make a whole file system read-only: only for one the test mounted itself.
    pub fn remount_read_only(&self, target: &Path) {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>).expect("remount ro");
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = umount2(target, MntFlags::MNT_DETACH);
        }
    }
}

/// Run a command to completion, but fail the test (and kill the command) when it is still running
/// after `limit`: a test of a hang must fail, not hang the suite.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::Instant;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain both pipes meanwhile, so a chatty command cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
