//! The `--embedded proxy` forwarder (`shim::proxy`, R8) against real components: in a network
//! namespace made to look like a container (`tests/common/netns.rs`), `shim::proxy::serve` runs
//! on a thread of this process entered into the namespace, listening on 127.0.0.153:53; a
//! stand-in for Docker's embedded resolver listens on 127.0.0.11:53 and an upstream,
//! authoritative for the test zone, on 2001:db8::53. Clients (glibc's `getent`, a static musl
//! program) read a resolv.conf that lists only the proxy, as shim will write it.
//!
//! Two hosts, each case on both: IPv6-only DNS (the embedded resolver answers container names
//! and drops everything else: it has no upstream) and dual-stack (it answers names and forwards
//! the rest). Time bounds are generous: they tell "at once" from "after a resolver timeout"
//! (5 s), never a tight figure.

mod common;

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use nix::sched::{setns, CloneFlags};

use common::netns::responder::{self, Behaviour, Responder, CONTAINER_A, V6ONLY_AAAA};
use common::netns::{addr, Netns, Run};
use shim::proxy::{self, Config};

const EMBEDDED: &str = "127.0.0.11:53";
const V6_SERVER: &str = "[2001:db8::53]:53";
/// A second upstream address, added to the namespace by the tests that need it.
const V6_SECOND: &str = "[2001:db8::54]:53";

/// What shim writes: the proxy only, `options` kept.
const CLIENT_CONF: &str = "nameserver 127.0.0.153\noptions ndots:0\n";
/// The same, with glibc asking over TCP.
const CLIENT_CONF_TCP: &str = "nameserver 127.0.0.153\noptions ndots:0 use-vc\n";

/// Far less than the 5 s of a resolver timeout, and loose enough for a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Host {
    /// Docker <= 25 with IPv6-only DNS: 127.0.0.11 has no upstream.
    Ipv6Only,
    /// Docker <= 25 on a dual-stack host: 127.0.0.11 forwards.
    DualStack,
}

const HOSTS: [Host; 2] = [Host::Ipv6Only, Host::DualStack];

/// A namespace with its servers and a running proxy.
struct Setup {
    ns: Netns,
    /// The proxy thread's id, for its context switches.
    tid: i32,
    _servers: Vec<Responder>,
}

impl Setup {
    /// `host`'s embedded resolver, and one upstream with `upstream` behaviour.
    fn new(host: Host, upstream: Behaviour) -> Setup {
        let ns = Netns::new();
        let upstream = ns.serve(V6_SERVER, upstream);
        let embedded = embedded(&ns, host);
        let config = Config::new(addr(EMBEDDED), vec![addr(V6_SERVER)]);
        let tid = start_proxy(&ns, config);
        Setup {
            ns,
            tid,
            _servers: vec![upstream, embedded],
        }
    }

    fn getent(&self, conf: &str, args: &[&str]) -> Run {
        let file = self.ns.resolv_conf(conf);
        self.ns.run(&file, Path::new("/usr/bin/getent"), args)
    }

    fn musl(&self, client: &Path, family: &str, name: &str) -> Run {
        let file = self.ns.resolv_conf(CLIENT_CONF);
        self.ns.run(&file, client, &[family, name])
    }

    /// One query over UDP from inside the namespace, and what came back (at most 10 s).
    fn ask(&self, query: &Message) -> (Message, Duration) {
        let bytes = query.to_vec().unwrap();
        self.ns.enter(|| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let start = Instant::now();
            socket
                .send_to(&bytes, (proxy::LISTEN, proxy::PORT))
                .unwrap();
            let mut buffer = vec![0u8; 65535];
            let n = socket.recv(&mut buffer).expect("an answer from the proxy");
            (Message::from_vec(&buffer[..n]).unwrap(), start.elapsed())
        })
    }
}

/// The stand-in for Docker's embedded resolver on `host`.
fn embedded(ns: &Netns, host: Host) -> Responder {
    match host {
        Host::Ipv6Only => ns.serve(EMBEDDED, Behaviour::Names),
        Host::DualStack => {
            let upstream = addr(V6_SERVER);
            let socket = ns.enter(|| responder::upstream_socket(upstream).unwrap());
            ns.serve(EMBEDDED, Behaviour::NamesOrForward(socket))
        }
    }
}

