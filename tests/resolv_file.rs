//! The in-place writer against real mounts: a bind-mounted file like Docker's, a read-only one,
//! a user without write permission, a missing file. Mount tests run in a private mount namespace
//! of the test's own thread, so nothing leaks to the machine.

mod common;

use common::{fixtures, Mounts, TempDir};

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

const DOCKER25: &[u8] = fixtures::DOCKER25.as_bytes();
const FIXED: &[u8] = fixtures::DOCKER25_FIXED.as_bytes();

fn shim(resolv_conf: &Path, extra: &[&str]) -> Command {
    let mut cmd = common::shim_command();
    cmd.arg("--resolv-conf").arg(resolv_conf).args(extra);
    cmd.args(["--", "/bin/sh", "-c", "echo app-ran"]);
    cmd
}

fn app_ran(out: &Output) -> bool {
    common::stdout(out).contains("app-ran")
}

fn one_shim_line(out: &Output) -> String {
    let err = common::stderr(out);
    let lines = common::shim_lines(out);
    assert_eq!(lines.len(), 1, "expected one shim line, got: {err}");
    lines[0].to_owned()
}

#[test]
fn a_bind_mounted_file_is_rewritten_in_place_where_rename_fails() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let mut mounts = Mounts::private();
    let source = dir.file("container-resolv.conf", DOCKER25);
    let target = dir.file("resolv.conf", b"");
    mounts.bind(&source, &target);
    let inode = fs::metadata(&target).unwrap().ino();

    // What `sed -i` does: write a new file and rename it over the target.
    let replacement = dir.file("sed-tmp", FIXED);
    let err = fs::rename(&replacement, &target).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(nix::libc::EBUSY),
        "rename onto a mount point"
    );

    let out = common::output(&mut shim(&target, &["-v"]));
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(app_ran(&out));
    assert_eq!(fs::read(&target).unwrap(), FIXED);
    assert_eq!(fs::metadata(&target).unwrap().ino(), inode, "same inode");
    assert_eq!(
        fs::read(&source).unwrap(),
        FIXED,
        "the write went through to the mounted file"
    );
    let line = one_shim_line(&out);
    assert!(
        line.contains("127.0.0.11") && line.contains("--embedded keep"),
        "{line}"
    );
}

#[test]
fn a_read_only_mount_gives_one_clear_line_and_the_app_still_runs() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let mut mounts = Mounts::private();
    let source = dir.file("container-resolv.conf", DOCKER25);
    let target = dir.file("resolv.conf", b"");
    mounts.bind(&source, &target);
    mounts.bind_read_only(&target);

    let out = common::output(&mut shim(&target, &[]));
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(app_ran(&out));
    let line = one_shim_line(&out);
    assert!(
        line.contains(&target.display().to_string()),
        "names the file: {line}"
    );
    assert!(
        line.contains("Read-only file system"),
        "names the cause: {line}"
    );
    assert!(
        line.contains("--dns") && line.contains("--embedded keep"),
        "names a remedy: {line}"
    );
    assert_eq!(fs::read(&source).unwrap(), DOCKER25, "nothing lost");

    let out = common::output(&mut shim(&target, &["--strict"]));
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    assert!(!app_ran(&out), "--strict must not start the app");
}

