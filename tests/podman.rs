//! shim on Podman 4.3 (netavark and aardvark-dns), rootful, as `scripts/engines/podman.sh start`
//! runs it: in a network and mount namespace of its own, whose host /etc/resolv.conf names
//! `UPSTREAM`, the address this test gives its DNS server. `$SHIM_E2E_PODMAN` is the `podman`
//! command that script prints (`.ci/run` sets it).
//!
//! Podman never lists 127.0.0.11: on a network with DNS enabled it writes `search dns.podman`,
//! aardvark-dns's gateway addresses, then the host's servers (DESIGN.md, "Other engines"). shim must
//! leave that file as it is, byte for byte, same inode and mtime (R1), and `shim --check-dns` must
//! say Podman and OK. The DNS server is the Docker suite's dnsmasq image, answering the test zone;
//! aardvark-dns forwards the names it does not own to it, so the check is about a real answer, and
//! every packet stays in the networks the test creates in that namespace.
//!
//! The images are built on the default Docker engine by the Docker suite's harness and handed to
//! Podman with `docker save | podman load`.

mod common;
#[allow(dead_code)]
#[path = "docker/harness.rs"]
mod harness;

use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use harness::{
    app_image, dns_image, nameservers, parse_report, ready, Engine, Libc, Need, DUAL, DUAL_A,
    DUAL_AAAA, V6ONLY, V6ONLY_AAAA,
};

const PODMAN_ENV: &str = "SHIM_E2E_PODMAN";
/// The host's nameserver in the namespace of scripts/engines/podman.sh, and the network it is on.
const UPSTREAM: &str = "fd00:5348:494d:1::53";
const SUBNET: &str = "fd00:5348:494d:1::/64";
const RESOLV_CONF: &str = "/etc/resolv.conf";

fn podman_command() -> Option<String> {
    std::env::var(PODMAN_ENV).ok().filter(|p| !p.is_empty())
}

fn podman(args: &[&str]) -> Output {
    let program = podman_command().expect("the podman command");
    common::output(Command::new(program).args(args).stdin(Stdio::null()))
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed ({}): {}",
        out.status,
        common::stderr(&out)
    );
    common::stdout(&out).trim().to_owned()
}

/// A podman object of this test (container, network, image), removed when the guard drops.
struct Removed(&'static [&'static str], String);

impl Drop for Removed {
    fn drop(&mut self) {
        let mut args = self.0.to_vec();
        args.push(&self.1);
        let _ = podman(&args);
    }
}

/// `docker save IMAGE | podman load`: the image's name in Podman.
fn load_into_podman(image: &str) -> Removed {
    let mut save = Engine::Default
        .command()
        .args(["save", image])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let out = Command::new(podman_command().expect("podman"))
        .args(["load", "-q"])
        .stdin(save.stdout.take().expect("docker save's stdout"))
        .output()
        .expect("podman load");
    assert!(save.wait().expect("docker save").success());
    assert!(
        out.status.success(),
        "podman load: {}",
        common::stderr(&out)
    );
    // "Loaded image: docker.io/library/NAME:latest"
    let name = common::stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("podman load named no image: {}", common::stdout(&out)));
    Removed(&["rmi", "-f"], name)
}

fn unique(what: &str) -> String {
    format!("shim-e2e-podman-{}-{what}", std::process::id())
}

