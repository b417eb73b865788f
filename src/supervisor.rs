//! Running the app: exec it, or stay as its init.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::exit;

use nix::errno::Errno;
use nix::unistd::execvp;

/// Replace shim with the app (same PID). Returns only through exit: 127 not found, 126 not runnable.
pub fn exec(command: &[OsString]) -> ! {
    let argv: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()).expect("argv strings hold no NUL"))
        .collect();
    let err = execvp(&argv[0], &argv).unwrap_err();
    let name = command[0].to_string_lossy();
    match err {
        Errno::ENOENT | Errno::ENOTDIR => {
            crate::error!("{name}: command not found (is it in the image and on PATH?)");
            exit(127)
        }
        other => {
            crate::error!("{name}: cannot execute: {}", other.desc());
            exit(126)
        }
    }
}