#[test]
fn a_user_without_write_permission_is_told_about_user() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let file = dir.file("resolv.conf", DOCKER25);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |extra: &[&str]| {
        use std::os::unix::process::CommandExt;
        let mut cmd = shim(&file, extra);
        cmd.uid(65534).gid(65534);
        common::output(&mut cmd)
    };

    let out = as_nobody(&[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(app_ran(&out));
    let line = one_shim_line(&out);
    assert!(
        line.contains("Permission denied") && line.contains("--user"),
        "{line}"
    );
    assert_eq!(fs::read(&file).unwrap(), DOCKER25);

    let out = as_nobody(&["--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!app_ran(&out));
}

#[test]
fn a_missing_file_is_never_created() {
    let dir = TempDir::new();
    let file = dir.path("resolv.conf");
    let out = common::output(&mut shim(&file, &[]));
    assert!(out.status.success());
    assert!(app_ran(&out));
    let line = one_shim_line(&out);
    assert!(
        line.contains(&file.display().to_string()) && line.contains("--resolv-conf"),
        "{line}"
    );
    assert!(!file.exists(), "shim created the file");

    let out = common::output(&mut shim(&file, &["--strict"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(!app_ran(&out));
    assert!(!file.exists());
}

#[test]
fn a_directory_is_reported_and_left_alone() {
    let dir = TempDir::new();
    let out = common::output(&mut shim(&dir.0, &[]));
    assert!(out.status.success());
    assert!(app_ran(&out));
    let line = one_shim_line(&out);
    assert!(
        line.contains("Is a directory") && line.contains("--resolv-conf"),
        "{line}"
    );
}

fn set_old_mtime(path: &Path) -> SystemTime {
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_file_without_the_embedded_resolver_is_not_written() {
    let dir = TempDir::new();
    let content = b"nameserver 10.0.0.2\nsearch corp.example\n";
    let file = dir.file("resolv.conf", content);
    let mtime = set_old_mtime(&file);
    let ctime = fs::metadata(&file).unwrap().ctime_nsec();
    let out = common::output(&mut shim(&file, &[]));
    assert!(out.status.success() && app_ran(&out));
    assert_eq!(fs::read(&file).unwrap(), content);
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(
        meta.modified().unwrap(),
        mtime,
        "mtime changed: the file was written"
    );
    assert_eq!(meta.ctime_nsec(), ctime);
}

#[test]
fn a_second_run_changes_nothing() {
    let dir = TempDir::new();
    let file = dir.file("resolv.conf", DOCKER25);
    let inode = fs::metadata(&file).unwrap().ino();
    assert!(common::output(&mut shim(&file, &[])).status.success());
    assert_eq!(fs::read(&file).unwrap(), FIXED);
    let mtime = set_old_mtime(&file);
    let out = common::output(&mut shim(&file, &[]));
    assert!(out.status.success() && app_ran(&out));
    assert_eq!(fs::read(&file).unwrap(), FIXED);
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(meta.modified().unwrap(), mtime);
    assert_eq!(meta.ino(), inode);
}

#[test]
fn only_the_embedded_resolver_keeps_the_file() {
    let dir = TempDir::new();
    let content = b"nameserver 127.0.0.11\noptions ndots:0\n";
    let file = dir.file("resolv.conf", content);
    let mtime = set_old_mtime(&file);
    let out = common::output(&mut shim(&file, &[]));
    assert!(out.status.success() && app_ran(&out));
    assert_eq!(fs::read(&file).unwrap(), content);
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert!(
        common::stderr(&out).is_empty(),
        "nothing to warn about: {}",
        common::stderr(&out)
    );
}

#[test]
fn embedded_keep_keeps() {
    let dir = TempDir::new();
    let file = dir.file("resolv.conf", DOCKER25);
    let out = common::output(&mut shim(&file, &["--embedded", "keep"]));
    assert!(out.status.success() && app_ran(&out));
    assert_eq!(fs::read(&file).unwrap(), DOCKER25);
    let out = common::output(shim(&file, &[]).env("SHIM_EMBEDDED", "keep"));
    assert!(out.status.success());
    assert_eq!(fs::read(&file).unwrap(), DOCKER25);
}

#[test]
fn the_file_is_found_through_a_symlink_and_the_link_stays() {
    let dir = TempDir::new();
    let real = dir.file("stub-resolv.conf", DOCKER25);
    let link = dir.path("resolv.conf");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = common::output(&mut shim(&link, &[]));
    assert!(out.status.success() && app_ran(&out));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&real).unwrap(), FIXED);
}

#[test]
fn a_fifo_in_place_of_the_file_is_refused_at_once() {
    // open(2) of a FIFO for reading waits for a writer: shim hung before the app, forever.
    let dir = TempDir::new();
    let fifo = dir.path("resolv.conf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = common::output_within(&mut shim(&fifo, &[]), Duration::from_secs(10));
    assert!(out.status.success() && app_ran(&out), "{out:?}");
    let line = one_shim_line(&out);
    assert!(
        line.contains("regular file") && line.contains(fifo.to_str().unwrap()),
        "{line}"
    );
    let out = common::output_within(&mut shim(&fifo, &["--strict"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(!app_ran(&out));
    // --check-dns reads the same file: it says why it cannot tell, and sends no query.
    let mut check = common::shim_command();
    check.arg("--check-dns").arg("--resolv-conf").arg(&fifo);
    let out = common::output_within(&mut check, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stdout(&out).contains("regular file"), "{out:?}");
}

#[test]
fn a_lock_held_by_another_process_delays_the_app_by_a_bounded_time() {
    // Any process that can read the file may hold a shared flock on it; shim waited for it
    // forever, with SIGTERM blocked.
    let dir = TempDir::new();
    let path = dir.file("resolv.conf", DOCKER25);
    let holder = fs::File::open(&path).unwrap();
    let _held = nix::fcntl::Flock::lock(holder, nix::fcntl::FlockArg::LockSharedNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    let out = common::output_within(&mut shim(&path, &[]), Duration::from_secs(10));
    assert!(out.status.success() && app_ran(&out), "{out:?}");
    let line = one_shim_line(&out);
    assert!(
        line.contains("lock") && line.contains("--embedded keep"),
        "{line}"
    );
    assert_eq!(fs::read(&path).unwrap(), DOCKER25, "left as it was");
    let out = common::output_within(&mut shim(&path, &["--strict"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(!app_ran(&out));
}

#[test]
fn a_sixteen_mib_file_of_embedded_lines_is_fixed_in_linear_time() {
    // Rendering did a linear search of the dropped lines for every line: 80,000 lines took
    // 1.8 s, a 16 MiB file over 120 s. The bound here is an order of magnitude above the linear
    // time of a debug build and far below the quadratic one.
    let line = b"nameserver 127.0.0.11\n";
    let keep = b"nameserver 2001:db8::53\n";
    let count = ((16 << 20) - keep.len()) / line.len();
    let mut content = line.repeat(count);
    content.extend_from_slice(keep);
    let dir = TempDir::new();
    let path = dir.file("resolv.conf", &content);
    let out = common::output_within(&mut shim(&path, &[]), Duration::from_secs(60));
    assert!(out.status.success() && app_ran(&out), "{out:?}");
    assert_eq!(fs::read(&path).unwrap(), keep);
}
