//! Helpers shared by the integration tests: where the binaries are, and how a test that needs
//! root or Docker skips visibly on a machine that lacks them (and fails instead under CI=true).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The shim built by `cargo test` for the host (debug profile).
pub fn shim() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shim"))
}

/// The shipped binary: static, musl, release profile. Built on first use.
pub fn static_shim() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--target",
                "x86_64-unknown-linux-musl",
                "--bin",
                "shim",
            ])
            .current_dir(root)
            .status()
            .expect("run cargo build for the static binary");
        assert!(status.success(), "building the static musl binary failed");
        root.join("target/x86_64-unknown-linux-musl/release/shim")
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
