//! The harness every integration test uses: where the binaries are, how shim is run (with none
//! of this process's `SHIM_*` settings, as PID 1 of a new PID namespace), how a test that needs
//! root or Docker skips visibly on a machine that lacks them (and fails instead under CI=true),
//! and what is cleaned up on drop (directories, mounts, child processes).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub mod fixtures;
pub mod netns;
pub mod pid1;
pub mod process;

// Re-exported for every test file; not every file needs each.
#[allow(unused_imports)]
pub use process::{children_of, first_child, output_within, wait_for, wait_for_within, ChildGuard};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// The shim built by `cargo test` (debug profile, for the target in .cargo/config.toml).
pub fn shim() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shim"))
}

/// What `shim --version` prints: tini's shape (`tini version X - git.COMMIT`), which Docker's
/// `docker info` reads from the daemon's init (`init-path`).
pub fn version_line() -> String {
    format!(
        "shim version {} - git.{}\n",
        env!("CARGO_PKG_VERSION"),
        env!("BUILD_GIT_COMMIT")
    )
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

/// `program` with none of this process's `SHIM_*` variables: shim itself, or a wrapper that ends
/// in shim (`unshare`, `sh -c`, `ip netns exec`, `env`), which would hand them on. Every name is
/// removed, not a list, so that a variable added to shim later cannot leak into a test from the
/// environment of whoever runs the suite. A test sets the ones it wants after this.
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"SHIM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The built shim, with none of this process's `SHIM_*` variables (see [`clean_command`]).
pub fn shim_command() -> Command {
    clean_command(shim())
}

/// The running test's name, as libtest gives it: every test runs on a thread named after it
/// (`module::test` for a test in a module), also under `--test-threads=1`.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .expect("called on the test's own thread (libtest names it after the test)")
        .to_owned()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A requirement the machine does not meet: under CI it is a failure, elsewhere a visible skip,
/// `SKIPPED <test>: <what> is not available on this machine` (scripts/test counts these lines by
/// test name). Returns false when the test should stop here.
pub fn require(met: bool, what: &str) -> bool {
    if met {
        return true;
    }
    let test = test_name();
    if in_ci() {
        panic!("{test}: {what} is required under CI=true");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests, and a skip
    // must be seen. One write, so that the line is not cut by libtest's own output.
    use std::io::Write;
    let line = format!("SKIPPED {test}: {what} is not available on this machine\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For tests that need root (mount, PID and network namespaces).
pub fn require_root() -> bool {
    require(is_root(), "root (for namespaces and mounts)")
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

/// shim's own lines on stderr (the app's are not prefixed `shim: `).
pub fn shim_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("shim: "))
        .map(str::to_owned)
        .collect()
}

/// A temporary directory removed on drop, even when the test fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory named after the test (and numbered: a test may make several).
    pub fn new() -> TempDir {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shim-{}-{}-{}",
            test_name().replace("::", "-"),
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
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
