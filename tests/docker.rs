//! The end-to-end suite on real container engines: shim runs in real containers, as the
//! ENTRYPOINT of an image built from `Dockerfile.example`, and each test checks what a user would
//! see there.
//!
//! Every scenario runs on every Docker engine that is there, as one test per scenario and engine
//! (`seed_case_glibc::docker`, `seed_case_glibc::docker26`), so that a failure names the engine:
//! - `docker`: the engine `docker` talks to by default: the machine's Docker 20.10 (the <= 25 era);
//! - `docker26`: Docker 26.1 at `$SHIM_E2E_DOCKER26` (a `unix://` socket), run beside it by
//!   `scripts/engines/docker26.sh start` (the >= 26 era). `.ci/run` starts it and sets the variable.
//!
//! The two eras write different files (DESIGN.md, "The facts it rests on"), so a scenario asserts
//! what the real engine of its era does: on Docker <= 25 shim drops 127.0.0.11 (R2) and the lookups
//! stop waiting; on Docker >= 26 the file lists only 127.0.0.11 and shim keeps it byte for byte,
//! same inode and mtime (R3), while the lookups resolve through the embedded resolver. Podman has its
//! own file, `tests/podman.rs`.
//!
//! No registry is reachable, so every image is built here from files on this machine, once, on the
//! default engine, and handed to the other one with `docker save | docker -H ... load`:
//! - the shim image: `Dockerfile` (`FROM scratch` + the static musl binary);
//! - a glibc client: `docker import` of a rootfs holding `tests/docker/probe.c` built with gcc, its
//!   shared libraries (from `ldd`), `/etc/nsswitch.conf`, `/etc/passwd` and `/etc/group`;
//! - a musl client: the same source built with `musl-gcc -static` (Debian's musl-tools);
//! - a DNS server: Debian's dnsmasq (dnsmasq-base) with its libraries, answering `v6only.shim.test`
//!   (AAAA only) and `dual.shim.test` (A and AAAA) from local records and forwarding nothing;
//! - the app images: `Dockerfile.example` built with those local images in place of registry ones.
//!
//! The seed case runs on a user-defined network with IPv6 (a random ULA /64), created `--internal`
//! so that no container of the suite has a route out of it: every packet stays between the suite's
//! own containers. App containers get `--dns <the DNS server's IPv6 address>` only, so Docker <= 25
//! writes `nameserver 127.0.0.11` (an embedded resolver with no upstream, which never answers) before
//! the real server, and Docker >= 26 writes only 127.0.0.11, forwarding to that server.
//!
//! On a machine without an engine (or gcc, musl-gcc, dnsmasq) each test that needs one prints a
//! SKIPPED line; under `CI=true` that is a failure instead (CI configures both engines). Everything
//! the suite creates carries the label `shim-e2e.owner=<pid>.<start time>` and a per-run name
//! prefix: containers are removed by a guard when a test ends (even by a panic), networks and images
//! when the test process exits, and objects left by a run that was killed are swept by the next run.
//!
//! That machinery (requirements, engines, the run's label and sweep, the docker wrappers and the
//! container guard, the images, the seed network, the reading of /probe's output) is
//! `tests/docker/harness.rs`; this file holds what a user would see, one function per scenario.
//!
//! `SHIM_E2E_BINARY=/path/to/static/shim` puts another build in the shim image (by default the
//! static musl binary is built from this tree). Run with `--nocapture` to see the engines' files, the
//! lookup times and the lines shim printed.

mod common;
#[path = "docker/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use harness::{
    app_image, dns_image, lines, nameservers, parse_report, ready, report_of, seed_net, shim_image,
    shim_lines, user_1000_image, work_dir, Container, Engine, Era, FileSnap, Libc, Lookup, Need,
    Report, DUAL, DUAL_A, DUAL_AAAA, V6ONLY, V6ONLY_AAAA,
};

const RESOLV_CONF: &str = "/etc/resolv.conf";
const EMBEDDED_LINE: &str = "nameserver 127.0.0.11";
/// A lookup "at once": the answer comes in a few milliseconds; this bound leaves room for a busy
/// machine and is still far below the 5 s resolver timeout it is compared with.
const FAST_MS: f64 = 1000.0;
/// glibc's default resolver timeout is 5 s; a lookup that waited it out took at least this.
const WAITED_MS: f64 = 4000.0;

/// One test per scenario and engine: `SCENARIO::docker` and `SCENARIO::docker26`.
macro_rules! on_each_engine {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn docker() {
                super::$scenario(super::Engine::Default);
            }
            #[test]
            fn docker26() {
                super::$scenario(super::Engine::Docker26);
            }
        }
    )*};
}

on_each_engine!(
    seed_case_glibc,
    seed_case_musl,
    default_bridge_file_is_untouched,
    file_listing_only_127_0_0_11_is_untouched_and_resolves,
    restart_rewrites_the_file_and_shim_acts_again,
    docker_stop_sigterm_reaches_the_app_and_its_exit_code_is_the_containers,
    docker_kill_usr1_reaches_the_app,
    docker_run_init_shim_is_not_pid1_and_execs_the_app,
    read_only_rootfs,
    image_with_user_1000,
    user_flag_as_root_fixes_the_file_then_runs_the_app_as_1000,
    network_container_mode_shares_one_file_and_it_ends_correct,
    check_dns_json,
    check_dns_text,
    shim_image_holds_only_shim_and_the_example_image_runs_it_as_entrypoint,
    compose_names_and_ipv6_dns_through_the_proxy,
);

