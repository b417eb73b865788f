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
    link_order();
}

/// Hot code first (DESIGN.md "Link order"): for each target with a list in link-order/, the
/// functions shim runs after its start-up are laid out together, so that faulting them back in
/// maps one window of pages.
fn link_order() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let file = Path::new(&dir)
        .join("link-order")
        .join(format!("{target}.txt"));
    println!("cargo:rerun-if-changed={}", file.display());
    if file.exists() {
        println!(
            "cargo:rustc-link-arg-bins=--symbol-ordering-file={}",
            file.display()
        );
        println!("cargo:rustc-link-arg-bins=--no-warn-symbol-ordering");
    }
    // scripts/link-order asks for the linker's map: symbol names and addresses of the very
    // binary it profiles (stripped, so without the map its functions have no names).
    println!("cargo:rerun-if-env-changed=SHIM_LINK_MAP");
    if let Ok(map) = std::env::var("SHIM_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Map={map}");
    }
}
