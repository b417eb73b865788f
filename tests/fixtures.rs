//! Every fixture under tests/fixtures gives its expected output, and a second pass changes nothing.

use std::path::Path;

use shim::resolv_conf::{parse, plan, render, Kind, Outcome, Policy};

fn fixture(name: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let read = |ext: &str| {
        std::fs::read(dir.join(format!("{name}.{ext}")))
            .unwrap_or_else(|e| panic!("fixture {name}.{ext}: {e}"))
    };
    (read("conf"), read("expected"))
}

fn fixed(input: &[u8], policy: Policy) -> (Outcome, Vec<u8>) {
    let conf = parse(input);
    let p = plan(&conf, policy);
    (p.outcome.clone(), render(&conf, &p))
}

/// name, the kind the content tells, and what a drop run does with it.
const CASES: &[(&str, Kind, &str)] = &[
    ("docker25-ipv6-host", Kind::DockerLegacy, "drop"),
    ("docker25-ipv4-only-host", Kind::DockerLegacy, "only"),
    ("docker26-systemd-resolved", Kind::DockerModern, "only"),
    ("docker26-dns-ipv6", Kind::DockerModern, "only"),
    ("docker28-no-external", Kind::DockerModern, "only"),
    ("podman-aardvark", Kind::Podman, "none"),
    ("kubernetes", Kind::Kubernetes, "none"),
    ("default-bridge", Kind::Plain, "none"),
    ("crlf", Kind::DockerLegacy, "drop"),
    ("crlf-only", Kind::DockerLegacy, "only"),
    ("nul-bytes", Kind::DockerLegacy, "only"),
    ("invalid-utf8", Kind::DockerLegacy, "drop"),
    ("megabyte-line", Kind::DockerLegacy, "drop"),
    ("tab-separator", Kind::DockerLegacy, "drop"),
    ("embedded-twice", Kind::DockerLegacy, "drop"),
    ("trailing-comment", Kind::DockerLegacy, "drop"),
    ("not-embedded-127-0-0-111", Kind::Plain, "none"),
    ("indented-keyword", Kind::Plain, "none"),
    ("comments-mention-embedded", Kind::Plain, "none"),
    ("no-final-newline", Kind::DockerLegacy, "drop"),
    ("empty", Kind::Plain, "none"),
    ("thousands-of-lines", Kind::DockerLegacy, "drop"),
    // Found by fuzzing (issue 7): musl skips a line with a NUL byte and the line after it.
    ("fuzz-nul-line-hides-next", Kind::DockerLegacy, "only"),
    // Found by fuzzing: musl rejects an empty (or named) IPv6 scope on a global address.
    ("fuzz-empty-scope", Kind::DockerLegacy, "only"),
    // glibc ends an address only at a space or tab: "127.0.0.11#docker" is no address at all.
    ("hash-suffix-is-no-address", Kind::Plain, "none"),
    // Docker 26 to 29 without the header line the daemon adds (the shape of moby's resolv.conf
    // template, as its own tests check it): only Docker's trailing comments tell the era. No
    // upstream at all (the host lists no nameserver).
    (
        "docker26-headerless-no-upstreams",
        Kind::DockerModern,
        "only",
    ),
    // Not even an ExtServers line.
    (
        "docker26-headerless-host-without-nameservers",
        Kind::DockerModern,
        "only",
    ),
    // IPv4 and IPv6 upstreams in the trailing comment.
    ("docker26-headerless-dual-stack", Kind::DockerModern, "only"),
    // Docker 26's default bridge ("legacy"): no embedded resolver, left alone (R1).
    ("docker26-default-bridge-headerless", Kind::Plain, "none"),
];