/// Run `shim::proxy::serve` on a thread inside `ns`, as shim does; the thread's id. The thread
/// serves until the test process ends (serve never returns), holding the namespace until then.
fn start_proxy(ns: &Netns, config: Config) -> i32 {
    let handle = File::open(Path::new("/run/netns").join(&ns.name)).unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        setns(&handle, CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
        drop(handle);
        match proxy::bind(SocketAddr::from((proxy::LISTEN, proxy::PORT))) {
            Ok(listeners) => {
                let _ = sender.send(Ok(nix::unistd::gettid().as_raw()));
                proxy::serve(listeners, config)
            }
            Err(e) => {
                let _ = sender.send(Err(e));
            }
        }
    });
    receiver
        .recv()
        .unwrap()
        .expect("bind the proxy on 127.0.0.153:53")
}

/// The static musl client, built once with musl-gcc; `None` (and a visible skip) without it.
fn musl_client() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let source = dir.join("proxy_musl_lookup.c");
        let binary = dir.join("proxy_musl_lookup");
        std::fs::write(&source, MUSL_LOOKUP).unwrap();
        let built = Command::new("musl-gcc")
            .args(["-static", "-Os", "-o"])
            .arg(&binary)
            .arg(&source)
            .status();
        built.is_ok_and(|s| s.success()).then_some(binary)
    });
    common::require(built.is_some(), "musl-gcc (Debian's musl-tools)")
        .then(|| built.clone())
        .flatten()
}

/// getaddrinfo(NAME, family, AI_ADDRCONFIG) as an app asks, each address on a line; exit 2 for
/// "no such name", 1 for any other failure.
const MUSL_LOOKUP: &str = r#"
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct addrinfo hints, *res, *p;
	char text[64];
	int rc;

	if (argc != 3)
		return 1;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = !strcmp(argv[1], "6") ? AF_INET6 : !strcmp(argv[1], "4") ? AF_INET : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(argv[2], NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", argv[2], gai_strerror(rc));
		return rc == EAI_NONAME ? 2 : 1;
	}
	for (p = res; p; p = p->ai_next) {
		getnameinfo(p->ai_addr, p->ai_addrlen, text, sizeof text, NULL, 0, NI_NUMERICHOST);
		puts(text);
	}
	freeaddrinfo(res);
	return 0;
}
"#;

fn assert_resolves(run: &Run, address: &str, what: &str) {
    assert_eq!(run.code(), Some(0), "{what}: {run:?}");
    assert!(run.stdout.contains(address), "{what}: {run:?}");
    assert!(run.elapsed < AT_ONCE, "{what} took {:?}", run.elapsed);
}

#[test]
fn container_names_resolve_for_glibc_and_musl_every_time() {
    if !common::require_root() {
        return;
    }
    let musl = musl_client();
    let name = CONTAINER_A.to_string();
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::Zone);
        for i in 0..20 {
            let run = setup.getent(CLIENT_CONF, &["ahosts", "db"]);
            assert_resolves(&run, &name, &format!("{host:?} glibc db #{i}"));
            // musl asks A and AAAA at once: the upstream's NXDOMAIN for `db` must not win.
            if let Some(musl) = &musl {
                let run = setup.musl(musl, "any", "db");
                assert_resolves(&run, &name, &format!("{host:?} musl db #{i}"));
            }
        }
        let run = setup.getent(CLIENT_CONF, &["ahosts", "database"]);
        assert_resolves(&run, &name, &format!("{host:?} glibc alias"));
    }
}

#[test]
fn an_outside_ipv6_only_name_resolves_at_once() {
    if !common::require_root() {
        return;
    }
    let musl = musl_client();
    let address = V6ONLY_AAAA.to_string();
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::Zone);
        for args in [["ahostsv6", "v6only.test"], ["ahosts", "v6only.test"]] {
            let run = setup.getent(CLIENT_CONF, &args);
            assert_resolves(&run, &address, &format!("{host:?} glibc {args:?}"));
        }
        let run = setup.getent(CLIENT_CONF, &["ahosts", "dual.test"]);
        assert_resolves(&run, "192.0.2.66", &format!("{host:?} glibc dual.test"));
        if let Some(musl) = &musl {
            for family in ["6", "any"] {
                let run = setup.musl(musl, family, "v6only.test");
                assert_resolves(&run, &address, &format!("{host:?} musl {family}"));
            }
        }
    }
}

