//! shim as Docker's own init: the daemon's `init-path` (daemon.json `"init-path"`), which
//! `docker run --init` bind-mounts read-only at /sbin/docker-init and starts as
//! `/sbin/docker-init -- ENTRYPOINT CMD...`, and which `docker info` runs as `docker-init
//! --version`, reading tini's line `tini version X - git.COMMIT` (moby's parseInitVersion).
//!
//! It needs the Docker 26 engine at `$SHIM_E2E_DOCKER26` started with shim as its init:
//! `SHIM_D26_INIT_PATH=<the static shim> scripts/engines/docker26.sh start`. An engine with its usual
//! init (tini) is a visible skip, a failure under CI=true. It uses the Docker suite's images
//! (tests/docker/harness.rs), built on the default engine and loaded into Docker 26.

mod common;
#[path = "docker/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{
    app_image, nameservers, parse_report, ready, seed_net, Container, Engine, Era, Libc, Need,
};

/// The commit `docker info` read from the engine's init, when it answers.
fn init_commit(e: Engine) -> String {
    e.docker_ok(&["info", "--format", "{{.InitCommit.ID}}"])
}

#[test]
fn docker_run_init_with_shim_as_init_path_runs_shim_as_pid1() {
    let e = Engine::Docker26;
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    // `docker info` ran `docker-init --version` and read shim's line without an error: the
    // commit is shim's (tini's would be another; an unreadable line gives "N/A").
    let commit = init_commit(e);
    if !common::require(
        commit == env!("BUILD_GIT_COMMIT"),
        &format!(
            "the Docker 26 engine with shim as its init-path (its init reports commit {commit:?}, \
             shim is {}; start it with SHIM_D26_INIT_PATH=<static shim> scripts/engines/docker26.sh start)",
            env!("BUILD_GIT_COMMIT")
        ),
    ) {
        return;
    }
    let net = seed_net(e);
    let app = app_image(e, Libc::Glibc);
    // The app without the image's own shim (`--entrypoint /probe`): the init is the only shim.
    // probe exits 64 on the unknown last step, which SHIM_EXIT_ZERO turns into 0 (only shim can).
    let run = |env: &[&str]| {
        let mut args = vec!["--init", "--entrypoint", "/probe", "-e", "SHIM_LOG=debug"];
        for var in env {
            args.extend(["-e", var]);
        }
        args.extend(net.ipv6_dns_args());
        args.extend([
            app,
            "self",
            "ps",
            "file",
            "/etc/resolv.conf",
            "no-such-step",
        ]);
        Container::run(e, "init-path", &args)
    };
    let (_c, out) = run(&[]);
    assert_eq!(out.status.code(), Some(64), "{}", common::stderr(&out));
    let report = parse_report(&common::stdout(&out));
    let me = &report.selves[0];
    let comms: Vec<(u32, u32, &str)> = report
        .procs
        .iter()
        .map(|p| (p.pid, p.ppid, p.comm.as_str()))
        .collect();
    // PID 1 is the bind-mounted init, and the app is its child, not PID 1 (tini's shape too; the
    // lines below are shim's own).
    assert!(
        report
            .procs
            .iter()
            .any(|p| p.pid == 1 && p.comm == "docker-init"),
        "{comms:?}"
    );
    assert_ne!(me.pid, 1);
    assert_eq!(me.ppid, 1, "the app is the init's child: {comms:?}");
    let stderr = common::stderr(&out);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("shim: started /probe as pid")),
        "shim's own debug line:\n{stderr}"
    );
    let content = &report.files[0].content;
    match e.era() {
        Era::Legacy => assert!(!content.contains("127.0.0.11"), "fixed:\n{content}"),
        Era::Modern => assert_eq!(nameservers(content), ["127.0.0.11"], "kept:\n{content}"),
    }
    let (_c, out) = run(&["SHIM_EXIT_ZERO=64"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
}
