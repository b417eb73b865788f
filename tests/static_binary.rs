//! The shipped binary is static: it runs in an empty root that holds nothing but itself, which is
//! what `COPY --from=... /shim /shim` into a `FROM scratch` image gives.

mod common;

use common::{fixtures, TempDir};

use std::fs;

#[test]
fn runs_in_an_empty_chroot() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let root = &dir.0;
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::copy(common::static_shim(), root.join("shim")).unwrap();
    let entries: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "only /shim and an empty /etc: {entries:?}"
    );

    let out = common::output(
        common::clean_command("chroot")
            .arg(root)
            .args(["/shim", "--version"]),
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out), common::version_line());

    // The whole start path in the empty root: fix a Docker <= 25 file, then exec an app
    // (shim itself, the only program there).
    let resolv = root.join("etc/resolv.conf");
    fs::write(&resolv, fixtures::EMBEDDED_THEN_V6).unwrap();
    let out = common::output(common::clean_command("chroot").arg(root).args([
        "/shim",
        "--",
        "/shim",
        "--version",
    ]));
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        "nameserver 2001:db8::53\n"
    );
}