#[test]
fn a_missing_name_is_nxdomain_quickly() {
    if !common::require_root() {
        return;
    }
    let musl = musl_client();
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::Zone);
        let run = setup.getent(CLIENT_CONF, &["ahosts", "missing.test"]);
        assert_eq!(run.code(), Some(2), "{host:?}: {run:?}");
        assert!(run.elapsed < AT_ONCE, "{host:?}: {:?}", run.elapsed);
        if let Some(musl) = &musl {
            let run = setup.musl(musl, "any", "missing.test");
            assert_eq!(run.code(), Some(2), "{host:?}: {run:?}");
            assert!(run.elapsed < AT_ONCE, "{host:?}: {:?}", run.elapsed);
        }
    }
}

#[test]
fn tcp_queries_are_answered_over_tcp() {
    if !common::require_root() {
        return;
    }
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::Zone);
        let run = setup.getent(CLIENT_CONF_TCP, &["ahosts", "db"]);
        assert_resolves(&run, &CONTAINER_A.to_string(), &format!("{host:?} db"));
        let run = setup.getent(CLIENT_CONF_TCP, &["ahostsv6", "v6only.test"]);
        assert_resolves(&run, &V6ONLY_AAAA.to_string(), &format!("{host:?} v6only"));
        let run = setup.getent(CLIENT_CONF_TCP, &["ahosts", "missing.test"]);
        assert_eq!(run.code(), Some(2), "{host:?}: {run:?}");
    }
}

#[test]
fn a_truncated_answer_makes_glibc_ask_again_over_tcp() {
    if !common::require_root() {
        return;
    }
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::TruncatingZone);
        let run = setup.getent(CLIENT_CONF, &["ahostsv6", "v6only.test"]);
        assert_resolves(&run, &V6ONLY_AAAA.to_string(), &format!("{host:?}"));
    }
}

#[test]
fn malformed_upstream_replies_are_waited_past() {
    if !common::require_root() {
        return;
    }
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::MalformedFirst);
        let run = setup.getent(CLIENT_CONF, &["ahostsv6", "v6only.test"]);
        assert_resolves(&run, &V6ONLY_AAAA.to_string(), &format!("{host:?}"));
    }
}

/// A query with a mixed-case name and EDNS, as a stub resolver with 0x20 or DNSSEC sends it.
fn odd_query(id: u16, name: &str) -> Message {
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(
        Name::from_ascii(name).unwrap(),
        RecordType::AAAA,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    query.edns = Some(edns);
    query
}

#[test]
fn the_clients_id_and_question_come_back() {
    if !common::require_root() {
        return;
    }
    for host in HOSTS {
        let setup = Setup::new(host, Behaviour::Zone);
        for (id, name) in [
            (0xbeef, "V6only.TEST."),
            (0x0001, "Db."),
            (0xffff, "nO.test."),
        ] {
            let query = odd_query(id, name);
            let (answer, _) = setup.ask(&query);
            assert_eq!(answer.metadata.id, id, "{host:?} {name}");
            assert_eq!(answer.metadata.message_type, MessageType::Response);
            assert_eq!(answer.queries.len(), 1, "{host:?} {name}");
            // Byte for byte as asked: the case of the name included.
            assert_eq!(answer.queries[0].name().to_ascii(), name);
            assert_eq!(answer.queries[0].query_type(), RecordType::AAAA);
            let addresses: Vec<_> = answer
                .answers
                .iter()
                .filter_map(|r| match r.data {
                    RData::AAAA(a) => Some(a.0),
                    _ => None,
                })
                .collect();
            match name {
                "V6only.TEST." => assert_eq!(addresses, [V6ONLY_AAAA]),
                // A container without IPv6: NOERROR, no record (not the upstream's NXDOMAIN).
                "Db." => {
                    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
                    assert!(addresses.is_empty());
                }
                _ => assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain),
            }
        }
    }
}

#[test]
fn servfail_when_nothing_answers_before_the_client_gives_up() {
    if !common::require_root() {
        return;
    }
    std::thread::scope(|scope| {
        for host in HOSTS {
            scope.spawn(move || {
                let setup = Setup::new(host, Behaviour::Silent);
                let (answer, elapsed) = setup.ask(&odd_query(0x1234, "v6only.test."));
                assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
                assert_eq!(answer.metadata.id, 0x1234);
                assert_eq!(answer.queries[0].name().to_ascii(), "v6only.test.");
                // The deadline (4 s), before glibc's and musl's 5 s.
                let window = Duration::from_millis(3900)..Duration::from_millis(4900);
                assert!(window.contains(&elapsed), "{host:?}: {elapsed:?}");
            });
        }
    });
}

