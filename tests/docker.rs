//! The end-to-end suite on a real Docker Engine (issue 6): shim runs in real containers, as the
//! ENTRYPOINT of an image built from `Dockerfile.example`, and each test checks what a user would
//! see there.
//!
//! No registry is reachable, so every image is built here from files on this machine:
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
//! own containers. App containers get `--dns <the DNS server's IPv6 address>` only, so Docker (<= 25)
//! writes `nameserver 127.0.0.11` (an embedded resolver with no upstream, which never answers) before
//! the real server.
//!
//! On a machine without a Docker daemon (or gcc, musl-gcc, dnsmasq) each test that needs one prints
//! a SKIPPED line; under `CI=true` that is a failure instead. Everything the suite creates carries
//! the label `shim-e2e.owner=<pid>.<start time>` and a per-run name prefix: containers are removed
//! by a guard when a test ends (even by a panic), networks and images when the test process exits,
//! and objects left by a run that was killed are swept by the next run.
//!
//! That machinery (requirements, the run's label and sweep, the docker wrappers and the container
//! guard, the images, the seed network, the reading of /probe's output) is `tests/docker/harness.rs`;
//! this file holds what a user would see, one test per scenario.
//!
//! `SHIM_E2E_BINARY=/path/to/static/shim` puts another build in the shim image (by default the
//! static musl binary is built from this tree). Run with `--nocapture` to see Docker's files, the
//! lookup times and the lines shim printed.

mod common;
#[path = "docker/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use harness::{
    app_image, docker, docker_ok, lines, nameservers, parse_report, ready, report_of, seed_net,
    shim_image, shim_lines, user_1000_image, walk, work_dir, Container, Libc, Lookup, Need, Report,
    DUAL, DUAL_A, DUAL_AAAA, V6ONLY, V6ONLY_AAAA,
};

const RESOLV_CONF: &str = "/etc/resolv.conf";
const EMBEDDED_LINE: &str = "nameserver 127.0.0.11";
/// A lookup "at once": the answer comes in a few milliseconds; this bound leaves room for a busy
/// machine and is still far below the 5 s resolver timeout it is compared with.
const FAST_MS: f64 = 1000.0;
/// glibc's default resolver timeout is 5 s; a lookup that waited it out took at least this.
const WAITED_MS: f64 = 4000.0;

// ---------------------------------------------------------------------------------------------
// What a user should see: the fixed file, quick answers, shim as PID 1.