#[test]
fn podman_file_is_untouched_and_check_dns_says_podman_and_ok() {
    if !ready(&[Need::Engine(Engine::Default), Need::Gcc, Need::Dnsmasq])
        || !common::require(
            podman_command().is_some(),
            "Podman ($SHIM_E2E_PODMAN, from scripts/engines/podman.sh start)",
        )
    {
        return;
    }
    let test = common::test_name();
    println!(
        "{test}: {}",
        podman_ok(&["version", "--format", "Podman {{.Client.Version}}"])
    );
    let app = load_into_podman(app_image(Engine::Default, Libc::Glibc));
    let dns = load_into_podman(dns_image(Engine::Default));

    let net = Removed(&["network", "rm", "-f"], unique("net"));
    podman_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        SUBNET,
        "--internal",
        &net.1,
    ]);
    let dnsmasq = Removed(&["rm", "-f", "-t", "0"], unique("dns"));
    let command = harness::dnsmasq_zone_command();
    let mut args = vec![
        "run",
        "-d",
        "--pull=never",
        "--name",
        &dnsmasq.1,
        "--network",
        &net.1,
        "--ip6",
        UPSTREAM,
        &dns.1,
    ];
    args.extend(command.iter().map(String::as_str));
    podman_ok(&args);
    let start = Instant::now();
    while !common::stderr(&podman(&["logs", &dnsmasq.1])).contains("started") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dnsmasq did not start"
        );
        thread::sleep(Duration::from_millis(50));
    }

    // The file as Podman wrote it, then shim (exec'd as PID 1), then the file and two lookups.
    let run = |name: &str, args: &[&str]| {
        let container = Removed(&["rm", "-f", "-t", "0"], unique(name));
        let mut full = vec![
            "run",
            "--pull=never",
            "--name",
            &container.1,
            "--network",
            &net.1,
        ];
        full.extend_from_slice(args);
        let out = podman(&full);
        (container, out)
    };
    let (_c, out) = run(
        "app",
        &[
            "--entrypoint",
            "/probe",
            &app.1,
            "file",
            RESOLV_CONF,
            "exec",
            "/shim",
            "--",
            "/probe",
            "file",
            RESOLV_CONF,
            "lookup",
            "6",
            V6ONLY,
            "lookup",
            "any",
            DUAL,
        ],
    );
    let stdout = common::stdout(&out);
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    let report = parse_report(&stdout);
    let (written, seen) = (&report.files[0], &report.files[1]);
    println!("{test}: Podman wrote:\n{}", written.content);
    assert_eq!(seen, written, "R1: same bytes, inode and mtime");
    assert!(
        stderr.lines().all(|l| !l.starts_with("shim: ")),
        "nothing to say: {stderr}"
    );
    // What Podman 4.3 writes with DNS enabled: its search domain, aardvark-dns on the network's
    // gateways (IPv6, IPv4), then the host's server.
    assert_eq!(
        written.content.lines().next(),
        Some("search dns.podman"),
        "{}",
        written.content
    );
    let servers = nameservers(&written.content);
    assert_eq!(servers.len(), 3, "{}", written.content);
    assert_eq!(
        servers[0], "fd00:5348:494d:1::1",
        "aardvark-dns, IPv6 gateway"
    );
    assert_eq!(servers[2], UPSTREAM, "the host's server");
    for (lookup, expected) in [
        (&report.lookups[0], &[V6ONLY_AAAA][..]),
        (&report.lookups[1], &[DUAL_A, DUAL_AAAA][..]),
    ] {
        assert_eq!(lookup.status, "ok", "{lookup:?}");
        let mut got = lookup.addrs.clone();
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|a| a.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{lookup:?}");
        assert!(lookup.ms < 1000.0, "answers at once: {lookup:?}");
    }
    println!(
        "{test}: AAAA {V6ONLY} under shim {:.1} ms; {DUAL} {:.1} ms",
        report.lookups[0].ms, report.lookups[1].ms
    );

    // shim --check-dns, in JSON and in text: Podman, OK.
    let (_c, out) = run(
        "check-json",
        &[
            "--entrypoint",
            "/shim",
            &app.1,
            "--check-dns",
            "--name",
            V6ONLY,
            "--json",
        ],
    );
    let json_text = common::stdout(&out);
    println!("{test}: {json_text}");
    assert!(
        out.status.success(),
        "exit 0: {json_text}{}",
        common::stderr(&out)
    );
    let json: Value = serde_json::from_str(json_text.trim()).expect("JSON");
    assert_eq!(
        json.get("kind").and_then(Value::as_str),
        Some("podman"),
        "{json_text}"
    );
    assert_eq!(json.get("ok"), Some(&Value::Bool(true)), "{json_text}");
    assert!(
        json.get("plan")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty),
        "nothing to change: {json_text}"
    );
    let (_c, out) = run(
        "check-text",
        &[
            "--entrypoint",
            "/shim",
            &app.1,
            "--check-dns",
            "--name",
            V6ONLY,
        ],
    );
    let text = common::stdout(&out);
    println!("{test}:\n{text}");
    assert!(
        out.status.success(),
        "exit 0: {text}{}",
        common::stderr(&out)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name:?} line:\n{text}"))
    };
    assert!(field("kind:").starts_with("Podman"), "{text}");
    assert!(field("verdict:").starts_with("OK"), "{text}");
    assert!(field("verdict:").contains(V6ONLY_AAAA), "{text}");
}