// ---------------------------------------------------------------------------------------------
// What a user should see: the fixed file, quick answers, shim as PID 1.

/// What R2 makes of Docker's file: the 127.0.0.11 line(s) gone, every other line as it was.
fn without_embedded(content: &str) -> String {
    content
        .split_inclusive('\n')
        .filter(|line| line.trim_end_matches('\n') != EMBEDDED_LINE)
        .collect()
}

/// What shim leaves of the file the engine wrote on a user-defined network: on <= 25 the
/// 127.0.0.11 line goes (R2); on >= 26 it is the only nameserver and the file is kept (R3).
fn expected_after(era: Era, written: &str) -> String {
    match era {
        Era::Legacy => without_embedded(written),
        Era::Modern => written.to_owned(),
    }
}

/// What the engine writes on a user-defined network whose `--dns` is `server`.
fn assert_engine_file(era: Era, content: &str, server: &str) {
    let servers = nameservers(content);
    match era {
        Era::Legacy => {
            assert_eq!(
                servers.first(),
                Some(&"127.0.0.11"),
                "Docker <= 25 lists its embedded resolver first:\n{content}"
            );
            assert!(servers.contains(&server), "the --dns server:\n{content}");
        }
        Era::Modern => {
            assert_eq!(
                servers,
                ["127.0.0.11"],
                "Docker >= 26 lists only its embedded resolver:\n{content}"
            );
            assert!(
                content.starts_with("# Generated by Docker Engine."),
                "Docker >= 26's header:\n{content}"
            );
            assert!(
                content
                    .lines()
                    .any(|l| l.starts_with("# ExtServers: [") && l.contains(server)),
                "the --dns server in the ExtServers comment:\n{content}"
            );
        }
    }
}

fn assert_answer(lookup: &Lookup, name: &str, expected: &[&str]) {
    assert_eq!(lookup.name, name);
    assert_eq!(lookup.status, "ok", "{lookup:?}");
    let got: BTreeSet<&str> = lookup.addrs.iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(got, want, "{lookup:?}");
}

fn assert_fast(lookup: &Lookup, context: &str) {
    assert!(
        lookup.ms < FAST_MS,
        "{context}: the lookup should answer at once, took {:.1} ms: {lookup:?}",
        lookup.ms
    );
}

/// The app runs under shim as PID 1 (DESIGN.md I1), not in its place.
fn assert_shim_is_pid1_parent(report: &Report) {
    let me = &report.selves[0];
    let pid1 = report.procs.iter().find(|p| p.pid == 1);
    assert!(
        me.pid != 1 && me.ppid == 1 && pid1.is_some_and(|p| p.comm == "shim"),
        "shim should stay as PID 1 with the app as its child (DESIGN.md I1); the app is PID {} \
         (parent {}), PID 1 is {:?}: shim exec'd the app instead (I4 applies only when shim is not \
         PID 1)",
        me.pid,
        me.ppid,
        pid1.map(|p| &p.comm)
    );
}

// ---------------------------------------------------------------------------------------------
// The seed case.

/// One client: a container that looks up without shim, then execs shim and looks up again (same
/// file, same inode), and a container with shim as the image's ENTRYPOINT; prints the times.
fn seed_case(e: Engine, libc: Libc, extra: &[&str]) {
    let test = common::test_name();
    let era = e.era();
    let net = seed_net(e);
    let image = app_image(e, libc);
    let mut common_args: Vec<&str> = net.ipv6_dns_args().to_vec();
    common_args.extend_from_slice(extra);

    // Without shim: the engine's file as it is, one lookup (on <= 25 it pays the resolver's wait,
    // only once per client), then `exec /shim` as PID 1 and the same lookup through its file.
    let mut before_after = common_args.clone();
    before_after.extend([
        "--entrypoint",
        "/probe",
        image,
        "file",
        RESOLV_CONF,
        "lookup",
        "6",
        V6ONLY,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
        "lookup",
        "6",
        V6ONLY,
    ]);
    // With shim as the ENTRYPOINT of the image built from Dockerfile.example.
    let mut entrypoint = common_args.clone();
    entrypoint.extend([
        image,
        "/probe",
        "file",
        RESOLV_CONF,
        "lookup",
        "6",
        V6ONLY,
        "lookup",
        "any",
        DUAL,
    ]);
    let ((_a, out_a), (b, out_b)) = thread::scope(|s| {
        let a = s.spawn(|| Container::run(e, "seed-noshim", &before_after));
        let b = s.spawn(|| Container::run(e, "seed-shim", &entrypoint));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let a = report_of("without shim, then exec shim", &out_a);
    let with = report_of("shim as ENTRYPOINT", &out_b);

    let before = &a.files[0];
    let after = &a.files[1];
    println!(
        "{test}: Docker {} wrote ({} bytes):\n{}",
        e.version().unwrap_or("?"),
        before.content.len(),
        before.content
    );
    assert_engine_file(era, &before.content, &net.dns_v6);
    assert_eq!(after.content, expected_after(era, &before.content));
    assert_eq!(
        after.inode, before.inode,
        "written in place, or not at all: same inode (the bind mount)"
    );
    if era == Era::Modern {
        assert_eq!(after, before, "R3: not opened for writing, same mtime");
    }
    assert_eq!(with.files[0].content, after.content);

    let slow = &a.lookups[0];
    let fixed = &a.lookups[1];
    assert_answer(slow, V6ONLY, &[V6ONLY_AAAA]);
    assert_answer(fixed, V6ONLY, &[V6ONLY_AAAA]);
    assert_answer(&with.lookups[0], V6ONLY, &[V6ONLY_AAAA]);
    assert_answer(&with.lookups[1], DUAL, &[DUAL_A, DUAL_AAAA]);
    println!(
        "{test}: AAAA {V6ONLY}: without shim {:.1} ms; after exec shim {:.1} ms; shim as ENTRYPOINT {:.1} ms ({} {DUAL}: {:.1} ms)",
        slow.ms, fixed.ms, with.lookups[0].ms, with.lookups[1].family, with.lookups[1].ms
    );
    match (era, libc) {
        // glibc asks 127.0.0.11 first, waits its 5 s timeout, then asks the next server.
        (Era::Legacy, Libc::Glibc) => assert!(
            slow.ms >= WAITED_MS,
            "without shim glibc waits the resolver timeout: {slow:?}"
        ),
        // musl asks every server at once and takes the first answer (DESIGN.md): no wait.
        (Era::Legacy, Libc::Musl) => assert_fast(slow, "musl without shim"),
        // The embedded resolver forwards to the IPv6 server: no wait, shim or not.
        (Era::Modern, _) => assert_fast(slow, "through Docker 26's embedded resolver"),
    }
    assert_fast(fixed, "after exec shim");
    assert_fast(&with.lookups[0], "shim as ENTRYPOINT");
    assert_fast(&with.lookups[1], "shim as ENTRYPOINT");

    // The host's file behind the bind mount is the one the app read.
    let host = b.host_resolv_conf_snap();
    assert_eq!(host.content, with.files[0].content);
    assert_eq!(host.inode, with.files[0].inode);
    match era {
        Era::Legacy => assert!(!host.content.contains("127.0.0.11")),
        Era::Modern => assert_eq!(host, with.files[0], "R3: same bytes, inode and mtime"),
    }
}

fn seed_case_glibc(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    // A search domain too, to see that the other lines are kept.
    seed_case(e, Libc::Glibc, &["--dns-search", "shim.test"]);
}

fn seed_case_musl(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::MuslGcc, Need::Dnsmasq]) {
        return;
    }
    seed_case(e, Libc::Musl, &[]);
}

