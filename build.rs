//! The commit shim is built from, for `shim --version` (Docker's `docker info` reads it, as it
//! reads tini's). Asked of git only when the source is a git checkout; "unknown" otherwise (a
//! source tarball, a Docker build without .git).
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn main() {
    let mut commit = None;
    if Path::new(".git").exists() {
        commit = git(&["rev-parse", "--short=7", "HEAD"]);
        // Build again when HEAD moves: HEAD itself, and the branch it names.
        for path in ["HEAD", "packed-refs"]
            .into_iter()
            .filter_map(|p| git(&["rev-parse", "--git-path", p]))
            .chain(
                git(&["symbolic-ref", "-q", "HEAD"])
                    .and_then(|r| git(&["rev-parse", "--git-path", &r])),
            )
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    // Docker splits the commit on '.': it must hold none.
    let commit = commit
        .filter(|c| !c.contains('.'))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
}