/// A namespace with two upstreams: `first` on 2001:db8::54, the zone on 2001:db8::53.
fn two_upstreams(first: Behaviour) -> (Setup, Responder) {
    let ns = Netns::new();
    ns.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8::54/64",
        "dev",
        "veth0",
        "nodad",
    ]);
    let zone = ns.serve(V6_SERVER, Behaviour::Zone);
    let first = ns.serve(V6_SECOND, first);
    let embedded = embedded(&ns, Host::Ipv6Only);
    let config = Config::new(addr(EMBEDDED), vec![addr(V6_SECOND), addr(V6_SERVER)]);
    let tid = start_proxy(&ns, config);
    let setup = Setup {
        ns,
        tid,
        _servers: vec![zone, embedded],
    };
    (setup, first)
}

#[test]
fn a_failing_upstream_hands_over_to_the_next_at_once() {
    if !common::require_root() {
        return;
    }
    let (setup, first) = two_upstreams(Behaviour::Fail(ResponseCode::ServFail));
    let run = setup.getent(CLIENT_CONF, &["ahostsv6", "v6only.test"]);
    assert_resolves(&run, &V6ONLY_AAAA.to_string(), "after SERVFAIL");
    assert!(first.queries() >= 1, "the first upstream was asked first");
}

#[test]
fn a_silent_upstream_hands_over_after_the_stagger() {
    if !common::require_root() {
        return;
    }
    let (setup, first) = two_upstreams(Behaviour::Silent);
    let run = setup.getent(CLIENT_CONF, &["ahostsv6", "v6only.test"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains(&V6ONLY_AAAA.to_string()), "{run:?}");
    // One stagger (1 s), not glibc's 5 s timeout.
    let window = Duration::from_millis(900)..Duration::from_millis(3000);
    assert!(window.contains(&run.elapsed), "{:?}", run.elapsed);
    assert!(first.queries() >= 1, "the first upstream was asked first");
}

/// The thread's voluntary context switches: each sleep in poll(2) that ends counts one.
fn voluntary_switches(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in the thread's status")
}

#[test]
fn the_proxy_sleeps_while_no_query_comes() {
    if !common::require_root() {
        return;
    }
    let setup = Setup::new(Host::Ipv6Only, Behaviour::Zone);
    // Some work first (UDP and a TCP connection, which the proxy closes when the client does),
    // so that the loop has had queries, attempts and deadlines to forget.
    let (answer, _) = setup.ask(&odd_query(7, "v6only.test."));
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let run = setup.getent(CLIENT_CONF_TCP, &["ahostsv6", "v6only.test"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    std::thread::sleep(Duration::from_millis(300));
    let before = voluntary_switches(setup.tid);
    std::thread::sleep(Duration::from_millis(1500));
    let after = voluntary_switches(setup.tid);
    eprintln!("proxy thread: {} wake-ups in 1.5 s idle", after - before);
    assert_eq!(after, before, "the proxy woke up with no query to serve");
}

// ---------------------------------------------------------------------------------------------
// The whole of it: the shim binary as PID 1 of a PID namespace inside the network namespace,
// given Docker 25's file, starts its proxy, rewrites the file and runs an app that looks names up.

/// Docker <= 25's file on a user-defined network with an IPv6 `--dns`.
const DOCKER25: &str =
    "search shim.test\nnameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n";

/// The app: what it reads, what its lookups give, and whether it holds any socket of shim's.
const APP: &str = r#"
cat /etc/resolv.conf
echo "parent: $(cat /proc/$PPID/comm)"
echo "sockets: $(for f in /proc/$$/fd/*; do readlink "$f"; done | grep -c socket)"
getent ahosts db | head -n 1
getent ahostsv6 v6only.test | head -n 1
getent hosts missing.test; echo "missing: $?"
"$0" 0 db
"$0" 6 v6only.test
"#;

/// shim as PID 1 of a new PID namespace inside `ns`, with `args`, running [`APP`].
fn shim_as_pid1(ns: &Netns, musl: &Path, args: &[&str]) -> Run {
    let file = ns.resolv_conf(DOCKER25);
    let shim = common::shim().to_str().unwrap().to_owned();
    let mut all = common::pid1::NEW_PID_NAMESPACE.to_vec();
    all.push(shim.as_str());
    all.extend_from_slice(args);
    all.extend(["--", "/bin/sh", "-c", APP, musl.to_str().unwrap()]);
    ns.run(&file, Path::new("/usr/bin/unshare"), &all)
}

fn servers_only(ns: &Netns, host: Host) -> Vec<Responder> {
    vec![ns.serve(V6_SERVER, Behaviour::Zone), embedded(ns, host)]
}

#[test]
fn shim_as_pid1_with_the_proxy_keeps_names_and_ipv6_dns_for_glibc_and_musl() {
    if !common::require_root() {
        return;
    }
    let Some(musl) = musl_client() else {
        return;
    };
    for host in HOSTS {
        // Named outright, and chosen by auto as PID 1 (shim stays the parent there).
        for mode in ["proxy", "auto"] {
            let ns = Netns::new();
            let _servers = servers_only(&ns, host);
            let run = shim_as_pid1(&ns, &musl, &["-v", "--embedded", mode]);
            let what = format!("{host:?}, --embedded {mode}: {run:?}");
            assert_eq!(run.code(), Some(0), "{what}");
            let lines: Vec<&str> = run.stdout.lines().collect();
            assert_eq!(
                &lines[..3],
                [
                    "search shim.test",
                    "nameserver 127.0.0.153",
                    "options ndots:0"
                ],
                "{what}"
            );
            assert!(lines.contains(&"parent: shim"), "{what}");
            assert!(
                lines.contains(&"sockets: 0"),
                "the app holds a socket: {what}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&CONTAINER_A.to_string())),
                "glibc: a container name: {what}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&V6ONLY_AAAA.to_string())),
                "glibc: an IPv6-only name: {what}"
            );
            assert!(lines.contains(&"missing: 2"), "{what}");
            assert!(
                lines.contains(&CONTAINER_A.to_string().as_str()),
                "musl: {what}"
            );
            assert!(
                lines.contains(&V6ONLY_AAAA.to_string().as_str()),
                "musl: {what}"
            );
            // Far less than one resolver timeout for all of it.
            assert!(run.elapsed < Duration::from_secs(4), "{what}");
            assert!(
                run.stderr.contains("names only shim's proxy, 127.0.0.153"),
                "{what}"
            );
        }
    }
}

#[test]
fn not_pid1_the_proxy_keeps_shim_as_the_parent_and_ends_with_it() {
    if !common::require_root() {
        return;
    }
    let Some(musl) = musl_client() else {
        return;
    };
    let ns = Netns::new();
    let _servers = servers_only(&ns, Host::Ipv6Only);
    let file = ns.resolv_conf(DOCKER25);
    let mut args = vec!["--embedded", "proxy", "--", "/bin/sh", "-c", APP];
    args.push(musl.to_str().unwrap());
    let run = ns.shim(&file, &args);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("parent: shim"), "{run:?}");
    assert!(run.stdout.contains(&CONTAINER_A.to_string()), "{run:?}");
    // shim exited with the app: nothing listens on the proxy's address any more.
    let bound = ns.enter(|| UdpSocket::bind((proxy::LISTEN, proxy::PORT)).is_ok());
    assert!(bound, "the proxy's port is still taken after shim exited");
}

#[test]
fn without_the_embedded_resolver_no_proxy_starts_and_the_file_stays() {
    if !common::require_root() {
        return;
    }
    let ns = Netns::new();
    let _upstream = ns.serve(V6_SERVER, Behaviour::Zone);
    let podman = "search dns.podman\nnameserver 2001:db8::53\n";
    let file = ns.resolv_conf(podman);
    let run = ns.shim(
        &file,
        &[
            "-v",
            "--embedded",
            "proxy",
            "--",
            "/bin/sh",
            "-c",
            "cat /etc/resolv.conf; echo \"parent: $(cat /proc/$PPID/comm)\"",
        ],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(podman), "{run:?}");
    // No proxy, so nothing keeps shim: it execs the app as it would without the flag.
    assert!(!run.stdout.contains("parent: shim"), "{run:?}");
    assert!(!run.stderr.contains("proxy"), "{run:?}");
}