// ---------------------------------------------------------------------------------------------
// Files that must stay untouched (R1, R3).

/// Runs /probe, then execs shim (as PID 1), then /probe again: the file before and after.
fn untouched_case(
    e: Engine,
    what: &str,
    network_args: &[&str],
    then: &[&str],
) -> (Container, Report) {
    let image = app_image(e, Libc::Glibc);
    let mut args = network_args.to_vec();
    args.extend([
        "--entrypoint",
        "/probe",
        image,
        "file",
        RESOLV_CONF,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
    ]);
    args.extend_from_slice(then);
    let (container, out) = Container::run(e, what, &args);
    let report = report_of(what, &out);
    let (before, after) = (&report.files[0], &report.files[1]);
    println!("{what} ({}): Docker wrote:\n{}", e.id(), before.content);
    assert_eq!(
        after, before,
        "same bytes, same inode, same mtime: not written at all"
    );
    assert_eq!(&container.host_resolv_conf_snap(), before);
    (container, report)
}

fn default_bridge_file_is_untouched(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc]) {
        return;
    }
    // The default bridge copies the host's servers (no 127.0.0.11) on every engine (Docker 26
    // adds its header and "(legacy)" comments); nothing in it is asked (R1).
    let (_c, report) = untouched_case(e, "bridge", &["--network", "bridge"], &[]);
    let content = &report.files[0].content;
    assert!(!content.contains("127.0.0.11"), "{content}");
    assert!(!nameservers(content).is_empty(), "{content}");
}

fn file_listing_only_127_0_0_11_is_untouched_and_resolves(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net(e);
    // Docker <= 25 hands an IPv4 --dns to the embedded resolver and lists only 127.0.0.11 (as on
    // an IPv4-only host). Docker >= 26 lists only 127.0.0.11 whatever the --dns; there it gets the
    // IPv6 server, since the Docker 26 engine of the suite runs with --iptables=false and the
    // host's FORWARD policy drops bridged IPv4 between its containers (IPv6 passes).
    let dns = match e.era() {
        Era::Legacy => &net.dns_v4,
        Era::Modern => &net.dns_v6,
    };
    let (_c, report) = untouched_case(
        e,
        "only-embedded",
        &["--network", &net.name, "--dns", dns],
        &["lookup", "any", DUAL],
    );
    assert_eq!(nameservers(&report.files[0].content), ["127.0.0.11"]);
    let lookup = &report.lookups[0];
    assert_answer(lookup, DUAL, &[DUAL_A, DUAL_AAAA]);
    assert_fast(lookup, "through the kept embedded resolver");
}

// ---------------------------------------------------------------------------------------------
// A restart: the engine writes the file again, and shim meets it again.