#[test]
fn every_fixture_gives_its_expected_output() {
    let on_disk = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "conf")
        })
        .count();
    assert_eq!(
        on_disk,
        CASES.len(),
        "every fixture file is listed in CASES"
    );
    for &(name, kind, action) in CASES {
        let (input, expected) = fixture(name);
        let (outcome, output) = fixed(&input, Policy::Drop);
        assert!(
            output == expected,
            "{name}: output differs from {name}.expected"
        );
        let action_seen = match outcome {
            Outcome::Drop(_) => "drop",
            Outcome::OnlyNameserver => "only",
            Outcome::NoEmbedded => "none",
            Outcome::Kept => "kept",
            Outcome::Proxy { .. } => "proxy",
        };
        assert_eq!(action_seen, action, "{name}");
        assert_eq!(parse(&input).kind(), kind, "{name}");
    }
}

#[test]
fn a_second_pass_changes_nothing() {
    for &(name, _, _) in CASES {
        let (input, _) = fixture(name);
        let (_, once) = fixed(&input, Policy::Drop);
        let (outcome, twice) = fixed(&once, Policy::Drop);
        assert!(twice == once, "{name}: not idempotent");
        assert!(
            !matches!(outcome, Outcome::Drop(_)),
            "{name}: a second pass still drops"
        );
    }
}

#[test]
fn keep_policy_never_changes_a_fixture() {
    for &(name, _, _) in CASES {
        let (input, _) = fixture(name);
        let (outcome, output) = fixed(&input, Policy::Keep);
        assert!(output == input, "{name}: --embedded keep changed the file");
        assert!(!matches!(outcome, Outcome::Drop(_)), "{name}");
    }
}

#[test]
fn docker26_upstreams_are_read_from_the_trailing_comment() {
    let (input, _) = fixture("docker26-systemd-resolved");
    assert_eq!(parse(&input).ext_servers(), ["host(127.0.0.53)"]);
    let (input, _) = fixture("docker26-dns-ipv6");
    assert_eq!(
        parse(&input).ext_servers(),
        ["2001:db8::53", "2001:db8::54"]
    );
    let (input, _) = fixture("docker28-no-external");
    assert!(parse(&input).ext_servers().is_empty());
}

/// R8 on every era: where a drop run changes the file, the proxy becomes the only nameserver both
/// libraries read, every other line kept in order; elsewhere the proxy changes what drop does:
/// nothing. A second pass leaves the proxy's file alone.
#[test]
fn the_proxy_stands_in_exactly_where_a_drop_would_change_the_file() {
    let listen: std::net::IpAddr = "127.0.0.153".parse().unwrap();
    for &(name, _, action) in CASES {
        let (input, _) = fixture(name);
        let (outcome, output) = fixed(&input, Policy::Proxy(listen));
        if action != "drop" {
            assert!(
                output == input,
                "{name}: the proxy changed a file drop keeps"
            );
            continue;
        }
        let Outcome::Proxy { lines, .. } = &outcome else {
            panic!("{name}: {outcome:?}")
        };
        let read = parse(&output);
        let glibc: Vec<_> = read.nameservers().filter_map(|n| n.glibc).collect();
        let musl: Vec<_> = read.nameservers().filter_map(|n| n.musl).collect();
        assert_eq!((glibc, musl), (vec![listen], vec![listen]), "{name}");
        // Every line but the nameserver lines is kept, byte for byte, in order.
        let conf = parse(&input);
        let others: Vec<u8> = conf
            .lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !lines.contains(i))
            .flat_map(|(_, l)| l.raw.to_vec())
            .collect();
        let proxy_line = format!("nameserver {listen}\n");
        let without_proxy: Vec<u8> = {
            let at = output
                .windows(proxy_line.len())
                .position(|w| w == proxy_line.as_bytes())
                .unwrap();
            [&output[..at], &output[at + proxy_line.len()..]].concat()
        };
        assert!(without_proxy == others, "{name}: other lines changed");
        let (again, twice) = fixed(&output, Policy::Proxy(listen));
        assert_eq!(again, Outcome::NoEmbedded, "{name}");
        assert!(twice == output, "{name}: not idempotent");
    }
}
