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
        // Build again when HEAD moves: HEAD itself, the branches (a directory: cargo looks at
        // every file in it, and a commit writes its branch's file there) and packed-refs.
        // WHY only paths that exist: cargo reruns the script, and rebuilds shim, on every build
        // while a watched path is missing (a checkout whose refs were never packed has no
        // packed-refs).
        for path in ["HEAD", "refs/heads", "packed-refs"]
            .into_iter()
            .filter_map(|p| git(&["rev-parse", "--git-path", p]))
            .filter(|p| Path::new(p).exists())
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
    link_order();
}

/// Hot code first (DESIGN.md "Link order"): for each target with a list in link-order/, the
/// functions shim runs after its start-up are laid out together, so that faulting them back in
/// maps one window of pages.
fn link_order() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lists = Path::new(&dir).join("link-order");
    let file = lists.join(format!("{target}.txt"));
    // The directory, not the file: a target without a list would otherwise rebuild every time.
    println!("cargo:rerun-if-changed={}", lists.display());
    if file.exists() {
        println!(
            "cargo:rustc-link-arg-bins=--symbol-ordering-file={}",
            file.display()
        );
        println!("cargo:rustc-link-arg-bins=--no-warn-symbol-ordering");
    }
    // scripts/link-order, bench/gate.sh and scripts/release ask for the linker's map: the symbol
    // names of the shipped binary, which is stripped.
    println!("cargo:rerun-if-env-changed=SHIM_LINK_MAP");
    if let Ok(map) = std::env::var("SHIM_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Map={map}");
    }
}