/// Waits until `needle` stands `count` times on the container's stdout.
fn wait_for_count(c: &Container, needle: &str, count: usize) -> (String, String) {
    let start = Instant::now();
    loop {
        let (stdout, stderr) = c.logs();
        if stdout.lines().filter(|l| *l == needle).count() >= count {
            return (stdout, stderr);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}: {needle:?} not {count} times\nstdout:\n{stdout}\nstderr:\n{stderr}",
            c.name
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn restart_rewrites_the_file_and_shim_acts_again(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let test = common::test_name();
    let era = e.era();
    let net = seed_net(e);
    // Each start prints the file as the engine wrote it, execs shim (PID 1), prints it again.
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([
        "--entrypoint",
        "/probe",
        app_image(e, Libc::Glibc),
        "file",
        RESOLV_CONF,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
        "wait",
    ]);
    let c = Container::run_detached(e, "restart", &args);
    wait_for_count(&c, "ready", 1);
    e.docker_ok(&["restart", "-t", "5", &c.name]);
    let (stdout, stderr) = wait_for_count(&c, "ready", 2);
    let files = parse_report(&stdout).files;
    assert_eq!(
        files.len(),
        4,
        "two starts, two files each:\n{stdout}\n{stderr}"
    );
    let (first_written, first_seen) = (&files[0], &files[1]);
    let (again_written, again_seen) = (&files[2], &files[3]);
    println!(
        "{test}: after the restart Docker {} wrote (inode {} -> {}):\n{}",
        e.version().unwrap_or("?"),
        first_written.inode,
        again_written.inode,
        again_written.content
    );
    // The engine writes the file again on the restart, as it first wrote it: on <= 25 with
    // 127.0.0.11 back, so the fix is undone; on >= 26 the same text (the file was never changed,
    // so Docker 26 still counts it as its own to rewrite).
    assert_eq!(again_written.content, first_written.content);
    assert_engine_file(era, &again_written.content, &net.dns_v6);
    // And shim acts again, as on the first start.
    for (written, seen) in [(first_written, first_seen), (again_written, again_seen)] {
        assert_eq!(seen.content, expected_after(era, &written.content));
        assert_eq!(seen.inode, written.inode, "in place");
        if era == Era::Modern {
            assert_eq!(seen, written, "R3: kept, same mtime");
        }
    }
    assert_eq!(c.host_resolv_conf_snap(), *again_seen);
}

// ---------------------------------------------------------------------------------------------
// Signals and PID 1.

/// A long-running app under shim (the image's ENTRYPOINT) on the seed network.
fn start_waiting_app(e: Engine, what: &str) -> (Container, Report) {
    let net = seed_net(e);
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([app_image(e, Libc::Glibc), "/probe", "self", "ps", "wait"]);
    let container = Container::run_detached(e, what, &args);
    let (stdout, _) = container.wait_for_stdout("ready", Duration::from_secs(20));
    let report = parse_report(&stdout);
    (container, report)
}

fn docker_stop_sigterm_reaches_the_app_and_its_exit_code_is_the_containers(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let (container, started) = start_waiting_app(e, "stop");
    let start = Instant::now();
    e.docker_ok(&["stop", "-t", "5", &container.name]);
    let took = start.elapsed();
    let (stdout, stderr) = container.logs();
    let report = parse_report(&stdout);
    assert_eq!(
        report.signals,
        ["TERM"],
        "the app's TERM handler ran\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("exiting 42"), "{stdout}");
    assert_eq!(
        container.inspect("{{.State.ExitCode}}"),
        "42",
        "the container's exit code is the app's (not 137 from the KILL after the timeout)"
    );
    assert!(took < Duration::from_secs(4), "docker stop took {took:?}");
    assert_shim_is_pid1_parent(&started);
}

fn docker_kill_usr1_reaches_the_app(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let (container, started) = start_waiting_app(e, "usr1");
    e.docker_ok(&["kill", "-s", "USR1", &container.name]);
    let (stdout, _) = container.wait_for_stdout("signal USR1", Duration::from_secs(10));
    assert_eq!(parse_report(&stdout).signals, ["USR1"]);
    assert_eq!(
        container.inspect("{{.State.Running}}"),
        "true",
        "USR1 is the app's to handle: the container still runs"
    );
    assert_shim_is_pid1_parent(&started);
}

fn docker_run_init_shim_is_not_pid1_and_execs_the_app(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net(e);
    let mut args = vec!["--init"];
    args.extend(net.ipv6_dns_args());
    args.extend([
        app_image(e, Libc::Glibc),
        "/probe",
        "self",
        "ps",
        "file",
        RESOLV_CONF,
    ]);
    let (_c, out) = Container::run(e, "init", &args);
    let report = report_of("--init", &out);
    let me = &report.selves[0];
    let comms: Vec<(u32, &str)> = report
        .procs
        .iter()
        .map(|p| (p.pid, p.comm.as_str()))
        .collect();
    // docker-init (tini; on the CI Docker 26 engine, shim itself: tests/docker_init.rs) is PID 1
    // and started shim; shim fixed the file and exec'd the app (I4),
    // which now has shim's PID: no shim process is left.
    assert_eq!(
        report
            .procs
            .iter()
            .find(|p| p.pid == 1)
            .map(|p| p.comm.as_str()),
        Some("docker-init"),
        "{comms:?}"
    );
    assert_eq!(me.ppid, 1, "the app is docker-init's child: {comms:?}");
    assert_eq!(
        report.procs.len(),
        2,
        "docker-init and the app only: {comms:?}"
    );
    assert!(
        report
            .procs
            .iter()
            .any(|p| p.pid == me.pid && p.ppid == 1 && p.comm == "probe"),
        "{comms:?}"
    );
    assert!(!report.procs.iter().any(|p| p.comm == "shim"), "{comms:?}");
    let content = &report.files[0].content;
    match e.era() {
        Era::Legacy => assert!(!content.contains("127.0.0.11"), "fixed:\n{content}"),
        Era::Modern => assert_eq!(nameservers(content), ["127.0.0.11"], "kept:\n{content}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Files shim may not write (R5), and --user (I7).

fn read_only_rootfs(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let test = common::test_name();
    let net = seed_net(e);
    let mut args = vec!["--read-only"];
    args.extend(net.ipv6_dns_args());
    args.extend([
        app_image(e, Libc::Glibc),
        "/probe",
        "file",
        RESOLV_CONF,
        "wait",
    ]);
    let container = Container::run_detached(e, "read-only", &args);
    let (stdout, stderr) = container.wait_for_stdout("ready", Duration::from_secs(20));
    assert_eq!(container.inspect("{{.State.Running}}"), "true");
    let report = parse_report(&stdout);
    assert!(
        report.files[0].content.contains(EMBEDDED_LINE),
        "the file could not change"
    );
    let lines = shim_lines(&stderr);
    if e.era() == Era::Modern {
        // Nothing to write (R3): the read-only mount is never met, and nothing is said.
        assert_eq!(lines, Vec::<&str>::new(), "{stderr}");
        return;
    }
    // R5: one line naming the file, the cause and the remedy.
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    let line = lines[0];
    assert!(line.contains(RESOLV_CONF), "names the file: {line}");
    assert!(
        line.contains("Read-only file system") || line.contains("EROFS"),
        "names the cause: {line}"
    );
    assert!(
        line.contains("read-only"),
        "names the remedy's context: {line}"
    );
    println!("{test}: {line}");
}

fn image_with_user_1000(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let test = common::test_name();
    let net = seed_net(e);
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([user_1000_image(e), "/probe", "self", "file", RESOLV_CONF]);
    let (_c, out) = Container::run(e, "user-1000", &args);
    let report = report_of("USER 1000", &out);
    assert_eq!(
        report.selves[0].uid, 1000,
        "the app runs, as the image's USER"
    );
    assert!(report.files[0].content.contains(EMBEDDED_LINE));
    let stderr = common::stderr(&out);
    let lines = shim_lines(&stderr);
    if e.era() == Era::Modern {
        // Nothing to write (R3): no permission is needed, and nothing is said.
        assert_eq!(lines, Vec::<&str>::new(), "{stderr}");
        return;
    }
    // R5: one line naming the file, the cause and the remedy.
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    let line = lines[0];
    assert!(line.contains(RESOLV_CONF), "names the file: {line}");
    assert!(
        line.contains("Permission denied") || line.contains("EACCES"),
        "names the cause: {line}"
    );
    assert!(line.contains("--user"), "names the remedy --user: {line}");
    println!("{test}: {line}");
}

fn user_flag_as_root_fixes_the_file_then_runs_the_app_as_1000(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net(e);
    let image = app_image(e, Libc::Glibc);
    let app = ["/probe", "self", "file", RESOLV_CONF];
    // The flag, and its environment fallback with the image's own ENTRYPOINT.
    let mut by_flag = net.ipv6_dns_args().to_vec();
    by_flag.extend(["--entrypoint", "/shim", image, "--user", "1000", "--"]);
    by_flag.extend(app);
    let mut by_env = net.ipv6_dns_args().to_vec();
    by_env.extend(["-e", "SHIM_USER=1000", image]);
    by_env.extend(app);
    let runs = thread::scope(|s| {
        let flag = s.spawn(|| Container::run(e, "user-flag", &by_flag));
        let env = s.spawn(|| Container::run(e, "user-env", &by_env));
        [
            ("--user 1000", flag.join().expect("thread")),
            ("SHIM_USER=1000", env.join().expect("thread")),
        ]
    });
    for (how, (_c, out)) in &runs {
        let report = report_of(how, out);
        let me = &report.selves[0];
        assert_eq!((me.uid, me.gid), (1000, 1000), "{how}: {me:?}");
        let mut groups = me.groups.clone();
        groups.sort_unstable();
        assert_eq!(
            groups,
            [50, 1000],
            "{how}: the user's groups from /etc/group, root's gone: {me:?}"
        );
        assert_eq!(me.home, "/home/app", "{how}: HOME from /etc/passwd");
        let content = &report.files[0].content;
        match e.era() {
            Era::Legacy => {
                assert!(
                    !content.contains("127.0.0.11"),
                    "{how}: fixed as root first: {content}"
                );
                assert!(content.contains(&net.dns_v6), "{content}");
            }
            Era::Modern => assert_engine_file(Era::Modern, content, &net.dns_v6),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One file shared by several containers (R6).

fn network_container_mode_shares_one_file_and_it_ends_correct(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let era = e.era();
    let net = seed_net(e);
    let image = app_image(e, Libc::Glibc);
    // The first container owns the network namespace and the file; it starts with no shim, so the
    // joiners' shims find the engine's file as it was and all start at once on it.
    let mut first_args = net.ipv6_dns_args().to_vec();
    first_args.extend(["--entrypoint", "/probe", image, "file", RESOLV_CONF, "wait"]);
    let first = Container::run_detached(e, "shared-first", &first_args);
    let (stdout, _) = first.wait_for_stdout("ready", Duration::from_secs(20));
    let original = parse_report(&stdout).files[0].clone();
    assert!(original.content.contains(EMBEDDED_LINE));
    let expected = expected_after(era, &original.content);

    let mode = format!("container:{}", first.name);
    let joiners: Vec<Container> = (0..3)
        .map(|_| {
            Container::create(
                e,
                "shared-joiner",
                &["--network", &mode, image, "/probe", "file", RESOLV_CONF],
            )
        })
        .collect();
    let outputs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = joiners
            .iter()
            .map(|c| s.spawn(|| e.docker(&["start", "-a", &c.name])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for out in &outputs {
        let report = report_of("a joiner with shim", out);
        assert_eq!(
            report.files[0].content, expected,
            "each shim's app sees it fixed (or kept)"
        );
        assert_eq!(report.files[0].inode, original.inode, "one shared file");
        if era == Era::Modern {
            assert_eq!(report.files[0], original, "R3: kept, same mtime");
        }
    }
    // Then a shim in the first container too (`docker exec`, so not PID 1: it execs the app): on
    // the file the others fixed it changes nothing, not even the mtime.
    let again = first.exec(&[
        "/probe",
        "file",
        RESOLV_CONF,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
    ]);
    let seen = report_of("docker exec shim in the first container", &again);
    assert_eq!(
        seen.files[0].content, expected,
        "the first container sees it fixed (or kept)"
    );
    assert_eq!(seen.files[0].inode, original.inode);
    assert_eq!(
        seen.files[1], seen.files[0],
        "a second shim leaves the file as it is"
    );
    let (host_content, host_inode) = first.host_resolv_conf();
    assert_eq!((host_content, host_inode), (expected, original.inode));
}

// ---------------------------------------------------------------------------------------------
// shim --check-dns in the seed case: what it says, and that it changes nothing.

/// `shim --check-dns ARGS` in an app container on the seed network; stdout, and the file after.
fn check_dns(e: Engine, extra: &[&str]) -> (Output, String, FileSnap) {
    let net = seed_net(e);
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([
        "--entrypoint",
        "/shim",
        app_image(e, Libc::Glibc),
        "--check-dns",
        "--name",
        V6ONLY,
    ]);
    args.extend_from_slice(extra);
    let (container, out) = Container::run(e, "check-dns", &args);
    let stdout = common::stdout(&out);
    assert!(
        out.status.success(),
        "AAAA resolves through the servers the app will use: exit 0 ({})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        common::stderr(&out)
    );
    let host = container.host_resolv_conf_snap();
    // --check-dns changes nothing.
    assert!(host.content.contains(EMBEDDED_LINE), "{}", host.content);
    (out, stdout, host)
}

fn check_dns_json(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let test = common::test_name();
    let era = e.era();
    let net = seed_net(e);
    let (_out, stdout, _host) = check_dns(e, &["--json"]);
    let json: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    println!("{test}: {stdout}");
    assert_eq!(json.get("file").and_then(Value::as_str), Some(RESOLV_CONF));
    let kind = match era {
        Era::Legacy => "docker-legacy",
        Era::Modern => "docker-modern",
    };
    assert_eq!(
        json.get("kind").and_then(Value::as_str),
        Some(kind),
        "{stdout}"
    );
    let plan = json
        .get("plan")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no plan: {stdout}"));
    match era {
        Era::Legacy => assert!(!plan.is_empty(), "a run would drop 127.0.0.11: {stdout}"),
        Era::Modern => assert!(plan.is_empty(), "a run would keep the file (R3): {stdout}"),
    }
    assert_eq!(json.get("ok"), Some(&Value::Bool(true)), "{stdout}");
    let servers = json
        .get("servers")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no servers list: {stdout}"));
    let server = |address: &str| {
        servers
            .iter()
            .find(|s| s.get("address").and_then(Value::as_str) == Some(address))
            .unwrap_or_else(|| panic!("no server {address}: {stdout}"))
    };
    let aaaa_status = |s: &Value| s.get("aaaa").and_then(|q| q.get("status")).cloned();
    let aaaa_has = |s: &Value, address: &str| {
        s.get("aaaa")
            .and_then(|q| q.get("addresses"))
            .and_then(Value::as_array)
            .is_some_and(|a| a.contains(&Value::from(address)))
    };
    let embedded = server("127.0.0.11");
    match era {
        Era::Legacy => {
            assert_eq!(
                aaaa_status(embedded),
                Some(Value::from("timeout")),
                "127.0.0.11 has no upstream and never answers: {stdout}"
            );
            let ipv6 = server(&net.dns_v6);
            assert_eq!(aaaa_status(ipv6), Some(Value::from("ok")), "{stdout}");
            assert!(aaaa_has(ipv6, V6ONLY_AAAA), "{stdout}");
        }
        Era::Modern => {
            // The only server the app uses, forwarding to the IPv6 one.
            assert_eq!(servers.len(), 1, "{stdout}");
            assert_eq!(aaaa_status(embedded), Some(Value::from("ok")), "{stdout}");
            assert!(aaaa_has(embedded, V6ONLY_AAAA), "{stdout}");
        }
    }
}

fn check_dns_text(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let test = common::test_name();
    let (_out, stdout, _host) = check_dns(e, &[]);
    println!("{test}:\n{stdout}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name:?} line:\n{stdout}"))
    };
    let kind = match e.era() {
        Era::Legacy => "Docker <= 25",
        Era::Modern => "Docker >= 26",
    };
    assert!(field("kind:").starts_with(kind), "{stdout}");
    let verdict = field("verdict:");
    assert!(verdict.starts_with("OK"), "{stdout}");
    assert!(verdict.contains(V6ONLY_AAAA), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// A compose-like project: names of other containers and IPv6 DNS together (R8, `--embedded proxy`).

/// How many times the app looks up each name: musl's race without the proxy loses often enough
/// to show in this many.
const ROUNDS: usize = 20;

/// The other service's network alias (what compose names a service by).
const WEB_ALIAS: &str = "web";

/// /probe's steps: the file, then ROUNDS times the other container's name, its alias and an
/// IPv6-only outside name, then who runs.
fn project_steps(web_name: &str) -> Vec<&str> {
    let mut steps = vec!["file", RESOLV_CONF];
    for _ in 0..ROUNDS {
        steps.extend([
            "lookup", "any", web_name, "lookup", "any", WEB_ALIAS, "lookup", "6", V6ONLY,
        ]);
    }
    steps.extend(["self", "ps"]);
    steps
}

/// The lines of a file other than its `nameserver` lines (search, options, comments).
fn other_lines(content: &str) -> Vec<&str> {
    content
        .lines()
        .filter(|l| !l.starts_with("nameserver"))
        .collect()
}

/// "median/max ms, failures" of the lookups of `name`, for the log.
fn summary(lookups: &[Lookup], name: &str) -> String {
    let mut ms: Vec<f64> = lookups
        .iter()
        .filter(|l| l.name == name)
        .map(|l| l.ms)
        .collect();
    ms.sort_by(f64::total_cmp);
    let failed = lookups
        .iter()
        .filter(|l| l.name == name && l.status != "ok")
        .count();
    format!(
        "median {:.1} ms, max {:.1} ms, {failed}/{} failed",
        ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    )
}

fn compose_names_and_ipv6_dns_through_the_proxy(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc, Need::MuslGcc, Need::Dnsmasq]) {
        return;
    }
    let test = common::test_name();
    let era = e.era();
    let net = seed_net(e);
    // The other service: a container on the project's network, with an alias, that waits.
    let web = Container::run_detached(
        e,
        "web",
        &[
            "--network",
            &net.name,
            "--network-alias",
            WEB_ALIAS,
            "--entrypoint",
            "/probe",
            app_image(e, Libc::Glibc),
            "wait",
        ],
    );
    web.wait_for_stdout("ready", Duration::from_secs(20));
    let web_v4 = web.inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}");
    let web_v6 = web.inspect("{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}");
    let web_addrs = [web_v4.as_str(), web_v6.as_str()];
    let steps = project_steps(&web.name);
    // The project's upstream: a resolver that, like a public one, knows the outside name and
    // answers NXDOMAIN for every other name, a container's included (the seed network's server
    // answers REFUSED outside its zone, which musl ignores: no race to see there).
    let upstream = net
        .dns_v6
        .strip_suffix("::53")
        .map(|prefix| format!("{prefix}::54"))
        .expect("the seed server's address ends in ::53");
    let host_record = format!("--host-record={V6ONLY},{V6ONLY_AAAA}");
    let resolver = Container::run_detached(
        e,
        "upstream",
        &[
            "--network",
            &net.name,
            "--ip6",
            &upstream,
            dns_image(e),
            "/usr/sbin/dnsmasq",
            "--keep-in-foreground",
            "--log-facility=-",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--user=root",
            "--pid-file=",
            "--local=/#/",
            &host_record,
        ],
    );
    let start = Instant::now();
    while !resolver.logs().1.contains("started") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dnsmasq did not start: {:?}",
            resolver.logs()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let dns_args = ["--network", net.name.as_str(), "--dns", upstream.as_str()];

    // The app, with glibc and with musl: shim as ENTRYPOINT with `--embedded proxy`, and the
    // image's own ENTRYPOINT with SHIM_EMBEDDED=auto (shim is PID 1 in both); and, as the
    // contrast, musl with no shim on the engine's file.
    let proxy_run = |libc: Libc| {
        let mut args = dns_args.to_vec();
        args.extend([
            "-e",
            "SHIM_LOG=info",
            "--entrypoint",
            "/shim",
            app_image(e, libc),
        ]);
        args.extend(["--embedded", "proxy", "--", "/probe"]);
        args.extend(&steps);
        args
    };
    let auto_run = |libc: Libc| {
        let mut args = dns_args.to_vec();
        args.extend(["-e", "SHIM_LOG=info", "-e", "SHIM_EMBEDDED=auto"]);
        args.extend([app_image(e, libc), "/probe"]);
        args.extend(&steps);
        args
    };
    let mut baseline = dns_args.to_vec();
    baseline.extend(["--entrypoint", "/probe", app_image(e, Libc::Musl)]);
    baseline.extend(&steps);
    let runs = [
        ("glibc, --embedded proxy", proxy_run(Libc::Glibc)),
        ("musl, --embedded proxy", proxy_run(Libc::Musl)),
        ("glibc, SHIM_EMBEDDED=auto", auto_run(Libc::Glibc)),
        ("musl, SHIM_EMBEDDED=auto", auto_run(Libc::Musl)),
    ];
    let (outputs, baseline_out) = thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(_, args)| s.spawn(|| Container::run(e, "project-app", args)))
            .collect();
        let base = s.spawn(|| Container::run(e, "project-noshim", &baseline));
        let outputs: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        (outputs, base.join().expect("thread"))
    });

    // Without shim: the engine's file, and what musl makes of it.
    let base = report_of("musl without shim", &baseline_out.1);
    let written = &base.files[0].content;
    println!(
        "{test}: Docker {} wrote:\n{written}",
        e.version().unwrap_or("?")
    );
    assert_engine_file(era, written, &upstream);
    println!(
        "{test}: musl without shim: {}: {}; {WEB_ALIAS}: {}; {V6ONLY}: {}",
        web.name,
        summary(&base.lookups, &web.name),
        summary(&base.lookups, WEB_ALIAS),
        summary(&base.lookups, V6ONLY)
    );

    for ((how, _), (_c, out)) in runs.iter().zip(&outputs) {
        let report = report_of(how, out);
        let content = &report.files[0].content;
        match era {
            // R8: the proxy is the only nameserver; search and options stay.
            Era::Legacy => assert_eq!(nameservers(content), ["127.0.0.153"], "{how}: {content}"),
            // R3: Docker >= 26 forwards to the upstreams itself; the file is kept and no proxy
            // starts.
            Era::Modern => assert_eq!(content, written, "{how}: kept as written"),
        }
        assert_eq!(other_lines(content), other_lines(written), "{how}");
        assert_eq!(report.lookups.len(), 3 * ROUNDS, "{how}");
        let stderr = common::stderr(out);
        // Every lookup right and fast; all the wrong ones named at once, with what shim said.
        let wrong: Vec<&Lookup> = report
            .lookups
            .iter()
            .filter(|lookup| {
                let expected: BTreeSet<&str> = if lookup.name == V6ONLY {
                    [V6ONLY_AAAA].into()
                } else {
                    web_addrs.into()
                };
                let got: BTreeSet<&str> = lookup.addrs.iter().map(String::as_str).collect();
                lookup.status != "ok" || got != expected || lookup.ms >= FAST_MS
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{how}: {} of {} lookups failed, answered other addresses than {web_addrs:?} / \
             {V6ONLY_AAAA}, or took {FAST_MS} ms or more: {wrong:#?}\nshim said:\n{stderr}",
            wrong.len(),
            report.lookups.len()
        );
        assert_shim_is_pid1_parent(&report);
        // The proxy is a thread of shim, not a process: PID 1 and the app, nothing else.
        assert_eq!(report.procs.len(), 2, "{how}: {:?}", report.procs);
        let said = shim_lines(&stderr)
            .into_iter()
            .filter(|l| l.contains("now names only shim's proxy"))
            .count();
        let expected_said = match era {
            Era::Legacy => 1,
            Era::Modern => 0,
        };
        assert_eq!(
            said, expected_said,
            "{how}: one info line where the proxy starts, none elsewhere:\n{stderr}"
        );
        if *how == "glibc, --embedded proxy" {
            println!("{test}: {how}: shim said:\n{stderr}");
        }
        println!(
            "{test}: {how}: {}: {}; {WEB_ALIAS}: {}; {V6ONLY}: {}",
            web.name,
            summary(&report.lookups, &web.name),
            summary(&report.lookups, WEB_ALIAS),
            summary(&report.lookups, V6ONLY)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The images themselves.

fn shim_image_holds_only_shim_and_the_example_image_runs_it_as_entrypoint(e: Engine) {
    if !ready(&[Need::Engine(e), Need::Gcc]) {
        return;
    }
    let test = common::test_name();
    let shim = shim_image(e);
    assert_eq!(
        e.docker_ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", shim]),
        "1"
    );
    // The one layer holds one file. `docker save` names the layers in manifest.json: `<id>/layer.tar`
    // up to Docker 24, `blobs/sha256/<digest>` (an OCI layout) from Docker 25.
    let saved = work_dir(&format!("saved-shim-image-{}", e.id()));
    let mut save = e
        .command()
        .args(["save", shim])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let untar = std::process::Command::new("tar")
        .args(["-x", "-C", saved.to_str().expect("UTF-8 path")])
        .stdin(save.stdout.take().expect("docker save's stdout"))
        .status()
        .expect("tar -x");
    assert!(save.wait().expect("docker save").success() && untar.success());
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(saved.join("manifest.json")).expect("manifest.json in docker save"),
    )
    .expect("manifest.json is JSON");
    let layers: Vec<PathBuf> = manifest
        .as_array()
        .and_then(|images| images.first())
        .and_then(|image| image.get("Layers"))
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no Layers in {manifest}"))
        .iter()
        .map(|l| saved.join(l.as_str().expect("a layer path")))
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let listing = common::output(std::process::Command::new("tar").arg("-tf").arg(&layers[0]));
    assert_eq!(lines(&listing), ["shim"]);

    let app = app_image(e, Libc::Glibc);
    assert_eq!(
        e.docker_ok(&["image", "inspect", "-f", "{{json .Config.Entrypoint}}", app]),
        r#"["/shim","--"]"#
    );
    let (_c, out) = Container::run(e, "version", &["--entrypoint", "/shim", app, "--version"]);
    assert_eq!(common::stdout(&out).trim(), common::version_line().trim());
    println!("{test}: Docker Engine {}", e.version().unwrap_or("?"));
}

/// `--check-dns --json` is read with serde_json: the shape shim prints (nested objects and arrays,
/// numbers, null, escapes) reads as expected, and what is not JSON is refused.
#[test]
fn json_reader_reads_what_check_dns_prints() {
    let parse = serde_json::from_str::<Value>;
    let json = parse(
        r#" {"file":"/etc/resolv.conf","ok":false,"n":-1.5e2,"none":null,
            "servers":[{"address":"127.0.0.11","aaaa":{"status":"timeout","addresses":[],"ms":1000}}],
            "s":"a\"b\\c\u00e9\ud83d\ude00"} "#,
    )
    .expect("valid JSON");
    assert_eq!(
        json.get("file").and_then(Value::as_str),
        Some("/etc/resolv.conf")
    );
    assert_eq!(json.get("ok"), Some(&Value::Bool(false)));
    assert_eq!(json.get("n"), Some(&Value::from(-150.0)));
    assert_eq!(json.get("none"), Some(&Value::Null));
    assert_eq!(
        json.get("s").and_then(Value::as_str),
        Some("a\"b\\c\u{e9}\u{1f600}")
    );
    let servers = json
        .get("servers")
        .and_then(Value::as_array)
        .expect("array");
    assert_eq!(
        servers[0].get("aaaa").and_then(|q| q.get("status")),
        Some(&Value::from("timeout"))
    );
    for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"x", "tru", "{} x"] {
        assert!(parse(bad).is_err(), "{bad:?} should not parse");
    }
}