/// What R2 makes of Docker's file: the 127.0.0.11 line(s) gone, every other line as it was.
fn without_embedded(content: &str) -> String {
    content
        .split_inclusive('\n')
        .filter(|line| line.trim_end_matches('\n') != EMBEDDED_LINE)
        .collect()
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

/// The app runs under shim as PID 1 (the contract's I1), not in its place.
fn assert_shim_is_pid1_parent(report: &Report) {
    let me = &report.selves[0];
    let pid1 = report.procs.iter().find(|p| p.pid == 1);
    assert!(
        me.pid != 1 && me.ppid == 1 && pid1.is_some_and(|p| p.comm == "shim"),
        "shim should stay as PID 1 with the app as its child (DESIGN I1); the app is PID {} \
         (parent {}), PID 1 is {:?}: shim exec'd the app instead (needs the PID-1 supervisor, issue 4)",
        me.pid,
        me.ppid,
        pid1.map(|p| &p.comm)
    );
}

// ---------------------------------------------------------------------------------------------
// The seed case.

/// One client: a container that looks up without shim, then execs shim and looks up again (same
/// file, same inode), and a container with shim as the image's ENTRYPOINT; prints the times.
fn seed_case(test: &str, libc: Libc, extra: &[&str]) {
    let net = seed_net();
    let image = app_image(libc);
    let mut common_args: Vec<&str> = net.ipv6_dns_args().to_vec();
    common_args.extend_from_slice(extra);

    // Without shim: Docker's file as it is, one lookup that pays the resolver's wait (only once per
    // client), then `exec /shim` as PID 1 and the same lookup through the fixed file.
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
        let a = s.spawn(|| Container::run("seed-noshim", &before_after));
        let b = s.spawn(|| Container::run("seed-shim", &entrypoint));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let a = report_of("without shim, then exec shim", &out_a);
    let with = report_of("shim as ENTRYPOINT", &out_b);

    let before = &a.files[0];
    let after = &a.files[1];
    println!(
        "{test}: Docker wrote ({} bytes):\n{}",
        before.content.len(),
        before.content
    );
    let servers = nameservers(&before.content);
    assert_eq!(
        servers.first(),
        Some(&"127.0.0.11"),
        "Docker <= 25 lists its embedded resolver first: {before:?}"
    );
    assert!(
        servers.contains(&net.dns_v6.as_str()),
        "the --dns server: {before:?}"
    );
    assert_eq!(
        after.content,
        without_embedded(&before.content),
        "127.0.0.11 gone, every other line kept"
    );
    assert_eq!(
        after.inode, before.inode,
        "written in place: same inode (the bind mount)"
    );
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
    match libc {
        // glibc asks 127.0.0.11 first, waits its 5 s timeout, then asks the next server.
        Libc::Glibc => assert!(
            slow.ms >= WAITED_MS,
            "without shim glibc waits the resolver timeout: {slow:?}"
        ),
        // musl asks every server at once and takes the first answer (DESIGN.md): no wait.
        Libc::Musl => assert_fast(slow, "musl without shim"),
    }
    assert_fast(fixed, "after exec shim");
    assert_fast(&with.lookups[0], "shim as ENTRYPOINT");
    assert_fast(&with.lookups[1], "shim as ENTRYPOINT");

    // The host's file behind the bind mount is the one that was fixed.
    let (host_content, host_inode) = b.host_resolv_conf();
    assert_eq!(host_content, with.files[0].content);
    assert_eq!(host_inode, with.files[0].inode);
    assert!(!host_content.contains("127.0.0.11"));
}

#[test]
fn seed_case_glibc_waits_without_shim_and_answers_at_once_with_it() {
    const TEST: &str = "seed_case_glibc_waits_without_shim_and_answers_at_once_with_it";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    // A search domain too, to see that the other lines are kept.
    seed_case(TEST, Libc::Glibc, &["--dns-search", "shim.test"]);
}

#[test]
fn seed_case_musl_answers_at_once_and_the_file_is_fixed() {
    const TEST: &str = "seed_case_musl_answers_at_once_and_the_file_is_fixed";
    if !ready(
        TEST,
        &[Need::Docker, Need::Gcc, Need::MuslGcc, Need::Dnsmasq],
    ) {
        return;
    }
    seed_case(TEST, Libc::Musl, &[]);
}

// ---------------------------------------------------------------------------------------------
// Files that must stay untouched (R1, R3).

/// Runs /probe, then execs shim (as PID 1), then /probe again: the file before and after.
fn untouched_case(what: &str, network_args: &[&str], then: &[&str]) -> (Container, Report) {
    let image = app_image(Libc::Glibc);
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
    let (container, out) = Container::run(what, &args);
    let report = report_of(what, &out);
    let (before, after) = (&report.files[0], &report.files[1]);
    println!("{what}: Docker wrote:\n{}", before.content);
    assert_eq!(
        after, before,
        "same bytes, same inode, same mtime: not written at all"
    );
    let (host_content, host_inode) = container.host_resolv_conf();
    assert_eq!(
        (host_content, host_inode),
        (before.content.clone(), before.inode)
    );
    (container, report)
}

#[test]
fn default_bridge_file_is_untouched() {
    const TEST: &str = "default_bridge_file_is_untouched";
    if !ready(TEST, &[Need::Docker, Need::Gcc]) {
        return;
    }
    // The default bridge copies the host's servers (no 127.0.0.11); nothing in it is asked.
    let (_c, report) = untouched_case("bridge", &["--network", "bridge"], &[]);
    let content = &report.files[0].content;
    assert!(!content.contains("127.0.0.11"), "{content}");
    assert!(!nameservers(content).is_empty(), "{content}");
}

#[test]
fn network_whose_file_lists_only_127_0_0_11_is_untouched_and_resolves() {
    const TEST: &str = "network_whose_file_lists_only_127_0_0_11_is_untouched_and_resolves";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    // An IPv4 --dns: Docker <= 25 hands it to the embedded resolver and lists only 127.0.0.11
    // (as on an IPv4-only host). The embedded resolver forwards to the suite's DNS server.
    let (_c, report) = untouched_case(
        "only-embedded",
        &["--network", &net.name, "--dns", &net.dns_v4],
        &["lookup", "any", DUAL],
    );
    assert_eq!(nameservers(&report.files[0].content), ["127.0.0.11"]);
    let lookup = &report.lookups[0];
    assert_answer(lookup, DUAL, &[DUAL_A, DUAL_AAAA]);
    assert_fast(lookup, "through the kept embedded resolver");
}

// ---------------------------------------------------------------------------------------------
// Signals and PID 1.

/// A long-running app under shim (the image's ENTRYPOINT) on the seed network.
fn start_waiting_app(what: &str) -> (Container, Report) {
    let net = seed_net();
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([app_image(Libc::Glibc), "/probe", "self", "ps", "wait"]);
    let container = Container::run_detached(what, &args);
    let (stdout, _) = container.wait_for_stdout("ready", Duration::from_secs(20));
    let report = parse_report(&stdout);
    (container, report)
}

#[test]
fn docker_stop_sigterm_reaches_the_app_and_its_exit_code_is_the_containers() {
    const TEST: &str = "docker_stop_sigterm_reaches_the_app_and_its_exit_code_is_the_containers";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let (container, started) = start_waiting_app("stop");
    let start = Instant::now();
    docker_ok(&["stop", "-t", "5", &container.name]);
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

#[test]
fn docker_kill_usr1_reaches_the_app() {
    const TEST: &str = "docker_kill_usr1_reaches_the_app";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let (container, started) = start_waiting_app("usr1");
    docker_ok(&["kill", "-s", "USR1", &container.name]);
    let (stdout, _) = container.wait_for_stdout("signal USR1", Duration::from_secs(10));
    assert_eq!(parse_report(&stdout).signals, ["USR1"]);
    assert_eq!(
        container.inspect("{{.State.Running}}"),
        "true",
        "USR1 is the app's to handle: the container still runs"
    );
    assert_shim_is_pid1_parent(&started);
}

#[test]
fn docker_run_init_shim_is_not_pid1_and_execs_the_app() {
    const TEST: &str = "docker_run_init_shim_is_not_pid1_and_execs_the_app";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = vec!["--init"];
    args.extend(net.ipv6_dns_args());
    args.extend([
        app_image(Libc::Glibc),
        "/probe",
        "self",
        "ps",
        "file",
        RESOLV_CONF,
    ]);
    let (_c, out) = Container::run("init", &args);
    let report = report_of("--init", &out);
    let me = &report.selves[0];
    let comms: Vec<(u32, &str)> = report
        .procs
        .iter()
        .map(|p| (p.pid, p.comm.as_str()))
        .collect();
    // docker-init (tini) is PID 1 and started shim; shim fixed the file and exec'd the app, which
    // now has shim's PID: no shim process is left.
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
    assert!(!report.files[0].content.contains("127.0.0.11"));
}

// ---------------------------------------------------------------------------------------------
// Files shim may not write (R5), and --user (I7).

#[test]
fn read_only_rootfs_gives_one_erofs_line_and_the_app_runs() {
    const TEST: &str = "read_only_rootfs_gives_one_erofs_line_and_the_app_runs";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = vec!["--read-only"];
    args.extend(net.ipv6_dns_args());
    args.extend([
        app_image(Libc::Glibc),
        "/probe",
        "file",
        RESOLV_CONF,
        "wait",
    ]);
    let container = Container::run_detached("read-only", &args);
    let (stdout, stderr) = container.wait_for_stdout("ready", Duration::from_secs(20));
    let lines = shim_lines(&stderr);
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
    assert_eq!(container.inspect("{{.State.Running}}"), "true");
    let report = parse_report(&stdout);
    assert!(
        report.files[0].content.contains(EMBEDDED_LINE),
        "the file could not change"
    );
    println!("{TEST}: {line}");
}

#[test]
fn image_with_user_1000_gives_one_eacces_line_naming_user_flag() {
    const TEST: &str = "image_with_user_1000_gives_one_eacces_line_naming_user_flag";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([user_1000_image(), "/probe", "self", "file", RESOLV_CONF]);
    let (_c, out) = Container::run("user-1000", &args);
    let report = report_of("USER 1000", &out);
    let stderr = common::stderr(&out);
    let lines = shim_lines(&stderr);
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    let line = lines[0];
    assert!(line.contains(RESOLV_CONF), "names the file: {line}");
    assert!(
        line.contains("Permission denied") || line.contains("EACCES"),
        "names the cause: {line}"
    );
    assert!(line.contains("--user"), "names the remedy --user: {line}");
    assert_eq!(
        report.selves[0].uid, 1000,
        "the app runs, as the image's USER"
    );
    assert!(report.files[0].content.contains(EMBEDDED_LINE));
    println!("{TEST}: {line}");
}

#[test]
fn user_flag_as_root_fixes_the_file_then_runs_the_app_as_1000() {
    const TEST: &str = "user_flag_as_root_fixes_the_file_then_runs_the_app_as_1000";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let image = app_image(Libc::Glibc);
    let app = ["/probe", "self", "file", RESOLV_CONF];
    // The flag, and its environment fallback with the image's own ENTRYPOINT.
    let mut by_flag = net.ipv6_dns_args().to_vec();
    by_flag.extend(["--entrypoint", "/shim", image, "--user", "1000", "--"]);
    by_flag.extend(app);
    let mut by_env = net.ipv6_dns_args().to_vec();
    by_env.extend(["-e", "SHIM_USER=1000", image]);
    by_env.extend(app);
    let runs = thread::scope(|s| {
        let flag = s.spawn(|| Container::run("user-flag", &by_flag));
        let env = s.spawn(|| Container::run("user-env", &by_env));
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
        assert!(
            !content.contains("127.0.0.11"),
            "{how}: fixed as root first: {content}"
        );
        assert!(content.contains(&net.dns_v6), "{content}");
    }
}

// ---------------------------------------------------------------------------------------------
// One file shared by several containers (R6).

#[test]
fn network_container_mode_shares_one_file_and_it_ends_correct() {
    const TEST: &str = "network_container_mode_shares_one_file_and_it_ends_correct";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let image = app_image(Libc::Glibc);
    // The first container owns the network namespace and the file; it starts with no shim, so the
    // joiners' shims find Docker's file as it was and all start at once on it.
    let mut first_args = net.ipv6_dns_args().to_vec();
    first_args.extend(["--entrypoint", "/probe", image, "file", RESOLV_CONF, "wait"]);
    let first = Container::run_detached("shared-first", &first_args);
    let (stdout, _) = first.wait_for_stdout("ready", Duration::from_secs(20));
    let original = parse_report(&stdout).files[0].clone();
    assert!(original.content.contains(EMBEDDED_LINE));
    let expected = without_embedded(&original.content);

    let mode = format!("container:{}", first.name);
    let joiners: Vec<Container> = (0..3)
        .map(|_| {
            Container::create(
                "shared-joiner",
                &["--network", &mode, image, "/probe", "file", RESOLV_CONF],
            )
        })
        .collect();
    let outputs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = joiners
            .iter()
            .map(|c| s.spawn(|| docker(&["start", "-a", &c.name])))
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
            "each shim's app sees it fixed"
        );
        assert_eq!(report.files[0].inode, original.inode, "one shared file");
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
        "the first container sees it fixed"
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
// shim --check-dns --json in the seed case.

#[test]
fn check_dns_json_reports_embedded_timeout_and_ipv6_server_ok() {
    const TEST: &str = "check_dns_json_reports_embedded_timeout_and_ipv6_server_ok";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([
        "--entrypoint",
        "/shim",
        app_image(Libc::Glibc),
        "--check-dns",
        "--json",
        "--name",
        V6ONLY,
    ]);
    let (container, out) = Container::run("check-dns", &args);
    let stdout = common::stdout(&out);
    let stderr = common::stderr(&out);
    assert!(
        out.status.success(),
        "AAAA resolves through the server left after the fix: exit 0 ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let json: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    println!("{TEST}: {stdout}");
    assert_eq!(json.get("file").and_then(Value::as_str), Some(RESOLV_CONF));
    assert!(
        json.get("kind").and_then(Value::as_str).is_some(),
        "{stdout}"
    );
    assert!(
        json.get("plan")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty()),
        "a run would drop 127.0.0.11: {stdout}"
    );
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
    let embedded = server("127.0.0.11");
    assert_eq!(
        aaaa_status(embedded),
        Some(Value::from("timeout")),
        "127.0.0.11 never answers: {stdout}"
    );
    let ipv6 = server(&net.dns_v6);
    assert_eq!(aaaa_status(ipv6), Some(Value::from("ok")), "{stdout}");
    let addresses = ipv6
        .get("aaaa")
        .and_then(|q| q.get("addresses"))
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no AAAA addresses: {stdout}"));
    assert!(addresses.contains(&Value::from(V6ONLY_AAAA)), "{stdout}");
    // --check-dns changes nothing.
    let (host_content, _) = container.host_resolv_conf();
    assert!(host_content.contains(EMBEDDED_LINE), "{host_content}");
}

// ---------------------------------------------------------------------------------------------
// The images themselves.

#[test]
fn shim_image_holds_only_shim_and_the_example_image_runs_it_as_entrypoint() {
    const TEST: &str = "shim_image_holds_only_shim_and_the_example_image_runs_it_as_entrypoint";
    if !ready(TEST, &[Need::Docker, Need::Gcc]) {
        return;
    }
    let shim = shim_image();
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", shim]),
        "1"
    );
    // The one layer holds one file.
    let saved = work_dir("saved-shim-image");
    let mut save = Command::new("docker")
        .args(["save", shim])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let untar = Command::new("tar")
        .args(["-x", "-C", saved.to_str().expect("UTF-8 path")])
        .stdin(save.stdout.take().expect("docker save's stdout"))
        .status()
        .expect("tar -x");
    assert!(save.wait().expect("docker save").success() && untar.success());
    let layers: Vec<PathBuf> = walk(&saved)
        .into_iter()
        .filter(|p| p.file_name() == Some(OsStr::new("layer.tar")))
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let listing = common::output(Command::new("tar").arg("-tf").arg(&layers[0]));
    assert_eq!(lines(&listing), ["shim"]);

    let app = app_image(Libc::Glibc);
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{json .Config.Entrypoint}}", app]),
        r#"["/shim","--"]"#
    );
    let (_c, out) = Container::run("version", &["--entrypoint", "/shim", app, "--version"]);
    assert_eq!(
        common::stdout(&out).trim(),
        format!("shim {}", env!("CARGO_PKG_VERSION"))
    );
    let engine = docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    println!("{TEST}: Docker Engine {engine}");
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
